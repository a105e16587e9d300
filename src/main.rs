use std::process::ExitCode;

use clap::Parser;
use gaap_autoscaler::{cli, exit, telemetry};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version exit 0; a bad flag is a user error (exit 1), not clap's 2,
        // which this tool reserves for environment errors.
        Err(e) => {
            let code = if e.use_stderr() { exit::USER_ERROR } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    telemetry::init(&cli.log, cli.log_json);
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}
