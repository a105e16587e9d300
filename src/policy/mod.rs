//! Policy files: TOML in, validated [`Policy`] out.
//!
//! Parsing is two-stage: [`raw`] holds serde types with spans (`toml::Spanned`), and
//! [`validate`] turns them into the rich types below, collecting every problem as a
//! [`Diagnostic`] with file, line and column. The decision core only ever sees [`Policy`].

pub mod cmd;
pub mod raw;
pub mod validate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering, fence};
use std::time::Duration;

pub use crate::diagnostic::{self, Diagnostic, Severity};
pub use validate::{
    CheckedPolicy, MAX_LOOKBACK_DAYS, PolicySpans, check_policy, check_policy_capped, parse_cron,
};

use crate::fleet::Fleet;

/// Parses and validates one policy file's text. `path` is only used in messages (and
/// recorded as [`Policy::source`]). Warnings are logged; on error every diagnostic
/// (errors and warnings) is returned.
pub fn parse_policy(text: &str, path: &Path) -> Result<Policy, Vec<Diagnostic>> {
    match check_policy(text, path) {
        (Some(c), diags) => {
            log_warnings(&diags);
            Ok(c.policy)
        }
        (None, diags) => Err(diags),
    }
}

/// Loads policy files and directories (a directory = its `*.toml` files, sorted by name),
/// with the cross-file checks: duplicate policy names and proxy ids listed by two
/// policies. Tag selectors need a fleet: see [`check_fleet_claims`].
///
/// Fleet and config files found in a directory are skipped (`validate` checks them as
/// such); one named explicitly is an error.
pub fn load_policies(paths: &[PathBuf]) -> Result<Vec<Policy>, Vec<Diagnostic>> {
    let (files, mut diags) = expand_paths(paths);
    let mut policy_files = Vec::new();
    for f in files {
        let kind = std::fs::read_to_string(&f).map_or(FileKind::Policy, |t| file_kind(&t));
        if kind == FileKind::Policy {
            policy_files.push(f);
        } else if paths.contains(&f) {
            diags.push(
                Diagnostic::error(
                    &f,
                    0,
                    0,
                    format!("this is a {} file, not a policy", kind.as_str()),
                )
                .with_help("pass policy files or directories of them"),
            );
        } else {
            tracing::debug!(file = %f.display(), kind = kind.as_str(), "skipping a non-policy file");
        }
    }
    let (checked, more) = check_policy_files(&policy_files);
    diags.extend(more);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    log_warnings(&diags);
    Ok(checked.into_iter().map(|c| c.policy).collect())
}

/// Proxies of the fleet matched (by id or by tags) by more than one policy: one error per
/// proxy, naming the policy files (no line: [`Policy`] keeps no places; `validate` reports
/// the same problem at the selectors).
pub fn check_fleet_claims(policies: &[Policy], fleet: &Fleet) -> Vec<Diagnostic> {
    let with_spans: Vec<(&Policy, Option<&PolicySpans>)> =
        policies.iter().map(|p| (p, None)).collect();
    claims(&with_spans, fleet)
}

fn log_warnings(diags: &[Diagnostic]) {
    for d in diags.iter().filter(|d| !d.is_error()) {
        tracing::warn!(file = %d.file.display(), line = d.line, col = d.col, "{}", d.message);
    }
}

/// What a TOML file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Policy,
    Fleet,
    Config,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Policy => "policy",
            FileKind::Fleet => "fleet",
            FileKind::Config => "config",
        }
    }
}

/// Tells a file's kind by its top-level tables: `[[proxy]]`/`[[ladder]]` → fleet,
/// `[engine]`/`[tencentcloud]`/`[prometheus]` → config, anything else → policy.
pub fn file_kind(text: &str) -> FileKind {
    // Parsing costs as much as checking a policy: a text that cannot hold any of these
    // keys is a policy without it.
    const KEYS: [&str; 5] = ["proxy", "ladder", "engine", "tencentcloud", "prometheus"];
    if !KEYS.iter().any(|k| may_be_key(text, k)) {
        return FileKind::Policy;
    }
    let keys = raw::top_level_keys(text);
    let has = |k: &str| keys.iter().any(|x| x == k);
    if has("proxy") || has("ladder") {
        FileKind::Fleet
    } else if has("engine") || has("tencentcloud") || has("prometheus") {
        FileKind::Config
    } else {
        FileKind::Policy
    }
}

