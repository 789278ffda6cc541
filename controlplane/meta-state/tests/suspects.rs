//! The suspect-object queue: reports of bad pieces waiting for the healer (bounded,
//! deduplicated, resolved idempotently, kept in snapshots).

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::Unversioned;

fn report(key: &str, version_id: VersionId, now_ms: u64) -> Command {
    Command::ReportSuspect {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version_id,
        now_ms,
    }
}

fn list(harness: &Harness, after: Option<SuspectResolution>, limit: u32) -> Vec<SuspectRecord> {
    match harness.query(Query::ListSuspects { after, limit }) {
        Ok(Response::Suspects(entries)) => entries,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn resolution(entry: &SuspectRecord) -> SuspectResolution {
    SuspectResolution {
        bucket: entry.bucket.clone(),
        key: entry.key.clone(),
        version_id: entry.version_id,
        last_report_index: entry.last_report_index,
    }
}

#[test]
fn reports_are_deduplicated_and_keep_the_first_time() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 10, Unversioned);
    assert_eq!(
        harness.ok(report("a", record.version_id, 100)),
        Response::SuspectReported { queued: true }
    );
    let second_index = harness.next_log_index;
    assert_eq!(
        harness.ok(report("a", record.version_id, 200)),
        Response::SuspectReported { queued: true }
    );
    let entries = list(&harness, None, 10);
    assert_eq!(
        entries,
        vec![SuspectRecord {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version_id: record.version_id,
            first_reported_ms: 100,
            last_report_index: second_index,
            report_count: 2,
        }]
    );
}

#[test]
fn only_committed_versions_are_queued() {
    let mut harness = Harness::with_bucket();
    let Response::Prepared { record, .. } =
        harness.ok(prepare(BUCKET, "p", "token-p", 5, Unversioned))
    else {
        panic!("a prepared record")
    };
    assert_eq!(
        harness.ok(report("p", record.version_id, 1)),
        Response::SuspectReported { queued: false }
    );
    assert_eq!(
        harness.ok(report("nothing", VersionId(999), 1)),
        Response::SuspectReported { queued: false }
    );
    assert!(list(&harness, None, 10).is_empty());
}

#[test]
fn a_report_during_the_repair_survives_the_resolution() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 10, Unversioned);
    harness.ok(report("a", record.version_id, 1));
    let listed = list(&harness, None, 10);
    // Another reader reports the same version while the healer works on it.
    harness.ok(report("a", record.version_id, 2));
    let resolve = Command::ResolveSuspects {
        resolutions: vec![resolution(&listed[0])],
    };
    assert_eq!(
        harness.ok(resolve),
        Response::SuspectsResolved { resolved_count: 0 }
    );
    let listed = list(&harness, None, 10);
    assert_eq!(listed.len(), 1);
    let resolve = Command::ResolveSuspects {
        resolutions: vec![resolution(&listed[0])],
    };
    assert_eq!(
        harness.ok(resolve.clone()),
        Response::SuspectsResolved { resolved_count: 1 }
    );
    // A retried resolution changes nothing.
    assert_eq!(
        harness.ok(resolve),
        Response::SuspectsResolved { resolved_count: 0 }
    );
    assert!(list(&harness, None, 10).is_empty());
}

#[test]
fn listing_pages_in_key_order() {
    let mut harness = Harness::with_bucket();
    for key in ["c", "a", "b"] {
        let record = harness.put(key, 1, Unversioned);
        harness.ok(report(key, record.version_id, 1));
    }
    let first = list(&harness, None, 2);
    assert_eq!(
        first
            .iter()
            .map(|entry| entry.key.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rest = list(&harness, Some(resolution(&first[1])), 2);
    assert_eq!(
        rest.iter()
            .map(|entry| entry.key.as_str())
            .collect::<Vec<_>>(),
        ["c"]
    );
}

#[test]
fn the_queue_is_bounded() {
    // Built without the harness: its per-command snapshot check would make this quadratic.
    let mut state = StateMachine::new(Role::Combined);
    let mut log_index = 0;
    let mut apply = |state: &mut StateMachine, command: Command| {
        log_index += 1;
        state.apply(command, log_index).result.unwrap()
    };
    apply(&mut state, create_bucket(BUCKET, OWNER));
    for number in 0..=MAX_SUSPECTS {
        let key = format!("k{number:05}");
        let Response::Prepared { record, .. } = apply(
            &mut state,
            prepare(BUCKET, &key, &format!("t{number}"), 1, Unversioned),
        ) else {
            panic!("prepared")
        };
        apply(
            &mut state,
            commit(BUCKET, &key, record.version_id, &format!("t{number}"), 1),
        );
        let answer = apply(&mut state, report(&key, record.version_id, 1));
        let expected = number < MAX_SUSPECTS;
        assert_eq!(answer, Response::SuspectReported { queued: expected });
    }
    state.check_invariants().unwrap();
    let restored = StateMachine::from_snapshot_bytes(&state.to_snapshot_bytes()).unwrap();
    assert_eq!(restored, state);
}

#[test]
fn commands_and_queries_round_trip_with_their_reserved_tags() {
    let commands = [
        report("k", VersionId(7), 9),
        Command::ResolveSuspects {
            resolutions: vec![SuspectResolution {
                bucket: BUCKET.to_owned(),
                key: "k".to_owned(),
                version_id: VersionId(7),
                last_report_index: 3,
            }],
        },
        Command::Read(Query::ListSuspects {
            after: None,
            limit: 5,
        }),
    ];
    for (command, tag) in commands.into_iter().zip([50u8, 51, 20]) {
        let bytes = encode_record(&command);
        assert_eq!(bytes[2], tag);
        assert_eq!(decode_record::<Command>(&bytes), Ok(command));
    }
    // Tags between the ranges in use are refused, not read as some other command.
    let mut bytes = encode_record(&report("k", VersionId(7), 9));
    bytes[2] = 49;
    assert!(matches!(
        decode_record::<Command>(&bytes),
        Err(DecodeError::InvalidTag {
            what: "command",
            ..
        })
    ));
}

#[test]
fn a_snapshot_without_suspects_keeps_its_bytes_and_an_empty_section_is_refused() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 10, Unversioned);
    let without = harness.state.to_snapshot_bytes();
    harness.ok(report("a", record.version_id, 1));
    let with = harness.state.to_snapshot_bytes();
    assert!(with.len() > without.len());
    // Same bytes after the header, role and last applied index (which moved on), up to the
    // checksum, where the section begins.
    let header_bytes = 3 + 8;
    assert_eq!(
        with[header_bytes..without.len() - 4],
        without[header_bytes..without.len() - 4]
    );
    // Append an empty section (count 0) to the snapshot without suspects.
    let mut body = without[..without.len() - 4].to_vec();
    body.extend_from_slice(&0u32.to_le_bytes());
    let checksum = crc32c::crc32c(&body);
    body.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&body),
        Err(DecodeError::NotCanonical { .. })
    ));
}
