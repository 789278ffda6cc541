//! The user admin API: access keys of users other than root, created, listed and revoked by root.
//!
//! Model: it lives on the S3 listener under [`ADMIN_PATH_PREFIX`] (`_cairn` is not a valid bucket
//! name, so no S3 request can mean this path) and is authenticated exactly like S3 requests
//! (SigV4), then authorised only for the root access key: every other caller, signed or not, is
//! `AccessDenied`. `cairn admin` is its client.
//!
//! - `POST /_cairn/admin/v1/access-keys?user=NAME` creates a key for user `NAME` (a new random
//!   id and secret) and answers `{"access_key_id", "secret_access_key", "user"}`; the secret is
//!   never shown again; the bucket service keeps it only sealed by the cluster master key
//!   ([`stored_secret`], `cairn_sse::sealed`).
//! - `GET /_cairn/admin/v1/access-keys[?user=NAME]` lists keys (no secrets).
//! - `DELETE /_cairn/admin/v1/access-keys/ID` revokes a key (the root key cannot be revoked).
//! - `PUT|GET|DELETE /_cairn/admin/v1/bucket-quota/BUCKET` sets, shows (with the bucket's
//!   usage) and clears a bucket's quota (see [`crate::quota`]).
//! - `/_cairn/admin/v1/kms-keys...`: the SSE-KMS key service (see [`crate::kms`]).
//! - `GET /_cairn/admin/v1/master-key` (key ids), `POST /_cairn/admin/v1/master-key/rewrap`:
//!   master-key rotation (see [`crate::master_key`]).
//!
//! A user is the owner string of its keys: buckets a user creates are owned by that user, and
//! every bucket operation of another user is refused (see [`crate::bucket::owned_bucket`]).
//! A revocation takes effect within the gateways' access key cache lifetime.

use cairn_meta_state::{AccessKeyStatus, Command, CreateAccessKey, Query, Response};
use cairn_s3_proto::{RequestHead, S3Error};

use crate::server::{Executor, HttpResponse, full_body, now_unix_millis};

pub const ADMIN_PATH_PREFIX: &str = "/_cairn/admin/v1/";

/// User names: 1–64 characters of letters, digits and `_ . @ -` (they appear in logs, owner
/// fields and ListBuckets' `Owner`).
fn validate_user_name(name: &str) -> Result<(), S3Error> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'@' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(S3Error::InvalidArgument(
            "user must be 1-64 characters of letters, digits and _ . @ -".to_owned(),
        ))
    }
}

pub(crate) fn json_response(status: http::StatusCode, value: &serde_json::Value) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full_body(value.to_string()))
        .expect("static headers are valid")
}

pub(crate) fn query_value(raw_query: &str, name: &str) -> Result<Option<String>, S3Error> {
    let pairs =
        cairn_s3_proto::encoding::parse_query(raw_query).map_err(|_| S3Error::InvalidUri)?;
    Ok(pairs
        .into_iter()
        .find(|(candidate, _)| candidate == name)
        .map(|(_, value)| value))
}

