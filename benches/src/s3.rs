//! `cairn-bench s3 <workload>`: S3 load against any endpoint (SigV4, path-style or
//! virtual-host-style). One workload per run: put, get, range-get, mixed (ratios), list,
//! multipart, delete, and the small-object / large-object presets (PUT then GET of 4 KiB objects
//! at concurrency 32, or of 16 MiB objects at concurrency 8).
//!
//! Model: a run has a key space of `--keys` objects under a fresh prefix; the size of key `i` is
//! a pure function of `i` and the seed (drawn from `--size`), so a GET knows the length it must
//! read back. Workloads that read, list or delete first PUT the key space (untimed). Each round
//! is an optional warm-up (discarded) and a measured phase that stops at `--seconds` or
//! `--operations`, whichever comes first. Workers keep their own HDR histograms, merged at the
//! end. Output: a JSON document (versioned schema) on stdout or `--json`, a human table on
//! stderr, SVG plots with `--svg-dir`.

pub mod client;
pub mod compare;
pub mod report;
pub mod sigv4;

use crate::load::{LoadResult, LoadSpec, Outcome, run_load};
use anyhow::Context;
use clap::{Args, ValueEnum};
use client::{Client, TargetArgs};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// The version of the JSON documents `s3` and `compare` print. Bump it when a field changes
/// meaning or goes away; adding fields keeps it.
pub const SCHEMA_VERSION: u64 = 2;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Put,
    Get,
    RangeGet,
    /// A mix of get, put, range-get and list by `--mix` ratios.
    Mixed,
    /// ListObjectsV2 of the whole key space, following continuation tokens.
    List,
    Multipart,
    Delete,
    /// Preset: PUT then GET of 4 KiB objects at concurrency 32.
    SmallObject,
    /// Preset: PUT then GET of 16 MiB objects at concurrency 8.
    LargeObject,
}

/// One kind of request a workload measures; the index into every run's histogram list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Put = 0,
    Get = 1,
    RangeGet = 2,
    List = 3,
    Multipart = 4,
    Delete = 5,
}

const OPERATION_NAMES: [&str; 6] = ["put", "get", "range-get", "list", "multipart", "delete"];

impl Operation {
    fn name(self) -> &'static str {
        OPERATION_NAMES[self as usize]
    }

    fn parse(name: &str) -> anyhow::Result<Operation> {
        Ok(match name {
            "put" => Operation::Put,
            "get" => Operation::Get,
            "range-get" => Operation::RangeGet,
            "list" => Operation::List,
            other => anyhow::bail!("--mix takes get, put, range-get and list, not {other:?}"),
        })
    }
}

/// How the load is shaped; shared by `s3` and `compare`.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// Concurrent workers, one connection each (default: 32 for small-object, 8 otherwise).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds per measured phase (default 10 when --operations is not given either).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Operations per measured phase (the phase stops at whichever limit comes first).
    #[arg(long)]
    pub operations: Option<u64>,
    /// Object sizes: `4KiB` (fixed), `4KiB-1MiB` (uniform) or `4KiB:90,1MiB:10` (weighted).
    /// Default: 4KiB, or 16MiB for large-object.
    #[arg(long)]
    pub size: Option<String>,
    /// Objects in the key space (default: 1000, or 16 for large-object).
    #[arg(long)]
    pub keys: Option<u64>,
    /// Seconds of discarded load before each measured phase.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// Measured rounds (default 1 for `s3`, 3 for `compare`).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Ratios of the mixed workload, e.g. `get=70,put=20,range-get=5,list=5`.
    #[arg(long, default_value = "get=80,put=20")]
    pub mix: String,
    /// Bytes per range-get (clamped to the object size).
    #[arg(long, default_value = "64KiB")]
    pub range_size: String,
    /// Part size of the multipart workload.
    #[arg(long, default_value = "8MiB")]
    pub part_size: String,
    /// Keys per ListObjectsV2 page.
    #[arg(long, default_value_t = 1000)]
    pub page_size: u32,
    /// Seed of object sizes, range offsets and mixed choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Where results go.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Write the JSON document here instead of stdout.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write SVG plots (throughput over time, latency CDF) into this directory.
    #[arg(long)]
    pub svg_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args, Debug, Clone)]
