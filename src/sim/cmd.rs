//! `gaap-autoscaler simulate`: replay policies over a metric history and report.
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::report::{self, Prices, SetReport};
use super::source::{PromSource, SourceError, TraceSource};
use super::synthetic::{self, SyntheticSource, SyntheticSpec, Target};
use super::{PolicySet, ReadAhead, Record, SimOptions, csv, html, render, replay_stream};
use crate::core::ProxyState;
use crate::fleet::Fleet;
use crate::metrics::{ClientOptions, Prometheus};
use crate::policy::{Diagnostic, Policy};
use crate::time::{Timestamp, parse_duration, parse_time};
use crate::trace::Trace;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler simulate\n  gaap-autoscaler simulate --policies policies/ --metrics export.csv --report report.html\n  gaap-autoscaler simulate --policies a/ --policies b/ --synthetic --days 30 --json\n  gaap-autoscaler simulate --reference all                  # beside HPA, AWS and Autopilot\n  gaap-autoscaler simulate --prices examples/prices-daily.toml   # GAAP's per-day billing\n  gaap-autoscaler simulate --metrics export.csv --start 2026-11-08T00:00:00Z   # [predictive] learns from the data before --start"
)]
pub struct SimulateArgs {
    /// A directory (or file) of policies. Repeat to compare several sets side by side on
    /// the same trace. Default: ./policies if it exists, else the bundled examples.
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Vec<PathBuf>,
    /// The fleet file (ladders and proxies). Default: the bundled example fleet.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Replay a metrics CSV (header `timestamp,proxy_id,signal,value`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["prometheus", "synthetic"])]
    pub metrics: Option<PathBuf>,
    /// Replay the policies' own queries as range queries against this Prometheus
    /// (default range: the 7 days before --end, which defaults to now).
    #[arg(long, value_name = "URL", conflicts_with = "synthetic")]
    pub prometheus: Option<String>,
    /// Replay the built-in synthetic trace (the default source).
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic trace: number of days.
    #[arg(long, default_value_t = 7, value_name = "N", conflicts_with_all = ["metrics", "prometheus"])]
    pub days: u32,
    /// Synthetic trace: number of proxies (default: the fleet's). More than the fleet has
    /// are cloned from its proxies (ids `link-sim00001`...; tags kept).
    #[arg(long, value_name = "N", conflicts_with_all = ["metrics", "prometheus"])]
    pub proxies: Option<usize>,
    /// Synthetic trace: the seed (same seed, same trace).
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED, value_name = "N", conflicts_with_all = ["metrics", "prometheus"])]
    pub seed: u64,
    /// First evaluation time (RFC 3339 or Unix seconds). Default: the start of the data.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<Timestamp>,
    /// Last evaluation time. Default: the end of the data.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub end: Option<Timestamp>,
    /// How long a change keeps a proxy ADJUSTING before the new capacity is in effect.
    #[arg(long, default_value = "60s", value_name = "DUR", value_parser = parse_duration)]
    pub adjusting: Duration,
    /// Print one JSON object (summary, proxies, decisions) on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report with a chart per proxy.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Also write the trace's signals as OpenMetrics under the metric names and proxy
    /// labels the policies query, for `promtool tsdb create-blocks-from openmetrics FILE
    /// DIR` (a Prometheus to run the daemon against: scripts/demo.sh).
    #[arg(long, value_name = "FILE")]
    pub export_openmetrics: Option<PathBuf>,
    /// A price table (TOML: `mbps_hour`, `concurrent_hour`, optional `currency`; or
    /// GAAP's per-day form, a `[daily]` table: examples/prices-daily.toml).
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Also replay reference autoscalers on the same trace, proxies and bounds, and
    /// report them beside the policy: `hpa` (HPA defaults), `aws` (AWS target
    /// tracking), `autopilot` (Autopilot's moving window), or `all`.
    #[arg(long, value_name = "LIST", value_parser = parse_reference)]
    pub reference: Option<super::reference::Peers>,
    /// Replay a pause schedule (TOML, `[[pause]]` tables with `policy`, optional `proxy`,
    /// `direction` up|down|both, `from`, optional `until`, `reason`): what the pauses
    /// would have cost, beside the same replay without them.
    #[arg(long, value_name = "FILE")]
    pub pause: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseFile {
    #[serde(default)]
    pause: Vec<PauseEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseEntry {
    policy: String,
    proxy: Option<String>,
    direction: String,
    from: String,
    until: Option<String>,
    #[serde(default)]
    reason: String,
}

/// Reads a pause schedule (`--pause FILE`).
pub fn load_pause_schedule(path: &std::path::Path) -> anyhow::Result<Vec<crate::core::Pause>> {
    use crate::core::{Pause, Scope};
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the pause schedule {}", path.display()))?;
    let file: PauseFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, e) in file.pause.into_iter().enumerate() {
        let at = |what: &str, err: String| {
            anyhow::anyhow!("{}: pause {}: {what}: {err}", path.display(), i + 1)
        };
        let dirs =
            crate::core::pause::parse_directions(&e.direction).map_err(|x| at("direction", x))?;
        let since = crate::time::parse_time(&e.from).map_err(|x| at("from", x))?;
        let until = e
            .until
            .as_deref()
            .map(crate::time::parse_time)
            .transpose()
            .map_err(|x| at("until", x))?;
        if until.is_some_and(|u| u <= since) {
            return Err(at("until", "is not after `from`".into()));
        }
        let scope = match e.proxy {
            Some(id) => Scope::Proxy(id),
            None => Scope::Policy(e.policy.clone()),
        };
        for direction in dirs.directions() {
            out.push(Pause {
                scope: scope.clone(),
                direction,
                since,
                until,
                reason: e.reason.clone(),
                by: format!("the pause schedule {}", path.display()),
            });
        }
    }
    Ok(out)
}

