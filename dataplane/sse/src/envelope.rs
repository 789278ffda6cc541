//! The encryption envelope: the value of an object's (or multipart upload's) `encryption`
//! attribute. Versioned binary format, all integers big endian:
//!
//! ```text
//! u8   format version (1)
//! u32  chunk plaintext bytes       } the stored-length rule: the metadata state machine reads
//! u32  chunk overhead bytes        } these two to check shard maps against the stored length
//! u8   mode: 1 = SSE-S3, 2 = SSE-C, 3 = SSE-KMS
//! SSE-S3:  [u8; 8] master key id, [u8; 60] wrapped data key
//! SSE-C:   [u8; 16] salt, [u8; 32] HMAC-SHA256(salt, customer key), [u8; 60] wrapped data key
//! SSE-KMS: [u8; 36] KMS key id (UUID text), u32 key version, [u8; 60] wrapped data key
//! ```
//!
//! An SSE-KMS data key is wrapped by the material of the named version of the KMS key; the key
//! service keeps that material wrapped by the master key ([`crate::kms`]).
//!
//! The data key is wrapped with associated data naming the bucket and key, so an envelope copied
//! to another object's record does not open there.

use ring::hmac;

use crate::SseError;
use crate::chunk::{CHUNK_OVERHEAD_BYTES, CHUNK_PLAINTEXT_BYTES};
use crate::keyring::MasterKeyRing;
use crate::keys::{
    CustomerKey, DataKey, KEY_BYTES, KmsKeyMaterial, MasterKey, WRAPPED_KEY_BYTES, random_bytes,
    unwrap_key, wrap_key,
};

/// The record attribute holding the envelope.
pub const ATTRIBUTE_NAME: &str = "encryption";
const FORMAT_VERSION: u8 = 1;
const HEADER_BYTES: usize = 10;

/// How an object is encrypted, in S3's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `x-amz-server-side-encryption: AES256`: data key wrapped by the cluster master key.
    SseS3,
    /// Customer-provided key: data key wrapped by the customer's key.
    SseC,
    /// `x-amz-server-side-encryption: aws:kms`: data key wrapped by a KMS key version.
    SseKms,
}

/// What identifies an SSE-C key without storing it: a random salt and HMAC-SHA256(salt, key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerKeyCheck {
    pub salt: [u8; 16],
    pub mac: [u8; 32],
}

impl CustomerKeyCheck {
    fn mac_of(salt: &[u8; 16], key: &CustomerKey) -> [u8; 32] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), key.expose_bytes());
        let mut mac = [0u8; 32];
        mac.copy_from_slice(tag.as_ref());
        mac
    }

    fn new(key: &CustomerKey) -> Result<Self, SseError> {
        let salt = random_bytes()?;
        Ok(Self {
            mac: Self::mac_of(&salt, key),
            salt,
        })
    }

    /// Constant-time check of `key` against the stored MAC.
    pub fn matches(&self, key: &CustomerKey) -> bool {
        let mac = Self::mac_of(&self.salt, key);
        bool::from(subtle::ConstantTimeEq::ct_eq(&mac[..], &self.mac[..]))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Wrapping {
    MasterKey {
        key_id: [u8; 8],
    },
    CustomerKey(CustomerKeyCheck),
    KmsVersion {
        key_id: [u8; KMS_KEY_ID_BYTES],
        key_version: u32,
    },
}

/// Bytes of a KMS key id (a UUID in text form).
pub const KMS_KEY_ID_BYTES: usize = 36;

/// The envelope of one encrypted object or multipart upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    wrapping: Wrapping,
    wrapped_key: [u8; WRAPPED_KEY_BYTES],
}

fn wrap_context(mode: Mode, bucket: &str, key: &str) -> Vec<u8> {
    let mut context = b"cairn-sse-v1\0".to_vec();
    context.push(match mode {
        Mode::SseS3 => 1,
        Mode::SseC => 2,
        Mode::SseKms => 3,
    });
    context.extend_from_slice(bucket.as_bytes());
    context.push(0);
    context.extend_from_slice(key.as_bytes());
    context
}

