//! KMS key material wrapped by the cluster master key, for the key service (SSE-KMS).
//!
//! The metadata service stores a KMS key's versions; each version's 32 bytes of material reach it
//! only in this wrapped form (69 bytes, integers big endian):
//!
//! ```text
//! u8       format version (1)
//! [u8; 8]  master key id (which master key wrapped it)
//! [u8; 12] nonce, [u8; 32] AES-256-GCM(material), [u8; 16] tag
//! ```
//!
//! under a key derived from the master key for this purpose alone (HMAC-SHA256 of the master key
//! and a fixed label, as for sealed secrets), with the KMS key id and version as associated data:
//! wrapped material copied onto another key or version does not open. Whoever holds the metadata
//! files but not the master key file learns no key material.

use ring::aead::NONCE_LEN;
use zeroize::Zeroizing;

use crate::SseError;
use crate::keyring::MasterKeyRing;
use crate::keys::{DataKey, KEY_BYTES, KmsKeyMaterial, MasterKey, WRAPPED_KEY_BYTES};

const FORMAT_VERSION: u8 = 1;
/// Bytes of wrapped material: version byte, master key id, wrapped key.
pub const WRAPPED_MATERIAL_BYTES: usize = 1 + 8 + WRAPPED_KEY_BYTES;

const _: () = assert!(WRAPPED_KEY_BYTES == NONCE_LEN + KEY_BYTES + 16);

fn material_wrapping_key(master: &MasterKey) -> Zeroizing<[u8; KEY_BYTES]> {
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, master.expose_bytes());
    let tag = ring::hmac::sign(&hmac, b"cairn kms key material wrapping v1");
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    key.copy_from_slice(tag.as_ref());
    key
}

fn associated_data(key_id: &str, version: u32) -> Vec<u8> {
    let mut context = b"cairn kms key material v1\0".to_vec();
    context.extend_from_slice(key_id.as_bytes());
    context.push(0);
    context.extend_from_slice(&version.to_be_bytes());
    context
}

fn master_key_id_bytes(master: &MasterKey) -> [u8; 8] {
    let mut id = [0u8; 8];
    hex::decode_to_slice(master.key_id(), &mut id).expect("key id is 16 hex digits");
    id
}

/// New random material for version `version` of KMS key `key_id`: the wrapped form for the key
/// service, and the material itself.
pub fn seal_new_kms_material(
    master: &MasterKey,
    key_id: &str,
    version: u32,
) -> Result<(Vec<u8>, KmsKeyMaterial), SseError> {
    let material = KmsKeyMaterial::generate()?;
    let bytes = seal_material(master, key_id, version, &material)?;
    Ok((bytes, material))
}

fn seal_material(
    master: &MasterKey,
    key_id: &str,
    version: u32,
    material: &KmsKeyMaterial,
) -> Result<Vec<u8>, SseError> {
    // `wrap_key` wraps a `DataKey`; the copy is zeroed when dropped like the original.
    let as_data_key = DataKey::from_bytes(*material.expose_bytes());
    let wrapped = crate::keys::wrap_key(
        &material_wrapping_key(master),
        &as_data_key,
        &associated_data(key_id, version),
    )?;
    let mut bytes = Vec::with_capacity(WRAPPED_MATERIAL_BYTES);
    bytes.push(FORMAT_VERSION);
    bytes.extend_from_slice(&master_key_id_bytes(master));
    bytes.extend_from_slice(&wrapped);
    Ok(bytes)
}

fn check_format(wrapped: &[u8]) -> Result<(), SseError> {
    if wrapped.len() != WRAPPED_MATERIAL_BYTES || wrapped[0] != FORMAT_VERSION {
        return Err(SseError::Malformed {
            what: "wrapped KMS key material",
        });
    }
    Ok(())
}

/// The id of the master key that wrapped `wrapped` (made by [`seal_new_kms_material`]).
pub fn kms_material_master_key_id(wrapped: &[u8]) -> Result<String, SseError> {
    check_format(wrapped)?;
    Ok(hex::encode(&wrapped[1..9]))
}

