//! The scrubber/healer against a real metadata replica and real storage nodes: an object encoded
//! with 4+2 (two blocks) has one piece on a node that is gone, one piece deleted from a live node
//! and one piece replaced by wrong bytes (self-consistent for the node, wrong end to end). One
//! pass finds all three, rebuilds them (the lost node's piece on a node that keeps the AZ rule,
//! recorded through UpdateShardMap; the others in place), and every piece then matches the shard
//! map's checksum; the old placement is garbage for the janitor; a second pass finds nothing.
//! Then a piece corrupted again and reported through the suspect queue is rebuilt by one drain.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_common::{ShardId, ShardIndex};
use cairn_ec::{Scheme, new_codec};
use cairn_meta_state::{
    BlockShards, Command, GarbageReason, NodeId, PartShards, Query, Response, ShardPlacement,
    VersionSelector,
};
use cairn_storage_client::StorageClient;
use cairn_workers::healer::{HealReport, Healer, HealerConfig, HealerNode};
use common::{BUCKET, free_address, now_ms, start};

const PIECE_BYTES: usize = 4096;

#[test]
fn one_pass_finds_and_rebuilds_lost_missing_and_corrupt_pieces() {
    // Nodes 1..=7 live (az1: 1 4 7, az2: 2 5, az3: 3 6); node 8 (az3) is gone.
    let setup = start(7, "isal-cauchy:4+2");
    let dead_address = free_address();
    let mut nodes: Vec<HealerNode> = setup
        .nodes
        .iter()
        .map(|(&node_id, &address)| HealerNode {
            node_id,
            address,
            availability_zone: setup.zones[&node_id].clone(),
        })
        .collect();
    nodes.push(HealerNode {
        node_id: 8,
        address: dead_address,
        availability_zone: "az3".into(),
    });
    let zone_of = |node_id: u64| {
        nodes
            .iter()
            .find(|node| node.node_id == node_id)
            .unwrap()
            .availability_zone
            .clone()
    };

    // Encode 32 KiB as two 4+2 stripes of 4 KiB pieces.
    let scheme: Scheme = "isal-cauchy:4+2".parse().unwrap();
    let object: Vec<u8> = (0..32_768u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let record = setup.prepare_sized(
        "heal-me",
        "t-heal",
        now_ms(),
        32_768,
        "isal-cauchy:4+2",
        4096,
    );
    let object_id = setup.object_id(&record);
    let mut codec = new_codec(scheme);
    let placements = [[1u64, 2, 3, 4, 5, 8], [1, 2, 3, 4, 5, 6]];
    let mut blocks = Vec::new();
    let mut pieces_of = Vec::new();
    for (block_index, nodes_of_block) in placements.iter().enumerate() {
        let data: Vec<&[u8]> = (0..4)
            .map(|shard| {
                let start = block_index * 16_384 + shard * PIECE_BYTES;
                &object[start..start + PIECE_BYTES]
            })
            .collect();
        let mut parity = vec![vec![0u8; PIECE_BYTES]; 2];
        {
            let mut parity_views: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut p[..]).collect();
            codec.encode(&data, &mut parity_views).unwrap();
        }
        let pieces: Vec<Vec<u8>> = data
            .iter()
            .map(|piece| piece.to_vec())
            .chain(parity)
            .collect();
        let mut shards = BTreeMap::new();
        for (shard, piece) in pieces.iter().enumerate() {
            let node_id = nodes_of_block[shard];
            if node_id != 8 {
                let shard_id =
                    ShardId::new(object_id, 1, block_index as u32, ShardIndex(shard as u16));
                StorageClient::connect(setup.nodes[&node_id])
                    .unwrap()
                    .put(shard_id, piece)
                    .unwrap();
            }
            shards.insert(
                ShardIndex(shard as u16),
                ShardPlacement {
                    node_id: NodeId(node_id),
                    availability_zone: zone_of(node_id),
                    crc32c: crc32c::crc32c(piece),
                },
            );
        }
        blocks.push(BlockShards {
            length_bytes: 16_384,
            shards,
        });
        pieces_of.push(pieces);
    }
    let part = PartShards {
        part_number: 1,
        length_bytes: 32_768,
        blocks,
    };
    setup.commit(&record, "t-heal", part, now_ms());

    // Block 1: shard 0 vanishes from node 1, shard 2 on node 3 holds wrong (but, for the node,
    // self-consistent) bytes.
    let id = |block: u32, shard: u16| ShardId::new(object_id, 1, block, ShardIndex(shard));
    assert!(
        StorageClient::connect(setup.nodes[&1])
            .unwrap()
            .delete(id(1, 0))
            .unwrap()
    );
    StorageClient::connect(setup.nodes[&3])
        .unwrap()
        .put(id(1, 2), &vec![0xA5; PIECE_BYTES])
        .unwrap();

    let config = HealerConfig {
        down_grace: Duration::ZERO,
        read_budget_bytes_per_second: 1 << 30,
        storage_timeout: Duration::from_secs(2),
        ..HealerConfig::default()
    };
    let shards = cairn_workers::NodeConnections::new(
        nodes
            .iter()
            .map(|node| (node.node_id, node.address))
            .collect(),
        Duration::from_secs(2),
    );
    let mut healer = Healer::new(
        cairn_workers::RaftMeta::new(setup.meta_config.clone()).unwrap(),
        shards,
        nodes.clone(),
        config,
    );
    let report = healer.run_pass().unwrap();
    assert_eq!(
        report,
        HealReport {
            objects_checked: 1,
            pieces_checked: 12,
            pieces_corrupt: 1,
            pieces_missing: 1,
            pieces_rebuilt: 3,
            objects_healed: 1,
            blocks_unrecoverable: 0,
            conflicts: 0,
            orphans_found: 0,
            orphans_deleted: 0,
        }
    );

    // The map moved block 0's shard 5 off the dead node, to the only az3 node free for it.
    let Ok(Response::Object(healed)) = setup
        .runtime
        .block_on(setup.client.read(Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: "heal-me".to_owned(),
            version: VersionSelector::Current,
        }))
        .unwrap()
    else {
        panic!("object readable")
    };
    let healed_blocks = &healed.erasure.parts[0].blocks;
    assert_eq!(healed_blocks[0].shards[&ShardIndex(5)].node_id, NodeId(6));
    assert_eq!(healed.record_version, record.record_version + 2);
    // Every piece is where the map says, with the original bytes.
    for (block_index, block) in healed_blocks.iter().enumerate() {
        let mut per_zone = BTreeMap::new();
        for (index, placement) in &block.shards {
            *per_zone
                .entry(placement.availability_zone.clone())
                .or_insert(0) += 1;
            let mut bytes = StorageClient::connect(setup.nodes[&placement.node_id.0])
                .unwrap()
                .get(id(block_index as u32, index.0), None)
                .unwrap();
            bytes.resize(PIECE_BYTES, 0);
            assert_eq!(
                bytes, pieces_of[block_index][index.0 as usize],
                "block {block_index} shard {}",
                index.0
            );
            assert_eq!(crc32c::crc32c(&bytes), placement.crc32c);
        }
        assert!(per_zone.values().all(|&count| count <= 2), "{per_zone:?}");
    }
    // The dead node's copy is garbage: the janitor deletes it if the node ever returns.
    let partition = setup.client.partition_of(BUCKET, "heal-me");
    let Ok(Response::Garbage(garbage)) = setup
        .runtime
        .block_on(setup.client.read_from(
            partition,
            Query::ListGarbage {
                after: None,
                limit: 100,
            },
        ))
        .unwrap()
    else {
        panic!("garbage listed")
    };
    let moved: Vec<_> = garbage
        .iter()
        .filter(|entry| entry.reason == GarbageReason::ShardsMoved)
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        moved[0].parts[0].blocks[0].shards[&ShardIndex(5)].node_id,
        NodeId(8)
    );

    // The janitor cannot reach the dead node: the entry waits (and is retried) instead of
    // being purged with the stale copy still out there.
    let mut janitor = cairn_workers::Janitor::new(
        cairn_workers::RaftMeta::new(setup.meta_config.clone()).unwrap(),
        cairn_workers::NodeConnections::new(
            nodes
                .iter()
                .map(|node| (node.node_id, node.address))
                .collect(),
            Duration::from_secs(2),
        ),
        cairn_workers::JanitorConfig {
            garbage_grace: Duration::ZERO,
            ..cairn_workers::JanitorConfig::default()
        },
    );
    let janitor_report = janitor.run_pass(now_ms()).unwrap();
    assert_eq!(
        janitor_report.garbage_entries_deferred, 1,
        "{janitor_report:?}"
    );
    assert_eq!(janitor_report.garbage_entries_purged, 0);

    // Nothing left to do.
    let report = healer.run_pass().unwrap();
    assert_eq!(
        report,
        HealReport {
            objects_checked: 1,
            pieces_checked: 12,
            ..HealReport::default()
        }
    );

    // A reader's report: block 0's shard 1 now holds wrong bytes; the queue names the version,
    // and one drain rebuilds the piece and empties the queue.
    StorageClient::connect(setup.nodes[&2])
        .unwrap()
        .put(id(0, 1), &vec![0x3C; PIECE_BYTES])
        .unwrap();
    let reported = setup
        .runtime
        .block_on(setup.client.write(Command::ReportSuspect {
            bucket: BUCKET.to_owned(),
            key: "heal-me".to_owned(),
            version_id: record.version_id,
            now_ms: now_ms(),
        }))
        .unwrap();
    assert_eq!(
        reported.result,
        Ok(Response::SuspectReported { queued: true })
    );
    let report = healer.drain_suspects().unwrap();
    assert_eq!(report.objects_checked, 1);
    assert_eq!(report.pieces_corrupt, 1);
    assert_eq!(report.pieces_rebuilt, 1);
    let mut bytes = StorageClient::connect(setup.nodes[&2])
        .unwrap()
        .get(id(0, 1), None)
        .unwrap();
    bytes.resize(PIECE_BYTES, 0);
    assert_eq!(bytes, pieces_of[0][1]);
    let Ok(Response::Suspects(left)) = setup
        .runtime
        .block_on(setup.client.read_from(
            partition,
            Query::ListSuspects {
                after: None,
                limit: 10,
            },
        ))
        .unwrap()
    else {
        panic!("suspects listed")
    };
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(healer.drain_suspects().unwrap(), HealReport::default());

    // A pass drains the queues between its objects once the poll interval has passed: reported
    // again, the version is resolved by `run_pass` alone (a control healer whose interval has
    // not passed leaves the entry queued).
    let list_suspects = || {
        let Ok(Response::Suspects(entries)) = setup
            .runtime
            .block_on(setup.client.read_from(
                partition,
                Query::ListSuspects {
                    after: None,
                    limit: 10,
                },
            ))
            .unwrap()
        else {
            panic!("suspects listed")
        };
        entries
    };
    let report_again = || {
        setup
            .runtime
            .block_on(setup.client.write(Command::ReportSuspect {
                bucket: BUCKET.to_owned(),
                key: "heal-me".to_owned(),
                version_id: record.version_id,
                now_ms: now_ms(),
            }))
            .unwrap()
    };
    let healer_polling_every = |interval: Duration| {
        Healer::new(
            cairn_workers::RaftMeta::new(setup.meta_config.clone()).unwrap(),
            cairn_workers::NodeConnections::new(
                nodes
                    .iter()
                    .map(|node| (node.node_id, node.address))
                    .collect(),
                Duration::from_secs(2),
            ),
            nodes.clone(),
            HealerConfig {
                down_grace: Duration::ZERO,
                read_budget_bytes_per_second: 1 << 30,
                storage_timeout: Duration::from_secs(2),
                suspect_poll_interval: interval,
                ..HealerConfig::default()
            },
        )
    };
    report_again();
    healer_polling_every(Duration::from_secs(3600))
        .run_pass()
        .unwrap();
    assert_eq!(list_suspects().len(), 1);
    healer_polling_every(Duration::ZERO).run_pass().unwrap();
    assert!(list_suspects().is_empty());
}
