//! Black-box tests of cluster mode: every role a separate `cairn` process configured from one
//! cluster file (3 meta replicas, 9 storage nodes in 3 AZs, 2 gateways, EC 6+3, each process on
//! its own 127.0.x.y address), driven by boto3 (tests/python/cluster_load.py).
//!
//! - The metadata replica leading the most Raft groups (found through the replicas' admin
//!   `/metrics`) is killed with SIGKILL while two clients upload through both gateways; every
//!   upload that got 200 reads back byte-exact afterwards.
//! - Two storage nodes (in two different AZs) are killed with SIGKILL; every object still reads
//!   back exactly (decoded around the missing shards), and new uploads still commit with the
//!   seven nodes left (k + 1 or more shards, as ARCHITECTURE.md allows).
//! - `cairn cluster init` + `cairn cluster up` (the documented commands) start a working cluster
//!   and SIGTERM stops every process it started; its gateway, given `tls_cert`, `tls_key` and
//!   `edge_address` in the file, serves S3 over TLS only and edge identities on its edge listener.

#[allow(dead_code)]
#[path = "tls_client.rs"]
mod tls_client;

use cairn_tests::{
    CairnProcess, consecutive_free_ports, free_port, http_get, wait_for_listener,
    wait_until_port_closed,
};

/// The status of a plain-HTTP `GET /` to `address`, `None` when no HTTP answer comes.
fn http_get_status(address: SocketAddr) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    std::io::Write::write_all(&mut stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const ACCESS_KEY: &str = "CAIRNCLUSTERTEST0001";
const SECRET_KEY: &str = "cluster-test-secret-key-0123456789abcdef";

/// The two tests each run a dozen processes on a 2-core machine: one at a time.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Role {
    id: u64,
    address: SocketAddr,
    admin: Option<SocketAddr>,
    process: Option<CairnProcess>,
}

struct Cluster {
    dir: tempfile::TempDir,
    file: PathBuf,
    meta: Vec<Role>,
    storage: Vec<Role>,
    gateways: Vec<Role>,
    worker: Role,
}

fn address(third: u8, fourth: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, third, fourth], free_port()))
}

impl Cluster {
    fn start() -> Cluster {
        // Below the build directory's file system (O_DIRECT needs ext4/xfs, not tmpfs).
        let dir = tempfile::Builder::new()
            .prefix("cairn-cluster-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let role = |third: u8, id: u64, admin: bool| Role {
            id,
            address: address(third, id as u8),
            admin: admin.then(|| address(third, id as u8)),
            process: None,
        };
        let meta: Vec<Role> = (1..=3).map(|id| role(1, id, true)).collect();
        let storage: Vec<Role> = (1..=9).map(|id| role(2, id, false)).collect();
        let gateways: Vec<Role> = (1..=2).map(|id| role(3, id, true)).collect();
        let worker = role(4, 1, true);
        let mut text = String::from(
            "partitions = 4\nec_scheme = \"isal-cauchy:6+3\"\ndata_root = \"state\"\ntls_dir = \"tls\"\n\n",
        );
        for role in &meta {
            text += &format!(
                "[[meta]]\nid = {}\naddress = \"{}\"\naz = \"az{}\"\nadmin = \"{}\"\n\n",
                role.id,
                role.address,
                role.id,
                role.admin.unwrap()
            );
        }
        for role in &storage {
            text += &format!(
                "[[storage]]\nid = {}\naddress = \"{}\"\naz = \"az{}\"\ncores = 1\ncache_mib = 8\nsegment_mib = 32\n\n",
                role.id,
                role.address,
                (role.id - 1) % 3 + 1
            );
        }
        for role in &gateways {
            text += &format!(
                "[[gateway]]\nid = {}\naddress = \"{}\"\nadmin = \"{}\"\nexecutors = 1\n\n",
                role.id,
                role.address,
                role.admin.unwrap()
            );
        }
        text += &format!(
            "[[worker]]\nid = 1\nadmin = \"{}\"\n",
            worker.admin.unwrap()
        );
        let file = dir.path().join("cluster.toml");
        std::fs::write(&file, text).unwrap();
        // Gateways read the cluster master key (SSE-S3) from `<data_root>/master-key`, which
        // `cairn cluster init` would have written.
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(
            dir.path().join("state/master-key"),
            format!("{}\n", "5a".repeat(32)),
        )
        .unwrap();
        // Internal mutual TLS: the cluster CA in tls/ca and one identity per process in
        // tls/<role>-<id>, as `cairn cluster init` lays them out.
        let pki = cairn_tests::TestPki::create(Path::new(BINARY), &dir.path().join("tls"));
        for (kind, roles) in [
            ("meta", &meta),
            ("storage", &storage),
            ("gateway", &gateways),
        ] {
            for role in roles {
                pki.issue(&format!("{kind}-{}", role.id), kind);
            }
        }
        pki.issue("worker-1", "worker");
        let mut cluster = Cluster {
            dir,
            file,
            meta,
            storage,
            gateways,
            worker,
        };
        for index in 0..3 {
            cluster.start_role("meta", index);
        }
        for index in 0..9 {
            cluster.start_role("storage", index);
        }
        for index in 0..2 {
            cluster.start_role("gateway", index);
        }
        cluster.start_role("worker", 0);
        cluster
    }

    fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    fn start_role(&mut self, kind: &str, index: usize) {
        let file = self.file.display().to_string();
        let logs = self.logs();
        let role = match kind {
            "meta" => &mut self.meta[index],
            "storage" => &mut self.storage[index],
            "worker" => &mut self.worker,
            _ => &mut self.gateways[index],
        };
        let mut args = vec![
            kind.to_owned(),
            "--cluster".to_owned(),
            file,
            "--id".to_owned(),
            role.id.to_string(),
        ];
        // Fast liveness: heartbeats every second, DOWN after four silent seconds.
        match kind {
            "storage" => args.extend(["--node-heartbeat-secs".to_owned(), "1".to_owned()]),
            "worker" => args.extend([
                "--node-heartbeat-secs".to_owned(),
                "1".to_owned(),
                "--node-down-after-secs".to_owned(),
                "4".to_owned(),
            ]),
            _ => {}
        }
        let mut process = CairnProcess::start_with_env(
            Path::new(BINARY),
            &args,
            &logs,
            &format!("{kind}-{}", role.id),
            &[
                ("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY),
                ("CAIRN_ROOT_SECRET_KEY", SECRET_KEY),
            ],
        );
        // A worker listens only on its admin address.
        let listener = if kind == "worker" {
            role.admin.unwrap()
        } else {
            role.address
        };
        wait_for_listener(listener, &mut process, Duration::from_secs(60));
        role.process = Some(process);
    }

    fn endpoint(&self, gateway: usize) -> String {
        format!("http://{}", self.gateways[gateway].address)
    }

    fn load(&self, gateway: usize, args: &[&str]) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cluster_load.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(self.endpoint(gateway))
            .arg(ACCESS_KEY)
            .arg(SECRET_KEY)
            .args(args);
        command
    }

    fn run_load(&self, gateway: usize, args: &[&str]) -> String {
        let output = self
            .load(gateway, args)
            .output()
            .expect("run python3 (pip install boto3)");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "cluster_load {args:?} through gateway {gateway} failed:\n{stdout}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_tails()
        );
        stdout
    }

    fn log_tails(&self) -> String {
        let mut text = String::new();
        for role in self
            .meta
            .iter()
            .chain(&self.storage)
            .chain(&self.gateways)
            .chain([&self.worker])
        {
            if let Some(process) = &role.process {
                let log = process.log();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(8)..];
                text += &format!("--- {}\n{}\n", process.description, tail.join("\n"));
            }
        }
        text
    }

    /// The meta replica (index) that leads the most Raft groups, from the admin `/metrics`.
    fn busiest_meta_leader(&self) -> (usize, usize) {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, role)| role.process.is_some())
            .map(|(index, role)| {
                let metrics = get_ok(role.admin.unwrap(), "/metrics");
                let led = metrics
                    .lines()
                    .filter(|line| {
                        line.starts_with("cairn_meta_group_is_leader{") && line.ends_with(" 1")
                    })
                    .count();
                (index, led)
            })
            .max_by_key(|&(_, led)| led)
            .unwrap()
    }
}

