//! Object operations: put, get, head, delete, batch delete, copy.

use std::collections::BTreeMap;

use keyless_store::{ObjectMeta, ObjectRecord, OBJECT_META_FORMAT, StoreError, now_millis};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::bucket::require_bucket;
use super::{auth_context, check_key, timestamp};
use crate::S3State;
use crate::access::KeylessAccess;
use crate::body::{Expected, copy_range, read_range, write_body};
use crate::errors::{no_such_bucket, no_such_key, store_error};

pub fn etag_of(md5: &[u8]) -> String {
    hex::encode(md5)
}

fn etag_value(etag: &str) -> ETag {
    ETag::Strong(etag.to_owned())
}

/// Standard headers stored with an object and returned on GET and HEAD.
struct ContentHeaders {
    cache_control: Option<String>,
    content_disposition: Option<String>,
    content_encoding: Option<String>,
    content_language: Option<String>,
    expires: Option<Timestamp>,
}

fn store_headers(headers: ContentHeaders) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            map.insert(name.to_owned(), value);
        }
    };
    put("cache-control", headers.cache_control);
    put("content-disposition", headers.content_disposition);
    put("content-encoding", headers.content_encoding);
    put("content-language", headers.content_language);
    if let Some(expires) = headers.expires {
        let mut buf = Vec::new();
        if expires.format(TimestampFormat::HttpDate, &mut buf).is_ok() {
            map.insert("expires".to_owned(), String::from_utf8_lossy(&buf).into_owned());
        }
    }
    map
}

/// Returns the stored content type, or `binary/octet-stream` as S3 reports for
/// objects uploaded without one.
fn content_type(meta: &ObjectMeta) -> Option<ContentType> {
    meta.content_type.as_deref().unwrap_or("binary/octet-stream").parse().ok()
}

fn stored_expires(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.headers.get("expires").and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, v).ok())
}

/// Largest user metadata S3 accepts: the names and values of the
/// `x-amz-meta-*` headers together, in bytes.
const MAX_USER_METADATA_BYTES: usize = 2 * 1024;

/// Checks the size of a request's user metadata and returns it for storing.
pub(crate) fn user_metadata(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let metadata = metadata.unwrap_or_default();
    let size: usize = metadata.iter().map(|(name, value)| name.len() + value.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            format!("the x-amz-meta-* headers total {size} bytes; the maximum is {MAX_USER_METADATA_BYTES}"),
        ));
    }
    Ok(metadata.into_iter().collect())
}

pub async fn put_object(state: &S3State, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let mut input = req.input;
    check_key(&input.key)?;
    let user = user_metadata(input.metadata.take())?;
    require_bucket(state, &input.bucket).await?;
    check_put_preconditions(state, &input.bucket, &input.key, input.if_match.as_ref(), input.if_none_match.as_ref()).await?;

    let length = input.content_length.and_then(|n| u64::try_from(n).ok());
    let expected = Expected::from_headers(&req.headers, input.content_md5.clone(), length)?;
    let written = write_body(&state.store.blobs, input.body, &expected, req.trailing_headers.as_ref()).await?;

    let meta = ObjectMeta {
        format: OBJECT_META_FORMAT,
        content_type: input.content_type.map(|m| m.to_string()),
        headers: store_headers(ContentHeaders {
            cache_control: input.cache_control,
            content_disposition: input.content_disposition,
            content_encoding: input.content_encoding,
            content_language: input.content_language,
            expires: input.expires,
        }),
        user,
        checksums: written.checksums.clone(),
        parts_count: None,
    };
    let record = ObjectRecord {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        size: written.blob.size,
        blobs: vec![written.blob.clone()],
        etag: etag_of(&written.md5),
        last_modified: now_millis(),
        meta,
    };
    commit_object(state, &record).await?;

    let mut output = PutObjectOutput { e_tag: Some(etag_value(&record.etag)), ..Default::default() };
    set_checksums(&written.checksums, &mut output.checksum_crc32, &mut output.checksum_crc32c, &mut output.checksum_crc64nvme, &mut output.checksum_sha1, &mut output.checksum_sha256);
    Ok(S3Response::new(output))
}

