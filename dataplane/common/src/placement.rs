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
}
