//! `simulate --report FILE.html`: one self-contained HTML file (inline CSS, SVG and a short
//! inline script; nothing fetched), readable offline. Per policy set, in reading order:
//!
//! 1. the fleet summary (policy against the static and oracle baselines, scalable proxies
//!    only);
//! 2. the worst 20 proxies by under-provisioning, by flaps and by cost above the oracle;
//! 3. the proxies that cannot be resized (Scalarable 0, not RUNNING) and those no policy
//!    selects, apart;
//! 4. an index of every proxy, then one chart per proxy (closed `<details>`, the three
//!    worst open): a real time axis, the policy's windows shaded, a marker per change (its
//!    values and reasons on hover, SVG `<title>`), and per dimension the demand (a min/max
//!    band), the policy's capacity, the oracle, the static line and the reference peers'
//!    capacity when given ([`render_with_reference`], dashed).
//!
//! Size: each chart is downsampled to the pixel ([`COLUMNS`] columns; per column the
//! demand's min and max, the capacity's and oracle's max, so no peak disappears), and the
//! columns are written as one letter each (52 levels, runs compressed: `A12` = twelve `A`)
//! in `data-v` attributes that the script turns into SVG paths when a chart is opened;
//! the change markers are compact text in `data-m` (reasons by index into one table), a
//! policy's windows one path defined once per set. About 6 KB per proxy whatever the
//! span. The script also relabels the time axis in the chosen time zone (UTC, the
//! browser's, or a fixed offset) and zooms every chart to a time range dragged on any of
//! them. Without the script the page still shows the tables and UTC axes.

use std::collections::HashMap;
use std::fmt::Write;

use super::report::{Figures, ProxyReport, SetReport, oracle_values, static_value};
use super::{PolicySet, ProxyRun, SimRun};
use crate::core::{Dim, Direction};
use crate::policy::Policy;
use crate::time::Timestamp;

/// Columns per chart: the plot's width in pixels.
pub const COLUMNS: usize = 600;
/// Levels per column value (one letter each).
const LEVELS: usize = 52;
const ALPHABET: &[u8; LEVELS] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const PAD_L: f64 = 56.0;
const PANEL_H: f64 = 104.0;
const PANEL_GAP: f64 = 26.0;
const TOP: f64 = 18.0;
const AXIS_H: f64 = 20.0;
/// Changes closer than this many columns share one marker (its title lists them).
const MARKER_COLUMNS: f64 = 4.0;
/// Changes listed in one marker's title at most.
const MARKER_LIST: usize = 4;
/// Rows in each worst list.
pub const WORST: usize = 20;
/// Charts open when the page loads (the worst by under-provisioning).
const OPEN_CHARTS: usize = 3;
/// Window intervals drawn per policy at most (a window opening every minute would
/// otherwise be drawn 43,200 times a month).
const MAX_WINDOW_INTERVALS: usize = 2_000;

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// An extra named capacity line on a proxy's chart: a reference peer's replay of it.
#[derive(Clone, Copy, Debug)]
struct ExtraLine<'a> {
    name: &'a str,
    run: &'a ProxyRun,
}

/// Per reference peer: its name and its replay of each proxy by id.
type PeerIndex<'a> = Vec<(&'a str, HashMap<&'a str, &'a ProxyRun>)>;

/// The reference peers: their figures and their replays by proxy.
#[derive(Clone, Copy)]
struct Peers<'a> {
    reference: &'a [Reference<'a>],
    index: &'a PeerIndex<'a>,
}

/// A worst-list key: higher is worse.
type Key = fn(&ProxyReport) -> f64;

/// A reference peer (`simulate --reference`) to show beside the policy: its fleet figures
/// in each summary, its capacity as a dashed line on the charts of the proxies it replayed.
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    pub name: &'a str,
    pub report: &'a SetReport,
    pub run: &'a SimRun,
}

/// Renders the report; `runs[i]` is the replay behind `reports[i]`, of `sets[i]` (or of
/// the first set when fewer are given: their windows are drawn).
pub fn render(
    reports: &[SetReport],
    runs: &[SimRun],
    sets: &[PolicySet],
    notes: &[String],
) -> String {
    render_with_reference(reports, runs, sets, &[], notes)
}

/// [`render`] with the reference peers.
pub fn render_with_reference(
    reports: &[SetReport],
    runs: &[SimRun],
    sets: &[PolicySet],
    reference: &[Reference],
    notes: &[String],
) -> String {
    let mut o = String::with_capacity(1 << 20);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str("<title>gaap-autoscaler simulation report</title>\n<style>\n");
    o.push_str(CSS);
    o.push_str("</style>\n</head>\n<body>\n<h1>gaap-autoscaler simulation report</h1>\n");
    o.push_str("<div id=\"bar\">time zone <select id=\"tz\"><option value=\"utc\">UTC</option><option value=\"local\">this browser's</option>");
    for m in tz_offsets() {
        let _ = write!(o, "<option value=\"{m}\">UTC{}</option>", offset_label(m));
    }
    o.push_str("</select> <button id=\"reset\" type=\"button\">whole range</button> <span id=\"range\">drag across a chart to zoom every chart to that time range</span></div>\n");
    if reports.len() > 1 {
        comparison(&mut o, reports);
    }
    let index: PeerIndex = reference
        .iter()
        .map(|p| {
            let by_id = p
                .run
                .proxies
                .iter()
                .map(|x| (x.proxy_id.as_str(), x))
                .collect();
            (p.name, by_id)
        })
        .collect();
    let mut reasons = ReasonTable::default();
    for (i, (r, run)) in reports.iter().zip(runs).enumerate() {
        let set = sets.get(i).or(sets.first());
        let peers = Peers {
            reference,
            index: &index,
        };
        set_section(&mut o, (i, r, run, set), peers, &mut reasons);
    }
    o.push_str("<h2>Notes</h2>\n<ul>\n");
    for n in notes {
        let _ = writeln!(o, "<li>{}</li>", escape(n));
    }
    o.push_str("<li>Static = the cheapest allowed value within the policy bounds covering the peak need (demand / target utilization; step rules 1.0), held. Oracle = the cheapest allowed value covering each step's need.</li>\n");
    o.push_str("<li>Observed demand is censored by the capacity in effect; censored samples are counted.</li>\n");
    o.push_str("<li>Charts: one column per pixel; the demand band spans each column's lowest and highest sample, the lines each column's highest value. Times on the axes and in the markers follow the time zone chosen above (UTC before the page's script runs).</li>\n</ul>\n");
    // The reason codes the markers name by index.
    let json = serde_json::to_string(&reasons.list).unwrap_or_else(|_| "[]".into());
    let _ = writeln!(
        o,
        "<script type=\"application/json\" id=\"reasons\">{}</script>",
        json.replace('<', "\\u003c")
    );
    o.push_str("<script>\n");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body>\n</html>\n");
    o
}

