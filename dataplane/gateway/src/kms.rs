//! SSE-KMS in the gateway: the built-in key service's keys (records in the bucket service, see
//! `cairn_meta_state::kms`) used to wrap and unwrap object data keys, and the admin API that
//! manages them.
//!
//! Model: the gateway draws a key's material, wraps it with the cluster master key
//! (`cairn_sse::kms`) and sends only the wrapped form to the bucket service; to use a key it
//! reads the record (a linearizable read, so a disable takes effect on the next request) and
//! opens the wanted version's material. New objects use the newest version; the envelope names
//! the key id and version, so objects written before a rotation keep opening. A request without
//! a key id uses the cluster's default key, alias [`DEFAULT_S3_KEY_ALIAS`], created on first use
//! (as AWS creates its `aws/s3` managed key); two gateways racing to create it both end up with
//! the one the bucket service accepted first.
//!
//! Errors as S3 reports them: an unknown key is `400 KMS.NotFoundException`, a disabled key on a
//! write or a read `400 KMS.DisabledException`. SSE-KMS needs the master key: without one a
//! write asking for it is `501 NotImplemented`.
//!
//! AWS refuses SSE-KMS requests that arrive over plain HTTP. Cairn accepts them: the S3 listener
//! may be plain HTTP behind a TLS-terminating edge, and the key material never travels in an
//! S3 request (only its id does), so TLS is the operator's choice here as for every request.
//!
//! Admin API (root only, SigV4, under `/_cairn/admin/v1/`; `cairn admin kms ...` is its client):
//! - `POST kms-keys[?alias=alias/NAME][&description=TEXT]` creates a key; answers it as JSON.
//! - `GET kms-keys` lists keys (never material).
//! - `POST kms-keys/KEY/rotate|disable|enable` (KEY: id, ARN or alias, percent-encoded).

use cairn_meta_state::kms::DEFAULT_S3_KEY_ALIAS;
use cairn_meta_state::{
    Command, CreateKmsKey, KmsCommand, KmsKeyRecord, KmsKeyState, KmsQuery, MetaError, Query,
    Response,
};
use cairn_s3_proto::{RequestHead, S3Error};
use cairn_sse::{KmsKeyMaterial, MasterKeyRing};

use crate::server::{Executor, HttpResponse, now_unix_millis};

/// The request header naming the KMS key of an SSE-KMS write (and the response header naming
/// the key's ARN).
pub(crate) const KMS_KEY_ID_HEADER: &str = "x-amz-server-side-encryption-aws-kms-key-id";
const DEFAULT_KEY_DESCRIPTION: &str =
    "Default key that protects my S3 objects when no other key is defined";

/// A key version ready to wrap or unwrap data keys.
pub(crate) struct KeyInUse {
    pub key_id: String,
    pub version: u32,
    pub material: KmsKeyMaterial,
    pub arn: String,
}

fn master_key(executor: &Executor) -> Option<std::sync::Arc<MasterKeyRing>> {
    crate::master_key::current_ring(executor.shared.config.master_key.as_ref())
}

/// The key's ARN as this gateway reports it (its own region).
pub(crate) fn arn(executor: &Executor, key_id: &str) -> String {
    cairn_meta_state::kms_key_arn(&executor.shared.config.region, key_id)
}

/// A random version-4 UUID in canonical lowercase form.
fn new_key_id() -> Result<String, S3Error> {
    let hex = crate::config::random_text(32, b"0123456789abcdef").map_err(|error| {
        tracing::error!(%error, "no randomness for a KMS key id");
        S3Error::InternalError
    })?;
    let variant = match &hex[16..17] {
        "0" | "4" | "8" | "c" => "8",
        "1" | "5" | "9" | "d" => "9",
        "2" | "6" | "a" | "e" => "a",
        _ => "b",
    };
    Ok(format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    ))
}

/// The key `key` names (id, ARN or alias).
async fn get_key(executor: &Executor, key: &str) -> Result<KmsKeyRecord, S3Error> {
    match executor
        .meta_query(Query::Kms(KmsQuery::Get {
            key: key.to_owned(),
        }))
        .await?
    {
        Response::KmsKey(record) => Ok(record),
        _ => Err(S3Error::InternalError),
    }
}

