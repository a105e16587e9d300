//! CLI habits, checked by running the binary as a child process: no ANSI colour when
//! stderr is not a terminal or NO_COLOR is set; `--log-json` makes the error line JSON
//! too; a reader that goes away (`| head`) ends the command quietly with exit 0;
//! `-c/--config` on every command that reads config; `log list/show/export --help` carry
//! examples; tables fall back to ASCII with `--ascii` or a non-UTF-8 locale.

use std::io::Read;
use std::process::{Command, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"));
    c.env_remove("RUST_LOG")
        .env_remove("GAAP_AUTOSCALER_LOG")
        .env_remove("NO_COLOR")
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env("LANG", "C.UTF-8");
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().expect("run the binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A call that logs at debug level and fails fast (nothing listens on port 1).
fn failing_api_call() -> Command {
    let mut c = bin();
    c.args([
        "api",
        "DescribeProxies",
        "--endpoint",
        "http://127.0.0.1:1",
        "--log",
        "debug",
    ])
    .env("TENCENTCLOUD_SECRET_ID", "AKIDhabits")
    .env("TENCENTCLOUD_SECRET_KEY", "habitskey");
    c
}

#[test]
fn logs_to_a_pipe_carry_no_ansi_colour() {
    for no_color in [None, Some("1")] {
        let mut c = failing_api_call();
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("DEBUG"), "debug lines expected: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "ANSI escape in piped logs: {err:?}"
        );
    }
}

#[test]
fn log_json_makes_every_stderr_line_json() {
    let (code, _, err) = run(failing_api_call().arg("--log-json"));
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() >= 2, "{err}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{err}"));
        assert!(v["level"].is_string(), "{line}");
    }
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["fields"]["message"]
            .as_str()
            .unwrap()
            .starts_with("error: network error"),
        "{last}"
    );
}

/// The reader closes stdout before the command writes: EPIPE on the first write.
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), err)
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    for args in [
        &["simulate", "--json"][..],
        &["simulate"][..],
        &["log", "list", "--help"][..],
    ] {
        let (code, err) = with_closed_stdout(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn dash_c_is_accepted_by_every_command_that_reads_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("gaap-autoscaler.toml");
    std::fs::write(
        &cfg,
        "[prometheus]\nurl = \"http://127.0.0.1:9\"\n[engine]\ndata_dir = \"nolog\"\nlisten = \"0.0.0.0:9\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let c = cfg.to_str().unwrap();
    let (code, _, err) = run(bin().args(["validate", "-c", c]).current_dir(dir.path()));
    assert!(!err.contains("unexpected argument"), "{err}");
    assert!(code == 0 || code == 1, "{code} {err}");
    // log: the data dir comes from the config (named in the error)...
    let (code, _, err) = run(bin().args(["log", "list", "-c", c]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nolog"), "{err}");
    // ...and without -c from ./gaap-autoscaler.toml, like `run`.
    let (code, _, err) = run(bin().args(["log", "list"]).current_dir(dir.path()));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nolog"), "{err}");
}

#[test]
fn log_subcommands_have_examples() {
    for sub in ["list", "show", "export"] {
        let (code, out, err) = run(bin().args(["log", sub, "--help"]));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("Examples:"), "log {sub} --help: {out}");
        assert!(
            out.contains(&format!("gaap-autoscaler log {sub} ")),
            "log {sub} --help: {out}"
        );
    }
}

#[test]
fn tables_fall_back_to_ascii() {
    let (code, utf8, err) = run(bin().arg("simulate"));
    assert_eq!(code, 0, "{err}");
    assert!(utf8.contains('─') && utf8.contains('→'), "{utf8}");
    for mut c in [
        {
            let mut c = bin();
            c.args(["simulate", "--ascii"]);
            c
        },
        {
            let mut c = bin();
            c.arg("simulate").env("LC_ALL", "C");
            c
        },
    ] {
        let (code, out, err) = run(&mut c);
        assert_eq!(code, 0, "{err}");
        assert!(out.is_ascii(), "non-ASCII in {out}");
        assert!(out.contains("---") && out.contains("->"), "{out}");
    }
}