/// Fixed offsets offered (minutes east of UTC).
fn tz_offsets() -> Vec<i32> {
    let mut v: Vec<i32> = (-12..=14).filter(|&h| h != 0).map(|h| h * 60).collect();
    v.extend([330, 345, 570]);
    v.sort_unstable();
    v
}

fn offset_label(m: i32) -> String {
    let sign = if m < 0 { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", m.abs() / 60, m.abs() % 60)
}

fn cost(f: &Figures) -> String {
    f.cost
        .map(|c| format!("{c:.2}"))
        .unwrap_or_else(|| "-".into())
}

fn comparison(o: &mut String, reports: &[SetReport]) {
    o.push_str("<h2>Policy sets side by side</h2>\n<table>\n<tr><th>policy set</th><th>under %</th><th>unserved Mbps·h</th><th>Mbps·h</th><th>Conc·h</th><th>slack %</th><th>changes</th><th>flaps</th><th>cost</th><th>not scalable</th></tr>\n");
    for r in reports {
        let s = &r.summary;
        let f = &s.figures;
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.policy_set),
            f.under_provisioned_pct,
            f.unserved_mbps_hours,
            f.footprint_mbps_hours,
            f.footprint_concurrent_hours,
            f.slack_pct,
            s.changes,
            s.flapping,
            cost(f),
            s.excluded_unscalable
        );
    }
    o.push_str("</table>\n");
}

/// Cost above the oracle: priced when a price table was given, else Mbps·h.
fn above_oracle(p: &ProxyReport) -> f64 {
    match (p.figures.cost, p.baselines.oracle.cost) {
        (Some(a), Some(b)) => a - b,
        _ => p.figures.footprint_mbps_hours - p.baselines.oracle.footprint_mbps_hours,
    }
}

fn anchor(set: usize, proxy: &str) -> String {
    let safe: String = proxy
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("s{set}-{safe}")
}

