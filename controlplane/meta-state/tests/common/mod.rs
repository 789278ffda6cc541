//! Test harness: drives a state machine with consecutive log indexes and, after every command,
//! checks the invariants, that a snapshot round trip reproduces the state exactly, and that the
//! stored form written incrementally (each command's change set applied to a model store)
//! reproduces it too.
#![allow(dead_code)]

use std::collections::BTreeMap;

use cairn_meta_state::*;

pub const SCHEME: &str = "isal-cauchy:4+2";
pub const OWNER: &str = "owner-alice";
pub const BUCKET: &str = "photos";
pub const PIECE_SIZE_BYTES: u32 = 65_536;

pub struct Harness {
    pub state: StateMachine,
    pub next_log_index: u64,
    /// The stored form as a store that applied every change set holds it.
    pub stored: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The change set of the last command.
    pub last_changes: cairn_meta_state::stored::StoredChanges,
}

impl Harness {
    pub fn new(role: Role) -> Self {
        Harness {
            state: StateMachine::new(role),
            next_log_index: 1,
            stored: BTreeMap::new(),
            last_changes: Default::default(),
        }
    }

    /// A Combined instance with bucket `photos` owned by alice.
    pub fn with_bucket() -> Self {
        let mut harness = Harness::new(Role::Combined);
        harness.ok(create_bucket(BUCKET, OWNER));
        harness
    }

