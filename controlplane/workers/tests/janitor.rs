//! The janitor against a real metadata replica (openraft on LMDB) and three real storage nodes
//! (O_DIRECT shard logs), driven through the same commands a gateway sends: a committed object
//! overwritten, a write left PREPARING past the timeout, a write aborted by its gateway and a
//! fresh PREPARING write. One pass must delete exactly the shards of the first three and leave
//! the committed object's and the fresh write's untouched; a second pass must find nothing.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cairn_meta_state::{
    AbortWrite, Checksums, Command, CommitWrite, Query, Response, VersionSelector,
};
use cairn_workers::{Janitor, JanitorConfig, NodeConnections, PassReport, RaftMeta};
use common::{BUCKET, HOUR_MS, Setup, start};

fn janitor(setup: &Setup) -> Janitor<RaftMeta, NodeConnections> {
    let config = JanitorConfig {
        prepare_timeout: Duration::from_millis(HOUR_MS),
        garbage_grace: Duration::from_secs(60),
        page_limit: 2,
        scan_page_limit: 2,
        ..JanitorConfig::default()
    };
    Janitor::new(
        RaftMeta::new(setup.meta_config.clone()).unwrap(),
        NodeConnections::new(setup.nodes.clone(), Duration::from_secs(5)),
        config,
    )
}

#[test]
fn one_pass_deletes_exactly_the_garbage_and_rolls_back_stale_writes() {
    let setup = start(3, "isal-cauchy:2+1");
    let now_ms = common::now_ms();

    // Written and committed two hours ago, then overwritten: the first version is garbage.
    let old = now_ms - 2 * HOUR_MS;
    let first = setup.prepare("kept", "t-first", old);
    let first_part = setup.put_shards(&first);
    setup.commit(&first, "t-first", first_part, old);
    let second = setup.prepare("kept", "t-second", old + 1);
    let second_part = setup.put_shards(&second);
    setup.commit(&second, "t-second", second_part, old + 1);
    // A gateway died after writing shards: PREPARING for two hours.
    let stale = setup.prepare("stale", "t-stale", old);
    setup.put_shards(&stale);
    // A gateway aborted its write two hours ago (its shards have no map).
    let aborted = setup.prepare("aborted", "t-aborted", old);
    setup.put_shards(&aborted);
    let abort = setup.write(Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "aborted".to_owned(),
        version_id: aborted.version_id,
        now_ms: old,
    }));
    assert!(abort.is_ok(), "{abort:?}");
    // A write in progress right now.
    let fresh = setup.prepare("fresh", "t-fresh", now_ms);
    let fresh_part = setup.put_shards(&fresh);

    let everything = setup.stored_shards();
    assert_eq!(everything.len(), 5 * 3);
    let survivors: BTreeSet<_> = setup
        .shards_of(&second)
        .union(&setup.shards_of(&fresh))
        .copied()
        .collect();
    assert_eq!(survivors.len(), 6);

    let mut janitor = janitor(&setup);
    // The stale write is rolled back in this pass, so its garbage entry is new (younger than the
    // grace period) and waits; the overwrite's and the abort's are old enough.
    let report = janitor.run_pass(now_ms).unwrap();
    assert_eq!(
        report,
        PassReport {
            stale_writes_aborted: 1,
            garbage_entries_purged: 2,
            shards_deleted: 6,
            garbage_entries_deferred: 1,
        }
    );
    assert!(setup.shards_of(&first).is_empty());
    assert!(setup.shards_of(&aborted).is_empty());
    assert_eq!(
        setup.shards_of(&stale).len(),
        3,
        "deferred by the grace period"
    );

    // Past the grace period the rolled-back write's shards go too; then nothing is left to do.
    let later = now_ms + 61_000;
    let report = janitor.run_pass(later).unwrap();
    assert_eq!(
        report,
        PassReport {
            stale_writes_aborted: 0,
            garbage_entries_purged: 1,
            shards_deleted: 3,
            garbage_entries_deferred: 0,
        }
    );
    assert_eq!(setup.stored_shards(), survivors);
    assert_eq!(janitor.run_pass(later).unwrap(), PassReport::default());

    // The committed object and the in-progress write are untouched: the write still commits and
    // both read back as committed records.
    setup.commit(&fresh, "t-fresh", fresh_part, now_ms);
    for key in ["kept", "fresh"] {
        let read = setup
            .runtime
            .block_on(setup.client.read(Query::GetObject {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                version: VersionSelector::Current,
            }))
            .unwrap();
        assert!(matches!(read, Ok(Response::Object(_))), "{key}: {read:?}");
    }
    // The stale write is gone from the metadata: a late commit from its gateway is refused.
    let late = setup.write(Command::CommitWrite(CommitWrite {
        bucket: BUCKET.to_owned(),
        key: "stale".to_owned(),
        version_id: stale.version_id,
        idempotency_token: "t-stale".to_owned(),
        checksums: Checksums {
            etag: "0123456789abcdef0123456789abcdef".to_owned(),
            additional: None,
        },
        parts: Vec::new(),
        now_ms,
    }));
    assert!(late.is_err(), "{late:?}");
    let stats = janitor.stats();
    assert_eq!(
        stats
            .shards_deleted
            .load(std::sync::atomic::Ordering::Relaxed),
        9
    );
}
