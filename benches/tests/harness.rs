//! The S3 harness against a real `cairn dev`: `s3 small-object` and `compare` (the same endpoint
//! on both sides) must print valid JSON of the current schema with non-zero counts, and the SVG
//! plots must be written. Correctness only: no figure is asserted.
//!
//! The `cairn` binary is the one Cargo built next to `cairn-bench` (`cargo test --workspace`
//! builds both), or `CAIRN_BIN`.

use cairn_tests::CairnDev;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn cairn_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CAIRN_BIN") {
        return path.into();
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_cairn-bench"));
    let cairn = bench.with_file_name("cairn");
    assert!(
        cairn.exists(),
        "{} missing: build it (cargo build -p cairn) or set CAIRN_BIN",
        cairn.display()
    );
    cairn
}

/// Runs `cairn-bench` with `args` and the environment `env`; the JSON document it printed.
fn run_bench(args: &[&str], env: &[(&str, &str)]) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-bench"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run cairn-bench");
    assert!(
        output.status.success(),
        "cairn-bench {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON document on stdout")
}

/// `cairn-bench` against `dev`, with its root keys for both endpoints.
fn bench(dev: &CairnDev, args: &[&str]) -> Value {
    run_bench(
        args,
        &[
            ("AWS_ACCESS_KEY_ID", &dev.access_key),
            ("AWS_SECRET_ACCESS_KEY", &dev.secret_key),
            ("PEER_ACCESS_KEY_ID", &dev.access_key),
            ("PEER_SECRET_ACCESS_KEY", &dev.secret_key),
        ],
    )
}

fn positive(value: &Value) -> bool {
    value.as_f64().is_some_and(|number| number > 0.0)
}

