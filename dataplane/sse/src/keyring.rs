//! The master keyring: the cluster master key file with room for rotation.
//!
//! File format (text, mode 0600): one key per line, 64 hexadecimal digits each; the first line is
//! the *active* key, which wraps everything new; later lines are *retired* keys, kept only to open
//! what they wrapped before a rotation. Blank lines and whitespace around a key are ignored, so a
//! file of one key (the format before rotation existed) is a valid keyring of one active key.
//!
//! Every wrapped item records the 8-byte id of the master key that wrapped it (SSE-S3 envelopes,
//! KMS key material, sealed access-key secrets); opening picks the key by that id
//! ([`MasterKeyRing::by_id`]), and an id missing from the file is [`SseError::WrongMasterKey`],
//! which names the id only.
//!
//! Rotation ([`rotate_key_file`]) writes a new random key in front of the existing ones and
//! replaces the file atomically (temporary file in the same directory, fsync, rename, fsync of
//! the directory). Processes that hold a [`MasterKeyFile`] see the new ring within about a second
//! (the file's modification time and length are checked at most once a second, like the CRL).
//!
//! Invariants: the ring is never empty; no two entries share an id; key bytes never reach a
//! `Debug` output or an error message.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use zeroize::Zeroizing;

use crate::SseError;
use crate::keys::{KEY_BYTES, MasterKey};

/// How often a [`MasterKeyFile`] looks at its file's modification time.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The active master key and the retired ones still needed to open older items.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKeyRing {
    /// `keys[0]` is the active key.
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MasterKeyRing")
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

fn key_file_error(path: &Path, message: impl Into<String>) -> SseError {
    SseError::KeyFile {
        path: path.display().to_string(),
        message: message.into(),
    }
}

impl MasterKeyRing {
    /// A ring of one active key.
    pub fn single(active: MasterKey) -> Self {
        Self { keys: vec![active] }
    }

    /// A ring of `active` and the retired keys (duplicates of earlier entries dropped).
    pub fn new(active: MasterKey, retired: impl IntoIterator<Item = MasterKey>) -> Self {
        let mut ring = Self::single(active);
        for key in retired {
            if ring.by_id(&key.key_id()).is_err() {
                ring.keys.push(key);
            }
        }
        ring
    }

    /// The key that wraps everything new.
    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// The keys kept only to open older items.
    pub fn retired(&self) -> &[MasterKey] {
        &self.keys[1..]
    }

    /// Ids of every key, the active one first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(MasterKey::key_id).collect()
    }

    /// The key whose [`MasterKey::key_id`] is `key_id`, or [`SseError::WrongMasterKey`].
    pub fn by_id(&self, key_id: &str) -> Result<&MasterKey, SseError> {
        self.keys
            .iter()
            .find(|key| key.key_id() == key_id)
            .ok_or_else(|| SseError::WrongMasterKey {
                recorded_key_id: key_id.to_owned(),
            })
    }

    /// Whether `key_id` names the active key.
    pub fn is_active(&self, key_id: &str) -> bool {
        self.active().key_id() == key_id
    }

    /// Parses the key file's text (see the module header). `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SseError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let mut bytes = Zeroizing::new([0u8; KEY_BYTES]);
            hex::decode_to_slice(line, &mut bytes[..]).map_err(|_| {
                key_file_error(
                    path,
                    format!("line {}: expected 64 hexadecimal characters", index + 1),
                )
            })?;
            let key = MasterKey::from_bytes(*bytes);
            if keys
                .iter()
                .any(|existing| existing.key_id() == key.key_id())
            {
                return Err(key_file_error(
                    path,
                    format!("line {}: the same key appears twice", index + 1),
                ));
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(key_file_error(path, "expected 64 hexadecimal characters"));
        }
        Ok(Self { keys })
    }

    /// The file text of this ring: one key per line, the active key first.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(self.keys.len() * 65));
        for key in &self.keys {
            text.push_str(&hex::encode(key.expose_bytes()));
            text.push('\n');
        }
        text
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, SseError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|error| key_file_error(path, error.to_string()))?,
        );
        Self::parse(&text, path)
    }

    /// Loads the key file, or creates it (mode 0600, one new random key) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SseError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = MasterKey::generate()?;
        key.write_new(path)?;
        Ok(Self::single(key))
    }

    /// Replaces the file at `path` with this ring, atomically: a temporary file (mode 0600) in
    /// the same directory, fsync, rename over `path`, fsync of the directory.
    pub fn write_atomically(&self, path: &Path) -> Result<(), SseError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let failed = |error: std::io::Error| key_file_error(path, error.to_string());
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| key_file_error(path, "not a file name"))?;
        let suffix: [u8; 8] = crate::keys::random_bytes()?;
        let temporary = directory.join(format!(
            ".{}.{}.tmp",
            file_name.to_string_lossy(),
            hex::encode(suffix)
        ));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)
                .map_err(failed)?;
            file.write_all(self.to_file_text().as_bytes())
                .map_err(failed)?;
            file.sync_all().map_err(failed)?;
            std::fs::rename(&temporary, path).map_err(failed)?;
            std::fs::File::open(&directory)
                .and_then(|directory| directory.sync_all())
                .map_err(failed)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    }
}