/// Whether `word` may be a key in `text`: it is written somewhere not as part of a longer
/// bare key (bare keys are letters, digits, `_` and `-`), or the text has a backslash (a
/// quoted key may spell it with escapes).
fn may_be_key(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let bare = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-');
    text.contains('\\')
        || text.match_indices(word).any(|(i, _)| {
            let before = i.checked_sub(1).and_then(|j| bytes.get(j));
            !before.is_some_and(bare) && !bytes.get(i + word.len()).is_some_and(bare)
        })
}

/// Files named, plus the `*.toml` files of directories named (sorted by name). A
/// directory without any is an error, so is a path that does not exist.
pub fn expand_paths(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut files = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        if p.is_dir() {
            let entries = match std::fs::read_dir(p) {
                Ok(e) => e,
                Err(e) => {
                    diags.push(Diagnostic::io(p, &e));
                    continue;
                }
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "toml"))
                .collect();
            found.sort();
            if found.is_empty() {
                diags.push(
                    Diagnostic::error(p, 0, 0, "no policy files (*.toml) in this directory")
                        .with_help(
                            "write one policy per file, e.g. policies/web.toml (see the README)",
                        ),
                );
            }
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            diags.push(
                Diagnostic::error(p, 0, 0, "no such file or directory")
                    .with_help("pass policy files or directories of them (default: ./policies)"),
            );
        }
    }
    // The same file named twice (`policies policies/web.toml`) is checked once.
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    (files, diags)
}

/// Reads and checks policy files, then checks them against each other.
pub fn check_policy_files(files: &[PathBuf]) -> (Vec<CheckedPolicy>, Vec<Diagnostic>) {
    let (checked, diags, _) = check_policy_files_capped(files, usize::MAX);
    (checked, diags)
}

/// As [`check_policy_files`], keeping each file's first `limit` diagnostics (in the order
/// of the file) and counting the others: the first `limit` of all files stay in order.
pub fn check_policy_files_capped(
    files: &[PathBuf],
    limit: usize,
) -> (Vec<CheckedPolicy>, Vec<Diagnostic>, diagnostic::Omitted) {
    let mut checked = Vec::new();
    let mut diags = Vec::new();
    let mut omitted = diagnostic::Omitted::default();
    for f in files {
        match diagnostic::read_text(f) {
            Ok(text) => {
                let (p, d, more) = check_policy_capped(&text, f, limit);
                diags.extend(d);
                omitted.add(more);
                checked.extend(p);
            }
            Err(d) => diags.push(d),
        }
    }
    diags.extend(cross_checks(&checked));
    (checked, diags, omitted)
}

fn place(p: &Policy, loc: (usize, usize)) -> String {
    match &p.source {
        Some(f) if loc.0 > 0 => format!("{}:{}:{}", f.display(), loc.0, loc.1),
        Some(f) => f.display().to_string(),
        None => format!("<policy {}>", p.name),
    }
}

fn diag_at(p: &Policy, loc: (usize, usize), message: String, help: &str) -> Diagnostic {
    let file = p
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("<policy {}>", p.name)));
    Diagnostic::error(&file, loc.0, loc.1, message).with_help(help)
}

/// Duplicate names and proxy ids listed by two policies.
pub fn cross_checks(policies: &[CheckedPolicy]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut names: BTreeMap<&str, &CheckedPolicy> = BTreeMap::new();
    let mut ids: BTreeMap<&str, (&CheckedPolicy, (usize, usize))> = BTreeMap::new();
    for c in policies {
        if let Some(first) = names.get(c.policy.name.as_str()) {
            diags.push(diag_at(
                &c.policy,
                c.spans.name,
                format!(
                    "duplicate policy name `{}`: also used by {}",
                    c.policy.name,
                    place(&first.policy, first.spans.name)
                ),
                "policy names must be unique: rename one of them",
            ));
        } else {
            names.insert(&c.policy.name, c);
        }
        for (id, loc) in &c.spans.proxies {
            if let Some((first, first_loc)) = ids.get(id.as_str()) {
                diags.push(diag_at(
                    &c.policy,
                    *loc,
                    format!(
                        "proxy `{id}` is claimed by two policies: `{}` ({}) and `{}`",
                        first.policy.name,
                        place(&first.policy, *first_loc),
                        c.policy.name
                    ),
                    "a proxy may belong to one policy only: remove it from one of them",
                ));
            } else {
                ids.insert(id, (c, *loc));
            }
        }
    }
    diags
}

