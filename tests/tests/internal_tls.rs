//! Black-box tests of internal mutual TLS: real `cairn storage` and `cairn meta` processes on
//! 127.0.0.1 with identities from `cairn ca`, reached by clients with a valid certificate,
//! without one, with one of a foreign CA, of the wrong role, and revoked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::{ClientConfig, ClientError, StorageClient};
use cairn_tests::{CairnProcess, TestPki, content, free_address, wait_for_listener};
use tls_client::hand_made_config;

mod tls_client;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

fn shard(n: u64) -> ShardId {
    ShardId::new(u128::from(n) * 104_729, 3, 0, ShardIndex((n % 6) as u16))
}

fn identity(dir: &Path) -> Arc<cairn_tls::Identity> {
    cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(dir)).unwrap()
}

fn quick(tls: Option<Arc<rustls::ClientConfig>>) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Some(Duration::from_secs(5)),
        write_timeout: Some(Duration::from_secs(5)),
        tls,
        ..ClientConfig::default()
    }
}

/// Every kind of call fails: read, write, delete, stat, list (scan), health.
fn assert_every_call_refused(address: SocketAddr, config: ClientConfig, who: &str) {
    let mut client = match StorageClient::connect_with_config(address, config) {
        Ok(client) => client,
        // Refused during the handshake itself: nothing was served.
        Err(ClientError::Io(_) | ClientError::Protocol(_)) => return,
        Err(error) => panic!("{who}: unexpected connect error {error}"),
    };
    let put = client.put(shard(900), &content(900, 5000));
    assert!(put.is_err(), "{who}: put answered {put:?}");
    let get = client.get(shard(1), None);
    assert!(get.is_err(), "{who}: get answered");
    let delete = client.delete(shard(1));
    assert!(delete.is_err(), "{who}: delete answered {delete:?}");
    let stat = client.stat(shard(1));
    assert!(stat.is_err(), "{who}: stat answered {stat:?}");
    let scan = client.scan(None, 100);
    assert!(scan.is_err(), "{who}: scan answered {scan:?}");
    let health = client.health();
    assert!(health.is_err(), "{who}: health answered {health:?}");
    for result in [
        put.err(),
        get.err(),
        delete.err(),
        stat.err(),
        scan.err(),
        health.err(),
    ] {
        // Refused by the transport (a closed connection, a TLS alert, or for a plaintext
        // client the alert's bytes where a frame should be), never by an answer of the node.
        assert!(
            matches!(result, Some(ClientError::Io(_) | ClientError::Protocol(_))),
            "{who}: refused at the transport, not by a node answer: {result:?}"
        );
    }
}

