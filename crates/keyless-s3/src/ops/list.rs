//! ListObjects (v1) and ListObjectsV2.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_store::ObjectRecord;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::bucket::require_bucket;
use super::timestamp;
use crate::S3State;
use crate::errors::{invalid_argument, store_error};

/// Largest page, as in S3.
const MAX_KEYS: i32 = 1000;
/// Rows fetched from the store per round while grouping by delimiter.
const BATCH: u32 = 1000;

/// One page of a listing.
pub(crate) struct Page {
    pub objects: Vec<ObjectRecord>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or common prefix returned, where the next page starts.
    pub last: Option<String>,
}

/// Lists keys under `prefix` after `after`, grouping by `delimiter`, at most
/// `max_keys` entries (objects and common prefixes together).
pub(crate) async fn list_page(state: &S3State, bucket: &str, prefix: &str, delimiter: Option<&str>, after: &str, max_keys: usize) -> S3Result<Page> {
    let mut page = Page { objects: Vec::new(), prefixes: Vec::new(), truncated: false, last: None };
    if max_keys == 0 {
        return Ok(page);
    }
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut cursor = after.to_owned();
    // A marker that is itself a common prefix (the last entry of the previous
    // page) must skip every key under it, or paging would return it again.
    if let Some(d) = delimiter
        && let Some(rest) = after.strip_prefix(prefix)
        && rest.ends_with(d)
    {
        cursor = format!("{after}\u{10FFFF}");
    }
    'fetch: loop {
        let batch = state.store.list_objects(bucket, prefix, &cursor, BATCH).await.map_err(store_error)?;
        let exhausted = batch.len() < BATCH as usize;
        for obj in batch {
            cursor = obj.key.clone();
            let common = delimiter.and_then(|d| {
                let rest = &obj.key[prefix.len()..];
                rest.find(d).map(|pos| obj.key[..prefix.len() + pos + d.len()].to_owned())
            });
            if page.objects.len() + page.prefixes.len() == max_keys {
                page.truncated = true;
                break 'fetch;
            }
            match common {
                Some(cp) => {
                    // Skip every key under this common prefix in one step:
                    // U+10FFFF sorts after any character that can follow it.
                    cursor = format!("{cp}\u{10FFFF}");
                    page.last = Some(cp.clone());
                    page.prefixes.push(cp);
                    continue 'fetch;
                }
                None => {
                    page.last = Some(obj.key.clone());
                    page.objects.push(obj);
                }
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}

fn max_keys(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(MAX_KEYS as usize),
        Some(n) if n < 0 => Err(invalid_argument(format!("max-keys {n} is invalid: expected 0 to {MAX_KEYS}"))),
        Some(n) => Ok(n.min(MAX_KEYS) as usize),
    }
}

fn url_encoding(encoding: &Option<EncodingType>) -> S3Result<bool> {
    match encoding {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(e) => Err(invalid_argument(format!("encoding-type {:?} is invalid: expected \"url\"", e.as_str()))),
    }
}

/// Percent-encodes a key as S3 does for `encoding-type=url`.
fn encode(value: &str, enabled: bool) -> String {
    if !enabled {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn to_object(obj: &ObjectRecord, url: bool) -> Object {
    let etag = match obj.meta.parts_count {
        Some(n) if !obj.etag.contains('-') => format!("{}-{n}", obj.etag),
        _ => obj.etag.clone(),
    };
    Object {
        key: Some(encode(&obj.key, url)),
        size: Some(obj.size as i64),
        e_tag: Some(ETag::Strong(etag)),
        last_modified: Some(timestamp(obj.last_modified)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

pub async fn list_objects(state: &S3State, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let input = req.input;
    require_bucket(state, &input.bucket).await?;
    let url = url_encoding(&input.encoding_type)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let marker = input.marker.clone().unwrap_or_default();
    let page = list_page(state, &input.bucket, &prefix, input.delimiter.as_deref(), &marker, max_keys(input.max_keys)?).await?;

    let next_marker = (page.truncated && input.delimiter.is_some()).then(|| encode(page.last.as_deref().unwrap_or(""), url));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        marker: Some(encode(&marker, url)),
        delimiter: input.delimiter.map(|d| encode(&d, url)),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(page.truncated),
        next_marker,
        contents: Some(page.objects.iter().map(|o| to_object(o, url)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(encode(&p, url)) }).collect()),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

pub async fn list_objects_v2(state: &S3State, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    require_bucket(state, &input.bucket).await?;
    let url = url_encoding(&input.encoding_type)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let after = match &input.continuation_token {
        Some(token) => decode_token(token)?,
        None => input.start_after.clone().unwrap_or_default(),
    };
    let page = list_page(state, &input.bucket, &prefix, input.delimiter.as_deref(), &after, max_keys(input.max_keys)?).await?;

    let key_count = (page.objects.len() + page.prefixes.len()) as i32;
    let next = page.truncated.then(|| URL_SAFE_NO_PAD.encode(page.last.as_deref().unwrap_or("")));
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(encode(&prefix, url)),
        delimiter: input.delimiter.map(|d| encode(&d, url)),
        max_keys: Some(input.max_keys.unwrap_or(MAX_KEYS)),
        key_count: Some(key_count),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        start_after: input.start_after.map(|s| encode(&s, url)),
        is_truncated: Some(page.truncated),
        contents: Some(page.objects.iter().map(|o| to_object(o, url)).collect()),
        common_prefixes: Some(page.prefixes.into_iter().map(|p| CommonPrefix { prefix: Some(encode(&p, url)) }).collect()),
        encoding_type: input.encoding_type,
        ..Default::default()
    }))
}

fn decode_token(token: &str) -> S3Result<String> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| S3Error::with_message(S3ErrorCode::InvalidArgument, "the continuation token is invalid; pass the NextContinuationToken of the previous page"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes() {
        assert_eq!(encode("a b/ü+c", true), "a%20b/%C3%BC%2Bc");
        assert_eq!(encode("a b", false), "a b");
    }
}
