//! Black-box tests of `cairn edge` in front of `cairn dev` (real processes, TLS with a dev CA from
//! `cairn edge dev-cert`), driven by boto3 (tests/python/edge_check.py) and the AWS CLI.
//!
//! The edge loads the routing module built by `edge-wasm/build-wasm.sh`
//! (edge-wasm/build/cairn_edge_routing.wasm, or `CAIRN_EDGE_WASM`); `.ci/run` builds it first.
//! Without it the tests fail and say how to build it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_tests::{CairnDev, CairnProcess, DevRegions, free_address, http_get, wait_for_listener};

mod tls_client;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// What the edge logs at WARN on purpose in these tests never reaches ERROR; nothing else may.
fn routing_module_path() -> PathBuf {
    let path = std::env::var_os("CAIRN_EDGE_WASM").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("edge-wasm/build/cairn_edge_routing.wasm"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "the routing module {} is missing: build it with edge-wasm/build-wasm.sh (CI's .ci/run \
         does), or point CAIRN_EDGE_WASM at a built module",
        path.display()
    );
    path
}

struct Edge {
    process: CairnProcess,
    endpoint: SocketAddr,
    admin: SocketAddr,
    ca: PathBuf,
}

/// A `cairn dev` whose gateway serves edges on a mutual-TLS edge listener (`--edge-listen`),
/// and that listener's address.
fn dev_for_edge(dir: &Path, extra_args: &[&str]) -> (CairnDev, SocketAddr) {
    let edge_listener = free_address();
    let listen = edge_listener.to_string();
    let mut args = vec!["--edge-listen", listen.as_str()];
    args.extend_from_slice(extra_args);
    let dev = CairnDev::start_with(Path::new(BINARY), dir, &args);
    (dev, edge_listener)
}

impl Edge {
    /// An edge in front of `dev`'s region, reaching its gateway at `gateway` (the dev's edge
    /// listener) with an edge identity of the dev's CA.
    fn start(dev: &CairnDev, gateway: SocketAddr, dir: &Path, extra_args: &[&str]) -> Edge {
        let certs = dir.join("certs");
        let output = std::process::Command::new(BINARY)
            .args(["edge", "dev-cert", "--out"])
            .arg(&certs)
            .output()
            .expect("run cairn edge dev-cert");
        assert!(
            output.status.success(),
            "dev-cert: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let endpoint = free_address();
        let admin = free_address();
        let mut args: Vec<String> = vec![
            "edge".into(),
            "--listen".into(),
            endpoint.to_string(),
            "--admin-listen".into(),
            admin.to_string(),
            "--tls-cert".into(),
            certs.join("server.pem").display().to_string(),
            "--tls-key".into(),
            certs.join("server-key.pem").display().to_string(),
            "--module".into(),
            routing_module_path().display().to_string(),
            "--region".into(),
            format!("us-east-1={gateway}"),
            "--meta".into(),
            format!("1={}", dev.meta),
            "--partitions".into(),
            "4".into(),
            // Access-key secrets are stored sealed by the cluster master key.
            "--master-key-file".into(),
            dev.data_dir().join("master-key").display().to_string(),
            // The edge reads the bucket service and keys, and reaches the gateways, over mutual
            // TLS, as an edge identity of the dev's CA.
            "--tls-dir".into(),
            dev.pki(Path::new(BINARY))
                .issue("test-edge", "edge")
                .display()
                .to_string(),
        ];
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        let mut process =
            CairnProcess::start(Path::new(BINARY), &args, &dir.join("logs"), "cairn-edge");
        wait_for_listener(endpoint, &mut process, Duration::from_secs(60));
        wait_for_listener(admin, &mut process, Duration::from_secs(60));
        Edge {
            process,
            endpoint,
            admin,
            ca: certs.join("ca.pem"),
        }
    }

    fn url(&self) -> String {
        // The dev certificate covers localhost and 127.0.0.1.
        format!("https://localhost:{}", self.endpoint.port())
    }

    fn metric(&self, series: &str) -> f64 {
        let (status, body) = http_get(self.admin, "/metrics");
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no series {series}"))
    }

    /// `POST /module/reload?path=P` on the admin listener; the new generation.
    fn reload(&self, module: &Path) -> u64 {
        let (status, body) = cairn_tests::http_request(
            self.admin,
            "POST",
            &format!("/module/reload?path={}", module.display()),
        );
        let body = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "reload {}: {body}", module.display());
        body.trim()
            .strip_prefix("generation ")
            .and_then(|generation| generation.parse().ok())
            .expect("generation")
    }

