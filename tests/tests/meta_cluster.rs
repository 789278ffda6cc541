//! Black-box tests of `cairn meta` with three real replica processes on 127.0.0.1:
//!
//! - a write stream from the meta client, every replica killed with SIGKILL in turn (so the
//!   leader is killed at least once: killing a follower does not move leadership) and restarted;
//!   afterwards every write that was acknowledged reads back, and writes kept being acknowledged
//!   after each kill;
//! - a network partition made by real TCP proxies on every replica → replica link: the cut-off
//!   replica refuses writes and linearizable reads while the majority keeps writing, and after
//!   healing it converges (shown by replaying its data directory once every replica stopped);
//! - a replica restarted with another `--partitions` refuses to run and says why.

use cairn_meta_state::{
    Acl, Checksums, Command, CommitWrite, CreateBucket, ObjectRecord, PrepareWrite, Query,
    Response, StorageClass, VersionSelector, VersioningState,
};
use cairn_raft::store::read_replica_state;
use cairn_raft::{ClientError, MetaClient, MetaClientConfig};
use cairn_tests::{
    CairnProcess, FaultProxy, free_address, wait_for_listener, wait_until_port_closed,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const PARTITIONS: u32 = 4;

struct Replica {
    id: u64,
    address: SocketAddr,
    data: PathBuf,
    process: Option<CairnProcess>,
}

fn start(replica: &mut Replica, peers: &str, log_dir: &Path) {
    let mut process = spawn(replica, peers, log_dir, PARTITIONS);
    wait_for_listener(replica.address, &mut process, Duration::from_secs(30));
    replica.process = Some(process);
}

/// Starts `cairn meta` for `replica` with `peers` as its view of the cluster.
fn spawn(replica: &Replica, peers: &str, log_dir: &Path, partitions: u32) -> CairnProcess {
    spawn_with(replica, peers, log_dir, partitions, &[])
}

/// One CA for this test binary: replicas run as `meta-N`, clients as `gateway-test`.
fn pki() -> &'static cairn_tests::TestPki {
    static PKI: std::sync::OnceLock<cairn_tests::TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        cairn_tests::TestPki::create(Path::new(BINARY), &root)
    })
}

/// A client configuration with the test's gateway identity (the replicas serve mutual TLS only).
fn tls_client_config(nodes: BTreeMap<u64, String>, partitions: u32) -> MetaClientConfig {
    let mut config = MetaClientConfig::new(nodes, partitions);
    config.identity = Some(
        cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
            pki().issue("gateway-test", "gateway"),
        ))
        .unwrap(),
    );
    config
}

fn spawn_with(
    replica: &Replica,
    peers: &str,
    log_dir: &Path,
    partitions: u32,
    extra_args: &[&str],
) -> CairnProcess {
    let mut args = vec![
        "meta".to_string(),
        "--id".into(),
        replica.id.to_string(),
        "--listen".into(),
        replica.address.to_string(),
        "--data".into(),
        replica.data.display().to_string(),
        "--peers".into(),
        peers.to_string(),
        "--partitions".into(),
        partitions.to_string(),
    ];
    args.extend(pki().role_args(&format!("meta-{}", replica.id), "meta"));
    args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
    CairnProcess::start(
        Path::new(BINARY),
        &args,
        log_dir,
        &format!("meta-{}", replica.id),
    )
}

/// Three replicas (ids 1–3) on free ports with their data below `root`, not started.
fn three_replicas(root: &Path) -> Vec<Replica> {
    (1..=3)
        .map(|id| Replica {
            id,
            address: free_address(),
            data: root.join(format!("meta-{id}")),
            process: None,
        })
        .collect()
}

/// The `--peers` list of `replicas` at their own listeners.
fn peer_list(replicas: &[Replica]) -> String {
    replicas
        .iter()
        .map(|replica| format!("{}={}", replica.id, replica.address))
        .collect::<Vec<_>>()
        .join(",")
}

fn node_addresses(replicas: &[Replica]) -> BTreeMap<u64, String> {
    replicas
        .iter()
        .map(|replica| (replica.id, replica.address.to_string()))
        .collect()
}