/// Checks policies against a fleet: proxies matched by two policies (ids or tags), listed
/// ids the fleet does not have, selectors that match nothing, and bounds that contain no
/// allowed value of a selected proxy's ladder.
pub fn fleet_checks(policies: &[CheckedPolicy], fleet: &Fleet) -> Vec<Diagnostic> {
    let with_spans: Vec<(&Policy, Option<&PolicySpans>)> = policies
        .iter()
        .map(|c| (&c.policy, Some(&c.spans)))
        .collect();
    let mut diags = claims(&with_spans, fleet);
    // Looked up once per proxy: a 10 MB fleet against a policy of many ids stays linear.
    let fleet_ids: HashSet<&str> = fleet.proxies.iter().map(|p| p.id.as_str()).collect();
    let ladders = LadderIndex::new(fleet);
    for c in policies {
        let p = &c.policy;
        let selector = Matcher::new(&p.selector);
        for (id, loc) in &c.spans.proxies {
            if !fleet_ids.contains(id.as_str()) {
                diags.push(
                    diag_at(
                        p,
                        *loc,
                        format!("proxy `{id}` is not in the fleet"),
                        "check the id (DescribeProxies lists them), or add it to the fleet file",
                    )
                    .as_warning(),
                );
            }
        }
        let matched: Vec<_> = fleet
            .proxies
            .iter()
            .filter(|x| selector.matches(&x.id, &x.tags))
            .collect();
        if matched.is_empty()
            && !c.spans.proxies.is_empty()
            && c.spans
                .proxies
                .iter()
                .all(|(id, _)| !fleet_ids.contains(id.as_str()))
        {
            // Already reported per id above.
        } else if matched.is_empty() {
            let loc = c.spans.select.unwrap_or(c.spans.name);
            diags.push(
                diag_at(
                    p,
                    loc,
                    format!("policy `{}` selects no proxy of the fleet", p.name),
                    "check the tags: a proxy must carry every tag of `select.tags`",
                )
                .as_warning(),
            );
        }
        for proxy in matched {
            let Some(ladder) = ladders.get(&proxy.access_region, &proxy.real_server_region) else {
                continue;
            };
            let dims = [
                (
                    "bandwidth",
                    p.bandwidth.as_ref(),
                    &ladder.bandwidth,
                    c.spans.bandwidth,
                ),
                (
                    "concurrent",
                    p.concurrent.as_ref(),
                    &ladder.concurrent,
                    c.spans.concurrent,
                ),
            ];
            for (name, dim, values, loc) in dims {
                let Some(d) = dim else { continue };
                if !values.iter().any(|v| (d.min..=d.max).contains(v)) {
                    let list = values
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    diags.push(
                        diag_at(
                            p,
                            loc.unwrap_or(c.spans.name),
                            format!("`{name}` bounds {}..{} contain no allowed value of proxy `{}` ({list})", d.min, d.max, proxy.id),
                            "widen min/max to include at least one value of the region's list",
                        )
                        .as_warning(),
                    );
                }
            }
        }
    }
    diags
}

/// [`Fleet::ladder_for`] with the rows in a map, built once.
struct LadderIndex<'a>(HashMap<(&'a str, Option<&'a str>), &'a crate::core::Ladder>);

impl<'a> LadderIndex<'a> {
    fn new(fleet: &'a Fleet) -> Self {
        let mut rows = HashMap::new();
        for l in &fleet.ladders {
            // The first row of a pair, as `ladder_for` finds it.
            rows.entry((l.access_region.as_str(), l.dest_region.as_deref()))
                .or_insert(&l.ladder);
        }
        LadderIndex(rows)
    }
    fn get(&self, access: &str, dest: &str) -> Option<&'a crate::core::Ladder> {
        self.0
            .get(&(access, Some(dest)))
            .or_else(|| self.0.get(&(access, None)))
            .copied()
    }
}

/// [`Selector::matches`] with the ids in a set, built once (a policy may list 100,000s).
struct Matcher<'a> {
    ids: HashSet<&'a str>,
    selector: &'a Selector,
}

