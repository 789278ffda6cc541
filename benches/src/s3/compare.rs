//! `cairn-bench compare <workload>`: the same workload against two S3 endpoints in one run. Rounds
//! alternate between the targets, and the order flips every round (A B, B A, A B, …) so drift on a
//! shared machine (page cache, compaction, thermal) does not favour one side. Each round pair gives
//! a ratio A/B of operations per second; the report prints their min/median/max. With `--pid` /
//! `--peer-pid` it also records each server's peak resident memory (VmHWM from /proc) at the end,
//! and per measured round the CPU the servers (`--cpu-pid` / `--peer-cpu-pid`, default the same
//! pids), this client and the machine spent (see [`crate::cpu`]).

use super::client::{Addressing, TargetArgs};
use super::{Bench, LoadArgs, OutputArgs, SCHEMA_VERSION, WorkloadKind, plans, report};
use crate::load::LoadResult;
use clap::Args;
use serde_json::{Value, json};

#[derive(Args, Debug, Clone)]
pub struct PeerArgs {
    /// The second endpoint.
    #[arg(long)]
    pub peer_endpoint: String,
    #[arg(long, env = "PEER_ACCESS_KEY_ID")]
    pub peer_access_key: String,
    #[arg(long, env = "PEER_SECRET_ACCESS_KEY")]
    pub peer_secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    pub peer_region: String,
    #[arg(long, default_value = "cairn-bench")]
    pub peer_bucket: String,
    #[arg(long, value_enum, default_value = "path")]
    pub peer_addressing: Addressing,
}

#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    #[arg(value_enum)]
    pub workload: WorkloadKind,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Name of the first target in tables, plots and JSON.
    #[arg(long, default_value = "a")]
    pub name: String,
    #[arg(long, default_value = "b")]
    pub peer_name: String,
    /// Process id of the first target's server, for its peak memory.
    #[arg(long)]
    pub pid: Option<u32>,
    #[arg(long)]
    pub peer_pid: Option<u32>,
    /// Processes whose CPU time counts for the first target in each measured round (repeatable,
    /// e.g. an edge and the gateway behind it); default: `--pid`.
    #[arg(long = "cpu-pid")]
    pub cpu_pids: Vec<u32>,
    /// The same for the second target; default: `--peer-pid`.
    #[arg(long = "peer-cpu-pid")]
    pub peer_cpu_pids: Vec<u32>,
    /// Free text stored with each target, e.g. its durability settings.
    #[arg(long, default_value = "")]
    pub notes: String,
    #[arg(long, default_value = "")]
    pub peer_notes: String,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl PeerArgs {
    /// The second target; it trusts the first's `--ca-bundle`.
    fn target(&self, first: &TargetArgs) -> TargetArgs {
        TargetArgs {
            ca_bundle: first.ca_bundle.clone(),
            endpoint: self.peer_endpoint.clone(),
            access_key: self.peer_access_key.clone(),
            secret_key: self.peer_secret_key.clone(),
            region: self.peer_region.clone(),
            bucket: self.peer_bucket.clone(),
            addressing: self.peer_addressing,
        }
    }
}

/// VmHWM and VmRSS of `pid` in KiB, from `/proc/<pid>/status`.
pub fn memory_json(pid: Option<u32>) -> Value {
    let Some(pid) = pid else {
        return Value::Null;
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return json!({ "pid": pid, "error": "process not found" });
    };
    let field = |name: &str| -> Option<u64> {
        status.lines().find_map(|line| {
            line.strip_prefix(name)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    };
    json!({ "pid": pid, "vm_hwm_kib": field("VmHWM"), "vm_rss_kib": field("VmRSS") })
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let peer = args.peer.target(&args.target);
    let plans = plans(args.workload, &args.load, 3)?;
    let quiet = args.output.quiet;
    let mut workloads = Vec::new();
    for plan in &plans {
        let mut benches = [
            Bench::prepare(plan, &args.target, quiet)?,
            Bench::prepare(plan, &peer, quiet)?,
        ];
        let cpu_pids = |pids: &Vec<u32>, pid: Option<u32>| {
            if pids.is_empty() {
                pid.into_iter().collect()
            } else {
                pids.clone()
            }
        };
        benches[0].cpu.server_pids = cpu_pids(&args.cpu_pids, args.pid);
        benches[1].cpu.server_pids = cpu_pids(&args.peer_cpu_pids, args.peer_pid);
        let mut results: [Vec<LoadResult>; 2] = [Vec::new(), Vec::new()];
        let mut round_documents = Vec::new();
        let mut ratios = Vec::new();
        for round in 0..plan.rounds {
            let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for side in order {
                results[side].push(benches[side].round(round, quiet)?);
            }
            let (a, b) = (&results[0][round], &results[1][round]);
            let ratio = report::ops_per_second(a) / report::ops_per_second(b);
            ratios.push(ratio);
            let names = [&args.name, &args.peer_name];
            round_documents.push(json!({
                "order": [names[order[0]], names[order[1]]],
                "a": report::round_json(a)?,
                "b": report::round_json(b)?,
                "ratio_ops_per_second": ratio,
            }));
        }
        let ratio = report::spread(&ratios);
        let mut table = report::table(
            &plan.name(),
            &[
                (args.name.as_str(), &results[0]),
                (args.peer_name.as_str(), &results[1]),
            ],
        )?;
        table.push_str(&format!(
            "ratio {}/{} ops/s: min {:.2} median {:.2} max {:.2}\n",
            args.name,
            args.peer_name,
            ratio["min"].as_f64().unwrap_or(f64::NAN),
            ratio["median"].as_f64().unwrap_or(f64::NAN),
            ratio["max"].as_f64().unwrap_or(f64::NAN)
        ));
        eprint!("{table}");
        if let Some(directory) = &args.output.svg_dir {
            report::write_svgs(
                directory,
                &plan.name(),
                &[
                    (args.name.as_str(), &results[0]),
                    (args.peer_name.as_str(), &results[1]),
                ],
            )?;
        }
        workloads.push(json!({
            "name": plan.name(),
            "settings": plan.settings_json(),
            "a": report::summary_json(&results[0])?,
            "b": report::summary_json(&results[1])?,
            "ratio_a_over_b_ops_per_second": ratio,
            "rounds": round_documents,
        }));
    }
    let target_json = |name: &str, target: &TargetArgs, notes: &str, pid| {
        json!({
            "name": name,
            "endpoint": target.endpoint,
            "bucket": target.bucket,
            "addressing": format!("{:?}", target.addressing).to_lowercase(),
            "notes": notes,
            "memory_at_end": memory_json(pid),
        })
    };
    let document = json!({
        "schema": "cairn-bench/compare",
        "schema_version": SCHEMA_VERSION,
        "host": report::host_json(),
        "a": target_json(&args.name, &args.target, &args.notes, args.pid),
        "b": target_json(&args.peer_name, &peer, &args.peer_notes, args.peer_pid),
        "workloads": workloads,
    });
    report::emit(&document, args.output.json.as_deref())
}
