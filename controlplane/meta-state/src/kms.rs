//! The key service behind SSE-KMS: KMS key records in the bucket service.
//!
//! Model: a KMS key is a record keyed by its id (a UUID), with an optional unique alias
//! (`alias/NAME`), a description, a state (Enabled/Disabled) and a list of versions. Each version
//! holds 32 bytes of key material **wrapped** by the cluster master key: the gateway generates
//! and wraps the material (`cairn_sse::kms`) before the command reaches Raft, so this state
//! machine, its log and its snapshots never hold plaintext key material; they treat the wrapped
//! bytes as opaque. Rotation appends a version; new objects use the newest, older versions stay
//! so objects written under them keep decrypting. A disabled key refuses rotation here, and the
//! gateway refuses to encrypt or decrypt with it.
//!
//! Keys are global (the bucket service is one group for every region). A key's ARN is
//! `arn:aws:kms:<region>:<KMS_ACCOUNT_ID>:key/<id>`; the region is the asking gateway's, like an
//! AWS multi-Region key that has one id and one ARN per region, so lookups by ARN accept any
//! region. The account id is fixed ([`KMS_ACCOUNT_ID`]): Cairn has no AWS accounts.
//!
//! Invariants: key ids and aliases are unique; versions are numbered 1, 2, … in order; a key has
//! at least one and at most [`MAX_KEY_VERSIONS`] versions.

use std::fmt;

use crate::error::MetaError;
use crate::machine::{StateMachine, bump};

/// The account id in every KMS key ARN Cairn reports (12 digits, as AWS account ids are).
pub const KMS_ACCOUNT_ID: &str = "000000000000";
/// The alias of the key SSE-KMS uses when a request names none (AWS's managed key for S3).
pub const DEFAULT_S3_KEY_ALIAS: &str = "alias/aws/s3";
/// Versions one key may accumulate by rotation (keeps a record, which every read of an SSE-KMS
/// object fetches, bounded).
pub const MAX_KEY_VERSIONS: usize = 100;
/// Bytes of wrapped key material a version may carry (the gateway's format uses 69).
pub const MAX_WRAPPED_MATERIAL_BYTES: usize = 256;
/// AWS's limit on a key description.
pub const MAX_DESCRIPTION_CHARS: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KmsKeyState {
    Enabled,
    Disabled,
}

impl KmsKeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KmsKeyState::Enabled => "Enabled",
            KmsKeyState::Disabled => "Disabled",
        }
    }
}

/// One version of a key's material, wrapped by the cluster master key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KmsKeyVersion {
    /// 1 for the material the key was created with, then one more per rotation.
    pub version: u32,
    pub created_at_ms: u64,
    pub wrapped_material: Vec<u8>,
}

impl fmt::Debug for KmsKeyVersion {
    // Wrapped material is not secret without the master key, but it has no place in logs either.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KmsKeyVersion")
            .field("version", &self.version)
            .field("created_at_ms", &self.created_at_ms)
            .field("wrapped_material_bytes", &self.wrapped_material.len())
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KmsKeyRecord {
    pub key_id: String,
    pub alias: Option<String>,
    pub description: String,
    pub state: KmsKeyState,
    pub created_at_ms: u64,
    /// Oldest first; never empty.
    pub versions: Vec<KmsKeyVersion>,
    pub record_version: u64,
}

impl KmsKeyRecord {
    /// The version new objects are encrypted under.
    pub fn newest_version(&self) -> &KmsKeyVersion {
        self.versions
            .last()
            .expect("a key has at least one version")
    }

    pub fn version(&self, version: u32) -> Option<&KmsKeyVersion> {
        self.versions.iter().find(|entry| entry.version == version)
    }

