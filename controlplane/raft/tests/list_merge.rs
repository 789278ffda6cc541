//! The client's ListObjects merge over P partitions returns exactly the pages (entries, common
//! prefixes, truncation, continuation tokens) that one state machine holding every key returns,
//! for every prefix/delimiter/page size combination tried, page after page.

use cairn_meta_state::{
    Acl, Checksums, Command, CommitWrite, CreateBucket, CreateMultipartUpload, DeleteObject,
    ListObjectsPage, ListObjectsRequest, ListUploadsPage, ListUploadsRequest, ListVersionsPage,
    ListVersionsRequest, PrepareWrite, Query, Response, Role, StateMachine, StorageClass,
    VersionSelector, VersioningState,
};
use cairn_raft::PartitionRing;
use cairn_raft::client::{
    ListObjectsMerge, ListVersionsMerge, PagedMerge, PartitionListing, merge_list_pages,
    merge_upload_pages, merge_version_pages,
};

const BUCKET: &str = "photos";
const PARTITION_COUNT: u32 = 5;

struct Machines {
    versioning: VersioningState,
    oracle: StateMachine,
    partitions: Vec<StateMachine>,
    ring: PartitionRing,
    next_index: u64,
}

impl Machines {
    fn new(versioning: VersioningState) -> Machines {
        let mut oracle = StateMachine::new(Role::Combined);
        let created = oracle.apply(
            Command::CreateBucket(CreateBucket {
                bucket: BUCKET.to_owned(),
                owner: "owner".to_owned(),
                primary_region: "eu-west-1".to_owned(),
                ec_scheme: "isal-cauchy:4+2".to_owned(),
                acl: Acl::default(),
                now_ms: 1,
                attributes: Default::default(),
            }),
            1,
        );
        assert!(created.is_ok());
        if versioning == VersioningState::Enabled {
            let enabled = oracle.apply(
                Command::PutBucketVersioning {
                    bucket: BUCKET.to_owned(),
                    versioning,
                },
                2,
            );
            assert!(enabled.is_ok());
        }
        Machines {
            versioning,
            oracle,
            partitions: (0..PARTITION_COUNT)
                .map(|partition_index| {
                    StateMachine::new(Role::ObjectPartition {
                        partition_index,
                        partition_count: PARTITION_COUNT,
                    })
                })
                .collect(),
            ring: PartitionRing::new(PARTITION_COUNT),
            next_index: 3,
        }
    }

    /// Applies `command` to the oracle and to the partition owning `key`.
    fn apply(&mut self, key: &str, command: Command) -> Response {
        let index = self.next_index;
        self.next_index += 1;
        let partition = self.ring.partition_of(BUCKET, key) as usize;
        let from_partition = self.partitions[partition].apply(command.clone(), index);
        let from_oracle = self.oracle.apply(command, index);
        assert_eq!(from_partition.result, from_oracle.result);
        from_oracle.result.expect("command applies")
    }

    fn put(&mut self, key: &str) {
        let token = format!("t-{key}");
        let prepared = self.apply(
            key,
            Command::PrepareWrite(PrepareWrite {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                idempotency_token: token.clone(),
                size_bytes: 0,
                content_type: "text/plain".to_owned(),
                owner: "owner".to_owned(),
                user_metadata: Default::default(),
                storage_class: StorageClass::Standard,
                acl: Acl::default(),
                ec_scheme: "isal-cauchy:4+2".to_owned(),
                piece_size_bytes: 65_536,
                versioning: self.versioning,
                now_ms: 10,
                attributes: Default::default(),
            }),
        );
        let Response::Prepared { record, .. } = prepared else {
            panic!("prepare answered {prepared:?}")
        };
        self.apply(
            key,
            Command::CommitWrite(CommitWrite {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                version_id: record.version_id,
                idempotency_token: token,
                checksums: Checksums {
                    etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                    additional: None,
                },
                parts: Vec::new(),
                now_ms: 20,
            }),
        );
    }

