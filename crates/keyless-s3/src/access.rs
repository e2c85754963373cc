//! Authentication and authorization of S3 requests: the verified caller, then
//! the policy decision for the operation's action and resource.

use std::sync::Arc;

use keyless_auth::Caller;
use keyless_policy::actions::{ResourceKind, s3_operation};
use keyless_policy::DecisionReason;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopySource, CopyObjectInput, DeleteObjectsInput, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Result};

use crate::errors::{key_error, store_error};
use crate::front::{AccessSlot, RequestId};
use crate::S3State;

/// The verified caller, stored in the request extensions by `check`. `None`
/// inside means an anonymous request.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub caller: Option<Caller>,
    /// The org the request acts in: the bucket's org, or the caller's for
    /// requests that name no existing bucket.
    pub org: String,
    /// Request id and client address, for logs and audit events.
    pub request_id: String,
    pub client: Option<std::net::SocketAddr>,
    /// Condition keys of the request.
    pub context: keyless_policy::Context,
}

pub struct KeylessAuth {
    pub state: Arc<S3State>,
}

#[async_trait::async_trait]
impl S3Auth for KeylessAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let secret = self.state.credentials.secret_for(access_key).await.map_err(key_error)?;
        Ok(SecretKey::from(secret.expose()))
    }
}

pub struct KeylessAccess {
    pub state: Arc<S3State>,
}

impl KeylessAccess {
    /// Checks one action on one resource for the request's caller.
    async fn require(&self, cx: &AuthContext, action: &str, resource: &str) -> S3Result<()> {
        let principal = cx.caller.as_ref().map(|c| c.principal.as_str());
        let decision = self.state.authorizer.authorize_caller(&cx.org, cx.caller.as_ref(), action, resource, &cx.context).await;
        if decision.allowed {
            return Ok(());
        }
        // The reason class is safe to show; policy text is not.
        let reason = match &decision.decision.reason {
            DecisionReason::ExplicitDeny { policy, statement } => {
                format!("explicitly denied by statement {statement:?} of policy {policy:?}")
            }
            DecisionReason::OtherOrganization { .. } => "the bucket belongs to another organization".to_owned(),
            _ => "no policy allows it".to_owned(),
        };
        let who = principal.unwrap_or("an anonymous caller");
        tracing::info!(request_id = %cx.request_id, client = ?cx.client, principal = who, action, resource, reason, "s3 request denied");
        Err(S3Error::with_message(S3ErrorCode::AccessDenied, format!("{who} may not perform {action} on {resource:?}: {reason}")))
    }
}

impl KeylessAccess {
    /// Checks `s3:GetObject` on the source of a copy. Only the policies of
    /// `cx.org`, the destination bucket's org, are evaluated, so a source
    /// bucket of another org is rejected before that check.
    async fn require_copy_source(&self, cx: &AuthContext, source: &CopySource) -> S3Result<()> {
        let (bucket, resource) = copy_source(source)?;
        let source_org = self.state.store.bucket(bucket).await.map_err(store_error)?.map(|b| b.org_id);
        if let Some(source_org) = source_org
            && source_org != cx.org
        {
            let who = cx.caller.as_ref().map_or("an anonymous caller", |c| c.principal.as_str());
            tracing::info!(request_id = %cx.request_id, principal = who, org = %cx.org, source_org = %source_org, bucket, "copy from another org's bucket denied");
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                format!("the copy source bucket {bucket:?} belongs to another organization"),
            ));
        }
        self.require(cx, "s3:GetObject", &resource).await
    }
}

fn context(extensions: &http::Extensions) -> S3Result<&AuthContext> {
    extensions.get::<AuthContext>().ok_or_else(|| S3Error::with_message(S3ErrorCode::AccessDenied, "request was not authorized"))
}

fn copy_source(source: &CopySource) -> S3Result<(&str, String)> {
    match source {
        CopySource::Bucket { bucket, key, .. } => Ok((bucket, format!("{bucket}/{key}"))),
        _ => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "x-amz-copy-source must name <bucket>/<key>; access points are not supported")),
    }
}