pub struct S3Args {
    #[arg(value_enum)]
    pub workload: WorkloadKind,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Server processes whose CPU time each measured round records (repeatable; see
    /// `crate::cpu`).
    #[arg(long = "cpu-pid")]
    pub cpu_pids: Vec<u32>,
}

/// Object sizes as a distribution over key indices.
#[derive(Clone, Debug, PartialEq)]
pub enum SizeDistribution {
    Fixed(u64),
    Uniform(u64, u64),
    /// (size, weight) pairs.
    Weighted(Vec<(u64, u64)>),
}

impl SizeDistribution {
    pub fn parse(text: &str) -> anyhow::Result<SizeDistribution> {
        if text.contains(':') {
            let pairs = text
                .split(',')
                .map(|pair| {
                    let (size, weight) = pair.split_once(':').context("size:weight")?;
                    Ok((parse_bytes(size)?, weight.trim().parse()?))
                })
                .collect::<anyhow::Result<Vec<(u64, u64)>>>()?;
            anyhow::ensure!(
                pairs.iter().map(|(_, weight)| weight).sum::<u64>() > 0,
                "weights must not all be zero"
            );
            Ok(SizeDistribution::Weighted(pairs))
        } else if let Some((low, high)) = text.split_once('-') {
            let (low, high) = (parse_bytes(low)?, parse_bytes(high)?);
            anyhow::ensure!(low <= high, "size range {text} is empty");
            Ok(SizeDistribution::Uniform(low, high))
        } else {
            Ok(SizeDistribution::Fixed(parse_bytes(text)?))
        }
    }

    pub fn max(&self) -> u64 {
        match self {
            SizeDistribution::Fixed(size) => *size,
            SizeDistribution::Uniform(_, high) => *high,
            SizeDistribution::Weighted(pairs) => {
                pairs.iter().map(|(size, _)| *size).max().unwrap_or(0)
            }
        }
    }

    /// The size of key `index`, a pure function of the index and the seed.
    pub fn size_of(&self, index: u64, seed: u64) -> u64 {
        let random = mix64(index ^ mix64(seed));
        match self {
            SizeDistribution::Fixed(size) => *size,
            SizeDistribution::Uniform(low, high) => low + random % (high - low + 1),
            SizeDistribution::Weighted(pairs) => {
                let total: u64 = pairs.iter().map(|(_, weight)| weight).sum();
                let mut pick = random % total;
                for (size, weight) in pairs {
                    if pick < *weight {
                        return *size;
                    }
                    pick -= weight;
                }
                unreachable!("pick < total")
            }
        }
    }
}

/// `4096`, `4KiB`, `16MiB`, `1GiB`, `4K`, `1M` (binary units).
pub fn parse_bytes(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits]
        .parse()
        .with_context(|| format!("a byte count, not {text:?}"))?;
    let unit = match &text[digits..] {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => anyhow::bail!("unknown unit {other:?} in {text:?}"),
    };
    Ok(number * unit)
}