    /// The key's ARN as seen from `region`.
    pub fn arn(&self, region: &str) -> String {
        kms_key_arn(region, &self.key_id)
    }
}

/// `arn:aws:kms:<region>:<account>:key/<key id>`.
pub fn kms_key_arn(region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{KMS_ACCOUNT_ID}:key/{key_id}")
}

#[derive(Clone, PartialEq, Eq)]
pub struct CreateKmsKey {
    /// A UUID the gateway drew.
    pub key_id: String,
    pub alias: Option<String>,
    pub description: String,
    /// Version 1's material, wrapped by the master key.
    pub wrapped_material: Vec<u8>,
    pub now_ms: u64,
}

impl fmt::Debug for CreateKmsKey {
    // Commands are logged; wrapped material is no secret without the master key, but it has no
    // place in a log line either.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CreateKmsKey")
            .field("key_id", &self.key_id)
            .field("alias", &self.alias)
            .field("description", &self.description)
            .field("wrapped_material_bytes", &self.wrapped_material.len())
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

/// Key service commands (all in one [`crate::Command::Kms`] entry, command tag 41).
/// Sub-tags (never reused): 0 Create, 1 Rotate, 2 SetState.
#[derive(Clone, PartialEq, Eq)]
pub enum KmsCommand {
    /// Answers the new key; `KmsKeyAlreadyExists` for a taken id or alias.
    Create(CreateKmsKey),
    /// Appends version `version` (which must be the newest plus one: the material was wrapped
    /// for that number) with this material; answers the key. Refused on a disabled key.
    Rotate {
        key_id: String,
        version: u32,
        wrapped_material: Vec<u8>,
        now_ms: u64,
    },
    /// Enables or disables the key (a repeat is not an error); answers the key.
    SetState {
        key_id: String,
        state: KmsKeyState,
        now_ms: u64,
    },
    /// Master-key rotation: replaces version `version`'s wrapped material with the same material
    /// wrapped by the active master key, if the key is still at `record_version` (else
    /// `RecordVersionMismatch`). Allowed on a disabled key; answers the key.
    RewrapMaterial {
        key_id: String,
        version: u32,
        record_version: u64,
        wrapped_material: Vec<u8>,
    },
}

impl fmt::Debug for KmsCommand {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmsCommand::Create(create) => formatter.debug_tuple("Create").field(create).finish(),
            KmsCommand::Rotate {
                key_id,
                version,
                wrapped_material,
                now_ms,
            } => formatter
                .debug_struct("Rotate")
                .field("key_id", key_id)
                .field("version", version)
                .field("wrapped_material_bytes", &wrapped_material.len())
                .field("now_ms", now_ms)
                .finish(),
            KmsCommand::SetState {
                key_id,
                state,
                now_ms,
            } => formatter
                .debug_struct("SetState")
                .field("key_id", key_id)
                .field("state", state)
                .field("now_ms", now_ms)
                .finish(),
            KmsCommand::RewrapMaterial {
                key_id,
                version,
                record_version,
                wrapped_material,
            } => formatter
                .debug_struct("RewrapMaterial")
                .field("key_id", key_id)
                .field("version", version)
                .field("record_version", record_version)
                .field("wrapped_material_bytes", &wrapped_material.len())
                .finish(),
        }
    }
}

impl KmsCommand {
    pub fn name(&self) -> &'static str {
        match self {
            KmsCommand::Create(_) => "CreateKmsKey",
            KmsCommand::Rotate { .. } => "RotateKmsKey",
            KmsCommand::SetState { .. } => "SetKmsKeyState",
            KmsCommand::RewrapMaterial { .. } => "RewrapKmsKeyMaterial",
        }
    }
}

/// Key service queries (one [`crate::Query::Kms`] entry, query tag 40).
/// Sub-tags (never reused): 0 Get, 1 List.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmsQuery {
    /// By key id, key ARN, alias (`alias/NAME`) or alias ARN; answers `KmsKey`.
    Get { key: String },
    /// Every key in key id order; answers `KmsKeys`.
    List,
}

impl KmsQuery {
    pub fn name(&self) -> &'static str {
        match self {
            KmsQuery::Get { .. } => "GetKmsKey",
            KmsQuery::List => "ListKmsKeys",
        }
    }
}

/// Whether `key_id` is a UUID in its canonical lowercase text form.
fn is_uuid(key_id: &str) -> bool {
    key_id.len() == 36
        && key_id.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte),
        })
}

/// AWS's alias rule: `alias/` and 1–250 letters, digits, `/`, `_` or `-`.
pub fn validate_alias(alias: &str) -> Result<(), MetaError> {
    let name = alias.strip_prefix("alias/").unwrap_or("");
    if name.is_empty()
        || name.len() > 250
        || !name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'_' | b'-'))
    {
        return Err(MetaError::InvalidArgument {
            reason: format!(
                "alias {alias:?} must be alias/ followed by 1 to 250 letters, digits, /, _ or -"
            ),
        });
    }
    Ok(())
}

fn check_material(wrapped_material: &[u8]) -> Result<(), MetaError> {
    if wrapped_material.is_empty() || wrapped_material.len() > MAX_WRAPPED_MATERIAL_BYTES {
        return Err(MetaError::InvalidArgument {
            reason: format!(
                "wrapped key material must have 1 to {MAX_WRAPPED_MATERIAL_BYTES} bytes"
            ),
        });
    }
    Ok(())
}

