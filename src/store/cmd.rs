//! `gaap-autoscaler log list|show|export`: read the decision log.
//!
//! The log is opened directly when no other process holds it. When the daemon holds it
//! (sled allows one process), the command reads through the daemon's HTTP endpoint
//! instead (`--daemon URL`, default http://127.0.0.1:9464), which answers with the same
//! JSON records.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};

use super::query::{LIST_PATH, filter_to_query, percent_encode};
use super::record::{DecisionRecord, LogFilter, Outcome};
use super::{DecisionLog, StoreError, explain};
use crate::exit::env_error;
use crate::time::{Timestamp, parse_duration, parse_time};

/// The daemon's HTTP endpoint when `--daemon` is not given.
pub const DEFAULT_DAEMON_URL: &str = "http://127.0.0.1:9464";

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler log list --data-dir data --since 1h --proxy link-kicu7m5b\n  gaap-autoscaler log list --outcome failed --limit 20 --json\n  gaap-autoscaler log show d-1795939200000-link-kicu7m5b-0000\n  gaap-autoscaler log export --config gaap-autoscaler.toml --format csv > decisions.csv\n\nWhile the daemon holds the data dir, reads go through its HTTP endpoint (--daemon)."
)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: LogCommand,
    /// The daemon's data directory (default: the config's `[engine] data_dir`, else ./data).
    #[arg(
        long,
        global = true,
        env = "GAAP_AUTOSCALER_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// The daemon's config file: its `[engine] data_dir` and `listen` become the defaults
    /// (default: ./gaap-autoscaler.toml when it exists, as for `run`).
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's HTTP endpoint, read when the daemon holds the data dir (default: the
    /// config's `listen`, else http://127.0.0.1:9464).
    #[arg(long, global = true, value_name = "URL")]
    pub daemon: Option<String>,
    /// Print JSON (list: an array of records; show: the full record).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// List decisions, oldest first (the newest `--limit` when given).
    #[command(
        after_help = "Examples:\n  gaap-autoscaler log list -c gaap-autoscaler.toml --since 1h      the last hour (data dir and daemon from the config)\n  gaap-autoscaler log list --data-dir data --proxy link-kicu7m5b --limit 20\n  gaap-autoscaler log list --outcome failed --json                    failed changes, as JSON\n  gaap-autoscaler log list --daemon http://127.0.0.1:9464 --since 10m   through a running daemon"
    )]
    List(FilterArgs),
    /// Explain one decision stage by stage (`--json`: the full record).
    #[command(
        after_help = "Examples:\n  gaap-autoscaler log show d-1795939200000-link-kicu7m5b-0000 -c gaap-autoscaler.toml\n  gaap-autoscaler log show d-1795939200000-link-kicu7m5b-0000 --data-dir data --json\n\nThe id is the first column of `log list` (and the change's ClientToken)."
    )]
    Show {
        /// The decision id (also its ClientToken), e.g. d-1795939200000-link-kicu7m5b-0000.
        id: String,
    },
    /// Print every matching record as JSON lines (or CSV).
    #[command(
        after_help = "Examples:\n  gaap-autoscaler log export -c gaap-autoscaler.toml > decisions.jsonl\n  gaap-autoscaler log export --data-dir data --since 2026-11-01T00:00:00Z --format csv > decisions.csv\n  gaap-autoscaler log export --policy web --outcome applied --since 7d"
    )]
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Default, Args)]
pub struct FilterArgs {
    /// Only this proxy (e.g. link-kicu7m5b).
    #[arg(long)]
    pub proxy: Option<String>,
    /// Only this policy.
    #[arg(long)]
    pub policy: Option<String>,
    /// From this time (inclusive): RFC 3339, Unix seconds, or a duration ago (`1h`, `2d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Up to this time (exclusive): RFC 3339, Unix seconds, or a duration ago.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only this outcome: held, dry-run, planned, applied, failed, skipped.
    #[arg(long)]
    pub outcome: Option<Outcome>,
    /// At most this many records (the newest).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl FilterArgs {
    /// The filter, with relative times (`1h`) taken back from `now`.
    pub fn to_filter(&self, now: Timestamp) -> anyhow::Result<LogFilter> {
        let time = |flag: &str, s: &Option<String>| -> anyhow::Result<Option<Timestamp>> {
            s.as_deref()
                .map(|s| resolve_time(s, now).map_err(|e| anyhow!("--{flag}: {e}")))
                .transpose()
        };
        Ok(LogFilter {
            proxy: self.proxy.clone(),
            policy: self.policy.clone(),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            outcome: self.outcome,
            limit: self.limit,
        })
    }
}

