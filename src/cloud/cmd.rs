//! `gaap-autoscaler api`.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ApiArgs {}

pub fn run(_args: ApiArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("api: not built yet")
}