impl<'a> Matcher<'a> {
    fn new(selector: &'a Selector) -> Self {
        Matcher {
            ids: selector.proxies.iter().map(String::as_str).collect(),
            selector,
        }
    }
    fn by_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }
    fn matches(&self, id: &str, tags: &BTreeMap<String, String>) -> bool {
        let t = &self.selector.tags;
        self.by_id(id) || (!t.is_empty() && t.iter().all(|(k, v)| tags.get(k) == Some(v)))
    }
}

fn claims(policies: &[(&Policy, Option<&PolicySpans>)], fleet: &Fleet) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let matchers: Vec<Matcher<'_>> = policies
        .iter()
        .map(|(p, _)| Matcher::new(&p.selector))
        .collect();
    // Where each policy lists each id (the first place, as `selector_of`).
    let places: Vec<Option<HashMap<&str, validate::Loc>>> = policies
        .iter()
        .map(|(_, spans)| {
            spans.map(|s| {
                let mut m = HashMap::new();
                for (id, loc) in &s.proxies {
                    m.entry(id.as_str()).or_insert(*loc);
                }
                m
            })
        })
        .collect();
    let selector_of = |i: usize, id: &str| -> validate::Loc {
        let (_, spans) = policies[i];
        spans.map_or((0, 0), |s| {
            places[i]
                .as_ref()
                .and_then(|m| m.get(id).copied())
                .or(s.select)
                .unwrap_or(s.name)
        })
    };
    for proxy in &fleet.proxies {
        let owners: Vec<usize> = (0..policies.len())
            .filter(|&i| matchers[i].matches(&proxy.id, &proxy.tags))
            .collect();
        let Some((&f, rest)) = owners.split_first() else {
            continue;
        };
        let (first, _) = policies[f];
        for &i in rest {
            let (p, spans) = policies[i];
            let by_id = |i: usize| matchers[i].by_id(&proxy.id);
            if by_id(f) && by_id(i) && spans.is_some() {
                continue; // reported by `cross_checks` at the ids
            }
            let how = |i: usize| {
                let q = policies[i].0;
                if by_id(i) {
                    "by id".to_string()
                } else {
                    let tags: Vec<String> = q
                        .selector
                        .tags
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    format!("by tags {}", tags.join(","))
                }
            };
            let first_loc = selector_of(f, &proxy.id);
            let loc = selector_of(i, &proxy.id);
            diags.push(diag_at(
                p,
                loc,
                format!(
                    "proxy `{}` is selected by two policies: `{}` ({}, {}) and `{}` ({})",
                    proxy.id,
                    first.name,
                    how(f),
                    place(first, first_loc),
                    p.name,
                    how(i)
                ),
                "a proxy may belong to one policy only: narrow a tag selector or remove the id from one policy",
            ));
        }
    }
    diags
}

/// A validated policy. Every value here has been checked: bounds are ordered, utilizations
/// are in (0, 1], referenced signals exist, crons and time zones parse.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    /// The file it came from, for messages (None for policies built in code).
    pub source: Option<PathBuf>,
    pub selector: Selector,
    pub schedule: Schedule,
    pub mode: Mode,
    /// Named signals (e.g. `bandwidth`, `connections`), each a PromQL query.
    pub signals: BTreeMap<String, Signal>,
    /// Bandwidth in Mbps; None = this policy does not manage bandwidth.
    pub bandwidth: Option<Dimension>,
    /// Concurrency in units of 10,000 connections; None = not managed.
    pub concurrent: Option<Dimension>,
    pub behavior: Behavior,
    pub on_missing_data: MissingData,
    pub windows: Vec<Window>,
    /// Sent as `BillingType` with every modify call when set (0 bandwidth, 1 traffic).
    pub billing_type: Option<i64>,
    /// Directions paused by the policy file (`paused = true`, `[pause] directions`).
    pub paused: crate::core::Paused,
    /// How long an operator's change holds the proxy (`manual_hold`, default 1h).
    pub manual_hold: crate::core::ManualHold,
    /// A saturated scale-up may override a manual hold (`manual_hold_allows_saturation`).
    pub manual_hold_allows_saturation: bool,
    /// Keep capacity already paid for today (GAAP bills a day at its most expensive
    /// specification, `period_charge = "max"`): scale-downs wait for the last evaluations
    /// of the billing day (00:00 China Standard Time), `hold_paid_capacity`.
    pub hold_paid_capacity: bool,
    /// The seasonal recommender (`[predictive]`); off by default.
    pub predictive: Predictive,
}

