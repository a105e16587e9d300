use std::process::ExitCode;

use clap::Parser;
use gaap_autoscaler::{cli, exit, telemetry, term};

fn main() -> ExitCode {
    // `gaap-autoscaler ... | head`: when the reader goes away, a `println!` panics with
    // "failed printing to stdout: Broken pipe"; end quietly instead (exit 0), like a
    // write error that reaches `main` below.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if term::is_stdout_gone_panic(message) {
            std::process::exit(0);
        }
        default_hook(info);
    }));
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
    term::set_ascii(cli.ascii || !term::locale_is_utf8(|k| std::env::var(k).ok()));
    match cli::run(cli) {
        Ok(code) => code,
        Err(err) if term::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            telemetry::error(&format!("error: {err:#}"));
            exit::code_for(&err)
        }
    }
}
