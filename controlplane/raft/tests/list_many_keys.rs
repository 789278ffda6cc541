//! ListObjectsV2 over 100,000 keys spread over 8 partitions of a 3-replica cluster (fsync on),
//! checked page by page against a sorted model of S3's semantics: every key, common prefix,
//! truncation flag, key count and page boundary, with and without prefix and delimiter, with
//! start-after, following continuation tokens, at max-keys 1000 and at odd page sizes.
//!
//! The keys go in through the real PUT path (PrepareWrite + CommitWrite through Raft, one log
//! entry each), sent as batches per partition (ClientWriteBatch) by several writers at once.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use cairn_meta_state::{ListObjectsPage, ListObjectsRequest};
use cairn_raft::MetaClient;
use cairn_raft::RaftTiming;
use common::{BUCKET, Cluster, put_batch};

const KEY_COUNT: usize = 100_000;
const PARTITIONS: u32 = 8;
const WRITERS: usize = 8;
/// Keys per writer batch: PrepareWrites of ~1000/8 keys per partition in one request, then their
/// CommitWrites.
const KEYS_PER_BATCH: usize = 1_000;

/// Keys with some structure: 50 top-level "directories" of 40 subdirectories, plus keys at the
/// top level and keys whose names sort between the directories.
fn key(index: usize) -> String {
    match index % 100 {
        0 => format!("top-{index:06}"),
        1 => format!("d{:02}-loose-{index:06}", index % 50),
        _ => format!(
            "d{:02}/s{:02}/object-{index:06}",
            index % 50,
            (index / 50) % 40
        ),
    }
}

/// One expected page: keys, common prefixes, truncated.
type ExpectedPage = (Vec<String>, Vec<String>, bool);

/// S3 ListObjectsV2 over `keys` (sorted): the entries after `start_after` under `prefix`, keys
/// containing `delimiter` after the prefix rolled up into one common prefix each, cut into pages
/// of `max_keys` entries (a common prefix counts as one).
fn model_pages(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: &str,
    start_after: Option<&str>,
    max_keys: usize,
) -> Vec<ExpectedPage> {
    enum Entry {
        Key(String),
        Prefix(String),
    }
    let mut entries: Vec<Entry> = Vec::new();
    for key in keys.iter().filter(|key| key.starts_with(prefix)) {
        if start_after.is_some_and(|after| key.as_str() <= after) {
            continue;
        }
        let rest = &key[prefix.len()..];
        match rest.find(delimiter).filter(|_| !delimiter.is_empty()) {
            Some(position) => {
                let common = format!("{prefix}{}", &rest[..position + delimiter.len()]);
                if !matches!(entries.last(), Some(Entry::Prefix(last)) if *last == common) {
                    entries.push(Entry::Prefix(common));
                }
            }
            None => entries.push(Entry::Key(key.clone())),
        }
    }
    let page_count = entries.len().div_ceil(max_keys).max(1);
    let mut pages = Vec::new();
    let mut entries = entries.into_iter().peekable();
    for page_index in 0..page_count {
        let mut page: ExpectedPage = (Vec::new(), Vec::new(), page_index + 1 < page_count);
        for entry in entries.by_ref().take(max_keys) {
            match entry {
                Entry::Key(key) => page.0.push(key),
                Entry::Prefix(common) => page.1.push(common),
            }
        }
        pages.push(page);
    }
    pages
}