/// splitmix64's finaliser: a cheap, well-mixed hash for deterministic choices.
fn mix64(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// One measured workload with every setting resolved (a preset expands to two plans).
#[derive(Clone, Debug)]
pub struct Plan {
    pub workload: WorkloadKind,
    /// The single operation, or `None` for mixed.
    pub operation: Option<Operation>,
    pub concurrency: usize,
    pub seconds: Option<f64>,
    pub operations: Option<u64>,
    pub size: SizeDistribution,
    pub size_text: String,
    pub keys: u64,
    pub warmup_seconds: f64,
    pub rounds: usize,
    /// (operation, cumulative weight) for mixed.
    pub mix: Vec<(Operation, u64)>,
    pub range_size_bytes: u64,
    pub part_size_bytes: u64,
    pub page_size: u32,
    pub seed: u64,
}

impl Plan {
    pub fn name(&self) -> String {
        let operation = match self.operation {
            Some(operation) => operation.name(),
            None => "mixed",
        };
        format!("{operation}-{}-c{}", self.size_text, self.concurrency)
    }

    /// Whether the key space must exist before the measured phase.
    fn needs_preload(&self) -> bool {
        !matches!(
            self.operation,
            Some(Operation::Put) | Some(Operation::Multipart)
        )
    }

    pub fn settings_json(&self) -> Value {
        json!({
            "workload": format!("{:?}", self.workload).to_lowercase(),
            "operation": self.operation.map(Operation::name).unwrap_or("mixed"),
            "concurrency": self.concurrency,
            "seconds_per_round": self.seconds,
            "operations_per_round": self.operations,
            "object_size": self.size_text,
            "keys": self.keys,
            "warmup_seconds": self.warmup_seconds,
            "rounds": self.rounds,
            "mix": self.mix.iter().map(|(operation, weight)| json!([operation.name(), weight])).collect::<Vec<_>>(),
            "range_size_bytes": self.range_size_bytes,
            "part_size_bytes": self.part_size_bytes,
            "page_size": self.page_size,
            "seed": self.seed,
        })
    }
}

/// Expands a workload (and presets) into plans.
pub fn plans(
    workload: WorkloadKind,
    args: &LoadArgs,
    default_rounds: usize,
) -> anyhow::Result<Vec<Plan>> {
    let (operations, default_size, default_concurrency, default_keys): (
        Vec<Option<Operation>>,
        &str,
        usize,
        u64,
    ) = match workload {
        WorkloadKind::Put => (vec![Some(Operation::Put)], "4KiB", 8, 1000),
        WorkloadKind::Get => (vec![Some(Operation::Get)], "4KiB", 8, 1000),
        WorkloadKind::RangeGet => (vec![Some(Operation::RangeGet)], "1MiB", 8, 100),
        WorkloadKind::Mixed => (vec![None], "4KiB", 8, 1000),
        WorkloadKind::List => (vec![Some(Operation::List)], "0", 8, 1000),
        WorkloadKind::Multipart => (vec![Some(Operation::Multipart)], "64MiB", 8, 16),
        WorkloadKind::Delete => (vec![Some(Operation::Delete)], "4KiB", 8, 1000),
        WorkloadKind::SmallObject => (
            vec![Some(Operation::Put), Some(Operation::Get)],
            "4KiB",
            32,
            1000,
        ),
        WorkloadKind::LargeObject => (
            vec![Some(Operation::Put), Some(Operation::Get)],
            "16MiB",
            8,
            16,
        ),
    };
    let size_text = args.size.clone().unwrap_or_else(|| default_size.to_owned());
    let size = SizeDistribution::parse(&size_text)?;
    let mut mix = Vec::new();
    let mut total = 0;
    for pair in args.mix.split(',') {
        let (name, weight) = pair
            .split_once('=')
            .context("--mix takes name=weight pairs")?;
        total += weight.trim().parse::<u64>()?;
        mix.push((Operation::parse(name.trim())?, total));
    }
    anyhow::ensure!(total > 0, "--mix weights must not all be zero");
    let seconds = match (args.seconds, args.operations) {
        (None, None) => Some(10.0),
        (seconds, _) => seconds,
    };
    let keys = args.keys.unwrap_or(default_keys);
    anyhow::ensure!(keys > 0, "--keys must be positive");
    operations
        .into_iter()
        .map(|operation| {
            Ok(Plan {
                workload,
                operation,
                concurrency: args.concurrency.unwrap_or(default_concurrency).max(1),
                seconds,
                operations: args.operations,
                size: size.clone(),
                size_text: size_text.clone(),
                keys,
                // A delete phase consumes its keys; a warm-up would delete them unmeasured.
                warmup_seconds: if operation == Some(Operation::Delete) {
                    0.0
                } else {
                    args.warmup_seconds
                },
                rounds: args.rounds.unwrap_or(default_rounds).max(1),
                mix: mix.clone(),
                range_size_bytes: parse_bytes(&args.range_size)?.max(1),
                part_size_bytes: parse_bytes(&args.part_size)?.max(1),
                page_size: args.page_size.max(1),
                seed: args.seed,
            })
        })
        .collect()
}

/// A plan bound to one target: the key prefix and the shared payload.
pub struct Bench {
    pub plan: Plan,
    pub target: TargetArgs,
    prefix: String,
    /// One incompressible-looking buffer, the largest object plus a slack for per-key offsets.
    payload: Arc<Vec<u8>>,
    /// The target's server processes whose CPU each measured phase records (none: not recorded).
    pub cpu: crate::cpu::CpuProbe,
}

const PAYLOAD_SLACK: usize = 4096;

impl Bench {
    /// Creates the bucket and, for workloads that read, the key space (untimed).
    pub fn prepare(plan: &Plan, target: &TargetArgs, quiet: bool) -> anyhow::Result<Bench> {
        let client = Client::new(target);
        client.create_bucket()?;
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos();
        let bench = Bench {
            prefix: format!("bench-{unique:x}/{}", plan.name()),
            payload: Arc::new(payload_bytes(plan.size.max() as usize + PAYLOAD_SLACK)),
            plan: plan.clone(),
            target: target.clone(),
            cpu: crate::cpu::CpuProbe::default(),
        };
        if plan.needs_preload() && plan.operation != Some(Operation::Delete) {
            bench.preload(quiet)?;
        }
        Ok(bench)
    }

    fn key(&self, index: u64) -> String {
        format!("{}/obj-{index:08}", self.prefix)
    }

    fn body(&self, index: u64) -> &[u8] {
        let size = self.plan.size.size_of(index, self.plan.seed) as usize;
        let offset = (mix64(index) as usize % PAYLOAD_SLACK) & !7;
        &self.payload[offset..offset + size]
    }

    /// PUTs every key of the key space once.
    fn preload(&self, quiet: bool) -> anyhow::Result<()> {
        let spec = LoadSpec {
            concurrency: self.plan.concurrency,
            seconds: None,
            operations: Some(self.plan.keys),
            kinds: OPERATION_NAMES.to_vec(),
            progress_label: (!quiet).then(|| format!("{} preload", self.target.endpoint)),
        };
        let this = self.shared();
        run_load(&spec, move |_| Ok(Client::new(&this.target)), {
            let this = self.shared();
            move |client: &mut Client, _, sequence| {
                let body = this.body(sequence);
                client.put(&this.key(sequence), body)?;
                Ok(Some(Outcome {
                    kind: Operation::Put as usize,
                    bytes: body.len() as u64,
                    items: 1,
                }))
            }
        })?;
        Ok(())
    }

    /// A cheap copy for the worker closures (the payload is shared).
    fn shared(&self) -> Arc<Bench> {
        Arc::new(Bench {
            plan: self.plan.clone(),
            target: self.target.clone(),
            prefix: self.prefix.clone(),
            payload: self.payload.clone(),
            cpu: self.cpu.clone(),
        })
    }

    /// One round: warm-up (discarded), then the measured phase.
    pub fn round(&self, round: usize, quiet: bool) -> anyhow::Result<LoadResult> {
        if self.plan.operation == Some(Operation::Delete) {
            self.preload(quiet)?;
        }
        if self.plan.warmup_seconds > 0.0 {
            self.phase(
                Some(self.plan.warmup_seconds),
                None,
                (!quiet).then(|| format!("{} {} warm-up", self.target.endpoint, self.plan.name())),
            )?;
        }
        let operations = match self.plan.operation {
            // A delete round removes each key once.
            Some(Operation::Delete) => {
                Some(self.plan.operations.unwrap_or(u64::MAX).min(self.plan.keys))
            }
            _ => self.plan.operations,
        };
        let cpu_before = self.cpu.snapshot();
        let mut result = self.phase(
            self.plan.seconds,
            operations,
            (!quiet).then(|| {
                format!(
                    "{} {} round {}/{}",
                    self.target.endpoint,
                    self.plan.name(),
                    round + 1,
                    self.plan.rounds
                )
            }),
        )?;
        result.cpu = Some(self.cpu.usage(&cpu_before, &self.cpu.snapshot()));
        Ok(result)
    }

    fn phase(
        &self,
        seconds: Option<f64>,
        operations: Option<u64>,
        progress_label: Option<String>,
    ) -> anyhow::Result<LoadResult> {
        let spec = LoadSpec {
            concurrency: self.plan.concurrency,
            seconds,
            operations,
            kinds: OPERATION_NAMES.to_vec(),
            progress_label,
        };
        let target = self.target.clone();
        let this = self.shared();
        run_load(
            &spec,
            move |_| Ok(Client::new(&target)),
            move |client: &mut Client, _, sequence| this.operate(client, sequence).map(Some),
        )
    }

    /// Operation number `sequence` of a phase.
    fn operate(&self, client: &Client, sequence: u64) -> anyhow::Result<Outcome> {
        let plan = &self.plan;
        let random = mix64(sequence ^ mix64(plan.seed ^ 0x5eed));
        let operation = plan.operation.unwrap_or_else(|| {
            let total = plan.mix.last().map(|(_, total)| *total).unwrap_or(1);
            let pick = random % total;
            plan.mix
                .iter()
                .find(|(_, cumulative)| pick < *cumulative)
                .map(|(operation, _)| *operation)
                .unwrap_or(Operation::Get)
        });
        // Reads pick keys at random; writes walk the key space so every key gets written.
        let index = match operation {
            Operation::Get | Operation::RangeGet => mix64(random) % plan.keys,
            _ => sequence % plan.keys,
        };
        let key = self.key(index);
        let size = plan.size.size_of(index, plan.seed);
        let (bytes, items) = match operation {
            Operation::Put => {
                client.put(&key, self.body(index))?;
                (size, 1)
            }
            Operation::Get => {
                let read = client.get(&key, None)?;
                anyhow::ensure!(read == size, "GET {key}: {read} bytes, expected {size}");
                (read, 1)
            }
            Operation::RangeGet => {
                let length = plan.range_size_bytes.min(size);
                anyhow::ensure!(length > 0, "range-get needs objects of at least one byte");
                let first = mix64(random ^ 1) % (size - length + 1);
                let read = client.get(&key, Some((first, first + length - 1)))?;
                anyhow::ensure!(
                    read == length,
                    "GET {key} range: {read} bytes, expected {length}"
                );
                (read, 1)
            }
            Operation::List => {
                let listing = client.list(&format!("{}/", self.prefix), plan.page_size)?;
                if plan.operation == Some(Operation::List) {
                    // Nothing else writes under the prefix: every listing sees the whole key space.
                    anyhow::ensure!(
                        listing.keys == plan.keys,
                        "LIST saw {} keys, expected {}",
                        listing.keys,
                        plan.keys
                    );
                }
                (0, listing.keys)
            }
            Operation::Multipart => {
                let parts =
                    client.multipart(&key, self.body(index), plan.part_size_bytes as usize)?;
                (size, parts)
            }
            Operation::Delete => {
                client.delete(&key)?;
                (0, 1)
            }
        };
        Ok(Outcome {
            kind: operation as usize,
            bytes,
            items,
        })
    }
}

pub fn run(args: S3Args) -> anyhow::Result<()> {
    let plans = plans(args.workload, &args.load, 1)?;
    let mut workloads = Vec::new();
    let mut svg_inputs = Vec::new();
    for plan in &plans {
        let mut bench = Bench::prepare(plan, &args.target, args.output.quiet)?;
        bench.cpu.server_pids = args.cpu_pids.clone();
        let mut rounds = Vec::new();
        for round in 0..plan.rounds {
            rounds.push(bench.round(round, args.output.quiet)?);
        }
        let summary = report::summary_json(&rounds)?;
        eprint!(
            "{}",
            report::table(&plan.name(), &[(args.target.endpoint.as_str(), &rounds)])?
        );
        workloads.push(json!({
            "name": plan.name(),
            "settings": plan.settings_json(),
            "summary": summary,
            "rounds": rounds.iter().map(report::round_json).collect::<anyhow::Result<Vec<_>>>()?,
        }));
        svg_inputs.push((plan.name(), rounds));
    }
    if let Some(directory) = &args.output.svg_dir {
        for (name, rounds) in &svg_inputs {
            report::write_svgs(directory, name, &[(args.target.endpoint.as_str(), rounds)])?;
        }
    }
    let document = json!({
        "schema": "cairn-bench/s3",
        "schema_version": SCHEMA_VERSION,
        "endpoint": args.target.endpoint,
        "bucket": args.target.bucket,
        "addressing": format!("{:?}", args.target.addressing).to_lowercase(),
        "host": report::host_json(),
        "workloads": workloads,
    });
    report::emit(&document, args.output.json.as_deref())
}

/// Incompressible-looking payload (xorshift), generated once per run.
fn payload_bytes(size: usize) -> Vec<u8> {
    xorshift_bytes(0x9e37_79b9_7f4a_7c15, size)
}

/// `size` bytes of the xorshift64 stream from `seed` (non-zero): incompressible-looking, and
/// different for every seed.
pub fn xorshift_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(size + 8);
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_and_size_distributions() {
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert_eq!(parse_bytes("4KiB").unwrap(), 4096);
        assert_eq!(parse_bytes("16MiB").unwrap(), 16 << 20);
        assert!(parse_bytes("4XB").is_err());
        assert_eq!(
            SizeDistribution::parse("1M").unwrap(),
            SizeDistribution::Fixed(1 << 20)
        );
        let uniform = SizeDistribution::parse("1KiB-2KiB").unwrap();
        for index in 0..1000 {
            let size = uniform.size_of(index, 7);
            assert!((1024..=2048).contains(&size));
            assert_eq!(
                size,
                uniform.size_of(index, 7),
                "a pure function of the key"
            );
        }
        let weighted = SizeDistribution::parse("4KiB:3,1MiB:1").unwrap();
        let large = (0..4000)
            .filter(|&i| weighted.size_of(i, 1) == 1 << 20)
            .count();
        assert!((800..1200).contains(&large), "about a quarter: {large}");
        assert_eq!(weighted.max(), 1 << 20);
    }

    #[test]
    fn presets_expand_to_put_then_get() {
        let args = LoadArgs {
            concurrency: None,
            seconds: None,
            operations: None,
            size: None,
            keys: None,
            warmup_seconds: 1.0,
            rounds: None,
            mix: "get=70,put=20,list=10".into(),
            range_size: "64KiB".into(),
            part_size: "8MiB".into(),
            page_size: 1000,
            seed: 1,
        };
        let large = plans(WorkloadKind::LargeObject, &args, 3).unwrap();
        assert_eq!(large.len(), 2);
        assert_eq!(large[0].operation, Some(Operation::Put));
        assert_eq!(large[1].operation, Some(Operation::Get));
        assert_eq!(large[0].size, SizeDistribution::Fixed(16 << 20));
        assert_eq!((large[0].concurrency, large[0].rounds), (8, 3));
        assert_eq!(large[0].seconds, Some(10.0));
        let mixed = plans(WorkloadKind::Mixed, &args, 1).unwrap();
        assert_eq!(
            mixed[0].mix,
            vec![
                (Operation::Get, 70),
                (Operation::Put, 90),
                (Operation::List, 100)
            ]
        );
        let bad = LoadArgs {
            mix: "delete=1".into(),
            ..args
        };
        assert!(plans(WorkloadKind::Mixed, &bad, 1).is_err());
    }
}