/// The body of a `GET` that must answer 200.
fn get_ok(address: SocketAddr, path: &str) -> String {
    let (status, body) = http_get(address, path);
    assert_eq!(status, 200, "GET {path} on {address}");
    String::from_utf8(body).expect("UTF-8")
}

/// One unlabelled sample of a Prometheus endpoint.
fn metric(address: SocketAddr, name: &str) -> f64 {
    let text = get_ok(address, "/metrics");
    text.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            (series == name).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

fn wait_for_lines(path: &Path, count: usize, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while line_count(path) < count {
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {count} uploads acknowledged",
            line_count(path)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn finish(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            assert!(status.success(), "{what} failed:\n{stdout}\n{stderr}");
            return stdout;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not stop");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn uploads_survive_a_killed_meta_leader_and_reads_survive_two_killed_storage_nodes() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut cluster = Cluster::start();
    let work = cluster.dir.path().to_owned();
    let fixed = work.join("fixed.manifest");
    let fixed_path = fixed.display().to_string();
    cluster.run_load(0, &["put", "cluster-data", "14", &fixed_path]);

    // Two uploaders, one through each gateway, while the busiest meta leader dies.
    let stop = work.join("stop");
    let manifests: Vec<PathBuf> = (0..2)
        .map(|gateway| work.join(format!("stream-{gateway}.manifest")))
        .collect();
    let streams: Vec<Child> = (0..2)
        .map(|gateway| {
            cluster
                .load(
                    gateway,
                    &[
                        "stream",
                        "cluster-data",
                        &stop.display().to_string(),
                        &manifests[gateway].display().to_string(),
                    ],
                )
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python3")
        })
        .collect();
    for manifest in &manifests {
        wait_for_lines(manifest, 5, Duration::from_secs(60), "before the kill");
    }
    let (victim, groups_led) = cluster.busiest_meta_leader();
    assert!(groups_led > 0, "no meta replica reports leading a group");
    let before: Vec<usize> = manifests.iter().map(|path| line_count(path)).collect();
    cluster.meta[victim].process.as_mut().unwrap().kill_9();
    cluster.meta[victim].process = None;
    // The survivors elect new leaders; uploads through both gateways go on.
    for (manifest, count) in manifests.iter().zip(&before) {
        wait_for_lines(
            manifest,
            count + 10,
            Duration::from_secs(90),
            "after the meta leader was killed",
        );
    }
    let (new_leader, groups_led_now) = cluster.busiest_meta_leader();
    assert_ne!(new_leader, victim);
    assert!(groups_led_now > 0);
    std::fs::write(&stop, b"").unwrap();
    for (gateway, stream) in streams.into_iter().enumerate() {
        let summary = finish(stream, &format!("upload stream through gateway {gateway}"));
        eprintln!("gateway {gateway}: {}", summary.trim());
    }
    // The killed replica comes back and catches up; every acknowledged upload reads back exactly,
    // each through the gateway it was not written through.
    wait_until_port_closed(cluster.meta[victim].address, Duration::from_secs(20));
    cluster.start_role("meta", victim);
    cluster.run_load(1, &["verify", "cluster-data", &fixed_path]);
    for (gateway, manifest) in manifests.iter().enumerate() {
        cluster.run_load(
            1 - gateway,
            &["verify", "cluster-data", &manifest.display().to_string()],
        );
    }

    // Two storage nodes in two different AZs die: every object is still exact.
    for index in [1, 5] {
        cluster.storage[index].process.as_mut().unwrap().kill_9();
        cluster.storage[index].process = None;
    }
    cluster.run_load(0, &["verify", "cluster-data", &fixed_path]);
    for manifest in &manifests {
        cluster.run_load(
            1,
            &["verify", "cluster-data", &manifest.display().to_string()],
        );
    }
    // The node registry marks both DOWN (no heartbeat for 4 s) and the gateways learn it: new
    // objects commit on the seven nodes left without a single write to a dead node, and read
    // back exactly.
    let deadline = Instant::now() + Duration::from_secs(60);
    for gateway in &cluster.gateways {
        let process = gateway.process.as_ref().unwrap();
        while !process.log().contains("down={1, 5}") {
            assert!(
                Instant::now() < deadline,
                "the registry never reported nodes 2 and 6 DOWN:\n{}",
                cluster.log_tails()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let write_errors = |gateway: usize| {
        metric(
            cluster.gateways[gateway].admin.unwrap(),
            "cairn_gateway_shard_write_errors_total",
        )
    };
    let errors_before = write_errors(1);
    let degraded = work.join("degraded.manifest");
    let degraded_path = degraded.display().to_string();
    cluster.run_load(1, &["put", "degraded-writes", "7", &degraded_path]);
    assert_eq!(
        write_errors(1),
        errors_before,
        "a shard write went to a DOWN node"
    );
    cluster.run_load(0, &["verify", "degraded-writes", &degraded_path]);

    for role in cluster.storage.iter().chain(&cluster.gateways) {
        if let Some(process) = &role.process {
            let errors = process.error_lines();
            assert!(
                errors.is_empty(),
                "unexpected ERROR lines in {}:\n{}",
                process.description,
                errors.join("\n")
            );
        }
    }
}

#[test]
fn cluster_init_and_up_start_a_working_cluster_and_sigterm_stops_it() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::Builder::new()
        .prefix("cairn-cluster-up-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let file = dir.path().join("cluster.toml");
    // A smaller layout than the default so the test stays light; ports are free ones.
    let init = Command::new(BINARY)
        .args([
            "cluster",
            "init",
            "--meta",
            "3",
            "--storage",
            "6",
            "--gateways",
            "1",
        ])
        .args(["--ec-scheme", "isal-cauchy:4+2", "--out"])
        .arg(&file)
        .arg("--data")
        .arg(dir.path().join("state"))
        .args(["--base-port", &consecutive_free_ports(6).to_string()])
        .env_remove("CAIRN_ROOT_ACCESS_KEY")
        .env_remove("CAIRN_ROOT_SECRET_KEY")
        .output()
        .unwrap();
    let init_out = String::from_utf8_lossy(&init.stdout).into_owned();
    assert!(
        init.status.success(),
        "{init_out}{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let value = |text: &str, label: &str| {
        text.lines()
            .find_map(|line| {
                line.trim()
                    .strip_prefix(label)
                    .map(|rest| rest.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {label} in:\n{text}"))
    };
    let access = value(&init_out, "access key:");
    let secret = value(&init_out, "secret key:");
    // A second init never overwrites the file.
    let again = Command::new(BINARY)
        .args(["cluster", "init", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!again.status.success());

    let mut text = std::fs::read_to_string(&file).unwrap();
    let endpoint: SocketAddr = text
        .split("[[gateway]]")
        .nth(1)
        .and_then(|gateway| {
            gateway
                .lines()
                .find_map(|line| line.strip_prefix("address = "))
        })
        .map(|quoted| quoted.trim_matches('"').parse().unwrap())
        .unwrap();
    // The gateway serves S3 over TLS (a certificate of a dev CA) and edges on a mutual-TLS edge
    // listener, both from its [[gateway]] entry; the replicator reads through it over HTTPS,
    // trusting that CA ([replication] ca_bundle).
    let certs = dir.path().join("s3-certs");
    let made = Command::new(BINARY)
        .args(["edge", "dev-cert", "--out"])
        .arg(&certs)
        .args(["--hostname", &endpoint.ip().to_string()])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let edge_listener = SocketAddr::new(endpoint.ip(), free_port());
    text = text.replacen(
        "[[gateway]]\n",
        &format!(
            "[[gateway]]\ntls_cert = {:?}\ntls_key = {:?}\nedge_address = \"{edge_listener}\"\n",
            certs.join("server.pem").display().to_string(),
            certs.join("server-key.pem").display().to_string(),
        ),
        1,
    );
    text = text.replacen(
        "[replication]\n",
        &format!(
            "[replication]\nca_bundle = {:?}\n",
            certs.join("ca.pem").display().to_string()
        ),
        1,
    );
    std::fs::write(&file, &text).unwrap();
    let ca_env = [(
        "AWS_CA_BUNDLE".to_owned(),
        certs.join("ca.pem").display().to_string(),
    )];
    let mut up = CairnProcess::start_with_env(
        Path::new(BINARY),
        &[
            "cluster".to_owned(),
            "up".to_owned(),
            file.display().to_string(),
        ],
        dir.path(),
        "up",
        &[],
    );
    wait_for_listener(endpoint, &mut up, Duration::from_secs(90));
    let manifest = dir.path().join("manifest").display().to_string();
    let url = format!("https://{endpoint}");
    for mode in [
        &["put", "up-bucket", "7", &manifest][..],
        &["verify", "up-bucket", &manifest],
    ] {
        let args: Vec<&str> = [url.as_str(), access.as_str(), secret.as_str()]
            .into_iter()
            .chain(mode.iter().copied())
            .collect();
        if let Err(failure) =
            cairn_tests::try_python_script_with_env("cluster_load.py", &args, &ca_env)
        {
            panic!("{mode:?}: {failure}\n{}", up.log());
        }
    }
    // Plain HTTP gets no S3 answer from a TLS listener.
    assert_eq!(http_get_status(endpoint), None, "plain HTTP answered");
    // The edge listener serves edge identities of the cluster CA only (an anonymous GET of a
    // private bucket's key: 403 from S3), and nothing without a client certificate.
    let pki = cairn_tests::TestPki::for_ca(
        Path::new(BINARY),
        &dir.path().join("state").join("tls").join("ca"),
        &dir.path().join("pki"),
    );
    let ca = pki.ca();
    let through_edge_listener = |presented: Option<&Path>| {
        tls_client::https_status(
            edge_listener,
            tls_client::hand_made_config(&ca, presented),
            "gateway.role.cairn",
            "/up-bucket/no-such-key",
            &[],
        )
    };
    assert_eq!(through_edge_listener(None), None, "no client certificate");
    assert_eq!(
        through_edge_listener(Some(&pki.issue("test-edge", "edge"))),
        Some(403)
    );
    // `cluster up` starts the file's worker, which runs the replicator from the file's
    // [replication] table (no replication flags): a same-region rule converges, and the
    // replicator's metrics are on the worker's admin listener.
    if let Err(failure) = cairn_tests::try_python_script_with_env(
        "replication_same_region.py",
        &[url.as_str(), access.as_str(), secret.as_str()],
        &ca_env,
    ) {
        panic!("{failure}\n{}", up.log());
    }
    let worker_admin: SocketAddr = text
        .split("[[worker]]")
        .nth(1)
        .and_then(|worker| {
            worker
                .lines()
                .find_map(|line| line.strip_prefix("admin = "))
        })
        .map(|quoted| quoted.trim_matches('"').parse().unwrap())
        .unwrap();
    let (status, metrics) = http_get(worker_admin, "/metrics");
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    let replicated = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cairn_replication_objects_replicated_total "))
        .map(|value| value.parse::<f64>().unwrap());
    assert_eq!(replicated, Some(1.0), "{metrics}");
    // SIGTERM to `cluster up` stops every role it started (their listeners close) and it exits 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.pid() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(code) = up.try_exit_code() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "cluster up did not stop:\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, Some(0), "{}", up.log());
    for line in text
        .lines()
        .filter_map(|line| line.strip_prefix("address = "))
    {
        let address: SocketAddr = line.trim_matches('"').parse().unwrap();
        wait_until_port_closed(address, Duration::from_secs(5));
    }
}
