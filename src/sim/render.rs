//! The terminal report: a table per policy set (policy / static / oracle side by side), a
//! fleet summary, the worst proxies, a comparison of sets, and the caveats.

use std::fmt::Write;

use super::report::{Baselines, Figures, Latency, ProxyReport, SetReport};

fn f1(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn three(p: f64, s: f64, o: f64) -> String {
    format!("{} / {} / {}", f1(p), f1(s), f1(o))
}

fn latency(l: &Latency) -> String {
    match (l.p50_s, l.p95_s) {
        (Some(a), Some(b)) => format!(
            "p50 {} / p95 {} ({} episodes, {} open)",
            secs(a),
            secs(b),
            l.episodes,
            l.open
        ),
        _ => format!("no episodes ({} open)", l.open),
    }
}

fn secs(s: f64) -> String {
    crate::time::format_duration(std::time::Duration::from_secs_f64(s.max(0.0)))
}

fn money(f: &Figures, currency: &Option<String>) -> Option<String> {
    f.cost.map(|c| {
        format!("{c:.2} {}", currency.as_deref().unwrap_or(""))
            .trim_end()
            .to_string()
    })
}

/// Renders the whole report as plain text.
pub fn render(reports: &[SetReport], notes: &[String]) -> String {
    render_with_reference(reports, &[], notes)
}

/// [`render`], plus the reference peers (`--reference`) beside the policy sets.
pub fn render_with_reference(
    reports: &[SetReport],
    reference: &[SetReport],
    notes: &[String],
) -> String {
    let mut out = String::new();
    for r in reports {
        render_set(&mut out, r);
    }
    if reports.len() > 1 {
        render_comparison(&mut out, reports);
    }
    if !reference.is_empty() {
        render_reference(&mut out, reports, reference);
    }
    let _ = writeln!(out, "Notes and caveats:");
    for n in notes {
        let _ = writeln!(out, "  - {n}");
    }
    for c in CAVEATS {
        let _ = writeln!(out, "  - {c}");
    }
    out
}

const CAVEATS: &[&str] = &[
    "demand in the input may itself be censored by the capacity configured back then; censored samples are counted, never called accurate",
    "no feedback is modeled: saturated users may retry or leave",
    "allowed values and prices are those of the fleet file and price table given",
    "figures are per evaluation step (the policy's interval); steps without data are never counted under-provisioned",
    "columns read policy / static / oracle; static = cheapest allowed value covering the peak need, oracle = cheapest covering each step's need (step rules: utilization 1.0)",
];

fn render_set(out: &mut String, r: &SetReport) {
    let s = &r.summary;
    let _ = writeln!(
        out,
        "Policy set {}: {} proxies, {} → {}, adjusting {}s",
        s.policy_set, s.proxies, s.start, s.end, s.adjusting_s
    );
    let headers = [
        "proxy",
        "policy",
        "under % (P/S/O)",
        "unserved Mbps·h (P/S/O)",
        "Mbps·h (P/S/O)",
        "Conc·h (P/S/O)",
        "changes ↑/↓",
        "per day",
        "flaps",
        "censored",
    ];
    let mut rows: Vec<Vec<String>> = r.proxies.iter().map(row).collect();
    let mut fleet = vec!["FLEET".into(), String::new()];
    fleet.extend(compared(&s.figures, &s.baselines));
    fleet.extend([
        format!("{}/{}", s.changes_up, s.changes_down),
        format!("{:.2}", s.changes_per_proxy_day),
        s.flapping.to_string(),
        s.censored_samples.to_string(),
    ]);
    rows.push(fleet);
    table(out, &headers, &rows);
    let f = &s.figures;
    let (bs, bo) = (&s.baselines.static_.figures, &s.baselines.oracle);
    let _ = writeln!(out, "  fleet:");
    let _ = writeln!(
        out,
        "    slack (bandwidth)    {:.1}% / {} Mbps·h   static {:.1}% / {}   oracle {:.1}% / {}",
        f.slack_pct,
        f1(f.slack_mbps_hours),
        bs.slack_pct,
        f1(bs.slack_mbps_hours),
        bo.slack_pct,
        f1(bo.slack_mbps_hours)
    );
    let _ = writeln!(
        out,
        "    slack (concurrent)   {:.1}% / {} units·h   static {:.1}% / {}   oracle {:.1}% / {}",
        f.slack_concurrent_pct,
        f1(f.slack_concurrent_hours),
        bs.slack_concurrent_pct,
        f1(bs.slack_concurrent_hours),
        bo.slack_concurrent_pct,
        f1(bo.slack_concurrent_hours)
    );
    if let (Some(p), Some(st), Some(o)) = (
        money(f, &s.currency),
        money(bs, &s.currency),
        money(bo, &s.currency),
    ) {
        let _ = writeln!(
            out,
            "    cost                 {p}   static {st}   oracle {o}"
        );
    }
    let _ = writeln!(
        out,
        "    under-provisioned    {:.2}% of proxy-steps ({:.2}% weighted by footprint)",
        f.under_provisioned_pct, s.under_provisioned_pct_footprint_weighted
    );
    let _ = writeln!(
        out,
        "    over-provisioned     {:.1}% of proxy-steps above the oracle; {:.0}% of whole proxy-days without a change",
        s.over_provisioned_pct, s.days_without_change_pct
    );
    let _ = writeln!(
        out,
        "    data                 {} steps without data, longest gap {}; {} censored samples (demand above capacity); {} change(s) on saturated readings (data.saturated)",
        s.no_data_steps,
        secs(s.longest_gap_s),
        s.censored_samples,
        s.saturated_changes
    );
    if let Some(fc) = &s.forecast {
        let _ = writeln!(
            out,
            "    forecast             MAPE {:.1}%, bias {:+.1}% over {} proxy-hours (forecast need against each hour's highest need)",
            fc.mape_pct, fc.bias_pct, fc.hours
        );
    }
    let _ = writeln!(
        out,
        "    reaction up          {}",
        latency(&s.reaction_latency.up)
    );
    let _ = writeln!(
        out,
        "    reaction down        {}",
        latency(&s.reaction_latency.down)
    );
    let _ = writeln!(
        out,
        "    API calls            {} total, peak {}/s (limit 20), {} deferred to a later second (max wait {}s)",
        s.api_calls, s.peak_api_calls_per_second, s.api_deferred, s.api_max_wait_s
    );
    let mut reasons: Vec<(&String, &u64)> = s.reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let list: Vec<String> = reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let _ = writeln!(out, "    reasons              {}", list.join(", "));
    if !s.unmanaged_proxies.is_empty() {
        let _ = writeln!(
            out,
            "    not selected by any policy: {}",
            s.unmanaged_proxies.join(", ")
        );
    }
    for o in &s.overlapping_selections {
        let _ = writeln!(out, "    overlap: {o}");
    }
    if s.excluded_unscalable > 0 {
        let _ = writeln!(
            out,
            "    not scalable, left out of FLEET ({}): {}",
            s.excluded_unscalable,
            s.unscalable_proxies.join(", ")
        );
    }
    if r.proxies.len() > 10 {
        worst(out, "worst by under-provisioned %", &r.proxies, |p| {
            p.figures.under_provisioned_pct
        });
        worst(out, "worst by flapping", &r.proxies, |p| p.flapping as f64);
    }
    out.push('\n');
}

/// The four policy / static / oracle cells of a row.
fn compared(f: &Figures, b: &Baselines) -> [String; 4] {
    let (bs, bo) = (&b.static_.figures, &b.oracle);
    [
        three(
            f.under_provisioned_pct,
            bs.under_provisioned_pct,
            bo.under_provisioned_pct,
        ),
        three(
            f.unserved_mbps_hours,
            bs.unserved_mbps_hours,
            bo.unserved_mbps_hours,
        ),
        three(
            f.footprint_mbps_hours,
            bs.footprint_mbps_hours,
            bo.footprint_mbps_hours,
        ),
        three(
            f.footprint_concurrent_hours,
            bs.footprint_concurrent_hours,
            bo.footprint_concurrent_hours,
        ),
    ]
}

fn row(p: &ProxyReport) -> Vec<String> {
    let policy = match &p.unscalable {
        Some(_) => format!("{} (not scalable)", p.policy),
        None => p.policy.clone(),
    };
    let mut cells = vec![p.proxy_id.clone(), policy];
    cells.extend(compared(&p.figures, &p.baselines));
    cells.extend([
        format!("{}/{}", p.changes_up, p.changes_down),
        format!("{:.2}", p.changes_per_day),
        p.flapping.to_string(),
        p.censored_samples.to_string(),
    ]);
    cells
}

fn worst(out: &mut String, title: &str, proxies: &[ProxyReport], key: fn(&ProxyReport) -> f64) {
    let mut v: Vec<&ProxyReport> = proxies
        .iter()
        .filter(|p| p.unscalable.is_none() && key(p) > 0.0)
        .collect();
    v.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.proxy_id.cmp(&b.proxy_id)));
    let list: Vec<String> = v
        .iter()
        .take(10)
        .map(|p| format!("{} ({})", p.proxy_id, f1(key(p))))
        .collect();
    if !list.is_empty() {
        let _ = writeln!(out, "    {title}: {}", list.join(", "));
    }
}