fn parse_reference(s: &str) -> Result<super::reference::Peers, String> {
    super::reference::Peer::parse_list(s)
}

fn diagnostics(what: &str, diags: &[Diagnostic]) -> anyhow::Error {
    if diags.is_empty() {
        anyhow::anyhow!("{what}: invalid")
    } else {
        anyhow::anyhow!("{what}:\n{}", crate::policy::diagnostic::render(diags))
    }
}

pub(crate) fn load_fleet(path: Option<&Path>) -> anyhow::Result<Fleet> {
    match path {
        Some(p) => Fleet::load(p).map_err(|d| diagnostics("invalid fleet file", &d)),
        None => Ok(Fleet::bundled()),
    }
}

/// One policy set per `--policies` path.
pub(crate) fn load_sets(paths: &[PathBuf]) -> anyhow::Result<Vec<PolicySet>> {
    let default = Path::new("policies");
    let paths: Vec<PathBuf> = if paths.is_empty() {
        if default.exists() {
            vec![default.to_path_buf()]
        } else {
            return Ok(vec![PolicySet {
                label: "bundled examples".into(),
                policies: bundled_policies()?,
            }]);
        }
    } else {
        paths.to_vec()
    };
    paths
        .iter()
        .map(|p| {
            let policies = load_policies(p)?;
            if policies.is_empty() {
                bail!("{}: no policy files found", p.display());
            }
            Ok(PolicySet {
                label: p.display().to_string(),
                policies,
            })
        })
        .collect()
}

fn load_policies(path: &Path) -> anyhow::Result<Vec<Policy>> {
    crate::policy::load_policies(&[path.to_path_buf()])
        .map_err(|d| diagnostics(&format!("invalid policies in {}", path.display()), &d))
}

/// The example policies of the repository's `policies/` directory, built into the binary
/// so `simulate` works from any directory.
pub(crate) const BUNDLED_POLICIES: &[(&str, &str)] = &[
    ("policies/web.toml", include_str!("../../policies/web.toml")),
    (
        "policies/batch.toml",
        include_str!("../../policies/batch.toml"),
    ),
];

fn bundled_policies() -> anyhow::Result<Vec<Policy>> {
    BUNDLED_POLICIES
        .iter()
        .map(|(name, text)| {
            crate::policy::parse_policy(text, Path::new(name))
                .map_err(|d| diagnostics("the bundled example policies are invalid", &d))
        })
        .collect()
}

/// The synthetic fleet: the first `n` proxies, or clones of them beyond the fleet's size.
fn resize_fleet(fleet: &mut Fleet, n: usize) {
    if fleet.proxies.is_empty() {
        return;
    }
    let base: Vec<ProxyState> = fleet.proxies.clone();
    if n <= base.len() {
        fleet.proxies.truncate(n);
        return;
    }
    for i in base.len()..n {
        let mut p = base[i % base.len()].clone();
        p.id = format!("link-sim{:05}", i + 1 - base.len());
        p.name = p.name.map(|n| format!("{n}-{}", i + 1 - base.len()));
        fleet.proxies.push(p);
    }
}

