//! `cairn-bench heal`: how long the healer takes to restore full redundancy after a storage node
//! holding N GiB of pieces is lost, and that heal rate as a ratio of what the surviving nodes'
//! shard logs can be read at, measured in the same run.
//!
//! One run:
//! 1. `cairn cluster init` lays out the default local cluster (3 meta replicas, 12 storage nodes
//!    in 4 AZs, 2 gateways, EC 6+3) in a fresh directory under `--dir`; every role is started as
//!    its own `cairn` process (the `--cairn` binary, a release build for figures that mean
//!    anything), the worker not yet.
//! 2. The gateways are filled over S3 until storage node 1 holds about `--node-gib` GiB of
//!    pieces (with 6+3 over 12 nodes a node holds 1/8 of the data written).
//! 3. Every node's pieces are listed over the storage RPC; node 1 is killed with SIGKILL, and the
//!    worker (janitor, node expiry, scrubber/healer) starts with an unthrottled scrub budget and
//!    `--down-grace-secs` as both the registry's DOWN timeout and the healer's grace period.
//! 4. The worker's `/metrics` is polled until the healer has rebuilt as many pieces as node 1
//!    held; then every piece node 1 held must exist again on a surviving node (the run fails
//!    otherwise). Restore time counts from the kill; the heal rate is node 1's bytes over it, and
//!    over the time after the grace period (the healer's own speed, detection excluded).
//! 5. With the worker stopped, every surviving node's pieces are read back from disk over the
//!    storage RPC: once by one sequential reader (the healer's own access pattern: one piece at a
//!    time) and once by one reader per node in parallel (the survivors' aggregate shard-log read
//!    bandwidth). The heal and healer-read rates are reported as ratios of both.
//!
//! All processes run on this machine and share its cores and disk, so the figures are this
//! machine's; the ratios are what carries over.

use crate::load::median;
use crate::s3::client::{Addressing, Client, TargetArgs};
use anyhow::{Context, bail, ensure};
use cairn_common::ShardId;
use cairn_storage_client::{ClientConfig, StorageClient};
use clap::Args;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "CAIRNHEALBENCH000001";
const SECRET_KEY: &str = "cairn-heal-bench-secret-0123456789abcdef";
/// The storage node the run kills.
const VICTIM: u64 = 1;

#[derive(Args, Debug)]
pub struct HealArgs {
    /// The `cairn` binary whose cluster is measured (build it with `cargo build --release -p
    /// cairn`).
    #[arg(long, default_value = "target/release/cairn")]
    cairn: PathBuf,
    /// Directory for the cluster's data (on the disk under test: ext4/xfs, not tmpfs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// GiB of pieces on the node that is lost.
    #[arg(long, default_value_t = 0.25)]
    node_gib: f64,
    /// Size of the objects the cluster is filled with, in MiB.
    #[arg(long, default_value_t = 16)]
    object_mib: usize,
    /// Concurrent S3 writers during the fill.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Seconds a silent node takes to count as DOWN (registry and healer).
    #[arg(long, default_value_t = 5)]
    down_grace_secs: u64,
    /// Runs (each on a fresh cluster); medians are reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Give up on a run whose heal has not finished after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
    /// First of the six ports `cairn cluster init` uses (each role has its own 127.0.x.y).
    #[arg(long, default_value_t = 27400)]
    base_port: u16,
}

/// One cluster file entry: id, `address`, `admin`.
type Entry = (u64, Option<SocketAddr>, Option<SocketAddr>);

/// The cluster file's addresses the run needs.
struct Layout {
    meta_ids: Vec<u64>,
    storage: Vec<(u64, SocketAddr)>,
    gateways: Vec<(u64, SocketAddr)>,
    worker_admin: SocketAddr,
    tls_dir: PathBuf,
}

impl Layout {
    fn load(path: &Path) -> anyhow::Result<Layout> {
        let text = std::fs::read_to_string(path)?;
        let file: toml::Table = toml::from_str(&text).context("the cluster file")?;
        let entries = |kind: &str| -> anyhow::Result<Vec<Entry>> {
            let Some(list) = file.get(kind).and_then(toml::Value::as_array) else {
                return Ok(Vec::new());
            };
            list.iter()
                .map(|entry| {
                    let id = entry
                        .get("id")
                        .and_then(toml::Value::as_integer)
                        .context("an entry without id")?;
                    let address = |field: &str| {
                        entry
                            .get(field)
                            .and_then(toml::Value::as_str)
                            .map(str::parse::<SocketAddr>)
                            .transpose()
                    };
                    Ok((id as u64, address("address")?, address("admin")?))
                })
                .collect()
        };
        let with_address = |kind: &str| -> anyhow::Result<Vec<(u64, SocketAddr)>> {
            entries(kind)?
                .into_iter()
                .map(|(id, address, _)| Ok((id, address.context("an entry without address")?)))
                .collect()
        };
        let worker = entries("worker")?;
        Ok(Layout {
            meta_ids: entries("meta")?.into_iter().map(|(id, _, _)| id).collect(),
            storage: with_address("storage")?,
            gateways: with_address("gateway")?,
            worker_admin: worker
                .first()
                .and_then(|(_, _, admin)| *admin)
                .context("no worker admin address")?,
            tls_dir: PathBuf::from(
                file.get("tls_dir")
                    .and_then(toml::Value::as_str)
                    .context("no tls_dir")?,
            ),
        })
    }
}