    fn delete(&mut self, key: &str) {
        self.apply(
            key,
            Command::DeleteObject(DeleteObject {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                version: VersionSelector::Current,
                versioning: self.versioning,
                owner: "owner".to_owned(),
                now_ms: 30,
            }),
        );
    }

    fn create_upload(&mut self, key: &str) {
        self.apply(
            key,
            Command::CreateMultipartUpload(CreateMultipartUpload {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                owner: "owner".to_owned(),
                content_type: "text/plain".to_owned(),
                user_metadata: Default::default(),
                storage_class: StorageClass::Standard,
                acl: Acl::default(),
                ec_scheme: "isal-cauchy:4+2".to_owned(),
                piece_size_bytes: 65_536,
                now_ms: 40,
                attributes: Default::default(),
            }),
        );
    }

    fn oracle_versions(&self, request: &ListVersionsRequest) -> ListVersionsPage {
        match self.oracle.query(&Query::ListVersions(request.clone())) {
            Ok(Response::VersionList(page)) => page,
            other => panic!("oracle versions: {other:?}"),
        }
    }

    fn merged_versions(&self, request: &ListVersionsRequest) -> ListVersionsPage {
        let pages = self
            .partitions
            .iter()
            .map(
                |partition| match partition.query(&Query::ListVersions(request.clone())) {
                    Ok(Response::VersionList(page)) => page,
                    other => panic!("partition versions: {other:?}"),
                },
            )
            .collect();
        merge_version_pages(pages, request.max_keys)
    }

    fn oracle_uploads(&self, request: &ListUploadsRequest) -> ListUploadsPage {
        match self.oracle.query(&Query::ListUploads(request.clone())) {
            Ok(Response::UploadList(page)) => page,
            other => panic!("oracle uploads: {other:?}"),
        }
    }

    fn merged_uploads(&self, request: &ListUploadsRequest) -> ListUploadsPage {
        let pages = self
            .partitions
            .iter()
            .map(
                |partition| match partition.query(&Query::ListUploads(request.clone())) {
                    Ok(Response::UploadList(page)) => page,
                    other => panic!("partition uploads: {other:?}"),
                },
            )
            .collect();
        merge_upload_pages(pages, request.max_uploads)
    }

    fn oracle_page(&self, request: &ListObjectsRequest) -> ListObjectsPage {
        match self.oracle.query(&Query::ListObjects(request.clone())) {
            Ok(Response::ObjectList(page)) => page,
            other => panic!("oracle list: {other:?}"),
        }
    }

    fn merged_page(&self, request: &ListObjectsRequest) -> ListObjectsPage {
        let pages = self
            .partitions
            .iter()
            .map(
                |partition| match partition.query(&Query::ListObjects(request.clone())) {
                    Ok(Response::ObjectList(page)) => page,
                    other => panic!("partition list: {other:?}"),
                },
            )
            .collect();
        merge_list_pages(pages, request.max_keys)
    }

    /// Runs `merge` against the partitions as the client does: the page, the number of rounds
    /// and the number of entries (`count` of each answer) the partitions returned.
    fn in_rounds<L: PartitionListing>(
        &self,
        mut merge: PagedMerge<L>,
        first_share: Option<u32>,
        count: impl Fn(&L::Page) -> usize,
    ) -> (L::Page, usize, usize) {
        if let Some(share) = first_share {
            merge = merge.with_first_share(share);
        }
        let (mut rounds, mut fetched) = (0, 0);
        loop {
            let requests = merge.requests();
            if requests.is_empty() {
                return (merge.finish(), rounds, fetched);
            }
            rounds += 1;
            assert!(rounds <= 50, "the rounds do not end");
            for (index, request) in requests {
                let response = self.partitions[index].query(&L::query(request));
                let page = L::page_in(response.expect("partition answers"))
                    .unwrap_or_else(|other| panic!("{} answered {other:?}", L::NAME));
                fetched += count(&page);
                merge.add(index, page);
            }
        }
    }

