//! Authentication: SigV4 (Authorization header or presigned query) verified by
//! `cairn_s3_proto::sigv4::verify_request`, with secrets from the metadata service.
//!
//! Model: the verifier is synchronous, so the access key id is read from the request first, its
//! secret fetched (from a short-lived per-executor cache, else `Query::GetAccessKey` through the
//! leader), and only then is the signature checked. A revoked or unknown key is
//! `InvalidAccessKeyId`; an unsigned request gets the anonymous [`Caller`], which only a bucket
//! policy can let through.
//!
//! Invariant: a request reaches a handler only with a `Caller` whose signature matched; the cache
//! keeps a key at most `ttl` after it was read, so a revocation takes effect within `ttl`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn_meta_state::{AccessKeyStatus, MetaError, Query, Response};
use cairn_s3_proto::sigv4::{
    Authentication, SignedRequest, VerifiedRequest, VerifyConfig, verify_request,
};
use cairn_s3_proto::{RequestHead, S3Error};

use crate::server::Executor;

/// Who sent the request: a user (the owner of the access key that signed it) or, with both
/// fields empty, an anonymous (unsigned) caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub owner: String,
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller {
            access_key_id: String::new(),
            owner: String::new(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.access_key_id.is_empty()
    }

    /// The principal a bucket policy sees: the user, or `None` when anonymous.
    pub fn principal(&self) -> Option<&str> {
        (!self.is_anonymous()).then_some(self.owner.as_str())
    }
}

#[derive(Clone)]
struct CachedKey {
    /// `None`: the key does not exist or is revoked (cached too, so a flood of bad keys does not
    /// become a flood of Raft reads).
    secret_and_owner: Option<(String, String)>,
    fetched_at: Instant,
}

pub struct AccessKeyCache {
    ttl: Duration,
    entries: RefCell<HashMap<String, CachedKey>>,
}

/// Entries kept per executor; beyond this the cache is cleared (bounded memory under a flood of
/// random key ids).
const ACCESS_KEY_CACHE_MAX_ENTRIES: usize = 10_000;

impl AccessKeyCache {
    pub fn new(ttl: Duration) -> Self {
        AccessKeyCache {
            ttl,
            entries: RefCell::new(HashMap::new()),
        }
    }

    fn get(&self, access_key_id: &str) -> Option<Option<(String, String)>> {
        let entries = self.entries.borrow();
        let entry = entries.get(access_key_id)?;
        (entry.fetched_at.elapsed() < self.ttl).then(|| entry.secret_and_owner.clone())
    }

    fn insert(&self, access_key_id: &str, secret_and_owner: Option<(String, String)>) {
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= ACCESS_KEY_CACHE_MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            access_key_id.to_owned(),
            CachedKey {
                secret_and_owner,
                fetched_at: Instant::now(),
            },
        );
    }
}

/// The secret and owner of an active access key (`None`: unknown or revoked).
pub(crate) async fn lookup(
    executor: &Executor,
    access_key_id: &str,
) -> Result<Option<(String, String)>, S3Error> {
    if let Some(cached) = executor.access_keys.get(access_key_id) {
        return Ok(cached);
    }
    let answer = executor
        .meta_read(Query::GetAccessKey {
            access_key_id: access_key_id.to_owned(),
        })
        .await?;
    let found = match answer {
        Ok(Response::AccessKey(record)) if record.status == AccessKeyStatus::Active => {
            let secret = crate::users::open_stored_secret(
                crate::master_key::current_ring(executor.shared.config.master_key.as_ref())
                    .as_deref(),
                access_key_id,
                &record.secret_access_key,
            )?;
            Some((secret, record.owner))
        }
        Ok(_) | Err(MetaError::NoSuchAccessKey { .. }) => None,
        Err(error) => return Err(crate::errors::meta_error_to_s3(&error)),
    };
    executor.access_keys.insert(access_key_id, found.clone());
    Ok(found)
}

/// Verifies the request's signature. Returns the caller and the verification result (which says
/// how the body is protected).
pub async fn authenticate(
    executor: &Executor,
    head: &RequestHead<'_>,
    headers: &[(&str, &str)],
    now_unix_millis: u64,
) -> Result<(Caller, VerifiedRequest), S3Error> {
    let region = Some(executor.shared.config.region.clone());
    authenticate_in_scope(executor, head, headers, now_unix_millis, region).await
}

/// Like [`authenticate`], with the credential scope's region checked against `region` (`None`:
/// any region; S3 requests check it against the addressed bucket's region afterwards, see
/// [`crate::region`]).
pub async fn authenticate_in_scope(
    executor: &Executor,
    head: &RequestHead<'_>,
    headers: &[(&str, &str)],
    now_unix_millis: u64,
    region: Option<String>,
) -> Result<(Caller, VerifiedRequest), S3Error> {
    let request = SignedRequest {
        method: head.method,
        raw_path: head.raw_path,
        raw_query: head.raw_query,
        headers,
    };
    let (secret, owner, access_key_id) = match request.claimed_access_key_id()? {
        Some(access_key_id) => match lookup(executor, &access_key_id).await? {
            Some((secret, owner)) => (Some(secret), owner, access_key_id),
            None => return Err(S3Error::InvalidAccessKeyId),
        },
        None => (None, String::new(), String::new()),
    };
    let secrets = |id: &str| -> Option<String> {
        if id == access_key_id {
            secret.clone()
        } else {
            None
        }
    };
    let config = VerifyConfig { region };
    match verify_request(&request, &secrets, &config, (now_unix_millis / 1000) as i64)? {
        // An unsigned request: allowed only where a bucket policy says so (see
        // `crate::bucket::owned_bucket`); its body is taken as an unsigned payload.
        Authentication::Anonymous => Ok((
            Caller::anonymous(),
            VerifiedRequest {
                access_key_id: String::new(),
                region: executor.shared.config.region.clone(),
                presigned: false,
                payload: cairn_s3_proto::sigv4::PayloadMode::Unsigned,
                signing: cairn_s3_proto::sigv4::ChunkSigningContext {
                    signing_key: [0; 32],
                    amz_timestamp: String::new(),
                    scope: String::new(),
                    seed_signature_hex: String::new(),
                },
            },
        )),
        Authentication::Verified(verified) => Ok((
            Caller {
                access_key_id: verified.access_key_id.clone(),
                owner,
            },
            verified,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_expires_entries() {
        let cache = AccessKeyCache::new(Duration::from_millis(0));
        cache.insert("a", Some(("s".into(), "o".into())));
        assert_eq!(cache.get("a"), None);
        let cache = AccessKeyCache::new(Duration::from_secs(60));
        cache.insert("a", None);
        assert_eq!(cache.get("a"), Some(None));
    }
}
