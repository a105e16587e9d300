//! The command line: one binary, ten commands. Each command's flags and its `run` live
//! beside the code they drive; this file only lists them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Autoscaling for Tencent Cloud GAAP proxies: follow demand from Prometheus within the
/// allowed bandwidth/concurrency values, log every decision, and simulate policies over
/// history before trusting them.
#[derive(Debug, Parser)]
#[command(name = "gaap-autoscaler", version, about, long_about = None)]
#[command(
    after_help = "Start here:\n  gaap-autoscaler simulate              replay the bundled policies over a synthetic trace\n  gaap-autoscaler validate policies/    check policy files\n  gaap-autoscaler run --config gaap-autoscaler.toml --dry-run --once\n  gaap-autoscaler pause --policy web --direction down --for 2h --reason \"migration\"\n\nCredentials come from TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (/ TENCENTCLOUD_TOKEN)\nor ~/.tencentcloud/credentials, or tccli's ~/.tccli/<TCCLI_PROFILE or default>.credential, never from files in this project."
)]
pub struct Cli {
    /// Log level filter (e.g. `info`, `debug`, `gaap_autoscaler=trace`); also RUST_LOG.
    #[arg(
        long,
        global = true,
        env = "GAAP_AUTOSCALER_LOG",
        default_value = "warn"
    )]
    pub log: String,
    /// Log as JSON lines instead of text (every line on stderr, including the final error).
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Draw tables with ASCII only (`->`, `-`, `x`); automatic when LC_ALL/LC_CTYPE/LANG
    /// names a locale that is not UTF-8 (such as C or POSIX).
    #[arg(long, global = true)]
    pub ascii: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay policies over a metric history (dry run) and report how they would have done.
    Simulate(crate::sim::cmd::SimulateArgs),
    /// Tune policies on a metric history: a Pareto frontier of under-provisioning, spend
    /// and changes, a recommended policy per file, checked on a held-out part.
    Tune(crate::tune::cmd::TuneArgs),
    /// Run the autoscaling daemon (or one pass with --once).
    Run(crate::daemon::cmd::RunArgs),
    /// Check policy files (and fleet or config files); every problem as file:line:col.
    Validate(crate::policy::cmd::ValidateArgs),
    /// Read the decision log: list, show one decision stage by stage, export.
    Log(crate::store::cmd::LogArgs),
    /// Serve a local stand-in for the GAAP API (signed, rate-limited, faithful envelope).
    Sandbox(crate::sandbox::cmd::SandboxArgs),
    /// Make one signed call to the GAAP API and print the JSON response.
    Api(crate::cloud::cmd::ApiArgs),
    /// Pause scaling of a policy or proxy (one direction or both) in the running daemon.
    Pause(crate::daemon::ctl::PauseArgs),
    /// Resume what `pause` paused (and end manual holds) in the running daemon.
    Resume(crate::daemon::ctl::ResumeArgs),
    /// Show the running daemon's pauses and manual holds.
    Status(crate::daemon::ctl::StatusArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Simulate(a) => crate::sim::cmd::run(a),
        Command::Tune(a) => crate::tune::cmd::run(a),
        Command::Run(a) => crate::daemon::cmd::run(a),
        Command::Validate(a) => crate::policy::cmd::run(a),
        Command::Log(a) => crate::store::cmd::run(a),
        Command::Sandbox(a) => crate::sandbox::cmd::run(a),
        Command::Api(a) => crate::cloud::cmd::run(a),
        Command::Pause(a) => crate::daemon::ctl::pause(a),
        Command::Resume(a) => crate::daemon::ctl::resume(a),
        Command::Status(a) => crate::daemon::ctl::status(a),
    }
}
