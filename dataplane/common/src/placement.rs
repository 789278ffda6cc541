//! Shard placement (pure): which storage nodes receive the k + m pieces of a stripe.
//!
//! Model: nodes are indices into the configured node list, each with an availability zone. A
//! choice is built one node at a time, always from the zone that holds the fewest shards of the
//! stripe so far (ties: the zone met first in the rotated node order), never reusing a node and
//! never putting more than `max_per_zone` shards in one zone. Rotating the node order by a
//! per-stripe value spreads load over nodes when there are more nodes than shards.
//!
//! Invariants of every returned choice: distinct nodes, none of them unavailable or already
//! chosen, and with the already chosen nodes no zone above `max_per_zone`. Filling the least
//! loaded zone first finds a choice whenever one exists: the most a zone can contribute is
//! min(available nodes, cap) and the balanced fill reaches that bound in every zone before it
//! runs out of candidates.

use std::collections::BTreeSet;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "cannot place {wanted} shards: {available} nodes usable with at most {max_per_zone} per zone"
    )]
    NotEnoughNodes {
        wanted: usize,
        available: usize,
        max_per_zone: usize,
    },
}

/// Chooses `count` more nodes for a stripe. `zones[i]` is node i's zone; `already_chosen` are
/// nodes holding (or about to hold) other shards of the stripe; `unavailable` nodes are skipped.
pub fn choose_nodes(
    zones: &[&str],
    count: usize,
    max_per_zone: usize,
    rotation: u64,
    unavailable: &BTreeSet<usize>,
    already_chosen: &[usize],
) -> Result<Vec<usize>, PlacementError> {
    let node_count = zones.len();
    // Zones in order of first appearance in the rotated node list, each with its candidates.
    let mut zone_names: Vec<&str> = Vec::new();
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    let mut load: Vec<usize> = Vec::new();
    let start = if node_count == 0 {
        0
    } else {
        (rotation % node_count as u64) as usize
    };
    for offset in 0..node_count {
        let node = (start + offset) % node_count;
        let zone_index = match zone_names.iter().position(|zone| *zone == zones[node]) {
            Some(index) => index,
            None => {
                zone_names.push(zones[node]);
                candidates.push(Vec::new());
                load.push(0);
                zone_names.len() - 1
            }
        };
        if already_chosen.contains(&node) {
            load[zone_index] += 1;
        } else if !unavailable.contains(&node) {
            candidates[zone_index].push(node);
        }
    }
    // Candidates are taken from the front; reverse so `pop` keeps the rotated order.
    for zone_candidates in &mut candidates {
        zone_candidates.reverse();
    }
    let mut chosen = Vec::with_capacity(count);
    while chosen.len() < count {
        let next_zone = (0..zone_names.len())
            .filter(|&zone| load[zone] < max_per_zone && !candidates[zone].is_empty())
            .min_by_key(|&zone| load[zone]);
        let Some(zone) = next_zone else {
            return Err(PlacementError::NotEnoughNodes {
                wanted: count,
                available: chosen.len(),
                max_per_zone,
            });
        };
        chosen.push(candidates[zone].pop().expect("filtered non-empty"));
        load[zone] += 1;
    }
    Ok(chosen)
}