fn master_key_id_bytes(master: &MasterKey) -> [u8; 8] {
    let mut id = [0u8; 8];
    hex::decode_to_slice(master.key_id(), &mut id).expect("key id is 16 hex digits");
    id
}

impl Envelope {
    /// A new data key for an SSE-S3 object or upload, and its envelope.
    pub fn new_sse_s3(
        master: &MasterKey,
        bucket: &str,
        key: &str,
    ) -> Result<(Self, DataKey), SseError> {
        let data_key = DataKey::generate()?;
        let wrapped_key = wrap_key(
            master.expose_bytes(),
            &data_key,
            &wrap_context(Mode::SseS3, bucket, key),
        )?;
        let envelope = Self {
            wrapping: Wrapping::MasterKey {
                key_id: master_key_id_bytes(master),
            },
            wrapped_key,
        };
        Ok((envelope, data_key))
    }

    /// A new data key for an SSE-C object or upload, and its envelope.
    pub fn new_sse_c(
        customer: &CustomerKey,
        bucket: &str,
        key: &str,
    ) -> Result<(Self, DataKey), SseError> {
        let data_key = DataKey::generate()?;
        let wrapped_key = wrap_key(
            customer.expose_bytes(),
            &data_key,
            &wrap_context(Mode::SseC, bucket, key),
        )?;
        let envelope = Self {
            wrapping: Wrapping::CustomerKey(CustomerKeyCheck::new(customer)?),
            wrapped_key,
        };
        Ok((envelope, data_key))
    }

    /// A new data key for an SSE-KMS object or upload, wrapped by version `key_version` of KMS
    /// key `key_id` (whose material is `material`), and its envelope.
    pub fn new_sse_kms(
        material: &KmsKeyMaterial,
        key_id: &str,
        key_version: u32,
        bucket: &str,
        key: &str,
    ) -> Result<(Self, DataKey), SseError> {
        let key_id: [u8; KMS_KEY_ID_BYTES] = key_id
            .as_bytes()
            .try_into()
            .map_err(|_| SseError::Malformed { what: "KMS key id" })?;
        let data_key = DataKey::generate()?;
        let wrapped_key = wrap_key(
            material.expose_bytes(),
            &data_key,
            &wrap_context(Mode::SseKms, bucket, key),
        )?;
        let envelope = Self {
            wrapping: Wrapping::KmsVersion {
                key_id,
                key_version,
            },
            wrapped_key,
        };
        Ok((envelope, data_key))
    }

    pub fn mode(&self) -> Mode {
        match self.wrapping {
            Wrapping::MasterKey { .. } => Mode::SseS3,
            Wrapping::CustomerKey(_) => Mode::SseC,
            Wrapping::KmsVersion { .. } => Mode::SseKms,
        }
    }

    /// The KMS key id and key version of an SSE-KMS envelope.
    pub fn kms_key(&self) -> Option<(&str, u32)> {
        match &self.wrapping {
            Wrapping::KmsVersion {
                key_id,
                key_version,
            } => Some((
                std::str::from_utf8(key_id).expect("checked ASCII when built or decoded"),
                *key_version,
            )),
            _ => None,
        }
    }

    /// The data key of an SSE-KMS envelope, given the material of its key version.
    pub fn open_sse_kms(
        &self,
        material: &KmsKeyMaterial,
        bucket: &str,
        key: &str,
    ) -> Result<DataKey, SseError> {
        let Wrapping::KmsVersion { .. } = &self.wrapping else {
            return Err(SseError::WrongMode);
        };
        unwrap_key(
            material.expose_bytes(),
            &self.wrapped_key,
            &wrap_context(Mode::SseKms, bucket, key),
        )
    }