/// Commits an object row and then deletes the blobs of the version it replaced.
pub(crate) async fn commit_object(state: &S3State, record: &ObjectRecord) -> S3Result<()> {
    match state.store.put_object(record).await {
        Ok(old) => {
            state.store.blobs.delete(&old).await;
            Ok(())
        }
        Err(StoreError::NotFound) => {
            state.store.blobs.delete(&record.blobs).await;
            Err(no_such_bucket(&record.bucket))
        }
        Err(err) => {
            state.store.blobs.delete(&record.blobs).await;
            Err(store_error(err))
        }
    }
}

async fn check_put_preconditions(
    state: &S3State,
    bucket: &str,
    key: &str,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if if_match.is_none() && if_none_match.is_none() {
        return Ok(());
    }
    let current = state.store.object(bucket, key).await.map_err(store_error)?;
    let failed = || S3Error::with_message(S3ErrorCode::PreconditionFailed, "at least one of the preconditions you specified did not hold");
    if let Some(condition) = if_match {
        match &current {
            None => return Err(no_such_key(key)),
            Some(obj) if !etag_condition_matches(condition, &obj.etag) => return Err(failed()),
            _ => {}
        }
    }
    if let Some(condition) = if_none_match
        && current.as_ref().is_some_and(|obj| etag_condition_matches(condition, &obj.etag))
    {
        return Err(failed());
    }
    Ok(())
}

fn etag_condition_matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == etag,
    }
}

fn set_checksums(
    checksums: &BTreeMap<String, String>,
    crc32: &mut Option<String>,
    crc32c: &mut Option<String>,
    crc64nvme: &mut Option<String>,
    sha1: &mut Option<String>,
    sha256: &mut Option<String>,
) {
    *crc32 = checksums.get("crc32").cloned();
    *crc32c = checksums.get("crc32c").cloned();
    *crc64nvme = checksums.get("crc64nvme").cloned();
    *sha1 = checksums.get("sha1").cloned();
    *sha256 = checksums.get("sha256").cloned();
}

async fn load_object(state: &S3State, bucket: &str, key: &str) -> S3Result<ObjectRecord> {
    match state.store.object(bucket, key).await.map_err(store_error)? {
        Some(obj) => Ok(obj),
        None => {
            require_bucket(state, bucket).await?;
            Err(no_such_key(key))
        }
    }
}

/// Applies If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since
/// in the order RFC 9110 §13.2.2 gives.
fn check_read_preconditions(
    obj: &ObjectRecord,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let modified_secs = obj.last_modified.div_euclid(1000);
    let secs = |t: &Timestamp| time::OffsetDateTime::from(t.clone()).unix_timestamp();
    let precondition_failed = || S3Error::with_message(S3ErrorCode::PreconditionFailed, "at least one of the preconditions you specified did not hold");
    let not_modified = || {
        let mut err = S3Error::new(S3ErrorCode::NotModified);
        err.set_status_code(http::StatusCode::NOT_MODIFIED);
        err
    };

    if let Some(condition) = if_match {
        if !etag_condition_matches(condition, &obj.etag) {
            return Err(precondition_failed());
        }
    } else if let Some(since) = if_unmodified_since
        && modified_secs > secs(since)
    {
        return Err(precondition_failed());
    }
    if let Some(condition) = if_none_match {
        if etag_condition_matches(condition, &obj.etag) {
            return Err(not_modified());
        }
    } else if let Some(since) = if_modified_since
        && modified_secs <= secs(since)
    {
        return Err(not_modified());
    }
    Ok(())
}

fn etag_header(obj: &ObjectRecord) -> ETag {
    match obj.meta.parts_count {
        Some(n) if !obj.etag.contains('-') => etag_value(&format!("{}-{n}", obj.etag)),
        _ => etag_value(&obj.etag),
    }
}

/// Resolves a Range header against an object of `size` bytes. A range that
/// selects no byte, such as any range of an empty object, is not satisfiable:
/// a 206 response would send a Content-Range naming a byte the object lacks.
fn satisfiable_range(range: &Range, size: u64) -> S3Result<std::ops::Range<u64>> {
    match range.check(size) {
        Ok(r) if r.start < r.end => Ok(r),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidRange,
            format!("the requested range is not satisfiable for an object of {size} bytes"),
        )),
    }
}