/// Like [`choose_nodes`], but each next node is drawn at random (a splitmix64 stream seeded by
/// `seed`, so the same seed gives the same choice) with probability proportional to its weight
/// (the free bytes its heartbeat reported; a weight of 0 counts as 1 so an almost full node
/// stays a last resort, while nodes the registry calls full are `unavailable`), among the
/// usable nodes whose zone is below `max_per_zone`. Drawing any such node lowers the number of
/// shards the rest can hold by exactly one (min(cap − load, candidates) drops by one in its zone),
/// so the draw succeeds exactly when [`choose_nodes`] does: when `count` ≤ [`placeable_shards`].
pub fn choose_nodes_weighted(
    zones: &[&str],
    weights: &[u64],
    count: usize,
    max_per_zone: usize,
    seed: u64,
    unavailable: &BTreeSet<usize>,
    already_chosen: &[usize],
) -> Result<Vec<usize>, PlacementError> {
    debug_assert_eq!(zones.len(), weights.len());
    let mut load: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for &node in already_chosen {
        *load.entry(zones[node]).or_insert(0) += 1;
    }
    let mut state = seed;
    let mut chosen: Vec<usize> = Vec::with_capacity(count);
    while chosen.len() < count {
        let candidates: Vec<(usize, u64)> = (0..zones.len())
            .filter(|node| {
                !unavailable.contains(node)
                    && !already_chosen.contains(node)
                    && !chosen.contains(node)
                    && load.get(zones[*node]).copied().unwrap_or(0) < max_per_zone
            })
            // Capped at 2^56 bytes so the total of any realistic node count stays below
            // 2^64 and the 128-bit product below cannot overflow.
            .map(|node| {
                (
                    node,
                    weights.get(node).copied().unwrap_or(0).clamp(1, 1 << 56),
                )
            })
            .collect();
        let total: u128 = candidates
            .iter()
            .map(|(_, weight)| u128::from(*weight))
            .sum();
        if total == 0 {
            return Err(PlacementError::NotEnoughNodes {
                wanted: count,
                available: chosen.len(),
                max_per_zone,
            });
        }
        let mut target = (u128::from(splitmix64(&mut state)) * total) >> 64;
        let mut pick = candidates[candidates.len() - 1].0;
        for (node, weight) in &candidates {
            if target < u128::from(*weight) {
                pick = *node;
                break;
            }
            target -= u128::from(*weight);
        }
        chosen.push(pick);
        *load.entry(zones[pick]).or_insert(0) += 1;
    }
    Ok(chosen)
}

/// One step of splitmix64 (Steele, Lea, Flood 2014): a fast, well-mixed 64-bit stream.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut mixed = *state;
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// How many shards of one stripe the nodes not in `unavailable` can hold with at most
/// `max_per_zone` per zone: the sum over zones of min(usable nodes, cap). [`choose_nodes`]
/// succeeds exactly when it is asked for at most this many.
pub fn placeable_shards(
    zones: &[&str],
    max_per_zone: usize,
    unavailable: &BTreeSet<usize>,
) -> usize {
    let mut usable_per_zone: std::collections::BTreeMap<&str, usize> =
        std::collections::BTreeMap::new();
    for (node, zone) in zones.iter().enumerate() {
        if !unavailable.contains(&node) {
            *usable_per_zone.entry(zone).or_insert(0) += 1;
        }
    }
    usable_per_zone
        .values()
        .map(|&usable| usable.min(max_per_zone))
        .sum()
}

/// What writes of a k + m scheme do while one whole zone is down (every other node up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneLossWrites {
    /// The other zones hold all k + m shards with at most m per zone: writes keep full redundancy.
    FullRedundancy,
    /// Only k + 1 ≤ placeable < k + m: writes commit degraded and the healer completes them
    /// once the zone returns.
    Degraded { placeable: usize },
    /// Fewer than k + 1 shards fit: writes are refused (503) until the zone returns.
    Refused { placeable: usize },
}

