//! `cairn-bench`: one binary, one subcommand per workload. Every workload prints one JSON document
//! on stdout (human progress goes to stderr) and, where the issue asks for it, measures a reference
//! (fio, raw ISA-L, a peer server) in the same run so results are compared as ratios.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cairn-bench", about = "Cairn benchmark harness")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.workload {}
}
