//! Invariant: at most one committed record per (bucket, key, version id), however PrepareWrite
//! and CommitWrite are retried after lost messages and lost answers, and whatever the janitor
//! rolls back meanwhile. Checked after every step through the state machines' own invariant
//! check and by listing every partition's versions.

mod sim;

use std::collections::BTreeSet;

use cairn_meta_state::{ListVersionsRequest, Query, Response};
use sim::{BUCKET, Faults, PutOutcome, World, content, for_each_seed};

#[test]
fn retries_and_rollbacks_never_duplicate_a_committed_version() {
    for_each_seed(40, |seed| {
        // Heavier metadata faults: most retries happen here.
        let faults = Faults {
            meta_lost_before_apply: 20,
            meta_answer_lost: 20,
            ..Faults::some()
        };
        let mut world = World::new(seed, faults);
        let mut stalled = Vec::new();
        for step in 0..100 {
            let pause = 1 + world.rng().below(30_000);
            world.advance(pause);
            let roll = world.rng().below(10);
            match roll {
                0..=5 => {
                    let key = format!("key-{}", world.rng().below(6));
                    let data = content(&mut world.rng());
                    let stall = world.chance(20);
                    if let PutOutcome::Stalled(put) = world.put(&key, &data, 3, stall) {
                        stalled.push(put);
                    }
                }
                6 if !stalled.is_empty() => {
                    let put = stalled.remove(0);
                    world.finish_stalled(&put);
                    // The same commit again (a client retry with the same token).
                    world.finish_stalled(&put);
                }
                7 => world.run_janitor(),
                _ => {
                    let key = format!("key-{}", world.rng().below(6));
                    world.delete(&key);
                }
            }
            let state = world.shared.borrow();
            for machine in &state.partitions {
                let request = ListVersionsRequest {
                    bucket: BUCKET.to_owned(),
                    prefix: String::new(),
                    delimiter: String::new(),
                    key_marker: None,
                    version_id_marker: None,
                    max_keys: 1000,
                };
                let Ok(Response::VersionList(page)) = machine.query(&Query::ListVersions(request))
                else {
                    panic!("step {step}: ListVersions failed");
                };
                let mut seen = BTreeSet::new();
                for version in &page.versions {
                    assert!(
                        seen.insert((version.key.clone(), version.version_id)),
                        "step {step}: {} {:?} listed twice",
                        version.key,
                        version.version_id
                    );
                }
                // One current version per key.
                let mut current = BTreeSet::new();
                for version in page.versions.iter().filter(|version| version.is_latest) {
                    assert!(
                        current.insert(version.key.clone()),
                        "step {step}: {} has two current versions",
                        version.key
                    );
                }
            }
            drop(state);
            let violations = world.violations();
            assert!(violations.is_empty(), "step {step}: {violations:?}");
        }
    });
}
