//! Streaming request bodies into blobs, and blobs back out as response bodies.
//!
//! Memory use is flat in object size: a body is written as it arrives, and read
//! back in fixed-size chunks.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use keyless_store::{BlobRef, BlobStore};
use md5::{Digest, Md5};
use s3s::checksum::ChecksumHasher;
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::errors::{body_error, store_error};

/// Checksum algorithms S3 clients send, by their header suffix.
pub const CHECKSUM_ALGORITHMS: &[&str] = &["crc32", "crc32c", "crc64nvme", "sha1", "sha256"];

/// Facts the client declared about the body, verified once it is read.
#[derive(Debug, Default)]
pub struct Expected {
    /// Base64 MD5 from `Content-MD5`.
    pub content_md5: Option<String>,
    /// Declared length, when known.
    pub length: Option<u64>,
    /// Checksums sent as headers, by algorithm.
    pub checksums: BTreeMap<String, String>,
    /// Algorithms whose checksum arrives in the trailer.
    pub trailer_algorithms: Vec<String>,
    /// An algorithm to compute and store even though no value was sent.
    pub requested_algorithm: Option<String>,
}

impl Expected {
    /// Reads `x-amz-checksum-*`, `x-amz-trailer` and `x-amz-sdk-checksum-algorithm`
    /// (or `x-amz-checksum-algorithm`) from the request headers.
    pub fn from_headers(headers: &http::HeaderMap, content_md5: Option<String>, length: Option<u64>) -> S3Result<Self> {
        let mut expected = Expected { content_md5, length, ..Default::default() };
        for alg in CHECKSUM_ALGORITHMS {
            if let Some(value) = headers.get(format!("x-amz-checksum-{alg}")) {
                let value = value.to_str().map_err(|_| invalid_digest(alg))?;
                expected.checksums.insert((*alg).to_owned(), value.to_owned());
            }
        }
        if let Some(trailer) = headers.get("x-amz-trailer") {
            let trailer = trailer.to_str().unwrap_or("").trim().to_ascii_lowercase();
            match trailer.strip_prefix("x-amz-checksum-") {
                Some(alg) if CHECKSUM_ALGORITHMS.contains(&alg) => expected.trailer_algorithms.push(alg.to_owned()),
                _ => {
                    return Err(S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        format!("x-amz-trailer {trailer:?} is not supported: expected x-amz-checksum-<crc32|crc32c|crc64nvme|sha1|sha256>"),
                    ));
                }
            }
        }
        for name in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
            if let Some(value) = headers.get(name) {
                let alg = value.to_str().unwrap_or("").to_ascii_lowercase();
                if !CHECKSUM_ALGORITHMS.contains(&alg.as_str()) {
                    return Err(S3Error::with_message(S3ErrorCode::InvalidRequest, format!("{name} {alg:?} is not supported")));
                }
                expected.requested_algorithm = Some(alg);
            }
        }
        Ok(expected)
    }

    fn algorithms(&self) -> Vec<String> {
        let mut algs: Vec<String> = self.checksums.keys().cloned().collect();
        algs.extend(self.trailer_algorithms.iter().cloned());
        algs.extend(self.requested_algorithm.iter().cloned());
        algs.sort();
        algs.dedup();
        algs
    }
}

fn invalid_digest(alg: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidDigest, format!("the x-amz-checksum-{alg} value is not valid base64"))
}

/// A body written to a durable blob and verified against what was declared.
pub struct Written {
    pub blob: BlobRef,
    pub md5: [u8; 16],
    pub checksums: BTreeMap<String, String>,
}

