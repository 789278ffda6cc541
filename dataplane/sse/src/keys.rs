//! Keys: the cluster master key (a file outside the metadata service), per-object data keys, and
//! customer keys (SSE-C). Wrapping is AES-256-GCM with a random 96-bit nonce; the wrapped form is
//! `nonce (12) || encrypted key (32) || tag (16)`, and the associated data names the object, so a
//! wrapped key moved to another record does not unwrap there.
//!
//! None of these types prints its bytes: `Debug` shows only a key id or `<redacted>`, and the
//! bytes are zeroed when dropped.

use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::SseError;

/// Bytes of every key (AES-256).
pub const KEY_BYTES: usize = 32;
/// Bytes of a wrapped data key: nonce, encrypted key, tag.
pub const WRAPPED_KEY_BYTES: usize = NONCE_LEN + KEY_BYTES + 16;

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SseError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SseError::Randomness)?;
    Ok(bytes)
}

pub(crate) fn aead_key(bytes: &[u8; KEY_BYTES]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key"))
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name([u8; KEY_BYTES]);

        impl $name {
            pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
                Self(bytes)
            }

            pub fn generate() -> Result<Self, SseError> {
                Ok(Self(random_bytes()?))
            }

            pub fn expose_bytes(&self) -> &[u8; KEY_BYTES] {
                &self.0
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(formatter, concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_key!(
    /// A per-object (or per-upload) data key.
    DataKey
);
secret_key!(
    /// The cluster master key that wraps SSE-S3 data keys.
    MasterKey
);
secret_key!(
    /// A customer-provided key (SSE-C), decoded from `x-amz-server-side-encryption-customer-key`.
    CustomerKey
);
secret_key!(
    /// One version of a KMS key's material (SSE-KMS): wraps the data keys of the objects
    /// written under that version; kept in the metadata service only wrapped (see [`crate::kms`]).
    KmsKeyMaterial
);

/// Wraps `data_key` under `wrapping_key`, bound to `context` (associated data).
pub fn wrap_key(
    wrapping_key: &[u8; KEY_BYTES],
    data_key: &DataKey,
    context: &[u8],
) -> Result<[u8; WRAPPED_KEY_BYTES], SseError> {
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
    let mut wrapped = [0u8; WRAPPED_KEY_BYTES];
    wrapped[..NONCE_LEN].copy_from_slice(&nonce_bytes);
    wrapped[NONCE_LEN..NONCE_LEN + KEY_BYTES].copy_from_slice(data_key.expose_bytes());
    let tag = aead_key(wrapping_key)
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(context),
            &mut wrapped[NONCE_LEN..NONCE_LEN + KEY_BYTES],
        )
        .map_err(|_| SseError::Authentication)?;
    wrapped[NONCE_LEN + KEY_BYTES..].copy_from_slice(tag.as_ref());
    Ok(wrapped)
}

/// Unwraps a key made by [`wrap_key`] with the same wrapping key and context.
pub fn unwrap_key(
    wrapping_key: &[u8; KEY_BYTES],
    wrapped: &[u8],
    context: &[u8],
) -> Result<DataKey, SseError> {
    if wrapped.len() != WRAPPED_KEY_BYTES {
        return Err(SseError::Malformed {
            what: "wrapped key",
        });
    }
    let nonce = Nonce::try_assume_unique_for_key(&wrapped[..NONCE_LEN])
        .map_err(|_| SseError::Authentication)?;
    let mut buffer = Zeroizing::new(wrapped[NONCE_LEN..].to_vec());
    let plain = aead_key(wrapping_key)
        .open_in_place(nonce, Aad::from(context), &mut buffer)
        .map_err(|_| SseError::Authentication)?;
    let mut bytes = [0u8; KEY_BYTES];
    bytes.copy_from_slice(plain);
    Ok(DataKey::from_bytes(bytes))
}

impl MasterKey {
    /// A short public id of this key (hex of a hash of it), recorded with every key it wraps so a
    /// gateway started with another master key reports that instead of "authentication failed".
    pub fn key_id(&self) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"cairn master key id v1:".as_slice(), self.expose_bytes()].concat(),
        );
        hex::encode(&digest.as_ref()[..8])
    }

    /// Reads a key file and answers its active key (the first line; see [`crate::keyring`]).
    pub fn load(path: &Path) -> Result<Self, SseError> {
        Ok(crate::keyring::MasterKeyRing::load(path)?.active().clone())
    }

    /// Loads the key file, or creates it (mode 0600, a new random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SseError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate()?;
        key.write_new(path)?;
        Ok(key)
    }

    /// Writes the key to a new file readable by its owner only; refuses to overwrite one.
    pub fn write_new(&self, path: &Path) -> Result<(), SseError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |error: std::io::Error| SseError::KeyFile {
            path: path.display().to_string(),
            message: error.to_string(),
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(failed)?;
        let text = Zeroizing::new(format!("{}\n", hex::encode(self.expose_bytes())));
        file.write_all(text.as_bytes()).map_err(failed)?;
        file.sync_all().map_err(failed)
    }
}

