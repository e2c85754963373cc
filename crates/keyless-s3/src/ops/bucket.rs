//! Bucket operations: list, create, delete, head, location, policy.

use keyless_store::StoreError;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::{auth_context, timestamp};
use crate::S3State;
use crate::errors::{no_such_bucket, store_error};

/// Prefix of bucket names the system reserves (audit buckets and the like).
pub const RESERVED_PREFIX: &str = "keyless-";

/// Checks the S3 bucket naming rules: 3 to 63 characters of lowercase letters,
/// digits, '-' and '.', starting and ending with a letter or digit, not shaped
/// like an IP address, and not in the reserved `keyless-` namespace.
pub fn check_bucket_name(name: &str) -> S3Result<()> {
    let invalid = |rule: &str| S3Error::with_message(S3ErrorCode::InvalidBucketName, format!("the bucket name {name:?} is invalid: {rule}"));
    if !(3..=63).contains(&name.len()) {
        return Err(invalid("it must be 3 to 63 characters long"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return Err(invalid("only lowercase letters, digits, '-' and '.' are allowed"));
    }
    let first_last_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !first_last_ok(name.as_bytes()[0]) || !first_last_ok(name.as_bytes()[name.len() - 1]) {
        return Err(invalid("it must start and end with a letter or digit"));
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return Err(invalid("'.' must not be next to another '.' or '-'"));
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(invalid("it must not be formatted as an IP address"));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(invalid("the prefix \"keyless-\" is reserved for the system"));
    }
    Ok(())
}

pub async fn list_buckets(state: &S3State, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
    let cx = auth_context(&req)?;
    let buckets = state.store.list_buckets(&cx.org).await.map_err(store_error)?;
    let buckets = buckets
        .into_iter()
        .map(|b| Bucket { name: Some(b.name), creation_date: Some(timestamp(b.created_at)), ..Default::default() })
        .collect();
    let owner = Owner { id: Some(cx.org.clone()), display_name: Some(cx.org.clone()) };
    Ok(S3Response::new(ListBucketsOutput { buckets: Some(buckets), owner: Some(owner), ..Default::default() }))
}

pub async fn create_bucket(state: &S3State, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
    let cx = auth_context(&req)?;
    let bucket = &req.input.bucket;
    check_bucket_name(bucket)?;
    if let Some(constraint) = req.input.create_bucket_configuration.as_ref().and_then(|c| c.location_constraint.as_ref())
        && constraint.as_str() != state.settings.region
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidLocationConstraint,
            format!("the location constraint {:?} is not this server's region {:?}", constraint.as_str(), state.settings.region),
        ));
    }
    match state.store.create_bucket(bucket, &cx.org).await {
        Ok(()) => {
            // The authorizer caches bucket owners, and "no such bucket" too.
            state.authorizer.forget_bucket(bucket);
            Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{bucket}")) }))
        }
        Err(StoreError::Conflict(owner)) if owner == cx.org => Err(S3Error::with_message(
            S3ErrorCode::BucketAlreadyOwnedByYou,
            format!("the bucket {bucket:?} already exists and belongs to your organization"),
        )),
        Err(StoreError::Conflict(_)) => Err(S3Error::with_message(S3ErrorCode::BucketAlreadyExists, format!("the bucket name {bucket:?} is taken"))),
        Err(err) => Err(store_error(err)),
    }
}

pub async fn delete_bucket(state: &S3State, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
    let bucket = &req.input.bucket;
    match state.store.delete_bucket(bucket).await {
        Ok(()) => {
            state.authorizer.forget_bucket(bucket);
            Ok(S3Response::new(DeleteBucketOutput {}))
        }
        Err(StoreError::NotFound) => Err(no_such_bucket(bucket)),
        Err(StoreError::Conflict(_)) => Err(S3Error::with_message(
            S3ErrorCode::BucketNotEmpty,
            format!("the bucket {bucket:?} still holds objects or multipart uploads"),
        )),
        Err(err) => Err(store_error(err)),
    }
}

pub async fn head_bucket(state: &S3State, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
    require_bucket(state, &req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(state.settings.region.clone()), ..Default::default() }))
}

pub async fn get_bucket_location(state: &S3State, req: S3Request<GetBucketLocationInput>) -> S3Result<S3Response<GetBucketLocationOutput>> {
    require_bucket(state, &req.input.bucket).await?;
    // AWS reports us-east-1 as an empty location constraint.
    let location = (state.settings.region != "us-east-1").then(|| BucketLocationConstraint::from(state.settings.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput { location_constraint: location }))
}

pub async fn get_bucket_policy(state: &S3State, req: S3Request<GetBucketPolicyInput>) -> S3Result<S3Response<GetBucketPolicyOutput>> {
    let bucket = require_bucket(state, &req.input.bucket).await?;
    match bucket.policy {
        Some(policy) => Ok(S3Response::new(GetBucketPolicyOutput { policy: Some(policy) })),
        None => Err(S3Error::with_message(S3ErrorCode::NoSuchBucketPolicy, format!("the bucket {:?} has no policy", req.input.bucket))),
    }
}

pub async fn put_bucket_policy(state: &S3State, req: S3Request<PutBucketPolicyInput>) -> S3Result<S3Response<PutBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    require_bucket(state, bucket).await?;
    if let Err(err) = keyless_policy::BucketPolicy::parse(&req.input.policy, bucket) {
        return Err(S3Error::with_message(S3ErrorCode::MalformedPolicy, err.to_string()));
    }
    match state.store.set_bucket_policy(bucket, Some(&req.input.policy)).await {
        Ok(()) => {
            state.authorizer.forget_bucket(bucket);
            Ok(S3Response::new(PutBucketPolicyOutput {}))
        }
        Err(StoreError::NotFound) => Err(no_such_bucket(bucket)),
        Err(err) => Err(store_error(err)),
    }
}

pub async fn delete_bucket_policy(state: &S3State, req: S3Request<DeleteBucketPolicyInput>) -> S3Result<S3Response<DeleteBucketPolicyOutput>> {
    let bucket = &req.input.bucket;
    match state.store.set_bucket_policy(bucket, None).await {
        Ok(()) => {
            state.authorizer.forget_bucket(bucket);
            Ok(S3Response::new(DeleteBucketPolicyOutput {}))
        }
        Err(StoreError::NotFound) => Err(no_such_bucket(bucket)),
        Err(err) => Err(store_error(err)),
    }
}

pub(crate) async fn require_bucket(state: &S3State, bucket: &str) -> S3Result<keyless_store::BucketRecord> {
    state.store.bucket(bucket).await.map_err(store_error)?.ok_or_else(|| no_such_bucket(bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_name_rules() {
        for ok in ["abc", "data-1", "a.b.c", &"a".repeat(63)] {
            assert!(check_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", &"a".repeat(64), "Upper", "-x1", "x1-", "a..b", "a.-b", "192.168.1.1", "keyless-foo", "under_score"] {
            assert_eq!(check_bucket_name(bad).unwrap_err().code(), &S3ErrorCode::InvalidBucketName, "{bad}");
        }
    }
}