/// The role processes of one run; dropping it kills and reaps every one still running.
struct Processes {
    cairn: PathBuf,
    file: PathBuf,
    logs: PathBuf,
    children: Vec<(String, Child)>,
}

impl Processes {
    fn start(&mut self, kind: &str, id: u64, extra: &[&str]) -> anyhow::Result<()> {
        let name = format!("{kind}-{id}");
        let log = std::fs::File::create(self.logs.join(format!("{name}.log")))?;
        let child = Command::new(&self.cairn)
            .arg(kind)
            .arg("--cluster")
            .arg(&self.file)
            .args(["--id", &id.to_string()])
            .args(extra)
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name} ({})", self.cairn.display()))?;
        self.children.push((name, child));
        Ok(())
    }

    fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let position = self
            .children
            .iter()
            .position(|(child_name, _)| child_name == name)
            .with_context(|| format!("no process {name}"))?;
        let (_, mut child) = self.children.remove(position);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// Fails if a role exited (its log says why).
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{name} exited ({status}); see {}",
                    self.logs.join(format!("{name}.log")).display()
                );
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_listening(address: SocketAddr, processes: &mut Processes) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        processes.check_alive()?;
        ensure!(Instant::now() < deadline, "{address} never listened");
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Object `index`'s bytes: no two objects (and no two pieces) are alike.
fn object_bytes(index: u64, size: usize) -> Vec<u8> {
    crate::s3::xorshift_bytes(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, size)
}

/// Every (shard id, length) node `address` holds.
fn list_pieces(address: SocketAddr, config: &ClientConfig) -> anyhow::Result<Vec<(ShardId, u64)>> {
    let mut client = StorageClient::connect_with_config(address, config.clone())?;
    let mut pieces = Vec::new();
    let mut after = None;
    loop {
        let page = client.scan(after, 1000)?;
        pieces.extend(
            page.entries
                .iter()
                .map(|entry| (entry.shard_id, entry.length)),
        );
        match page.next_after {
            Some(next) => after = Some(next),
            None => return Ok(pieces),
        }
    }
}

/// Reads every listed piece from disk (the node's cache skipped) on one connection; returns the
/// bytes read.
fn read_pieces(
    address: SocketAddr,
    config: &ClientConfig,
    pieces: &[(ShardId, u64)],
) -> anyhow::Result<u64> {
    let mut client = StorageClient::connect_with_config(address, config.clone())?;
    let mut bytes = 0u64;
    for (shard_id, _) in pieces {
        bytes += client.get_from_disk(*shard_id, None)?.len() as u64;
    }
    Ok(bytes)
}