    fn assert_no_errors_logged(&self) {
        let errors = self.process.error_lines();
        assert!(
            errors.is_empty(),
            "edge ERROR lines:\n{}",
            errors.join("\n")
        );
    }
}

fn edge_check(mode: &str, edge: &Edge, dev: &CairnDev, extra: &[String]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/edge_check.py");
    std::process::Command::new("python3")
        .arg(script)
        .arg(mode)
        .arg(edge.url())
        .arg(dev.url())
        .arg(&edge.ca)
        .arg(&dev.access_key)
        .arg(&dev.secret_key)
        .args(extra)
        .output()
        .expect("run python3 (pip install -r .ci/requirements.txt)")
}

fn assert_success(what: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The AWS CLI through the edge, trusting the dev CA through `AWS_CA_BUNDLE`.
fn aws(edge: &Edge, dev: &CairnDev, args: &[&str]) -> String {
    let output = aws_output(edge, dev, args);
    assert_success(&format!("aws {args:?}"), &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The AWS CLI through the edge with the dev's root keys, one attempt per call (no retries).
fn aws_output(edge: &Edge, dev: &CairnDev, args: &[&str]) -> std::process::Output {
    aws_output_with_keys(edge, &dev.access_key, &dev.secret_key, args)
}

#[test]
fn boto3_and_aws_cli_through_the_edge_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = dev_for_edge(dir.path(), &[]);
    let edge = Edge::start(&dev, gateway, dir.path(), &[]);
    assert_success("boto3 clients", &edge_check("clients", &edge, &dev, &[]));

    let upload = dir.path().join("upload.bin");
    let content = cairn_tests::content(7, 12 * 1024 * 1024 + 17);
    std::fs::write(&upload, &content).unwrap();
    aws(&edge, &dev, &["s3", "mb", "s3://edge-cli"]);
    aws(
        &edge,
        &dev,
        &[
            "s3",
            "cp",
            upload.to_str().unwrap(),
            "s3://edge-cli/upload.bin",
        ],
    );
    let download = dir.path().join("download.bin");
    aws(
        &edge,
        &dev,
        &[
            "s3",
            "cp",
            "s3://edge-cli/upload.bin",
            download.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read(&download).unwrap() == content,
        "AWS CLI round trip"
    );
    let listing = aws(&edge, &dev, &["s3", "ls", "s3://edge-cli/"]);
    assert!(listing.contains("upload.bin"), "{listing}");
    // Without the CA bundle the CLI refuses the dev certificate.
    let untrusted = std::process::Command::new("python3")
        .args(["-m", "awscli", "--endpoint-url"])
        .arg(edge.url())
        .args(["s3", "ls"])
        .env("AWS_ACCESS_KEY_ID", &dev.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &dev.secret_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    assert!(
        !untrusted.status.success(),
        "untrusted certificate accepted"
    );

    assert!(edge.metric("cairn_edge_requests_total") > 0.0);
    assert_eq!(edge.metric("cairn_edge_routing_failures_total"), 0.0);
    edge.assert_no_errors_logged();
    dev.assert_no_errors_logged();
}

/// Hits, 304 revalidation, and the staleness bound after overwrites and deletes made behind the
/// edge's back (at the gateway) and through it (never stale). Objects up to 2 MiB are cached.
#[test]
fn hot_object_cache_hits_revalidates_and_is_never_stale_past_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = dev_for_edge(dir.path(), &[]);
    let ttl_ms = 1_500;
    let edge = Edge::start(
        &dev,
        gateway,
        dir.path(),
        &[
            "--cache-ttl-ms",
            &ttl_ms.to_string(),
            "--cache-max-object-bytes",
            &(2 << 20).to_string(),
        ],
    );
    let output = edge_check("cache", &edge, &dev, &[ttl_ms.to_string()]);
    assert_success("cache", &output);
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(edge.metric("cairn_edge_cache_requests_total{result=\"hit\"}") >= 4.0);
    assert!(edge.metric("cairn_edge_cache_requests_total{result=\"revalidated\"}") >= 1.0);
    edge.assert_no_errors_logged();
    dev.assert_no_errors_logged();
}

/// The routing module in a WAT text: exports per ABI version 1; `cairn_route` forwards every
/// request to region us-east-1 (a fixed decision record at offset 16, 36 bytes), except that a
/// request record longer than 400 bytes (a long key) runs `on_long_record` first.
fn failing_module(on_long_record: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (func (export "cairn_abi_version") (result i32) i32.const 1)
  (func (export "cairn_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "cairn_route") (param i32 i32) (result i64)
    (if (i32.gt_u (local.get 1) (i32.const 400)) (then {on_long_record}))
    i64.const 0x1000000024)
  (data (i32.const 16) "\01\00\00\00\00\09\00\00\00us-east-1\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"))"#
    )
}

#[test]
fn routing_module_hot_swap_under_load_and_looping_or_trapping_modules() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = dev_for_edge(dir.path(), &[]);
    let edge = Edge::start(&dev, gateway, dir.path(), &[]);
    // Two copies of the real module: swapping between them is a real replacement each time.
    let module_a = dir.path().join("routing-a.wasm");
    let module_b = dir.path().join("routing-b.wasm");
    std::fs::copy(routing_module_path(), &module_a).unwrap();
    std::fs::copy(routing_module_path(), &module_b).unwrap();

    let result_file = dir.path().join("load.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/edge_check.py");
    let mut load = std::process::Command::new("python3")
        .arg(&script)
        .args(["load", &edge.url(), &dev.url()])
        .arg(&edge.ca)
        .args([&dev.access_key, &dev.secret_key])
        .args(["12", result_file.to_str().unwrap()])
        .spawn()
        .expect("run python3");
    let mut generation = 1;
    let mut swaps = 0;
    while load.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(300));
        let module = if swaps % 2 == 0 { &module_a } else { &module_b };
        let new_generation = edge.reload(module);
        assert!(new_generation > generation);
        generation = new_generation;
        swaps += 1;
    }
    assert!(load.wait().unwrap().success(), "load script failed");
    let result = std::fs::read_to_string(&result_file).unwrap();
    assert!(
        result.contains("\"failed\": []"),
        "requests failed during hot swaps: {result}"
    );
    assert!(!result.contains("\"ok\": 0,"), "no requests ran: {result}");
    assert!(swaps >= 5, "only {swaps} swaps during the load");
    // Server-side too (a client could hide a failure behind a retry): no routing failure, no
    // failed gateway request during the swaps.
    assert_eq!(edge.metric("cairn_edge_routing_failures_total"), 0.0);
    assert_eq!(edge.metric("cairn_edge_upstream_errors_total"), 0.0);
    let (_, module_info) = http_get(edge.admin, "/module");
    assert!(String::from_utf8_lossy(&module_info).contains(&format!("generation {generation}")));

    // A module that loops on long records: only those requests fail (fuel), the rest succeed.
    let looping = dir.path().join("loop.wat");
    std::fs::write(&looping, failing_module("(loop $forever (br $forever))")).unwrap();
    edge.reload(&looping);
    assert_success(
        "looping module",
        &edge_check("routing_failure", &edge, &dev, &[]),
    );
    let trapping = dir.path().join("trap.wat");
    std::fs::write(&trapping, failing_module("unreachable")).unwrap();
    edge.reload(&trapping);
    assert_success(
        "trapping module",
        &edge_check("routing_failure", &edge, &dev, &[]),
    );
    // Six failing requests (botocore may send a 500 twice, so at least six failures).
    assert!(edge.metric("cairn_edge_routing_failures_total") >= 6.0);
    // A module with the wrong ABI version is refused and the running one stays.
    let wrong = dir.path().join("v2.wat");
    std::fs::write(
        &wrong,
        failing_module("nop").replace("(result i32) i32.const 1)", "(result i32) i32.const 2)"),
    )
    .unwrap();
    let (status, body) = cairn_tests::http_request(
        edge.admin,
        "POST",
        &format!("/module/reload?path={}", wrong.display()),
    );
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    edge.reload(&module_a);
    assert_success(
        "real module again",
        &edge_check("clients", &edge, &dev, &[]),
    );
    edge.assert_no_errors_logged();
    dev.assert_no_errors_logged();
}

