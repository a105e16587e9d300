//! `simulate --report FILE.html`: one self-contained HTML file (inline CSS and SVG, no
//! script, nothing fetched), readable offline. Per policy set: the fleet summary, then per
//! proxy one SVG chart with two panels (bandwidth, concurrency) of demand against the
//! policy's capacity in effect, the oracle and the static baseline over time.

use std::fmt::Write;

use super::report::{Figures, ProxyReport, SetReport, oracle_values, static_value};
use super::{ProxyRun, SimRun};
use crate::core::Dim;

/// Points per line at most (each point is the max over its bucket of steps).
const MAX_POINTS: usize = 720;
const W: f64 = 960.0;
const PANEL_H: f64 = 150.0;
const PAD_L: f64 = 60.0;
const PAD_T: f64 = 22.0;

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

/// Renders the report; `runs[i]` is the replay behind `reports[i]`.
pub fn render(reports: &[SetReport], runs: &[SimRun], notes: &[String]) -> String {
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<title>gaap-autoscaler simulation report</title>\n<style>\n");
    o.push_str(CSS);
    o.push_str("</style>\n</head>\n<body>\n<h1>gaap-autoscaler simulation report</h1>\n");
    if reports.len() > 1 {
        o.push_str("<h2>Policy sets side by side</h2>\n<table>\n<tr><th>policy set</th><th>under %</th><th>unserved Mbps·h</th><th>Mbps·h</th><th>Conc·h</th><th>slack %</th><th>changes</th><th>flaps</th><th>cost</th></tr>\n");
        for r in reports {
            let s = &r.summary;
            let f = &s.figures;
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{:.2}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.policy_set),
                f.under_provisioned_pct,
                f.unserved_mbps_hours,
                f.footprint_mbps_hours,
                f.footprint_concurrent_hours,
                f.slack_pct,
                s.changes,
                s.flapping,
                cost(f)
            );
        }
        o.push_str("</table>\n");
    }
    for (r, run) in reports.iter().zip(runs) {
        set_section(&mut o, r, run);
    }
    o.push_str("<h2>Notes</h2>\n<ul>\n");
    for n in notes {
        let _ = writeln!(o, "<li>{}</li>", escape(n));
    }
    o.push_str("<li>Static = the cheapest allowed value within the policy bounds covering the peak need (demand / target utilization; step rules 1.0), held. Oracle = the cheapest allowed value covering each step's need.</li>\n");
    o.push_str("<li>Observed demand is censored by the capacity in effect; censored samples are counted.</li>\n</ul>\n</body>\n</html>\n");
    o
}

fn cost(f: &Figures) -> String {
    f.cost
        .map(|c| format!("{c:.2}"))
        .unwrap_or_else(|| "-".into())
}

fn set_section(o: &mut String, r: &SetReport, run: &SimRun) {
    let s = &r.summary;
    let _ = writeln!(
        o,
        "<section class=\"set\">\n<h2>Policy set {}</h2>\n<p>{} proxies, {} → {}, adjusting {} s; API calls {} (peak {}/s, {} deferred); flapping {}; censored samples {}.</p>",
        escape(&s.policy_set),
        s.proxies,
        escape(&s.start),
        escape(&s.end),
        s.adjusting_s,
        s.api_calls,
        s.peak_api_calls_per_second,
        s.api_deferred,
        s.flapping,
        s.censored_samples
    );
    o.push_str("<table>\n<tr><th></th><th>under %</th><th>unserved Mbps·h</th><th>Mbps·h</th><th>Conc·h</th><th>slack %</th><th>cost</th></tr>\n");
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
    o.push_str("</table>\n");
    for (p, pr) in r.proxies.iter().zip(&run.proxies) {
        proxy_section(o, p, pr);
    }
    o.push_str("</section>\n");
}

fn proxy_section(o: &mut String, p: &ProxyReport, run: &ProxyRun) {
    let f = &p.figures;
    let _ = writeln!(
        o,
        "<div class=\"proxy\">\n<h3>{} <small>policy {}</small></h3>\n<p>under-provisioned {:.2}% (static {:.2}%, oracle {:.2}%), footprint {:.1} Mbps·h (static {:.1}, oracle {:.1}), changes {} ↑{} ↓{}, flapping {}, censored {}.</p>",
        escape(&p.proxy_id),
        escape(&p.policy),
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
        p.censored_samples
    );
    chart(o, run);
    o.push_str("</div>\n");
}

/// One SVG with a bandwidth panel and a concurrency panel.
fn chart(o: &mut String, run: &ProxyRun) {
    let h = PAD_T + 2.0 * (PANEL_H + PAD_T) + 20.0;
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" width=\"{W}\" height=\"{h}\" role=\"img\" aria-label=\"demand and capacity of {}\">",
        escape(&run.proxy_id)
    );
    for (k, d) in Dim::ALL.into_iter().enumerate() {
        let top = PAD_T + k as f64 * (PANEL_H + PAD_T);
        panel(o, run, d, top);
    }
    let ly = h - 6.0;
    let _ = writeln!(
        o,
        "<g class=\"legend\"><text x=\"{PAD_L}\" y=\"{ly}\" class=\"demand\">— demand</text><text x=\"{}\" y=\"{ly}\" class=\"cap\">— policy capacity</text><text x=\"{}\" y=\"{ly}\" class=\"oracle\">— oracle</text><text x=\"{}\" y=\"{ly}\" class=\"static\">- - static</text></g>",
        PAD_L + 100.0,
        PAD_L + 250.0,
        PAD_L + 340.0
    );
    o.push_str("</svg>\n");
}

