//! Invariant: no acknowledged object is lost while at most m pieces of any block are lost.
//!
//! A seeded schedule of PUTs (some crashing or stalling), overwrites, deletes, janitor and
//! healer passes, lost and corrupt piece writes, lost metadata messages, and node failures (down,
//! back up, wiped) — never more than m = 2 nodes damaged between two heal passes that restore
//! full redundancy, an acknowledged degraded write counting as one damaged node (it commits with
//! fewer than k + m pieces). Half the objects place their padding pieces as gateways did before
//! padding pieces went unwritten, half do not. After every step, every key whose last operation was an acknowledged PUT
//! reads back exactly that data, and a key whose last operation was an acknowledged delete does
//! not exist.

mod sim;

use std::collections::{BTreeMap, BTreeSet};

use sim::{Faults, PutOutcome, World, content, for_each_seed};

/// What the client last saw for a key; `None` when later operations left it ambiguous (an
/// unacknowledged PUT or delete may or may not have taken effect).
#[derive(Clone, Debug)]
enum Expected {
    Data(Vec<u8>),
    Absent,
}

/// Entries of the damage set that stand for a degraded write rather than a node (node ids are
/// 1 to 9).
const DEGRADED_WRITE: u64 = 1_000;

#[test]
fn acknowledged_objects_survive_up_to_m_lost_pieces() {
    for_each_seed(30, |seed| {
        // Corrupt piece writes are left out here: a real node checks a put's CRC32C before
        // acknowledging it, so they cannot land silently; corruption at rest is the explicit
        // node fault below, which counts toward the m-damaged-nodes bound.
        let faults = Faults {
            put_corrupt: 0,
            ..Faults::some()
        };
        let mut world = World::new(seed, faults);
        let mut expected: BTreeMap<String, Option<Expected>> = BTreeMap::new();
        let mut stalled = Vec::new();
        // Nodes damaged since full redundancy was last restored.
        let mut damaged: BTreeSet<u64> = BTreeSet::new();
        for step in 0..120 {
            let pause = 1 + world.rng().below(20_000);
            world.advance(pause);
            let roll = world.rng().below(100);
            match roll {
                0..=44 => {
                    let key = format!("key-{}", world.rng().below(12));
                    let data = content(&mut world.rng());
                    let stall = world.chance(5);
                    match world.put(&key, &data, 2, stall) {
                        PutOutcome::Acknowledged => {
                            expected.insert(key, Some(Expected::Data(data)));
                            // A degraded commit (nodes down or out of alternates: k + 1 to
                            // k + m - 1 pieces) has used up redundancy as a damaged node has.
                            if !world.fully_redundant() {
                                damaged.insert(DEGRADED_WRITE + step);
                            }
                        }
                        PutOutcome::Stalled(put) => {
                            expected.insert(key, None);
                            stalled.push(put);
                        }
                        PutOutcome::Failed | PutOutcome::Crashed => {
                            expected.insert(key, None);
                        }
                    }
                }
                45..=52 => {
                    let key = format!("key-{}", world.rng().below(12));
                    expected.insert(key.clone(), world.delete(&key).then_some(Expected::Absent));
                }
                53..=57 if !stalled.is_empty() => {
                    // A stalled gateway wakes up and commits, possibly after the janitor rolled
                    // its write back (the commit is then refused).
                    let put = stalled.remove(0);
                    let key = put.key.clone();
                    if world.finish_stalled(&put) == PutOutcome::Acknowledged {
                        expected.insert(key, Some(Expected::Data(put.data)));
                        if !world.fully_redundant() {
                            damaged.insert(DEGRADED_WRITE + step);
                        }
                    }
                }
                58..=69 => world.run_janitor(),
                70..=84 => {
                    world.run_healer();
                    if world.fully_redundant() {
                        damaged.clear();
                    }
                }
                _ => {
                    // A node fault, only while fewer than m nodes are damaged.
                    if damaged.len() < 2 {
                        let node_id = 1 + world.rng().below(9);
                        let kind = world.rng().below(3);
                        let mut state = world.shared.borrow_mut();
                        let node = state.nodes.get_mut(&node_id).expect("a node");
                        match kind {
                            0 => node.up = false,
                            1 => node.shards.clear(),
                            _ => {
                                // Flip a byte of one stored piece.
                                if let Some(bytes) = node.shards.values_mut().next() {
                                    bytes[0] ^= 0x01;
                                }
                            }
                        }
                        damaged.insert(node_id);
                    } else if world.chance(50) {
                        // A down node comes back (its stale pieces are garbage by now or later).
                        let mut state = world.shared.borrow_mut();
                        for node in state.nodes.values_mut() {
                            node.up = true;
                        }
                    }
                }
            }
            // Corrupt and lost piece writes count as damage of the node they hit; bound them by
            // healing whenever two nodes are damaged.
            if damaged.len() >= 2 {
                for _ in 0..3 {
                    world.run_healer();
                }
            }
            for (key, expectation) in &expected {
                let Some(expectation) = expectation else {
                    continue;
                };
                let read = world.read(key);
                match (expectation, read) {
                    (Expected::Data(data), Some(Ok(read))) => assert!(
                        &read == data,
                        "step {step}: {key} reads {} bytes that differ from the acknowledged {}",
                        read.len(),
                        data.len()
                    ),
                    (Expected::Absent, None) => {}
                    (expectation, read) => {
                        panic!("step {step}: {key} expected {expectation:?}, read {read:?}")
                    }
                }
            }
            let violations = world.violations();
            assert!(violations.is_empty(), "step {step}: {violations:?}");
        }
    });
}