/// What a key identifier names: a key id or an alias.
enum KeyName<'a> {
    Id(&'a str),
    Alias(String),
}

fn parse_key_name(key: &str) -> Option<KeyName<'_>> {
    if key.starts_with("alias/") {
        return Some(KeyName::Alias(key.to_owned()));
    }
    if let Some(rest) = key.strip_prefix("arn:aws:kms:") {
        // <region>:<account>:key/<id> or <region>:<account>:alias/<name>
        let mut fields = rest.splitn(3, ':');
        let (_region, account, resource) = (fields.next()?, fields.next()?, fields.next()?);
        if account != KMS_ACCOUNT_ID {
            return None;
        }
        if let Some(key_id) = resource.strip_prefix("key/") {
            return Some(KeyName::Id(key_id));
        }
        if resource.starts_with("alias/") {
            return Some(KeyName::Alias(resource.to_owned()));
        }
        return None;
    }
    Some(KeyName::Id(key))
}

impl StateMachine {
    pub(crate) fn apply_kms(&mut self, command: KmsCommand) -> Result<crate::Response, MetaError> {
        match command {
            KmsCommand::Create(create) => self.create_kms_key(create),
            KmsCommand::Rotate {
                key_id,
                version,
                wrapped_material,
                now_ms,
            } => {
                check_material(&wrapped_material)?;
                let record = self.kms_key_mut(&key_id)?;
                if record.state == KmsKeyState::Disabled {
                    return Err(MetaError::KmsKeyDisabled { key_id });
                }
                if record.versions.len() >= MAX_KEY_VERSIONS {
                    return Err(MetaError::InvalidArgument {
                        reason: format!("a key has at most {MAX_KEY_VERSIONS} versions"),
                    });
                }
                let next = record.newest_version().version + 1;
                if version != next {
                    // Another rotation came first; this material was wrapped for its number.
                    return Err(MetaError::RecordVersionMismatch {
                        expected: u64::from(version),
                        actual: u64::from(next),
                    });
                }
                record.versions.push(KmsKeyVersion {
                    version,
                    created_at_ms: now_ms,
                    wrapped_material,
                });
                bump(&mut record.record_version);
                Ok(crate::Response::KmsKey(record.clone()))
            }
            KmsCommand::RewrapMaterial {
                key_id,
                version,
                record_version,
                wrapped_material,
            } => {
                check_material(&wrapped_material)?;
                let record = self.kms_key_mut(&key_id)?;
                if record.record_version != record_version {
                    return Err(MetaError::RecordVersionMismatch {
                        expected: record_version,
                        actual: record.record_version,
                    });
                }
                let entry = record
                    .versions
                    .iter_mut()
                    .find(|entry| entry.version == version)
                    .ok_or_else(|| MetaError::InvalidArgument {
                        reason: format!("KMS key {key_id} has no version {version}"),
                    })?;
                if entry.wrapped_material != wrapped_material {
                    entry.wrapped_material = wrapped_material;
                    bump(&mut record.record_version);
                }
                Ok(crate::Response::KmsKey(record.clone()))
            }
            KmsCommand::SetState { key_id, state, .. } => {
                let record = self.kms_key_mut(&key_id)?;
                if record.state != state {
                    record.state = state;
                    bump(&mut record.record_version);
                }
                Ok(crate::Response::KmsKey(record.clone()))
            }
        }
    }