/// A client that sends no body bytes for this long gets RequestTimeout, so a
/// stalled upload cannot keep its temporary blob file open forever.
const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Streams `body` into a new blob, verifying length, Content-MD5 and checksums.
/// On any failure the blob is discarded and nothing becomes visible.
pub async fn write_body(
    blobs: &BlobStore,
    body: Option<StreamingBlob>,
    expected: &Expected,
    trailers: Option<&TrailingHeaders>,
) -> S3Result<Written> {
    if let Some(declared) = &expected.content_md5
        && B64.decode(declared).map(|d| d.len()) != Ok(16)
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidDigest,
            "the Content-MD5 you specified is not valid: expected the base64 of a 16-byte MD5 digest",
        ));
    }
    for (alg, value) in &expected.checksums {
        if B64.decode(value).is_err() {
            return Err(invalid_digest(alg));
        }
    }
    let mut writer = blobs.create().await.map_err(store_error)?;
    let mut md5 = Md5::new();
    let mut hasher = new_hasher(&expected.algorithms());

    if let Some(mut body) = body {
        loop {
            let Ok(next) = tokio::time::timeout(BODY_IDLE_TIMEOUT, body.next()).await else {
                return Err(S3Error::with_message(
                    S3ErrorCode::RequestTimeout,
                    format!("no body bytes arrived for {} s; send the request again", BODY_IDLE_TIMEOUT.as_secs()),
                ));
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|err| body_error(err.as_ref()))?;
            md5.update(&chunk);
            hasher.update(&chunk);
            writer.write(&chunk).await.map_err(store_error)?;
        }
    }

    if let Some(length) = expected.length
        && writer.size() != length
    {
        return Err(S3Error::with_message(
            S3ErrorCode::IncompleteBody,
            format!("the body has {} bytes but {length} were declared", writer.size()),
        ));
    }
    let md5: [u8; 16] = md5.finalize().into();
    if let Some(declared) = &expected.content_md5
        && B64.decode(declared).ok().as_deref() != Some(&md5[..])
    {
        return Err(S3Error::with_message(S3ErrorCode::BadDigest, "the Content-MD5 you specified did not match what was received"));
    }

    let computed = checksum_map(hasher.finalize());
    let mut declared = expected.checksums.clone();
    if !expected.trailer_algorithms.is_empty() {
        let trailer_values = trailers.and_then(|t| t.take());
        for alg in &expected.trailer_algorithms {
            let value = trailer_values
                .as_ref()
                .and_then(|h| h.get(format!("x-amz-checksum-{alg}")))
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    S3Error::with_message(S3ErrorCode::InvalidRequest, format!("the trailer x-amz-checksum-{alg} was announced but not sent"))
                })?;
            declared.insert(alg.clone(), value.to_owned());
        }
    }
    for (alg, value) in &declared {
        if computed.get(alg) != Some(value) {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("the {alg} checksum you specified did not match what was received"),
            ));
        }
    }

    let blob = writer.finish().await.map_err(store_error)?;
    Ok(Written { blob, md5, checksums: computed })
}

fn new_hasher(algorithms: &[String]) -> ChecksumHasher {
    let mut hasher = ChecksumHasher::default();
    for alg in algorithms {
        match alg.as_str() {
            "crc32" => hasher.crc32 = Some(Default::default()),
            "crc32c" => hasher.crc32c = Some(Default::default()),
            "crc64nvme" => hasher.crc64nvme = Some(Default::default()),
            "sha1" => hasher.sha1 = Some(Default::default()),
            "sha256" => hasher.sha256 = Some(Default::default()),
            _ => {}
        }
    }
    hasher
}

fn checksum_map(sum: s3s::dto::Checksum) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (alg, value) in [
        ("crc32", sum.checksum_crc32),
        ("crc32c", sum.checksum_crc32c),
        ("crc64nvme", sum.checksum_crc64nvme),
        ("sha1", sum.checksum_sha1),
        ("sha256", sum.checksum_sha256),
    ] {
        if let Some(value) = value {
            map.insert(alg.to_owned(), value);
        }
    }
    map
}

/// Copies a byte range of existing blobs into a new blob (CopyObject, UploadPartCopy).
pub async fn copy_range(blobs: &BlobStore, source: &[BlobRef], start: u64, len: u64) -> S3Result<Written> {
    let stream = read_range(blobs.clone(), source.to_vec(), start, len);
    let body = StreamingBlob::wrap(stream);
    write_body(blobs, Some(body), &Expected { length: Some(len), ..Default::default() }, None).await
}

/// Reads `len` bytes starting at `start` across a sequence of blobs.
pub fn read_range(
    blobs: BlobStore,
    parts: Vec<BlobRef>,
    start: u64,
    len: u64,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    // Work out which blob segments the range covers.
    let mut segments = Vec::new();
    let mut offset = 0u64;
    let end = start + len;
    for part in parts {
        let part_start = offset;
        let part_end = offset + part.size;
        offset = part_end;
        if part_end <= start || part_start >= end {
            continue;
        }
        let from = start.max(part_start) - part_start;
        let to = end.min(part_end) - part_start;
        segments.push((part.id, from, to - from));
    }

    futures::stream::iter(segments)
        .then(move |(id, from, count)| {
            let blobs = blobs.clone();
            async move {
                let mut file = blobs.open_read(&id).await.map_err(|err| std::io::Error::other(err.to_string()))?;
                file.seek(std::io::SeekFrom::Start(from)).await?;
                Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 * 1024))
            }
        })
        .try_flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stalled_upload_times_out() {
        let dir = std::env::temp_dir().join(format!("keyless-s3-body-{}", uuid::Uuid::new_v4().simple()));
        let blobs = BlobStore::open(&dir).await.unwrap();
        // One chunk, then a client that sends nothing more.
        let stalled = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"first"))]).chain(futures::stream::pending());
        let expected = Expected { length: Some(10), ..Default::default() };
        let started = tokio::time::Instant::now();
        let Err(err) = write_body(&blobs, Some(StreamingBlob::wrap(stalled)), &expected, None).await else {
            panic!("a stalled upload must fail");
        };
        assert_eq!(*err.code(), S3ErrorCode::RequestTimeout);
        assert_eq!(started.elapsed(), BODY_IDLE_TIMEOUT);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