impl KeylessAccess {
    async fn check_request(&self, cx: &mut S3AccessContext<'_>, slot: &AccessSlot) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        let op = op.as_str();
        let (path_bucket, path_key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        slot.update(|r| {
            r.operation = Some(op.to_owned());
            r.bucket = path_bucket.clone();
            r.key = path_key.clone();
            r.access_key_id = cx.credentials().map(|c| c.access_key.clone());
        });
        if let Some(bucket) = &path_bucket
            && let Ok(Some(record)) = self.state.store.bucket(bucket).await
        {
            slot.update(|r| r.org = Some(record.org_id));
        }

        // 1. The caller. s3s has verified the signature with the secret from
        //    `KeylessAuth`; now apply the session token, expiry and revocation.
        let caller = match cx.credentials() {
            Some(creds) => {
                let token = session_token(cx.headers(), cx.uri());
                let caller = self.state.credentials.caller_for_key(&creds.access_key, token.as_deref()).await.map_err(key_error)?;
                Some(caller)
            }
            None => None,
        };

        // 2. The action and resource, from the one operation table.
        let Some(mapping) = s3_operation(op) else {
            return Err(S3Error::with_message(S3ErrorCode::NotImplemented, format!("the operation {op} is not supported")));
        };
        let (bucket, resource) = match (cx.s3_path(), mapping.kind) {
            (_, ResourceKind::Global) => (None, "*".to_owned()),
            (S3Path::Bucket { bucket }, ResourceKind::Bucket) => (Some(bucket.to_string()), bucket.to_string()),
            (S3Path::Object { bucket, .. }, ResourceKind::Bucket) => (Some(bucket.to_string()), bucket.to_string()),
            (S3Path::Object { bucket, key }, ResourceKind::Object) => (Some(bucket.to_string()), format!("{bucket}/{key}")),
            _ => return Err(S3Error::with_message(S3ErrorCode::InvalidRequest, format!("{op} needs a bucket and key in the path"))),
        };

        // 3. The org: a bucket belongs to one org, and its policies decide.
        let bucket_org = match &bucket {
            Some(name) => self.state.store.bucket(name).await.map_err(store_error)?.map(|b| b.org_id),
            None => None,
        };
        let org = match (bucket_org, &caller) {
            (Some(org), _) => org,
            (None, Some(caller)) => caller.org.clone(),
            // Anonymous and no bucket: there is no org to ask.
            (None, None) => return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "anonymous requests must name an existing bucket")),
        };
        if let Some(caller) = &caller
            && caller.org != org
        {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "the bucket belongs to another organization"));
        }

        let request_id = cx.extensions_mut().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let connection = cx.extensions_mut().get::<keyless_auth::Connection>().copied();
        let client = connection.map(|c| c.client);
        let secure = connection.is_some_and(|c| c.secure);
        let mut context = keyless_auth::request_context(caller.as_ref(), client.map(|c| c.ip()), secure);
        if matches!(op, "ListObjects" | "ListObjectsV2" | "ListMultipartUploads") {
            for (name, key) in [("prefix", "s3:prefix"), ("delimiter", "s3:delimiter"), ("max-keys", "s3:max-keys")] {
                // IAM treats an absent s3:prefix as the empty string.
                let value = query_param(cx.uri(), name).or_else(|| (name == "prefix").then(String::new));
                if let Some(value) = value {
                    context = context.value(key, value);
                }
            }
        }
        let auth = AuthContext { caller, org, request_id, client, context: context.build() };
        slot.update(|r| {
            r.org = Some(auth.org.clone());
            r.action = Some(mapping.action.to_owned());
            if let Some(caller) = &auth.caller {
                r.principal = Some(caller.principal.clone());
                r.session_id = caller.session().map(|s| s.sid.clone());
            }
        });
        // CreateBucket on a reserved name is rejected by the naming rules,
        // with the more precise InvalidBucketName.
        if is_system_bucket(bucket.as_deref()) && !READ_ONLY_ACTIONS.contains(&mapping.action) && op != "CreateBucket" {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "system buckets such as audit log buckets are read-only"));
        }
        // DeleteObjects names its keys only in the body, so the operation
        // checks s3:DeleteObject on each key. A bucket-level check here would
        // reject callers that may delete only under a prefix.
        if op != "DeleteObjects" {
            self.require(&auth, mapping.action, &resource).await?;
        }
        cx.extensions_mut().insert(auth);
        Ok(())
    }
}

/// Actions allowed on system buckets (`keyless-…`), subject to policy.
const READ_ONLY_ACTIONS: &[&str] = &["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:ListAllMyBuckets"];

fn is_system_bucket(bucket: Option<&str>) -> bool {
    bucket.is_some_and(|b| b.starts_with(crate::ops::RESERVED_BUCKET_PREFIX))
}

#[async_trait::async_trait]
impl S3Access for KeylessAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let slot = cx.extensions_mut().get::<AccessSlot>().cloned().unwrap_or_default();
        let result = self.check_request(cx, &slot).await;
        if let Err(err) = &result {
            let reason = err.message().unwrap_or("denied").to_owned();
            slot.update(|r| r.denied_reason = Some(reason));
        }
        result
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let cx = context(&req.extensions)?.clone();
        self.require_copy_source(&cx, &req.input.copy_source).await
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let cx = context(&req.extensions)?.clone();
        self.require_copy_source(&cx, &req.input.copy_source).await
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        // Per-key decisions are made in the operation so that a denied key is
        // reported in the result instead of failing the whole batch.
        context(&req.extensions).map(|_| ())
    }
}

impl KeylessAccess {
    pub async fn allowed(state: &S3State, cx: &AuthContext, action: &str, resource: &str) -> bool {
        state.authorizer.authorize_caller(&cx.org, cx.caller.as_ref(), action, resource, &cx.context).await.allowed
    }
}

fn query_param(uri: &http::Uri, name: &str) -> Option<String> {
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Returns the session token from the header, or for presigned URLs from the query.
fn session_token(headers: &http::HeaderMap, uri: &http::Uri) -> Option<String> {
    if let Some(value) = headers.get("x-amz-security-token") {
        return value.to_str().ok().map(str::to_owned);
    }
    let query = uri.query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}
