//! `cairn-bench edge-routing`: the cost of one routing decision of the edge, in ns per request,
//! for the WASM module as the edge runs it (fresh sandboxed instance per call, fuel and memory cap,
//! record encode/decode) next to the same routing code called natively, in the same run.
//!
//! Two shapes: `one_call` (the bucket's region is already in the record: one module call) and
//! `with_lookup` (the first call asks for the bucket's region, the second decides: what the edge
//! does on every bucket request, the lookup itself being a cache hit outside the module).

use std::path::PathBuf;
use std::time::Instant;

use cairn_edge::{ModuleLimits, RoutingModule};
use cairn_edge_routing::{BucketEntry, Decision, Policy, RegionEntry, RequestRecord, route};
use serde_json::json;

#[derive(clap::Args)]
pub struct EdgeRoutingArgs {
    /// The module built by edge-wasm/build-wasm.sh.
    #[arg(long, default_value = "edge-wasm/build/cairn_edge_routing.wasm")]
    module: PathBuf,
    /// Decisions per run.
    #[arg(long, default_value_t = 20_000)]
    iterations: u32,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

fn request(with_bucket: bool) -> RequestRecord {
    RequestRecord {
        method: "GET".into(),
        host: "localhost:8443".into(),
        path: "/photos/2026/11/cat.jpg".into(),
        headers: vec![("cache-control".into(), "max-age=60".into())],
        policy: Policy {
            virtual_host_suffixes: vec!["s3.localhost".into()],
            default_region: "us-east-1".into(),
            cache_ttl_ms: 2_000,
        },
        regions: vec![
            RegionEntry {
                name: "us-east-1".into(),
                endpoint: "127.0.0.1:9000".into(),
            },
            RegionEntry {
                name: "eu-west-1".into(),
                endpoint: "127.0.0.1:9100".into(),
            },
        ],
        buckets: if with_bucket {
            vec![BucketEntry {
                bucket: "photos".into(),
                region: Some("eu-west-1".into()),
            }]
        } else {
            Vec::new()
        },
        ..RequestRecord::default()
    }
}

/// The edge's decision procedure with `decide` as the routing function.
fn decide(
    decide: &mut dyn FnMut(&RequestRecord) -> anyhow::Result<Decision>,
    record: &RequestRecord,
) -> anyhow::Result<Decision> {
    let mut record = record.clone();
    for _ in 0..2 {
        match decide(&record)? {
            Decision::NeedBucketRegion { bucket } => record.buckets.push(BucketEntry {
                bucket,
                region: Some("eu-west-1".into()),
            }),
            decision => return Ok(decision),
        }
    }
    anyhow::bail!("no decision after a lookup")
}

fn median_ns_per_decision(
    args: &EdgeRoutingArgs,
    record: &RequestRecord,
    decide_with: &mut dyn FnMut(&RequestRecord) -> anyhow::Result<Decision>,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let expected = decide(decide_with, record)?;
    anyhow::ensure!(
        matches!(&expected, Decision::Forward(forward) if forward.region == "eu-west-1"),
        "unexpected decision {expected:?}"
    );
    let mut runs = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        for _ in 0..args.iterations {
            std::hint::black_box(decide(decide_with, std::hint::black_box(record))?);
        }
        runs.push(start.elapsed().as_nanos() as f64 / f64::from(args.iterations));
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok((sorted[sorted.len() / 2], runs))
}

pub fn run(args: EdgeRoutingArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.runs >= 1 && args.iterations >= 1,
        "need runs and iterations"
    );
    // The edge's defaults.
    let module = RoutingModule::load(
        &args.module,
        ModuleLimits {
            fuel: 10_000_000,
            memory_bytes: 16 << 20,
        },
    )
    .map_err(|error| anyhow::anyhow!("{error} (build it with edge-wasm/build-wasm.sh)"))?;
    let mut wasm = |record: &RequestRecord| module.route(record).map_err(anyhow::Error::from);
    let mut native = |record: &RequestRecord| Ok(route(record));
    let mut figures = serde_json::Map::new();
    for (shape, with_bucket) in [("one_call", true), ("with_lookup", false)] {
        let record = request(with_bucket);
        eprintln!("edge-routing: {shape} (wasm, native)");
        let (wasm_ns, wasm_runs) = median_ns_per_decision(&args, &record, &mut wasm)?;
        let (native_ns, native_runs) = median_ns_per_decision(&args, &record, &mut native)?;
        figures.insert(
            shape.to_owned(),
            json!({
                "wasm_ns_per_decision_median": wasm_ns,
                "wasm_ns_per_decision_runs": wasm_runs,
                "native_ns_per_decision_median": native_ns,
                "native_ns_per_decision_runs": native_runs,
                "wasm_over_native_ratio": wasm_ns / native_ns,
            }),
        );
    }
    let document = json!({
        "workload": "edge-routing",
        "module": args.module.display().to_string(),
        "iterations_per_run": args.iterations,
        "runs": args.runs,
        "sandbox": "fresh wasmtime instance per call, fuel 10M, memory cap 16 MiB (cairn edge defaults)",
        "results": figures,
    });
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
