//! Invariant: the janitor (and the healer's undo) never deletes a piece a committed record uses
//! on that node. Every delete the simulated nodes receive is checked against the pieces every
//! committed record references at that moment, through crashed, stalled and late-committing
//! gateways, healer moves and nodes coming back with stale pieces.

mod sim;

use sim::{Faults, PutOutcome, World, content, for_each_seed};

#[test]
fn garbage_collection_spares_every_committed_piece() {
    for_each_seed(40, |seed| {
        let mut world = World::new(seed, Faults::some());
        world.shared.borrow_mut().guard_deletes = true;
        let mut stalled = Vec::new();
        for step in 0..100 {
            // Long pauses let PREPARING writes time out and garbage pass its grace period.
            let pause = 1 + world.rng().below(90_000);
            world.advance(pause);
            let roll = world.rng().below(12);
            match roll {
                0..=4 => {
                    let key = format!("key-{}", world.rng().below(8));
                    let data = content(&mut world.rng());
                    let stall = world.chance(25);
                    if let PutOutcome::Stalled(put) = world.put(&key, &data, 4, stall) {
                        stalled.push(put);
                    }
                }
                5 if !stalled.is_empty() => {
                    let put = stalled.remove(0);
                    world.finish_stalled(&put);
                }
                6 | 7 => world.run_janitor(),
                8 => world.run_healer(),
                9 => {
                    let key = format!("key-{}", world.rng().below(8));
                    world.delete(&key);
                }
                _ => {
                    // A node goes down (its pieces move away) or comes back (stale pieces).
                    let node_id = 1 + world.rng().below(9);
                    let mut state = world.shared.borrow_mut();
                    let down = state.nodes.values().filter(|node| !node.up).count();
                    let node = state.nodes.get_mut(&node_id).expect("a node");
                    // Down only while fewer than two are; a down node always comes back.
                    node.up = !(node.up && down < 2);
                }
            }
            let violations = world.violations();
            assert!(violations.is_empty(), "step {step}: {violations:?}");
        }
    });
}
