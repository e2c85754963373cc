//! The one table from S3 operation to IAM action and resource kind.
//!
//! Every S3 request is authorized through `s3_operation`: an operation that is
//! not in the table has no action, and the S3 front end denies it before it can
//! reach storage. Control-plane actions are listed in `cwobject`.

/// What an action applies to, which decides the resource string it is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// Global actions take the resource `*`.
    Global,
    /// Bucket actions take `<bucket>`.
    Bucket,
    /// Object actions take `<bucket>/<key>`.
    Object,
}

/// An S3 operation's IAM action and resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationAction {
    pub action: &'static str,
    pub kind: ResourceKind,
}

const fn op(action: &'static str, kind: ResourceKind) -> OperationAction {
    OperationAction { action, kind }
}

/// Every S3 operation keyless serves, by the operation name s3s resolves, with
/// its IAM action. CopyObject and UploadPartCopy also need `s3:GetObject` on the
/// source, and DeleteObjects needs `s3:DeleteObject` on each key: the S3 front end
/// checks those extra resources once the request body is parsed.
pub const S3_OPERATIONS: &[(&str, OperationAction)] = {
    use ResourceKind::{Bucket, Global, Object};
    &[
        ("ListBuckets", op("s3:ListAllMyBuckets", Global)),
        ("CreateBucket", op("s3:CreateBucket", Bucket)),
        ("DeleteBucket", op("s3:DeleteBucket", Bucket)),
        ("HeadBucket", op("s3:ListBucket", Bucket)),
        ("GetBucketLocation", op("s3:GetBucketLocation", Bucket)),
        ("ListObjects", op("s3:ListBucket", Bucket)),
        ("ListObjectsV2", op("s3:ListBucket", Bucket)),
        ("ListMultipartUploads", op("s3:ListBucketMultipartUploads", Bucket)),
        ("GetBucketPolicy", op("s3:GetBucketPolicy", Bucket)),
        ("PutBucketPolicy", op("s3:PutBucketPolicy", Bucket)),
        ("DeleteBucketPolicy", op("s3:DeleteBucketPolicy", Bucket)),
        ("PutObject", op("s3:PutObject", Object)),
        ("PostObject", op("s3:PutObject", Object)),
        ("CopyObject", op("s3:PutObject", Object)),
        ("GetObject", op("s3:GetObject", Object)),
        ("HeadObject", op("s3:GetObject", Object)),
        ("DeleteObject", op("s3:DeleteObject", Object)),
        ("DeleteObjects", op("s3:DeleteObject", Bucket)),
        ("CreateMultipartUpload", op("s3:PutObject", Object)),
        ("UploadPart", op("s3:PutObject", Object)),
        ("UploadPartCopy", op("s3:PutObject", Object)),
        ("CompleteMultipartUpload", op("s3:PutObject", Object)),
        ("AbortMultipartUpload", op("s3:AbortMultipartUpload", Object)),
        ("ListParts", op("s3:ListMultipartUploadParts", Object)),
    ]
};

/// Looks up the IAM action of an S3 operation; `None` means keyless does not
/// serve it and the request must be denied.
pub fn s3_operation(name: &str) -> Option<OperationAction> {
    S3_OPERATIONS.iter().find(|(op, _)| *op == name).map(|(_, action)| *action)
}

/// Control-plane actions. All are global and checked on resource `*`.
pub mod cwobject {
    pub const CREATE_ACCESS_KEY: &str = "cwobject:CreateAccessKey";
    pub const CREATE_ACCESS_KEY_OIDC: &str = "cwobject:CreateAccessKeyOIDC";
    pub const CREATE_ACCESS_KEY_SAML: &str = "cwobject:CreateAccessKeySAML";
    pub const LIST_ACCESS_KEY_INFO: &str = "cwobject:ListAccessKeyInfo";
    pub const REVOKE_ACCESS_KEY: &str = "cwobject:RevokeAccessKey";
    pub const UPDATE_ACCESS_KEY_STATUS: &str = "cwobject:UpdateAccessKeyStatus";
    pub const ENSURE_ACCESS_POLICY: &str = "cwobject:EnsureAccessPolicy";
    pub const LIST_ACCESS_POLICY: &str = "cwobject:ListAccessPolicy";
    pub const DELETE_ACCESS_POLICY: &str = "cwobject:DeleteAccessPolicy";
    pub const CREATE_WIF_CONFIG: &str = "cwobject:CreateWorkloadIdentityConfig";
    pub const LIST_WIF_CONFIG: &str = "cwobject:ListWorkloadIdentityConfig";
    pub const DELETE_WIF_CONFIG: &str = "cwobject:DeleteWorkloadIdentityConfig";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicate_operations() {
        for (i, (name, _)) in S3_OPERATIONS.iter().enumerate() {
            assert!(S3_OPERATIONS[i + 1..].iter().all(|(other, _)| other != name), "{name} listed twice");
        }
    }

    #[test]
    fn unknown_operation_has_no_action() {
        assert_eq!(s3_operation("PutBucketAcl"), None);
        assert_eq!(s3_operation("GetObject").map(|a| a.action), Some("s3:GetObject"));
    }
}
