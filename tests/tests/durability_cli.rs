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
