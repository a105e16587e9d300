use std::process::ExitCode;

use clap::Parser;
use gaap_autoscaler::{cli, exit, telemetry};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(&cli.log, cli.log_json);
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}