#[test]
fn a_storage_node_refuses_every_call_without_a_valid_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(Path::new(BINARY), &dir.path().join("pki"));
    let foreign = TestPki::create(Path::new(BINARY), &dir.path().join("foreign"));
    let address = free_address();
    let mut args: Vec<String> = vec![
        "storage".into(),
        "--listen".into(),
        address.to_string(),
        "--data".into(),
        dir.path().join("node").display().to_string(),
        "--cores".into(),
        "1".into(),
    ];
    args.extend(pki.role_args("storage-1", "storage"));
    let mut node = CairnProcess::start(Path::new(BINARY), &args, dir.path(), "storage");
    wait_for_listener(address, &mut node, Duration::from_secs(20));

    // A gateway identity of the cluster CA: everything works.
    let gateway = identity(&pki.issue("gateway-1", "gateway"));
    let mut client =
        StorageClient::connect_with_config(address, quick(Some(gateway.client_config()))).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while client.health().is_err() {
        assert!(std::time::Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in 0..3 {
        client.put(shard(n), &content(n, 10_000)).unwrap();
    }
    assert_eq!(client.get(shard(1), None).unwrap(), content(1, 10_000));
    assert_eq!(client.scan(None, 100).unwrap().entries.len(), 3);
    assert!(client.delete(shard(2)).unwrap());

    // No TLS at all.
    assert_every_call_refused(address, quick(None), "plaintext");
    // TLS with no client certificate.
    assert_every_call_refused(
        address,
        quick(Some(hand_made_config(&pki.ca(), None))),
        "no client certificate",
    );
    // A certificate of another CA (same role, same name).
    let foreign_gateway = foreign.issue("gateway-1", "gateway");
    assert_every_call_refused(
        address,
        quick(Some(hand_made_config(&pki.ca(), Some(&foreign_gateway)))),
        "foreign CA",
    );
    // The cluster CA, the wrong role: an edge never reads shards.
    let edge = identity(&pki.issue("edge-1", "edge"));
    assert_every_call_refused(address, quick(Some(edge.client_config())), "edge role");
    // A revoked worker: works until `cairn ca revoke`, refused from then on.
    let worker = identity(&pki.issue("worker-1", "worker"));
    let mut open_before_revocation =
        StorageClient::connect_with_config(address, quick(Some(worker.client_config()))).unwrap();
    open_before_revocation
        .health()
        .expect("the worker works before revocation");
    pki.revoke("worker-1");
    // The node re-reads the CRL file within CRL_RECHECK of a handshake or a request.
    std::thread::sleep(cairn_tls::CRL_RECHECK + Duration::from_millis(300));
    // The connection opened before the revocation is cut at its next call...
    let cut = open_before_revocation.get(shard(1), None);
    assert!(
        matches!(cut, Err(ClientError::Io(_) | ClientError::Protocol(_))),
        "a connection of a revoked certificate still served: {:?}",
        cut.map(|bytes| bytes.len())
    );
    // ...and every new one is refused at the handshake.
    assert_every_call_refused(address, quick(Some(worker.client_config())), "revoked");

    // Nothing a refused client sent was served: shard 900 was never written, shard 1 is intact.
    let mut client =
        StorageClient::connect_with_config(address, quick(Some(gateway.client_config()))).unwrap();
    assert!(matches!(
        client.get(shard(900), None),
        Err(ClientError::NotFound { .. })
    ));
    assert_eq!(client.get(shard(1), None).unwrap(), content(1, 10_000));
    assert_eq!(client.scan(None, 100).unwrap().entries.len(), 2);
    let log = node.log();
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(
        log.contains("closing a connection whose client certificate is no longer trusted"),
        "{log}"
    );
    let errors = node.error_lines();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

#[test]
fn a_client_refuses_a_node_of_another_ca_or_role() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(Path::new(BINARY), &dir.path().join("pki"));
    let foreign = TestPki::create(Path::new(BINARY), &dir.path().join("foreign"));
    let start = |pki: &TestPki, name: &str, role: &str| {
        let address = free_address();
        let mut args: Vec<String> = vec![
            "storage".into(),
            "--listen".into(),
            address.to_string(),
            "--data".into(),
            dir.path().join(name).display().to_string(),
            "--cores".into(),
            "1".into(),
        ];
        args.extend(pki.role_args(name, role));
        let mut process = CairnProcess::start(Path::new(BINARY), &args, dir.path(), name);
        wait_for_listener(address, &mut process, Duration::from_secs(20));
        (process, address)
    };
    let gateway = identity(&pki.issue("gateway-1", "gateway"));
    // A node of a foreign CA: the client refuses it during the handshake.
    let (_impostor, impostor_address) = start(&foreign, "impostor", "storage");
    let error =
        StorageClient::connect_with_config(impostor_address, quick(Some(gateway.client_config())))
            .unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error}");
    // A storage node refuses to run with an identity of another role.
    let address = free_address();
    let mut args: Vec<String> = vec![
        "storage".into(),
        "--listen".into(),
        address.to_string(),
        "--data".into(),
        dir.path().join("wrong-role").display().to_string(),
    ];
    args.extend(pki.role_args("meta-as-storage", "meta"));
    let output = std::process::Command::new(BINARY)
        .args(&args)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("meta identity"), "{stderr}");
}

