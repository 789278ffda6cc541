//! The multi-AZ cluster the AZ tests (az_failure.rs, az_partition.rs) start; included with
//! `#[path]`, not a test of its own. Every role is a separate `cairn` process of one cluster file
//! laid out as `cairn cluster init` lays it out by default: 3 meta replicas in az1..az3, 12
//! storage nodes in 4 AZs of 3 (node N in AZ (N − 1) mod 4 + 1), 2 gateways, 1 worker, EC 6+3.
//!
//! Two network set-ups:
//! - loopback: each process on its own 127.0.x.y address;
//! - namespaces ([`Namespaces`]): one network namespace per AZ, each joined by a veth pair to a
//!   bridge in a hub namespace, every process on its own 10.213.AZ.N address inside its AZ's
//!   namespace (started through `ip netns exec`). Gateway 1 sits in az1, gateway 2 and the worker
//!   in az2. The test's own network calls (clients, metadata and node listings) run in the hub.
//!   [`Namespaces::partition`] drops every packet between one AZ and the hub (tc netem loss 100 %
//!   on both ends of its veth); [`Namespaces::heal`] removes that. Dropping the value deletes the
//!   namespaces (and so the veths and bridge), on every exit path including a failed assertion.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cairn_common::ShardId;
use cairn_meta_state::{ListVersionsRequest, Query, Response, VersionSelector, shard_object_id};
use cairn_storage_client::StorageClient;
use cairn_tests::{CairnProcess, free_port};

pub const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
pub const ACCESS_KEY: &str = "CAIRNAZFAILURETEST01";
pub const SECRET_KEY: &str = "az-failure-test-secret-key-0123456789abcd";
pub const DATA_SHARDS: usize = 6;
pub const PARITY_SHARDS: usize = 3;
pub const AZ_COUNT: u64 = 4;
pub const STORAGE_COUNT: u64 = 12;
pub const PARTITIONS: u32 = 4;

/// `cairn cluster init`'s rule: node N of a role sits in AZ `az((N - 1) mod 4 + 1)`.
pub fn az_of(id: u64) -> String {
    format!("az{}", (id - 1) % AZ_COUNT + 1)
}

/// The network namespaces of one test (see the module header).
pub struct Namespaces {
    prefix: String,
}

impl Namespaces {
    /// Creates the hub and one namespace per AZ, or says why it cannot (not root, no `ip`, a
    /// kernel without namespaces): the caller skips then.
    pub fn create() -> Result<Namespaces, String> {
        // Interface names are at most 15 bytes: keep the prefix short and unique per process.
        let prefix = format!("cz{}", std::process::id() % 100_000);
        let namespaces = Namespaces { prefix };
        namespaces.set_up()?;
        Ok(namespaces)
    }

    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    pub fn of_az(&self, az: u64) -> String {
        format!("{}a{az}", self.prefix)
    }

    fn az_veth(&self, az: u64) -> String {
        format!("{}v{az}", self.prefix)
    }

    fn hub_veth(&self, az: u64) -> String {
        format!("{}p{az}", self.prefix)
    }

    fn set_up(&self) -> Result<(), String> {
        let hub = self.hub();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "addr", "add", "10.213.0.1/16", "dev", "br0"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for az in 1..=AZ_COUNT {
            let namespace = self.of_az(az);
            let (az_veth, hub_veth) = (self.az_veth(az), self.hub_veth(az));
            ip(&["netns", "add", &namespace])?;
            ip(&["-n", &namespace, "link", "set", "lo", "up"])?;
            ip(&[
                "link", "add", &az_veth, "netns", &namespace, "type", "veth", "peer", "name",
                &hub_veth, "netns", &hub,
            ])?;
            ip(&["-n", &hub, "link", "set", &hub_veth, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &hub_veth, "up"])?;
            ip(&["-n", &namespace, "link", "set", &az_veth, "up"])?;
        }
        Ok(())
    }