impl CustomerKey {
    /// Decodes the SSE-C headers' key (base64 of 32 bytes) and checks it against the key MD5
    /// header (base64 of the MD5 of the key), as S3 does.
    pub fn from_headers(key_base64: &str, key_md5_base64: &str) -> Result<Self, SseError> {
        use base64::Engine;
        use md5::Digest;
        let engine = base64::engine::general_purpose::STANDARD;
        let decoded =
            Zeroizing::new(
                engine
                    .decode(key_base64.trim())
                    .map_err(|_| SseError::Malformed {
                        what: "customer key",
                    })?,
            );
        if decoded.len() != KEY_BYTES {
            return Err(SseError::Malformed {
                what: "customer key",
            });
        }
        let expected_md5 =
            engine
                .decode(key_md5_base64.trim())
                .map_err(|_| SseError::Malformed {
                    what: "customer key MD5",
                })?;
        let actual_md5 = md5::Md5::digest(&decoded[..]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            actual_md5.as_slice(),
            expected_md5.as_slice(),
        )) {
            return Err(SseError::Malformed {
                what: "customer key MD5",
            });
        }
        let mut bytes = [0u8; KEY_BYTES];
        bytes.copy_from_slice(&decoded);
        Ok(Self(bytes))
    }

    /// Base64 of the MD5 of the key: what S3 echoes in
    /// `x-amz-server-side-encryption-customer-key-MD5`.
    pub fn md5_base64(&self) -> String {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(self.expose_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_context_binding() {
        let master = MasterKey::generate().unwrap();
        let data = DataKey::generate().unwrap();
        let wrapped = wrap_key(master.expose_bytes(), &data, b"bucket/key").unwrap();
        assert_ne!(&wrapped[12..44], data.expose_bytes().as_slice());
        let back = unwrap_key(master.expose_bytes(), &wrapped, b"bucket/key").unwrap();
        assert_eq!(back, data);
        assert_eq!(
            unwrap_key(master.expose_bytes(), &wrapped, b"bucket/other"),
            Err(SseError::Authentication)
        );
        let other = MasterKey::generate().unwrap();
        assert_eq!(
            unwrap_key(other.expose_bytes(), &wrapped, b"bucket/key"),
            Err(SseError::Authentication)
        );
        let mut flipped = wrapped;
        flipped[20] ^= 1;
        assert_eq!(
            unwrap_key(master.expose_bytes(), &flipped, b"bucket/key"),
            Err(SseError::Authentication)
        );
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = DataKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "DataKey(<redacted>)");
        assert!(!shown.to_lowercase().contains("ab"));
    }

    #[test]
    fn key_file_created_once_with_owner_only_mode() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("master-key");
        let created = MasterKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(created, loaded);
        assert_eq!(created.key_id(), loaded.key_id());
        assert!(created.write_new(&path).is_err(), "never overwrites a key");
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            MasterKey::load(&path),
            Err(SseError::KeyFile { .. })
        ));
    }

    #[test]
    fn customer_key_headers_checked() {
        use base64::Engine;
        use md5::Digest;
        let engine = base64::engine::general_purpose::STANDARD;
        let raw = [7u8; 32];
        let key_b64 = engine.encode(raw);
        let md5_b64 = engine.encode(md5::Md5::digest(raw));
        let key = CustomerKey::from_headers(&key_b64, &md5_b64).unwrap();
        assert_eq!(key.md5_base64(), md5_b64);
        assert!(CustomerKey::from_headers(&key_b64, &engine.encode([0u8; 16])).is_err());
        assert!(CustomerKey::from_headers(&engine.encode([7u8; 16]), &md5_b64).is_err());
        assert!(CustomerKey::from_headers("%%%", &md5_b64).is_err());
    }
}