/// One policy set's section: `(index, report, replay, the set)`.
fn set_section(
    o: &mut String,
    (si, r, run, set): (usize, &SetReport, &SimRun, Option<&PolicySet>),
    peers: Peers,
    reasons: &mut ReasonTable,
) {
    let s = &r.summary;
    let priced = s.figures.cost.is_some();
    let _ = writeln!(
        o,
        "<section class=\"set\">\n<h2>Policy set {}</h2>\n<h3 id=\"s{si}-summary\">Fleet summary</h3>\n<p>{} proxies replayed ({} scalable in the totals, {} not scalable shown apart{}), <span class=\"t\" data-t=\"{}\">{}</span> → <span class=\"t\" data-t=\"{}\">{}</span>, adjusting {} s; API calls {} (peak {}/s, {} deferred); changes {} (↑{} ↓{}); flapping {}; censored samples {}.</p>",
        escape(&s.policy_set),
        s.proxies,
        s.proxies - s.excluded_unscalable,
        s.excluded_unscalable,
        if s.unmanaged_proxies.is_empty() {
            String::new()
        } else {
            format!("; {} selected by no policy", s.unmanaged_proxies.len())
        },
        run.start.millis(),
        escape(&s.start),
        run.end.millis(),
        escape(&s.end),
        s.adjusting_s,
        s.api_calls,
        s.peak_api_calls_per_second,
        s.api_deferred,
        s.changes,
        s.changes_up,
        s.changes_down,
        s.flapping,
        s.censored_samples
    );
    o.push_str("<table class=\"summary\">\n<tr><th></th><th>under %</th><th>unserved Mbps·h</th><th>Mbps·h</th><th>Conc·h</th><th>slack %</th><th>cost</th></tr>\n");
    let fig_row = |o: &mut String, name: &str, f: &Figures| {
        let _ = writeln!(
            o,
            "<tr><td>{name}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td></tr>",
            f.under_provisioned_pct,
            f.unserved_mbps_hours,
            f.footprint_mbps_hours,
            f.footprint_concurrent_hours,
            f.slack_pct,
            cost(f)
        );
    };
    fig_row(o, "policy", &s.figures);
    fig_row(o, "static", &s.baselines.static_.figures);
    fig_row(o, "oracle", &s.baselines.oracle);
    for p in peers.reference {
        fig_row(
            o,
            &format!("reference: {}", escape(p.name)),
            &p.report.summary.figures,
        );
    }
    o.push_str("</table>\n");

    // The worst lists (scalable proxies only).
    let scalable: Vec<usize> = (0..r.proxies.len())
        .filter(|&i| r.proxies[i].unscalable.is_none())
        .collect();
    let above_name = if priced {
        "cost above oracle"
    } else {
        "Mbps·h above oracle"
    };
    let lists: [(&str, &str, Key); 3] = [
        ("under", "under-provisioned %", |p| {
            p.figures.under_provisioned_pct
        }),
        ("flaps", "flaps", |p| p.flapping as f64),
        ("cost", above_name, above_oracle),
    ];
    let mut open = Vec::new();
    for (k, (id, what, key)) in lists.into_iter().enumerate() {
        let mut v: Vec<usize> = scalable
            .iter()
            .copied()
            .filter(|&i| key(&r.proxies[i]) > 0.0)
            .collect();
        v.sort_by(|&a, &b| {
            key(&r.proxies[b])
                .total_cmp(&key(&r.proxies[a]))
                .then(r.proxies[a].proxy_id.cmp(&r.proxies[b].proxy_id))
        });
        v.truncate(WORST);
        if k == 0 {
            open = v.iter().copied().take(OPEN_CHARTS).collect();
        }
        let _ = writeln!(
            o,
            "<h3 id=\"s{si}-worst-{id}\">Worst {WORST} by {what}</h3>"
        );
        if v.is_empty() {
            o.push_str("<p class=\"none\">none: every scalable proxy is at 0.</p>\n");
            continue;
        }
        o.push_str("<table class=\"worst\">\n<tr><th>#</th><th>proxy</th><th>policy</th>");
        let _ = write!(o, "<th>{what}</th>");
        o.push_str("<th>under %</th><th>flaps</th><th>changes</th></tr>\n");
        for (n, &i) in v.iter().enumerate() {
            let p = &r.proxies[i];
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
                n + 1,
                anchor(si, &p.proxy_id),
                escape(&p.proxy_id),
                escape(&p.policy),
                key(p),
                p.figures.under_provisioned_pct,
                p.flapping,
                p.changes
            );
        }
        o.push_str("</table>\n");
    }

    // Apart: proxies that cannot be resized, and proxies no policy selects.
    let unscalable: Vec<&ProxyReport> = r
        .proxies
        .iter()
        .filter(|p| p.unscalable.is_some())
        .collect();
    let _ = writeln!(
        o,
        "<h3 id=\"s{si}-unscalable\">Not scalable (left out of the fleet totals)</h3>"
    );
    if unscalable.is_empty() && s.unmanaged_proxies.is_empty() {
        o.push_str("<p class=\"none\">none.</p>\n");
    } else {
        o.push_str("<table class=\"unscalable\">\n<tr><th>proxy</th><th>policy</th><th>why</th><th>bandwidth</th><th>concurrent</th></tr>\n");
        for p in &unscalable {
            let pr = run.proxies.iter().find(|x| x.proxy_id == p.proxy_id);
            let held = |d: Dim| {
                pr.and_then(|x| x.first_capacity())
                    .map(|(b, c)| match d {
                        Dim::Bandwidth => b,
                        Dim::Concurrent => c,
                    })
                    .map_or("-".to_string(), |v| v.to_string())
            };
            let _ = writeln!(
                o,
                "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                anchor(si, &p.proxy_id),
                escape(&p.proxy_id),
                escape(&p.policy),
                escape(p.unscalable.as_deref().unwrap_or("")),
                held(Dim::Bandwidth),
                held(Dim::Concurrent)
            );
        }
        for id in &s.unmanaged_proxies {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>-</td><td>selected by no policy</td><td>-</td><td>-</td></tr>",
                escape(id)
            );
        }
        o.push_str("</table>\n");
    }

    // The index of every proxy, then the charts.
    let _ = writeln!(
        o,
        "<h3 id=\"s{si}-index\">Index of every proxy ({})</h3>\n<table class=\"index\">\n<tr><th>proxy</th><th>policy</th><th>under %</th><th>unserved Mbps·h</th><th>flaps</th><th>changes</th><th>{above_name}</th></tr>",
        r.proxies.len()
    );
    for p in &r.proxies {
        let _ = writeln!(
            o,
            "<tr{}><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            if p.unscalable.is_some() {
                " class=\"fixed\""
            } else {
                ""
            },
            anchor(si, &p.proxy_id),
            escape(&p.proxy_id),
            escape(&p.policy),
            p.figures.under_provisioned_pct,
            p.figures.unserved_mbps_hours,
            p.flapping,
            p.changes,
            above_oracle(p)
        );
    }
    o.push_str("</table>\n");
    let range = Range::of(run);
    // Each policy's windows: one path defined once per set, used by every panel.
    let mut windows: HashMap<&str, Option<String>> = Default::default();
    for (i, (p, pr)) in r.proxies.iter().zip(&run.proxies).enumerate() {
        let policy = set.and_then(|s| s.policies.iter().find(|x| x.name == pr.policy));
        let n = windows.len();
        let wins = windows
            .entry(pr.policy.as_str())
            .or_insert_with(|| {
                let v = policy.map_or_else(Vec::new, |pol| {
                    window_intervals(pol, run.start, Timestamp(range.t1))
                });
                (!v.is_empty()).then(|| {
                    let id = format!("w{si}-{n}");
                    let _ = writeln!(
                        o,
                        "<svg class=\"defs\" width=\"0\" height=\"0\" aria-hidden=\"true\"><defs><path id=\"{id}\" fill=\"#ffe9a8\" opacity=\"0.6\" d=\"{}\"/></defs></svg>",
                        window_path(&v, &range)
                    );
                    id
                })
            })
            .clone();
        let lines: Vec<ExtraLine> = peers
            .index
            .iter()
            .filter_map(|(name, by_id)| {
                by_id
                    .get(pr.proxy_id.as_str())
                    .map(|&run| ExtraLine { name, run })
            })
            .collect();
        let chart = Chart {
            range: &range,
            windows: wins.as_deref(),
            extra: &lines,
            open: open.contains(&i),
            priced,
        };
        proxy_chart(o, si, p, pr, &chart, reasons);
    }
    o.push_str("</section>\n");
}