/// Two regions, each a `cairn dev` of its own: us-east-1 holds the global bucket service and
/// us-west-2 sends bucket operations there (`--global-meta`), with one edge in front of both.
struct TwoRegions {
    east: CairnDev,
    west: CairnDev,
    edge: Edge,
}

impl TwoRegions {
    fn start(dir: &Path) -> TwoRegions {
        // Each region's gateway serves the edge on a mutual-TLS edge listener.
        let (east_gateway, west_gateway) = (free_address(), free_address());
        let (east_listen, west_listen) = (east_gateway.to_string(), west_gateway.to_string());
        let DevRegions { east, west, .. } = DevRegions::start(
            Path::new(BINARY),
            dir,
            &["--edge-listen", &east_listen],
            &["--edge-listen", &west_listen],
        );
        let west_region = format!("us-west-2={west_gateway}");
        let edge = Edge::start(&east, east_gateway, dir, &["--region", &west_region]);
        TwoRegions { east, west, edge }
    }

    fn check(&self, mode: &str) -> std::process::Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/regions_check.py");
        std::process::Command::new("python3")
            .arg(script)
            .arg(mode)
            .arg(self.edge.url())
            .arg(self.east.url())
            .arg(self.west.url())
            .arg(&self.edge.ca)
            .arg(&self.east.access_key)
            .arg(&self.east.secret_key)
            .output()
            .expect("run python3 (pip install -r .ci/requirements.txt)")
    }
}

