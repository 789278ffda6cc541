//! The detached client works from a thread with no tokio runtime (as on the gateway's monoio
//! executors): its futures are polled by a plain executor while its own runtime does the I/O.

mod common;

use cairn_meta_state::{Query, Response, VersionSelector};
use cairn_raft::{DetachedMetaClient, MetaClientConfig};
use common::{BUCKET, Cluster, fast_timing, prepare};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_client_serves_a_foreign_executor() {
    common::init_tracing();
    let cluster = Cluster::start(3, 2, fast_timing()).await;
    let config = MetaClientConfig::new(cluster.peers(), cluster.partition_count);

    // A plain thread (no tokio context), joined without blocking the cluster's runtime.
    let thread = std::thread::spawn(move || {
        let client = DetachedMetaClient::start(config, 1).expect("client runtime");
        futures::executor::block_on(async {
            let prepared = client
                .write(prepare("detached", "token-detached"))
                .await
                .expect("write");
            assert!(matches!(prepared.result, Ok(Response::Prepared { .. })));
            // PREPARING versions are not visible: the key reads as missing, through the leader.
            let read = client
                .read(Query::GetObject {
                    bucket: BUCKET.to_owned(),
                    key: "detached".to_owned(),
                    version: VersionSelector::Current,
                })
                .await
                .expect("read");
            assert!(read.is_err(), "uncommitted version visible: {read:?}");
        });
        // Dropped here, outside any runtime context.
        drop(client);
    });
    let outcome = tokio::task::spawn_blocking(move || thread.join())
        .await
        .expect("join task");
    assert!(outcome.is_ok(), "detached client thread panicked");
    cluster.shutdown().await;
}