fn render_comparison(out: &mut String, reports: &[SetReport]) {
    let _ = writeln!(out, "Policy sets side by side (fleet, same trace):");
    let headers = [
        "policy set",
        "under %",
        "unserved Mbps·h",
        "Mbps·h",
        "Conc·h",
        "slack %",
        "changes",
        "flaps",
        "react up p95",
        "cost",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let s = &r.summary;
            let f = &s.figures;
            vec![
                s.policy_set.clone(),
                format!("{:.2}", f.under_provisioned_pct),
                f1(f.unserved_mbps_hours),
                f1(f.footprint_mbps_hours),
                f1(f.footprint_concurrent_hours),
                format!("{:.1}", f.slack_pct),
                s.changes.to_string(),
                s.flapping.to_string(),
                s.reaction_latency
                    .up
                    .p95_s
                    .map(secs)
                    .unwrap_or_else(|| "-".into()),
                money(f, &s.currency).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(out, &headers, &rows);
    out.push('\n');
}

/// The policy sets and the reference peers on the figures users compare them by.
fn render_reference(out: &mut String, reports: &[SetReport], reference: &[SetReport]) {
    let _ = writeln!(
        out,
        "Against the reference autoscalers (same trace, same model, same bounds):"
    );
    let headers = [
        "who",
        "",
        "under %",
        "Mbps·h",
        "× oracle",
        "changes/proxy-day",
        "flaps",
    ];
    let row = |who: &str, s: &crate::sim::report::Summary| {
        let f = &s.figures;
        let oracle = s.baselines.oracle.footprint_mbps_hours;
        vec![
            who.to_string(),
            String::new(),
            format!("{:.2}", f.under_provisioned_pct),
            f1(f.footprint_mbps_hours),
            if oracle > 0.0 {
                format!("{:.2}", f.footprint_mbps_hours / oracle)
            } else {
                "-".into()
            },
            format!("{:.1}", s.changes_per_proxy_day),
            s.flapping.to_string(),
        ]
    };
    let mut rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| row(&r.summary.policy_set, &r.summary))
        .collect();
    rows.extend(
        reference
            .iter()
            .map(|r| row(&r.summary.policy_set, &r.summary)),
    );
    table(out, &headers, &rows);
    out.push('\n');
}

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let width = |s: &str| s.chars().count();
    let mut w: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |out: &mut String, cells: &[&str]| {
        let mut s = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - width(c);
            if i < 2 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
            s.push_str("  ");
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(out, headers);
    let rule: Vec<String> = w.iter().map(|&n| "─".repeat(n)).collect();
    let rule_refs: Vec<&str> = rule.iter().map(String::as_str).collect();
    line(out, &rule_refs);
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(out, &cells);
    }
}