fn requests(dev: &CairnDev, operation: &str) -> f64 {
    dev.metric(&format!(
        "cairn_gateway_requests_total{{operation=\"{operation}\",status_class=\"2xx\"}}"
    ))
}

/// Buckets of both regions through one edge: each request reaches its bucket's region (seen in
/// each region's gateway metrics, and by stopping one region), names are global, and the
/// LocationConstraint / PermanentRedirect rules hold.
#[test]
fn two_regions_behind_one_edge_route_each_bucket_to_its_region() {
    let dir = tempfile::tempdir().unwrap();
    let mut regions = TwoRegions::start(dir.path());
    assert_success("routing", &regions.check("routing"));
    // Three PUTs per bucket went through the edge, and each region stored only its own
    // bucket's (the script's direct GETs read them back from the owning region).
    assert_eq!(requests(&regions.east, "PutObject"), 3.0);
    assert_eq!(requests(&regions.west, "PutObject"), 3.0);
    assert!(requests(&regions.east, "GetObject") >= 3.0);
    assert!(requests(&regions.west, "GetObject") >= 4.0);

    regions.west.process.kill_9();
    assert_success("east only", &regions.check("east_only"));
    assert_eq!(requests(&regions.east, "PutObject"), 4.0);
    // Answers from west's gateway about east's bucket are the expected kind only.
    regions.edge.assert_no_errors_logged();
    regions.east.assert_no_errors_logged();
}

/// An edge whose bucket table says "east" for a bucket deleted there and recreated in west
/// follows it on the 301 east answers, and a bucket deleted everywhere is NoSuchBucket.
#[test]
fn stale_edge_bucket_table_follows_a_bucket_recreated_in_the_other_region() {
    let dir = tempfile::tempdir().unwrap();
    let regions = TwoRegions::start(dir.path());
    let lookups_before = regions.edge.metric("cairn_edge_bucket_lookups_total");
    assert_success("moved", &regions.check("moved"));
    assert!(regions.edge.metric("cairn_edge_bucket_moved_total") >= 2.0);
    assert!(regions.edge.metric("cairn_edge_bucket_lookups_total") > lookups_before + 1.0);
    // The object served came from west (the east copy was deleted before; nothing stale).
    assert!(requests(&regions.west, "GetObject") >= 1.0);
    regions.edge.assert_no_errors_logged();
    regions.east.assert_no_errors_logged();
    regions.west.assert_no_errors_logged();
}

