//! Server-side encryption for Cairn objects (SSE-S3, SSE-KMS and SSE-C).
//!
//! Model: every encrypted object (and every multipart upload) has its own random 256-bit data
//! key. The data key encrypts the object's bytes with AES-256-GCM in fixed-size chunks
//! ([`chunk`]); the gateway does this before erasure coding, so storage nodes only ever hold
//! ciphertext. The data key itself is stored in the object's metadata record only wrapped
//! (AES-256-GCM again) by a key that is not in the metadata: the cluster master key for SSE-S3
//! ([`keys::MasterKey`], a file outside the metadata service), or the customer's key for SSE-C,
//! of which only a salted HMAC is kept ([`envelope::CustomerKeyCheck`]), or a version of a KMS
//! key for SSE-KMS, whose material the key service holds only wrapped by the master key ([`kms`]). The wrapped key, the
//! mode and the chunk layout form the [`envelope::Envelope`], the value of the record attribute
//! `encryption`.
//!
//! Invariants:
//! - A (data key, nonce) pair is never used twice: nonces are a random 64-bit prefix per encrypted
//!   stream plus a 32-bit chunk counter, and a re-uploaded part draws a new prefix.
//! - A chunk authenticates its part number, its index and whether it is the part's last chunk, so
//!   chunks cannot be reordered, moved between parts, or dropped from the end; chunks of another
//!   object fail because that object has another data key.
//! - Key material never reaches `Debug`, `Display` or an error message.

pub mod chunk;
pub mod envelope;
pub mod keyring;
pub mod keys;
pub mod kms;
pub mod sealed;

pub use chunk::{
    CHUNK_OVERHEAD_BYTES, CHUNK_PLAINTEXT_BYTES, ChunkDecryptor, ChunkEncryptor, ciphertext_range,
    plaintext_length_bytes, stored_length_bytes,
};
pub use envelope::{CustomerKeyCheck, Envelope, Mode};
pub use keyring::{
    MasterKeyFile, MasterKeyRing, Reload, Rotation, drop_retired_keys, rotate_key_file,
};
pub use keys::{CustomerKey, DataKey, KmsKeyMaterial, MasterKey};
pub use kms::{
    kms_material_master_key_id, open_kms_material, rewrap_kms_material, seal_new_kms_material,
};
pub use sealed::{is_sealed, open_secret, seal_secret, sealed_secret_master_key_id};

/// Errors of the encryption core. None of them carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    /// A chunk or a wrapped key failed authentication: wrong key, or altered or misplaced bytes.
    #[error("authentication failed: wrong key or altered data")]
    Authentication,
    /// The item was wrapped by a master key that is not in this process's master key file.
    #[error("wrapped by master key {recorded_key_id}, which is not in this master key file")]
    WrongMasterKey { recorded_key_id: String },
    /// An SSE-C request's key is not the key the object was written with.
    #[error("the customer key does not match the object's")]
    WrongCustomerKey,
    /// The object is encrypted in another mode than the request assumes.
    #[error("the object is encrypted in another mode")]
    WrongMode,
    /// More or fewer bytes than the length the stream was opened with.
    #[error("length mismatch: expected {expected_bytes} bytes, got {actual_bytes}")]
    LengthMismatch {
        expected_bytes: u64,
        actual_bytes: u64,
    },
    /// An envelope, key file or key header that cannot be parsed.
    #[error("malformed {what}")]
    Malformed { what: &'static str },
    /// The operating system's random source failed.
    #[error("no randomness available")]
    Randomness,
    /// Reading or writing the master key file.
    #[error("master key file {path}: {message}")]
    KeyFile { path: String, message: String },
}
