//! `cairn-bench tune`: starts a local Cairn (`cairn dev`, a fresh data directory per setting) once
//! for every combination of the swept knobs (EC codec and scheme, piece size, gateway executors,
//! storage-node executors), runs the chosen S3 workloads at each client concurrency against it,
//! and reports every figure plus the best setting per workload.
//!
//! Method: settings are measured one after another on the same machine in the same run, each on
//! an empty store, with the same workload plans (`cairn-bench s3`'s); a setting's figure for a
//! workload is the median operations/s over its rounds, and "best" is the highest median. The
//! spread (min/max over rounds) is kept beside it so a win inside the noise is visible as such.
//! Each `cairn dev` runs its background workers as usual (the scrubber included); that load is
//! part of every setting alike.

use crate::load::LoadResult;
use crate::s3::client::{Addressing, TargetArgs};
use crate::s3::{Bench, LoadArgs, OutputArgs, SCHEMA_VERSION, WorkloadKind, plans, report};
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct TuneArgs {
    /// The `cairn` binary to start (default: `cairn` next to this binary).
    #[arg(long)]
    pub cairn: Option<PathBuf>,
    /// Parent of the per-setting data directories (use a disk with O_DIRECT, not tmpfs); each
    /// is removed after its setting is measured.
    #[arg(long, default_value = "/var/tmp/cairn-tune")]
    pub data: PathBuf,
    /// Workloads to run against every setting (`cairn-bench s3` workload names).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "large-object,small-object"
    )]
    pub workloads: Vec<WorkloadKind>,
    /// Client concurrencies to run every workload at.
    #[arg(long, value_delimiter = ',', default_value = "8,32")]
    pub concurrencies: Vec<usize>,
    /// EC schemes (`<codec>:<k>+<m>`; `cairn dev` has 6 nodes, 2 per AZ, so k+m <= 6, m >= 2).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "isal-cauchy:4+2,rs-simd:4+2"
    )]
    pub schemes: Vec<String>,
    /// Piece sizes in KiB (a stripe holds k pieces of data).
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    pub piece_sizes_kib: Vec<u32>,
    /// Gateway executor counts (threads, one io_uring each).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub gateway_executors: Vec<usize>,
    /// Executors per storage node (each with its own shard log).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub storage_cores: Vec<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One point of the sweep.
#[derive(Clone, Debug, PartialEq)]
struct Setting {
    scheme: String,
    piece_size_kib: u32,
    gateway_executors: usize,
    storage_cores: usize,
}

impl Setting {
    fn label(&self) -> String {
        format!(
            "{} piece={}KiB gw={} storage-cores={}",
            self.scheme, self.piece_size_kib, self.gateway_executors, self.storage_cores
        )
    }

    fn json(&self) -> Value {
        json!({
            "ec_scheme": self.scheme,
            "piece_size_kib": self.piece_size_kib,
            "gateway_executors": self.gateway_executors,
            "storage_cores": self.storage_cores,
        })
    }
}

fn settings(args: &TuneArgs) -> Vec<Setting> {
    let mut all = Vec::new();
    for scheme in &args.schemes {
        for &piece_size_kib in &args.piece_sizes_kib {
            for &gateway_executors in &args.gateway_executors {
                for &storage_cores in &args.storage_cores {
                    all.push(Setting {
                        scheme: scheme.clone(),
                        piece_size_kib,
                        gateway_executors,
                        storage_cores,
                    });
                }
            }
        }
    }
    all
}

/// A running `cairn dev`, stopped (SIGTERM, then SIGKILL) and its data removed on drop.
struct DevServer {
    child: Child,
    data: PathBuf,
    endpoint: String,
}

const ACCESS_KEY: &str = "TUNEACCESSKEY0000001";
const SECRET_KEY: &str = "tune-secret-key-0000000000000000000000001";