    fn create_kms_key(&mut self, create: CreateKmsKey) -> Result<crate::Response, MetaError> {
        if !is_uuid(&create.key_id) {
            return Err(MetaError::InvalidArgument {
                reason: format!("key id {:?} is not a lowercase UUID", create.key_id),
            });
        }
        if let Some(alias) = &create.alias {
            validate_alias(alias)?;
        }
        if create.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(MetaError::InvalidArgument {
                reason: format!("a description has at most {MAX_DESCRIPTION_CHARS} characters"),
            });
        }
        check_material(&create.wrapped_material)?;
        if self.kms_keys.contains_key(&create.key_id) {
            return Err(MetaError::KmsKeyAlreadyExists { key: create.key_id });
        }
        if let Some(alias) = &create.alias
            && self.kms_key_by_alias(alias).is_some()
        {
            return Err(MetaError::KmsKeyAlreadyExists { key: alias.clone() });
        }
        let record = KmsKeyRecord {
            key_id: create.key_id.clone(),
            alias: create.alias,
            description: create.description,
            state: KmsKeyState::Enabled,
            created_at_ms: create.now_ms,
            versions: vec![KmsKeyVersion {
                version: 1,
                created_at_ms: create.now_ms,
                wrapped_material: create.wrapped_material,
            }],
            record_version: 1,
        };
        self.kms_keys.insert(create.key_id, record.clone());
        Ok(crate::Response::KmsKey(record))
    }

    pub(crate) fn answer_kms(&self, query: &KmsQuery) -> Result<crate::Response, MetaError> {
        match query {
            KmsQuery::Get { key } => self
                .kms_key(key)
                .cloned()
                .map(crate::Response::KmsKey)
                .ok_or_else(|| MetaError::NoSuchKmsKey { key: key.clone() }),
            KmsQuery::List => Ok(crate::Response::KmsKeys(
                self.kms_keys.values().cloned().collect(),
            )),
        }
    }

    /// Aliases are few (one per key at most), so a scan beats keeping a second index in step.
    fn kms_key_by_alias(&self, alias: &str) -> Option<&KmsKeyRecord> {
        self.kms_keys
            .values()
            .find(|record| record.alias.as_deref() == Some(alias))
    }

    /// The key `key` names (id, ARN, alias or alias ARN).
    fn kms_key(&self, key: &str) -> Option<&KmsKeyRecord> {
        match parse_key_name(key)? {
            KeyName::Id(key_id) => self.kms_keys.get(key_id),
            KeyName::Alias(alias) => self.kms_key_by_alias(&alias),
        }
    }

    fn kms_key_mut(&mut self, key_id: &str) -> Result<&mut KmsKeyRecord, MetaError> {
        self.kms_keys
            .get_mut(key_id)
            .ok_or_else(|| MetaError::NoSuchKmsKey {
                key: key_id.to_owned(),
            })
    }

    pub(crate) fn check_kms_keys(&self) -> Result<(), String> {
        for (key_id, record) in &self.kms_keys {
            if &record.key_id != key_id {
                return Err(format!("KMS key stored under the wrong id: {key_id}"));
            }
            if record.versions.is_empty()
                || record
                    .versions
                    .iter()
                    .zip(1u32..)
                    .any(|(entry, expected)| entry.version != expected)
            {
                return Err(format!("KMS key {key_id}: versions not numbered 1, 2, …"));
            }
            if let Some(alias) = &record.alias
                && self
                    .kms_keys
                    .values()
                    .filter(|other| other.alias.as_ref() == Some(alias))
                    .count()
                    > 1
            {
                return Err(format!("KMS alias {alias} names more than one key"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_parse() {
        assert!(is_uuid("1234abcd-12ab-34cd-56ef-1234567890ab"));
        assert!(!is_uuid("1234ABCD-12ab-34cd-56ef-1234567890ab"));
        assert!(!is_uuid("1234abcd-12ab-34cd-56ef-1234567890a"));
        assert!(validate_alias("alias/my-key_1/x").is_ok());
        assert!(validate_alias("alias/").is_err());
        assert!(validate_alias("my-key").is_err());
        assert!(validate_alias("alias/with space").is_err());
        assert!(matches!(
            parse_key_name("arn:aws:kms:eu-west-1:000000000000:key/abc"),
            Some(KeyName::Id("abc"))
        ));
        assert!(matches!(
            parse_key_name("arn:aws:kms:eu-west-1:000000000000:alias/x"),
            Some(KeyName::Alias(alias)) if alias == "alias/x"
        ));
        assert!(parse_key_name("arn:aws:kms:eu-west-1:111111111111:key/abc").is_none());
        assert!(parse_key_name("arn:aws:kms:eu-west-1").is_none());
        assert_eq!(
            kms_key_arn("us-east-1", "abc"),
            "arn:aws:kms:us-east-1:000000000000:key/abc"
        );
    }

    #[test]
    fn debug_shows_no_material() {
        let create = KmsCommand::Create(CreateKmsKey {
            key_id: "k".to_owned(),
            alias: None,
            description: String::new(),
            wrapped_material: vec![0xAB; 69],
            now_ms: 1,
        });
        let rotate = KmsCommand::Rotate {
            key_id: "k".to_owned(),
            version: 2,
            wrapped_material: vec![0xAB; 69],
            now_ms: 1,
        };
        let version = KmsKeyVersion {
            version: 1,
            created_at_ms: 1,
            wrapped_material: vec![0xAB; 69],
        };
        for shown in [
            format!("{create:?}"),
            format!("{rotate:?}"),
            format!("{version:?}"),
        ] {
            assert!(shown.contains("wrapped_material_bytes: 69"), "{shown}");
            assert!(!shown.contains("171"), "{shown}");
        }
    }
}
