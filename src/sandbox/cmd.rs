//! `gaap-autoscaler sandbox`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SandboxArgs {}

pub fn run(_args: SandboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sandbox: not built yet")
}
