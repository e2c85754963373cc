//! Multipart uploads. Parts are stored as blobs; completing an upload makes
//! the object point at its parts' blobs in order, so nothing is copied.

use keyless_store::{BlobRef, ObjectMeta, ObjectRecord, PartRecord, StoreError, UploadRecord, OBJECT_META_FORMAT, now_millis};
use md5::{Digest, Md5};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::bucket::require_bucket;
use super::object::check_copy_preconditions;
use super::{auth_context, check_key, timestamp};
use crate::S3State;
use crate::body::{Expected, copy_range, write_body};
use crate::errors::{invalid_argument, no_such_key, no_such_upload, store_error};

/// Part limits, as in S3: 1 to 10,000 parts; each but the last at least 5 MiB;
/// no part above 5 GiB.
const MAX_PARTS: i32 = 10_000;
const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn check_part_number(n: i32) -> S3Result<u32> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(n as u32)
    } else {
        Err(invalid_argument(format!("part number {n} is out of range: expected 1 to {MAX_PARTS}")))
    }
}

async fn load_upload(state: &S3State, bucket: &str, key: &str, upload_id: &str) -> S3Result<UploadRecord> {
    match state.store.upload(upload_id).await.map_err(store_error)? {
        Some(upload) if upload.bucket == bucket && upload.key == key => Ok(upload),
        _ => Err(no_such_upload(upload_id)),
    }
}

pub async fn create_multipart_upload(
    state: &S3State,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let initiator = auth_context(&req)?.caller.as_ref().map(|c| c.principal.clone()).unwrap_or_default();
    let input = req.input;
    check_key(&input.key)?;
    require_bucket(state, &input.bucket).await?;
    let mut headers = std::collections::BTreeMap::new();
    for (name, value) in [
        ("cache-control", input.cache_control),
        ("content-disposition", input.content_disposition),
        ("content-encoding", input.content_encoding),
        ("content-language", input.content_language),
    ] {
        if let Some(value) = value {
            headers.insert(name.to_owned(), value);
        }
    }
    let upload = UploadRecord {
        upload_id: uuid::Uuid::new_v4().simple().to_string(),
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        created_at: now_millis(),
        initiator,
        meta: ObjectMeta {
            format: OBJECT_META_FORMAT,
            content_type: input.content_type.map(|m| m.to_string()),
            headers,
            user: super::object::user_metadata(input.metadata)?,
            checksums: Default::default(),
            parts_count: None,
        },
    };
    state.store.create_upload(&upload).await.map_err(store_error)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(upload.upload_id),
        ..Default::default()
    }))
}

async fn record_part(state: &S3State, upload_id: &str, part: PartRecord) -> S3Result<()> {
    match state.store.put_part(upload_id, &part).await {
        Ok(old) => {
            if let Some(old) = old {
                state.store.blobs.delete(&[old]).await;
            }
            Ok(())
        }
        Err(StoreError::NotFound) => {
            state.store.blobs.delete(&[part.blob]).await;
            Err(no_such_upload(upload_id))
        }
        Err(err) => {
            state.store.blobs.delete(&[part.blob]).await;
            Err(store_error(err))
        }
    }
}

pub async fn upload_part(state: &S3State, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let input = req.input;
    let part_number = check_part_number(input.part_number)?;
    load_upload(state, &input.bucket, &input.key, &input.upload_id).await?;
    let length = input.content_length.and_then(|n| u64::try_from(n).ok());
    if length.is_some_and(|n| n > MAX_PART_SIZE) {
        return Err(S3Error::with_message(S3ErrorCode::EntityTooLarge, format!("a part may be at most {MAX_PART_SIZE} bytes")));
    }
    let expected = Expected::from_headers(&req.headers, input.content_md5.clone(), length)?;
    let written = write_body(&state.store.blobs, input.body, &expected, req.trailing_headers.as_ref()).await?;
    let etag = hex::encode(written.md5);
    let part = PartRecord { part_number, blob: written.blob, etag: etag.clone(), last_modified: now_millis(), checksums: written.checksums.clone() };
    record_part(state, &input.upload_id, part).await?;
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(etag)),
        checksum_crc32: written.checksums.get("crc32").cloned(),
        checksum_crc32c: written.checksums.get("crc32c").cloned(),
        checksum_crc64nvme: written.checksums.get("crc64nvme").cloned(),
        checksum_sha1: written.checksums.get("sha1").cloned(),
        checksum_sha256: written.checksums.get("sha256").cloned(),
        ..Default::default()
    }))
}