fn bucket_command(n: u64) -> Command {
    Command::CreateBucket(CreateBucket {
        bucket: format!("bucket-{n:06}"),
        owner: "owner".into(),
        primary_region: "local".into(),
        ec_scheme: "isal-cauchy:4+2".into(),
        acl: Acl::default(),
        now_ms: 1_700_000_000_000 + n,
        attributes: Default::default(),
    })
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_replica_in_turn() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(root.path());
    let peers = peer_list(&replicas);
    for replica in &mut replicas {
        start(replica, &peers, root.path());
    }
    let nodes = node_addresses(&replicas);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = Arc::new(MetaClient::new(tls_client_config(nodes, PARTITIONS)));

    let acknowledged = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, acknowledged, stop) = (client.clone(), acknowledged.clone(), stop.clone());
        runtime.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                // A write that fails (election in progress) is retried under the same bucket name
                // until it is acknowledged: CreateBucket is idempotent for the same owner.
                if let Ok(output) = client.write(bucket_command(n)).await {
                    let created = output.result.is_ok()
                        || matches!(
                            output.result,
                            Err(cairn_meta_state::MetaError::BucketAlreadyOwnedByYou { .. })
                        );
                    assert!(created, "bucket {n}: {:?}", output.result);
                    acknowledged.lock().unwrap().push(n);
                    n += 1;
                }
            }
        })
    };

    let mut acknowledged_before_kill = Vec::new();
    for replica in &mut replicas {
        std::thread::sleep(Duration::from_millis(1500));
        acknowledged_before_kill.push(acknowledged.lock().unwrap().len());
        replica.process.as_mut().unwrap().kill_9();
        wait_until_port_closed(replica.address, Duration::from_secs(20));
        // The two survivors keep accepting writes while the third is down.
        std::thread::sleep(Duration::from_millis(2500));
        start(replica, &peers, root.path());
    }
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    runtime.block_on(writer).unwrap();

    let acknowledged = acknowledged.lock().unwrap().clone();
    for pair in acknowledged_before_kill.windows(2) {
        assert!(
            pair[1] > pair[0],
            "writes continued after each kill: {acknowledged_before_kill:?}"
        );
    }
    assert!(
        acknowledged.len() > acknowledged_before_kill[2],
        "writes continued after the last kill"
    );
    runtime.block_on(async {
        for n in &acknowledged {
            let bucket = format!("bucket-{n:06}");
            let read = client
                .read(Query::GetBucket {
                    bucket: bucket.clone(),
                })
                .await
                .expect("read");
            assert!(
                matches!(read, Ok(Response::Bucket(ref record)) if record.name == bucket),
                "{bucket}: {read:?}"
            );
        }
    });
    for replica in &replicas {
        let errors = replica
            .process
            .as_ref()
            .unwrap()
            .error_lines_except(cairn_tests::RAFT_PEER_UNREACHABLE);
        assert!(
            errors.is_empty(),
            "replica {} logged unexpected errors:\n{}",
            replica.id,
            errors.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Network partition through real proxies

const BUCKET: &str = "photos";

fn prepare(key: &str, token: &str) -> Command {
    Command::PrepareWrite(PrepareWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        idempotency_token: token.to_owned(),
        size_bytes: 0,
        content_type: "text/plain".to_owned(),
        owner: "owner".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        ec_scheme: "isal-cauchy:4+2".to_owned(),
        piece_size_bytes: 65_536,
        versioning: VersioningState::Unversioned,
        now_ms: 10_000,
        attributes: Default::default(),
    })
}

/// PrepareWrite + CommitWrite of an empty object; the committed record.
async fn put(client: &MetaClient, key: &str, token: &str) -> ObjectRecord {
    let prepared = client.write(prepare(key, token)).await.expect("prepare");
    let Ok(Response::Prepared { record, .. }) = prepared.result else {
        panic!("prepare {key}: {:?}", prepared.result);
    };
    let committed = client
        .write(Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version_id: record.version_id,
            idempotency_token: token.to_owned(),
            checksums: Checksums {
                etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                additional: None,
            },
            parts: Vec::new(),
            now_ms: 20_000,
        }))
        .await
        .expect("commit");
    match committed.result {
        Ok(Response::Committed { record, .. }) => record,
        other => panic!("commit {key}: {other:?}"),
    }
}