    /// Gives `address` (10.213.AZ.N) to the AZ's veth.
    pub fn add_address(&self, az: u64, address: std::net::IpAddr) -> Result<(), String> {
        ip(&[
            "-n",
            &self.of_az(az),
            "addr",
            "add",
            &format!("{address}/16"),
            "dev",
            &self.az_veth(az),
        ])
    }

    /// Every packet between `az` and the rest is dropped, both ways: `tc netem loss 100%` on
    /// both ends of the AZ's veth, or, on a kernel without the netem qdisc (this machine's has
    /// none: "Specified qdisc kind is unknown"), both ends set down, which drops the same packets
    /// (the AZ's own addresses stay up, so processes inside it still reach each other).
    pub fn partition(&self, az: u64) {
        for (namespace, device) in self.veth_ends(az) {
            let netem = tc(&[
                "-n", &namespace, "qdisc", "add", "dev", &device, "root", "netem", "loss", "100%",
            ]);
            if let Err(error) = netem {
                eprintln!("no netem ({error}): setting {device} down instead");
                ip(&["-n", &namespace, "link", "set", "dev", &device, "down"]).unwrap();
            }
        }
    }

    pub fn heal(&self, az: u64) {
        for (namespace, device) in self.veth_ends(az) {
            // Whichever way the partition was made, undo it (the other undo fails harmlessly).
            let _ = tc(&["-n", &namespace, "qdisc", "del", "dev", &device, "root"]);
            ip(&["-n", &namespace, "link", "set", "dev", &device, "up"]).unwrap();
        }
    }

    fn veth_ends(&self, az: u64) -> [(String, String); 2] {
        [
            (self.of_az(az), self.az_veth(az)),
            (self.hub(), self.hub_veth(az)),
        ]
    }

