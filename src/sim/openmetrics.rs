//! `simulate --export-openmetrics FILE`: a trace's signals as OpenMetrics text, under the
//! metric names and proxy labels the policies query, so `promtool tsdb
//! create-blocks-from openmetrics FILE DIR` backfills a Prometheus the daemon can run the
//! same policies against (`scripts/demo.sh`). Pure: text in, text out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::FloatText;
use crate::policy::Policy;
use crate::trace::Trace;

/// The metric a query reads: its first identifier that is neither a function (followed by
/// `(`), a keyword, nor inside a label matcher, a range, a string or a grouping clause.
/// `max by (channel_id) (max_over_time(qce_qaap_outbandwidth_max[2m]))` →
/// `qce_qaap_outbandwidth_max`.
pub fn metric_of(query: &str) -> Option<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
        // aggregation operators, which may be followed by `by (...)` before their `(`
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let b = query.as_bytes();
    let mut i = 0;
    let mut skip_group = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                while i < b.len() && b[i] != close {
                    i += 1;
                }
                i += 1;
            }
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'(' if skip_group => {
                while i < b.len() && b[i] != b')' {
                    i += 1;
                }
                i += 1;
                skip_group = false;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                let next = query[i..].trim_start().as_bytes().first().copied();
                let lower = word.to_ascii_lowercase();
                if KEYWORDS.contains(&lower.as_str()) {
                    skip_group = matches!(
                        lower.as_str(),
                        "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                    );
                } else if next != Some(b'(') {
                    return Some(word.to_string());
                }
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Signal name → (metric, proxy label), from every policy; an error when a signal maps to
/// two metrics, or two signals to one metric (the file could not hold both).
pub fn names<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
) -> Result<BTreeMap<String, (String, String)>, String> {
    let mut out: BTreeMap<String, (String, String)> = BTreeMap::new();
    for p in policies {
        for (name, s) in &p.signals {
            let metric = metric_of(&s.query).ok_or_else(|| {
                format!(
                    "policy `{}`, signal `{name}`: no metric name in the query `{}`",
                    p.name, s.query
                )
            })?;
            let want = (metric, s.proxy_label.clone());
            match out.get(name) {
                Some(have) if *have != want => {
                    return Err(format!(
                        "signal `{name}` reads {} ({}) in one policy and {} ({}) in `{}`: export one policy set at a time",
                        have.0, have.1, want.0, want.1, p.name
                    ));
                }
                _ => {
                    if let Some((other, _)) = out.iter().find(|(n, v)| *n != name && v.0 == want.0)
                    {
                        return Err(format!(
                            "signals `{other}` and `{name}` both read {}: the export cannot hold both",
                            want.0
                        ));
                    }
                    out.insert(name.clone(), want);
                }
            }
        }
    }
    Ok(out)
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The OpenMetrics text: one gauge family per signal (contiguous, `# HELP`/`# TYPE`), one
/// series per proxy, samples in ascending time with timestamps in seconds (a repeated
/// timestamp keeps its first sample), `# EOF` last. Signals the policies do not query are
/// left out.
pub fn render(trace: &Trace, names: &BTreeMap<String, (String, String)>) -> String {
    let mut out = String::new();
    for (signal, (metric, label)) in names {
        let _ = writeln!(
            out,
            "# HELP {metric} gaap-autoscaler simulate export of signal {signal}"
        );
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for ((proxy, s), series) in &trace.series {
            if s != signal {
                continue;
            }
            let proxy = escape(proxy);
            let mut prev = i64::MIN;
            for (t, v) in series.times.iter().zip(&series.values) {
                if *t <= prev {
                    continue;
                }
                prev = *t;
                let secs = if t % 1000 == 0 {
                    (t / 1000).to_string()
                } else {
                    format!("{:.3}", *t as f64 / 1000.0)
                };
                let _ = writeln!(
                    out,
                    "{metric}{{{label}=\"{proxy}\"}} {} {secs}",
                    FloatText(*v)
                );
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn metric_names_from_queries() {
        for (q, want) in [
            (
                "max by (channel_id) (max_over_time(qce_qaap_outbandwidth_max[2m]))",
                Some("qce_qaap_outbandwidth_max"),
            ),
            (
                "max by (channel_id) (qce_qaap_connum_max)",
                Some("qce_qaap_connum_max"),
            ),
            ("rate(x_total{job=\"a b\"}[5m]) * 8", Some("x_total")),
            ("sum without (instance) (up)", Some("up")),
            ("a:b:c offset 5m", Some("a:b:c")),
            ("time()", None),
            ("1 + 2", None),
        ] {
            assert_eq!(metric_of(q).as_deref(), want, "{q}");
        }
    }

    #[test]
    fn renders_families_series_and_eof() {
        let mut trace = Trace::default();
        trace
            .series_mut("link-a", "bandwidth")
            .push(Timestamp(60_000), 12.5);
        trace
            .series_mut("link-a", "bandwidth")
            .push(Timestamp(120_000), f64::NAN);
        trace
            .series_mut("link-a", "bandwidth")
            .push(Timestamp(120_000), 99.0);
        trace
            .series_mut("link-b", "bandwidth")
            .push(Timestamp(60_500), 1.0);
        trace
            .series_mut("link-a", "other")
            .push(Timestamp(60_000), 3.0);
        let names = BTreeMap::from([(
            "bandwidth".to_string(),
            ("m_bw".to_string(), "channel_id".to_string()),
        )]);
        assert_eq!(
            render(&trace, &names),
            "# HELP m_bw gaap-autoscaler simulate export of signal bandwidth\n\
             # TYPE m_bw gauge\n\
             m_bw{channel_id=\"link-a\"} 12.5 60\n\
             m_bw{channel_id=\"link-a\"} NaN 120\n\
             m_bw{channel_id=\"link-b\"} 1 60.500\n\
             # EOF\n"
        );
    }
}