    /// The id of the master key that wrapped an SSE-S3 envelope's data key.
    pub fn master_key_id(&self) -> Option<String> {
        match &self.wrapping {
            Wrapping::MasterKey { key_id } => Some(hex::encode(key_id)),
            _ => None,
        }
    }

    /// The data key of an SSE-S3 envelope, unwrapped by the key of `ring` whose id the envelope
    /// records.
    pub fn open_sse_s3(
        &self,
        ring: &MasterKeyRing,
        bucket: &str,
        key: &str,
    ) -> Result<DataKey, SseError> {
        let Wrapping::MasterKey { key_id } = &self.wrapping else {
            return Err(SseError::WrongMode);
        };
        let master = ring.by_id(&hex::encode(key_id))?;
        unwrap_key(
            master.expose_bytes(),
            &self.wrapped_key,
            &wrap_context(Mode::SseS3, bucket, key),
        )
    }

    /// The same SSE-S3 envelope with its data key wrapped by the ring's active key (the object's
    /// bytes stay as they are), or `None` when the active key wraps it already.
    pub fn rewrap_sse_s3(
        &self,
        ring: &MasterKeyRing,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Self>, SseError> {
        let Some(recorded) = self.master_key_id() else {
            return Err(SseError::WrongMode);
        };
        if ring.is_active(&recorded) {
            return Ok(None);
        }
        let data_key = self.open_sse_s3(ring, bucket, key)?;
        let active = ring.active();
        let wrapped_key = wrap_key(
            active.expose_bytes(),
            &data_key,
            &wrap_context(Mode::SseS3, bucket, key),
        )?;
        Ok(Some(Self {
            wrapping: Wrapping::MasterKey {
                key_id: master_key_id_bytes(active),
            },
            wrapped_key,
        }))
    }

    /// The data key of an SSE-C envelope, if `customer` is the key it was written with.
    pub fn open_sse_c(
        &self,
        customer: &CustomerKey,
        bucket: &str,
        key: &str,
    ) -> Result<DataKey, SseError> {
        let Wrapping::CustomerKey(check) = &self.wrapping else {
            return Err(SseError::WrongMode);
        };
        if !check.matches(customer) {
            return Err(SseError::WrongCustomerKey);
        }
        unwrap_key(
            customer.expose_bytes(),
            &self.wrapped_key,
            &wrap_context(Mode::SseC, bucket, key),
        )
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_BYTES + 48 + WRAPPED_KEY_BYTES);
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&(CHUNK_PLAINTEXT_BYTES as u32).to_be_bytes());
        bytes.extend_from_slice(&(CHUNK_OVERHEAD_BYTES as u32).to_be_bytes());
        match &self.wrapping {
            Wrapping::MasterKey { key_id } => {
                bytes.push(1);
                bytes.extend_from_slice(key_id);
            }
            Wrapping::CustomerKey(check) => {
                bytes.push(2);
                bytes.extend_from_slice(&check.salt);
                bytes.extend_from_slice(&check.mac);
            }
            Wrapping::KmsVersion {
                key_id,
                key_version,
            } => {
                bytes.push(3);
                bytes.extend_from_slice(key_id);
                bytes.extend_from_slice(&key_version.to_be_bytes());
            }
        }
        bytes.extend_from_slice(&self.wrapped_key);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SseError> {
        let malformed = SseError::Malformed { what: "envelope" };
        if bytes.len() < HEADER_BYTES || bytes[0] != FORMAT_VERSION {
            return Err(malformed);
        }
        let chunk_plaintext = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
        let chunk_overhead = u32::from_be_bytes(bytes[5..9].try_into().expect("4 bytes"));
        // Format 1 has one chunk layout; another one needs another format version.
        if u64::from(chunk_plaintext) != CHUNK_PLAINTEXT_BYTES
            || u64::from(chunk_overhead) != CHUNK_OVERHEAD_BYTES
        {
            return Err(malformed);
        }
        let rest = &bytes[HEADER_BYTES..];
        let (wrapping, wrapped) = match bytes[9] {
            1 if rest.len() == 8 + WRAPPED_KEY_BYTES => (
                Wrapping::MasterKey {
                    key_id: rest[..8].try_into().expect("8 bytes"),
                },
                &rest[8..],
            ),
            2 if rest.len() == 16 + 32 + WRAPPED_KEY_BYTES => (
                Wrapping::CustomerKey(CustomerKeyCheck {
                    salt: rest[..16].try_into().expect("16 bytes"),
                    mac: rest[16..48].try_into().expect("32 bytes"),
                }),
                &rest[48..],
            ),
            3 if rest.len() == KMS_KEY_ID_BYTES + 4 + WRAPPED_KEY_BYTES
                && rest[..KMS_KEY_ID_BYTES].is_ascii() =>
            {
                (
                    Wrapping::KmsVersion {
                        key_id: rest[..KMS_KEY_ID_BYTES].try_into().expect("36 bytes"),
                        key_version: u32::from_be_bytes(
                            rest[KMS_KEY_ID_BYTES..KMS_KEY_ID_BYTES + 4]
                                .try_into()
                                .expect("4 bytes"),
                        ),
                    },
                    &rest[KMS_KEY_ID_BYTES + 4..],
                )
            }
            _ => return Err(malformed),
        };
        Ok(Self {
            wrapping,
            wrapped_key: wrapped.try_into().expect("checked length"),
        })
    }
}