impl Policy {
    /// The configuration of one dimension, if the policy manages it.
    pub fn dimension(&self, dim: crate::core::Dim) -> Option<&Dimension> {
        match dim {
            crate::core::Dim::Bandwidth => self.bandwidth.as_ref(),
            crate::core::Dim::Concurrent => self.concurrent.as_ref(),
        }
    }

    /// How far ahead capacity must be decided to be in effect in time: `[predictive]
    /// lead`, else one evaluation interval plus the usual ADJUSTING time. Windows are
    /// pre-scaled by it too.
    pub fn lead(&self) -> Duration {
        self.predictive.lead.unwrap_or_else(|| {
            let interval = match &self.schedule {
                Schedule::Interval(d) => *d,
                Schedule::Cron(_) => Duration::from_secs(60),
            };
            interval.saturating_add(DEFAULT_ADJUSTING)
        })
    }
}

/// How long a change usually keeps a proxy ADJUSTING (the simulation's default too).
pub const DEFAULT_ADJUSTING: Duration = Duration::from_secs(60);

/// `[predictive] mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PredictiveMode {
    /// No forecast is kept or used.
    #[default]
    Off,
    /// The forecast is learned and logged (what it would do), never acted on.
    ForecastOnly,
    /// The forecast raises capacity ahead of need (never lowers it).
    Scale,
}

impl PredictiveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PredictiveMode::Off => "off",
            PredictiveMode::ForecastOnly => "forecast-only",
            PredictiveMode::Scale => "scale",
        }
    }
}

/// The seasonal recommender: per proxy and dimension, the highest need of each hour of
/// the day over the last `lookback` days, of which the `quantile` is the forecast for
/// that hour.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictive {
    pub mode: PredictiveMode,
    /// How many days of hourly highs are kept (whole days, 1 to 28).
    pub lookback: Duration,
    /// Decide this far ahead (default: [`Policy::lead`]).
    pub lead: Option<Duration>,
    /// Which quantile of the daily highs of an hour is the forecast (0 to 1).
    pub quantile: f64,
}

impl Default for Predictive {
    fn default() -> Self {
        Predictive {
            mode: PredictiveMode::Off,
            lookback: Duration::from_secs(7 * 86_400),
            lead: None,
            quantile: 0.8,
        }
    }
}

/// The flap budget (`behavior.scale_down.flap_budget = "0/24h"`, the default): a reversal (a change
/// against the previous one within [`FLAP_WINDOW`]) beyond `reversals` within `per`
/// doubles the scale-down stabilization of that proxy's dimension, up to
/// `max_stabilization`; as the reversals age past `per` it returns to the policy's own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlapBudget {
    pub reversals: u32,
    pub per: Duration,
    pub max_stabilization: Duration,
}

/// A change against the previous one within this time is a reversal (a flap).
pub const FLAP_WINDOW: Duration = Duration::from_secs(30 * 60);

impl FlapBudget {
    pub const DEFAULT: FlapBudget = FlapBudget {
        reversals: 0,
        per: Duration::from_secs(24 * 3600),
        max_stabilization: Duration::from_secs(4 * 3600),
    };
}

/// Which proxies a policy manages: listed ids and/or every proxy whose tags all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub proxies: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Selector {
    /// True if the proxy is listed by id, or the selector has tags and the proxy carries
    /// all of them with equal values.
    pub fn matches(&self, id: &str, tags: &BTreeMap<String, String>) -> bool {
        if self.proxies.iter().any(|p| p == id) {
            return true;
        }
        !self.tags.is_empty() && self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

// One per policy, built once: the size of a parsed cron schedule does not matter here,
// and boxing it would change the variant others match on.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Evaluate every `Duration` (aligned to multiples of it since the epoch).
    Interval(Duration),
    /// Evaluate at each fire time of a cron expression (6/7-field cron crate syntax; a
    /// 5-field expression is accepted and gets a `0` seconds field).
    Cron(CronSpec),
}

/// A parsed cron expression with the text it came from.
#[derive(Clone, Debug)]
pub struct CronSpec {
    pub expr: String,
    pub schedule: cron::Schedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Live,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub name: String,
    pub query: String,
    /// The label of the query result that carries the proxy id (e.g. `channel_id`).
    pub proxy_label: String,
    /// Samples older than this count as no data (default 5m).
    pub max_age: Duration,
}