    /// The ListObjects page as the client builds it, in rounds ([`ListObjectsMerge`]).
    fn merged_in_rounds(
        &self,
        request: &ListObjectsRequest,
        first_share: Option<u32>,
    ) -> (ListObjectsPage, usize, usize) {
        let merge = ListObjectsMerge::new(request.clone(), self.partitions.len());
        self.in_rounds(merge, first_share, |page| {
            page.contents.len() + page.common_prefixes.len()
        })
    }

    /// The ListObjectVersions page as the client builds it, in rounds ([`ListVersionsMerge`]).
    fn versions_in_rounds(
        &self,
        request: &ListVersionsRequest,
        first_share: Option<u32>,
    ) -> (ListVersionsPage, usize, usize) {
        let merge = ListVersionsMerge::new(request.clone(), self.partitions.len());
        self.in_rounds(merge, first_share, |page| {
            page.versions.len() + page.common_prefixes.len()
        })
    }
}

#[test]
fn merged_pages_equal_single_machine_pages() {
    let mut machines = Machines::new(VersioningState::Unversioned);
    // A tree with shared prefixes across partitions, top-level keys, and keys that sort around
    // the delimiter ('.' < '/' < '0').
    for top in 0..12 {
        for middle in 0..8 {
            for leaf in 0..20 {
                machines.put(&format!("dir{top:02}/sub{middle}/file{leaf:02}.jpg"));
            }
            machines.put(&format!("dir{top:02}/sub{middle}.txt"));
        }
        machines.put(&format!("dir{top:02}.manifest"));
        machines.put(&format!("dir{top:02}0"));
    }
    // Deleted keys must vanish from both listings.
    for top in 0..12 {
        machines.delete(&format!("dir{top:02}/sub3/file07.jpg"));
    }
    machines.delete("dir05/sub1.txt");

    let mut pages_compared = 0;
    let (mut max_rounds, mut large_pages) = (0, 0);
    for prefix in ["", "dir03/", "dir03/sub2/", "dir1", "nothing/"] {
        for delimiter in ["", "/"] {
            for max_keys in [1u32, 7, 100, 1000] {
                let mut request = ListObjectsRequest {
                    bucket: BUCKET.to_owned(),
                    prefix: prefix.to_owned(),
                    delimiter: delimiter.to_owned(),
                    max_keys,
                    ..ListObjectsRequest::default()
                };
                // Walk at most 40 pages per combination to bound the test's time.
                for _ in 0..40 {
                    let expected = machines.oracle_page(&request);
                    let merged = machines.merged_page(&request);
                    assert_eq!(
                        merged, expected,
                        "prefix {prefix:?} delimiter {delimiter:?} max_keys {max_keys} \
                         token {:?}",
                        request.continuation_token
                    );
                    let (in_rounds, _, fetched) = machines.merged_in_rounds(&request, None);
                    assert_eq!(
                        in_rounds, expected,
                        "in rounds: prefix {prefix:?} delimiter {delimiter:?} \
                         max_keys {max_keys} token {:?}",
                        request.continuation_token
                    );
                    // A first share of one entry makes later rounds decide the page.
                    let (small_first, rounds, _) = machines.merged_in_rounds(&request, Some(1));
                    assert_eq!(
                        small_first, expected,
                        "first share 1: prefix {prefix:?} delimiter {delimiter:?} \
                         max_keys {max_keys} token {:?}",
                        request.continuation_token
                    );
                    max_rounds = max_rounds.max(rounds);
                    // A full page of plain keys: far less than a whole page per partition.
                    if delimiter.is_empty() && max_keys == 1000 && expected.key_count == 1000 {
                        assert!(fetched < 2 * 1000, "{fetched} entries fetched");
                        large_pages += 1;
                    }
                    pages_compared += 1;
                    if !expected.is_truncated {
                        break;
                    }
                    request.continuation_token = expected.next_continuation_token.clone();
                }
            }
        }
    }
    // start_after instead of a token.
    let request = ListObjectsRequest {
        bucket: BUCKET.to_owned(),
        delimiter: "/".to_owned(),
        start_after: Some("dir04/sub9".to_owned()),
        max_keys: 5,
        ..ListObjectsRequest::default()
    };
    assert_eq!(
        machines.merged_page(&request),
        machines.oracle_page(&request)
    );
    for share in [None, Some(1)] {
        assert_eq!(
            machines.merged_in_rounds(&request, share).0,
            machines.oracle_page(&request)
        );
    }
    assert!(pages_compared > 100);
    assert!(large_pages > 0);
    assert!(
        max_rounds >= 2,
        "no page needed a second round: {max_rounds}"
    );
    println!("at most {max_rounds} rounds");
}