pub async fn get_object(state: &S3State, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let input = req.input;
    let obj = load_object(state, &input.bucket, &input.key).await?;
    check_read_preconditions(&obj, input.if_match.as_ref(), input.if_none_match.as_ref(), input.if_modified_since.as_ref(), input.if_unmodified_since.as_ref())?;
    if input.part_number.is_some() {
        return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "GetObject by partNumber is not supported; use a Range"));
    }

    let (start, len, content_range) = match &input.range {
        None => (0, obj.size, None),
        Some(range) => {
            let r = satisfiable_range(range, obj.size)?;
            (r.start, r.end - r.start, Some(format!("bytes {}-{}/{}", r.start, r.end - 1, obj.size)))
        }
    };

    let stream = read_range(state.store.blobs.clone(), obj.blobs.clone(), start, len);
    let mut output = GetObjectOutput {
        body: Some(StreamingBlob::wrap(stream)),
        content_length: Some(len as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag_header(&obj)),
        last_modified: Some(timestamp(obj.last_modified)),
        content_type: content_type(&obj.meta),
        cache_control: input.response_cache_control.or_else(|| obj.meta.headers.get("cache-control").cloned()),
        content_disposition: input.response_content_disposition.or_else(|| obj.meta.headers.get("content-disposition").cloned()),
        content_encoding: input.response_content_encoding.or_else(|| obj.meta.headers.get("content-encoding").cloned()),
        content_language: input.response_content_language.or_else(|| obj.meta.headers.get("content-language").cloned()),
        expires: input.response_expires.or_else(|| stored_expires(&obj.meta)),
        metadata: Some(obj.meta.user.clone().into_iter().collect()),
        parts_count: obj.meta.parts_count.map(|n| n as i32),
        ..Default::default()
    };
    if let Some(content_type) = input.response_content_type {
        output.content_type = Some(content_type);
    }
    if input.range.is_none() && input.checksum_mode.as_ref().is_some_and(|m| m.as_str() == ChecksumMode::ENABLED) {
        set_checksums(&obj.meta.checksums, &mut output.checksum_crc32, &mut output.checksum_crc32c, &mut output.checksum_crc64nvme, &mut output.checksum_sha1, &mut output.checksum_sha256);
    }
    let status = if output.content_range.is_some() { http::StatusCode::PARTIAL_CONTENT } else { http::StatusCode::OK };
    Ok(S3Response::with_status(output, status))
}

pub async fn head_object(state: &S3State, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let input = req.input;
    let obj = load_object(state, &input.bucket, &input.key).await?;
    check_read_preconditions(&obj, input.if_match.as_ref(), input.if_none_match.as_ref(), input.if_modified_since.as_ref(), input.if_unmodified_since.as_ref())?;
    let (len, content_range) = match &input.range {
        None => (obj.size, None),
        Some(range) => {
            let r = satisfiable_range(range, obj.size)?;
            (r.end - r.start, Some(format!("bytes {}-{}/{}", r.start, r.end - 1, obj.size)))
        }
    };
    let mut output = HeadObjectOutput {
        content_length: Some(len as i64),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag_header(&obj)),
        last_modified: Some(timestamp(obj.last_modified)),
        content_type: content_type(&obj.meta),
        cache_control: obj.meta.headers.get("cache-control").cloned(),
        content_disposition: obj.meta.headers.get("content-disposition").cloned(),
        content_encoding: obj.meta.headers.get("content-encoding").cloned(),
        content_language: obj.meta.headers.get("content-language").cloned(),
        expires: stored_expires(&obj.meta),
        metadata: Some(obj.meta.user.clone().into_iter().collect()),
        parts_count: obj.meta.parts_count.map(|n| n as i32),
        ..Default::default()
    };
    if input.checksum_mode.as_ref().is_some_and(|m| m.as_str() == ChecksumMode::ENABLED) {
        set_checksums(&obj.meta.checksums, &mut output.checksum_crc32, &mut output.checksum_crc32c, &mut output.checksum_crc64nvme, &mut output.checksum_sha1, &mut output.checksum_sha256);
    }
    // s3s sends 200 for every HeadObject, so S3Front turns a ranged one into 206.
    Ok(S3Response::new(output))
}

