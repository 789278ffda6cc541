//! `cairn-bench`: one binary, one subcommand per workload. Every workload prints one JSON document
//! on stdout (human progress goes to stderr) and, where the issue asks for it, measures a reference
//! (fio, raw ISA-L, a peer server) in the same run so results are compared as ratios.

use clap::{Parser, Subcommand};

mod ec;

#[derive(Parser)]
#[command(name = "cairn-bench", about = "Cairn benchmark harness")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Erasure-coding throughput: codecs, raw ISA-L, streaming encoder (JSON on stdout).
    Ec(ec::EcArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.workload {
        Workload::Ec(args) => ec::run(args),
    }
}