/// Signal names that carry bandwidth (Mbps) and connections in the policies.
fn signal_names(sets: &[PolicySet]) -> (Vec<String>, Vec<String>) {
    let mut bw = BTreeSet::new();
    let mut conn = BTreeSet::new();
    for p in sets.iter().flat_map(|s| &s.policies) {
        bw.insert(
            p.bandwidth
                .as_ref()
                .map_or("bandwidth".to_string(), |d| d.signal.clone()),
        );
        conn.insert(
            p.concurrent
                .as_ref()
                .map_or("connections".to_string(), |d| d.signal.clone()),
        );
    }
    (bw.into_iter().collect(), conn.into_iter().collect())
}

/// `--prometheus` without `--start`: this many days back from `--end` (default now).
const DEFAULT_PROMETHEUS_DAYS: u64 = 7;

/// The longest time range one simulation replays (about 13 months).
pub const MAX_SPAN_DAYS: i64 = 400;

/// The most evaluations (proxy × evaluation time) one simulation replays. The streaming
/// replay's memory does not grow with them (its time does: about 1 µs each on one core),
/// so this only stops a range that would run for hours.
pub const MAX_EVALUATIONS: u64 = 2_000_000_000;

/// Checks a simulation's range before anything is sized by it (pure). `evaluations`
/// estimates, without listing them, the evaluation times of each policy over the range
/// times the proxies it manages. The message says what to change.
pub fn check_range(
    start: Timestamp,
    end: Timestamp,
    evaluations: impl Fn(Timestamp, Timestamp) -> u64,
) -> Result<(), String> {
    if start > end {
        return Err(format!("--start {start} is after --end {end}"));
    }
    let span_ms = end.millis().saturating_sub(start.millis());
    if span_ms > MAX_SPAN_DAYS * 86_400_000 {
        return Err(format!(
            "the simulation would run from {start} to {end}, {} days; at most {MAX_SPAN_DAYS} days are replayed: pass --start and --end (is a sample dated far from the others?)",
            span_ms / 86_400_000
        ));
    }
    let n = evaluations(start, end);
    if n > MAX_EVALUATIONS {
        return Err(format!(
            "the simulation from {start} to {end} is {n} evaluations (proxies × evaluation times), more than {MAX_EVALUATIONS}: pass a shorter --start/--end, or fewer proxies"
        ));
    }
    Ok(())
}

/// An upper estimate of `set`'s evaluations over [start, end], computed without listing
/// the times: a cron fires at most once a minute.
fn estimated_evaluations(set: &PolicySet, fleet: &Fleet, start: Timestamp, end: Timestamp) -> u64 {
    let span = end.millis().saturating_sub(start.millis()).max(0) as u64;
    set.policies
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let step = match &p.schedule {
                crate::policy::Schedule::Interval(d) => d.as_millis().max(1) as u64,
                crate::policy::Schedule::Cron(_) => 60_000,
            };
            let proxies = set.managed_by(pi, fleet).count() as u64;
            proxies.saturating_mul(span / step + 1)
        })
        .fold(0u64, u64::saturating_add)
}

pub(crate) fn check_sets_range(
    sets: &[PolicySet],
    fleet: &Fleet,
    start: Timestamp,
    end: Timestamp,
) -> anyhow::Result<()> {
    check_range(start, end, |s, e| {
        sets.iter()
            .map(|set| estimated_evaluations(set, fleet, s, e))
            .fold(0u64, u64::saturating_add)
    })
    .map_err(|m| anyhow::anyhow!(m))
}

/// The largest synthetic trace generated in memory (16 bytes a sample), for
/// `--export-openmetrics`; the replay itself generates it on the fly, in bounded memory.
const MAX_SYNTHETIC_SAMPLES: u64 = 60_000_000;

/// Where the replays' samples come from.
enum Input {
    /// Traces in memory: one shared by every policy set, or one per set (in set order).
    Memory(Vec<Trace>),
    /// The synthetic trace, generated on the fly by each replay.
    Synthetic {
        spec: SyntheticSpec,
        targets: Vec<Target>,
        signals: (Vec<String>, Vec<String>),
    },
    /// A metrics CSV sorted by time, streamed by each replay.
    Csv { path: PathBuf, filter: csv::Filter },
    /// Prometheus, the policies' queries fetched a window at a time as each replay reads.
    Prometheus { url: String, prom: Prometheus },
}