pub async fn delete_object(state: &S3State, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
    let input = req.input;
    require_bucket(state, &input.bucket).await?;
    // Deleting a missing key succeeds, as in S3.
    let old = state.store.delete_object(&input.bucket, &input.key).await.map_err(store_error)?;
    state.store.blobs.delete(&old).await;
    Ok(S3Response::with_status(DeleteObjectOutput::default(), http::StatusCode::NO_CONTENT))
}

/// Most keys one DeleteObjects request may name, as in S3.
const MAX_DELETE_KEYS: usize = 1000;

pub async fn delete_objects(state: &S3State, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let cx = auth_context(&req)?.clone();
    let input = req.input;
    require_bucket(state, &input.bucket).await?;
    if input.delete.objects.len() > MAX_DELETE_KEYS {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            format!("the request names {} keys; at most {MAX_DELETE_KEYS} are allowed", input.delete.objects.len()),
        ));
    }
    let quiet = input.delete.quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for object in input.delete.objects {
        let key = object.key;
        let resource = format!("{}/{key}", input.bucket);
        if !KeylessAccess::allowed(state, &cx, "s3:DeleteObject", &resource).await {
            errors.push(Error { code: Some("AccessDenied".into()), key: Some(key), message: Some("access denied".into()), version_id: None });
            continue;
        }
        match state.store.delete_object(&input.bucket, &key).await {
            Ok(old) => {
                state.store.blobs.delete(&old).await;
                if !quiet {
                    deleted.push(DeletedObject { key: Some(key), ..Default::default() });
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "delete in batch failed");
                errors.push(Error { code: Some("InternalError".into()), key: Some(key), message: Some("internal error".into()), version_id: None });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() }))
}

pub async fn copy_object(state: &S3State, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let input = req.input;
    check_key(&input.key)?;
    require_bucket(state, &input.bucket).await?;
    let CopySource::Bucket { bucket: src_bucket, key: src_key, version_id } = &input.copy_source else {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "x-amz-copy-source must name <bucket>/<key>"));
    };
    if version_id.is_some() {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "versioned copy sources are not supported: versioning is off"));
    }
    let source = load_object(state, src_bucket, src_key).await?;
    check_copy_preconditions(&source, &input.copy_source_if_match, &input.copy_source_if_none_match, &input.copy_source_if_modified_since, &input.copy_source_if_unmodified_since)?;

    let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if !replace && **src_bucket == *input.bucket && **src_key == *input.key {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "copying an object onto itself needs a metadata change: set x-amz-metadata-directive to REPLACE",
        ));
    }

    let written = copy_range(&state.store.blobs, &source.blobs, 0, source.size).await?;
    let meta = if replace {
        ObjectMeta {
            format: OBJECT_META_FORMAT,
            content_type: input.content_type.map(|m| m.to_string()),
            headers: store_headers(ContentHeaders {
                cache_control: input.cache_control,
                content_disposition: input.content_disposition,
                content_encoding: input.content_encoding,
                content_language: input.content_language,
                expires: input.expires,
            }),
            user: user_metadata(input.metadata)?,
            checksums: source.meta.checksums.clone(),
            parts_count: None,
        }
    } else {
        ObjectMeta { parts_count: None, ..source.meta.clone() }
    };
    let record = ObjectRecord {
        bucket: input.bucket.clone(),
        key: input.key.clone(),
        size: written.blob.size,
        blobs: vec![written.blob],
        etag: etag_of(&written.md5),
        last_modified: now_millis(),
        meta,
    };
    commit_object(state, &record).await?;
    let result = CopyObjectResult { e_tag: Some(etag_value(&record.etag)), last_modified: Some(timestamp(record.last_modified)), ..Default::default() };
    Ok(S3Response::new(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() }))
}

pub(crate) fn check_copy_preconditions(
    source: &ObjectRecord,
    if_match: &Option<ETagCondition>,
    if_none_match: &Option<ETagCondition>,
    if_modified_since: &Option<Timestamp>,
    if_unmodified_since: &Option<Timestamp>,
) -> S3Result<()> {
    // For copies every failed condition is 412, including the ones that would
    // be 304 on a GET.
    check_read_preconditions(source, if_match.as_ref(), if_none_match.as_ref(), if_modified_since.as_ref(), if_unmodified_since.as_ref())
        .map_err(|_| S3Error::with_message(S3ErrorCode::PreconditionFailed, "a copy-source precondition did not hold"))
}