/// An absolute time (RFC 3339, Unix seconds), or a duration before `now` (`90m`).
pub fn resolve_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    match parse_time(s) {
        Ok(t) => Ok(t),
        Err(abs) => match parse_duration(s) {
            Ok(d) => Ok(now - d),
            Err(_) => Err(format!(
                "{abs}; or give a duration ago such as `1h` or `2d`"
            )),
        },
    }
}

/// Where records are read from.
enum Source {
    Local(DecisionLog),
    Daemon(String),
}

pub fn run(args: LogArgs) -> anyhow::Result<ExitCode> {
    // The shell reads the clock, once, for relative times.
    let now = Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    );
    let (dir, url) = locations(&args)?;
    let source = open_source(&dir, &url, args.daemon.is_some())?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let code = match &args.command {
        LogCommand::List(f) => {
            let filter = f.to_filter(now)?;
            let records = fetch_list(&source, &filter)?;
            if args.json {
                serde_json::to_writer_pretty(&mut out, &records)?;
                writeln!(out)?;
            } else {
                out.write_all(table(&records).as_bytes())?;
            }
            ExitCode::SUCCESS
        }
        LogCommand::Show { id } => {
            let record = fetch_one(&source, id)?;
            if args.json {
                serde_json::to_writer_pretty(&mut out, &record)?;
                writeln!(out)?;
            } else {
                out.write_all(crate::term::fit(explain(&record)).as_bytes())?;
            }
            ExitCode::SUCCESS
        }
        LogCommand::Export { filter, format } => {
            let filter = filter.to_filter(now)?;
            if *format == ExportFormat::Csv {
                writeln!(out, "{}", CSV_HEADER.join(","))?;
            }
            let mut write = |r: &DecisionRecord| -> anyhow::Result<()> {
                match format {
                    ExportFormat::Jsonl => {
                        serde_json::to_writer(&mut out, r)?;
                        writeln!(out)?;
                    }
                    ExportFormat::Csv => writeln!(out, "{}", csv_row(r))?,
                }
                Ok(())
            };
            match &source {
                Source::Local(log) if filter.limit.is_none() => {
                    for r in log.iter(&filter) {
                        write(&r?)?;
                    }
                }
                _ => {
                    for r in fetch_list(&source, &filter)? {
                        write(&r)?;
                    }
                }
            }
            ExitCode::SUCCESS
        }
    };
    out.flush()?;
    Ok(code)
}