/// Answers one admin request (the path starts with [`ADMIN_PATH_PREFIX`]).
pub async fn handle_admin(
    executor: &Executor,
    head: &RequestHead<'_>,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, S3Error> {
    let (caller, _verified) =
        crate::auth::authenticate(executor, head, headers, now_unix_millis()).await?;
    let root = executor
        .shared
        .config
        .root_credentials
        .as_ref()
        .ok_or(S3Error::AccessDenied)?;
    if caller.access_key_id != root.access_key_id {
        return Err(S3Error::AccessDenied);
    }
    let rest = &head.raw_path[ADMIN_PATH_PREFIX.len()..];
    match (head.method, rest) {
        ("POST", "access-keys") => {
            let user = query_value(head.raw_query, "user")?.ok_or_else(|| {
                S3Error::InvalidArgument("the user query parameter is required".to_owned())
            })?;
            validate_user_name(&user)?;
            let access_key_id = format!(
                "CAIRN{}",
                crate::config::random_text(15, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
                    .map_err(|_| S3Error::InternalError)?
            );
            let secret_access_key = crate::config::random_text(
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            )
            .map_err(|_| S3Error::InternalError)?;
            let stored = stored_secret(
                crate::master_key::current_ring(executor.shared.config.master_key.as_ref())
                    .as_deref(),
                &access_key_id,
                &secret_access_key,
            )
            .map_err(|error| {
                tracing::error!(%error, "sealing a new access key's secret");
                S3Error::InternalError
            })?;
            executor
                .meta_write(Command::CreateAccessKey(CreateAccessKey {
                    access_key_id: access_key_id.clone(),
                    secret_access_key: stored,
                    owner: user.clone(),
                    now_ms: now_unix_millis(),
                }))
                .await?;
            tracing::info!(%access_key_id, %user, "access key created");
            Ok(json_response(
                http::StatusCode::OK,
                &serde_json::json!({
                    "access_key_id": access_key_id,
                    "secret_access_key": secret_access_key,
                    "user": user,
                }),
            ))
        }
        ("GET", "access-keys") => {
            let owner = query_value(head.raw_query, "user")?;
            let Response::AccessKeys(keys) =
                executor.meta_query(Query::ListAccessKeys { owner }).await?
            else {
                return Err(S3Error::InternalError);
            };
            let listed: Vec<serde_json::Value> = keys
                .iter()
                .map(|key| {
                    serde_json::json!({
                        "access_key_id": key.access_key_id,
                        "user": key.owner,
                        "status": match key.status {
                            AccessKeyStatus::Active => "active",
                            AccessKeyStatus::Revoked => "revoked",
                        },
                        "created_at_ms": key.created_at_ms,
                        "revoked_at_ms": key.revoked_at_ms,
                        "root": key.access_key_id == root.access_key_id,
                    })
                })
                .collect();
            Ok(json_response(
                http::StatusCode::OK,
                &serde_json::json!({ "access_keys": listed }),
            ))
        }
        ("DELETE", path) if path.starts_with("access-keys/") => {
            let access_key_id = &path["access-keys/".len()..];
            if access_key_id.is_empty() || access_key_id.contains('/') {
                return Err(S3Error::InvalidUri);
            }
            if access_key_id == root.access_key_id {
                return Err(S3Error::InvalidArgument(
                    "the root access key cannot be revoked".to_owned(),
                ));
            }
            let answer = executor
                .meta_write(Command::RevokeAccessKey {
                    access_key_id: access_key_id.to_owned(),
                    now_ms: now_unix_millis(),
                })
                .await;
            match answer {
                Ok(_) => {}
                // An unknown key id is the caller's mistake, not an authentication failure.
                Err(S3Error::InvalidAccessKeyId) => {
                    return Ok(json_response(
                        http::StatusCode::NOT_FOUND,
                        &serde_json::json!({ "error": "no such access key" }),
                    ));
                }
                Err(error) => return Err(error),
            }
            tracing::info!(%access_key_id, "access key revoked");
            Ok(http::Response::builder()
                .status(http::StatusCode::NO_CONTENT)
                .body(crate::server::empty_body())
                .expect("static headers are valid"))
        }
        (_, path) if path == "master-key" || path.starts_with("master-key/") => {
            crate::master_key::handle_admin(executor, head, path).await
        }
        (_, path) if path == "kms-keys" || path.starts_with("kms-keys/") => {
            crate::kms::handle_admin(executor, head, path).await
        }
        (_, path) if path.starts_with("bucket-quota/") => {
            crate::quota::handle_admin(executor, head, &path["bucket-quota/".len()..]).await
        }
        ("POST" | "GET" | "DELETE", _) => Ok(json_response(
            http::StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": "unknown admin resource" }),
        )),
        _ => Err(S3Error::MethodNotAllowed),
    }
}

/// The secret of an access key record: opened with the master key when sealed (a legacy
/// plaintext value as it is). A secret that does not open (another cluster's master key, or none
/// configured) is logged and answered with 500, never treated as a wrong signature.
pub fn open_stored_secret(
    master_key: Option<&cairn_sse::MasterKeyRing>,
    access_key_id: &str,
    stored: &str,
) -> Result<String, S3Error> {
    cairn_sse::open_secret(master_key, access_key_id, stored)
        .map(|secret| secret.to_string())
        .map_err(|error| {
            tracing::error!(
                %error,
                access_key_id,
                "cannot open the stored secret of an access key (is the master key the cluster's?)"
            );
            S3Error::InternalError
        })
}

/// What the bucket service stores for a new access key's secret: sealed by the cluster master
/// key (see `cairn_sse::sealed`), or, on a gateway without one (encryption at rest off), the
/// secret itself.
pub(crate) fn stored_secret(
    master_key: Option<&cairn_sse::MasterKeyRing>,
    access_key_id: &str,
    secret_access_key: &str,
) -> Result<String, cairn_sse::SseError> {
    match master_key {
        Some(ring) => cairn_sse::seal_secret(ring.active(), access_key_id, secret_access_key),
        None => Ok(secret_access_key.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_checked() {
        for good in ["alice", "bob.smith@example.com", "a", "svc_backup-2"] {
            assert!(validate_user_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
            assert!(validate_user_name(bad).is_err(), "{bad}");
        }
    }
}
