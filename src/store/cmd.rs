//! `gaap-autoscaler log`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LogArgs {}

pub fn run(_args: LogArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("log: not built yet")
}