/// The data dir and the daemon URL: `--data-dir` / GAAP_AUTOSCALER_DATA_DIR, else the
/// config's `[engine] data_dir`, else `./data`; `--daemon`, else `http://` + the config's
/// `[engine] listen`, else [`DEFAULT_DAEMON_URL`].
fn locations(args: &LogArgs) -> anyhow::Result<(PathBuf, String)> {
    let implicit = PathBuf::from(DEFAULT_CONFIG);
    let config_path = args
        .config
        .clone()
        .or_else(|| implicit.is_file().then_some(implicit));
    let config = match &config_path {
        Some(path) => Some(crate::config::Config::load(path).map_err(|diags| {
            let text: Vec<String> = diags
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect();
            anyhow!("{}", text.join("\n"))
        })?),
        None => None,
    };
    let dir = args
        .data_dir
        .clone()
        .or_else(|| config.as_ref().map(|c| c.engine.data_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("data"));
    let url = args
        .daemon
        .clone()
        .or_else(|| {
            config
                .as_ref()
                .map(|c| daemon_url_for_listen(&c.engine.listen.to_string()))
        })
        .unwrap_or_else(|| DEFAULT_DAEMON_URL.to_string());
    Ok((dir, url))
}

/// The config file `log` reads when `--config` is not given and it exists (the one `run`
/// reads by default).
pub const DEFAULT_CONFIG: &str = "gaap-autoscaler.toml";

/// The URL that reaches a daemon listening on `listen`: a wildcard address (`0.0.0.0`,
/// `[::]`) is reached on loopback.
pub fn daemon_url_for_listen(listen: &str) -> String {
    let host_port = match listen.rsplit_once(':') {
        Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
        Some(("[::]", port)) => format!("[::1]:{port}"),
        _ => listen.to_string(),
    };
    format!("http://{host_port}")
}

/// The log itself when it is free; the daemon's endpoint when the daemon holds it (or
/// when there is no log here and `--daemon` was given).
fn open_source(dir: &Path, url: &str, daemon_given: bool) -> anyhow::Result<Source> {
    if !DecisionLog::exists(dir) {
        if daemon_given {
            return Ok(Source::Daemon(url.to_string()));
        }
        return Err(anyhow!(
            "no decision log in {}: pass --data-dir DIR (or GAAP_AUTOSCALER_DATA_DIR, or --config FILE), \
             or --daemon URL to read from a running daemon",
            dir.display()
        ));
    }
    // A short wait covers a process that is just letting go (see `open_waiting`); the
    // daemon holds the dir for good, and then its endpoint answers.
    match DecisionLog::open_for_reading(dir, Duration::from_millis(300)) {
        Ok(log) => Ok(Source::Local(log)),
        Err(StoreError::Locked { .. }) => {
            tracing::info!(dir = %dir.display(), url = %url, "data dir held by another process; reading through the daemon");
            Ok(Source::Daemon(url.to_string()))
        }
        Err(e) => Err(env_error(e.to_string())),
    }
}

fn fetch_list(source: &Source, filter: &LogFilter) -> anyhow::Result<Vec<DecisionRecord>> {
    match source {
        Source::Local(log) => Ok(log.list(filter)?),
        Source::Daemon(url) => {
            let query = filter_to_query(filter);
            let sep = if query.is_empty() { "" } else { "?" };
            let full = format!("{}{LIST_PATH}{sep}{query}", url.trim_end_matches('/'));
            let body = http_get(url, &full)?.ok_or_else(|| {
                env_error(format!("{full}: the daemon has no decision-log endpoint"))
            })?;
            serde_json::from_str(&body).map_err(|e| {
                env_error(format!(
                    "{full}: the daemon's answer is not a list of decisions: {e}"
                ))
            })
        }
    }
}

fn fetch_one(source: &Source, id: &str) -> anyhow::Result<DecisionRecord> {
    match source {
        Source::Local(log) => log
            .get(id)?
            .ok_or_else(|| anyhow!(StoreError::NotFound(id.to_string()))),
        Source::Daemon(url) => {
            let full = format!(
                "{}{LIST_PATH}/{}",
                url.trim_end_matches('/'),
                percent_encode(id)
            );
            let body = http_get(url, &full)?
                .ok_or_else(|| anyhow!(StoreError::NotFound(id.to_string())))?;
            serde_json::from_str(&body).map_err(|e| {
                env_error(format!(
                    "{full}: the daemon's answer is not a decision: {e}"
                ))
            })
        }
    }
}

/// GET with a short timeout: Some(body) on 200, None on 404; anything else, or no
/// answer, is an environment error that says the data dir is held.
fn http_get(base: &str, url: &str) -> anyhow::Result<Option<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let held = "the decision log is held by another gaap-autoscaler (the daemon)";
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| env_error(format!("cannot build an HTTP client: {e}")))?;
        let resp = client.get(url).send().await.map_err(|e| {
            env_error(format!(
                "{held}, and its endpoint {base} did not answer ({e}); \
                 pass --daemon URL (the daemon's `listen` address) or stop the daemon"
            ))
        })?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| env_error(format!("{url}: cannot read the answer: {e}")))?;
        match status.as_u16() {
            200 => Ok(Some(body)),
            404 => Ok(None),
            400 | 413 => Err(anyhow!(
                "the daemon refused the query: {}",
                error_text(&body)
            )),
            s => Err(env_error(format!("{url}: HTTP {s}: {}", error_text(&body)))),
        }
    })
}

fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// The readable table of `log list`.
pub fn table(records: &[DecisionRecord]) -> String {
    if records.is_empty() {
        return "no decisions match\n".to_string();
    }
    let header = [
        "TIME",
        "ID",
        "POLICY",
        "PROXY",
        "BANDWIDTH",
        "CONCURRENT",
        "OUTCOME",
        "REASONS",
    ];
    let rows: Vec<[String; 8]> = records
        .iter()
        .map(|r| {
            let mut reasons: Vec<&str> = r.reasons.iter().take(3).map(String::as_str).collect();
            let more;
            if r.reasons.len() > 3 {
                more = format!("+{} more", r.reasons.len() - 3);
                reasons.push(&more);
            }
            [
                r.time.to_rfc3339(),
                r.id.clone(),
                r.policy.clone(),
                r.proxy_id.clone(),
                arrow(r.bandwidth_from, r.bandwidth_to),
                arrow(r.concurrent_from, r.concurrent_to),
                if r.repeats > 0 {
                    crate::term::fit(format!("{} ×{}", r.outcome.as_str(), r.repeats + 1))
                } else {
                    r.outcome.as_str().to_string()
                },
                reasons.join(", "),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(cell);
                s.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&cells);
    }
    out
}

fn arrow(from: u32, to: u32) -> String {
    if from == to {
        from.to_string()
    } else {
        crate::term::fit(format!("{from}→{to}"))
    }
}

/// Columns of `log export --format csv`.
pub const CSV_HEADER: [&str; 18] = [
    "id",
    "time",
    "policy",
    "proxy_id",
    "mode",
    "bandwidth_from",
    "bandwidth_to",
    "concurrent_from",
    "concurrent_to",
    "reasons",
    "outcome",
    "request_id",
    "error_code",
    "error_message",
    "attempts",
    "completed_at",
    "repeats",
    "last_time",
];

/// One CSV row (RFC 4180 quoting); reasons are joined with `;`.
pub fn csv_row(r: &DecisionRecord) -> String {
    let cells = [
        r.id.clone(),
        r.time.to_rfc3339(),
        r.policy.clone(),
        r.proxy_id.clone(),
        r.mode.clone(),
        r.bandwidth_from.to_string(),
        r.bandwidth_to.to_string(),
        r.concurrent_from.to_string(),
        r.concurrent_to.to_string(),
        r.reasons.join(";"),
        r.outcome.as_str().to_string(),
        r.request_id.clone().unwrap_or_default(),
        r.error_code.clone().unwrap_or_default(),
        r.error_message.clone().unwrap_or_default(),
        r.attempts.to_string(),
        r.completed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        r.repeats.to_string(),
        r.last_time.map(|t| t.to_rfc3339()).unwrap_or_default(),
    ];
    cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_times() {
        let now = Timestamp::from_secs(1_795_939_200);
        let cases: &[(&str, Option<i64>)] = &[
            ("1h", Some(1_795_935_600)),
            ("2d", Some(1_795_766_400)),
            ("2026-11-29T08:00:00Z", Some(1_795_939_200)),
            ("1795939100", Some(1_795_939_100)),
            ("yesterday", None),
            ("", None),
        ];
        for (s, want) in cases {
            let got = resolve_time(s, now).ok().map(Timestamp::secs);
            assert_eq!(got, *want, "{s}");
        }
    }

    #[test]
    fn csv_cells_are_quoted_when_needed() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("l1\nl2", "\"l1\nl2\""),
        ];
        for (input, want) in cases {
            assert_eq!(csv_cell(input), want);
        }
    }
}