pub async fn upload_part_copy(state: &S3State, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let input = req.input;
    let part_number = check_part_number(input.part_number)?;
    load_upload(state, &input.bucket, &input.key, &input.upload_id).await?;
    let CopySource::Bucket { bucket: src_bucket, key: src_key, .. } = &input.copy_source else {
        return Err(invalid_argument("x-amz-copy-source must name <bucket>/<key>".into()));
    };
    let source = match state.store.object(src_bucket, src_key).await.map_err(store_error)? {
        Some(obj) => obj,
        None => return Err(no_such_key(src_key)),
    };
    check_copy_preconditions(&source, &input.copy_source_if_match, &input.copy_source_if_none_match, &input.copy_source_if_modified_since, &input.copy_source_if_unmodified_since)?;
    let (start, len) = match &input.copy_source_range {
        None => (0, source.size),
        Some(range) => parse_copy_range(range, source.size)?,
    };
    if len > MAX_PART_SIZE {
        return Err(S3Error::with_message(S3ErrorCode::EntityTooLarge, format!("a part may be at most {MAX_PART_SIZE} bytes")));
    }
    let written = copy_range(&state.store.blobs, &source.blobs, start, len).await?;
    let etag = hex::encode(written.md5);
    let now = now_millis();
    let part = PartRecord { part_number, blob: written.blob, etag: etag.clone(), last_modified: now, checksums: written.checksums };
    record_part(state, &input.upload_id, part).await?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult { e_tag: Some(ETag::Strong(etag)), last_modified: Some(timestamp(now)), ..Default::default() }),
        ..Default::default()
    }))
}

/// Parses `bytes=<first>-<last>` (inclusive) against a source of `size` bytes.
fn parse_copy_range(range: &str, size: u64) -> S3Result<(u64, u64)> {
    let invalid = || S3Error::with_message(S3ErrorCode::InvalidArgument, format!("x-amz-copy-source-range {range:?} is invalid: expected bytes=<first>-<last> within the source"));
    let spec = range.strip_prefix("bytes=").ok_or_else(invalid)?;
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = first.parse().map_err(|_| invalid())?;
    let last: u64 = last.parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok((first, last - first + 1))
}

pub async fn complete_multipart_upload(
    state: &S3State,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let input = req.input;
    let upload = load_upload(state, &input.bucket, &input.key, &input.upload_id).await?;
    let requested = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    if requested.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "the request must list at least one part"));
    }

    let stored = state.store.list_parts(&input.upload_id, 0, MAX_PARTS as u32).await.map_err(store_error)?;
    let mut blobs: Vec<BlobRef> = Vec::with_capacity(requested.len());
    let mut md5s = Md5::new();
    let mut previous = 0u32;
    for (index, part) in requested.iter().enumerate() {
        let number = check_part_number(part.part_number.unwrap_or(0))?;
        if number <= previous {
            return Err(S3Error::with_message(S3ErrorCode::InvalidPartOrder, "parts must be listed in ascending order of part number, without repeats"));
        }
        previous = number;
        let Some(found) = stored.iter().find(|p| p.part_number == number) else {
            return Err(S3Error::with_message(S3ErrorCode::InvalidPart, format!("part {number} was not uploaded")));
        };
        if let Some(etag) = &part.e_tag
            && etag.value().trim_matches('"') != found.etag
        {
            return Err(S3Error::with_message(S3ErrorCode::InvalidPart, format!("the ETag given for part {number} does not match the uploaded part")));
        }
        let is_last = index + 1 == requested.len();
        if !is_last && found.blob.size < MIN_PART_SIZE {
            return Err(S3Error::with_message(
                S3ErrorCode::EntityTooSmall,
                format!("part {number} has {} bytes; every part but the last needs at least {MIN_PART_SIZE}", found.blob.size),
            ));
        }
        md5s.update(hex::decode(&found.etag).unwrap_or_default());
        blobs.push(found.blob.clone());
    }

    let size = blobs.iter().map(|b| b.size).sum();
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), requested.len());
    let mut meta = upload.meta.clone();
    meta.parts_count = Some(requested.len() as u32);
    let record = ObjectRecord { bucket: input.bucket.clone(), key: input.key.clone(), blobs, size, etag: etag.clone(), last_modified: now_millis(), meta };
    match state.store.complete_upload(&input.upload_id, &record).await {
        Ok(garbage) => state.store.blobs.delete(&garbage).await,
        Err(StoreError::NotFound) => return Err(no_such_upload(&input.upload_id)),
        Err(err) => return Err(store_error(err)),
    }
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(input.bucket.clone()),
        key: Some(input.key.clone()),
        e_tag: Some(ETag::Strong(etag)),
        location: Some(format!("/{}/{}", input.bucket, input.key)),
        ..Default::default()
    }))
}

