//! The S3 operations, one file per family, on top of `keyless_store`.
//!
//! Every operation here runs after `access::KeylessAccess::check` allowed it;
//! the `AuthContext` it left in the request extensions says for whom.

mod bucket;
mod list;
mod multipart;
mod object;

use std::sync::Arc;

use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::S3State;
use crate::access::AuthContext;

pub struct KeylessS3 {
    pub state: Arc<S3State>,
}

/// Maximum object key length S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

pub use bucket::RESERVED_PREFIX as RESERVED_BUCKET_PREFIX;

pub(crate) fn auth_context<T>(req: &S3Request<T>) -> S3Result<&AuthContext> {
    req.extensions
        .get::<AuthContext>()
        .ok_or_else(|| S3Error::with_message(S3ErrorCode::AccessDenied, "request was not authorized"))
}

pub(crate) fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::KeyTooLongError,
            format!("the key is {} bytes long; the maximum is {MAX_KEY_BYTES}", key.len()),
        ));
    }
    if key.is_empty() {
        return Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "the key must not be empty"));
    }
    Ok(())
}

pub(crate) fn timestamp(millis: i64) -> Timestamp {
    let nanos = i128::from(millis) * 1_000_000;
    Timestamp::from(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH))
}

#[async_trait::async_trait]
impl S3 for KeylessS3 {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        bucket::list_buckets(&self.state, req).await
    }
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        bucket::create_bucket(&self.state, req).await
    }
    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        bucket::delete_bucket(&self.state, req).await
    }
    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        bucket::head_bucket(&self.state, req).await
    }
    async fn get_bucket_location(&self, req: S3Request<GetBucketLocationInput>) -> S3Result<S3Response<GetBucketLocationOutput>> {
        bucket::get_bucket_location(&self.state, req).await
    }
    async fn get_bucket_policy(&self, req: S3Request<GetBucketPolicyInput>) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        bucket::get_bucket_policy(&self.state, req).await
    }
    async fn put_bucket_policy(&self, req: S3Request<PutBucketPolicyInput>) -> S3Result<S3Response<PutBucketPolicyOutput>> {
        bucket::put_bucket_policy(&self.state, req).await
    }
    async fn delete_bucket_policy(&self, req: S3Request<DeleteBucketPolicyInput>) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
        bucket::delete_bucket_policy(&self.state, req).await
    }
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        object::put_object(&self.state, req).await
    }
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        object::get_object(&self.state, req).await
    }
    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        object::head_object(&self.state, req).await
    }
    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        object::delete_object(&self.state, req).await
    }
    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        object::delete_objects(&self.state, req).await
    }
    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        object::copy_object(&self.state, req).await
    }
    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        list::list_objects(&self.state, req).await
    }
    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        list::list_objects_v2(&self.state, req).await
    }
    async fn create_multipart_upload(&self, req: S3Request<CreateMultipartUploadInput>) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        multipart::create_multipart_upload(&self.state, req).await
    }
    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        multipart::upload_part(&self.state, req).await
    }
    async fn upload_part_copy(&self, req: S3Request<UploadPartCopyInput>) -> S3Result<S3Response<UploadPartCopyOutput>> {
        multipart::upload_part_copy(&self.state, req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        multipart::complete_multipart_upload(&self.state, req).await
    }
    async fn abort_multipart_upload(&self, req: S3Request<AbortMultipartUploadInput>) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort_multipart_upload(&self.state, req).await
    }
    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        multipart::list_parts(&self.state, req).await
    }
    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        multipart::list_multipart_uploads(&self.state, req).await
    }
}
