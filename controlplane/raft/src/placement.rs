//! Group placement: which meta nodes host the replicas of each Raft group (pure).
//!
//! # Model
//!
//! Every group (the bucket service, the node registry, the partition map and each object
//! partition) has [`REPLICAS_PER_GROUP`] voters, or every node when the cluster has fewer. They
//! are chosen by rendezvous (highest-random-weight) hashing: each node scores
//! `ring_hash("cairn-placement/<PLACEMENT_VERSION>/<group id>/<node id>")` for the group, and the
//! group takes the best-scoring node of each availability zone in turn, best zones first, until it
//! has its replicas; only when fewer zones than replicas exist does it take second nodes from
//! zones already used, again best score first. Nodes configured without a zone are each a zone of
//! their own.
//!
//! Rendezvous hashing needs no shared state and spreads groups evenly over nodes (each node wins
//! a group with the same probability); adding a node moves only the groups the new node wins.
//!
//! # Invariants
//!
//! - The placement is a pure function of (node ids, their zones, group id, [`PLACEMENT_VERSION`]):
//!   every replica and every client computes the same replica set without coordination, and the
//!   partition-map group records it at bootstrap so a node or client configured differently is
//!   refused (see [`crate::layout`]).
//! - With at least [`REPLICAS_PER_GROUP`] zones a group's replicas sit in that many distinct
//!   zones, so losing one zone costs each group at most one replica and no group its quorum.
//! - A group never has the same node twice.

use std::collections::{BTreeMap, BTreeSet};

use crate::ring::ring_hash;
use crate::types::{GroupId, NodeId};

/// Voters per group: a quorum of 2 survives the loss of any one replica (or zone).
pub const REPLICAS_PER_GROUP: usize = 3;

/// Version of the score naming; part of every score's name. Changing the hash or the names moves
/// groups between nodes and therefore needs a new version and a migration of the groups.
pub const PLACEMENT_VERSION: u32 = 1;

/// The zone of every meta node: `zones` as configured (`--peers 1=host:port@zone,...`), or each
/// node its own zone (`node-<id>`) when none was configured.
pub fn effective_zones(
    node_ids: impl IntoIterator<Item = NodeId>,
    zones: &BTreeMap<NodeId, String>,
) -> BTreeMap<NodeId, String> {
    node_ids
        .into_iter()
        .map(|node_id| {
            let zone = zones
                .get(&node_id)
                .cloned()
                .unwrap_or_else(|| format!("node-{node_id}"));
            (node_id, zone)
        })
        .collect()
}

/// The score of `node_id` for `group`: the higher, the more the group prefers the node.
fn score(group: GroupId, node_id: NodeId) -> u64 {
    ring_hash(format!("cairn-placement/{PLACEMENT_VERSION}/{}/{node_id}", group.0).as_bytes())
}