/// What [`rotate_key_file`] did: ids only, never key bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub new_active_key_id: String,
    pub retired_key_ids: Vec<String>,
}

/// Puts a new random active key in front of the keys in the file at `path` (which must exist)
/// and replaces the file atomically.
pub fn rotate_key_file(path: &Path) -> Result<Rotation, SseError> {
    let ring = MasterKeyRing::load(path)?;
    let new_key = MasterKey::generate()?;
    let rotated = MasterKeyRing::new(new_key, ring.keys.iter().cloned());
    rotated.write_atomically(path)?;
    Ok(Rotation {
        new_active_key_id: rotated.active().key_id(),
        retired_key_ids: rotated.retired().iter().map(MasterKey::key_id).collect(),
    })
}

/// Removes the retired keys from the file at `path`, keeping only its active key (atomic replace,
/// mode 0600); answers the ids removed. Run it only after a rewrap reported nothing left under
/// them: whatever they still wrap no longer opens.
pub fn drop_retired_keys(path: &Path) -> Result<Vec<String>, SseError> {
    let ring = MasterKeyRing::load(path)?;
    let removed = ring.retired().iter().map(MasterKey::key_id).collect();
    MasterKeyRing::single(ring.active().clone()).write_atomically(path)?;
    Ok(removed)
}

/// A file's identity for change detection: modification time and length.
type FileStamp = (Option<SystemTime>, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok(), metadata.len()))
}

struct Loaded {
    ring: Arc<MasterKeyRing>,
    stamp: Option<FileStamp>,
    checked_at: Instant,
}

/// The master keyring of a running process: re-read from its file when the file changes
/// (checked at most every [`RELOAD_CHECK_INTERVAL`]). A file that changes into something
/// unreadable keeps the previous ring and reports the error through [`Self::current_checked`].
pub struct MasterKeyFile {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

impl std::fmt::Debug for MasterKeyFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MasterKeyFile")
            .field("path", &self.path)
            .finish()
    }
}

/// What a check of the file found, when it found a change.
#[derive(Debug)]
pub enum Reload {
    /// The file changed and the new ring is in use.
    Reloaded,
    /// The file changed but cannot be read: the previous ring stays in use.
    Failed(SseError),
}