/// One managed capacity dimension (bandwidth or concurrent).
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    /// Name of the signal in [`Policy::signals`] that measures demand for it.
    pub signal: String,
    pub min: u32,
    pub max: u32,
    pub rule: Rule,
    /// A reading at or above `saturation` × the capacity in effect is censored: demand
    /// is at least the cap, not known (default 0.95; `f64::INFINITY` never).
    pub saturation: f64,
    /// Target tracking: the utilization at which the scale-down window keeps the peaks
    /// it remembers (`hold_utilization`, in [target, 1]). The reading of the moment is
    /// still sized at the target; a past peak only needs to be served if it comes back.
    /// `None`: at the target, as HPA does.
    pub hold_utilization: Option<f64>,
    /// What one change is worth, in capacity·hours of this dimension (Mbps·h, or units of
    /// 10,000 connections × hours): a scale-down freeing `F` may go once no higher need was
    /// seen for `change_worth / F` hours, if that is shorter than the scale-down window.
    /// `None`: every scale-down waits the whole window (a window the flap budget stretched
    /// holds big releases for a share of it only: `core::decide::FLAP_RELEASE_SHARE`).
    pub change_worth: Option<f64>,
}

/// The default `saturation` of a dimension.
pub const DEFAULT_SATURATION: f64 = 0.95;

#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// need = demand / target_utilization (HPA/KEDA style). 0 < target_utilization <= 1.
    TargetTracking { target_utilization: f64 },
    /// Utilization bands move the value by whole ladder steps (AWS step scaling).
    /// Utilization = demand / current capacity.
    Steps(Vec<StepRule>),
}

/// `utilization >= above` → move `change` ladder steps (positive), or
/// `utilization < below` → move `change` ladder steps (negative).
/// The matching rule with the largest |change| wins.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRule {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub change: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub scale_up: DirectionBehavior,
    pub scale_down: DirectionBehavior,
    /// `behavior.scale_down.flap_budget` (None: `"off"`).
    pub flap_budget: Option<FlapBudget>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DirectionBehavior {
    /// Relative band around the current value inside which nothing changes.
    pub tolerance: f64,
    pub stabilization: Duration,
    /// Ladder steps per change (at least 1).
    pub max_steps: u32,
    pub cooldown: Duration,
}

