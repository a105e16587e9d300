//! `gaap-autoscaler validate`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Policy files or directories of them (default: ./policies); fleet and config files too.
    pub paths: Vec<PathBuf>,
}

pub fn run(_args: ValidateArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("validate: not built yet")
}