#[test]
fn merged_version_and_upload_pages_equal_single_machine_pages() {
    let mut machines = Machines::new(VersioningState::Enabled);
    for top in 0..6 {
        for leaf in 0..15 {
            let key = format!("dir{top}/file{leaf:02}");
            // Several versions per key, and a delete marker on some.
            for _ in 0..(1 + leaf % 3) {
                machines.put(&key);
            }
            if leaf % 4 == 0 {
                machines.delete(&key);
            }
            if leaf % 5 == 0 {
                machines.create_upload(&key);
                machines.create_upload(&key);
            }
        }
        machines.put(&format!("top{top}"));
    }

    let mut pages_compared = 0;
    let mut max_rounds = 0;
    for prefix in ["", "dir2/", "dir"] {
        for delimiter in ["", "/"] {
            for max_keys in [1u32, 4, 50, 1000] {
                let mut request = ListVersionsRequest {
                    bucket: BUCKET.to_owned(),
                    prefix: prefix.to_owned(),
                    delimiter: delimiter.to_owned(),
                    max_keys,
                    ..ListVersionsRequest::default()
                };
                for _ in 0..60 {
                    let expected = machines.oracle_versions(&request);
                    let merged = machines.merged_versions(&request);
                    assert_eq!(
                        merged, expected,
                        "versions: prefix {prefix:?} delimiter {delimiter:?} max_keys {max_keys} \
                         markers {:?} {:?}",
                        request.key_marker, request.version_id_marker
                    );
                    // In rounds, with the default first share and with one entry (which makes
                    // later rounds decide, resuming inside a key's versions).
                    for share in [None, Some(1)] {
                        let (in_rounds, rounds, _) = machines.versions_in_rounds(&request, share);
                        assert_eq!(
                            in_rounds, expected,
                            "versions in rounds ({share:?}): prefix {prefix:?} delimiter \
                             {delimiter:?} max_keys {max_keys} markers {:?} {:?}",
                            request.key_marker, request.version_id_marker
                        );
                        max_rounds = max_rounds.max(rounds);
                    }
                    pages_compared += 1;
                    if !expected.is_truncated {
                        break;
                    }
                    request.key_marker = expected.next_key_marker.clone();
                    request.version_id_marker = expected.next_version_id_marker;
                }
            }
        }
        for max_uploads in [1u32, 3, 1000] {
            let mut request = ListUploadsRequest {
                bucket: BUCKET.to_owned(),
                prefix: prefix.to_owned(),
                max_uploads,
                ..ListUploadsRequest::default()
            };
            for _ in 0..60 {
                let expected = machines.oracle_uploads(&request);
                let merged = machines.merged_uploads(&request);
                assert_eq!(
                    merged, expected,
                    "uploads: prefix {prefix:?} max {max_uploads}"
                );
                pages_compared += 1;
                if !expected.is_truncated {
                    break;
                }
                request.key_marker = expected.next_key_marker.clone();
                request.upload_id_marker = expected.next_upload_id_marker;
            }
        }
    }
    assert!(pages_compared > 100);
    assert!(max_rounds >= 2, "no version page needed a second round");
}