/// The edge → gateway hop is mutual TLS: the gateway's edge listener serves edge identities of
/// the cluster CA only, and an edge whose certificate is revoked loses its open (pooled)
/// connections at their next request and cannot open new ones.
#[test]
fn gateway_edge_listener_serves_only_edges_and_cuts_a_revoked_one() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = dev_for_edge(dir.path(), &[]);
    // One executor: the request after the revocation reuses the pooled connection. Access keys
    // are cached for 5 minutes: after the revocation the edge must answer from its caches
    // without the metadata service (which refuses the revoked edge too) however slowly the
    // AWS CLI runs on a loaded machine.
    let edge = Edge::start(
        &dev,
        gateway,
        dir.path(),
        &["--executors", "1", "--access-key-cache-ttl-ms", "300000"],
    );
    let pki = dev.pki(Path::new(BINARY));
    aws(&edge, &dev, &["s3", "mb", "s3://edge-mtls"]);
    let list_through_edge = || {
        aws_output(
            &edge,
            &dev,
            &["s3api", "list-objects-v2", "--bucket", "edge-mtls"],
        )
    };
    assert_success("list through the edge", &list_through_edge());

    // The edge listener itself: plaintext, TLS without a client certificate, a certificate of
    // another role or of another CA get nothing; another edge identity is served.
    let mut plain = std::net::TcpStream::connect(gateway).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::io::Write::write_all(&mut plain, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut answer);
    assert_eq!(
        tls_client::status_of(&answer),
        None,
        "plaintext was answered"
    );
    let ca = pki.ca();
    let direct_with = |presented: Option<&Path>, path: &str, headers: &[(&str, &str)]| {
        tls_client::https_status(
            gateway,
            tls_client::hand_made_config(&ca, presented),
            "gateway.role.cairn",
            path,
            headers,
        )
    };
    let direct = |presented: Option<&Path>| direct_with(presented, "/edge-mtls/key", &[]);
    assert_eq!(direct(None), None, "no client certificate");
    assert_eq!(
        direct(Some(&pki.issue("gateway-other", "gateway"))),
        None,
        "a gateway identity"
    );
    let foreign = cairn_tests::TestPki::create(Path::new(BINARY), &dir.path().join("foreign"));
    assert_eq!(
        direct(Some(&foreign.issue("test-edge", "edge"))),
        None,
        "an edge of another CA"
    );
    assert_eq!(direct(Some(&pki.issue("edge-2", "edge"))), Some(403));

    // The client address an edge names (`aws:SourceIp`) is trusted on the edge listener only:
    // a policy lets anonymous readers from 192.0.2.7 alone read one object.
    let object = dir.path().join("ip-only.txt");
    std::fs::write(&object, b"for 192.0.2.7").unwrap();
    aws(
        &edge,
        &dev,
        &[
            "s3",
            "cp",
            object.to_str().unwrap(),
            "s3://edge-mtls/ip-only",
        ],
    );
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
        "Action":"s3:GetObject","Resource":"arn:aws:s3:::edge-mtls/ip-only",
        "Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.7/32"}}}]}"#;
    aws(
        &edge,
        &dev,
        &[
            "s3api",
            "put-bucket-policy",
            "--bucket",
            "edge-mtls",
            "--policy",
            policy,
        ],
    );
    let named = [(cairn_gateway::EDGE_CLIENT_IP_HEADER, "192.0.2.7")];
    let edge_2 = pki.issue("edge-2", "edge");
    assert_eq!(
        direct_with(Some(&edge_2), "/edge-mtls/ip-only", &named),
        Some(200)
    );
    assert_eq!(
        direct_with(Some(&edge_2), "/edge-mtls/ip-only", &[]),
        Some(403)
    );
    // An edge on the gateway's host (loopback at both ends) that offers the switch continues
    // in plaintext once mutual TLS has authenticated it, and is served the same; one without
    // a client certificate is still refused, and a client that does not offer it stays in TLS.
    let offering = |presented: Option<&Path>| {
        let mut config = (*tls_client::hand_made_config(&ca, presented)).clone();
        config.alpn_protocols = vec![cairn_tls::LOOPBACK_PLAINTEXT_ALPN.to_vec()];
        std::sync::Arc::new(config)
    };
    let switching = |presented: Option<&Path>, headers: &[(&str, &str)]| {
        tls_client::https_status_switching(
            gateway,
            offering(presented),
            "gateway.role.cairn",
            "/edge-mtls/ip-only",
            headers,
        )
    };
    assert!(gateway.ip().is_loopback());
    assert_eq!(switching(Some(&edge_2), &named), Some((true, Some(200))));
    assert_eq!(switching(Some(&edge_2), &[]), Some((true, Some(403))));
    assert_eq!(
        switching(None, &named).and_then(|(_, status)| status),
        None,
        "no client certificate"
    );
    let encrypted = tls_client::https_status_switching(
        gateway,
        tls_client::hand_made_config(&ca, Some(&edge_2)),
        "gateway.role.cairn",
        "/edge-mtls/ip-only",
        &named,
    );
    assert_eq!(encrypted, Some((false, Some(200))));
    // On the public S3 port the header is the client's own claim, and ignored.
    assert_eq!(
        tls_client::http_status(dev.endpoint, "/edge-mtls/ip-only", &named),
        Some(403)
    );

    // Revoke the running edge's identity: its pooled connection is cut at the next request.
    // (Listed just before, so the edge's access-key and bucket caches answer without the
    // metadata service, which would refuse the revoked edge as well.)
    assert_success("list through the edge", &list_through_edge());
    pki.revoke("test-edge");
    std::thread::sleep(cairn_tls::CRL_RECHECK + Duration::from_millis(300));
    for attempt in ["the pooled connection", "a new connection"] {
        let refused = list_through_edge();
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            !refused.status.success() && stderr.contains("(ServiceUnavailable)"),
            "{attempt}: {stderr}"
        );
    }
    let log = dev.process.log();
    assert!(
        log.contains("closing an edge connection whose certificate is no longer trusted"),
        "{log}"
    );
    assert!(
        log.contains("edge listener: TLS handshake refused"),
        "{log}"
    );
    // The other edge identity is still served.
    assert_eq!(direct(Some(&pki.issue("edge-2", "edge"))), Some(403));
    dev.assert_no_errors_logged();
}