#[test]
fn roles_refuse_to_start_without_an_identity_unless_told_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BINARY)
        .args(["storage", "--listen", &free_address().to_string(), "--data"])
        .arg(dir.path().join("node"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-dir"), "{stderr}");

    // The explicit switch runs plaintext and says so loudly.
    let address = free_address();
    let args: Vec<String> = vec![
        "storage".into(),
        "--listen".into(),
        address.to_string(),
        "--data".into(),
        dir.path().join("plain").display().to_string(),
        "--cores".into(),
        "1".into(),
        "--insecure-plaintext-internal".into(),
    ];
    let mut node = CairnProcess::start(Path::new(BINARY), &args, dir.path(), "plain");
    wait_for_listener(address, &mut node, Duration::from_secs(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match StorageClient::connect_with_config(address, quick(None))
            .and_then(|mut client| client.health())
        {
            Ok(_) => break,
            Err(error) => {
                assert!(std::time::Instant::now() < deadline, "{error}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    assert!(node.log().contains("INSECURE"), "{}", node.log());
}

/// Starts a single-replica `cairn meta` (2 partitions) with identity `meta-1` of `pki`,
/// listening on `listen` and known to itself as `address`, and waits for its listener.
fn start_meta(
    dir: &Path,
    pki: &TestPki,
    listen: SocketAddr,
    address: SocketAddr,
    extra: &[&str],
) -> CairnProcess {
    let mut args: Vec<String> = vec![
        "meta".into(),
        "--id".into(),
        "1".into(),
        "--listen".into(),
        listen.to_string(),
        "--data".into(),
        dir.join("meta").display().to_string(),
        "--peers".into(),
        format!("1={address}"),
        "--partitions".into(),
        "2".into(),
    ];
    args.extend(pki.role_args("meta-1", "meta"));
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let mut meta = CairnProcess::start(Path::new(BINARY), &args, dir, "meta");
    wait_for_listener(address, &mut meta, Duration::from_secs(20));
    meta
}

#[test]
fn a_meta_replica_serves_only_mutual_tls_clients_of_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(Path::new(BINARY), &dir.path().join("pki"));
    let foreign = TestPki::create(Path::new(BINARY), &dir.path().join("foreign"));
    let address = free_address();
    let meta = start_meta(dir.path(), &pki, address, address, &[]);
    let nodes = std::collections::BTreeMap::from([(1u64, address.to_string())]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client_with = |identity: Option<Arc<cairn_tls::Identity>>| {
        let mut config = cairn_raft::MetaClientConfig::new(nodes.clone(), 2);
        config.identity = identity;
        config.operation_timeout_ms = 3_000;
        cairn_raft::MetaClient::new(config)
    };
    let create = |client: &cairn_raft::MetaClient, bucket: &str| {
        runtime.block_on(client.write(cairn_meta_state::Command::CreateBucket(
            cairn_meta_state::CreateBucket {
                bucket: bucket.into(),
                owner: "test".into(),
                primary_region: "us-east-1".into(),
                ec_scheme: "isal-cauchy:4+2".into(),
                acl: cairn_meta_state::Acl::default(),
                now_ms: 1_700_000_000_000,
                attributes: Default::default(),
            },
        )))
    };
    // A gateway identity: the write commits.
    let gateway = client_with(Some(identity(&pki.issue("gateway-1", "gateway"))));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match create(&gateway, "allowed") {
            Ok(output) => {
                output.result.expect("bucket created");
                break;
            }
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{error}\n{}",
                    meta.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // Plaintext, a foreign CA's identity (whose client also distrusts the replica): no answer.
    assert!(create(&client_with(None), "plaintext").is_err());
    let foreign_identity = identity(&foreign.issue("gateway-1", "gateway"));
    assert!(create(&client_with(Some(foreign_identity)), "foreign").is_err());
    assert!(
        meta.log().contains("TLS handshake refused"),
        "{}",
        meta.log()
    );
    // The gateway is revoked: its open pooled connection is cut at the next call, and it cannot
    // connect again.
    pki.revoke("gateway-1");
    std::thread::sleep(cairn_tls::CRL_RECHECK + Duration::from_millis(300));
    assert!(create(&gateway, "after-revocation").is_err());
    let log = meta.log();
    assert!(
        log.contains("closing a connection whose client certificate is no longer trusted"),
        "{log}"
    );
}

/// `cairn dev` serves S3 over TLS with `--tls-cert/--tls-key` (boto3 trusting the CA bundle),
/// and runs its own internal traffic over mutual TLS under a CA it generated on first start.
#[test]
fn cairn_dev_serves_s3_over_tls_and_its_internal_traffic_is_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(Path::new(BINARY), &dir.path().join("pki"));
    let s3_identity = pki.issue("s3-endpoint", "gateway");
    let cert = s3_identity.join("cert.pem").display().to_string();
    let key = s3_identity.join("key.pem").display().to_string();
    let dev = cairn_tests::CairnDev::start_with(
        Path::new(BINARY),
        dir.path(),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    cairn_tests::run_python_script(
        "s3_tls.py",
        &[
            format!("https://127.0.0.1:{}", dev.endpoint.port()),
            pki.ca().join("ca.pem").display().to_string(),
            dev.access_key.clone(),
            dev.secret_key.clone(),
        ],
    );

    // `cairn admin` reaches the TLS-only gateway with the CA bundle, and refuses to go on without
    // one or with a bundle that does not hold the gateway's CA.
    let https_endpoint = format!("https://127.0.0.1:{}", dev.endpoint.port());
    let ca_bundle = pki.ca().join("ca.pem");
    let admin = |ca_bundle: Option<&Path>, args: &[&str]| {
        let mut command = std::process::Command::new(BINARY);
        command
            .args(["admin", "--endpoint", &https_endpoint])
            .args(args)
            .env("CAIRN_ROOT_ACCESS_KEY", &dev.access_key)
            .env("CAIRN_ROOT_SECRET_KEY", &dev.secret_key)
            .env_remove("AWS_CA_BUNDLE");
        if let Some(bundle) = ca_bundle {
            command.arg("--ca-bundle").arg(bundle);
        }
        let output = command.output().expect("run cairn admin");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = admin(Some(&ca_bundle), &["create-key", "--user", "tls-admin"]);
    assert!(ok, "create-key over TLS failed: {stderr}");
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON answer");
    assert_eq!(answer["user"], "tls-admin");
    let (ok, stdout, stderr) = admin(Some(&ca_bundle), &["list-keys", "--user", "tls-admin"]);
    assert!(ok, "list-keys over TLS failed: {stderr}");
    assert!(
        stdout.contains(answer["access_key_id"].as_str().unwrap()),
        "{stdout}"
    );
    let (ok, _, stderr) = admin(None, &["list-keys"]);
    assert!(!ok && stderr.contains("--ca-bundle"), "{stderr}");
    let other_ca = TestPki::create(Path::new(BINARY), &dir.path().join("other-pki"));
    let (ok, _, stderr) = admin(Some(&other_ca.ca().join("ca.pem")), &["list-keys"]);
    assert!(!ok && stderr.contains("TLS exchange"), "{stderr}");

    // The dev CA: key private, and its storage nodes refuse a client without a certificate.
    use std::os::unix::fs::PermissionsExt;
    let ca_key = dev.data_dir().join("tls/ca/ca-key.pem");
    let mode = std::fs::metadata(&ca_key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", ca_key.display());
    let node = SocketAddr::from(([127, 0, 0, 1], dev.storage_base_port()));
    assert_every_call_refused(node, quick(None), "plaintext to a cairn dev node");
    let worker = identity(&dev.worker_identity(Path::new(BINARY)));
    StorageClient::connect_with_config(node, quick(Some(worker.client_config())))
        .and_then(|mut client| client.health())
        .expect("a worker identity of the dev CA is served");
    dev.assert_no_errors_logged();
}

/// A read of the cluster layout (answered by any replica once the cluster has bootstrapped).
fn layout_request() -> cairn_raft::wire::Envelope {
    cairn_raft::wire::Envelope::request(
        cairn_raft::GroupId::PARTITION_MAP,
        cairn_raft::wire::MessageKind::ClientRead,
        cairn_meta_state::encode_record(&cairn_meta_state::Command::Read(
            cairn_meta_state::Query::GetLayout,
        )),
    )
}

/// Reads the cluster layout over one metadata connection, retrying while the replica is still
/// bootstrapping; any transport failure fails the read.
async fn read_layout_over<C: cairn_raft::network::RpcConnection>(connection: &mut C) {
    use cairn_meta_state::{Output, Response};
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = connection
            .call(layout_request())
            .await
            .expect("the exchange");
        if answer.status == cairn_raft::wire::Status::Ok {
            let output: Output = cairn_meta_state::decode_record(&answer.payload).unwrap();
            if let Ok(Response::Layout(Some(_))) = output.result {
                return;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no layout: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Raft and metadata RPC continue in plaintext after the mutual-TLS handshake on connections
/// that are loopback at both ends, and only there: reached over the host's other address, or
/// through a port forwarder on it (the replica sees a loopback peer, the client does not), the
/// connection stays encrypted; without a certificate nothing is served; `--encrypt-loopback`
/// keeps loopback encrypted. Both clients (tokio's, and the gateway executors' monoio one).
#[test]
fn meta_rpc_runs_in_plaintext_only_on_authenticated_loopback_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::create(Path::new(BINARY), &dir.path().join("pki"));
    let port = cairn_tests::free_port();
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));
    // Listening on every address, so the same replica is reached over loopback and eth0.
    let start = |extra: &[&str]| {
        let wildcard = SocketAddr::from(([0, 0, 0, 0], port));
        start_meta(dir.path(), &pki, wildcard, loopback, extra)
    };
    let tls = identity(&pki.issue("gateway-1", "gateway")).client_config();
    let tokio_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokio_connection = |address: SocketAddr, tls: Option<&Arc<rustls::ClientConfig>>| {
        tokio_runtime.block_on(async {
            let mut connection =
                cairn_raft::network::Connection::connect(&address.to_string(), tls).await?;
            if tls.is_some() {
                read_layout_over(&mut connection).await;
            }
            std::io::Result::Ok(connection)
        })
    };

    let meta = start(&[]);
    // Loopback: authenticated by mutual TLS, then plaintext; reads are answered.
    let connection = tokio_connection(loopback, Some(&tls)).unwrap();
    assert!(!connection.is_encrypted());
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime")
        .block_on(async {
            let mut connection = cairn_gateway::meta_transport::Connection::connect(
                &loopback.to_string(),
                Some(&tls),
            )
            .await
            .unwrap();
            assert!(!connection.is_encrypted());
            use cairn_raft::network::RpcConnection;
            let answer = connection.call(layout_request()).await.unwrap();
            assert_eq!(answer.status, cairn_raft::wire::Status::Ok, "{answer:?}");
        });
    // A client from before metadata connections switched offers only the storage protocol and
    // ignores the answer: the replica selects that protocol without switching, so the exchange
    // stays in TLS and is answered.
    tokio_runtime.block_on(async {
        let mut older = (*tls).clone();
        older.alpn_protocols = vec![cairn_tls::LOOPBACK_PLAINTEXT_ALPN.to_vec()];
        let stream = tokio::net::TcpStream::connect(loopback).await.unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(older))
            .connect(cairn_tls::Role::Meta.server_name(), stream)
            .await
            .unwrap();
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(cairn_tls::LOOPBACK_PLAINTEXT_ALPN)
        );
        cairn_raft::wire::write_envelope(&mut stream, &layout_request())
            .await
            .unwrap();
        let answer = cairn_raft::wire::read_envelope(&mut stream)
            .await
            .unwrap()
            .expect("an answer");
        assert_eq!(answer.status, cairn_raft::wire::Status::Ok, "{answer:?}");
    });
    // The switch never skips authentication: without a certificate, no answer.
    let refused = tokio_runtime.block_on(async {
        let mut connection =
            cairn_raft::network::Connection::connect(&loopback.to_string(), None).await?;
        let request = cairn_raft::wire::Envelope::request(
            cairn_raft::GroupId::PARTITION_MAP,
            cairn_raft::wire::MessageKind::ClientRead,
            Vec::new(),
        );
        connection
            .call(request)
            .await
            .map_err(|error| std::io::Error::other(error.to_string()))
    });
    assert!(refused.is_err(), "{refused:?}");
    // Any other address, directly or through a forwarder on this host: encrypted.
    match cairn_tests::non_loopback_address() {
        Some(ip) => {
            let direct = tokio_connection(SocketAddr::new(ip, port), Some(&tls)).unwrap();
            assert!(direct.is_encrypted(), "via {ip}");
            let forwarder = cairn_tests::forward(SocketAddr::new(ip, 0), loopback);
            let forwarded = tokio_connection(forwarder, Some(&tls)).unwrap();
            assert!(forwarded.is_encrypted(), "via the forwarder");
        }
        None => eprintln!("no non-loopback address on this machine: that half is not run"),
    }
    drop(meta);

    // --encrypt-loopback keeps loopback connections encrypted.
    let _meta = start(&["--encrypt-loopback"]);
    let connection = tokio_connection(loopback, Some(&tls)).unwrap();
    assert!(connection.is_encrypted());
}
