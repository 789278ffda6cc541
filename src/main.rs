//! `cairn`: one binary, one subcommand per role (see ARCHITECTURE.md).

use clap::Parser;

#[derive(Parser)]
#[command(name = "cairn", version, about = "Cairn: an S3-compatible, erasure-coded object store")]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
