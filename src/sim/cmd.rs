//! `gaap-autoscaler simulate`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {}

pub fn run(_args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("simulate: not built yet")
}