fn panel(o: &mut String, run: &ProxyRun, d: Dim, top: f64) {
    let n = run.steps();
    let label = match d {
        Dim::Bandwidth => "bandwidth (Mbps)",
        Dim::Concurrent => "concurrent (10k connections)",
    };
    let _ = writeln!(
        o,
        "<text x=\"{PAD_L}\" y=\"{}\" class=\"title\">{label}</text>",
        top - 6.0
    );
    if n == 0 {
        let _ = writeln!(
            o,
            "<text x=\"{PAD_L}\" y=\"{}\">no evaluation steps</text>",
            top + 20.0
        );
        return;
    }
    let oracle = oracle_values(run, d);
    let stat = f64::from(static_value(run, d));
    let buckets = n.div_ceil(MAX_POINTS).max(1);
    let mut demand = Vec::new();
    let mut cap = Vec::new();
    let mut orc = Vec::new();
    let mut i = 0;
    while i < n {
        let j = (i + buckets).min(n);
        let mut dm = f64::NAN;
        let mut cm = 0.0f64;
        let mut om = 0.0f64;
        for (s, &o) in oracle.iter().enumerate().take(j).skip(i) {
            let x = run.demand_units(d, s);
            if x.is_finite() {
                dm = if dm.is_nan() { x } else { dm.max(x) };
            }
            cm = cm.max(f64::from(run.capacity(d, s)));
            om = om.max(f64::from(o));
        }
        demand.push(dm);
        cap.push(cm);
        orc.push(om);
        i = j;
    }
    let ymax = demand
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .chain(cap.iter().copied())
        .chain(orc.iter().copied())
        .chain([stat])
        .fold(1e-9, f64::max)
        * 1.05;
    let m = demand.len();
    let x = |i: usize| PAD_L + (W - PAD_L - 10.0) * i as f64 / (m.max(2) - 1) as f64;
    let y = |v: f64| top + PANEL_H - PANEL_H * (v / ymax);
    let _ = writeln!(
        o,
        "<rect x=\"{PAD_L}\" y=\"{top}\" width=\"{}\" height=\"{PANEL_H}\" class=\"frame\"/>",
        W - PAD_L - 10.0
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = ymax / 1.05 * frac;
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{:.1}\" class=\"axis\">{}</text>",
            PAD_L - 4.0,
            y(v) + 4.0,
            fmt_axis(v)
        );
    }
    // Demand: a polyline per run of finite points (gaps stay gaps).
    let mut seg = String::new();
    let flush = |o: &mut String, seg: &mut String| {
        if !seg.is_empty() {
            let _ = writeln!(
                o,
                "<polyline class=\"demand\" points=\"{}\"/>",
                seg.trim_end()
            );
            seg.clear();
        }
    };
    for (i, &v) in demand.iter().enumerate() {
        if v.is_finite() {
            let _ = write!(seg, "{:.1},{:.1} ", x(i), y(v));
        } else {
            flush(o, &mut seg);
        }
    }
    flush(o, &mut seg);
    for (class, series) in [("oracle", &orc), ("cap", &cap)] {
        let mut pts = String::new();
        for (i, &v) in series.iter().enumerate() {
            if i > 0 {
                let _ = write!(pts, "{:.1},{:.1} ", x(i), y(series[i - 1]));
            }
            let _ = write!(pts, "{:.1},{:.1} ", x(i), y(v));
        }
        let _ = writeln!(
            o,
            "<polyline class=\"{class}\" points=\"{}\"/>",
            pts.trim_end()
        );
    }
    let _ = writeln!(
        o,
        "<line class=\"static\" x1=\"{PAD_L}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        W - 10.0,
        y(stat),
        y(stat)
    );
}

fn fmt_axis(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}
svg{background:#fff;display:block;margin:.5em 0}
.frame{fill:none;stroke:#ddd}
.axis{font-size:10px;text-anchor:end;fill:#666}
.title{font-size:12px;fill:#333}
polyline{fill:none;stroke-width:1.2}
.demand{stroke:#1f77b4;fill:#1f77b4}
polyline.demand{fill:none}
.cap{stroke:#d62728;fill:#d62728}
polyline.cap{fill:none;stroke-width:1.8}
.oracle{stroke:#2ca02c;fill:#2ca02c}
polyline.oracle{fill:none}
.static{stroke:#7f7f7f;fill:#7f7f7f;stroke-dasharray:6 4}
.legend text{font-size:12px;stroke:none}
";