    /// Runs `work` on a thread that has entered namespace `name`'s network stack.
    pub fn run_in<T: Send>(name: &str, work: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(format!("/var/run/netns/{name}"))
            .unwrap_or_else(|error| panic!("namespace {name}: {error}"));
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns on a valid namespace fd affects only this thread.
                    let result = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    assert_eq!(result, 0, "setns: {}", std::io::Error::last_os_error());
                    work()
                })
                .join()
                .unwrap()
        })
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth ends and the bridge with it.
        for az in 1..=AZ_COUNT {
            let _ = ip(&["netns", "del", &self.of_az(az)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}

fn run_tool(tool: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(tool)
        .args(args)
        .output()
        .map_err(|error| format!("{tool}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run_tool("ip", args)
}

fn tc(args: &[&str]) -> Result<(), String> {
    run_tool("tc", args)
}

pub struct Role {
    pub id: u64,
    pub az: String,
    pub address: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub process: Option<CairnProcess>,
    /// The namespace the role runs in (namespace set-up only).
    pub namespace: Option<String>,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    file: PathBuf,
    pub meta: Vec<Role>,
    pub storage: Vec<Role>,
    pub gateways: Vec<Role>,
    pub worker: Role,
    /// The hub namespace the test's network calls run in (namespace set-up only).
    hub: Option<String>,
}

/// 127.0.x.y on loopback; 10.213.AZ.(third·16 + id) in namespaces.
fn address(namespaces: Option<&Namespaces>, az: u64, third: u8, id: u64) -> SocketAddr {
    match namespaces {
        None => SocketAddr::from(([127, 0, third, id as u8], free_port())),
        Some(namespaces) => {
            let ip = std::net::IpAddr::from([10, 213, az as u8, third * 16 + id as u8]);
            namespaces.add_address(az, ip).unwrap();
            SocketAddr::new(ip, free_port())
        }
    }
}

impl Cluster {
    /// Starts the cluster on loopback, or in `namespaces`.
    pub fn start(namespaces: Option<&Namespaces>) -> Cluster {
        // Below the build directory's file system (O_DIRECT needs ext4/xfs, not tmpfs).
        let dir = tempfile::Builder::new()
            .prefix("cairn-az-test-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let role = |third: u8, id: u64, az: u64, admin: bool| {
            let address = address(namespaces, az, third, id);
            Role {
                id,
                az: format!("az{az}"),
                address,
                // The admin listener shares the role's IP.
                admin: admin.then(|| SocketAddr::new(address.ip(), free_port())),
                process: None,
                namespace: namespaces.map(|namespaces| namespaces.of_az(az)),
            }
        };
        let az_number = |id: u64| (id - 1) % AZ_COUNT + 1;
        let meta: Vec<Role> = (1..=3).map(|id| role(1, id, id, true)).collect();
        let storage: Vec<Role> = (1..=STORAGE_COUNT)
            .map(|id| role(2, id, az_number(id), false))
            .collect();
        // Gateway 1 in az1, gateway 2 in az2; the worker in az2.
        let gateways: Vec<Role> = (1..=2).map(|id| role(3, id, id, true)).collect();
        let worker = role(4, 1, 2, true);
        let mut text = format!(
            "partitions = {PARTITIONS}\nec_scheme = \"isal-cauchy:{DATA_SHARDS}+{PARITY_SHARDS}\"\n\
             data_root = \"state\"\ntls_dir = \"tls\"\n\n"
        );
        for role in &meta {
            text += &format!(
                "[[meta]]\nid = {}\naddress = \"{}\"\naz = \"{}\"\nadmin = \"{}\"\n\n",
                role.id,
                role.address,
                role.az,
                role.admin.unwrap()
            );
        }
        for role in &storage {
            text += &format!(
                "[[storage]]\nid = {}\naddress = \"{}\"\naz = \"{}\"\ncores = 1\ncache_mib = 4\nsegment_mib = 32\n\n",
                role.id, role.address, role.az
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
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(
            dir.path().join("state/master-key"),
            format!("{}\n", "6b".repeat(32)),
        )
        .unwrap();
        // Internal mutual TLS: the cluster CA in tls/ca and one identity per process in
        // tls/<role>-<id>, as `cairn cluster init` lays them out; the test's own metadata and
        // storage clients run as the worker.
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
            hub: namespaces.map(Namespaces::hub),
        };
        for index in 0..cluster.meta.len() {
            cluster.start_role("meta", index);
        }
        for index in 0..cluster.storage.len() {
            cluster.start_role("storage", index);
        }
        for index in 0..cluster.gateways.len() {
            cluster.start_role("gateway", index);
        }
        cluster.start_role("worker", 0);
        cluster
    }

    /// Runs `work` where the cluster's addresses are reachable (the hub namespace, if any).
    pub fn net<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        match &self.hub {
            None => work(),
            Some(hub) => Namespaces::run_in(hub, work),
        }
    }

    pub fn start_role(&mut self, kind: &str, index: usize) {
        let file = self.file.display().to_string();
        let logs = self.dir.path().join("logs");
        let hub = self.hub.clone();
        let role = match kind {
            "meta" => &mut self.meta[index],
            "storage" => &mut self.storage[index],
            "worker" => &mut self.worker,
            _ => &mut self.gateways[index],
        };
        let mut args: Vec<String> = [kind, "--cluster", &file, "--id", &role.id.to_string()]
            .map(str::to_owned)
            .to_vec();
        // Fast liveness and a busy healer: heartbeats every second, DOWN after four silent
        // seconds, a scrub/heal pass every two seconds, orphans and garbage removed after a few.
        let fast: &[&str] = match kind {
            "storage" => &["--node-heartbeat-secs", "1"],
            "worker" => &[
                "--node-heartbeat-secs",
                "1",
                "--node-down-after-secs",
                "4",
                "--healer-down-grace-secs",
                "4",
                "--healer-interval-secs",
                "2",
                "--healer-suspect-poll-ms",
                "500",
                "--orphan-grace-secs",
                "4",
                "--janitor-interval-secs",
                "2",
                "--janitor-garbage-grace-secs",
                "2",
                // A write cut off by the partition between its PREPARE and its COMMIT leaves a
                // PREPARING record whose pieces count as stale until the janitor rolls it back.
                "--janitor-prepare-timeout-secs",
                "20",
            ],
            _ => &[],
        };
        args.extend(fast.iter().map(|arg| (*arg).to_owned()));
        let (binary, args) = match &role.namespace {
            None => (PathBuf::from(BINARY), args),
            Some(namespace) => {
                let mut wrapped: Vec<String> = ["netns", "exec", namespace, BINARY]
                    .map(str::to_owned)
                    .to_vec();
                wrapped.extend(args);
                (PathBuf::from("ip"), wrapped)
            }
        };
        let mut process = CairnProcess::start_with_env(
            &binary,
            &args,
            &logs,
            &format!("{kind}-{}", role.id),
            &[
                ("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY),
                ("CAIRN_ROOT_SECRET_KEY", SECRET_KEY),
            ],
        );
        let listener = if kind == "worker" {
            role.admin.unwrap()
        } else {
            role.address
        };
        // `ip netns exec` execs the binary: the child's pid is cairn's, so SIGKILL reaches it.
        let probe =
            move || TcpStream::connect_timeout(&listener, Duration::from_millis(200)).is_ok();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listening = match &hub {
                None => probe(),
                Some(hub) => Namespaces::run_in(hub, probe),
            };
            if listening {
                break;
            }
            if let Some(code) = process.try_exit_code() {
                panic!(
                    "{} exited with {code:?} before listening; log:\n{}",
                    process.description,
                    process.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {listener}; log:\n{}",
                process.description,
                process.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        role.process = Some(process);
    }

    /// SIGKILLs every storage node of `az` (and its meta replica when `with_meta`).
    pub fn kill_az(&mut self, az: &str, with_meta: bool) {
        let metas = self.meta.iter_mut().filter(|_| with_meta);
        for role in self.storage.iter_mut().chain(metas) {
            if role.az == az
                && let Some(mut process) = role.process.take()
            {
                process.kill_9();
            }
        }
    }

    /// Restarts every killed storage node and meta replica of `az`.
    pub fn restart_az(&mut self, az: &str) {
        for (kind, count) in [("meta", self.meta.len()), ("storage", self.storage.len())] {
            for index in 0..count {
                let role = if kind == "meta" {
                    &self.meta[index]
                } else {
                    &self.storage[index]
                };
                if role.az == az && role.process.is_none() {
                    let address = role.address;
                    self.net(|| {
                        cairn_tests::wait_until_port_closed(address, Duration::from_secs(20))
                    });
                    self.start_role(kind, index);
                }
            }
        }
    }

    /// A Python script of tests/python run with the cluster's keys, against gateway `gateway`,
    /// from `namespace` (default: wherever the cluster is reachable).
    pub fn python(&self, script: &str, gateway: usize, namespace: Option<&str>) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let mut command = match namespace.or(self.hub.as_deref()) {
            None => Command::new("python3"),
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace, "python3"]);
                command
            }
        };
        command
            .arg(script)
            .arg(format!("http://{}", self.gateways[gateway].address))
            .arg(ACCESS_KEY)
            .arg(SECRET_KEY);
        command
    }

    pub fn load(&self, gateway: usize, args: &[&str]) -> Command {
        let mut command = self.python("cluster_load.py", gateway, None);
        command.args(args);
        command
    }

    pub fn run_load(&self, gateway: usize, args: &[&str]) -> String {
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

    /// One PUT without client retries (tests/python/put_once.py): its JSON answer.
    pub fn put_once(
        &self,
        gateway: usize,
        namespace: Option<&str>,
        bucket: &str,
        key: &str,
        size_bytes: usize,
    ) -> serde_json::Value {
        let output: Output = self
            .python("put_once.py", gateway, namespace)
            .args([bucket, key, &size_bytes.to_string()])
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{answer}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(answer.trim()).unwrap()
    }

    pub fn log_tails(&self) -> String {
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
                let tail = &lines[lines.len().saturating_sub(6)..];
                text += &format!("--- {}\n{}\n", process.description, tail.join("\n"));
            }
        }
        text
    }

    fn meta_client(&self) -> cairn_raft::MetaClient {
        let nodes = self
            .meta
            .iter()
            .map(|role| (role.id, role.address.to_string()))
            .collect();
        let mut config = cairn_raft::MetaClientConfig::new(nodes, PARTITIONS);
        config.zones = self
            .meta
            .iter()
            .map(|role| (role.id, role.az.clone()))
            .collect();
        config.identity = Some(self.identity());
        cairn_raft::MetaClient::new(config)
    }

    /// The worker's identity, under which the test's own clients dial meta and storage.
    fn identity(&self) -> std::sync::Arc<cairn_tls::Identity> {
        cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
            self.dir.path().join("tls/worker-1"),
        ))
        .expect("the worker identity")
    }

    /// Every piece each running storage node holds, by node id.
    fn pieces_on_nodes(&self) -> Result<BTreeMap<u64, BTreeSet<ShardId>>, String> {
        let mut pieces = BTreeMap::new();
        for role in self.storage.iter().filter(|role| role.process.is_some()) {
            let mut client = StorageClient::connect_with_config(
                role.address,
                cairn_storage_client::ClientConfig::with_identity(Some(&self.identity())),
            )
            .map_err(|error| format!("storage {}: {error}", role.id))?;
            let mut held = BTreeSet::new();
            let mut after = None;
            loop {
                let page = client
                    .scan(after, 1000)
                    .map_err(|error| format!("scan of storage {}: {error}", role.id))?;
                held.extend(page.entries.iter().map(|entry| entry.shard_id));
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            pieces.insert(role.id, held);
        }
        Ok(pieces)
    }

    /// What stands between the cluster and full redundancy (empty: none). Every block of every
    /// committed version must have its k + m pieces (less its padding pieces) on distinct
    /// running nodes, at most m per AZ
    /// (the AZ taken from the cluster file, not from the shard map), each piece listed by its
    /// node; and, when `no_stale`, no running node may hold a piece that no shard map names.
    fn redundancy_gaps(
        &self,
        runtime: &tokio::runtime::Runtime,
        meta: &cairn_raft::MetaClient,
        no_stale: bool,
    ) -> Vec<String> {
        let records = match runtime.block_on(committed_records(meta)) {
            Ok(records) => records,
            Err(error) => return vec![error],
        };
        let held = match self.pieces_on_nodes() {
            Ok(held) => held,
            Err(error) => return vec![error],
        };
        let az_of_node: BTreeMap<u64, &str> = self
            .storage
            .iter()
            .map(|role| (role.id, role.az.as_str()))
            .collect();
        let mut gaps = Vec::new();
        let mut referenced: BTreeSet<(u64, ShardId)> = BTreeSet::new();
        for record in &records {
            let group = meta.partition_of(&record.bucket, &record.key);
            let object_id = shard_object_id((group.0 - 1) as u32, record.shard_name_id());
            let name = format!("{}/{}", record.bucket, record.key);
            for part in &record.erasure.parts {
                for (block_index, block) in part.blocks.iter().enumerate() {
                    let place = format!("{name} part {} block {block_index}", part.part_number);
                    // A short stripe's padding data pieces are never placed.
                    let padding = block.padding_data_pieces(
                        DATA_SHARDS,
                        u64::from(record.erasure.piece_size_bytes),
                    );
                    if block.shards.len() + padding.len() != DATA_SHARDS + PARITY_SHARDS
                        || block
                            .shards
                            .keys()
                            .any(|index| padding.contains(&usize::from(index.0)))
                    {
                        gaps.push(format!(
                            "{place}: pieces {:?} (padding {padding:?})",
                            block.shards.keys().collect::<Vec<_>>()
                        ));
                    }
                    let mut nodes = BTreeSet::new();
                    let mut per_az: BTreeMap<&str, usize> = BTreeMap::new();
                    for (index, placement) in &block.shards {
                        let node = placement.node_id.0;
                        let shard_id =
                            ShardId::new(object_id, part.part_number, block_index as u32, *index);
                        referenced.insert((node, shard_id));
                        nodes.insert(node);
                        *per_az.entry(az_of_node[&node]).or_insert(0) += 1;
                        match held.get(&node) {
                            None => gaps.push(format!("{place}: a piece on stopped node {node}")),
                            Some(pieces) if !pieces.contains(&shard_id) => {
                                gaps.push(format!("{place}: node {node} lacks {shard_id:?}"))
                            }
                            Some(_) => {}
                        }
                    }
                    if nodes.len() != block.shards.len() {
                        gaps.push(format!("{place}: two pieces on one node"));
                    }
                    if let Some((az, count)) =
                        per_az.iter().find(|(_, count)| **count > PARITY_SHARDS)
                    {
                        gaps.push(format!("{place}: {count} pieces in {az}"));
                    }
                }
            }
        }
        if no_stale {
            for (node, pieces) in &held {
                let stale = pieces
                    .iter()
                    .filter(|shard_id| !referenced.contains(&(*node, **shard_id)))
                    .count();
                if stale > 0 {
                    gaps.push(format!("node {node} holds {stale} stale pieces"));
                }
            }
        }
        gaps
    }

    /// Polls [`Cluster::redundancy_gaps`] until it is empty.
    pub fn wait_for_full_redundancy(&self, no_stale: bool, timeout: Duration, what: &str) {
        let outcome = self.net(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let meta = self.meta_client();
            let deadline = Instant::now() + timeout;
            loop {
                let gaps = self.redundancy_gaps(&runtime, &meta, no_stale);
                if gaps.is_empty() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(gaps);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        if let Err(gaps) = outcome {
            panic!(
                "{what}: not at full redundancy after {timeout:?}; {} gaps, first: {:?}\n{}",
                gaps.len(),
                &gaps[..gaps.len().min(8)],
                self.log_tails()
            );
        }
    }

    pub fn assert_no_error_lines(&self) {
        for role in self.storage.iter().chain(&self.gateways) {
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
}

/// Every committed, non-delete-marker version of every bucket, read through the leaders.
async fn committed_records(
    meta: &cairn_raft::MetaClient,
) -> Result<Vec<cairn_meta_state::ObjectRecord>, String> {
    let buckets = match meta.read(Query::ListBuckets { owner: None }).await {
        Ok(Ok(Response::Buckets(buckets))) => buckets,
        other => return Err(format!("ListBuckets: {other:?}")),
    };
    let mut records = Vec::new();
    for bucket in buckets {
        let mut key_marker = None;
        let mut version_id_marker = None;
        loop {
            let request = ListVersionsRequest {
                bucket: bucket.name.clone(),
                prefix: String::new(),
                delimiter: String::new(),
                key_marker: key_marker.clone(),
                version_id_marker,
                max_keys: 1000,
            };
            let page = match meta.list_versions(request).await {
                Ok(Ok(page)) => page,
                other => return Err(format!("ListVersions: {other:?}")),
            };
            for version in page
                .versions
                .iter()
                .filter(|version| !version.delete_marker)
            {
                let query = Query::GetObject {
                    bucket: bucket.name.clone(),
                    key: version.key.clone(),
                    version: VersionSelector::Id(version.version_id),
                };
                match meta.read(query).await {
                    Ok(Ok(Response::Object(record))) => records.push(record),
                    other => return Err(format!("GetObject {}: {other:?}", version.key)),
                }
            }
            if !page.is_truncated {
                break;
            }
            key_marker = page.next_key_marker.clone();
            version_id_marker = page.next_version_id_marker;
        }
    }
    Ok(records)
}

pub fn line_count(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

pub fn wait_for_lines(path: &Path, count: usize, timeout: Duration, what: &str) {
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

/// Starts one upload stream per gateway into `bucket` (tests/python/cluster_load.py `stream`).
pub fn start_streams(cluster: &Cluster, bucket: &str, stop: &Path) -> (Vec<PathBuf>, Vec<Child>) {
    let work = cluster.dir.path();
    let manifests: Vec<PathBuf> = (0..cluster.gateways.len())
        .map(|gateway| work.join(format!("{bucket}-{gateway}.manifest")))
        .collect();
    let streams = (0..cluster.gateways.len())
        .map(|gateway| {
            cluster
                .load(
                    gateway,
                    &[
                        "stream",
                        bucket,
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
    (manifests, streams)
}

pub fn finish(mut child: Child, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
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