/// The time range of a set's charts: [start, end + the last step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub t0: i64,
    pub t1: i64,
}

impl Range {
    fn of(run: &SimRun) -> Range {
        let last_step = run.proxies.iter().filter_map(|p| p.last_step()).max();
        Range::new(run.start, run.end, last_step)
    }
    /// The range from `start` to `end` plus the longest last step (1 minute if none).
    pub fn new(start: Timestamp, end: Timestamp, last_step: Option<u32>) -> Range {
        let t0 = start.millis();
        Range {
            t0,
            t1: (end.millis() + i64::from(last_step.unwrap_or(60_000))).max(t0 + 1),
        }
    }
    /// The column of time `t` (fractional).
    fn x(&self, t: i64) -> f64 {
        (t - self.t0) as f64 * COLUMNS as f64 / (self.t1 - self.t0) as f64
    }
    pub fn column(&self, t: i64) -> usize {
        (self.x(t).floor().max(0.0) as usize).min(COLUMNS - 1)
    }
}

/// The intervals `[open, close)` (Unix ms) during which any of the policy's windows is
/// open within `[start, end]`, merged, at most [`MAX_WINDOW_INTERVALS`]. An interval
/// holds exactly the times at which [`crate::core::decide::window_active`] is true.
pub fn window_intervals(policy: &Policy, start: Timestamp, end: Timestamp) -> Vec<(i64, i64)> {
    let mut v: Vec<(i64, i64)> = Vec::new();
    for w in &policy.windows {
        if w.duration.is_zero() {
            continue;
        }
        let dur = crate::time::millis_i64(w.duration);
        let from = start.millis() - dur;
        let Some(local) = chrono::TimeZone::timestamp_millis_opt(&w.timezone, from).single() else {
            continue;
        };
        for fire in w.cron.schedule.after(&local) {
            let f = Timestamp::from_datetime(&fire).millis();
            if f > end.millis() || v.len() >= MAX_WINDOW_INTERVALS {
                break;
            }
            v.push((f.max(start.millis()), (f + dur).min(end.millis())));
        }
    }
    v.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged.retain(|(a, b)| b > a);
    merged
}

/// Per-column values of one line: `None` where the column has no data.
struct Columns {
    hi: Vec<Option<f64>>,
    lo: Vec<Option<f64>>,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            hi: vec![None; COLUMNS],
            lo: vec![None; COLUMNS],
        }
    }
    fn add(&mut self, c: usize, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.hi[c] = Some(self.hi[c].map_or(v, |h| h.max(v)));
        self.lo[c] = Some(self.lo[c].map_or(v, |l| l.min(v)));
    }
    /// Columns kept by a streamed replay (NaN = no value).
    fn of(hi: &[f64], lo: &[f64]) -> Columns {
        let some = |v: &f64| (!v.is_nan()).then_some(*v);
        let mut c = Columns::new();
        for (dst, src) in [(&mut c.hi, hi), (&mut c.lo, lo)] {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = some(s);
            }
        }
        c
    }
    fn max(&self) -> f64 {
        self.hi.iter().flatten().copied().fold(0.0, f64::max)
    }
    /// A step line: a column without a step keeps the previous column's value.
    fn held(mut self) -> Columns {
        let mut prev = None;
        for c in 0..COLUMNS {
            if self.hi[c].is_none() {
                self.hi[c] = prev;
            }
            prev = self.hi[c];
        }
        self
    }
}

/// One letter per column (`.` = no data), runs of three or more as letter + count.
fn encode(values: &[Option<f64>], ymax: f64) -> String {
    let level = |v: Option<f64>| -> u8 {
        match v {
            None => b'.',
            Some(v) => {
                let l = (v / ymax * (LEVELS - 1) as f64).round();
                ALPHABET[(l.max(0.0) as usize).min(LEVELS - 1)]
            }
        }
    };
    let mut out = String::new();
    let mut i = 0;
    while i < values.len() {
        let c = level(values[i]);
        let mut j = i + 1;
        while j < values.len() && level(values[j]) == c {
            j += 1;
        }
        out.push(c as char);
        let n = j - i;
        if n >= 3 {
            let _ = write!(out, "{n}");
        } else if n == 2 {
            out.push(c as char);
        }
        i = j;
    }
    out
}

/// A time label in UTC (the script relabels in the chosen zone).
fn utc_label(t: i64, with_time: bool) -> String {
    let dt = Timestamp(t).to_datetime();
    if with_time {
        dt.format("%m-%d %H:%M").to_string()
    } else {
        dt.format("%Y-%m-%d").to_string()
    }
}

/// Tick spacing for a span: the first of these with at most 8 ticks.
const TICK_STEPS_MIN: &[i64] = &[
    1, 5, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 40320,
];

fn ticks(t0: i64, t1: i64) -> (i64, Vec<i64>) {
    let span = (t1 - t0).max(1);
    let step = TICK_STEPS_MIN
        .iter()
        .map(|m| m * 60_000)
        .find(|s| span / s <= 8)
        .unwrap_or(40320 * 60_000);
    let mut t = t0.div_euclid(step) * step;
    if t < t0 {
        t += step;
    }
    let mut v = Vec::new();
    while t <= t1 {
        v.push(t);
        t += step;
    }
    (step, v)
}

fn fmt_axis(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// What a proxy's chart is drawn with besides its run.
struct Chart<'a> {
    range: &'a Range,
    /// The id of the policy's window path, if it has windows.
    windows: Option<&'a str>,
    extra: &'a [ExtraLine<'a>],
    /// Open when the page loads.
    open: bool,
    priced: bool,
}

/// The reason codes named by the change markers, each written once (markers name them by
/// index).
#[derive(Default)]
struct ReasonTable {
    index: HashMap<String, usize>,
    list: Vec<String>,
}