#[test]
fn s3_and_compare_against_cairn_dev() {
    let directory = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(&cairn_binary(), directory.path());
    let endpoint = dev.url();
    let svg = directory.path().join("svg");
    let small = bench(
        &dev,
        &[
            "s3",
            "small-object",
            "--endpoint",
            &endpoint,
            "--concurrency",
            "4",
            "--keys",
            "20",
            "--seconds",
            "1",
            "--warmup-seconds",
            "0.2",
            "--quiet",
            "--svg-dir",
            svg.to_str().unwrap(),
        ],
    );
    assert_eq!(small["schema"], "cairn-bench/s3");
    assert_eq!(small["schema_version"], 2);
    let workloads = small["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2, "PUT then GET");
    for (workload, operation) in workloads.iter().zip(["put", "get"]) {
        assert_eq!(workload["settings"]["operation"], operation);
        let round = &workload["rounds"][0];
        assert!(
            positive(&round["by_operation"][operation]["operations"]),
            "{round}"
        );
        assert_eq!(
            round["by_operation"][operation]["bytes"].as_u64().unwrap() % 4096,
            0
        );
        assert!(positive(&workload["summary"]["ops_per_second"]["median"]));
        assert!(positive(&workload["summary"]["latency_ms"]["p99"]));
        let name = workload["name"].as_str().unwrap();
        for plot in ["throughput", "latency-cdf"] {
            let text = std::fs::read_to_string(svg.join(format!("{name}-{plot}.svg"))).unwrap();
            assert!(text.contains("<polyline"), "{name}-{plot}.svg has no line");
        }
    }

    // The list workload checks every listing sees the whole key space.
    let list = bench(
        &dev,
        &[
            "s3",
            "list",
            "--endpoint",
            &endpoint,
            "--keys",
            "30",
            "--page-size",
            "7",
            "--operations",
            "5",
            "--warmup-seconds",
            "0",
            "--quiet",
        ],
    );
    let round = &list["workloads"][0]["rounds"][0]["by_operation"]["list"];
    assert_eq!(round["operations"], 5);
    assert_eq!(round["items"], 150);

    let compared = bench(
        &dev,
        &[
            "compare",
            "get",
            "--endpoint",
            &endpoint,
            "--peer-endpoint",
            &endpoint,
            "--peer-bucket",
            "cairn-bench-peer",
            "--pid",
            &dev.process.pid().to_string(),
            "--keys",
            "10",
            "--operations",
            "40",
            "--rounds",
            "2",
            "--warmup-seconds",
            "0",
            "--quiet",
        ],
    );
    assert_eq!(compared["schema"], "cairn-bench/compare");
    let workload = &compared["workloads"][0];
    let rounds = workload["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[0]["order"], serde_json::json!(["a", "b"]));
    assert_eq!(rounds[1]["order"], serde_json::json!(["b", "a"]));
    for round in rounds {
        assert_eq!(round["a"]["operations"], 40);
        assert_eq!(round["b"]["operations"], 40);
        assert!(positive(&round["ratio_ops_per_second"]));
    }
    let ratio = &workload["ratio_a_over_b_ops_per_second"];
    assert!(ratio["min"].as_f64() <= ratio["median"].as_f64());
    assert!(ratio["median"].as_f64() <= ratio["max"].as_f64());
    assert!(positive(&compared["a"]["memory_at_end"]["vm_hwm_kib"]));
    dev.assert_no_errors_logged();
}

/// `meta-checkpoint` on a small store: one JSON document with a report point per doubling and
/// one checkpoint per `--every` entries. Correctness only: no figure is asserted.
#[test]
fn meta_checkpoint_reports_every_doubling() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().to_str().expect("a UTF-8 temporary path");
    let report = run_bench(
        &[
            "meta-checkpoint",
            "--objects",
            "4000",
            "--first-report",
            "1000",
            "--every",
            "1000",
            "--runs",
            "1",
            "--data",
            data,
        ],
        &[],
    );
    assert_eq!(report["schema"], "cairn-bench/meta-checkpoint/1");
    // 8,001 entries (a bucket, then two per object), a checkpoint per 1,000 after the bucket.
    assert_eq!(report["checkpoints"], 8);
    let points = report["points"].as_array().expect("points");
    let objects: Vec<u64> = points
        .iter()
        .map(|point| point["objects"].as_u64().unwrap())
        .collect();
    assert_eq!(objects, [1000, 2000, 4000]);
    for point in points {
        assert!(positive(&point["checkpoint_locked_ms_median_of_last_5"]));
        assert!(positive(&point["whole_state_encode_ms"]));
        assert!(positive(&point["follower_snapshot_ms"]));
        // Each object's record is at least its key and a six-shard map.
        let bytes = point["whole_state_bytes"].as_u64().unwrap();
        assert!(bytes > point["objects"].as_u64().unwrap() * 200, "{bytes}");
    }
}

/// `meta` with the write cases and the listing figure cut short: the read figure measures one
/// check per read and shared checks on fresh 3-replica clusters, and counts the checks. A check
/// per read must count one check per read, so the counters are what the figure says they are.
/// Correctness only: no throughput is asserted.
#[test]
fn meta_read_figure_counts_checks() {
    let directory = tempfile::tempdir().unwrap();
    let data = directory.path().to_str().expect("a UTF-8 temporary path");
    let report = run_bench(
        &[
            "meta",
            "--partitions",
            "1",
            "--seconds",
            "0.5",
            "--runs",
            "1",
            "--list-keys",
            "0",
            "--readers",
            "16",
            "--read-partitions",
            "2",
            "--data",
            data,
        ],
        &[],
    );
    let reads = &report["reads"];
    assert_eq!(reads["readers"], 16);
    let run = &reads["runs"][0];
    let own = &run["check_per_read"];
    assert!(own["reads"].as_u64().unwrap() > 0, "{run}");
    assert_eq!(own["reads"], own["checks"], "{run}");
    let shared = &run["shared_checks"];
    assert!(shared["reads"].as_u64().unwrap() > 0, "{run}");
    assert!(
        shared["checks"].as_u64().unwrap() <= shared["reads"].as_u64().unwrap(),
        "{run}"
    );
    assert!(positive(&run["shared_over_check_per_read"]));
    assert!(positive(&reads["shared_over_check_per_read_median"]));
}
