//! Access-key secrets sealed by the cluster master key before they reach the metadata service.
//!
//! A gateway must know a secret access key in plaintext to check a SigV4 signature (an HMAC keyed
//! by it), so the secret cannot be hashed; it is kept encrypted instead. The bucket service's
//! record (and the Raft log entry that created it, and every snapshot) holds only
//!
//! `sealed:v1:<master key id>:<base64 of nonce (12) || AES-256-GCM(secret) || tag (16)>`
//!
//! under a key derived from the master key for this purpose alone (HMAC-SHA256 of the master key
//! and a fixed label, so a secret's key never equals the key that wraps data keys), with the
//! access key id as associated data: a sealed secret copied onto another access key does not
//! open. Anyone with the metadata files but not the master key file learns no secret.
//!
//! A stored value without the `sealed:v1:` prefix is a secret written before sealing existed;
//! [`open_secret`] returns it as it is, and it is sealed when the key is next created.

use base64::Engine;
use ring::aead::{Aad, NONCE_LEN, Nonce};
use zeroize::Zeroizing;

use crate::SseError;
use crate::keyring::MasterKeyRing;
use crate::keys::{KEY_BYTES, MasterKey, aead_key, random_bytes};

const PREFIX: &str = "sealed:v1:";
const TAG_BYTES: usize = 16;

/// The key secrets are sealed under: HMAC-SHA256(master key, label).
fn secret_key(master: &MasterKey) -> Zeroizing<[u8; KEY_BYTES]> {
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, master.expose_bytes());
    let tag = ring::hmac::sign(&hmac, b"cairn access-key secret sealing v1");
    let mut key = Zeroizing::new([0u8; KEY_BYTES]);
    key.copy_from_slice(tag.as_ref());
    key
}

fn associated_data(access_key_id: &str) -> Vec<u8> {
    [b"cairn access key ".as_slice(), access_key_id.as_bytes()].concat()
}

/// Whether `stored` is a sealed secret (rather than one written before sealing existed).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Seals `secret` of `access_key_id` under `master` (a fresh random nonce each time).
pub fn seal_secret(
    master: &MasterKey,
    access_key_id: &str,
    secret: &str,
) -> Result<String, SseError> {
    let nonce: [u8; NONCE_LEN] = random_bytes()?;
    let mut buffer = Zeroizing::new(secret.as_bytes().to_vec());
    let tag = aead_key(&secret_key(master))
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(associated_data(access_key_id)),
            &mut buffer,
        )
        .map_err(|_| SseError::Authentication)?;
    let mut sealed = Vec::with_capacity(NONCE_LEN + buffer.len() + TAG_BYTES);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&buffer);
    sealed.extend_from_slice(tag.as_ref());
    Ok(format!(
        "{PREFIX}{}:{}",
        master.key_id(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
    ))
}

/// The secret in `stored` (sealed by [`seal_secret`], or a legacy plaintext value as it is).
/// `ring` is needed only for sealed values; the key is picked by the id the value records, and
/// a value sealed by a master key not in the ring reports [`SseError::WrongMasterKey`].
pub fn open_secret(
    ring: Option<&MasterKeyRing>,
    access_key_id: &str,
    stored: &str,
) -> Result<Zeroizing<String>, SseError> {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return Ok(Zeroizing::new(stored.to_owned()));
    };
    let malformed = || SseError::Malformed {
        what: "sealed secret",
    };
    let (key_id, encoded) = rest.split_once(':').ok_or_else(malformed)?;
    let ring = ring.ok_or_else(|| SseError::WrongMasterKey {
        recorded_key_id: key_id.to_owned(),
    })?;
    let master = ring.by_id(key_id)?;
    let sealed = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(encoded)
        .map_err(|_| malformed())?;
    if sealed.len() < NONCE_LEN + TAG_BYTES {
        return Err(malformed());
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN])
        .map_err(|_| SseError::Authentication)?;
    let mut buffer = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let plain = aead_key(&secret_key(master))
        .open_in_place(
            nonce,
            Aad::from(associated_data(access_key_id)),
            &mut buffer,
        )
        .map_err(|_| SseError::Authentication)?;
    let text = std::str::from_utf8(plain).map_err(|_| malformed())?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// The id of the master key that sealed `stored`, or `None` for a legacy plaintext value.
pub fn sealed_secret_master_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(PREFIX)?;
    rest.split_once(':').map(|(key_id, _)| key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; KEY_BYTES])
    }

    fn ring(byte: u8) -> MasterKeyRing {
        MasterKeyRing::single(master(byte))
    }

    #[test]
    fn a_secret_sealed_by_a_retired_key_opens_through_the_ring() {
        let sealed = seal_secret(&master(1), "CAIRNAAA", "old-secret").unwrap();
        assert_eq!(
            sealed_secret_master_key_id(&sealed),
            Some(master(1).key_id().as_str())
        );
        assert_eq!(sealed_secret_master_key_id("legacy"), None);
        let rotated = MasterKeyRing::new(master(2), [master(1)]);
        assert_eq!(
            open_secret(Some(&rotated), "CAIRNAAA", &sealed)
                .unwrap()
                .as_str(),
            "old-secret"
        );
        let dropped = MasterKeyRing::single(master(2));
        assert_eq!(
            open_secret(Some(&dropped), "CAIRNAAA", &sealed),
            Err(SseError::WrongMasterKey {
                recorded_key_id: master(1).key_id()
            })
        );
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_master_key_and_access_key() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let sealed = seal_secret(&master(1), "CAIRNAAA", secret).unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains(secret));
        assert_eq!(
            open_secret(Some(&ring(1)), "CAIRNAAA", &sealed)
                .unwrap()
                .as_str(),
            secret
        );
        // Each seal draws its own nonce.
        assert_ne!(sealed, seal_secret(&master(1), "CAIRNAAA", secret).unwrap());
        // Another access key: the associated data differs.
        assert_eq!(
            open_secret(Some(&ring(1)), "CAIRNBBB", &sealed),
            Err(SseError::Authentication)
        );
        // Another master key, or none: named by its id, not "authentication failed".
        assert!(matches!(
            open_secret(Some(&ring(2)), "CAIRNAAA", &sealed),
            Err(SseError::WrongMasterKey { .. })
        ));
        assert!(matches!(
            open_secret(None, "CAIRNAAA", &sealed),
            Err(SseError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn altered_or_truncated_sealed_secrets_are_refused_and_plain_ones_pass() {
        let sealed = seal_secret(&master(3), "CAIRNAAA", "secret-text").unwrap();
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .unwrap();
        bytes[NONCE_LEN] ^= 1;
        let altered = format!(
            "{head}:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes)
        );
        assert_eq!(
            open_secret(Some(&ring(3)), "CAIRNAAA", &altered),
            Err(SseError::Authentication)
        );
        let truncated = format!("{head}:AAAA");
        assert!(matches!(
            open_secret(Some(&ring(3)), "CAIRNAAA", &truncated),
            Err(SseError::Malformed { .. })
        ));
        assert_eq!(
            open_secret(None, "CAIRNAAA", "legacy-plain-secret")
                .unwrap()
                .as_str(),
            "legacy-plain-secret"
        );
    }
}
