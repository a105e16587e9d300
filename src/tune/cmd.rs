//! `gaap-autoscaler tune`: the command shell around [`super`]: sources (as `simulate`
//! reads them), progress, the recommended policy files, the report.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::edit::{self, Retarget};
use super::frontier::{Objective, Point};
use super::space::{Knob, Setting};
use super::{By, Evaluator, Ranges, SearchOptions, TuneError, Tuned};
use crate::policy::Policy;
use crate::sim::cmd::{Phase, SimulateArgs};
use crate::sim::reference::Peer;
use crate::sim::report::{self, Prices};
use crate::sim::{PolicySet, SimOptions, synthetic};
use crate::time::{Timestamp, parse_duration, parse_time};
use crate::trace::Trace;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  gaap-autoscaler tune --out tuned/          # bundled policies, synthetic week
  gaap-autoscaler tune --policies policies/ --metrics export.csv --out tuned/
  gaap-autoscaler tune --synthetic --days 30 --proxies 100 --out tuned/ --json
  gaap-autoscaler tune --metrics export.csv --objective cost --out tuned/
  gaap-autoscaler tune --metrics export.csv --budget-changes 4 --out tuned/
  gaap-autoscaler tune --metrics export.csv --by proxy --holdout 30% --out t/
  gaap-autoscaler tune --metrics export.csv --out tuned/ \\
      --keys behavior.scale_down.stabilization,bandwidth.target_utilization
  gaap-autoscaler validate tuned/ && gaap-autoscaler simulate --policies tuned/

Objectives (each keeps changes per proxy-day at most --budget-changes):
  balanced  least spend, under-provisioning no worse than the current policy,
            preferring no more flaps than it
  cost      least spend, under-provisioning at most 1 point above the current
  service   least under-provisioning, spend at most 10% above the current
If nothing meets --budget-changes (the current policy may not), the budget is
raised to the current policy's own changes: the choice is then no worse than it.
Within 1% of the best, the candidate that changes the fewest keys is recommended
(an in-sample edge that small is mostly noise).
Spend is Mbps·h, or the cost with --prices (which also tunes the concurrent
target_utilization, hold_utilization and change_worth).

The search runs in two passes: first the behavior, target and predictive keys
from the policy's own settings; then the release keys (hold_utilization,
change_worth) from the first pass's recommendation, the other keys kept. Every
candidate of both passes is on one frontier and the recommendation is chosen
over all of it. --keys of one group only: one pass.")]
pub struct TuneArgs {
    /// The directory (or file) of policies to tune. Default: ./policies if it exists, else
    /// the bundled examples.
    #[arg(long = "policies", value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// The fleet file (ladders and proxies). Default: the bundled example fleet.
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// Tune on a metrics CSV (header `timestamp,proxy_id,signal,value`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["prometheus", "synthetic"])]
    pub metrics: Option<PathBuf>,
    /// Tune on the policies' own queries as range queries against this Prometheus.
    #[arg(long, value_name = "URL", conflicts_with = "synthetic")]
    pub prometheus: Option<String>,
    /// Tune on the built-in synthetic trace (the default source).
    #[arg(long)]
    pub synthetic: bool,
    /// Synthetic trace: number of days.
    #[arg(long, default_value_t = 7, value_name = "N", conflicts_with_all = ["metrics", "prometheus"])]
    pub days: u32,
    /// Synthetic trace: number of proxies (default: the fleet's).
    #[arg(long, value_name = "N", conflicts_with_all = ["metrics", "prometheus"])]
    pub proxies: Option<usize>,
    /// The seed of the search's random candidates and of the synthetic trace (same seed
    /// and input, same output).
    #[arg(long, default_value_t = synthetic::DEFAULT_SEED, value_name = "N")]
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
    /// A price table (as `simulate --prices`): the frontier weighs cost instead of Mbps·h.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Where to write the recommended policy files (same file names; must not be the
    /// policies directory).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which point of the frontier to recommend.
    #[arg(long, value_enum, default_value_t = Objective::Balanced)]
    pub objective: Objective,
    /// The most changes per proxy-day the recommendation may make.
    #[arg(long, default_value_t = 10.0, value_name = "N")]
    pub budget_changes: f64,
    /// The last share of the range held out: chosen on the rest, reported on it.
    #[arg(long, default_value = "25%", value_name = "SHARE", value_parser = parse_holdout)]
    pub holdout: f64,
    /// One tuned policy per policy, or per proxy (files `STEM-PROXY.toml`, policies
    /// `NAME-PROXY` selecting that proxy alone).
    #[arg(long, value_enum, default_value_t = By::Policy)]
    pub by: By,
    /// Only these keys (comma-separated, e.g. `behavior.scale_down.stabilization`).
    /// Default: every behavior key, the targets, `hold_utilization`, `change_worth` and
    /// `[predictive]` quantile and lead (`hold_utilization` and `change_worth` in a second
    /// pass, from the first pass's recommendation).
    #[arg(long, value_delimiter = ',', value_name = "KEYS", value_parser = parse_key)]
    pub keys: Vec<Knob>,
    /// Reference peers placed on the frontier: `hpa`, `aws`, `autopilot`, `all` or `none`.
    #[arg(long, default_value = "all", value_name = "LIST")]
    pub reference: String,
    /// Print one JSON object (the frontiers and the choices) on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_holdout(s: &str) -> Result<f64, String> {
    super::parse_holdout(s).map_err(|e| e.to_string())
}