fn get_object(key: &str) -> Query {
    Query::GetObject {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version: VersionSelector::Current,
    }
}

/// A client that dials only `node_ids` (a redirect elsewhere counts as a failure), with short
/// deadlines so a refusal shows quickly.
fn pinned_client(nodes: &BTreeMap<u64, String>, node_ids: &[u64]) -> MetaClient {
    let mut config = tls_client_config(nodes.clone(), PARTITIONS);
    config.dial_only = Some(node_ids.iter().copied().collect::<BTreeSet<u64>>());
    config.attempt_timeout_ms = 1_500;
    config.operation_timeout_ms = 4_000;
    MetaClient::new(config)
}

#[test]
fn cut_off_replica_refuses_and_converges_after_healing() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(root.path());
    // proxies[(from, to)] carries every connection `from` opens to `to`.
    let mut proxies: BTreeMap<(u64, u64), FaultProxy> = BTreeMap::new();
    for from in &replicas {
        for to in &replicas {
            if from.id != to.id {
                proxies.insert((from.id, to.id), FaultProxy::start(to.address));
            }
        }
    }
    // Each replica's own view: itself at its listener, every other replica behind a proxy.
    let peers_of = |replica_id: u64| -> String {
        replicas
            .iter()
            .map(|other| {
                let address = if other.id == replica_id {
                    other.address
                } else {
                    proxies[&(replica_id, other.id)].address()
                };
                format!("{}={address}", other.id)
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    let views: BTreeMap<u64, String> = (1..=3).map(|id| (id, peers_of(id))).collect();
    for replica in &mut replicas {
        start(replica, &views[&replica.id], root.path());
    }
    // Clients dial the replicas' own listeners.
    let nodes = node_addresses(&replicas);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut full_config = tls_client_config(nodes.clone(), PARTITIONS);
    full_config.operation_timeout_ms = 30_000;
    let client = MetaClient::new(full_config);

    let first = runtime.block_on(put(&client, "k", "token-k-1"));
    let group = client.partition_of(BUCKET, "k");

    // The leader of k's partition is the replica that answers a read addressed to it alone.
    let cut_id = runtime.block_on(async {
        for attempt in 0..50 {
            for &node_id in nodes.keys() {
                let mut config = tls_client_config(nodes.clone(), PARTITIONS);
                config.dial_only = Some([node_id].into_iter().collect());
                config.operation_timeout_ms = 500;
                let pinned = MetaClient::new(config);
                if let Ok(Ok(Response::Object(_))) = pinned.read(get_object("k")).await {
                    return node_id;
                }
            }
            assert!(attempt < 49, "no replica leads {group}");
        }
        unreachable!()
    });
    let majority: Vec<u64> = nodes.keys().copied().filter(|&id| id != cut_id).collect();
    let majority_client = {
        let mut config = tls_client_config(nodes.clone(), PARTITIONS);
        config.dial_only = Some(majority.iter().copied().collect());
        config.operation_timeout_ms = 30_000;
        MetaClient::new(config)
    };
    let minority_client = pinned_client(&nodes, &[cut_id]);
    runtime.block_on(async {
        majority_client.verify_layout().await.expect("layout");
        minority_client.verify_layout().await.expect("layout");
    });

    // Cut every link to and from the leader of k's partition.
    for ((from, to), proxy) in &proxies {
        if *from == cut_id || *to == cut_id {
            proxy.cut();
        }
    }

    // The majority elects its own leaders and keeps taking writes, k's overwrite included.
    let cut_started = std::time::Instant::now();
    let second = runtime.block_on(put(&majority_client, "k", "token-k-2"));
    assert_ne!(second.version_id, first.version_id);
    let during_cut: Vec<String> = (0..20)
        .map(|index| format!("during-cut/{index:02}"))
        .collect();
    runtime.block_on(async {
        for key in &during_cut {
            put(&majority_client, key, &format!("token-{key}")).await;
        }
    });
    assert!(
        cut_started.elapsed() < Duration::from_secs(20),
        "the majority took {:?} to serve",
        cut_started.elapsed()
    );

    // The cut-off replica, asked directly, refuses: no write is acknowledged and no read answers
    // from its stale state (it still holds the first version of k).
    runtime.block_on(async {
        let write = minority_client.write(prepare("k", "token-minority")).await;
        assert!(
            matches!(write, Err(ClientError::Unavailable { .. })),
            "cut-off replica acknowledged a write: {write:?}"
        );
        for key in ["k", "during-cut/00"] {
            let read = minority_client.read(get_object(key)).await;
            assert!(
                matches!(read, Err(ClientError::Unavailable { .. })),
                "cut-off replica answered a read of {key}: {read:?}"
            );
        }
    });

    // Heal. The old leader learns of the newer term and follows: addressed alone it now
    // redirects to the majority's leader (a refusal for a pinned client, with that reason).
    for proxy in proxies.values() {
        proxy.heal();
    }
    runtime.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match minority_client
                .write(prepare("k", "token-after-heal"))
                .await
            {
                Err(ClientError::Unavailable { last_error, .. })
                    if last_error.contains("not a node this client dials") =>
                {
                    break;
                }
                other => assert!(
                    std::time::Instant::now() < deadline,
                    "healed replica still not following: {other:?}"
                ),
            }
        }
    });

    // Convergence: let it follow for a moment, stop every replica, and read the healed replica's
    // own data directory (its snapshot plus its log, replayed offline): it must hold everything
    // the majority acknowledged while it was cut off, k's overwrite included.
    std::thread::sleep(Duration::from_secs(2));
    for replica in &mut replicas {
        replica.process.as_mut().unwrap().kill_9();
    }
    for replica in &replicas {
        let errors = replica
            .process
            .as_ref()
            .unwrap()
            .error_lines_except(cairn_tests::RAFT_PEER_UNREACHABLE);
        assert!(
            errors.is_empty(),
            "replica {} logged unexpected errors:\n{}",
            replica.id,
            errors.join("\n")
        );
    }
    let healed_data = &replicas[(cut_id - 1) as usize].data;
    let state_of = |group: cairn_raft::GroupId| {
        read_replica_state(
            &healed_data.join(format!("group-{}", group.0)),
            group.role(PARTITIONS),
        )
        .expect("read the healed replica's state")
    };
    match state_of(group).query(&get_object("k")) {
        Ok(Response::Object(record)) => assert_eq!(
            record.version_id, second.version_id,
            "the healed replica holds an old version of k"
        ),
        other => panic!("k in the healed replica: {other:?}"),
    }
    for key in &during_cut {
        let answer = state_of(client.partition_of(BUCKET, key)).query(&get_object(key));
        assert!(
            matches!(answer, Ok(Response::Object(_))),
            "{key} missing from the healed replica: {answer:?}"
        );
    }
}