impl MasterKeyFile {
    /// Loads the ring from `path`, watching the file from now on.
    pub fn open(path: &Path) -> Result<Self, SseError> {
        let stamp_before = stamp(path);
        let ring = MasterKeyRing::load(path)?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            loaded: Mutex::new(Loaded {
                ring: Arc::new(ring),
                stamp: stamp_before,
                checked_at: Instant::now(),
            }),
        })
    }

    /// Like [`Self::open`], creating the file (one new key) when it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self, SseError> {
        MasterKeyRing::load_or_create(path)?;
        Self::open(path)
    }

    /// A fixed ring with no file behind it (tests, embedded uses).
    pub fn fixed(ring: MasterKeyRing) -> Self {
        Self {
            path: None,
            loaded: Mutex::new(Loaded {
                ring: Arc::new(ring),
                stamp: None,
                checked_at: Instant::now(),
            }),
        }
    }

    /// The file this ring comes from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The current ring (re-read first if the file changed and a check is due).
    pub fn current(&self) -> Arc<MasterKeyRing> {
        self.current_checked().0
    }

    /// The current ring, and what a reload attempted now did (the caller logs it; an error
    /// names the path only).
    pub fn current_checked(&self) -> (Arc<MasterKeyRing>, Option<Reload>) {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(path) = &self.path else {
            return (loaded.ring.clone(), None);
        };
        if loaded.checked_at.elapsed() < RELOAD_CHECK_INTERVAL {
            return (loaded.ring.clone(), None);
        }
        loaded.checked_at = Instant::now();
        let now = stamp(path);
        if now == loaded.stamp {
            return (loaded.ring.clone(), None);
        }
        match MasterKeyRing::load(path) {
            Ok(ring) => {
                loaded.ring = Arc::new(ring);
                loaded.stamp = now;
                (loaded.ring.clone(), Some(Reload::Reloaded))
            }
            Err(error) => {
                // Retry at the next check even if the stamp stays as it is now.
                (loaded.ring.clone(), Some(Reload::Failed(error)))
            }
        }
    }

    /// Re-reads the file now, whatever the interval (used after a rotation in this process).
    pub fn reload_now(&self) -> Result<Arc<MasterKeyRing>, SseError> {
        let Some(path) = &self.path else {
            return Ok(self.current());
        };
        let now = stamp(path);
        let ring = Arc::new(MasterKeyRing::load(path)?);
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        loaded.ring = ring.clone();
        loaded.stamp = now;
        loaded.checked_at = Instant::now();
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; KEY_BYTES])
    }

    #[test]
    fn one_line_files_stay_valid_and_rings_round_trip() {
        let path = Path::new("master-key");
        let single = MasterKeyRing::parse(&format!("  {}  \n", "0a".repeat(32)), path).unwrap();
        assert_eq!(single.active(), &key(0x0a));
        assert!(single.retired().is_empty());
        let ring = MasterKeyRing::new(key(1), [key(2), key(3), key(2)]);
        assert_eq!(ring.retired().len(), 2, "duplicates dropped");
        let text = ring.to_file_text();
        assert_eq!(text.lines().count(), 3);
        assert!(text.starts_with(&"01".repeat(32)));
        let parsed = MasterKeyRing::parse(&format!("\n{}\n\n", text.as_str()), path).unwrap();
        assert_eq!(parsed, ring);
        assert_eq!(parsed.key_ids(), ring.key_ids());
        assert!(parsed.is_active(&key(1).key_id()));
        assert!(!parsed.is_active(&key(2).key_id()));
    }

    #[test]
    fn bad_files_are_refused_without_showing_key_bytes() {
        let path = Path::new("/somewhere/master-key");
        let good = "ab".repeat(32);
        for text in [
            String::new(),
            "\n  \n".to_owned(),
            format!("{good}\nnot hex"),
            format!("{good}\n{}", "ab".repeat(31)),
            format!("{good}\n{good}"),
        ] {
            let error = MasterKeyRing::parse(&text, path).unwrap_err();
            assert!(matches!(error, SseError::KeyFile { .. }), "{text:?}");
            assert!(!error.to_string().contains(&good[..16]), "{error}");
        }
        let ring = MasterKeyRing::new(key(0xab), [key(0xcd)]);
        let shown = format!("{ring:?}");
        assert!(
            !shown.contains("abab") && !shown.contains("cdcd"),
            "{shown}"
        );
    }

    #[test]
    fn keys_are_found_by_id_and_a_missing_id_is_named() {
        let ring = MasterKeyRing::new(key(1), [key(2)]);
        assert_eq!(ring.by_id(&key(2).key_id()).unwrap(), &key(2));
        assert_eq!(ring.by_id(&key(1).key_id()).unwrap(), &key(1));
        let missing = key(3).key_id();
        let error = ring.by_id(&missing).unwrap_err();
        assert_eq!(
            error,
            SseError::WrongMasterKey {
                recorded_key_id: missing.clone()
            }
        );
        assert!(error.to_string().contains(&missing));
    }

    #[test]
    fn rotation_puts_a_new_key_first_atomically_with_owner_only_mode() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("master-key");
        let original = MasterKeyRing::load_or_create(&path).unwrap();
        let watched = MasterKeyFile::open(&path).unwrap();
        let rotation = rotate_key_file(&path).unwrap();
        assert_eq!(rotation.retired_key_ids, original.key_ids());
        let rotated = MasterKeyRing::load(&path).unwrap();
        assert_eq!(rotated.active().key_id(), rotation.new_active_key_id);
        assert_ne!(rotated.active(), original.active());
        assert_eq!(rotated.retired(), std::slice::from_ref(original.active()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
        // A second rotation keeps both older keys.
        rotate_key_file(&path).unwrap();
        assert_eq!(MasterKeyRing::load(&path).unwrap().retired().len(), 2);
        // The watcher picks the file up once its check is due.
        std::thread::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(50));
        let (ring, event) = watched.current_checked();
        assert!(matches!(event, Some(Reload::Reloaded)));
        assert_eq!(ring.retired().len(), 2);
        assert_eq!(watched.reload_now().unwrap().retired().len(), 2);
        assert!(rotate_key_file(&directory.path().join("absent")).is_err());
        // Dropping the retired keys keeps the active one only.
        let active = MasterKeyRing::load(&path).unwrap().active().clone();
        assert_eq!(drop_retired_keys(&path).unwrap().len(), 2);
        let dropped = MasterKeyRing::load(&path).unwrap();
        assert_eq!(dropped, MasterKeyRing::single(active));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(drop_retired_keys(&path).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_watched_file_that_turns_bad_keeps_the_previous_ring() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("master-key");
        let original = MasterKeyRing::load_or_create(&path).unwrap();
        let watched = MasterKeyFile::open(&path).unwrap();
        std::fs::write(&path, "garbage that is longer than before\n").unwrap();
        std::thread::sleep(RELOAD_CHECK_INTERVAL + Duration::from_millis(50));
        let (ring, failed) = watched.current_checked();
        assert_eq!(ring.active(), original.active());
        assert!(matches!(
            failed,
            Some(Reload::Failed(SseError::KeyFile { .. }))
        ));
        assert!(watched.reload_now().is_err());
        assert_eq!(watched.current().active(), original.active());
    }
}
