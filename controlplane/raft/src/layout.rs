//! The cluster layout: what every meta node and client must agree on, and the check against the
//! layout the partition-map group recorded (pure).
//!
//! # Model
//!
//! A key reaches the right partition only if everyone hashes with the same ring (version,
//! partition count, virtual nodes), and a partition's replicas are found only if everyone places
//! groups the same way (placement version, replicas per group, the meta nodes and their zones).
//! [`cluster_layout`] captures all of that from one's own configuration; the partition-map group
//! ([`GroupId::PARTITION_MAP`]) stores the first layout proposed to it, at the cluster's first
//! bootstrap, and answers it to everyone after. [`check_layout`] compares one's own layout with
//! the recorded one and names every difference, so a node started with another `--partitions`
//! (or another peer list, or other zones) is refused with a message that says which setting is
//! wrong instead of silently routing keys to the wrong partitions.
//!
//! A node that joins an existing cluster (`--join`) is not part of the recorded placement (that
//! is the initial one; later membership changes go through Raft), so only the ring and placement
//! parameters are compared for it.

use cairn_meta_state::ClusterLayout;

use crate::placement::{PLACEMENT_VERSION, Placement, REPLICAS_PER_GROUP};
use crate::ring::{RING_VERSION, VIRTUAL_NODES_PER_PARTITION};
use crate::types::GroupId;

/// The layout of a deployment with `partition_count` partitions placed as `placement`.
pub fn cluster_layout(placement: &Placement, partition_count: u32) -> ClusterLayout {
    ClusterLayout {
        ring_version: RING_VERSION,
        partition_count,
        virtual_nodes_per_partition: VIRTUAL_NODES_PER_PARTITION,
        placement_version: PLACEMENT_VERSION,
        replicas_per_group: REPLICAS_PER_GROUP as u32,
        zones: placement.zones().clone(),
        placement: placement
            .groups()
            .iter()
            .map(|(group, replicas)| (group.0, replicas.clone()))
            .collect(),
    }
}

/// Which parts of the layouts [`check_layout`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutComparison {
    /// Everything: a bootstrapping node or a client.
    Full,
    /// Ring and placement parameters only: a node joining an existing cluster.
    ParametersOnly,
}

/// `Ok` when `ours` matches `recorded`; otherwise a message naming every difference.
pub fn check_layout(
    ours: &ClusterLayout,
    recorded: &ClusterLayout,
    comparison: LayoutComparison,
) -> Result<(), String> {
    let mut differences = Vec::new();
    let mut compare = |what: &str, ours: String, recorded: String| {
        if ours != recorded {
            differences.push(format!("{what}: configured {ours}, recorded {recorded}"));
        }
    };
    compare(
        "partition count (--partitions)",
        ours.partition_count.to_string(),
        recorded.partition_count.to_string(),
    );
    compare(
        "ring version",
        ours.ring_version.to_string(),
        recorded.ring_version.to_string(),
    );
    compare(
        "virtual nodes per partition",
        ours.virtual_nodes_per_partition.to_string(),
        recorded.virtual_nodes_per_partition.to_string(),
    );
    compare(
        "placement version",
        ours.placement_version.to_string(),
        recorded.placement_version.to_string(),
    );
    compare(
        "replicas per group",
        ours.replicas_per_group.to_string(),
        recorded.replicas_per_group.to_string(),
    );
    if comparison == LayoutComparison::Full {
        compare(
            "meta nodes and zones (--peers)",
            format!("{:?}", ours.zones),
            format!("{:?}", recorded.zones),
        );
        // Different nodes or zones already explain a different placement; report the placement
        // on its own only when it is the sole difference (a different placement algorithm).
        if differences.is_empty() {
            for (group, replicas) in &ours.placement {
                let recorded_replicas = recorded.placement.get(group);
                if recorded_replicas != Some(replicas) {
                    differences.push(format!(
                        "replicas of {}: computed {replicas:?}, recorded {recorded_replicas:?}",
                        GroupId(*group)
                    ));
                }
            }
            if recorded.placement.len() != ours.placement.len() {
                differences.push(format!(
                    "group count: computed {}, recorded {}",
                    ours.placement.len(),
                    recorded.placement.len()
                ));
            }
        }
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "configuration does not match the cluster layout recorded at bootstrap: {}",
            differences.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::placement::effective_zones;

    fn layout(node_count: u64, partition_count: u32) -> ClusterLayout {
        let placement = Placement::compute(
            effective_zones(1..=node_count, &BTreeMap::new()),
            partition_count,
        );
        cluster_layout(&placement, partition_count)
    }

    #[test]
    fn equal_layouts_match() {
        assert_eq!(
            check_layout(&layout(5, 8), &layout(5, 8), LayoutComparison::Full),
            Ok(())
        );
    }

    #[test]
    fn another_partition_count_is_named() {
        let error = check_layout(&layout(3, 4), &layout(3, 8), LayoutComparison::Full).unwrap_err();
        assert!(
            error.contains("partition count (--partitions): configured 4, recorded 8"),
            "{error}"
        );
        // Parameters are compared for a joining node too.
        assert!(
            check_layout(
                &layout(3, 4),
                &layout(3, 8),
                LayoutComparison::ParametersOnly
            )
            .is_err()
        );
    }

    #[test]
    fn other_peers_are_refused_unless_joining() {
        let error = check_layout(&layout(4, 8), &layout(3, 8), LayoutComparison::Full).unwrap_err();
        assert!(error.contains("meta nodes and zones"), "{error}");
        assert_eq!(
            check_layout(
                &layout(4, 8),
                &layout(3, 8),
                LayoutComparison::ParametersOnly
            ),
            Ok(())
        );
    }

    #[test]
    fn a_different_placement_alone_is_named() {
        let ours = layout(6, 2);
        let mut recorded = ours.clone();
        recorded
            .placement
            .insert(GroupId::BUCKET_SERVICE.0, vec![1, 2, 3]);
        if ours.placement[&GroupId::BUCKET_SERVICE.0] == vec![1, 2, 3] {
            recorded
                .placement
                .insert(GroupId::BUCKET_SERVICE.0, vec![4, 5, 6]);
        }
        let error = check_layout(&ours, &recorded, LayoutComparison::Full).unwrap_err();
        assert!(error.contains("replicas of bucket-service"), "{error}");
    }
}