    pub fn apply(&mut self, command: Command) -> Output {
        let log_index = self.next_log_index;
        self.next_log_index += 1;
        let output = self.state.apply(command, log_index);
        self.state
            .check_invariants()
            .unwrap_or_else(|violation| panic!("invariant violated at {log_index}: {violation}"));
        let bytes = self.state.to_snapshot_bytes();
        let restored = StateMachine::from_snapshot_bytes(&bytes).expect("snapshot decodes");
        assert_eq!(restored, self.state, "snapshot round trip at {log_index}");
        let changes = self.state.take_changes();
        let again = self.state.take_changes();
        assert!(again.puts.is_empty() && again.deletes.is_empty());
        changes.apply_to(&mut self.stored);
        let loaded = StateMachine::from_stored(
            &changes.header,
            self.stored
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_slice())),
        )
        .expect("stored form loads");
        assert_eq!(loaded, self.state, "stored form at {log_index}");
        let assembled = cairn_meta_state::stored::snapshot_from_stored(
            &changes.header,
            self.stored
                .iter()
                .map(|(key, value)| (key.as_slice(), value.as_slice())),
        )
        .expect("snapshot assembles from the stored form");
        assert!(
            assembled == bytes,
            "snapshot from the stored form at {log_index}"
        );
        self.last_changes = changes;
        output
    }

    pub fn ok(&mut self, command: Command) -> Response {
        let output = self.apply(command);
        match output.result {
            Ok(response) => response,
            Err(error) => panic!("unexpected refusal: {error:?}"),
        }
    }

    pub fn err(&mut self, command: Command) -> MetaError {
        let output = self.apply(command);
        match output.result {
            Ok(response) => panic!("unexpected success: {response:?}"),
            Err(error) => error,
        }
    }

    pub fn query(&self, query: Query) -> Result<Response, MetaError> {
        self.state.query(&query)
    }

    /// PrepareWrite + CommitWrite with a 4+2 shard map; returns the committed record.
    pub fn put(&mut self, key: &str, size_bytes: u64, versioning: VersioningState) -> ObjectRecord {
        let token = format!("token-{}", self.next_log_index);
        let record = match self.ok(prepare(BUCKET, key, &token, size_bytes, versioning)) {
            Response::Prepared { record, .. } => record,
            other => panic!("unexpected {other:?}"),
        };
        match self.ok(commit(BUCKET, key, record.version_id, &token, size_bytes)) {
            Response::Committed { record, .. } => record,
            other => panic!("unexpected {other:?}"),
        }
    }

    pub fn get(&self, key: &str, version: VersionSelector) -> Result<ObjectRecord, MetaError> {
        self.query(Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version,
        })
        .map(|response| match response {
            Response::Object(record) => record,
            other => panic!("unexpected {other:?}"),
        })
    }

    pub fn garbage(&self) -> Vec<GarbageRecord> {
        match self.query(Query::ListGarbage {
            after: None,
            limit: 1000,
        }) {
            Ok(Response::Garbage(entries)) => entries,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Every version and delete marker of `BUCKET` in `state`: by key, newest first within a key
/// (one listing page, so at most `MAX_LIST_KEYS` of them).
pub fn bucket_versions(state: &StateMachine) -> Vec<VersionSummary> {
    match state.query(&Query::ListVersions(ListVersionsRequest {
        bucket: BUCKET.to_owned(),
        max_keys: u32::MAX,
        ..Default::default()
    })) {
        Ok(Response::VersionList(page)) => page.versions,
        other => panic!("unexpected {other:?}"),
    }
}

pub fn create_bucket(bucket: &str, owner: &str) -> Command {
    Command::CreateBucket(CreateBucket {
        bucket: bucket.to_owned(),
        owner: owner.to_owned(),
        primary_region: "eu-west-1".to_owned(),
        ec_scheme: SCHEME.to_owned(),
        acl: Acl::default(),
        now_ms: 1_000,
        attributes: Default::default(),
    })
}

pub fn prepare(
    bucket: &str,
    key: &str,
    token: &str,
    size_bytes: u64,
    versioning: VersioningState,
) -> Command {
    Command::PrepareWrite(PrepareWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        idempotency_token: token.to_owned(),
        size_bytes,
        content_type: "image/jpeg".to_owned(),
        owner: OWNER.to_owned(),
        user_metadata: BTreeMap::from([("camera".to_owned(), "x100".to_owned())]),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        ec_scheme: SCHEME.to_owned(),
        piece_size_bytes: PIECE_SIZE_BYTES,
        versioning,
        now_ms: 10_000,
        attributes: Default::default(),
    })
}

/// A block of `length_bytes` with shards `indexes` on nodes 100 + index, AZ by index % 3.
pub fn block(length_bytes: u64, indexes: impl IntoIterator<Item = u16>) -> BlockShards {
    BlockShards {
        length_bytes,
        shards: indexes
            .into_iter()
            .map(|index| {
                (
                    ShardIndex(index),
                    ShardPlacement {
                        node_id: NodeId(100 + u64::from(index)),
                        availability_zone: format!("az-{}", index % 3),
                        crc32c: 0xC0DE_0000 + u32::from(index),
                    },
                )
            })
            .collect(),
    }
}

/// One part of `size_bytes` in one full 4+2 block (no blocks for an empty object).
pub fn shard_map(size_bytes: u64) -> Vec<PartShards> {
    vec![PartShards {
        part_number: 1,
        length_bytes: size_bytes,
        blocks: if size_bytes == 0 {
            Vec::new()
        } else {
            vec![block(size_bytes, 0..6)]
        },
    }]
}

pub fn checksums(etag: &str) -> Checksums {
    Checksums {
        etag: etag.to_owned(),
        additional: None,
    }
}

pub fn commit(
    bucket: &str,
    key: &str,
    version_id: VersionId,
    token: &str,
    size_bytes: u64,
) -> Command {
    Command::CommitWrite(CommitWrite {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id,
        idempotency_token: token.to_owned(),
        checksums: checksums("9e107d9d372bb6826bd81d3542a419d6"),
        parts: shard_map(size_bytes),
        now_ms: 20_000,
    })
}

pub fn delete(key: &str, version: VersionSelector, versioning: VersioningState) -> Command {
    Command::DeleteObject(DeleteObject {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version,
        versioning,
        owner: OWNER.to_owned(),
        now_ms: 30_000,
    })
}

/// CreateMultipartUpload of `key` in BUCKET (storage class STANDARD_IA, canned ACL
/// bucket-owner-full-control), applied; the new upload.
pub fn create_upload(harness: &mut Harness, key: &str) -> MultipartUpload {
    let response = harness.ok(create_upload_command(key, Attributes::new()));
    match response {
        Response::Upload(upload) => upload,
        other => panic!("unexpected {other:?}"),
    }
}

/// The CreateMultipartUpload [`create_upload`] applies, with `attributes`.
pub fn create_upload_command(key: &str, attributes: Attributes) -> Command {
    Command::CreateMultipartUpload(CreateMultipartUpload {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        owner: OWNER.to_owned(),
        content_type: "video/mp4".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::StandardInfrequentAccess,
        acl: Acl {
            canned: CannedAcl::BucketOwnerFullControl,
            grants: Vec::new(),
        },
        ec_scheme: SCHEME.to_owned(),
        piece_size_bytes: PIECE_SIZE_BYTES,
        now_ms: 5_000,
        attributes,
    })
}

/// UploadPart of `size_bytes` with ETag `"etag-<part>-<size>"` and one 4+2 block.
pub fn upload_part(key: &str, upload_id: UploadId, part_number: u32, size_bytes: u64) -> Command {
    Command::UploadPart(UploadPart {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        upload_id,
        part_number,
        size_bytes,
        etag: format!("etag-{part_number}-{size_bytes}"),
        checksum: None,
        blocks: vec![block(size_bytes, 0..6)],
        now_ms: 6_000 + u64::from(part_number),
    })
}

/// CompleteMultipartUpload of `parts` (part number, size), naming each part's ETag as
/// [`upload_part`] made it.
pub fn complete(
    key: &str,
    upload_id: UploadId,
    parts: &[(u32, u64)],
    versioning: VersioningState,
) -> Command {
    Command::CompleteMultipartUpload(CompleteMultipartUpload {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        upload_id,
        parts: parts
            .iter()
            .map(|(part_number, size_bytes)| CompletedPart {
                part_number: *part_number,
                etag: format!("\"etag-{part_number}-{size_bytes}\""),
            })
            .collect(),
        checksums: checksums("0123456789abcdef0123456789abcdef-2"),
        versioning,
        now_ms: 9_000,
    })
}