impl DevServer {
    fn start(
        binary: &Path,
        parent: &Path,
        index: usize,
        setting: &Setting,
    ) -> anyhow::Result<Self> {
        let data = parent.join(format!("setting-{index}"));
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("removing an old {}", data.display()))?;
        }
        std::fs::create_dir_all(&data)?;
        let listen = free_address()?;
        let admin = free_address()?;
        let meta_port = free_address()?.port();
        let storage_base_port = consecutive_free_ports(6)?;
        let log = std::fs::File::create(data.with_extension("log"))?;
        let child = Command::new(binary)
            .arg("dev")
            .arg("--data")
            .arg(&data)
            .args(["--listen", &listen.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--meta-port", &meta_port.to_string()])
            .args(["--storage-base-port", &storage_base_port.to_string()])
            .args(["--ec-scheme", &setting.scheme])
            .args(["--piece-size-kib", &setting.piece_size_kib.to_string()])
            .args([
                "--gateway-executors",
                &setting.gateway_executors.to_string(),
            ])
            .args(["--storage-cores", &setting.storage_cores.to_string()])
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = DevServer {
            child,
            data,
            endpoint: format!("http://{listen}"),
        };
        server.wait_for(listen)?;
        Ok(server)
    }

    fn wait_for(&mut self, address: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "cairn dev exited ({status}) before listening; see {}",
                    self.data.with_extension("log").display()
                );
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("cairn dev did not listen on {address} within 120 s")
    }

    fn target(&self) -> TargetArgs {
        TargetArgs {
            endpoint: self.endpoint.clone(),
            access_key: ACCESS_KEY.to_owned(),
            secret_key: SECRET_KEY.to_owned(),
            region: "us-east-1".to_owned(),
            bucket: "cairn-tune".to_owned(),
            addressing: Addressing::Path,
            ca_bundle: None,
        }
    }

    fn peak_memory(&self) -> Value {
        crate::s3::compare::memory_json(Some(self.child.id()))
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        // SAFETY: kill(2) with our own child's pid and a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The first of `count` consecutive ports that are free right now.
fn consecutive_free_ports(count: u16) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let first = free_address()?.port();
        if first > u16::MAX - count {
            continue;
        }
        let listeners: Vec<_> = (first..first + count)
            .map_while(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if listeners.len() == usize::from(count) {
            return Ok(first);
        }
    }
    bail!("no {count} consecutive free ports on 127.0.0.1")
}

fn default_cairn_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe
        .parent()
        .context("the benchmark binary has no directory")?
        .join("cairn");
    anyhow::ensure!(
        binary.exists(),
        "{} not found: build it (cargo build --release) or pass --cairn",
        binary.display()
    );
    Ok(binary)
}

/// One measured (setting, plan) pair.
struct Measurement {
    setting_index: usize,
    plan_name: String,
    median_ops_per_second: f64,
    median_megabytes_per_second: f64,
    summary: Value,
}

fn median_of(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    crate::load::median(&mut values)
}

pub fn run(args: TuneArgs) -> anyhow::Result<()> {
    let binary = match &args.cairn {
        Some(path) => path.clone(),
        None => default_cairn_binary()?,
    };
    anyhow::ensure!(!args.concurrencies.is_empty(), "--concurrencies is empty");
    std::fs::create_dir_all(&args.data)?;
    let quiet = args.output.quiet;
    let settings = settings(&args);
    anyhow::ensure!(!settings.is_empty(), "nothing to sweep");
    let mut measurements = Vec::new();
    let mut setting_documents = Vec::new();
    for (index, setting) in settings.iter().enumerate() {
        eprintln!(
            "tune: setting {}/{}: {}",
            index + 1,
            settings.len(),
            setting.label()
        );
        let server = DevServer::start(&binary, &args.data, index, setting)?;
        let target = server.target();
        let mut plan_documents = Vec::new();
        for &workload in &args.workloads {
            for &concurrency in &args.concurrencies {
                let mut load = args.load.clone();
                load.concurrency = Some(concurrency);
                for plan in plans(workload, &load, 3)? {
                    let mut bench = Bench::prepare(&plan, &target, quiet)?;
                    bench.cpu.server_pids = vec![server.child.id()];
                    let rounds: Vec<LoadResult> = (0..plan.rounds)
                        .map(|round| bench.round(round, quiet))
                        .collect::<anyhow::Result<_>>()?;
                    let summary = report::summary_json(&rounds)?;
                    let measurement = Measurement {
                        setting_index: index,
                        plan_name: plan.name(),
                        median_ops_per_second: median_of(rounds.iter().map(report::ops_per_second)),
                        median_megabytes_per_second: median_of(
                            rounds.iter().map(report::megabytes_per_second),
                        ),
                        summary: summary.clone(),
                    };
                    eprintln!(
                        "  {:<28} {:>10.1} ops/s {:>9.1} MB/s",
                        measurement.plan_name,
                        measurement.median_ops_per_second,
                        measurement.median_megabytes_per_second
                    );
                    plan_documents.push(json!({
                        "name": plan.name(),
                        "settings": plan.settings_json(),
                        "summary": summary,
                    }));
                    measurements.push(measurement);
                }
            }
        }
        setting_documents.push(json!({
            "setting": setting.json(),
            "memory_at_end": server.peak_memory(),
            "workloads": plan_documents,
        }));
        drop(server);
    }
    let best = best_per_plan(&measurements, &settings);
    eprint!("{}", best_table(&measurements, &settings));
    let document = json!({
        "schema": "cairn-bench/tune",
        "schema_version": SCHEMA_VERSION,
        "host": report::host_json(),
        "cairn": binary.display().to_string(),
        "method": "each setting on a fresh `cairn dev`; figure = median ops/s over rounds; best = highest median",
        "settings": setting_documents,
        "best": best,
    });
    report::emit(&document, args.output.json.as_deref())
}

/// Plan names in first-seen order.
fn plan_names(measurements: &[Measurement]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for measurement in measurements {
        if !names.contains(&measurement.plan_name) {
            names.push(measurement.plan_name.clone());
        }
    }
    names
}