/// One value of the worker's Prometheus text.
fn metric(admin: SocketAddr, name: &str) -> anyhow::Result<f64> {
    let text = ureq::get(&format!("http://{admin}/metrics"))
        .timeout(Duration::from_secs(10))
        .call()?
        .into_string()?;
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .with_context(|| format!("no {name} in the worker's metrics"))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

fn run_once(args: &HealArgs, run: usize, root: &Path) -> anyhow::Result<Value> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-heal-bench-")
        .tempdir_in(root)?;
    let file = dir.path().join("cluster.toml");
    let init = Command::new(&args.cairn)
        .args(["cluster", "init", "--out"])
        .arg(&file)
        .arg("--data")
        .arg(dir.path().join("state"))
        .args(["--base-port", &args.base_port.to_string()])
        .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
        .output()
        .with_context(|| format!("running {}", args.cairn.display()))?;
    ensure!(
        init.status.success(),
        "cairn cluster init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let layout = Layout::load(&file)?;
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut processes = Processes {
        cairn: args.cairn.clone(),
        file: file.clone(),
        logs,
        children: Vec::new(),
    };
    for id in &layout.meta_ids {
        processes.start("meta", *id, &[])?;
    }
    for (id, _) in &layout.storage {
        processes.start("storage", *id, &["--node-heartbeat-secs", "1"])?;
    }
    for (id, _) in &layout.gateways {
        processes.start("gateway", *id, &[])?;
    }
    for (_, address) in layout.storage.iter().chain(&layout.gateways) {
        wait_listening(*address, &mut processes)?;
    }

    // The fill: node 1 holds 1/8 of what is written (6+3 pieces over 12 nodes).
    let data_bytes = (args.node_gib * 8.0 * f64::from(1u32 << 30)) as u64;
    let object_bytes_len = args.object_mib << 20;
    let objects = data_bytes.div_ceil(object_bytes_len as u64).max(1);
    let target = |gateway: SocketAddr| TargetArgs {
        endpoint: format!("http://{gateway}"),
        access_key: ACCESS_KEY.to_owned(),
        secret_key: SECRET_KEY.to_owned(),
        region: "us-east-1".to_owned(),
        bucket: "heal-bench".to_owned(),
        addressing: Addressing::Path,
        ca_bundle: None,
    };
    let first = Client::new(&target(layout.gateways[0].1));
    let deadline = Instant::now() + Duration::from_secs(120);
    // The metadata groups elect their leaders first.
    while let Err(error) = first.create_bucket() {
        ensure!(
            Instant::now() < deadline,
            "no bucket after 2 min: {error:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "run {run}: filling {objects} objects of {} MiB ({:.2} GiB)",
        args.object_mib,
        gib(objects * object_bytes_len as u64)
    );
    let fill_started = Instant::now();
    let next = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..args.writers.max(1))
            .map(|writer| {
                let gateway = layout.gateways[writer % layout.gateways.len()].1;
                let client = Client::new(&target(gateway));
                let next = &next;
                scope.spawn(move || -> anyhow::Result<()> {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= objects {
                            return Ok(());
                        }
                        client.put(
                            &format!("object-{index:08}"),
                            &object_bytes(index, object_bytes_len),
                        )?;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("writer thread")?;
        }
        Ok(())
    })?;
    let fill_seconds = fill_started.elapsed().as_secs_f64();

    // Every node's pieces before the loss.
    let identity =
        cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(layout.tls_dir.join("worker-1")))
            .context("the worker identity")?;
    let config = ClientConfig::with_identity(Some(&identity));
    let mut victim_pieces = Vec::new();
    let mut survivors = Vec::new();
    for (id, address) in &layout.storage {
        let pieces = list_pieces(*address, &config)?;
        if *id == VICTIM {
            victim_pieces = pieces;
        } else {
            survivors.push(*address);
        }
    }
    let victim_bytes: u64 = victim_pieces.iter().map(|(_, length)| length).sum();
    ensure!(!victim_pieces.is_empty(), "node {VICTIM} holds no pieces");
    eprintln!(
        "run {run}: filled in {fill_seconds:.1} s; node {VICTIM} holds {} pieces, {:.3} GiB; killing it",
        victim_pieces.len(),
        gib(victim_bytes)
    );

    processes.kill(&format!("storage-{VICTIM}"))?;
    let killed = Instant::now();
    let grace_text = args.down_grace_secs.to_string();
    processes.start(
        "worker",
        1,
        &[
            "--node-heartbeat-secs",
            "1",
            "--node-down-after-secs",
            &grace_text,
            "--healer-down-grace-secs",
            &grace_text,
            "--healer-interval-secs",
            "1",
            "--scrub-budget-mib-per-sec",
            "1000000",
        ],
    )?;
    wait_listening(layout.worker_admin, &mut processes)?;
    let deadline = killed + Duration::from_secs(args.timeout_secs);
    let mut first_rebuilt: Option<f64> = None;
    // The healer's reads once the node counts as DOWN (before that its passes only find the
    // node unreachable and wait).
    let grace = Duration::from_secs(args.down_grace_secs);
    let mut read_at_grace: Option<u64> = None;
    let (restore_seconds, healer_bytes_read) = loop {
        processes.check_alive()?;
        if read_at_grace.is_none() && killed.elapsed() >= grace {
            read_at_grace =
                Some(metric(layout.worker_admin, "cairn_healer_bytes_read_total")? as u64);
        }
        let rebuilt = metric(layout.worker_admin, "cairn_healer_pieces_rebuilt_total")?;
        if rebuilt > 0.0 && first_rebuilt.is_none() {
            first_rebuilt = Some(killed.elapsed().as_secs_f64());
        }
        if rebuilt >= victim_pieces.len() as f64 {
            let read = metric(layout.worker_admin, "cairn_healer_bytes_read_total")?;
            break (killed.elapsed().as_secs_f64(), read as u64);
        }
        ensure!(
            Instant::now() < deadline,
            "the healer rebuilt {rebuilt} of {} pieces in {} s",
            victim_pieces.len(),
            args.timeout_secs
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    processes.kill("worker-1")?;

    // Full redundancy again: every piece node 1 held exists on a surviving node.
    let mut survivor_pieces: Vec<Vec<(ShardId, u64)>> = Vec::new();
    for address in &survivors {
        survivor_pieces.push(list_pieces(*address, &config)?);
    }
    let held: BTreeSet<ShardId> = survivor_pieces
        .iter()
        .flatten()
        .map(|(shard_id, _)| *shard_id)
        .collect();
    let still_lost = victim_pieces
        .iter()
        .filter(|(shard_id, _)| !held.contains(shard_id))
        .count();
    ensure!(
        still_lost == 0,
        "{still_lost} of node {VICTIM}'s pieces are on no surviving node after the heal"
    );
    eprintln!("run {run}: restored in {restore_seconds:.1} s; reading the survivors back");

    // The survivors' shard logs read back: one sequential reader, then one reader per node.
    let started = Instant::now();
    let mut sequential_bytes = 0u64;
    for (address, pieces) in survivors.iter().zip(&survivor_pieces) {
        sequential_bytes += read_pieces(*address, &config, pieces)?;
    }
    let sequential_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let parallel_bytes = std::thread::scope(|scope| -> anyhow::Result<u64> {
        let readers: Vec<_> = survivors
            .iter()
            .zip(&survivor_pieces)
            .map(|(address, pieces)| {
                let config = &config;
                scope.spawn(move || read_pieces(*address, config, pieces))
            })
            .collect();
        let mut total = 0;
        for reader in readers {
            total += reader.join().expect("reader thread")?;
        }
        Ok(total)
    })?;
    let parallel_seconds = started.elapsed().as_secs_f64();
    processes.check_alive()?;

    let heal_rate = victim_bytes as f64 / restore_seconds;
    // From the end of the grace period: the healer's own speed, detection excluded.
    let heal_seconds = restore_seconds - grace.as_secs_f64();
    let heal_rate_after_grace = victim_bytes as f64 / heal_seconds;
    let healer_read_after_grace = healer_bytes_read - read_at_grace.unwrap_or(0);
    let healer_read_rate = healer_read_after_grace as f64 / heal_seconds;
    let sequential_rate = sequential_bytes as f64 / sequential_seconds;
    let parallel_rate = parallel_bytes as f64 / parallel_seconds;
    Ok(json!({
        "run": run,
        "data_written_bytes": objects * object_bytes_len as u64,
        "fill_seconds": fill_seconds,
        "lost_node_pieces": victim_pieces.len(),
        "lost_node_bytes": victim_bytes,
        "down_grace_seconds": args.down_grace_secs,
        "first_piece_rebuilt_after_seconds": first_rebuilt,
        "restore_seconds": restore_seconds,
        "heal_rate_bytes_per_second": heal_rate,
        "heal_seconds_after_grace": heal_seconds,
        "heal_rate_after_grace_bytes_per_second": heal_rate_after_grace,
        "healer_bytes_read_after_grace": healer_read_after_grace,
        "healer_read_bytes_per_second": healer_read_rate,
        "survivors_sequential_read_bytes_per_second": sequential_rate,
        "survivors_parallel_read_bytes_per_second": parallel_rate,
        "heal_rate_vs_parallel_read": heal_rate / parallel_rate,
        "heal_rate_after_grace_vs_parallel_read": heal_rate_after_grace / parallel_rate,
        "healer_read_vs_parallel_read": healer_read_rate / parallel_rate,
        "healer_read_vs_sequential_read": healer_read_rate / sequential_rate,
    }))
}

pub fn run(args: HealArgs) -> anyhow::Result<()> {
    let root = match &args.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()?,
    };
    let mut runs = Vec::new();
    for run in 0..args.runs.max(1) {
        runs.push(run_once(&args, run, &root)?);
    }
    let median_of = |field: &str| {
        let mut values: Vec<f64> = runs.iter().filter_map(|run| run[field].as_f64()).collect();
        median(&mut values)
    };
    let fields = [
        "restore_seconds",
        "heal_seconds_after_grace",
        "heal_rate_bytes_per_second",
        "heal_rate_after_grace_bytes_per_second",
        "heal_rate_after_grace_vs_parallel_read",
        "healer_read_bytes_per_second",
        "survivors_sequential_read_bytes_per_second",
        "survivors_parallel_read_bytes_per_second",
        "heal_rate_vs_parallel_read",
        "healer_read_vs_parallel_read",
        "healer_read_vs_sequential_read",
    ];
    let medians: serde_json::Map<String, Value> = fields
        .iter()
        .map(|field| (format!("{field}_median"), json!(median_of(field))))
        .collect();
    let document = json!({
        "schema_version": 1,
        "workload": "heal",
        "cluster": "cairn cluster init defaults: 3 meta, 12 storage nodes in 4 AZs, 2 gateways, EC 6+3",
        "node_gib": args.node_gib,
        "object_mib": args.object_mib,
        "runs": runs,
        "medians": medians,
        "host": crate::s3::report::host_json(),
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