impl Behavior {
    /// Defaults: fast up, slow down (HPA-like).
    pub fn default_behavior() -> Behavior {
        Behavior {
            scale_up: DirectionBehavior {
                tolerance: 0.05,
                stabilization: Duration::ZERO,
                max_steps: 2,
                cooldown: Duration::from_secs(60),
            },
            scale_down: DirectionBehavior {
                tolerance: 0.10,
                stabilization: Duration::from_secs(600),
                max_steps: 1,
                cooldown: Duration::from_secs(600),
            },
            flap_budget: Some(FlapBudget::DEFAULT),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingAction {
    Hold,
    Fallback,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MissingData {
    pub action: MissingAction,
    /// Consecutive evaluations without data before the fallback applies.
    pub after: u32,
    pub bandwidth: Option<u32>,
    pub concurrent: Option<u32>,
}

impl Default for MissingData {
    fn default() -> Self {
        MissingData {
            action: MissingAction::Hold,
            after: 3,
            bandwidth: None,
            concurrent: None,
        }
    }
}

/// A recurring time window that overrides bounds while active: it opens at each fire
/// time of `cron` (in `timezone`) and stays open for `duration`.
#[derive(Clone, Debug)]
pub struct Window {
    pub cron: CronSpec,
    pub duration: Duration,
    pub timezone: chrono_tz::Tz,
    pub bandwidth_min: Option<u32>,
    pub bandwidth_max: Option<u32>,
    pub concurrent_min: Option<u32>,
    pub concurrent_max: Option<u32>,
    /// Remembers the last activity answer and the interval it holds for (speed only: it
    /// never changes an answer). Build with `WindowMemo::default()`.
    pub memo: WindowMemo,
}

/// The last answer of "is this window open at t?" with the half-open interval of times
/// for which that answer holds. Evaluating a cron expression costs microseconds; the
/// daemon and the simulation ask about nearby times over and over.
///
/// A sequence lock over three atomics: readers never wait and never see a torn interval
/// (a read that overlaps a write is a miss); of two writers at once, one gives up.
#[derive(Default)]
pub struct WindowMemo {
    /// 0: empty; odd: being written; even: `from`, `until`, `active` are consistent.
    seq: AtomicU64,
    from: AtomicI64,
    until: AtomicI64,
    active: AtomicBool,
}

impl WindowMemo {
    /// The remembered answer for `t` (Unix ms), if `t` lies in the remembered interval.
    pub fn get(&self, t: i64) -> Option<bool> {
        self.get_until(t).map(|(active, _)| active)
    }
    /// The remembered answer for `t` and the end of the interval it holds for.
    pub fn get_until(&self, t: i64) -> Option<(bool, i64)> {
        let s1 = self.seq.load(Ordering::Acquire);
        if s1 == 0 || s1 & 1 == 1 {
            return None;
        }
        let from = self.from.load(Ordering::Relaxed);
        let until = self.until.load(Ordering::Relaxed);
        let active = self.active.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) != s1 {
            return None;
        }
        (from <= t && t < until).then_some((active, until))
    }
    /// Remembers that the answer is `active` for every time in `[from, until)`.
    pub fn set(&self, from: i64, until: i64, active: bool) {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1
            || self
                .seq
                .compare_exchange(s, s + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return; // another writer is at it: a memo may skip an answer
        }
        fence(Ordering::Release);
        self.from.store(from, Ordering::Relaxed);
        self.until.store(until, Ordering::Relaxed);
        self.active.store(active, Ordering::Relaxed);
        self.seq.store(s + 2, Ordering::Release);
    }
}

/// A copy starts with an empty memo.
impl Clone for WindowMemo {
    fn clone(&self) -> Self {
        WindowMemo::default()
    }
}

impl std::fmt::Debug for WindowMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WindowMemo")
    }
}

#[cfg(test)]
mod memo_tests {
    use super::WindowMemo;

    /// Writers store intervals whose answer is a function of the interval; readers, racing
    /// them, must only ever see an answer that belongs to the interval they matched. The
    /// readers sweep every time from the start of the writes until one sweep after the
    /// last write: that last sweep meets the one interval left, at all its 10 times (so
    /// the reads are checked, not skipped), and the hits while writing are counted.
    #[test]
    fn a_racing_memo_never_mixes_two_intervals() {
        use std::sync::Barrier;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let memo = WindowMemo::default();
        assert_eq!(memo.get(0), None, "empty");
        let writing = AtomicUsize::new(2);
        let start = Barrier::new(4);
        let (while_writing, last_sweep) = std::thread::scope(|s| {
            for w in 0..2i64 {
                let (memo, writing, start) = (&memo, &writing, &start);
                s.spawn(move || {
                    start.wait();
                    for i in 0..50_000i64 {
                        let k = (i * 2 + w) % 1_000;
                        memo.set(k * 10, k * 10 + 10, k % 2 == 0);
                    }
                    writing.fetch_sub(1, Ordering::SeqCst);
                });
            }
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let (memo, writing, start) = (&memo, &writing, &start);
                    s.spawn(move || {
                        start.wait();
                        let mut while_writing = 0u64;
                        loop {
                            let done = writing.load(Ordering::SeqCst) == 0;
                            let mut hits = 0u64;
                            for t in 0..10_000i64 {
                                if let Some(active) = memo.get(t) {
                                    hits += 1;
                                    assert_eq!(active, (t / 10) % 2 == 0, "torn read at {t}");
                                }
                            }
                            if done {
                                return (while_writing, hits);
                            }
                            while_writing += hits;
                        }
                    })
                })
                .collect();
            let results: Vec<(u64, u64)> = readers.into_iter().map(|r| r.join().unwrap()).collect();
            (
                results.iter().map(|r| r.0).sum::<u64>(),
                results.iter().map(|r| r.1).collect::<Vec<_>>(),
            )
        });
        assert_eq!(
            last_sweep,
            [10, 10],
            "one interval of 10 ms left after the writes"
        );
        eprintln!("{while_writing} reads answered while the writers ran");
        memo.set(5, 15, true);
        assert_eq!(
            (memo.get(4), memo.get(5), memo.get(15)),
            (None, Some(true), None)
        );
    }
}