/// Creates a key with fresh material (version 1); the state machine's refusal (a taken alias)
/// is the inner error.
async fn create_key(
    executor: &Executor,
    alias: Option<String>,
    description: String,
) -> Result<Result<KmsKeyRecord, MetaError>, S3Error> {
    let master = master_key(executor).ok_or(S3Error::NotImplemented)?;
    let key_id = new_key_id()?;
    let (wrapped_material, _material) =
        cairn_sse::seal_new_kms_material(master.active(), &key_id, 1)
            .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
    let output = executor
        .meta
        .write(Command::Kms(KmsCommand::Create(CreateKmsKey {
            key_id,
            alias,
            description,
            wrapped_material,
            now_ms: now_unix_millis(),
        })))
        .await
        .map_err(|error| crate::errors::client_error_to_s3(&error))?;
    match output.result {
        Ok(Response::KmsKey(record)) => {
            tracing::info!(key_id = %record.key_id, alias = ?record.alias, "KMS key created");
            Ok(Ok(record))
        }
        Ok(_) => Err(S3Error::InternalError),
        Err(error) => Ok(Err(error)),
    }
}

/// The cluster's default SSE-KMS key, created on first use.
async fn default_key(executor: &Executor) -> Result<KmsKeyRecord, S3Error> {
    let lookup = Query::Kms(KmsQuery::Get {
        key: DEFAULT_S3_KEY_ALIAS.to_owned(),
    });
    match executor.meta_read(lookup.clone()).await? {
        Ok(Response::KmsKey(record)) => return Ok(record),
        Ok(_) => return Err(S3Error::InternalError),
        Err(MetaError::NoSuchKmsKey { .. }) => {}
        Err(error) => return Err(crate::errors::meta_error_to_s3(&error)),
    }
    match create_key(
        executor,
        Some(DEFAULT_S3_KEY_ALIAS.to_owned()),
        DEFAULT_KEY_DESCRIPTION.to_owned(),
    )
    .await?
    {
        Ok(record) => Ok(record),
        // Another gateway (or request) created it first: use that one.
        Err(MetaError::KmsKeyAlreadyExists { .. }) => get_key(executor, DEFAULT_S3_KEY_ALIAS).await,
        Err(error) => Err(crate::errors::meta_error_to_s3(&error)),
    }
}

fn open_version(
    executor: &Executor,
    record: &KmsKeyRecord,
    version: u32,
) -> Result<KeyInUse, S3Error> {
    let arn = arn(executor, &record.key_id);
    if record.state == KmsKeyState::Disabled {
        return Err(S3Error::KmsDisabled(arn));
    }
    let Some(entry) = record.version(version) else {
        tracing::warn!(key_id = %record.key_id, version, "KMS key version does not exist");
        return Err(S3Error::InternalError);
    };
    let Some(master) = master_key(executor) else {
        tracing::warn!(key_id = %record.key_id, "SSE-KMS needs a master key; this gateway has none");
        return Err(S3Error::InternalError);
    };
    let material = cairn_sse::open_kms_material(
        &master,
        &record.key_id,
        version,
        &entry.wrapped_material,
    )
    .map_err(|error| {
        tracing::warn!(key_id = %record.key_id, version, %error, "cannot open KMS key material");
        S3Error::InternalError
    })?;
    Ok(KeyInUse {
        key_id: record.key_id.clone(),
        version,
        material,
        arn,
    })
}

/// The key version a new SSE-KMS object is encrypted under: the newest version of the key
/// `requested` names, or of the default key.
pub(crate) async fn key_for_write(
    executor: &Executor,
    requested: Option<&str>,
) -> Result<KeyInUse, S3Error> {
    if master_key(executor).is_none() {
        return Err(S3Error::NotImplemented);
    }
    let record = match requested {
        Some(key) => get_key(executor, key).await?,
        None => default_key(executor).await?,
    };
    let version = record.newest_version().version;
    open_version(executor, &record, version)
}

/// The key version a stored SSE-KMS object was encrypted under.
pub(crate) async fn key_for_read(
    executor: &Executor,
    key_id: &str,
    version: u32,
) -> Result<KeyInUse, S3Error> {
    let record = get_key(executor, key_id).await?;
    open_version(executor, &record, version)
}

fn key_json(executor: &Executor, record: &KmsKeyRecord) -> serde_json::Value {
    serde_json::json!({
        "key_id": record.key_id,
        "arn": arn(executor, &record.key_id),
        "alias": record.alias,
        "description": record.description,
        "state": record.state.as_str(),
        "created_at_ms": record.created_at_ms,
        "current_version": record.newest_version().version,
        "versions": record
            .versions
            .iter()
            .map(|entry| serde_json::json!({
                "version": entry.version,
                "created_at_ms": entry.created_at_ms,
            }))
            .collect::<Vec<_>>(),
    })
}