/// Lists through the client following continuation tokens, and compares every page with the
/// model. Returns the number of pages.
async fn check_listing(
    client: &MetaClient,
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: &str,
    start_after: Option<&str>,
    max_keys: u32,
) -> usize {
    let expected = model_pages(keys, prefix, delimiter, start_after, max_keys as usize);
    let mut token = None;
    for (page_index, (expected_keys, expected_prefixes, expected_truncated)) in
        expected.iter().enumerate()
    {
        let page: ListObjectsPage = client
            .list_objects(ListObjectsRequest {
                bucket: BUCKET.to_owned(),
                prefix: prefix.to_owned(),
                delimiter: delimiter.to_owned(),
                start_after: start_after.map(str::to_owned),
                continuation_token: token.take(),
                max_keys,
            })
            .await
            .expect("list")
            .expect("list answer");
        let context = format!(
            "prefix {prefix:?} delimiter {delimiter:?} start-after {start_after:?} \
             max-keys {max_keys}, page {page_index}"
        );
        let listed_keys: Vec<&str> = page
            .contents
            .iter()
            .map(|object| object.key.as_str())
            .collect();
        assert_eq!(listed_keys, *expected_keys, "{context}: keys");
        assert_eq!(
            page.common_prefixes, *expected_prefixes,
            "{context}: common prefixes"
        );
        assert_eq!(
            page.is_truncated, *expected_truncated,
            "{context}: truncation"
        );
        assert_eq!(
            page.key_count as usize,
            expected_keys.len() + expected_prefixes.len(),
            "{context}: key count"
        );
        if page.is_truncated {
            token = Some(
                page.next_continuation_token
                    .expect("token on a truncated page"),
            );
        } else {
            assert!(
                page.next_continuation_token.is_none(),
                "{context}: token on the last page"
            );
        }
    }
    expected.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_objects_over_100k_keys_in_8_partitions_matches_the_model() {
    common::init_tracing();
    // openraft bounds an AppendEntries by the heartbeat interval; under this load a follower's
    // batch (decode, LMDB commit, fsync, on a disk shared by 24 replicas) can take longer than
    // the 50 ms of the fast test timing, which would only add retries.
    let timing = RaftTiming {
        heartbeat_interval_ms: 250,
        election_timeout_min_ms: 1_500,
        election_timeout_max_ms: 3_000,
        // Snapshots rewrite a partition's whole state; one per 100k entries keeps this bulk load
        // from spending its time on them (snapshots are tested elsewhere).
        snapshot_after_log_entries: 100_000,
        ..RaftTiming::default()
    };
    let cluster = Cluster::start(3, PARTITIONS, timing).await;
    let client = Arc::new(cluster.client());
    client.verify_layout().await.expect("layout");

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (client, next) = (Arc::clone(&client), Arc::clone(&next));
        writers.spawn(async move {
            loop {
                let first = next.fetch_add(KEYS_PER_BATCH, Ordering::Relaxed);
                if first >= KEY_COUNT {
                    return;
                }
                let keys: Vec<String> = (first..KEY_COUNT.min(first + KEYS_PER_BATCH))
                    .map(key)
                    .collect();
                put_batch(&client, &keys).await;
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("writer");
    }
    let insert_elapsed = started.elapsed();
    eprintln!(
        "inserted {KEY_COUNT} keys in {insert_elapsed:?} ({:.0} keys/s)",
        KEY_COUNT as f64 / insert_elapsed.as_secs_f64()
    );
    let keys: BTreeSet<String> = (0..KEY_COUNT).map(key).collect();
    assert_eq!(keys.len(), KEY_COUNT);

    let started = Instant::now();
    // Everything, S3's default page size: 100 pages.
    assert_eq!(check_listing(&client, &keys, "", "", None, 1000).await, 100);
    eprintln!("listed {KEY_COUNT} keys in {:?}", started.elapsed());
    // An odd page size under a prefix.
    check_listing(&client, &keys, "d07/", "", None, 337).await;
    // Top level with a delimiter: 50 directories, the loose keys and the top keys, odd pages.
    check_listing(&client, &keys, "", "/", None, 7).await;
    // One directory's subdirectories.
    check_listing(&client, &keys, "d13/", "/", None, 9).await;
    // One subdirectory's keys, pages of 1000 that end exactly at its size.
    check_listing(&client, &keys, "d21/s05/", "/", None, 1000).await;
    // start-after in the middle of the key space, with and without a delimiter.
    check_listing(&client, &keys, "", "", Some("d31/s17/object-0"), 1000).await;
    check_listing(&client, &keys, "", "/", Some("d20"), 13).await;
    // A prefix nothing has: one empty, untruncated page.
    assert_eq!(
        check_listing(&client, &keys, "nothing/", "/", None, 1000).await,
        1
    );
    eprintln!("all listings checked in {:?}", started.elapsed());
    cluster.shutdown().await;
}
