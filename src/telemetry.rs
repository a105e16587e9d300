//! Logging setup: tracing to stderr, text or JSON, filtered by `--log` or RUST_LOG. Text is
//! coloured only on a terminal and never with `NO_COLOR`. `notice` prints the few lines a
//! command always shows (not filtered by the level) in the chosen format, so with
//! `--log-json` every line on stderr is JSON.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

static JSON: AtomicBool = AtomicBool::new(false);

pub fn init(filter: &str, json: bool) {
    JSON.store(json, Ordering::Relaxed);
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(filter).ok())
        .unwrap_or_else(|| EnvFilter::new("warn"));
    let ansi = crate::term::colour(
        std::io::stderr().is_terminal(),
        std::env::var("NO_COLOR").ok().as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// One line for the user on stderr, whatever the log level: plain text, or with
/// `--log-json` a JSON object shaped like the log's own lines (`timestamp`, `level`,
/// `fields.message`, `target`).
pub fn notice(message: &str) {
    emit("INFO", message);
}

/// The final `error: ...` line of a failed command, in the chosen format.
pub fn error(message: &str) {
    emit("ERROR", message);
}

fn emit(level: &str, message: &str) {
    let line = render_notice(
        level,
        message,
        JSON.load(Ordering::Relaxed),
        &crate::time::Timestamp(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        )
        .to_rfc3339(),
    );
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn render_notice(level: &str, message: &str, json: bool, time: &str) -> String {
    if json {
        serde_json::json!({
            "timestamp": time,
            "level": level,
            "fields": {"message": message},
            "target": "gaap_autoscaler",
        })
        .to_string()
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_follow_the_log_format() {
        assert_eq!(render_notice("INFO", "hello", false, "t"), "hello");
        let v: serde_json::Value =
            serde_json::from_str(&render_notice("INFO", "listening \"x\"", true, "t")).unwrap();
        assert_eq!(v["fields"]["message"], "listening \"x\"");
        assert_eq!(v["level"], "INFO");
    }
}