/// Answers `kms-keys` admin requests (`path` is the part after the admin prefix); the caller has
/// checked that the request is root's.
pub(crate) async fn handle_admin(
    executor: &Executor,
    head: &RequestHead<'_>,
    path: &str,
) -> Result<HttpResponse, S3Error> {
    let ok = |record: &KmsKeyRecord| {
        crate::users::json_response(http::StatusCode::OK, &key_json(executor, record))
    };
    match (head.method, path) {
        ("POST", "kms-keys") => {
            let alias = crate::users::query_value(head.raw_query, "alias")?;
            if let Some(alias) = &alias {
                cairn_meta_state::kms::validate_alias(alias)
                    .map_err(|error| S3Error::InvalidArgument(error.to_string()))?;
                if alias.starts_with("alias/aws/") {
                    return Err(S3Error::InvalidArgument(
                        "aliases beginning with alias/aws/ are reserved".to_owned(),
                    ));
                }
            }
            let description =
                crate::users::query_value(head.raw_query, "description")?.unwrap_or_default();
            let record = create_key(executor, alias, description)
                .await?
                .map_err(|error| crate::errors::meta_error_to_s3(&error))?;
            Ok(ok(&record))
        }
        ("GET", "kms-keys") => {
            let Response::KmsKeys(keys) = executor.meta_query(Query::Kms(KmsQuery::List)).await?
            else {
                return Err(S3Error::InternalError);
            };
            let listed: Vec<serde_json::Value> = keys
                .iter()
                .map(|record| key_json(executor, record))
                .collect();
            Ok(crate::users::json_response(
                http::StatusCode::OK,
                &serde_json::json!({ "keys": listed }),
            ))
        }
        ("POST", path) if path.starts_with("kms-keys/") => {
            let rest = &path["kms-keys/".len()..];
            let Some((encoded_key, action)) = rest.rsplit_once('/') else {
                return Err(S3Error::InvalidUri);
            };
            let key = cairn_s3_proto::encoding::percent_decode(
                encoded_key,
                cairn_s3_proto::encoding::PlusMeans::Plus,
            )
            .map_err(|_| S3Error::InvalidUri)?;
            let record = get_key(executor, &key).await?;
            let command = match action {
                "rotate" => {
                    let master = master_key(executor).ok_or(S3Error::NotImplemented)?;
                    let version = record.newest_version().version + 1;
                    let (wrapped_material, _material) =
                        cairn_sse::seal_new_kms_material(master.active(), &record.key_id, version)
                            .map_err(|error| crate::errors::sse_error_to_s3(&error))?;
                    KmsCommand::Rotate {
                        key_id: record.key_id.clone(),
                        version,
                        wrapped_material,
                        now_ms: now_unix_millis(),
                    }
                }
                "disable" | "enable" => KmsCommand::SetState {
                    key_id: record.key_id.clone(),
                    state: if action == "disable" {
                        KmsKeyState::Disabled
                    } else {
                        KmsKeyState::Enabled
                    },
                    now_ms: now_unix_millis(),
                },
                _ => {
                    return Ok(crate::users::json_response(
                        http::StatusCode::NOT_FOUND,
                        &serde_json::json!({ "error": "unknown KMS key action" }),
                    ));
                }
            };
            let name = command.name();
            // A rotation racing another one is refused by the state machine (409
            // ConditionalRequestConflict): its material was wrapped for the number the other took.
            let Response::KmsKey(updated) = executor.meta_write(Command::Kms(command)).await?
            else {
                return Err(S3Error::InternalError);
            };
            tracing::info!(key_id = %updated.key_id, command = name, "KMS key changed");
            Ok(ok(&updated))
        }
        _ => Err(S3Error::MethodNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_version_4_uuids() {
        for _ in 0..50 {
            let id = new_key_id().unwrap();
            assert_eq!(id.len(), 36);
            assert_eq!(&id[14..15], "4");
            assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
            assert_eq!(
                id.bytes()
                    .enumerate()
                    .filter(|(_, byte)| *byte == b'-')
                    .map(|(index, _)| index)
                    .collect::<Vec<_>>(),
                [8, 13, 18, 23]
            );
        }
    }
}