/// For every zone of the layout, what writes of `data_shards + parity_shards` do while that zone
/// is down (the rule of ARCHITECTURE.md: at most m shards per zone, commit with at least k + 1).
/// A uniform layout of Z zones with at least m nodes each keeps full redundancy through the loss
/// of any one zone exactly when (Z - 1)·m ≥ k + m, i.e. Z ≥ k/m + 2 (6+3 and 8+4 need 4 zones).
pub fn zone_loss_writes(
    zones: &[&str],
    data_shards: usize,
    parity_shards: usize,
) -> Vec<(String, ZoneLossWrites)> {
    let names: BTreeSet<&str> = zones.iter().copied().collect();
    names
        .into_iter()
        .map(|lost| {
            let unavailable: BTreeSet<usize> = zones
                .iter()
                .enumerate()
                .filter(|(_, zone)| **zone == lost)
                .map(|(node, _)| node)
                .collect();
            let placeable = placeable_shards(zones, parity_shards, &unavailable);
            let outcome = if placeable >= data_shards + parity_shards {
                ZoneLossWrites::FullRedundancy
            } else if placeable > data_shards {
                ZoneLossWrites::Degraded { placeable }
            } else {
                ZoneLossWrites::Refused { placeable }
            };
            (lost.to_owned(), outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone_counts(zones: &[&str], chosen: &[usize]) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for &node in chosen {
            *counts.entry(zones[node].to_owned()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn six_nodes_three_zones_take_every_node_two_per_zone() {
        let zones = ["a", "a", "b", "b", "c", "c"];
        for rotation in 0..12 {
            let chosen = choose_nodes(&zones, 6, 2, rotation, &BTreeSet::new(), &[]).unwrap();
            let distinct: BTreeSet<usize> = chosen.iter().copied().collect();
            assert_eq!(distinct.len(), 6);
            assert!(
                zone_counts(&zones, &chosen)
                    .values()
                    .all(|&count| count == 2)
            );
        }
    }

    #[test]
    fn zone_cap_is_never_exceeded_even_when_one_zone_has_most_nodes() {
        // 7 nodes in zone a, 2 in b, 2 in c: 4+2 needs at most 2 per zone, so 2+2+2.
        let zones = ["a", "a", "a", "a", "a", "a", "a", "b", "b", "c", "c"];
        let chosen = choose_nodes(&zones, 6, 2, 3, &BTreeSet::new(), &[]).unwrap();
        let counts = zone_counts(&zones, &chosen);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        // One more shard cannot be placed anywhere.
        let error = choose_nodes(&zones, 7, 2, 3, &BTreeSet::new(), &[]).unwrap_err();
        assert!(matches!(
            error,
            PlacementError::NotEnoughNodes { wanted: 7, .. }
        ));
    }

    #[test]
    fn alternate_avoids_unavailable_and_chosen_nodes_and_respects_the_cap() {
        let zones = ["a", "a", "a", "b", "b", "b", "c", "c", "c"];
        let first = choose_nodes(&zones, 6, 2, 0, &BTreeSet::new(), &[]).unwrap();
        let failed = first[2];
        let kept: Vec<usize> = first.iter().copied().filter(|&n| n != failed).collect();
        let unavailable = BTreeSet::from([failed]);
        let alternate = choose_nodes(&zones, 1, 2, 0, &unavailable, &kept).unwrap();
        assert_eq!(alternate.len(), 1);
        assert_ne!(alternate[0], failed);
        assert!(!kept.contains(&alternate[0]));
        let mut all = kept.clone();
        all.extend(&alternate);
        assert!(zone_counts(&zones, &all).values().all(|&count| count <= 2));
    }

    #[test]
    fn rotation_spreads_the_first_shard_over_nodes() {
        let zones = ["a", "b", "c", "a", "b", "c", "a", "b", "c"];
        let firsts: BTreeSet<usize> = (0..9)
            .map(|rotation| choose_nodes(&zones, 3, 1, rotation, &BTreeSet::new(), &[]).unwrap()[0])
            .collect();
        assert_eq!(firsts.len(), 9);
    }

    #[test]
    fn no_nodes_is_an_error_not_a_panic() {
        let error = choose_nodes(&[], 1, 1, 5, &BTreeSet::new(), &[]).unwrap_err();
        assert_eq!(
            error,
            PlacementError::NotEnoughNodes {
                wanted: 1,
                available: 0,
                max_per_zone: 1
            }
        );
    }

    #[test]
    fn placeable_shards_is_what_choose_nodes_can_place() {
        let zones = ["a", "a", "a", "b", "b", "c", "d", "d", "d", "d"];
        for cap in 1..=4 {
            for down in [
                BTreeSet::new(),
                BTreeSet::from([0, 1]),
                BTreeSet::from([3, 6]),
            ] {
                let placeable = placeable_shards(&zones, cap, &down);
                assert!(choose_nodes(&zones, placeable, cap, 7, &down, &[]).is_ok());
                assert!(choose_nodes(&zones, placeable + 1, cap, 7, &down, &[]).is_err());
            }
        }
    }

    #[test]
    fn four_zones_of_three_keep_six_plus_three_whole_through_a_zone_loss() {
        let four: Vec<&str> = (0..12).map(|node| ["a", "b", "c", "d"][node % 4]).collect();
        for (_, outcome) in zone_loss_writes(&four, 6, 3) {
            assert_eq!(outcome, ZoneLossWrites::FullRedundancy);
        }
        // Three zones of three: 6 shards fit, fewer than k + 1 = 7: refused.
        let three: Vec<&str> = (0..9).map(|node| ["a", "b", "c"][node % 3]).collect();
        for (_, outcome) in zone_loss_writes(&three, 6, 3) {
            assert_eq!(outcome, ZoneLossWrites::Refused { placeable: 6 });
        }
        // 4+3 on three zones: 6 fit, at least k + 1 = 5: degraded.
        for (_, outcome) in zone_loss_writes(&three, 4, 3) {
            assert_eq!(outcome, ZoneLossWrites::Degraded { placeable: 6 });
        }
        // 10+4 needs five zones of four.
        let four_of_four: Vec<&str> = (0..16).map(|node| ["a", "b", "c", "d"][node % 4]).collect();
        assert!(
            zone_loss_writes(&four_of_four, 10, 4)
                .iter()
                .all(|(_, outcome)| *outcome == ZoneLossWrites::Degraded { placeable: 12 })
        );
    }

    #[test]
    fn weighted_choice_follows_free_capacity() {
        // One node per zone, cap 1: the first pick of 1 is drawn in proportion to the weights.
        let zones = ["a", "b", "c", "d"];
        let weights = [100, 200, 300, 400];
        let mut firsts = [0u32; 4];
        let draws = 20_000;
        for seed in 0..draws {
            let chosen =
                choose_nodes_weighted(&zones, &weights, 1, 1, seed, &BTreeSet::new(), &[]).unwrap();
            firsts[chosen[0]] += 1;
        }
        for (node, &count) in firsts.iter().enumerate() {
            let expected = f64::from(draws as u32) * weights[node] as f64 / 1000.0;
            // Binomial sd is at most ~70 here: 5 sd of slack.
            assert!(
                (f64::from(count) - expected).abs() < 350.0,
                "node {node}: {count} draws, expected {expected}"
            );
        }
        // A node with ten times the free space of its peers is chosen far more often, and the
        // same seed always gives the same choice.
        let zones = ["a", "a", "a", "b", "b", "b", "c", "c", "c"];
        let mut weights = [1_000u64; 9];
        weights[4] = 10_000;
        let mut counts = [0u32; 9];
        for seed in 0..5_000 {
            let chosen =
                choose_nodes_weighted(&zones, &weights, 4, 2, seed, &BTreeSet::new(), &[]).unwrap();
            assert_eq!(
                chosen,
                choose_nodes_weighted(&zones, &weights, 4, 2, seed, &BTreeSet::new(), &[]).unwrap()
            );
            for node in chosen {
                counts[node] += 1;
            }
        }
        let heavy = counts[4];
        assert!(
            counts
                .iter()
                .enumerate()
                .all(|(node, &count)| node == 4 || count * 2 < heavy),
            "{counts:?}"
        );
    }

    #[test]
    fn weighted_choice_never_exceeds_the_zone_cap_and_fails_only_when_it_must() {
        let zones = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "d"];
        // Heavily skewed weights pull toward zone a; the cap must still hold.
        let weights = [1 << 40, 1 << 40, 1 << 40, 1 << 40, 5, 5, 5, 3, 0, 7];
        for seed in 0..2_000u64 {
            for (cap, down) in [
                (3, BTreeSet::new()),
                (2, BTreeSet::from([9])),
                (3, BTreeSet::from([0, 4])),
            ] {
                let placeable = placeable_shards(&zones, cap, &down);
                let chosen =
                    choose_nodes_weighted(&zones, &weights, placeable, cap, seed, &down, &[])
                        .unwrap();
                let distinct: BTreeSet<usize> = chosen.iter().copied().collect();
                assert_eq!(distinct.len(), placeable);
                assert!(chosen.iter().all(|node| !down.contains(node)));
                assert!(zone_counts(&zones, &chosen).values().all(|&n| n <= cap));
                assert!(
                    choose_nodes_weighted(&zones, &weights, placeable + 1, cap, seed, &down, &[])
                        .is_err()
                );
            }
            // An alternate for one failed node counts the stripe's other nodes against the cap.
            let kept = [0, 1, 4];
            let alternate =
                choose_nodes_weighted(&zones, &weights, 1, 2, seed, &BTreeSet::from([2]), &kept)
                    .unwrap();
            assert!(!kept.contains(&alternate[0]) && alternate[0] != 2);
            assert_ne!(zones[alternate[0]], "a");
        }
    }
}
