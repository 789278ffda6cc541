//! Black-box test of a whole availability zone failing: every role a separate `cairn` process of
//! one cluster file laid out as `cairn cluster init` lays it out by default — 3 meta replicas in
//! az1..az3, 12 storage nodes in 4 AZs of 3, 2 gateways, 1 worker, EC 6+3 — each process on its
//! own 127.0.x.y address.
//!
//! Why 4 AZs: placement keeps at most m = 3 shards of a stripe per AZ, so with one AZ down the
//! other three hold 3 × 3 = 9 = k + m shards and writes keep full redundancy (the rule, Z ≥ k/m + 2
//! AZs, is in ARCHITECTURE.md and the README).
//!
//! 1. az1 (storage nodes 1, 5, 9 and meta replica 1) is killed with SIGKILL while two boto3
//!    clients upload through both gateways; uploads go on (the gateways re-place the pieces meant
//!    for az1, the meta replicas left elect leaders), and every acknowledged upload reads back
//!    byte-exact.
//! 2. With az1 still down, the healer moves the pieces az1 held to the other AZs: every block of
//!    every committed object gets its k + m pieces back, on distinct live nodes, at most m per AZ,
//!    each piece present on its node (checked through the metadata and the nodes' own listings).
//! 3. az1 returns: its stale pieces (ones no shard map names any more) are removed, and the same
//!    check passes over all 12 nodes; everything still reads back exactly.
//! 4. Two AZs' storage nodes down (6 nodes left in 2 AZs: room for 6 pieces, a write needs
//!    k + 1 = 7): a PUT is refused promptly with 503 ServiceUnavailable and a message that says
//!    why, not a hang.

#[path = "az_cluster.rs"]
mod az_cluster;

use std::time::{Duration, Instant};

use az_cluster::{Cluster, finish, line_count, start_streams, wait_for_lines};

#[test]
fn a_whole_az_down_under_load_loses_no_acknowledged_write_and_heals_when_it_returns() {
    let mut cluster = Cluster::start(None);
    let work = cluster.dir.path().to_owned();
    let fixed = work.join("fixed.manifest").display().to_string();
    cluster.run_load(0, &["put", "az-fixed", "10", &fixed]);

    // Two uploaders, one through each gateway, while az1 dies.
    let stop = work.join("stop");
    let (manifests, streams) = start_streams(&cluster, "az-stream", &stop);
    for manifest in &manifests {
        wait_for_lines(manifest, 5, Duration::from_secs(60), "before the AZ failed");
    }
    let before: Vec<usize> = manifests.iter().map(|path| line_count(path)).collect();
    cluster.kill_az("az1", true);
    let killed_at = Instant::now();
    // Writes go on through both gateways with az1 gone.
    for (manifest, count) in manifests.iter().zip(&before) {
        wait_for_lines(
            manifest,
            count + 15,
            Duration::from_secs(120),
            "with az1 down",
        );
    }
    eprintln!(
        "15 more uploads per gateway acknowledged {:.1} s after az1 was killed",
        killed_at.elapsed().as_secs_f64()
    );
    std::fs::write(&stop, b"").unwrap();
    for (gateway, stream) in streams.into_iter().enumerate() {
        let summary = finish(stream, &format!("upload stream through gateway {gateway}"));
        eprintln!("gateway {gateway}: {}", summary.trim());
    }
    // Every acknowledged upload reads back exactly, through the other gateway, az1 still down.
    cluster.run_load(1, &["verify", "az-fixed", &fixed]);
    for (gateway, manifest) in manifests.iter().enumerate() {
        cluster.run_load(
            1 - gateway,
            &["verify", "az-stream", &manifest.display().to_string()],
        );
    }

    // The healer restores k + m pieces per block on the nine live nodes, ≤ m per AZ.
    let healing = Instant::now();
    cluster.wait_for_full_redundancy(false, Duration::from_secs(180), "az1 down");
    eprintln!(
        "full redundancy without az1 {:.1} s after the uploads stopped",
        healing.elapsed().as_secs_f64()
    );

    // az1 returns: its pieces that were moved away are removed, nothing else changes.
    cluster.restart_az("az1");
    let returning = Instant::now();
    cluster.wait_for_full_redundancy(true, Duration::from_secs(180), "az1 back");
    eprintln!(
        "az1's stale pieces removed {:.1} s after it returned",
        returning.elapsed().as_secs_f64()
    );
    cluster.run_load(0, &["verify", "az-fixed", &fixed]);
    for manifest in &manifests {
        cluster.run_load(0, &["verify", "az-stream", &manifest.display().to_string()]);
    }
    cluster.assert_no_error_lines();

    // Two AZs' storage nodes down: 6 nodes in 2 AZs hold at most 6 pieces by the AZ rule, a
    // stripe of real data in all k = 6 data pieces needs k + 1 = 7. The PUT of such an object
    // (2 MB: its first stripe is whole) is refused at once with a 503 that says why.
    cluster.kill_az("az3", false);
    cluster.kill_az("az4", false);
    // A small object is different: its data fits in one piece and the other five data pieces
    // are padding (never written, zeros by definition), so its 1 + 3 real pieces all fit.
    let small = cluster.put_once(0, None, "az-stream", "small", 4096);
    assert_eq!(small["status"], 200, "{small}");
    let answer = cluster.put_once(0, None, "az-stream", "refused", 2_000_000);
    assert_eq!(answer["status"], 503, "{answer}");
    assert_eq!(answer["code"], "ServiceUnavailable", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("Cannot place erasure-coded 6+3")
            && message.contains("at most 3 pieces per availability zone"),
        "{message}"
    );
    assert!(
        answer["seconds"].as_f64().unwrap() < 30.0,
        "the refusal took too long: {answer}"
    );
}