/// `aws ARGS` through the edge signed with `access_key`/`secret_key` (one attempt).
fn aws_output_with_keys(
    edge: &Edge,
    access_key: &str,
    secret_key: &str,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new("python3")
        .args(["-m", "awscli", "--endpoint-url"])
        .arg(edge.url())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CA_BUNDLE", &edge.ca)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("run aws (pip install awscli)")
}

/// Master-key rotation with an edge running (`--master-key-file` is the dev's key file): a user
/// created after `cairn master-key rotate` (its secret sealed by the new key) signs through the
/// edge without an edge restart, the root (sealed by the old key) too, and both still do after
/// `cairn admin master-key rewrap`.
#[test]
fn the_edge_follows_a_master_key_rotation_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, gateway) = dev_for_edge(dir.path(), &[]);
    let edge = Edge::start(&dev, gateway, dir.path(), &[]);
    aws(&edge, &dev, &["s3", "mb", "s3://rotation"]);
    let key_file = dev.data_dir().join("master-key");
    let rotated = cairn_tests::run_cairn(
        Path::new(BINARY),
        &["master-key", "rotate", "--file", key_file.to_str().unwrap()],
    );
    let rotated: serde_json::Value = serde_json::from_str(rotated.trim()).unwrap();
    let show = || {
        let (ok, stdout, stderr) = dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["master-key", "show"],
        );
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while show()["active_key_id"] != rotated["active_key_id"] {
        assert!(
            std::time::Instant::now() < deadline,
            "gateway kept the old key file"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The edge looks at the file at most once a second, at its next request after that.
    std::thread::sleep(Duration::from_millis(1200));
    let (user_key, user_secret) = dev.create_user(Path::new(BINARY), "after-rotation");
    for round in ["rotated", "rewrapped"] {
        for (access_key, secret_key) in [
            (user_key.as_str(), user_secret.as_str()),
            (dev.access_key.as_str(), dev.secret_key.as_str()),
        ] {
            let output = aws_output_with_keys(&edge, access_key, secret_key, &["s3", "ls"]);
            assert_success(&format!("{round}: {access_key} through the edge"), &output);
        }
        if round == "rotated" {
            let (ok, stdout, stderr) = dev.admin(
                Path::new(BINARY),
                &dev.access_key,
                &dev.secret_key,
                &["master-key", "rewrap"],
            );
            assert!(ok, "{stderr}");
            let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(report["access_keys"]["rewrapped"], 1, "{report}");
            assert_eq!(report["access_keys"]["already_active"], 1, "{report}");
        }
    }
    let listing = aws(&edge, &dev, &["s3", "ls"]);
    assert!(listing.contains("rotation"), "{listing}");
    assert!(
        edge.process.log().contains("master key file re-read"),
        "the edge never re-read the key file"
    );
    edge.assert_no_errors_logged();
    dev.assert_no_errors_logged();
}