pub(crate) struct Source {
    input: Input,
    start: Timestamp,
    end: Timestamp,
    notes: Vec<String>,
}

impl Source {
    /// Replays `set` (or a reference peer on it) over the samples for set `i`.
    #[allow(clippy::too_many_arguments)]
    fn replay(
        &self,
        i: usize,
        set: &PolicySet,
        fleet: &Fleet,
        opts: &SimOptions,
        peer: Option<super::reference::Peer>,
        record: Record,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(super::SimRun, Option<csv::CsvStats>), super::SimError> {
        let ahead = ReadAhead::default();
        match &self.input {
            Input::Memory(traces) => {
                let trace = traces.get(i).unwrap_or(&traces[0]);
                let mut src = TraceSource::new(trace);
                let run = replay_stream(set, fleet, &mut src, opts, peer, record, ahead, progress)?;
                Ok((run, None))
            }
            Input::Synthetic {
                spec,
                targets,
                signals,
            } => {
                let mut src = SyntheticSource::new(spec, targets, &signals.0, &signals.1);
                let run = replay_stream(set, fleet, &mut src, opts, peer, record, ahead, progress)?;
                Ok((run, None))
            }
            Input::Prometheus { url, prom } => {
                let mut src =
                    PromSource::new(url, prom, set, fleet, self.start, self.end, 86_400_000)?;
                let run = replay_stream(set, fleet, &mut src, opts, peer, record, ahead, progress)?;
                Ok((run, None))
            }
            Input::Csv { path, filter } => {
                let mut src = csv::CsvSource::open(path, filter).map_err(SourceError::from)?;
                let run = replay_stream(set, fleet, &mut src, opts, peer, record, ahead, progress)?;
                Ok((run, Some(src.stats().clone())))
            }
        }
    }
}

/// A replay's error for the binary: an unreachable Prometheus is an environment error
/// (exit 2), the rest the user's (exit 1).
fn sim_error(e: super::SimError) -> anyhow::Error {
    match e {
        super::SimError::Source(SourceError::Fetch {
            message,
            environment: true,
        }) => crate::exit::env_error(message),
        e => anyhow::Error::new(e),
    }
}

/// The notes of a CSV read.
fn csv_notes(path: &Path, stats: &csv::CsvStats) -> Vec<String> {
    let mut notes = vec![format!(
        "{}: {} samples read from {} lines; {} NaN values (read as no data)",
        path.display(),
        stats.samples,
        stats.lines,
        stats.nan_values
    )];
    for (p, n) in &stats.unknown_proxies {
        notes.push(format!(
            "skipped {n} samples of `{p}`: not a proxy of the fleet"
        ));
    }
    for (s, n) in &stats.unknown_signals {
        notes.push(format!(
            "skipped {n} samples of signal `{s}`: no policy uses it"
        ));
    }
    notes
}

/// The synthetic trace generated whole into memory, with a progress phase.
fn generate_in_memory(
    spec: &synthetic::SyntheticSpec,
    targets: &[synthetic::Target],
    signals: &(Vec<String>, Vec<String>),
    samples: u64,
) -> crate::trace::Trace {
    let _phase = Phase::start(format!(
        "generating the synthetic trace ({} proxies × {} days, {samples} samples)",
        targets.len(),
        spec.days
    ));
    synthetic::generate(spec, targets, &signals.0, &signals.1)
}

/// Reads a metrics CSV into memory (a file not sorted by time).
fn csv_in_memory(path: &Path, filter: &csv::Filter, args: &SimulateArgs) -> anyhow::Result<Source> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let phase = Phase::start(format!(
        "reading {} ({:.1} MiB)",
        path.display(),
        size as f64 / f64::from(1u32 << 20)
    ));
    let (trace, stats) = csv::read_file(path, filter)?;
    drop(phase);
    let notes = csv_notes(path, &stats);
    let Some((first, last)) = trace.span() else {
        bail!(
            "{}: no usable samples (no sample matches a fleet proxy and a policy signal)",
            path.display()
        );
    };
    Ok(Source {
        input: Input::Memory(vec![trace]),
        start: args.start.unwrap_or(first),
        end: args.end.unwrap_or(last),
        notes,
    })
}

