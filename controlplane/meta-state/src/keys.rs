//! Order-preserving byte encodings of every key space's keys, for a store that sorts keys by
//! `memcmp` (LMDB).
//!
//! Invariant (tested): for any two keys of one key space, comparing the encoded bytes gives the
//! same answer as comparing the in-memory tuples (`BTreeMap` order), so an LMDB cursor walks a key
//! space in exactly the order `StateMachine` iterates it, and a ListObjects range scan is a cursor
//! range scan.
//!
//! Layout: each key starts with a one-byte key-space tag so that all key spaces can share one LMDB
//! database if wanted. String components are escaped (`0x00` -> `0x00 0xFF`) and terminated by
//! `0x00 0x01`: the terminator sorts below every escaped byte, so a string sorts before every
//! longer string it prefixes, as in `Ord for str`. Integers are big-endian fixed width.

use crate::codec::DecodeError;
use crate::records::{GarbageId, NodeId, UploadId, VersionId};

/// First byte of every encoded key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KeySpace {
    Bucket = 1,
    ObjectVersion = 2,
    Upload = 3,
    Garbage = 4,
    AccessKey = 5,
    Node = 6,
    /// Derived index: (bucket, key) -> current version id.
    Current = 7,
    /// Derived index: (bucket, key, token) -> version id.
    Token = 8,
    /// Versions readers found bad pieces of: (bucket, key, version id).
    Suspect = 9,
    KmsKey = 10,
    /// Replication queue entries by seq.
    Replication = 11,
}

const ESCAPE: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

struct KeyWriter(Vec<u8>);

impl KeyWriter {
    fn new(space: KeySpace) -> Self {
        KeyWriter(vec![space as u8])
    }

    fn string(mut self, text: &str) -> Self {
        for &byte in text.as_bytes() {
            self.0.push(byte);
            if byte == 0 {
                self.0.push(ESCAPE);
            }
        }
        self.0.extend_from_slice(&[0, TERMINATOR]);
        self
    }

    fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn u32(mut self, value: u32) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
}

struct KeyReader<'a> {
    input: &'a [u8],
    offset: usize,
}

impl<'a> KeyReader<'a> {
    fn new(input: &'a [u8], space: KeySpace) -> Result<Self, DecodeError> {
        match input.first() {
            None => Err(DecodeError::UnexpectedEnd {
                offset: 0,
                needed: 1,
            }),
            Some(&tag) if tag != space as u8 => Err(DecodeError::WrongKind {
                expected: space as u8,
                found: tag,
            }),
            Some(_) => Ok(KeyReader { input, offset: 1 }),
        }
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let start = self.offset;
        let mut bytes = Vec::new();
        loop {
            let Some(&byte) = self.input.get(self.offset) else {
                return Err(DecodeError::UnexpectedEnd {
                    offset: self.offset,
                    needed: 2,
                });
            };
            self.offset += 1;
            if byte != 0 {
                bytes.push(byte);
                continue;
            }
            let offset = self.offset;
            match self.input.get(self.offset) {
                Some(&ESCAPE) => bytes.push(0),
                Some(&TERMINATOR) => {
                    self.offset += 1;
                    break;
                }
                Some(&tag) => {
                    return Err(DecodeError::InvalidTag {
                        what: "key string escape",
                        tag,
                        offset,
                    });
                }
                None => {
                    return Err(DecodeError::UnexpectedEnd { offset, needed: 1 });
                }
            }
            self.offset += 1;
        }
        String::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { offset: start })
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let remaining = self.input.len() - self.offset;
        if remaining < N {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.offset,
                needed: N - remaining,
            });
        }
        let mut array = [0u8; N];
        array.copy_from_slice(&self.input[self.offset..self.offset + N]);
        self.offset += N;
        Ok(array)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn finish<T>(self, value: T) -> Result<T, DecodeError> {
        match self.input.len() - self.offset {
            0 => Ok(value),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

pub fn bucket_key(bucket: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::Bucket).string(bucket).0
}

pub fn decode_bucket_key(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::Bucket)?;
    let bucket = reader.string()?;
    reader.finish(bucket)
}

pub fn object_version_key(bucket: &str, key: &str, version_id: VersionId) -> Vec<u8> {
    KeyWriter::new(KeySpace::ObjectVersion)
        .string(bucket)
        .string(key)
        .u64(version_id.0)
        .0
}

/// The common prefix of every version key of one object (a cursor range for its versions).
pub fn object_versions_prefix(bucket: &str, key: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::ObjectVersion)
        .string(bucket)
        .string(key)
        .0
}

pub fn decode_object_version_key(bytes: &[u8]) -> Result<(String, String, VersionId), DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::ObjectVersion)?;
    let bucket = reader.string()?;
    let key = reader.string()?;
    let version_id = VersionId(reader.u64()?);
    reader.finish((bucket, key, version_id))
}

pub fn current_key(bucket: &str, key: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::Current)
        .string(bucket)
        .string(key)
        .0
}

pub fn decode_current_key(bytes: &[u8]) -> Result<(String, String), DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::Current)?;
    let bucket = reader.string()?;
    let key = reader.string()?;
    reader.finish((bucket, key))
}

pub fn token_key(bucket: &str, key: &str, token: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::Token)
        .string(bucket)
        .string(key)
        .string(token)
        .0
}

pub fn upload_key(bucket: &str, key: &str, upload_id: UploadId) -> Vec<u8> {
    KeyWriter::new(KeySpace::Upload)
        .string(bucket)
        .string(key)
        .u64(upload_id.0)
        .0
}

pub fn decode_upload_key(bytes: &[u8]) -> Result<(String, String, UploadId), DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::Upload)?;
    let bucket = reader.string()?;
    let key = reader.string()?;
    let upload_id = UploadId(reader.u64()?);
    reader.finish((bucket, key, upload_id))
}

pub fn garbage_key(garbage_id: GarbageId) -> Vec<u8> {
    KeyWriter::new(KeySpace::Garbage)
        .u64(garbage_id.log_index)
        .u32(garbage_id.sequence)
        .0
}

pub fn decode_garbage_key(bytes: &[u8]) -> Result<GarbageId, DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::Garbage)?;
    let log_index = reader.u64()?;
    let sequence = reader.u32()?;
    reader.finish(GarbageId {
        log_index,
        sequence,
    })
}

pub fn access_key_key(access_key_id: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::AccessKey).string(access_key_id).0
}

pub fn node_key(node_id: NodeId) -> Vec<u8> {
    KeyWriter::new(KeySpace::Node).u64(node_id.0).0
}

pub fn decode_node_key(bytes: &[u8]) -> Result<NodeId, DecodeError> {
    let mut reader = KeyReader::new(bytes, KeySpace::Node)?;
    let node_id = NodeId(reader.u64()?);
    reader.finish(node_id)
}

pub fn suspect_key(bucket: &str, key: &str, version_id: VersionId) -> Vec<u8> {
    KeyWriter::new(KeySpace::Suspect)
        .string(bucket)
        .string(key)
        .u64(version_id.0)
        .0
}

pub fn kms_key_key(key_id: &str) -> Vec<u8> {
    KeyWriter::new(KeySpace::KmsKey).string(key_id).0
}

pub fn replication_key(seq: u64) -> Vec<u8> {
    KeyWriter::new(KeySpace::Replication).u64(seq).0
}
