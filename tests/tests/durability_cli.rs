//! `cairn durability` end to end: JSON with the figures of the Markov model, and a scheme that
//! placement could not keep AZ-safe refused with the reason.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

#[test]
fn durability_prints_the_model_and_refuses_az_unsafe_schemes() {
    let output = Command::new(BINARY)
        .args(["durability", "--scheme", "isal-cauchy:8+4", "--nodes", "24"])
        .args(["--azs", "3", "--afr", "0.02", "--rebuild-hours", "24"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["scheme"], "8+4");
    assert_eq!(report["placement_groups"], 2_704_156.0);
    let stripe_nines = report["stripe_nines"].as_f64().unwrap();
    let cluster_nines = report["cluster_nines"].as_f64().unwrap();
    assert!(stripe_nines > 11.0, "{report}");
    assert!(cluster_nines < stripe_nines, "{report}");
    // Slower rebuilds cost nines.
    let slow = Command::new(BINARY)
        .args([
            "durability",
            "--scheme",
            "8+4",
            "--nodes",
            "24",
            "--rebuild-hours",
            "240",
        ])
        .output()
        .unwrap();
    let slow: serde_json::Value = serde_json::from_slice(&slow.stdout).unwrap();
    assert!(
        slow["stripe_nines"].as_f64().unwrap() < stripe_nines - 3.0,
        "{slow}"
    );

    // 10+4 over 3 AZs puts 5 shards in some AZ: losing it would lose data.
    let refused = Command::new(BINARY)
        .args(["durability", "--scheme", "10+4", "--azs", "3"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("at most 4 shards per AZ"), "{message}");
}

#[test]
fn the_rebuild_time_defaults_to_a_node_at_the_measured_heal_rate() {
    let run = |extra: &[&str]| -> serde_json::Value {
        let output = Command::new(BINARY)
            .args([
                "durability",
                "--scheme",
                "6+3",
                "--nodes",
                "12",
                "--azs",
                "4",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    };
    // 1 TiB at 100 MiB/s is 10 485.76 s, after a 30-minute grace period.
    let derived = run(&[
        "--node-tib",
        "1",
        "--heal-rate-mib-per-sec",
        "100",
        "--down-grace-hours",
        "0.5",
    ]);
    let hours = derived["rebuild_hours"].as_f64().unwrap();
    assert!(
        (hours - (0.5 + 10_485.76 / 3600.0)).abs() < 1e-9,
        "{derived}"
    );
    assert!(
        derived["rebuild_hours_source"]
            .as_str()
            .unwrap()
            .contains("heal-rate"),
        "{derived}"
    );
    // The default rate is the measured one (positive), and the node size and grace enter.
    let defaults = run(&[]);
    let rate = defaults["heal_rate_mib_per_sec"].as_f64().unwrap();
    assert!(rate > 0.0, "{defaults}");
    let expected = 600.0 / 3600.0 + 4.0 * 1024.0 * 1024.0 / rate / 3600.0;
    let hours = defaults["rebuild_hours"].as_f64().unwrap();
    assert!((hours - expected).abs() < 1e-6, "{defaults}");
    // An explicit time wins.
    let explicit = run(&["--rebuild-hours", "3"]);
    assert_eq!(explicit["rebuild_hours"], 3.0);
    assert_eq!(explicit["rebuild_hours_source"], "--rebuild-hours");
    // A zero heal rate is refused.
    let refused = Command::new(BINARY)
        .args(["durability", "--heal-rate-mib-per-sec", "0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}