fn best_per_plan(measurements: &[Measurement], settings: &[Setting]) -> Value {
    let mut best = serde_json::Map::new();
    for name in plan_names(measurements) {
        let mut candidates: Vec<&Measurement> = measurements
            .iter()
            .filter(|measurement| measurement.plan_name == name)
            .collect();
        candidates.sort_by(|a, b| b.median_ops_per_second.total_cmp(&a.median_ops_per_second));
        let winner = candidates[0];
        let runner_up = candidates.get(1);
        best.insert(
            name,
            json!({
                "setting": settings[winner.setting_index].json(),
                "ops_per_second_median": winner.median_ops_per_second,
                "megabytes_per_second_median": winner.median_megabytes_per_second,
                "ops_per_second_spread": winner.summary["ops_per_second"],
                "margin_over_runner_up": runner_up
                    .map(|second| winner.median_ops_per_second / second.median_ops_per_second),
            }),
        );
    }
    Value::Object(best)
}

/// Per plan, every setting from best to worst, relative to the best.
fn best_table(measurements: &[Measurement], settings: &[Setting]) -> String {
    let mut text = String::new();
    for name in plan_names(measurements) {
        let mut rows: Vec<&Measurement> = measurements
            .iter()
            .filter(|measurement| measurement.plan_name == name)
            .collect();
        rows.sort_by(|a, b| b.median_ops_per_second.total_cmp(&a.median_ops_per_second));
        let top = rows[0].median_ops_per_second;
        text.push_str(&format!("\n{name}\n"));
        for row in rows {
            text.push_str(&format!(
                "  {:>10.1} ops/s {:>9.1} MB/s {:>5.2}x  {}\n",
                row.median_ops_per_second,
                row.median_megabytes_per_second,
                row.median_ops_per_second / top,
                settings[row.setting_index].label()
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurement(setting_index: usize, plan_name: &str, ops: f64) -> Measurement {
        Measurement {
            setting_index,
            plan_name: plan_name.to_owned(),
            median_ops_per_second: ops,
            median_megabytes_per_second: ops / 10.0,
            summary: json!({ "ops_per_second": { "median": ops } }),
        }
    }

    fn setting(scheme: &str) -> Setting {
        Setting {
            scheme: scheme.to_owned(),
            piece_size_kib: 256,
            gateway_executors: 1,
            storage_cores: 1,
        }
    }

    #[test]
    fn the_best_setting_is_chosen_per_workload() {
        let settings = vec![setting("isal-cauchy:4+2"), setting("rs-simd:4+2")];
        let measurements = vec![
            measurement(0, "put-16MiB-c8", 10.0),
            measurement(1, "put-16MiB-c8", 12.0),
            measurement(0, "get-4KiB-c32", 900.0),
            measurement(1, "get-4KiB-c32", 450.0),
        ];
        let best = best_per_plan(&measurements, &settings);
        assert_eq!(best["put-16MiB-c8"]["setting"]["ec_scheme"], "rs-simd:4+2");
        assert_eq!(best["put-16MiB-c8"]["margin_over_runner_up"], 1.2);
        assert_eq!(
            best["get-4KiB-c32"]["setting"]["ec_scheme"],
            "isal-cauchy:4+2"
        );
        assert_eq!(best["get-4KiB-c32"]["margin_over_runner_up"], 2.0);
        let table = best_table(&measurements, &settings);
        let put = table.find("put-16MiB-c8").unwrap();
        let rs = table[put..].find("rs-simd").unwrap();
        let isal = table[put..].find("isal-cauchy").unwrap();
        assert!(rs < isal, "best first: {table}");
    }

    #[derive(clap::Parser)]
    struct DefaultLoad {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn the_sweep_is_the_cartesian_product() {
        use clap::Parser;
        let args = TuneArgs {
            cairn: None,
            data: PathBuf::from("/nonexistent"),
            workloads: vec![WorkloadKind::Put],
            concurrencies: vec![8],
            schemes: vec!["a".into(), "b".into()],
            piece_sizes_kib: vec![256, 1024],
            gateway_executors: vec![1, 2],
            storage_cores: vec![1],
            load: DefaultLoad::parse_from(["tune"]).load,
            output: OutputArgs {
                json: None,
                svg_dir: None,
                quiet: true,
            },
        };
        let all = settings(&args);
        assert_eq!(all.len(), 8);
        assert_eq!(all[0].label(), "a piece=256KiB gw=1 storage-cores=1");
        assert_eq!(all[7].label(), "b piece=1024KiB gw=2 storage-cores=1");
    }

    // Workload names parse as the CLI spells them.
    #[test]
    fn workload_names_parse() {
        use clap::ValueEnum;
        assert_eq!(
            WorkloadKind::from_str("large-object", false),
            Ok(WorkloadKind::LargeObject)
        );
    }
}