const _: () = assert!(KEY_BYTES == 32);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_s3_round_trip_and_binding() {
        let master = MasterKey::generate().unwrap();
        let (envelope, data_key) = Envelope::new_sse_s3(&master, "bucket", "key").unwrap();
        let decoded = Envelope::decode(&envelope.encode()).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.mode(), Mode::SseS3);
        assert_eq!(
            decoded
                .open_sse_s3(&MasterKeyRing::single(master.clone()), "bucket", "key")
                .unwrap(),
            data_key
        );
        assert_eq!(
            decoded.open_sse_s3(&MasterKeyRing::single(master.clone()), "bucket", "other"),
            Err(SseError::Authentication)
        );
        let other = MasterKey::generate().unwrap();
        assert!(matches!(
            decoded.open_sse_s3(&MasterKeyRing::single(other.clone()), "bucket", "key"),
            Err(SseError::WrongMasterKey { .. })
        ));
        let customer = CustomerKey::from_bytes([1; 32]);
        assert_eq!(
            decoded.open_sse_c(&customer, "bucket", "key"),
            Err(SseError::WrongMode)
        );
    }

    #[test]
    fn sse_s3_rewrap_moves_the_data_key_to_the_active_master_key() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let (envelope, data_key) = Envelope::new_sse_s3(&old, "bucket", "key").unwrap();
        assert_eq!(envelope.master_key_id(), Some(old.key_id()));
        let rotated = MasterKeyRing::new(new.clone(), [old.clone()]);
        assert_eq!(
            envelope.open_sse_s3(&rotated, "bucket", "key").unwrap(),
            data_key
        );
        let rewrapped = envelope
            .rewrap_sse_s3(&rotated, "bucket", "key")
            .unwrap()
            .expect("wrapped by a retired key");
        assert_eq!(rewrapped.master_key_id(), Some(new.key_id()));
        assert_eq!(rewrapped.rewrap_sse_s3(&rotated, "bucket", "key"), Ok(None));
        let only_new = MasterKeyRing::single(new);
        let decoded = Envelope::decode(&rewrapped.encode()).unwrap();
        assert_eq!(
            decoded.open_sse_s3(&only_new, "bucket", "key").unwrap(),
            data_key
        );
        assert_eq!(
            envelope.open_sse_s3(&only_new, "bucket", "key"),
            Err(SseError::WrongMasterKey {
                recorded_key_id: old.key_id()
            })
        );
        // The binding to the object survives a rewrap.
        assert_eq!(
            rewrapped.rewrap_sse_s3(&rotated, "bucket", "other"),
            Ok(None)
        );
        assert_eq!(
            decoded.open_sse_s3(&only_new, "bucket", "other"),
            Err(SseError::Authentication)
        );
    }

    #[test]
    fn sse_c_round_trip_and_wrong_key() {
        let customer = CustomerKey::from_bytes([9; 32]);
        let (envelope, data_key) = Envelope::new_sse_c(&customer, "b", "k").unwrap();
        let encoded = envelope.encode();
        // Neither the customer key nor the data key is in the envelope.
        assert!(!encoded.windows(32).any(|window| window == [9u8; 32]));
        assert!(
            !encoded
                .windows(32)
                .any(|window| window == data_key.expose_bytes())
        );
        let decoded = Envelope::decode(&encoded).unwrap();
        assert_eq!(decoded.mode(), Mode::SseC);
        assert_eq!(decoded.open_sse_c(&customer, "b", "k").unwrap(), data_key);
        assert_eq!(
            decoded.open_sse_c(&CustomerKey::from_bytes([8; 32]), "b", "k"),
            Err(SseError::WrongCustomerKey)
        );
    }

    #[test]
    fn sse_kms_round_trip_binding_and_golden_layout() {
        let key_id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let material = KmsKeyMaterial::from_bytes([5; 32]);
        let (envelope, data_key) =
            Envelope::new_sse_kms(&material, key_id, 7, "bucket", "key").unwrap();
        let encoded = envelope.encode();
        assert_eq!(encoded.len(), 10 + 36 + 4 + WRAPPED_KEY_BYTES);
        assert_eq!(encoded[9], 3);
        assert_eq!(&encoded[10..46], key_id.as_bytes());
        assert_eq!(&encoded[46..50], &7u32.to_be_bytes());
        let decoded = Envelope::decode(&encoded).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.mode(), Mode::SseKms);
        assert_eq!(decoded.kms_key(), Some((key_id, 7)));
        assert_eq!(
            decoded.open_sse_kms(&material, "bucket", "key").unwrap(),
            data_key
        );
        assert_eq!(
            decoded.open_sse_kms(&KmsKeyMaterial::from_bytes([6; 32]), "bucket", "key"),
            Err(SseError::Authentication)
        );
        assert_eq!(
            decoded.open_sse_kms(&material, "bucket", "other"),
            Err(SseError::Authentication)
        );
        let master = MasterKey::generate().unwrap();
        assert_eq!(
            decoded.open_sse_s3(&MasterKeyRing::single(master.clone()), "bucket", "key"),
            Err(SseError::WrongMode)
        );
        assert!(Envelope::new_sse_kms(&material, "short", 1, "b", "k").is_err());
        assert!(Envelope::decode(&encoded[..encoded.len() - 1]).is_err());
        let mut not_ascii = encoded.clone();
        not_ascii[12] = 0xFF;
        assert!(Envelope::decode(&not_ascii).is_err());
    }

    #[test]
    fn golden_header_and_malformed_inputs() {
        let envelope = Envelope {
            wrapping: Wrapping::MasterKey { key_id: [0xAA; 8] },
            wrapped_key: [0x55; WRAPPED_KEY_BYTES],
        };
        let encoded = envelope.encode();
        assert_eq!(
            hex::encode(&encoded[..18]),
            "01000100000000001c01aaaaaaaaaaaaaaaa"
        );
        assert_eq!(encoded.len(), 78);
        assert_eq!(Envelope::decode(&encoded).unwrap(), envelope);
        for bad in [
            &[][..],
            &encoded[..77],
            &[&[2u8][..], &encoded[1..]].concat()[..],
            &[&encoded[..9], &[3u8][..], &encoded[10..]].concat()[..],
        ] {
            assert!(Envelope::decode(bad).is_err());
        }
    }
}
