//! Black-box test of `cairn meta`: three real replica processes on 127.0.0.1, a write stream from
//! the meta client, every replica killed with SIGKILL in turn (so the leader is killed at least
//! once: killing a follower does not move leadership) and restarted; afterwards every write that
//! was acknowledged reads back, and writes kept being acknowledged after each kill.

use cairn_meta_state::{Acl, Command, CreateBucket, Query, Response};
use cairn_raft::{MetaClient, MetaClientConfig};
use cairn_tests::{CairnProcess, free_address, wait_for_listener, wait_until_port_closed};
use std::collections::BTreeMap;
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
    let args = vec![
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
        PARTITIONS.to_string(),
    ];
    let mut process = CairnProcess::start(
        Path::new(BINARY),
        &args,
        log_dir,
        &format!("meta-{}", replica.id),
    );
    wait_for_listener(replica.address, &mut process, Duration::from_secs(30));
    replica.process = Some(process);
}

fn bucket_command(n: u64) -> Command {
    Command::CreateBucket(CreateBucket {
        bucket: format!("bucket-{n:06}"),
        owner: "owner".into(),
        primary_region: "local".into(),
        ec_scheme: "isal-cauchy:4+2".into(),
        acl: Acl::default(),
        now_ms: 1_700_000_000_000 + n,
    })
}

#[test]
fn acknowledged_writes_survive_kill_9_of_every_replica_in_turn() {
    let root = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|id| Replica {
            id,
            address: free_address(),
            data: root.path().join(format!("meta-{id}")),
            process: None,
        })
        .collect();
    let peers = replicas
        .iter()
        .map(|replica| format!("{}={}", replica.id, replica.address))
        .collect::<Vec<_>>()
        .join(",");
    for replica in &mut replicas {
        start(replica, &peers, root.path());
    }
    let nodes: BTreeMap<u64, String> = replicas
        .iter()
        .map(|replica| (replica.id, replica.address.to_string()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = Arc::new(MetaClient::new(MetaClientConfig::new(nodes, PARTITIONS)));

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
        let errors = replica.process.as_ref().unwrap().error_lines();
        assert!(
            errors.is_empty(),
            "replica {} logged errors:\n{}",
            replica.id,
            errors.join("\n")
        );
    }
}