fn parse_key(s: &str) -> Result<Knob, String> {
    Knob::parse(s.trim()).ok_or_else(|| {
        let keys: Vec<&str> = Knob::ALL.iter().map(|k| k.key()).collect();
        format!("unknown key `{s}`: tunable keys are {}", keys.join(", "))
    })
}

fn peers(s: &str) -> anyhow::Result<Vec<Peer>> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    Peer::parse_list(s)
        .map(|p| p.0)
        .map_err(|e| anyhow::anyhow!("--reference: {e}"))
}

/// The tuned range as the user reads it.
fn range_json(r: &Ranges, end: Timestamp, share: f64) -> serde_json::Value {
    serde_json::json!({
        "start": r.start.to_rfc3339(),
        "end": end.to_rfc3339(),
        "holdout_share": share,
        "in_sample": { "start": r.start.to_rfc3339(), "end": r.in_sample_end.to_rfc3339() },
        "holdout": r.holdout.map(|(s, e)| serde_json::json!({ "start": s.to_rfc3339(), "end": e.to_rfc3339() })),
    })
}

/// Samples of the fleet's series within [start, end].
fn samples_within(trace: &Trace, start: Timestamp, end: Timestamp) -> usize {
    trace
        .series
        .values()
        .map(|s| {
            s.times.partition_point(|&t| t <= end.millis())
                - s.times.partition_point(|&t| t < start.millis())
        })
        .sum()
}

fn figures_line(p: &Point, priced: bool) -> String {
    let spend = if priced {
        format!("cost {:.2}", p.spend())
    } else {
        format!("{:.1} Mbps·h", p.footprint_mbps_hours)
    };
    format!(
        "under-provisioned {:.3}%, {spend}, {:.2} changes/proxy-day, {} flaps",
        p.under_provisioned_pct, p.changes_per_proxy_day, p.flapping
    )
}

fn settings_json(s: &[(Knob, Setting)]) -> serde_json::Value {
    serde_json::Value::Object(
        s.iter()
            .map(|(k, v)| (k.key().to_string(), v.json()))
            .collect(),
    )
}