impl ReasonTable {
    fn of(&mut self, code: &str) -> usize {
        if let Some(&i) = self.index.get(code) {
            return i;
        }
        self.list.push(code.to_string());
        self.index.insert(code.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The windows `[a, b)` as one path in chart columns (one rectangle each).
fn window_path(windows: &[(i64, i64)], range: &Range) -> String {
    let lv = LEVELS as f64;
    let mut d = String::new();
    for (a, b) in windows {
        let (xa, xb) = (range.x(*a), range.x(*b));
        let _ = write!(d, "M{xa:.1} 0h{:.1}V{lv}H{xa:.1}Z", (xb - xa).max(0.2));
    }
    d
}

fn proxy_chart(
    o: &mut String,
    si: usize,
    p: &ProxyReport,
    run: &ProxyRun,
    chart: &Chart,
    reasons: &mut ReasonTable,
) {
    let Chart {
        range,
        windows,
        extra,
        open,
        priced,
    } = *chart;
    let f = &p.figures;
    let _ = writeln!(
        o,
        "<details class=\"px\" id=\"{}\"{}><summary><b>{}</b> policy {}{} · under {:.2}% (static {:.2}%, oracle {:.2}%) · {:.1} Mbps·h (static {:.1}, oracle {:.1}) · {} changes ↑{} ↓{} · {} flaps · {} {:.2}</summary>",
        anchor(si, &p.proxy_id),
        if open { " open" } else { "" },
        escape(&p.proxy_id),
        escape(&p.policy),
        p.unscalable
            .as_ref()
            .map(|w| format!(" · <em>not scalable: {}</em>", escape(w)))
            .unwrap_or_default(),
        f.under_provisioned_pct,
        p.baselines.static_.figures.under_provisioned_pct,
        p.baselines.oracle.under_provisioned_pct,
        f.footprint_mbps_hours,
        p.baselines.static_.figures.footprint_mbps_hours,
        p.baselines.oracle.footprint_mbps_hours,
        p.changes,
        p.changes_up,
        p.changes_down,
        p.flapping,
        if priced {
            "cost above oracle"
        } else {
            "Mbps·h above oracle"
        },
        above_oracle(p)
    );
    let pw = COLUMNS as f64;
    let plots_h = 2.0 * PANEL_H + PANEL_GAP;
    let h = TOP + plots_h + AXIS_H + 18.0;
    let w = PAD_L + pw + 10.0;
    let _ = writeln!(
        o,
        "<svg class=\"ch\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" data-t0=\"{}\" data-t1=\"{}\" role=\"img\" aria-label=\"demand and capacity of {}\">",
        range.t0,
        range.t1,
        escape(&p.proxy_id)
    );
    for (k, d) in Dim::ALL.into_iter().enumerate() {
        let top = TOP + k as f64 * (PANEL_H + PANEL_GAP);
        panel(o, run, d, top, range, windows, extra);
    }
    // The markers: one per change, or per cluster of changes a few pixels apart (drawn by
    // the script from `data-m`).
    let _ = writeln!(
        o,
        "<svg class=\"plot mk\" x=\"{PAD_L}\" y=\"{TOP}\" width=\"{pw}\" height=\"{plots_h}\" viewBox=\"0 0 {COLUMNS} 1\" preserveAspectRatio=\"none\" data-m=\"{}\"></svg>",
        markers(run, range, reasons)
    );
    // The time axis (UTC here; the script relabels it in the chosen zone and range).
    let ay = TOP + plots_h + 14.0;
    let (step, ts) = ticks(range.t0, range.t1);
    let _ = write!(o, "<g class=\"ax\" data-y=\"{ay}\">");
    let with_time = step < 86_400_000;
    for t in ts {
        let x = PAD_L + range.x(t) * pw / COLUMNS as f64;
        let _ = write!(
            o,
            "<text x=\"{x:.1}\" y=\"{ay}\" data-t=\"{t}\">{}</text>",
            utc_label(t, with_time)
        );
    }
    o.push_str("</g>\n");
    let ly = h - 4.0;
    let _ = write!(
        o,
        "<g class=\"legend\"><text x=\"{PAD_L}\" y=\"{ly}\"><tspan class=\"dem\">■ demand (min–max)</tspan> <tspan class=\"cap\">— policy capacity</tspan> <tspan class=\"ora\">— oracle</tspan> <tspan class=\"sta\">- - static</tspan> <tspan class=\"win\">■ window open</tspan> <tspan class=\"up\">| scale-up</tspan> <tspan class=\"down\">| scale-down</tspan>"
    );
    for (i, e) in extra.iter().enumerate() {
        let _ = write!(
            o,
            " <tspan class=\"x{}\">- - reference: {}</tspan>",
            i % 4,
            escape(e.name)
        );
    }
    o.push_str("</text></g>\n</svg>\n</details>\n");
}

fn panel(
    o: &mut String,
    run: &ProxyRun,
    d: Dim,
    top: f64,
    range: &Range,
    windows: Option<&str>,
    extra: &[ExtraLine],
) {
    let label = match d {
        Dim::Bandwidth => "bandwidth (Mbps)",
        Dim::Concurrent => "concurrent (10k connections)",
    };
    let _ = writeln!(
        o,
        "<text x=\"{PAD_L}\" y=\"{}\" class=\"title\">{label}{}</text>",
        top - 5.0,
        if run.dim(d).managed {
            ""
        } else {
            " — not managed by the policy"
        }
    );
    let n = run.steps();
    let mut demand = Columns::new();
    let mut cap = Columns::new();
    let mut orc = Columns::new();
    let mut extras: Vec<Columns> = extra.iter().map(|_| Columns::new()).collect();
    let k = match d {
        Dim::Bandwidth => 0,
        Dim::Concurrent => 1,
    };
    match run
        .tally
        .as_deref()
        .and_then(|t| t.chart())
        .filter(|c| c.range == *range)
    {
        // A streamed replay: its columns were kept as it went (on this range).
        Some(chart) => {
            use crate::sim::report::tally::Line;
            let line = |l| chart.line(k, l);
            demand = Columns::of(&line(Line::DemandHigh), &line(Line::DemandLow));
            cap = Columns::of(&line(Line::Capacity), &[]);
            orc = Columns::of(&line(Line::Oracle), &[]);
        }
        None => {
            let oracle = oracle_values(run, d);
            for (i, &v) in oracle.iter().enumerate().take(n) {
                let c = range.column(run.times[i]);
                demand.add(c, run.demand_units(d, i));
                cap.add(c, f64::from(run.capacity(d, i)));
                orc.add(c, f64::from(v));
            }
        }
    }
    // A peer's own evaluation times (the same as the policy's unless its interval differs).
    for (e, cols) in extra.iter().zip(&mut extras) {
        match e
            .run
            .tally
            .as_deref()
            .and_then(|t| t.chart())
            .filter(|c| c.range == *range)
        {
            Some(chart) => {
                let cap = chart.line(k, crate::sim::report::tally::Line::Capacity);
                *cols = Columns::of(&cap, &[]);
            }
            None => {
                for i in 0..e.run.steps() {
                    cols.add(
                        range.column(e.run.times[i]),
                        f64::from(e.run.capacity(d, i)),
                    );
                }
            }
        }
    }
    let stat = if n > 0 {
        f64::from(match run.tally.as_deref() {
            Some(t) => t.static_value(d),
            None => static_value(run, d),
        })
    } else {
        0.0
    };
    let (cap, orc) = (cap.held(), orc.held());
    let extras: Vec<Columns> = extras.into_iter().map(Columns::held).collect();
    let ymax = [demand.max(), cap.max(), orc.max(), stat]
        .into_iter()
        .chain(extras.iter().map(Columns::max))
        .fold(1e-9, f64::max)
        * 1.05;
    let pw = COLUMNS as f64;
    let _ = writeln!(
        o,
        "<rect x=\"{PAD_L}\" y=\"{top}\" width=\"{pw}\" height=\"{PANEL_H}\" class=\"frame\"/>"
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = ymax / 1.05 * frac;
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{:.1}\" class=\"yax\">{}</text>",
            PAD_L - 4.0,
            top + PANEL_H - PANEL_H * v / ymax + 4.0,
            fmt_axis(v)
        );
    }
    let lv = LEVELS as f64;
    let _ = writeln!(
        o,
        "<svg class=\"plot\" x=\"{PAD_L}\" y=\"{top}\" width=\"{pw}\" height=\"{PANEL_H}\" viewBox=\"0 0 {COLUMNS} {lv}\" preserveAspectRatio=\"none\">"
    );
    if let Some(id) = windows {
        let _ = writeln!(o, "<use class=\"win\" href=\"#{id}\"/>");
    }
    if n == 0 {
        o.push_str("</svg>\n");
        return;
    }
    let _ = writeln!(
        o,
        "<path class=\"dem\" data-v=\"{}\" data-w=\"{}\"/>",
        encode(&demand.hi, ymax),
        encode(&demand.lo, ymax)
    );
    let _ = writeln!(
        o,
        "<path class=\"ora\" data-v=\"{}\"/>",
        encode(&orc.hi, ymax)
    );
    for (i, cols) in extras.iter().enumerate() {
        let _ = writeln!(
            o,
            "<path class=\"x{}\" data-v=\"{}\"/>",
            i % 4,
            encode(&cols.hi, ymax)
        );
    }
    let _ = writeln!(
        o,
        "<path class=\"cap\" data-v=\"{}\"/>",
        encode(&cap.hi, ymax)
    );
    let sy = lv - stat / ymax * (lv - 1.0);
    let _ = writeln!(
        o,
        "<line class=\"sta\" x1=\"0\" x2=\"{COLUMNS}\" y1=\"{sy:.2}\" y2=\"{sy:.2}\"/>"
    );
    o.push_str("</svg>\n");
}

/// The change markers of a chart as text for the script: markers separated by `|`, each
/// `column,kind,seconds from the chart's start,changes in it` then up to [`MARKER_LIST`]
/// changes `minutes after the first:u|d:bandwidth from-to:concurrent from-to:reason
/// indices joined by +` (a dimension left alone is empty). Kind: u (up), d (down), b (both).
fn markers(run: &ProxyRun, range: &Range, reasons: &mut ReasonTable) -> String {
    let mut o = String::new();
    let mut i = 0;
    let cs = &run.changes;
    while i < cs.len() {
        let x0 = range.x(cs[i].time.millis());
        let mut j = i + 1;
        while j < cs.len() && range.x(cs[j].time.millis()) - x0 < MARKER_COLUMNS {
            j += 1;
        }
        let group = &cs[i..j];
        let ups = group
            .iter()
            .filter(|c| c.direction == Direction::Up)
            .count();
        let kind = match (ups, group.len() - ups) {
            (_, 0) => 'u',
            (0, _) => 'd',
            _ => 'b',
        };
        if !o.is_empty() {
            o.push('|');
        }
        let first = group[0].time.millis();
        let _ = write!(
            o,
            "{x0:.1},{kind},{},{}",
            (first - range.t0).div_euclid(1000),
            group.len()
        );
        for c in group.iter().take(MARKER_LIST) {
            let dir = match c.direction {
                Direction::Up => 'u',
                Direction::Down => 'd',
            };
            let pair = |a: u32, b: u32| {
                if a == b {
                    String::new()
                } else {
                    format!("{a}-{b}")
                }
            };
            let codes: Vec<String> = c
                .reasons
                .iter()
                .map(|r| reasons.of(r).to_string())
                .collect();
            let _ = write!(
                o,
                ",{}:{dir}:{}:{}:{}",
                (c.time.millis() - first) / 60_000,
                pair(c.bandwidth_from, c.bandwidth_to),
                pair(c.concurrent_from, c.concurrent_to),
                codes.join("+")
            );
        }
        i = j;
    }
    o
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
#bar{position:sticky;top:0;background:#f4f4f4;padding:.4em .6em;border:1px solid #ddd;z-index:1}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.15em .5em;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
table.worst td:nth-child(2),table.worst td:nth-child(3){text-align:left}
tr.fixed{color:#888}
.none{color:#666}
details.px{margin:.3em 0;border-top:1px solid #eee}
details.px summary{cursor:pointer;padding:.2em 0}
svg.ch{background:#fff;display:block;margin:.4em 0;user-select:none}
.frame{fill:none;stroke:#ddd}
.yax{font-size:10px;text-anchor:end;fill:#666}
.ax text{font-size:10px;text-anchor:middle;fill:#444}
.title{font-size:12px;fill:#333}
.plot path,.plot line{vector-effect:non-scaling-stroke;fill:none}
path.dem{fill:#9ecae1;stroke:#6baed6;stroke-width:.5}
path.cap{stroke:#d62728;stroke-width:1.8}
path.ora{stroke:#2ca02c;stroke-width:1.2}
line.sta{stroke:#7f7f7f;stroke-dasharray:6 4;stroke-width:1.2}
path.x0,path.x1,path.x2,path.x3{stroke-dasharray:4 3;stroke-width:1.4}
path.x0,.x0{stroke:#9467bd;fill:#9467bd}
path.x1,.x1{stroke:#8c564b;fill:#8c564b}
path.x2,.x2{stroke:#e377c2;fill:#e377c2}
path.x3,.x3{stroke:#17becf;fill:#17becf}
svg.defs{position:absolute}
.mk line{stroke-width:3;opacity:.45;cursor:help}
.mk line.up{stroke:#d62728}.mk line.down{stroke:#1f77b4}.mk line.both{stroke:#9467bd}
.legend text{font-size:11px}
tspan.dem{fill:#6baed6}tspan.cap{fill:#d62728}tspan.ora{fill:#2ca02c}tspan.sta{fill:#7f7f7f}
tspan.win{fill:#e6c35c}tspan.up{fill:#d62728}tspan.down{fill:#1f77b4}
.sel{fill:#000;opacity:.12}
";

/// Decodes the charts (when opened), draws and relabels the time axes, zooms.
const SCRIPT: &str = r##""use strict";
(function(){
const N=600,L=52,AL="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",NS="http://www.w3.org/2000/svg";
const STEPS=[1,5,15,30,60,120,180,360,720,1440,2880,10080,20160,40320].map(m=>m*60000);
let zoom=null,tz="utc";
const un=s=>s.replace(/([A-Za-z.])(\d+)/g,(m,c,n)=>c.repeat(+n));
const ys=s=>Array.from(un(s),c=>c==="."?null:L-AL.indexOf(c));
function line(v,step){let d="",pen=false,prev=null;v.forEach((y,x)=>{if(y===null){pen=false;return}
 if(!pen){d+="M"+x+" "+y;pen=true}else if(step&&y!==prev){d+="H"+x+"V"+y}else if(!step){d+="L"+x+" "+y}
 d+="H"+(x+1);prev=y});return d}
function band(hi,lo){let d="",run=[];const flush=()=>{if(!run.length)return;
 d+="M"+run.map(x=>x+" "+hi[x]+"H"+(x+1)).join("V");for(let i=run.length-1;i>=0;i--){const x=run[i];d+="V"+lo[x]+"H"+x}
 d+="Z";run=[]};hi.forEach((y,x)=>{if(y===null)flush();else run.push(x)});flush();return d}
function draw(det){if(det.dataset.drawn)return;det.dataset.drawn="1";
 det.querySelectorAll("path[data-v]").forEach(p=>{const hi=ys(p.dataset.v);
  p.setAttribute("d",p.dataset.w?band(hi,ys(p.dataset.w)):line(hi,!p.classList.contains("dem")))});
 const t0=+det.querySelector("svg.ch").dataset.t0;det.querySelectorAll("svg.mk").forEach(g=>marks(g,t0))}
let RS=null;const KIND={u:"up",d:"down",b:"both"};
function marks(g,t0){if(!RS)RS=JSON.parse(document.getElementById("reasons").textContent);
 (g.dataset.m||"").split("|").forEach(m=>{if(!m)return;const f=m.split(","),t=t0+(+f[2])*1000,n=+f[3],items=f.slice(4);
  const l=document.createElementNS(NS,"line");l.setAttribute("class",KIND[f[1]]);
  [["x1",f[0]],["x2",f[0]],["y1",0],["y2",1]].forEach(([k,v])=>l.setAttribute(k,v));
  const ti=document.createElementNS(NS,"title");ti.setAttribute("data-t",t);
  let s=fmt(t,true)+" "+tzName();if(n>1)s+=" · "+n+" changes:";
  items.forEach(it=>{const [dm,dir,bw,cc,rs]=it.split(":"),parts=[];
   if(bw)parts.push("bandwidth "+bw.replace("-","→"));if(cc)parts.push("concurrent "+cc.replace("-","→"));
   if(n>1)s+="\n+"+dm+"m";s+=" "+(dir==="u"?"↑":"↓")+" "+parts.join(", ")+" ("+rs.split("+").filter(Boolean).map(i=>RS[+i]).join(", ")+")"});
  if(n>items.length)s+="\n… "+(n-items.length)+" more";
  ti.textContent=s;l.appendChild(ti);g.appendChild(l)})}
function off(t){if(tz==="utc")return 0;if(tz==="local")return -new Date(t).getTimezoneOffset()*60000;return +tz*60000}
const p2=n=>String(n).padStart(2,"0");
function fmt(t,time){const d=new Date(t+off(t));const day=d.getUTCFullYear()+"-"+p2(d.getUTCMonth()+1)+"-"+p2(d.getUTCDate());
 return time?day.slice(5)+" "+p2(d.getUTCHours())+":"+p2(d.getUTCMinutes()):day}
function tzName(){return tz==="utc"?"UTC":tz==="local"?"local":"UTC"+document.querySelector("#tz option[value='"+tz+"']").textContent.slice(3)}
function axis(svg){const t0=+svg.dataset.t0,t1=+svg.dataset.t1,a=zoom?t0+(t1-t0)*zoom[0]/N:t0,b=zoom?t0+(t1-t0)*zoom[1]/N:t1;
 const g=svg.querySelector("g.ax"),y=g.dataset.y,step=STEPS.find(s=>(b-a)/s<=8)||STEPS[STEPS.length-1];
 const o=off(a);let t=Math.ceil((a+o)/step)*step-o;g.textContent="";
 for(;t<=b;t+=step){const e=document.createElementNS(NS,"text");e.setAttribute("x",(56+(t-a)/(b-a)*N).toFixed(1));e.setAttribute("y",y);
  e.setAttribute("data-t",t);e.textContent=fmt(t,step<86400000);g.appendChild(e)}}
function relabel(){document.querySelectorAll("svg.ch").forEach(axis);
 document.querySelectorAll("title[data-t]").forEach(e=>{e.textContent=e.textContent.replace(/^\S+ \S+ \S+/,fmt(+e.dataset.t,true)+" "+tzName())});
 document.querySelectorAll(".t[data-t]").forEach(e=>{e.textContent=fmt(+e.dataset.t,true)+" "+tzName()})}
function setZoom(z){zoom=z;const vb=z?z[0]+" 0 "+(z[1]-z[0]):"0 0 "+N;
 document.querySelectorAll("svg.plot").forEach(s=>{const h=s.viewBox.baseVal.height;s.setAttribute("viewBox",vb+" "+h)});
 relabel();const r=document.getElementById("range");const c=document.querySelector("svg.ch");
 if(c){const t0=+c.dataset.t0,t1=+c.dataset.t1;r.textContent=z?"zoomed to "+fmt(t0+(t1-t0)*z[0]/N,true)+" – "+fmt(t0+(t1-t0)*z[1]/N,true)+" "+tzName()+" (double-click a chart or press the button for the whole range)":"whole range; drag across a chart to zoom"}}
document.querySelectorAll("details.px").forEach(d=>{if(d.open)draw(d);d.addEventListener("toggle",()=>{if(d.open)draw(d)})});
function openHash(){const d=location.hash&&document.getElementById(location.hash.slice(1));if(d&&d.tagName==="DETAILS"){d.open=true;draw(d)}}
window.addEventListener("hashchange",openHash);openHash();
document.querySelectorAll("svg.ch").forEach(svg=>{let x0=null,sel=null;
 const col=ev=>{const r=svg.getBoundingClientRect(),px=(ev.clientX-r.left)*svg.viewBox.baseVal.width/r.width-56;
  const f=Math.min(Math.max(px/N,0),1),a=zoom?zoom[0]:0,b=zoom?zoom[1]:N;return a+f*(b-a)};
 const sx=c=>{const a=zoom?zoom[0]:0,b=zoom?zoom[1]:N;return 56+(c-a)/(b-a)*N};
 svg.addEventListener("mousedown",ev=>{x0=col(ev);sel=document.createElementNS(NS,"rect");sel.setAttribute("class","sel");
  sel.setAttribute("y",0);sel.setAttribute("height",svg.viewBox.baseVal.height);svg.appendChild(sel);ev.preventDefault()});
 svg.addEventListener("mousemove",ev=>{if(x0===null)return;const x1=col(ev),a=Math.min(x0,x1),b=Math.max(x0,x1);
  sel.setAttribute("x",sx(a));sel.setAttribute("width",sx(b)-sx(a))});
 svg.addEventListener("mouseup",ev=>{if(x0===null)return;const x1=col(ev),a=Math.min(x0,x1),b=Math.max(x0,x1);
  sel.remove();x0=null;if(b-a>0.5)setZoom([a,b])});
 svg.addEventListener("dblclick",()=>setZoom(null))});
document.getElementById("reset").addEventListener("click",()=>setZoom(null));
document.getElementById("tz").addEventListener("change",e=>{tz=e.target.value;relabel();setZoom(zoom)});
relabel();
document.body.dataset.ready="1";
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_written_one_letter_each_with_runs_counted() {
        let v = |xs: &[f64]| {
            xs.iter()
                .map(|&x| (!x.is_nan()).then_some(x))
                .collect::<Vec<_>>()
        };
        let ymax = 51.0;
        assert_eq!(encode(&v(&[0.0, 1.0, 51.0]), ymax), "ABz");
        assert_eq!(encode(&v(&[2.0, 2.0, 2.0, 2.0, 3.0, 3.0]), ymax), "C4DD");
        assert_eq!(
            encode(&v(&[f64::NAN, f64::NAN, f64::NAN, 60.0]), ymax),
            ".3z"
        );
    }

    #[test]
    fn ticks_fall_on_round_times_within_the_range() {
        let day = 86_400_000;
        let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
        let (step, ts) = ticks(t0 + 1, t0 + 30 * day);
        assert_eq!(step, 7 * day);
        assert!(
            ts.iter()
                .all(|t| t % step == 0 && *t > t0 && *t <= t0 + 30 * day)
        );
        let (step, ts) = ticks(t0, t0 + day);
        assert_eq!(step, 3 * 3_600_000);
        assert_eq!(ts.len(), 9);
        assert_eq!(utc_label(ts[1], true), "11-02 03:00");
    }
}