pub async fn abort_multipart_upload(state: &S3State, req: S3Request<AbortMultipartUploadInput>) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let input = req.input;
    load_upload(state, &input.bucket, &input.key, &input.upload_id).await?;
    match state.store.abort_upload(&input.upload_id).await {
        Ok(blobs) => state.store.blobs.delete(&blobs).await,
        Err(StoreError::NotFound) => return Err(no_such_upload(&input.upload_id)),
        Err(err) => return Err(store_error(err)),
    }
    Ok(S3Response::with_status(AbortMultipartUploadOutput::default(), http::StatusCode::NO_CONTENT))
}

pub async fn list_parts(state: &S3State, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let input = req.input;
    load_upload(state, &input.bucket, &input.key, &input.upload_id).await?;
    let max = input.max_parts.unwrap_or(1000).clamp(0, 1000) as u32;
    let marker = match input.part_number_marker {
        None => 0,
        Some(m) => u32::try_from(m).map_err(|_| invalid_argument(format!("part-number-marker {m} is invalid: expected a part number")))?,
    };
    let mut parts = state.store.list_parts(&input.upload_id, marker, max + 1).await.map_err(store_error)?;
    let truncated = parts.len() > max as usize;
    parts.truncate(max as usize);
    let next = parts.last().map(|p| p.part_number as i32);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        max_parts: Some(max as i32),
        is_truncated: Some(truncated),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: if truncated { next } else { None },
        parts: Some(
            parts
                .into_iter()
                .map(|p| Part {
                    part_number: Some(p.part_number as i32),
                    size: Some(p.blob.size as i64),
                    e_tag: Some(ETag::Strong(p.etag)),
                    last_modified: Some(timestamp(p.last_modified)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    state: &S3State,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let input = req.input;
    require_bucket(state, &input.bucket).await?;
    let max = input.max_uploads.unwrap_or(1000).clamp(0, 1000) as u32;
    let prefix = input.prefix.clone().unwrap_or_default();
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let upload_marker = input.upload_id_marker.clone().unwrap_or_default();
    let mut uploads = state.store.list_uploads(&input.bucket, &prefix, &key_marker, &upload_marker, max + 1).await.map_err(store_error)?;
    let truncated = uploads.len() > max as usize;
    uploads.truncate(max as usize);
    let (next_key, next_upload) = match (truncated, uploads.last()) {
        (true, Some(u)) => (Some(u.key.clone()), Some(u.upload_id.clone())),
        _ => (None, None),
    };
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_upload,
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    key: Some(u.key),
                    upload_id: Some(u.upload_id),
                    initiated: Some(timestamp(u.created_at)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_number_bounds() {
        assert!(check_part_number(0).is_err());
        assert!(check_part_number(1).is_ok());
        assert!(check_part_number(10_000).is_ok());
        assert_eq!(check_part_number(10_001).unwrap_err().code(), &S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn copy_range_parsing() {
        assert_eq!(parse_copy_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert!(parse_copy_range("bytes=0-10", 10).is_err());
        assert!(parse_copy_range("bytes=5-4", 10).is_err());
        assert!(parse_copy_range("0-4", 10).is_err());
    }
}