pub(crate) fn load_source(
    args: &SimulateArgs,
    sets: &[PolicySet],
    fleet: &mut Fleet,
) -> anyhow::Result<Source> {
    load_source_as(args, sets, fleet, true)
}

/// The samples of the source in memory, once, for `tune`, which replays every candidate
/// over the same history: a CSV read whole, the synthetic trace generated once (at most
/// the export's size), Prometheus fetched at once. Returns the trace, the range and the
/// notes.
pub(crate) fn load_in_memory(
    args: &SimulateArgs,
    sets: &[PolicySet],
    fleet: &mut Fleet,
) -> anyhow::Result<(Trace, Timestamp, Timestamp, Vec<String>)> {
    let src = load_source_as(args, sets, fleet, false)?;
    let trace = match src.input {
        Input::Memory(mut traces) => traces.swap_remove(0),
        Input::Synthetic {
            spec,
            targets,
            signals,
        } => {
            let samples = u64::from(spec.days) * 1440 * 2 * targets.len() as u64;
            if samples > MAX_SYNTHETIC_SAMPLES {
                bail!(
                    "a synthetic trace of {} days × {} proxies is {samples} samples, more than {MAX_SYNTHETIC_SAMPLES} (about 1 GiB) held in memory to replay each candidate: use fewer --days or --proxies",
                    spec.days,
                    targets.len()
                );
            }
            generate_in_memory(&spec, &targets, &signals, samples)
        }
        Input::Csv { path, filter } => {
            let phase = Phase::start(format!("reading {}", path.display()));
            let (trace, _) = csv::read_file(&path, &filter)?;
            drop(phase);
            trace
        }
        Input::Prometheus { .. } => unreachable!("fetched at once when not streamed"),
    };
    Ok((trace, src.start, src.end, src.notes))
}

/// [`load_source`]; `stream = false` fetches Prometheus at once (into memory).
fn load_source_as(
    args: &SimulateArgs,
    sets: &[PolicySet],
    fleet: &mut Fleet,
    stream: bool,
) -> anyhow::Result<Source> {
    if let Some(path) = &args.metrics {
        let mut signals: BTreeSet<String> = BTreeSet::new();
        for p in sets.iter().flat_map(|s| &s.policies) {
            signals.extend(p.signals.keys().cloned());
        }
        let (bw, conn) = signal_names(sets);
        signals.extend(bw);
        signals.extend(conn);
        let filter = csv::Filter {
            proxies: Some(fleet.proxies.iter().map(|p| p.id.clone()).collect()),
            signals: Some(signals),
        };
        // A file sorted by time streams; its range is its first and last kept samples.
        let span = match (args.start, args.end) {
            (Some(s), Some(e)) => Some((s, e)),
            _ => csv::sorted_span(path, &filter)?
                .map(|(a, b)| (args.start.unwrap_or(a), args.end.unwrap_or(b))),
        };
        return match span {
            // The end read from the file's last lines is the data's end only if the file
            // is sorted by time; one grouped by series ends with its last series. A
            // start past it may lie inside the data: read the file to know.
            Some((start, end)) if start > end && args.end.is_none() => {
                csv_in_memory(path, &filter, args)
            }
            Some((start, end)) => Ok(Source {
                input: Input::Csv {
                    path: path.clone(),
                    filter,
                },
                start,
                end,
                notes: Vec::new(),
            }),
            None => csv_in_memory(path, &filter, args),
        };
    }
    if let Some(url) = &args.prometheus {
        return prometheus_source(url, args, sets, fleet, stream);
    }
    if let Some(n) = args.proxies {
        if n == 0 {
            bail!("--proxies must be at least 1");
        }
        resize_fleet(fleet, n);
    }
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    let samples = u64::from(args.days) * 1440 * 2 * fleet.proxies.len() as u64;
    let spec = SyntheticSpec {
        start: args.start.unwrap_or(synthetic::DEFAULT_START),
        days: args.days,
        step: Duration::from_secs(60),
        seed: args.seed,
    };
    let targets: Vec<Target> = fleet.proxies.iter().map(Target::of).collect();
    let signals = signal_names(sets);
    let last = spec.end() - spec.step;
    let notes = vec![format!(
        "synthetic trace: {} proxies × {} days at 1-minute steps, seed {} (daily and weekly cycles, trend, noise, one flash crowd per proxy, a 30–60 min data gap on every third proxy)",
        targets.len(),
        spec.days,
        spec.seed
    )];
    let input = if args.export_openmetrics.is_some() {
        // The export needs the whole trace at once.
        if samples > MAX_SYNTHETIC_SAMPLES {
            bail!(
                "--export-openmetrics: a synthetic trace of {} days × {} proxies is {samples} samples, more than {MAX_SYNTHETIC_SAMPLES} (about 1 GiB) held in memory for the export: use fewer --days or --proxies",
                args.days,
                fleet.proxies.len()
            );
        }
        Input::Memory(vec![generate_in_memory(&spec, &targets, &signals, samples)])
    } else {
        Input::Synthetic {
            spec: spec.clone(),
            targets,
            signals,
        }
    };
    Ok(Source {
        input,
        start: spec.start,
        end: args.end.unwrap_or(last).min(last),
        notes,
    })
}