/// The replicas of `group` among `zones` (node id → zone), in ascending node-id order.
pub fn place_group(group: GroupId, zones: &BTreeMap<NodeId, String>) -> Vec<NodeId> {
    let mut ranked: Vec<(u64, NodeId)> = zones
        .keys()
        .map(|&node_id| (score(group, node_id), node_id))
        .collect();
    // Highest score first; equal scores (astronomically unlikely) fall back to the node id so the
    // order stays total and deterministic.
    ranked.sort_unstable_by(|left, right| right.cmp(left));
    let wanted = REPLICAS_PER_GROUP.min(ranked.len());
    let mut chosen: Vec<NodeId> = Vec::with_capacity(wanted);
    let mut zones_used: BTreeSet<&str> = BTreeSet::new();
    for &(_, node_id) in &ranked {
        if chosen.len() == wanted {
            break;
        }
        if zones_used.insert(zones[&node_id].as_str()) {
            chosen.push(node_id);
        }
    }
    for &(_, node_id) in &ranked {
        if chosen.len() == wanted {
            break;
        }
        if !chosen.contains(&node_id) {
            chosen.push(node_id);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// The replicas of every group of a deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    zones: BTreeMap<NodeId, String>,
    replicas: BTreeMap<GroupId, Vec<NodeId>>,
}

impl Placement {
    /// Places every group of a deployment with `partition_count` partitions on the nodes of
    /// `zones` (node id → zone, see [`effective_zones`]).
    pub fn compute(zones: BTreeMap<NodeId, String>, partition_count: u32) -> Placement {
        let replicas = GroupId::all(partition_count)
            .into_iter()
            .map(|group| (group, place_group(group, &zones)))
            .collect();
        Placement { zones, replicas }
    }

    /// Node id → zone, as placed.
    pub fn zones(&self) -> &BTreeMap<NodeId, String> {
        &self.zones
    }

    /// Group → its replicas, every group of the deployment.
    pub fn groups(&self) -> &BTreeMap<GroupId, Vec<NodeId>> {
        &self.replicas
    }

    /// The replicas of `group` (empty for a group the deployment does not have).
    pub fn replicas(&self, group: GroupId) -> &[NodeId] {
        self.replicas.get(&group).map_or(&[], Vec::as_slice)
    }

    /// The groups `node_id` hosts a replica of.
    pub fn groups_on(&self, node_id: NodeId) -> Vec<GroupId> {
        self.replicas
            .iter()
            .filter(|(_, replicas)| replicas.contains(&node_id))
            .map(|(&group, _)| group)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(layout: &[(NodeId, &str)]) -> BTreeMap<NodeId, String> {
        layout
            .iter()
            .map(|&(node_id, zone)| (node_id, zone.to_owned()))
            .collect()
    }

    fn six_nodes_in_three_zones() -> BTreeMap<NodeId, String> {
        zoned(&[
            (1, "az1"),
            (2, "az1"),
            (3, "az2"),
            (4, "az2"),
            (5, "az3"),
            (6, "az3"),
        ])
    }

    #[test]
    fn every_group_gets_three_replicas_in_three_distinct_zones() {
        for zones in [
            six_nodes_in_three_zones(),
            zoned(&[(1, "a"), (2, "a"), (3, "a"), (4, "b"), (5, "c")]),
            zoned(&[
                (1, "a"),
                (2, "b"),
                (3, "c"),
                (4, "d"),
                (5, "e"),
                (6, "f"),
                (7, "g"),
            ]),
        ] {
            let placement = Placement::compute(zones.clone(), 64);
            assert_eq!(placement.groups().len(), 67);
            for (group, replicas) in placement.groups() {
                assert_eq!(replicas.len(), REPLICAS_PER_GROUP, "{group}: {replicas:?}");
                let distinct_zones: BTreeSet<&str> = replicas
                    .iter()
                    .map(|node_id| zones[node_id].as_str())
                    .collect();
                assert_eq!(
                    distinct_zones.len(),
                    3,
                    "{group}: {replicas:?} in {zones:?}"
                );
            }
        }
    }

    #[test]
    fn fewer_zones_than_replicas_still_gives_distinct_nodes() {
        let zones = zoned(&[(1, "a"), (2, "a"), (3, "b"), (4, "b")]);
        for group in GroupId::all(16) {
            let replicas = place_group(group, &zones);
            assert_eq!(replicas.len(), 3);
            let distinct: BTreeSet<NodeId> = replicas.iter().copied().collect();
            assert_eq!(distinct.len(), 3);
            let distinct_zones: BTreeSet<&str> = replicas
                .iter()
                .map(|node_id| zones[node_id].as_str())
                .collect();
            assert_eq!(distinct_zones.len(), 2, "both zones used: {replicas:?}");
        }
    }

    #[test]
    fn small_clusters_place_every_group_on_every_node() {
        for node_count in 1..=3u64 {
            let zones = effective_zones(1..=node_count, &BTreeMap::new());
            let placement = Placement::compute(zones, 8);
            for replicas in placement.groups().values() {
                assert_eq!(*replicas, (1..=node_count).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn placement_is_deterministic_and_independent_of_input_order() {
        let first = Placement::compute(six_nodes_in_three_zones(), 32);
        let mut reversed = BTreeMap::new();
        for (node_id, zone) in six_nodes_in_three_zones().into_iter().rev() {
            reversed.insert(node_id, zone);
        }
        assert_eq!(Placement::compute(reversed, 32), first);
        // Golden values: a change here moves groups between nodes and needs a new
        // PLACEMENT_VERSION.
        let golden: Vec<Vec<NodeId>> = (0..4)
            .map(|partition_index| first.replicas(GroupId::partition(partition_index)).to_vec())
            .collect();
        assert_eq!(golden, GOLDEN_SIX_NODES);
    }

    const GOLDEN_SIX_NODES: [[NodeId; 3]; 4] = [[1, 3, 6], [1, 4, 5], [2, 4, 5], [1, 4, 5]];

    #[test]
    fn groups_spread_evenly_over_nodes() {
        for zones in [
            six_nodes_in_three_zones(),
            effective_zones(1..=6, &BTreeMap::new()),
            effective_zones(1..=9, &BTreeMap::new()),
        ] {
            let partition_count = 256;
            let placement = Placement::compute(zones.clone(), partition_count);
            let group_count = placement.groups().len();
            let mean = (group_count * REPLICAS_PER_GROUP) as f64 / zones.len() as f64;
            for &node_id in zones.keys() {
                let hosted = placement.groups_on(node_id).len() as f64;
                let deviation = (hosted - mean).abs() / mean;
                assert!(
                    deviation < 0.2,
                    "node {node_id} hosts {hosted} groups, mean {mean:.1} ({zones:?})"
                );
            }
        }
    }

    #[test]
    fn a_new_node_only_takes_groups_over() {
        let before = Placement::compute(effective_zones(1..=6, &BTreeMap::new()), 128);
        let after = Placement::compute(effective_zones(1..=7, &BTreeMap::new()), 128);
        let mut moved_groups = 0;
        for (group, old) in before.groups() {
            let new = after.replicas(*group);
            let lost: Vec<&NodeId> = old.iter().filter(|node| !new.contains(node)).collect();
            if !lost.is_empty() {
                moved_groups += 1;
                assert!(
                    new.contains(&7),
                    "{group} moved between old nodes: {old:?} → {new:?}"
                );
                assert_eq!(lost.len(), 1, "{group}: {old:?} → {new:?}");
            }
        }
        // Node 7 wins about 3/7 of the groups.
        assert!((30..=85).contains(&moved_groups), "moved {moved_groups}");
    }
}