/// Opens material made by [`seal_new_kms_material`] for the same key id and version, with the
/// key of `ring` whose id it records.
pub fn open_kms_material(
    ring: &MasterKeyRing,
    key_id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<KmsKeyMaterial, SseError> {
    let master = ring.by_id(&kms_material_master_key_id(wrapped)?)?;
    let data_key = crate::keys::unwrap_key(
        &material_wrapping_key(master),
        &wrapped[9..],
        &associated_data(key_id, version),
    )?;
    Ok(KmsKeyMaterial::from_bytes(*data_key.expose_bytes()))
}

/// The same material wrapped by the ring's active key, or `None` when the active key already
/// wraps it (so a rerun changes nothing).
pub fn rewrap_kms_material(
    ring: &MasterKeyRing,
    key_id: &str,
    version: u32,
    wrapped: &[u8],
) -> Result<Option<Vec<u8>>, SseError> {
    if ring.is_active(&kms_material_master_key_id(wrapped)?) {
        return Ok(None);
    }
    let material = open_kms_material(ring, key_id, version, wrapped)?;
    seal_material(ring.active(), key_id, version, &material).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn material_opens_only_with_its_master_key_key_id_and_version() {
        let master = MasterKey::from_bytes([3; KEY_BYTES]);
        let (wrapped, material) = seal_new_kms_material(&master, KEY_ID, 2).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_MATERIAL_BYTES);
        assert!(
            !wrapped
                .windows(KEY_BYTES)
                .any(|window| window == material.expose_bytes())
        );
        assert_eq!(
            open_kms_material(&MasterKeyRing::single(master.clone()), KEY_ID, 2, &wrapped).unwrap(),
            material
        );
        assert_eq!(
            open_kms_material(&MasterKeyRing::single(master.clone()), KEY_ID, 1, &wrapped),
            Err(SseError::Authentication)
        );
        assert_eq!(
            open_kms_material(
                &MasterKeyRing::single(master.clone()),
                "99999999-0000-4000-8000-000000000001",
                2,
                &wrapped
            ),
            Err(SseError::Authentication)
        );
        assert!(matches!(
            open_kms_material(
                &MasterKeyRing::single(MasterKey::from_bytes([4; KEY_BYTES])),
                KEY_ID,
                2,
                &wrapped
            ),
            Err(SseError::WrongMasterKey { .. })
        ));
        let mut altered = wrapped.clone();
        altered[30] ^= 1;
        assert_eq!(
            open_kms_material(&MasterKeyRing::single(master.clone()), KEY_ID, 2, &altered),
            Err(SseError::Authentication)
        );
        assert!(matches!(
            open_kms_material(
                &MasterKeyRing::single(master.clone()),
                KEY_ID,
                2,
                &wrapped[..68]
            ),
            Err(SseError::Malformed { .. })
        ));
        // Each version draws its own material.
        let (_, other) = seal_new_kms_material(&master, KEY_ID, 3).unwrap();
        assert_ne!(other, material);
        assert_eq!(format!("{material:?}"), "KmsKeyMaterial(<redacted>)");
    }

    #[test]
    fn rewrapped_material_opens_without_the_retired_key() {
        let old = MasterKey::from_bytes([5; KEY_BYTES]);
        let new = MasterKey::from_bytes([6; KEY_BYTES]);
        let (wrapped, material) = seal_new_kms_material(&old, KEY_ID, 1).unwrap();
        let rotated = MasterKeyRing::new(new.clone(), [old.clone()]);
        assert_eq!(
            open_kms_material(&rotated, KEY_ID, 1, &wrapped).unwrap(),
            material
        );
        let rewrapped = rewrap_kms_material(&rotated, KEY_ID, 1, &wrapped)
            .unwrap()
            .expect("wrapped by a retired key");
        assert_eq!(
            kms_material_master_key_id(&rewrapped).unwrap(),
            new.key_id()
        );
        assert_eq!(
            rewrap_kms_material(&rotated, KEY_ID, 1, &rewrapped).unwrap(),
            None,
            "already under the active key"
        );
        let only_new = MasterKeyRing::single(new);
        assert_eq!(
            open_kms_material(&only_new, KEY_ID, 1, &rewrapped).unwrap(),
            material
        );
        assert_eq!(
            open_kms_material(&only_new, KEY_ID, 1, &wrapped),
            Err(SseError::WrongMasterKey {
                recorded_key_id: old.key_id()
            })
        );
    }
}