fn settings_text(s: &[(Knob, Setting)]) -> String {
    if s.is_empty() {
        return "(the current settings)".into();
    }
    s.iter()
        .map(|(k, v)| format!("{}={v}", k.key()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a point sits against the frontier: how many frontier points dominate it.
fn dominated_by(p: &Point, t: &Tuned) -> usize {
    t.frontier
        .iter()
        .filter(|&&i| t.searched.evaluated[i].point.dominates(p))
        .count()
}

/// The file a group's policy came from and its text.
fn source_text(policy: &Policy) -> anyhow::Result<(PathBuf, String)> {
    let path = policy
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.toml", policy.name)));
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(e) => crate::sim::cmd::BUNDLED_POLICIES
            .iter()
            .find(|(name, _)| Path::new(name) == path)
            .map(|(_, text)| (path.clone(), text.to_string()))
            .ok_or(e)
            .with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The file name a group's policy is written to.
fn out_name(t: &Tuned, by: By, source: &Path) -> String {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| t.group.original.name.clone());
    match by {
        By::Policy => format!("{stem}.toml"),
        By::Proxy => {
            let proxy = &t.group.policy.selector.proxies[0];
            format!("{stem}-{proxy}.toml")
        }
    }
}

/// The keys tuned, by pass when there are two.
fn keys_text(t: &Tuned) -> String {
    let list = |keys: &[Knob]| keys.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ");
    match t.searched.passes.as_slice() {
        [first, second] => format!(
            "{}; then, from that pass's choice, {}",
            list(&first.keys),
            list(&second.keys)
        ),
        _ => list(&t.space.axes.iter().map(|a| a.knob).collect::<Vec<_>>()),
    }
}

/// The passes as the text report says them (empty: one pass).
fn passes_text(t: &Tuned) -> String {
    if t.searched.passes.len() < 2 {
        return String::new();
    }
    let parts: Vec<String> = t
        .searched
        .passes
        .iter()
        .map(|p| {
            let what = if p.keys.iter().all(|k| k.is_release()) {
                "release keys"
            } else {
                "behavior and target keys"
            };
            format!("{what} ({} screened, {} replayed)", p.screened, p.replayed)
        })
        .collect();
    format!("; in {} passes: {}", parts.len(), parts.join(", then "))
}

fn header(t: &Tuned, args: &TuneArgs, ranges: &Ranges, priced: bool) -> Vec<String> {
    let changed = t.space.changes(&t.chosen().candidate);
    let was: Vec<String> = changed
        .iter()
        .map(|(k, v)| {
            let old = t
                .space
                .axes
                .iter()
                .find(|a| a.knob == *k)
                .map(|a| a.values[a.current].to_string())
                .unwrap_or_default();
            format!("{} {old} -> {v}", k.key())
        })
        .collect();
    let mut h = vec![
        format!(
            "tuned by `gaap-autoscaler tune` (objective {}, at most {} changes per proxy-day, --by {}, seed {})",
            args.objective.as_str(),
            args.budget_changes,
            match args.by {
                By::Policy => "policy",
                By::Proxy => "proxy",
            },
            args.seed
        ),
        format!("keys tuned: {}", keys_text(t)),
        format!(
            "chosen on {} .. {}{}",
            ranges.start.to_rfc3339(),
            ranges.in_sample_end.to_rfc3339(),
            ranges.holdout.map_or(String::new(), |(s, e)| format!(
                "; held out {} .. {}",
                s.to_rfc3339(),
                e.to_rfc3339()
            ))
        ),
        if was.is_empty() {
            "changed: nothing (the current settings were the best found)".into()
        } else {
            format!("changed: {}", was.join("; "))
        },
        format!(
            "in-sample before: {}",
            figures_line(&t.current().point, priced)
        ),
        format!(
            "in-sample after:  {}",
            figures_line(&t.chosen().point, priced)
        ),
    ];
    if let Some((b, a)) = &t.holdout {
        h.push(format!("held-out before: {}", figures_line(b, priced)));
        h.push(format!("held-out after:  {}", figures_line(a, priced)));
    }
    h
}

pub fn run(args: TuneArgs) -> anyhow::Result<ExitCode> {
    let phase = Phase::start("loading the policies and the fleet".into());
    let prices = args.prices.as_deref().map(Prices::load).transpose()?;
    let mut fleet = crate::sim::cmd::load_fleet(args.fleet.as_deref())?;
    let policy_paths: Vec<PathBuf> = args.policies.iter().cloned().collect();
    let sets = crate::sim::cmd::load_sets(&policy_paths)?;
    let peers = peers(&args.reference)?;
    let keys: Vec<Knob> = if args.keys.is_empty() {
        Knob::ALL.to_vec()
    } else {
        args.keys.clone()
    };
    if !args.budget_changes.is_finite() || args.budget_changes < 0.0 {
        bail!("--budget-changes must be a number of changes per proxy-day, 0 or more");
    }
    drop(phase);
    // The directory the policies come from (`./policies` by default; a file's directory).
    let from = args
        .policies
        .clone()
        .or_else(|| Some(PathBuf::from("policies")).filter(|p| p.exists()))
        .map(|p| match p.is_dir() {
            true => p,
            false => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        });
    if let Some(dir) = from
        && args.out.exists()
        && std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &dir
        })
        .ok()
            == std::fs::canonicalize(&args.out).ok()
    {
        bail!(
            "--out {} is the policies directory: write the tuned policies elsewhere",
            args.out.display()
        );
    }
    let sim_args = SimulateArgs {
        policies: policy_paths,
        fleet: args.fleet.clone(),
        metrics: args.metrics.clone(),
        prometheus: args.prometheus.clone(),
        synthetic: args.synthetic,
        days: args.days,
        proxies: args.proxies,
        seed: args.seed,
        start: args.start,
        end: args.end,
        adjusting: args.adjusting,
        json: false,
        report: None,
        export_openmetrics: None,
        prices: None,
        reference: None,
        pause: None,
    };
    let (trace, start, end, _notes) =
        crate::sim::cmd::load_in_memory(&sim_args, &sets, &mut fleet)?;
    if start > end {
        return Err(TuneError::EmptyRange {
            why: format!("--start {} is after --end {}", start, end),
        }
        .into());
    }
    crate::sim::cmd::check_sets_range(&sets, &fleet, start, end)?;
    let trace = &trace;
    let set = &sets[0];
    if samples_within(trace, start, end) == 0 {
        return Err(TuneError::EmptyRange {
            why: format!(
                "no sample between {} and {}",
                start.to_rfc3339(),
                end.to_rfc3339()
            ),
        }
        .into());
    }
    let ranges = super::split_range(start, end, args.holdout)?;
    if samples_within(trace, ranges.start, ranges.in_sample_end) == 0 {
        return Err(TuneError::TooShort {
            part: "the in-sample part (no samples)",
            have: "0s".into(),
            need: crate::time::format_duration(super::MIN_PART),
        }
        .into());
    }
    let (groups, group_notes) = super::groups(set, &fleet, args.by)?;
    let priced = prices.is_some();
    let mut spaces = Vec::with_capacity(groups.len());
    for g in &groups {
        let space = super::Space::of(&g.policy, &keys, priced);
        if space.is_empty() {
            return Err(TuneError::NothingToTune {
                policy: g.policy.name.clone(),
                why: format!(
                    "none of the keys asked for applies to it ({})",
                    keys.iter().map(|k| k.key()).collect::<Vec<_>>().join(", ")
                ),
            }
            .into());
        }
        spaces.push(space);
    }

    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "tuning {msg} {bar:30} {pos}/{len} evaluations ({eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let plan = |n: u64| {
        if let Some(pb) = &bar {
            pb.inc_length(n);
        }
    };
    let done = |n: u64| {
        if let Some(pb) = &bar {
            pb.inc(n);
        }
    };
    // The group being tuned, for the pass shown beside it.
    let tuning = std::sync::Mutex::new(String::new());
    let stage = |what: &str| {
        if let Some(pb) = &bar {
            let name = tuning.lock().map(|g| g.clone()).unwrap_or_default();
            pb.set_message(if what.is_empty() {
                name
            } else {
                format!("{name} ({what})")
            });
        }
    };
    let ev = Evaluator {
        trace,
        prices: prices.as_ref(),
        adjusting: args.adjusting,
        plan: &plan,
        done: &done,
        stage: &stage,
    };
    let opts = SearchOptions::new(args.objective, args.budget_changes, args.seed);
    let mut tuned = Vec::with_capacity(groups.len());
    for (g, space) in groups.into_iter().zip(spaces) {
        if let Ok(mut name) = tuning.lock() {
            name.clone_from(&g.name);
        }
        if let Some(pb) = &bar {
            pb.set_message(g.name.clone());
        }
        tracing::info!(group = %g.name, keys = space.axes.len(), "tuning");
        tuned.push(super::tune_group(g, space, &ev, &ranges, &opts, &peers)?);
    }

    // The recommended files, checked by parsing them back.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut written = Vec::new();
    let mut after = Vec::new();
    for t in &tuned {
        let (source_path, text) = source_text(&t.group.original)?;
        let settings = t.space.changes(&t.chosen().candidate);
        let retarget = (args.by == By::Proxy).then(|| Retarget {
            name: &t.group.policy.name,
            proxy: &t.group.policy.selector.proxies[0],
        });
        let new_text = edit::rewrite(
            &text,
            &settings,
            retarget,
            &header(t, &args, &ranges, priced),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", source_path.display()))?;
        let path = args.out.join(out_name(t, args.by, &source_path));
        let policy = crate::policy::parse_policy(&new_text, &path).map_err(|d| {
            anyhow::anyhow!(
                "the tuned policy for {} does not validate (a bug):\n{}",
                path.display(),
                crate::policy::diagnostic::render(&d)
            )
        })?;
        std::fs::write(&path, new_text)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        after.push(policy);
    }

    // The fleet before and after, replayed as `simulate` replays the directories.
    let before_set = set.clone();
    let after_set = PolicySet {
        label: args.out.display().to_string(),
        policies: after,
    };
    let summary = |s: &PolicySet, start: Timestamp, end: Timestamp| -> anyhow::Result<Point> {
        let mut o = SimOptions::new(start, end);
        o.adjusting = args.adjusting;
        plan(crate::sim::evaluation_count(s, &fleet, &o));
        let run = crate::sim::replay(s, &fleet, trace, &o, &mut |n| done(n))?;
        Ok(super::point_of_summary(
            &report::set_report(&run, prices.as_ref()).summary,
        ))
    };
    let fleet_in = (
        summary(&before_set, ranges.start, ranges.in_sample_end)?,
        summary(&after_set, ranges.start, ranges.in_sample_end)?,
    );
    let fleet_out = match ranges.holdout {
        Some((s, e)) => Some((summary(&before_set, s, e)?, summary(&after_set, s, e)?)),
        None => None,
    };
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }

    let mut warnings: Vec<String> = group_notes;
    for t in &tuned {
        if !t.choice.constraints_met {
            warnings.push(format!(
                "`{}`: no candidate met the `{}` objective within {} changes per proxy-day; recommended the closest",
                t.group.name,
                args.objective.as_str(),
                args.budget_changes
            ));
        }
        warnings.extend(super::holdout_warnings(t, args.budget_changes));
    }

    let mut out = std::io::stdout().lock();
    if args.json {
        let doc = json_document(
            &args, &ranges, end, &tuned, &written, fleet_in, fleet_out, &warnings, priced,
        );
        serde_json::to_writer(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        let text = text_report(
            &args, &ranges, &tuned, &written, fleet_in, fleet_out, priced,
        );
        out.write_all(crate::term::fit(text).as_bytes())?;
        for w in &warnings {
            crate::telemetry::notice(&format!("warning: {w}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn point_json(p: &Point, t: &Tuned) -> serde_json::Value {
    let n = dominated_by(p, t);
    serde_json::json!({ "figures": p, "on_frontier": n == 0, "dominated_by": n })
}

#[allow(clippy::too_many_arguments)]
fn json_document(
    args: &TuneArgs,
    ranges: &Ranges,
    end: Timestamp,
    tuned: &[Tuned],
    written: &[PathBuf],
    fleet_in: (Point, Point),
    fleet_out: Option<(Point, Point)>,
    warnings: &[String],
    priced: bool,
) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = tuned
        .iter()
        .zip(written)
        .map(|(t, path)| {
            let frontier: Vec<serde_json::Value> = t
                .frontier
                .iter()
                .map(|&i| {
                    let e = &t.searched.evaluated[i];
                    serde_json::json!({
                        "figures": e.point,
                        "settings": settings_json(&t.space.settings(&e.candidate)),
                        "changed": settings_json(&t.space.changes(&e.candidate)),
                        "current": i == 0,
                        "recommended": i == t.choice.index,
                    })
                })
                .collect();
            let reference: serde_json::Map<String, serde_json::Value> = t
                .peers
                .iter()
                .map(|(peer, p)| (peer.as_str().to_string(), point_json(p, t)))
                .collect();
            let chosen = t.chosen();
            let mut warnings = super::holdout_warnings(t, args.budget_changes);
            if !t.choice.constraints_met {
                warnings.insert(
                    0,
                    "no candidate met the objective; recommended the closest".into(),
                );
            }
            serde_json::json!({
                "name": t.group.name,
                "policy": t.group.original.name,
                "file": path.display().to_string(),
                "proxies": t.group.fleet.proxies.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
                "tuned_keys": t.space.axes.iter().map(|a| a.knob.key()).collect::<Vec<_>>(),
                "candidates_screened": t.searched.screened,
                "candidates_replayed": t.searched.evaluated.len(),
                "passes": t.searched.passes.iter().map(|p| serde_json::json!({
                    "keys": p.keys.iter().map(|k| k.key()).collect::<Vec<_>>(),
                    "from": settings_json(&t.space.changes(&t.searched.evaluated[p.base].candidate)),
                    "screened": p.screened,
                    "replayed": p.replayed,
                })).collect::<Vec<_>>(),
                "frontier": frontier,
                "current": {
                    "settings": settings_json(&t.space.settings(&t.current().candidate)),
                    "in_sample": point_json(&t.current().point, t),
                    "holdout": t.holdout.as_ref().map(|h| &h.0),
                },
                "reference": reference,
                "recommended": {
                    "settings": settings_json(&t.space.settings(&chosen.candidate)),
                    "changed": settings_json(&t.space.changes(&chosen.candidate)),
                    "constraints_met": t.choice.constraints_met,
                    "in_sample": chosen.point,
                    "holdout": t.holdout.as_ref().map(|h| &h.1),
                },
                "warnings": warnings,
            })
        })
        .collect();
    serde_json::json!({
        "objective": args.objective,
        "budget_changes": args.budget_changes,
        "by": args.by,
        "seed": args.seed,
        "spend": if priced { "cost" } else { "footprint_mbps_hours" },
        "holdout_margins": {
            "spend_ratio": super::HOLDOUT_SPEND_MARGIN,
            "under_provisioned_points": super::HOLDOUT_UNDER_MARGIN_POINTS,
        },
        "range": range_json(ranges, end, args.holdout),
        "groups": groups,
        "fleet": {
            "in_sample": { "before": fleet_in.0, "after": fleet_in.1 },
            "holdout": fleet_out.map(|(b, a)| serde_json::json!({ "before": b, "after": a })),
        },
        "written": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "warnings": warnings,
    })
}

/// At most this many frontier rows per group in the text report (`--json` has them all).
const TEXT_FRONTIER_ROWS: usize = 15;

fn text_report(
    args: &TuneArgs,
    ranges: &Ranges,
    tuned: &[Tuned],
    written: &[PathBuf],
    fleet_in: (Point, Point),
    fleet_out: Option<(Point, Point)>,
    priced: bool,
) -> String {
    let mut s = String::new();
    let spend = if priced { "cost" } else { "Mbps·h" };
    let _ = writeln!(
        s,
        "tune: objective {}, at most {} changes per proxy-day; chosen on {} .. {}{}",
        args.objective.as_str(),
        args.budget_changes,
        ranges.start.to_rfc3339(),
        ranges.in_sample_end.to_rfc3339(),
        ranges.holdout.map_or(String::new(), |(a, b)| format!(
            ", held out {} .. {}",
            a.to_rfc3339(),
            b.to_rfc3339()
        ))
    );
    for (t, path) in tuned.iter().zip(written) {
        let _ = writeln!(
            s,
            "\n{} ({} proxies): {} keys, {} candidates screened on the last quarter, {} replayed over the whole in-sample part{}",
            t.group.name,
            t.group.fleet.proxies.len(),
            t.space.axes.len(),
            t.searched.screened,
            t.searched.evaluated.len(),
            passes_text(t)
        );
        let _ = writeln!(
            s,
            "  {:<13} {:>10} {:>14} {:>11} {:>6}  settings",
            "", "under %", spend, "chg/px-day", "flaps"
        );
        let row = |s: &mut String, label: &str, p: &Point, what: &str| {
            let _ = writeln!(
                s,
                "  {label:<13} {:>10.3} {:>14.1} {:>11.2} {:>6}  {what}",
                p.under_provisioned_pct,
                p.spend(),
                p.changes_per_proxy_day,
                p.flapping
            );
        };
        for (n, &i) in t.frontier.iter().enumerate() {
            if n == TEXT_FRONTIER_ROWS {
                let _ = writeln!(
                    s,
                    "  ... {} more frontier points (--json lists them all)",
                    t.frontier.len() - n
                );
                break;
            }
            let e = &t.searched.evaluated[i];
            let label = match (i == t.choice.index, i == 0) {
                (true, true) => "* = current",
                (true, false) => "* recommended",
                (false, true) => "current",
                _ => "frontier",
            };
            row(
                &mut s,
                label,
                &e.point,
                &settings_text(&t.space.changes(&e.candidate)),
            );
        }
        if !t.frontier.contains(&t.choice.index) {
            // A near tie that changes fewer keys (frontier::choose).
            let chosen = t.chosen();
            let changes = t.space.changes(&chosen.candidate);
            let note = format!(
                "{} (within {:.0}% of the best, {} key(s) changed)",
                settings_text(&changes),
                crate::tune::frontier::NEAR_TIE * 100.0,
                changes.len()
            );
            row(&mut s, "* recommended", &chosen.point, &note);
        }
        if !t.frontier.contains(&0) {
            let n = dominated_by(&t.current().point, t);
            row(
                &mut s,
                "current",
                &t.current().point,
                &format!("dominated by {n} frontier point(s)"),
            );
        }
        for (peer, p) in &t.peers {
            let n = dominated_by(p, t);
            let what = if n == 0 {
                "on the frontier".to_string()
            } else {
                format!("dominated by {n} frontier point(s)")
            };
            row(&mut s, &format!("ref {}", peer.as_str()), p, &what);
        }
        if let Some((b, a)) = &t.holdout {
            let _ = writeln!(s, "  held out, current:     {}", figures_line(b, priced));
            let _ = writeln!(s, "  held out, recommended: {}", figures_line(a, priced));
        }
        let _ = writeln!(s, "  written: {}", path.display());
    }
    let _ = writeln!(
        s,
        "\nfleet, in-sample:  before {}",
        figures_line(&fleet_in.0, priced)
    );
    let _ = writeln!(
        s,
        "                   after  {}",
        figures_line(&fleet_in.1, priced)
    );
    if let Some((b, a)) = fleet_out {
        let _ = writeln!(s, "fleet, held out:   before {}", figures_line(&b, priced));
        let _ = writeln!(s, "                   after  {}", figures_line(&a, priced));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_references_parse_with_clear_errors() {
        assert_eq!(
            parse_key("behavior.scale_down.stabilization"),
            Ok(Knob::DownStabilization)
        );
        let e = parse_key("behavior.scale_down.stabilisation").unwrap_err();
        assert!(
            e.contains("tunable keys are behavior.scale_up.tolerance"),
            "{e}"
        );
        assert!(peers("none").unwrap().is_empty());
        assert_eq!(peers("all").unwrap().len(), 3);
        assert!(peers("k8s").is_err());
    }
}