#[test]
fn replica_with_another_partition_count_refuses_to_run() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(root.path());
    let peers = peer_list(&replicas);
    for replica in &mut replicas {
        start(replica, &peers, root.path());
    }
    let nodes = node_addresses(&replicas);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = MetaClient::new(tls_client_config(nodes, PARTITIONS));
    runtime.block_on(put(&client, "k", "token-k"));

    // Replica 3 comes back with one partition more than the cluster was bootstrapped with.
    let third = &mut replicas[2];
    third.process.as_mut().unwrap().kill_9();
    wait_until_port_closed(third.address, Duration::from_secs(20));
    let mut process = spawn(third, &peers, root.path(), PARTITIONS + 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let exit_code = loop {
        if let Some(code) = process.try_exit_code() {
            break code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica with --partitions {} kept running; log:\n{}",
            PARTITIONS + 1,
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(exit_code, Some(0));
    let log = process.log();
    let expected = format!(
        "partition count (--partitions): configured {}, recorded {PARTITIONS}",
        PARTITIONS + 1
    );
    assert!(
        log.contains(&expected),
        "no clear refusal in the log:\n{log}"
    );
    // The two others still serve.
    runtime.block_on(put(&client, "after-refusal", "token-after-refusal"));
}

/// The snapshot path of catch-up between real processes: with snapshots every 50 entries and
/// only 5 kept behind one, a replica killed before 400 more bucket-service writes cannot catch
/// up from the log (the entries it lacks were purged) and must install the leader's snapshot.
/// Its `/status` then shows a snapshot that covers writes made while it was down, and every
/// write is readable with it serving as a voter of the same group.
#[test]
fn a_replica_behind_the_purged_log_catches_up_from_a_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas = three_replicas(root.path());
    let admins: Vec<SocketAddr> = (0..3).map(|_| free_address()).collect();
    let peers = peer_list(&replicas);
    let flags = |index: usize| {
        [
            "--snapshot-after-entries".to_owned(),
            "50".to_owned(),
            "--snapshot-keep-entries".to_owned(),
            "5".to_owned(),
            "--admin-listen".to_owned(),
            admins[index].to_string(),
        ]
    };
    for (index, replica) in replicas.iter_mut().enumerate() {
        let extra = flags(index);
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let mut process = spawn_with(replica, &peers, root.path(), PARTITIONS, &extra);
        wait_for_listener(replica.address, &mut process, Duration::from_secs(30));
        replica.process = Some(process);
    }
    let nodes = node_addresses(&replicas);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = MetaClient::new(tls_client_config(nodes, PARTITIONS));
    let write = |n: u64| {
        for _ in 0..100 {
            if let Ok(output) = runtime.block_on(client.write(bucket_command(n))) {
                assert!(
                    output.result.is_ok()
                        || matches!(
                            output.result,
                            Err(cairn_meta_state::MetaError::BucketAlreadyOwnedByYou { .. })
                        ),
                    "{:?}",
                    output.result
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("bucket {n} never acknowledged");
    };
    for n in 0..20 {
        write(n);
    }
    // Replica 3 goes away; 400 more writes go through the other two.
    replicas[2].process.as_mut().unwrap().kill_9();
    replicas[2].process = None;
    wait_until_port_closed(replicas[2].address, Duration::from_secs(20));
    for n in 20..420 {
        write(n);
    }
    let extra = flags(2);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut process = spawn_with(&replicas[2], &peers, root.path(), PARTITIONS, &extra);
    wait_for_listener(replicas[2].address, &mut process, Duration::from_secs(30));
    // The admin listener opens after the Raft port (once the node has started).
    wait_for_listener(admins[2], &mut process, Duration::from_secs(30));
    replicas[2].process = Some(process);

    // The bucket service's status on replica 3: applied past the last write, with a snapshot
    // that already covers writes it never saw in its log.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = cairn_tests::http_get(admins[2], "/status");
        assert_eq!(status, 200);
        let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let group = status["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|group| group["group"] == "bucket-service")
            .cloned()
            .unwrap();
        let snapshot_index = group["snapshot_index"].as_u64().unwrap();
        let applied = group["last_applied_index"].as_u64().unwrap();
        // Replica 3 held ~25 entries when it died and the leader kept only 5 behind each
        // snapshot, so a snapshot past 100 here can only have been installed from the leader.
        if snapshot_index > 100 && applied >= 420 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica 3 did not catch up from a snapshot: {group}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = replicas[2].process.as_ref().unwrap().log();
    assert!(log.to_lowercase().contains("snapshot"), "{log}");
    // Every write is there, read through the cluster (linearizable, from the leader).
    for n in (0..420).step_by(37) {
        let read = runtime
            .block_on(client.read(Query::GetBucket {
                bucket: format!("bucket-{n:06}"),
            }))
            .unwrap();
        assert!(read.is_ok(), "bucket {n}: {read:?}");
    }
}