/// The policies' own queries as range queries over [start, end] (default: the last 7
/// days up to now), on each policy's evaluation grid.
fn prometheus_source(
    url: &str,
    args: &SimulateArgs,
    sets: &[PolicySet],
    fleet: &Fleet,
    stream: bool,
) -> anyhow::Result<Source> {
    // The imperative shell may read the clock: the default end is now.
    let end = args
        .end
        .unwrap_or_else(|| Timestamp::from_datetime(&chrono::Utc::now()));
    let start = args
        .start
        .unwrap_or(end - Duration::from_secs(DEFAULT_PROMETHEUS_DAYS * 86_400));
    check_sets_range(sets, fleet, start, end)?;
    let prom = Prometheus::new(url, ClientOptions::default())?;
    // Interval policies (their grid is aligned to the epoch, so windows fetch the same
    // points as one range) are fetched window by window as the replay reads; a cron
    // policy's grid depends on the whole range, so such sets are fetched at once.
    let cron = sets
        .iter()
        .flat_map(|s| &s.policies)
        .any(|p| matches!(p.schedule, crate::policy::Schedule::Cron(_)));
    if stream && !cron {
        return Ok(Source {
            notes: vec![format!(
                "Prometheus {url}: fetched {start} → {end}, a day at a time"
            )],
            input: Input::Prometheus {
                url: url.to_string(),
                prom,
            },
            start,
            end,
        });
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template("fetching {bar:40} {pos}/{len} range requests")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    // One trace per policy set, fetched policy by policy for the proxies each policy
    // manages: policies may give one signal name different queries.
    let mut traces = Vec::with_capacity(sets.len());
    for set in sets {
        let mut trace = Trace::default();
        for (pi, policy) in set.policies.iter().enumerate() {
            let ids: Vec<String> = set.managed_by(pi, fleet).map(str::to_string).collect();
            if ids.is_empty() {
                continue;
            }
            // A seasonal recommender warms up on the history before the start.
            let from = match policy.predictive.mode {
                crate::policy::PredictiveMode::Off => start,
                _ => start - policy.predictive.lookback,
            };
            let fetched = runtime.block_on(prom.fetch_range(
                std::slice::from_ref(policy),
                &ids,
                from,
                end,
                |done, total| {
                    if let Some(pb) = &bar {
                        pb.set_length(total as u64);
                        pb.set_position(done as u64);
                    }
                },
            ));
            let part = fetched.map_err(|e| {
                if e.is_environment() {
                    crate::exit::env_error(format!("{e} (while fetching the history from {url})"))
                } else {
                    anyhow::Error::new(e).context(format!("policy `{}`", policy.name))
                }
            })?;
            trace.series.extend(part.series);
        }
        traces.push(trace);
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let samples: usize = traces.iter().map(Trace::sample_count).sum();
    Ok(Source {
        notes: vec![format!(
            "Prometheus {url}: {samples} samples fetched, {start} → {end}"
        )],
        input: Input::Memory(traces),
        start,
        end,
    })
}

/// One phase of `simulate` shown on a terminal as a spinner with its elapsed time
/// (nothing when stderr is not a terminal); cleared when dropped.
pub(crate) struct Phase(Option<indicatif::ProgressBar>);

impl Phase {
    pub(crate) fn start(message: String) -> Phase {
        Phase(std::io::stderr().is_terminal().then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.set_message(message);
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        }))
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(pb) = &self.0 {
            pb.finish_and_clear();
        }
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let phase = Phase::start("loading the policies and the fleet".into());
    let prices = match &args.prices {
        Some(p) => Some(Prices::load(p)?),
        None => None,
    };
    let mut fleet = load_fleet(args.fleet.as_deref())?;
    let sets = load_sets(&args.policies)?;
    drop(phase);
    let mut source = load_source(&args, &sets, &mut fleet)?;
    // Before anything is sized by the range (a sample dated 2100 would otherwise make the
    // replay list 74 years of evaluation times).
    check_sets_range(&sets, &fleet, source.start, source.end)?;
    if let Some(path) = &args.export_openmetrics {
        let Input::Memory(traces) = &source.input else {
            bail!("--export-openmetrics: only the synthetic trace and Prometheus are exported");
        };
        let _phase = Phase::start(format!("writing OpenMetrics to {}", path.display()));
        let names = super::openmetrics::names(sets.iter().flat_map(|s| &s.policies))
            .map_err(|e| anyhow::anyhow!("--export-openmetrics: {e}"))?;
        let text = super::openmetrics::render(&traces[0], &names);
        std::fs::write(path, text)
            .with_context(|| format!("cannot write OpenMetrics to {}", path.display()))?;
    }
    let mut opts = SimOptions::new(source.start, source.end);
    opts.adjusting = args.adjusting;
    if let Some(path) = &args.pause {
        opts.pauses = load_pause_schedule(path)?;
    }

    let peers_n = args.reference.as_ref().map_or(0, |p| p.0.len()) as u64;
    let total: u64 = sets
        .iter()
        .map(|s| super::evaluation_count(s, &fleet, &opts))
        .sum::<u64>()
        + peers_n * super::evaluation_count(&sets[0], &fleet, &opts);
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(total);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "simulating {bar:40} {pos}/{len} evaluations ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let mut tick = |n: u64| {
        if let Some(pb) = &bar {
            pb.inc(n);
        }
    };
    // Every replay streams its samples and tallies its figures as it goes.
    let daily = prices.as_ref().and_then(|p| p.daily.as_ref());
    let own = Record::Tally { daily, chart: None };
    let mut runs = Vec::with_capacity(sets.len());
    for (i, set) in sets.iter().enumerate() {
        let first = source.replay(i, set, &fleet, &opts, None, own, &mut tick);
        let (mut run, stats) = match first {
            // Not sorted by time: read into memory, as the reader always could.
            Err(super::SimError::Source(SourceError::Unsorted {
                file,
                line,
                message,
            })) => {
                let Input::Csv { path, filter } = &source.input else {
                    unreachable!("only a CSV is unsorted");
                };
                tracing::info!(%file, line, %message, "the metrics file is not sorted by time: reading it into memory");
                let (path, filter) = (path.clone(), filter.clone());
                let notes = source.notes.clone();
                source = csv_in_memory(&path, &filter, &args)?;
                source.notes.extend(notes);
                source.notes.push(format!(
                    "{file}: not sorted by time (line {line}), so read into memory; a file sorted by time is streamed in bounded memory (sort -s -t, -k1,1n)"
                ));
                opts.start = source.start;
                opts.end = source.end;
                source
                    .replay(i, set, &fleet, &opts, None, own, &mut tick)
                    .map_err(sim_error)?
            }
            other => other.map_err(sim_error)?,
        };
        if let (Some(stats), Input::Csv { path, .. }) = (&stats, &source.input)
            && i == 0
        {
            if stats.samples == 0 {
                bail!(
                    "{}: no usable samples (no sample matches a fleet proxy and a policy signal)",
                    path.display()
                );
            }
            let mut notes = csv_notes(path, stats);
            notes.append(&mut source.notes);
            source.notes = notes;
        }
        if !opts.pauses.is_empty() {
            run.label = format!("{} (with the pauses)", run.label);
        }
        runs.push(run);
    }
    // The reference peers, on the first set's proxies, bounds and schedules (their chart
    // lines on the first set's charts).
    let peer_chart = Record::Tally {
        daily,
        chart: Some(super::chart_range(&sets[0], &fleet, &opts)),
    };
    let peers = args.reference.clone().map(|p| p.0).unwrap_or_default();
    let mut peer_runs = Vec::with_capacity(peers.len());
    for &peer in &peers {
        let (run, _) = source
            .replay(
                0,
                &sets[0],
                &fleet,
                &opts,
                Some(peer),
                peer_chart,
                &mut tick,
            )
            .map_err(sim_error)?;
        peer_runs.push(run);
    }
    // With a pause schedule, the first set again without it: what the pauses cost.
    let unpaused = if opts.pauses.is_empty() {
        None
    } else {
        let plain = SimOptions {
            pauses: Vec::new(),
            ..opts.clone()
        };
        let (mut run, _) = source
            .replay(0, &sets[0], &fleet, &plain, None, own, &mut |_| {})
            .map_err(sim_error)?;
        run.label = format!("{} (without the pauses)", sets[0].label);
        Some(run)
    };
    let unpaused_named = unpaused.is_some();
    peer_runs.extend(unpaused);
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let phase = Phase::start("computing the report's figures".into());
    let reports: Vec<SetReport> = runs
        .iter()
        .map(|r| report::set_report(r, prices.as_ref()))
        .collect();
    let peer_reports: Vec<SetReport> = peer_runs
        .iter()
        .map(|r| report::set_report(r, prices.as_ref()))
        .collect();
    drop(phase);
    if let Some(path) = &args.report {
        let _phase = Phase::start(format!("writing the HTML report {}", path.display()));
        // The peers are drawn as extra capacity lines on the charts and summed up beside
        // the policy in each fleet summary.
        let reference: Vec<html::Reference> = peers
            .iter()
            .zip(peer_reports.iter().zip(&peer_runs))
            .map(|(p, (report, run))| html::Reference {
                name: p.as_str(),
                report,
                run,
            })
            .collect();
        let doc = html::render_with_reference(&reports, &runs, &sets, &reference, &source.notes);
        std::fs::write(path, doc)
            .with_context(|| format!("cannot write the HTML report to {}", path.display()))?;
    }
    if std::env::var_os("GAAP_AUTOSCALER_PEAK_RSS").is_some() {
        // For the memory-bound test: the peak resident set, as the kernel counts it.
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            eprintln!("peak_rss_kib={kib}");
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let names = peers
            .iter()
            .map(|p| p.as_str())
            .chain(unpaused_named.then_some("without-pauses"));
        let named: Vec<(&str, SetReport)> = names.zip(peer_reports.iter().cloned()).collect();
        let doc = report::json_document_with_reference(&reports, &runs, &named);
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let text = render::render_with_reference(&reports, &peer_reports, &source.notes);
        out.write_all(crate::term::fit(text).as_bytes())?;
        if let Some(path) = &args.report {
            writeln!(out, "HTML report: {}", path.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_before_they_size_anything() {
        let t0 = Timestamp::from_secs(1_795_939_200);
        let day = Duration::from_secs(86_400);
        // (days, evaluations the estimate reports, Ok or a part of the message)
        let cases: [(u64, u64, Result<(), &str>); 5] = [
            (0, 1, Ok(())),
            (400, MAX_EVALUATIONS, Ok(())),
            (401, 1, Err("401 days; at most 400 days")),
            (27_000, 1, Err("at most 400 days")),
            (30, MAX_EVALUATIONS + 1, Err("more than 2000000000")),
        ];
        for (days, n, want) in cases {
            let got = check_range(t0, t0 + day * days as u32, |_, _| n);
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(w)) => assert!(e.contains(w), "{days} days: {e}"),
                _ => panic!("{days} days, {n}: got {got:?}, want {want:?}"),
            }
        }
        assert!(check_range(t0 + day, t0, |_, _| 0).is_err());
    }

    #[test]
    fn resize_fleet_truncates_or_clones_with_tags() {
        let mut fleet = Fleet {
            ladders: Vec::new(),
            proxies: vec![crate::core::fixtures::proxy(10, 2)],
        };
        fleet.proxies[0]
            .tags
            .insert("autoscale".into(), "web".into());
        resize_fleet(&mut fleet, 3);
        let ids: Vec<&str> = fleet.proxies.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["link-test0001", "link-sim00001", "link-sim00002"]);
        assert!(
            fleet
                .proxies
                .iter()
                .all(|p| p.tags.get("autoscale").map(String::as_str) == Some("web"))
        );
        resize_fleet(&mut fleet, 1);
        assert_eq!(fleet.proxies.len(), 1);
    }
}
