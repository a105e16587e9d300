//! Stage 2: raw policy → validated [`Policy`], every problem collected with its place.
//!
//! Errors make the file invalid; warnings are reported but the policy is still usable
//! (e.g. a fallback value below `min`, which the bounds will clamp).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone;
use toml::Spanned;

use super::raw::{
    self, RawDimension, RawDirection, RawMissingData, RawPolicy, RawSignal, RawStep, RawWindow,
    Stage1,
};
use super::{
    Behavior, CronSpec, Diagnostic, Dimension, DirectionBehavior, MissingAction, MissingData, Mode,
    Policy, Rule, Schedule, Selector, Signal, StepRule, Window,
};

/// A (line, col) place in a file, 1-based.
pub type Loc = (usize, usize);

/// Where the parts of a validated policy were written: for messages that involve
/// several files (duplicate names, a proxy claimed twice).
#[derive(Clone, Debug, Default)]
pub struct PolicySpans {
    pub name: Loc,
    /// Each proxy id of `proxies = [...]` with its place.
    pub proxies: Vec<(String, Loc)>,
    /// The `select` table, if any.
    pub select: Option<Loc>,
    /// `bandwidth.min` and `concurrent.min` (for fleet checks on the bounds).
    pub bandwidth: Option<Loc>,
    pub concurrent: Option<Loc>,
}

impl PolicySpans {
    /// Where a policy selects a proxy: at its id in the list, else at the tag selector.
    pub fn selector_of(&self, id: &str) -> Loc {
        self.proxies
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, l)| *l)
            .or(self.select)
            .unwrap_or(self.name)
    }
}

/// A validated policy with the places of its parts.
#[derive(Clone, Debug)]
pub struct CheckedPolicy {
    pub policy: Policy,
    pub spans: PolicySpans,
}

pub(crate) use crate::diagnostic::collect::Ctx;

/// Validates one policy file's text. Returns the policy when there are no errors, and
/// every diagnostic (errors and warnings) in any case.
pub fn check_policy(text: &str, path: &Path) -> (Option<CheckedPolicy>, Vec<Diagnostic>) {
    let stage1: Stage1<RawPolicy> = raw::deserialize_all(text, path, &[]);
    let (mut ctx, raw) = Ctx::new(text, path, stage1);
    let checked = raw.and_then(|r| validate_policy(&mut ctx, r));
    let ok = !ctx.has_errors();
    (checked.filter(|_| ok), ctx.finish())
}

const NAME_HELP: &str =
    "use 1 to 64 letters, digits, `.`, `_` or `-` (the name appears in logs and decision ids)";

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn validate_policy(ctx: &mut Ctx<'_>, raw: RawPolicy) -> Option<CheckedPolicy> {
    let mut spans = PolicySpans::default();

    // name: defaults to the file name without `.toml`.
    let name = match &raw.name {
        Some(n) => {
            spans.name = ctx.loc(n.span().start);
            if !valid_name(n.get_ref()) {
                ctx.err(
                    n.span().start,
                    format!("invalid policy name `{}`", n.get_ref()),
                    NAME_HELP,
                );
            }
            n.get_ref().clone()
        }
        None => {
            spans.name = (1, 1);
            let stem = ctx
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !valid_name(&stem) && !ctx.dropped.contains("name") {
                ctx.err(
                    0,
                    format!("no `name`, and the file name `{stem}` is not a valid policy name"),
                    format!("add `name = \"...\"`; {NAME_HELP}"),
                );
            }
            stem
        }
    };

    let selector = selector(ctx, &raw, &mut spans);
    let schedule = schedule(ctx, &raw);

    let mode = match &raw.mode {
        None => Mode::Live,
        Some(m) => {
            match m.get_ref().as_str() {
                "live" => Mode::Live,
                "dry-run" => Mode::DryRun,
                other => {
                    let hint = raw::suggest(other, ["live", "dry-run"])
                        .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                    ctx.err(m.span().start, format!("unknown mode `{other}`"), format!("{hint}use `live` (apply changes) or `dry-run` (log decisions, never apply)"));
                    Mode::Live
                }
            }
        }
    };

    let billing_type = raw.billing_type.as_ref().and_then(|b| match *b.get_ref() {
        v @ (0 | 1) => Some(v),
        v => {
            ctx.err(
                b.span().start,
                format!("`billing_type` = {v} is not a GAAP billing type"),
                "use 0 (billed by bandwidth) or 1 (billed by traffic), or leave it out",
            );
            None
        }
    });

    let mut paused = crate::core::Paused::NONE;
    if raw.paused.as_ref().is_some_and(|p| *p.get_ref()) {
        paused = crate::core::Paused::BOTH;
    }
    if let Some(dirs) = raw
        .pause
        .as_ref()
        .and_then(|p| p.get_ref().directions.as_ref())
    {
        for d in dirs {
            match d.get_ref().as_str() {
                "scale_up" => paused.up = true,
                "scale_down" => paused.down = true,
                other => ctx.err(
                    d.span().start,
                    format!("`{other}` is not a direction to pause"),
                    "use \"scale_up\" or \"scale_down\" (or `paused = true` for both)",
                ),
            }
        }
    }

    let manual_hold = raw
        .manual_hold
        .as_ref()
        .map_or(crate::core::ManualHold::default(), |h| manual_hold(ctx, h));
    let manual_hold_allows_saturation = raw
        .manual_hold_allows_saturation
        .as_ref()
        .is_some_and(|b| *b.get_ref());
    let hold_paid_capacity = raw
        .hold_paid_capacity
        .as_ref()
        .is_some_and(|b| *b.get_ref());

    let signals = signals(ctx, &raw);
    let behavior = behavior(ctx, raw.behavior.as_ref());
    let predictive = super::adaptive::predictive(ctx, raw.predictive.as_ref());

    // References are checked against every signal written, valid or not (a signal with
    // an error has been reported already).
    let defined: BTreeSet<String> = raw
        .signals
        .iter()
        .flat_map(|t| t.get_ref().keys().cloned())
        .collect();
    let bandwidth = raw
        .bandwidth
        .as_ref()
        .and_then(|d| dimension(ctx, "bandwidth", d, &defined, &behavior));
    let concurrent = raw
        .concurrent
        .as_ref()
        .and_then(|d| dimension(ctx, "concurrent", d, &defined, &behavior));
    if let Some(d) = &raw.bandwidth {
        spans.bandwidth = Some(
            ctx.loc(
                d.get_ref()
                    .min
                    .as_ref()
                    .map_or(d.span().start, |m| m.span().start),
            ),
        );
    }
    if let Some(d) = &raw.concurrent {
        spans.concurrent = Some(
            ctx.loc(
                d.get_ref()
                    .min
                    .as_ref()
                    .map_or(d.span().start, |m| m.span().start),
            ),
        );
    }
    if raw.bandwidth.is_none()
        && raw.concurrent.is_none()
        && !ctx.dropped.contains("bandwidth")
        && !ctx.dropped.contains("concurrent")
    {
        ctx.err(
            0,
            "the policy manages neither bandwidth nor concurrent",
            "add a [bandwidth] section (Mbps) and/or a [concurrent] section (units of 10,000 connections)",
        );
    }

    // Signals nobody uses are probably a typo in a dimension's `signal`.
    if let Some(table) = &raw.signals {
        for (sig_name, sig) in table.get_ref() {
            let used = [&raw.bandwidth, &raw.concurrent].iter().any(|d| {
                d.as_ref()
                    .and_then(|d| d.get_ref().signal.as_ref())
                    .is_some_and(|s| s.get_ref() == sig_name)
            });
            if !used {
                ctx.warn(
                    sig.span().start,
                    format!("signal `{sig_name}` is not used by [bandwidth] or [concurrent]"),
                    "reference it with `signal = \"...\"` in a dimension, or remove it",
                );
            }
        }
    }

    let managed = (raw.bandwidth.is_some(), raw.concurrent.is_some());
    let bounds = (
        bandwidth.as_ref().map(|d| (d.min, d.max)),
        concurrent.as_ref().map(|d| (d.min, d.max)),
    );
    let on_missing_data = raw
        .on_missing_data
        .as_ref()
        .map(|m| missing_data(ctx, m, managed, bounds))
        .unwrap_or_default();

    let windows: Vec<Window> = raw
        .window
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, w)| window(ctx, i, w, managed, bounds))
        .collect();

    if ctx.has_errors() {
        return None;
    }
    let policy = Policy {
        name,
        source: Some(ctx.path.to_path_buf()),
        selector,
        schedule: schedule?,
        mode,
        signals,
        bandwidth,
        concurrent,
        behavior,
        on_missing_data,
        windows,
        billing_type,
        paused,
        manual_hold,
        manual_hold_allows_saturation,
        hold_paid_capacity,
        predictive,
    };
    Some(CheckedPolicy { policy, spans })
}

/// `manual_hold`: a duration, `"0"` (no hold) or `"forever"` (until resumed).
fn manual_hold(ctx: &mut Ctx<'_>, v: &Spanned<String>) -> crate::core::ManualHold {
    use crate::core::ManualHold;
    match v.get_ref().trim() {
        "forever" => ManualHold::Forever,
        "0" => ManualHold::Off,
        t => match crate::time::parse_duration(t)
            .ok()
            .filter(|_| !t.starts_with('-'))
        {
            Some(d) if d.is_zero() => ManualHold::Off,
            Some(d) => ManualHold::For(d),
            None => {
                ctx.err(
                    v.span().start,
                    format!("`manual_hold` = `{}` is not a duration", v.get_ref()),
                    "write a duration (e.g. `1h`, the default), `\"0\"` to hold nothing, or `\"forever\"` to hold until `resume`",
                );
                ManualHold::default()
            }
        },
    }
}

const SELECT_HELP: &str =
    "add `proxies = [\"link-xxxxxxxx\"]` and/or `select = { tags = { autoscale = \"web\" } }`";

fn selector(ctx: &mut Ctx<'_>, raw: &RawPolicy, spans: &mut PolicySpans) -> Selector {
    let mut sel = Selector::default();
    // Ids seen so far: the duplicate check is one lookup, not a scan of the list.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    if let Some(list) = &raw.proxies {
        for id in list.get_ref() {
            let at = id.span().start;
            let v = id.get_ref().trim();
            if v.is_empty() {
                ctx.err(
                    at,
                    "empty proxy id in `proxies`",
                    "proxy ids look like `link-xxxxxxxx`",
                );
                continue;
            }
            if !seen.insert(v) {
                ctx.warn(
                    at,
                    format!("proxy `{v}` is listed twice"),
                    "remove the duplicate",
                );
                continue;
            }
            if !v.starts_with("link-") {
                ctx.warn(
                    at,
                    format!("`{v}` does not look like a GAAP proxy id"),
                    "proxy ids look like `link-xxxxxxxx` (see DescribeProxies)",
                );
            }
            spans.proxies.push((v.to_string(), ctx.loc(at)));
            sel.proxies.push(v.to_string());
        }
    }
    if let Some(select) = &raw.select {
        spans.select = Some(ctx.loc(select.span().start));
        match &select.get_ref().tags {
            Some(tags) => {
                for (k, v) in tags.get_ref() {
                    if k.is_empty() {
                        ctx.err(
                            v.span().start,
                            "empty tag key in `select.tags`",
                            "write tags as `{ key = \"value\" }`",
                        );
                    }
                    sel.tags.insert(k.clone(), v.get_ref().clone());
                }
                if tags.get_ref().is_empty() {
                    ctx.err(
                        tags.span().start,
                        "`select.tags` is empty, so it selects nothing",
                        SELECT_HELP,
                    );
                }
            }
            None if !ctx.dropped.contains("select.tags") => {
                ctx.err(select.span().start, "`select` has no `tags`", SELECT_HELP);
            }
            None => {}
        }
    }
    if sel.proxies.is_empty()
        && sel.tags.is_empty()
        && raw.select.is_none()
        && !ctx.dropped.contains("proxies")
        && !ctx.dropped.contains("select")
    {
        let at = raw.proxies.as_ref().map_or(0, |p| p.span().start);
        ctx.err(at, "the policy selects no proxies", SELECT_HELP);
    }
    sel
}

const SCHEDULE_HELP: &str = "add `interval = \"30s\"` (evaluate every 30 seconds) or `cron = \"0 */5 * * * *\"` (sec min hour day month weekday)";

fn schedule(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> Option<Schedule> {
    match (&raw.interval, &raw.cron) {
        (Some(i), Some(c)) => {
            ctx.err(
                c.span().start,
                "both `interval` and `cron` are set",
                "keep one: `interval` evaluates at a fixed period, `cron` at the times it lists",
            );
            // Each is still checked: the one kept must be right too.
            let _ = ctx.duration(i, "interval", false);
            let _ = cron_key(ctx, c, "cron");
            None
        }
        (Some(i), None) => {
            let d = ctx.duration(i, "interval", false);
            if let Some(d) = d
                && d < Duration::from_secs(1)
            {
                ctx.warn(
                    i.span().start,
                    format!("`interval` = `{}` is shorter than 1s", i.get_ref()),
                    "passes this close query Prometheus and read the fleet back to back; use `1s` or more (GAAP changes take minutes to apply)",
                );
            }
            d.map(Schedule::Interval)
        }
        (None, Some(c)) => cron_key(ctx, c, "cron").map(Schedule::Cron),
        (None, None) => {
            if !ctx.dropped.contains("interval") && !ctx.dropped.contains("cron") {
                ctx.err(
                    0,
                    "no schedule: the policy has neither `interval` nor `cron`",
                    SCHEDULE_HELP,
                );
            }
            None
        }
    }
}

const CRON_HELP: &str = "cron fields are `sec min hour day-of-month month day-of-week [year]`, e.g. `0 */5 * * * *` or `0 0 9 * * Mon-Fri`; the 5-field form `*/5 * * * *` is accepted too";

fn cron_key(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<CronSpec> {
    match parse_cron(v.get_ref()) {
        Ok((spec, warning)) => {
            if let Some(w) = warning {
                ctx.warn(
                    v.span().start,
                    format!("`{key}`: {w}"),
                    "write day names (`MON-FRI`) to be unambiguous",
                );
            }
            Some(spec)
        }
        Err(e) => {
            ctx.err(
                v.span().start,
                format!("`{key}`: invalid cron expression `{}`: {e}", v.get_ref()),
                CRON_HELP,
            );
            None
        }
    }
}

const FIELD_NAMES: [&str; 7] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
    "year",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses a cron expression: the cron crate's 6/7-field syntax (with a seconds field),
/// `@daily`-style shorthands, or the common 5-field form (`min hour dom month dow`), which
/// gets a `0` seconds field and whose numeric weekdays are read the standard way
/// (0 or 7 = Sunday, so `1-5` = Monday–Friday) and rewritten as names, because the cron
/// crate itself counts 1 = Sunday. Returns a warning for numeric weekdays in the 6/7-field
/// form, where `1` means Sunday.
pub fn parse_cron(expr: &str) -> Result<(CronSpec, Option<String>), String> {
    let t = expr.trim();
    if t.is_empty() {
        return Err("the expression is empty".into());
    }
    let fields: Vec<&str> = t.split_whitespace().collect();
    let mut warning = None;
    let converted = if t.starts_with('@') {
        t.to_string()
    } else {
        match fields.len() {
            5 => {
                let dow = standard_weekdays(fields[4])
                    .map_err(|e| format!("day-of-week field `{}`: {e}", fields[4]))?;
                format!(
                    "0 {} {} {} {} {dow}",
                    fields[0], fields[1], fields[2], fields[3]
                )
            }
            6 | 7 => {
                let days: String = fields[5]
                    .split(',')
                    .map(|p| p.split('/').next().unwrap_or(""))
                    .collect();
                if days.chars().any(|c| c.is_ascii_digit()) {
                    warning = Some(format!(
                        "numeric day-of-week `{}` in the 6-field form counts 1 = Sunday (so `1-5` is Sunday to Thursday)",
                        fields[5]
                    ));
                }
                fields.join(" ")
            }
            n => return Err(format!("expected 5, 6 or 7 fields, found {n}")),
        }
    };
    let schedule = cron::Schedule::from_str(&converted)
        .map_err(|e| describe_cron_error(&e.to_string(), &converted))?;
    // Something like `0 0 0 30 2 *` (February 30th) parses but never fires.
    let reference = chrono::Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .ok_or("bad reference time")?;
    if schedule.after(&reference).next().is_none() {
        return Err("it never fires".into());
    }
    Ok((
        CronSpec {
            expr: t.to_string(),
            schedule,
        },
        warning,
    ))
}

/// The cron crate's error is the expression with a caret under the failing spot; name the field instead.
fn describe_cron_error(err: &str, converted: &str) -> String {
    let mut lines = err.lines();
    let (first, second) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    if let Some(caret) = second.find('^')
        && first.trim() == converted.trim()
    {
        let mut idx = 0;
        let mut pos = 0;
        for (i, f) in converted.split(' ').enumerate() {
            if caret >= pos {
                idx = i;
            }
            pos += f.len() + 1;
        }
        let field = converted.split(' ').nth(idx).unwrap_or("");
        let name = FIELD_NAMES.get(idx).copied().unwrap_or("field");
        return format!("cannot read the {name} field `{field}`");
    }
    err.lines().next().unwrap_or(err).to_string()
}

/// Standard (5-field) cron weekdays → the set of days as names.
fn standard_weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".into());
    }
    let day = |s: &str| -> Result<usize, String> {
        if let Ok(n) = s.parse::<usize>() {
            return if n <= 7 {
                Ok(n % 7)
            } else {
                Err(format!("`{n}` is not a weekday (0-7, 0 and 7 = Sunday)"))
            };
        }
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("`{s}` is not a weekday (0-7 or SUN-SAT)"))
    };
    let mut set = [false; 7];
    for part in field.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((b, s)) => (
                b,
                s.parse::<usize>()
                    .map_err(|_| format!("bad step `{s}`"))
                    .and_then(|s| if s == 0 { Err("step 0".into()) } else { Ok(s) })?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if base == "*" || base == "?" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            let lo = day(a)?;
            // `5-7` ends on Sunday: 7 stays 7 for ranges.
            let hi = if b == "7" { 7 } else { day(b)? };
            if hi < lo {
                return Err(format!("range `{base}` goes backwards"));
            }
            (lo, hi)
        } else {
            let d = day(base)?;
            (d, if part.contains('/') { 6 } else { d })
        };
        for d in (lo..=hi).step_by(step) {
            set[d % 7] = true;
        }
    }
    if set.iter().all(|s| *s) {
        return Ok("*".into());
    }
    Ok(DAY_NAMES
        .iter()
        .zip(set)
        .filter(|(_, on)| *on)
        .map(|(d, _)| *d)
        .collect::<Vec<_>>()
        .join(","))
}

const LABEL_HELP: &str = "a Prometheus label name: letters, digits and `_`, not starting with a digit (GAAP exporter: `channel_id`)";

fn signals(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> BTreeMap<String, Signal> {
    let mut out = BTreeMap::new();
    let Some(table) = &raw.signals else {
        return out;
    };
    for (name, sig) in table.get_ref() {
        if let Some(s) = signal(ctx, name, sig) {
            out.insert(name.clone(), s);
        }
    }
    out
}

fn signal(ctx: &mut Ctx<'_>, name: &str, sig: &Spanned<RawSignal>) -> Option<Signal> {
    let r: &RawSignal = sig.get_ref();
    let query = match &r.query {
        Some(q) if q.get_ref().trim().is_empty() => {
            ctx.err(
                q.span().start,
                format!("`signals.{name}.query` is empty"),
                "write the PromQL query that returns one series per proxy",
            );
            None
        }
        Some(q) => match lint_query(q.get_ref()) {
            Some(problem) => {
                ctx.err(
                    q.span().start,
                    format!("`signals.{name}.query`: {problem}"),
                    "check the PromQL brackets and quotes",
                );
                None
            }
            None => Some(q.get_ref().trim().to_string()),
        },
        // Dropped by stage 1 (a wrong type, already reported): not missing as well.
        None if ctx.dropped.contains(&format!("signals.{name}.query")) => None,
        None => {
            ctx.missing(
                "signals.query",
                sig.span().start,
                format!("signal `{name}` has no `query`"),
                "add `query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'`",
            );
            None
        }
    };
    let proxy_label = match &r.proxy_label {
        None => "channel_id".to_string(),
        Some(l) => {
            let v = l.get_ref();
            let ok = v
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                ctx.err(
                    l.span().start,
                    format!("`signals.{name}.proxy_label` = `{v}` is not a label name"),
                    LABEL_HELP,
                );
            }
            v.clone()
        }
    };
    let max_age = match &r.max_age {
        None => Duration::from_secs(300),
        Some(a) => ctx.duration(a, &format!("signals.{name}.max_age"), false)?,
    };
    Some(Signal {
        name: name.to_string(),
        query: query?,
        proxy_label,
        max_age,
    })
}

/// An offline sanity check of a PromQL query: brackets balance and strings close.
fn lint_query(q: &str) -> Option<String> {
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Some(format!("unexpected `{c}`"));
                }
            }
            _ => {}
        }
    }
    if let Some(qc) = quote {
        return Some(format!("unclosed string (missing {qc})"));
    }
    stack.pop().map(|open| format!("unclosed `{open}`"))
}

fn behavior(ctx: &mut Ctx<'_>, raw: Option<&Spanned<raw::RawBehavior>>) -> Behavior {
    let mut b = Behavior::default_behavior();
    if let Some(raw) = raw {
        if let Some(up) = &raw.get_ref().scale_up {
            direction(ctx, "scale_up", up.get_ref(), &mut b.scale_up);
        }
        if let Some(down) = &raw.get_ref().scale_down {
            direction(ctx, "scale_down", down.get_ref(), &mut b.scale_down);
        }
        for (which, d) in [
            ("scale_up", &raw.get_ref().scale_up),
            ("scale_down", &raw.get_ref().scale_down),
        ] {
            if let Some(d) = d {
                super::adaptive::flap_budget(ctx, which, d.get_ref(), &mut b.flap_budget);
            }
        }
    }
    b
}

fn direction(ctx: &mut Ctx<'_>, which: &str, raw: &RawDirection, out: &mut DirectionBehavior) {
    if let Some(t) = &raw.tolerance {
        let v = *t.get_ref();
        if (0.0..1.0).contains(&v) {
            out.tolerance = v;
        } else {
            ctx.err(
                t.span().start,
                format!("`behavior.{which}.tolerance` = {v} is outside [0, 1)"),
                "a relative band: 0.05 ignores changes smaller than 5%",
            );
        }
    }
    if let Some(s) = &raw.stabilization
        && let Some(d) = ctx.duration(s, &format!("behavior.{which}.stabilization"), true)
    {
        out.stabilization = d;
    }
    if let Some(c) = &raw.cooldown
        && let Some(d) = ctx.duration(c, &format!("behavior.{which}.cooldown"), true)
    {
        out.cooldown = d;
    }
    if let Some(m) = &raw.max_steps
        && let Some(n) = ctx.uint(m, &format!("behavior.{which}.max_steps"), 1)
    {
        out.max_steps = n;
    }
}

fn dimension(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<RawDimension>,
    signals: &BTreeSet<String>,
    behavior: &Behavior,
) -> Option<Dimension> {
    let at = raw.span().start;
    let r: &RawDimension = raw.get_ref();
    let unit = if dim == "bandwidth" {
        "Mbps"
    } else {
        "units of 10,000 connections"
    };
    let signal = match &r.signal {
        Some(s) => {
            let name = s.get_ref();
            if !signals.contains(name) {
                let known: Vec<&str> = signals.iter().map(String::as_str).collect();
                let help = match raw::suggest(name, known.iter().copied()) {
                    Some(k) => format!(
                        "did you mean `{k}`? define signals as [signals.NAME] tables with a `query`"
                    ),
                    None if known.is_empty() => {
                        format!("define it: [signals.{name}] with `query = '...'`")
                    }
                    None => format!(
                        "defined signals: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                ctx.err(
                    s.span().start,
                    format!("`{dim}.signal` names an unknown signal `{name}`"),
                    help,
                );
            }
            Some(name.clone())
        }
        None => {
            ctx.missing(&format!("{dim}.signal"), at, format!("[{dim}] has no `signal`"), format!("add `signal = \"...\"` naming the [signals.NAME] table that measures demand for {dim}"));
            None
        }
    };
    let min = match &r.min {
        Some(v) => ctx.uint(v, &format!("{dim}.min"), 0),
        None => {
            ctx.missing(
                &format!("{dim}.min"),
                at,
                format!("[{dim}] has no `min`"),
                format!("add `min = ...` ({unit}): the policy never goes below it"),
            );
            None
        }
    };
    let max = match &r.max {
        Some(v) => ctx.uint(v, &format!("{dim}.max"), 1),
        None => {
            ctx.missing(
                &format!("{dim}.max"),
                at,
                format!("[{dim}] has no `max`"),
                format!("add `max = ...` ({unit}): the policy never goes above it"),
            );
            None
        }
    };
    if let (Some(lo), Some(hi), Some(m)) = (min, max, &r.min)
        && lo > hi
    {
        ctx.err(
            m.span().start,
            format!("`{dim}.min` ({lo}) is greater than `{dim}.max` ({hi})"),
            "swap them, or lower min",
        );
    }
    let rule = match (&r.target_utilization, &r.steps) {
        (Some(t), Some(s)) => {
            ctx.err(
                s.span().start,
                format!("[{dim}] has both `target_utilization` and `steps`"),
                "keep one: target tracking (`target_utilization`) or step rules (`steps`)",
            );
            // Each is still checked: the one kept must be right too.
            let _ = target_tracking(ctx, dim, t);
            let _ = steps(ctx, dim, s, behavior);
            None
        }
        (Some(t), None) => target_tracking(ctx, dim, t),
        (None, Some(s)) => steps(ctx, dim, s, behavior).map(Rule::Steps),
        (None, None) => {
            if !ctx.dropped.contains(&format!("{dim}.target_utilization"))
                && !ctx.dropped.contains(&format!("{dim}.steps"))
            {
                ctx.err(at, format!("[{dim}] has neither `target_utilization` nor `steps`"), "add `target_utilization = 0.7` (target tracking) or `steps = [{ above = 0.9, change = 1 }, { below = 0.3, change = -1 }]`");
            }
            None
        }
    };
    let saturation = super::adaptive::saturation(ctx, dim, r.saturation.as_ref());
    Some(Dimension {
        signal: signal?,
        min: min?,
        max: max?,
        rule: rule?,
        saturation,
    })
}

fn target_tracking(ctx: &mut Ctx<'_>, dim: &str, t: &Spanned<f64>) -> Option<Rule> {
    let v = *t.get_ref();
    if v > 0.0 && v <= 1.0 {
        Some(Rule::TargetTracking {
            target_utilization: v,
        })
    } else {
        ctx.err(
            t.span().start,
            format!("`{dim}.target_utilization` = {v} is outside (0, 1]"),
            "the share of capacity demand should use, e.g. 0.7 keeps 30% headroom",
        );
        None
    }
}

const STEP_HELP: &str = "a step rule is `{ above = 0.9, change = 2 }` (utilization >= 0.9: up 2 ladder steps) or `{ below = 0.3, change = -1 }` (utilization < 0.3: down 1 step)";

/// Validates `{dim}.steps`; its messages are prefixed with the key they are about.
fn steps(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<Vec<Spanned<RawStep>>>,
    behavior: &Behavior,
) -> Option<Vec<StepRule>> {
    let before = ctx.diags.len();
    let rules = step_rules(ctx, dim, raw, behavior);
    let key = format!("`{dim}.steps`");
    for d in &mut ctx.diags[before..] {
        if !d.message.starts_with(&key) {
            d.message = format!("{key}: {}", d.message);
        }
    }
    rules
}

fn step_rules(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<Vec<Spanned<RawStep>>>,
    behavior: &Behavior,
) -> Option<Vec<StepRule>> {
    if raw.get_ref().is_empty() {
        ctx.err(
            raw.span().start,
            format!("`{dim}.steps` is empty"),
            STEP_HELP,
        );
        return None;
    }
    let mut rules = Vec::new();
    let mut ok = true;
    // Thresholds seen so far (by their bits: they are finite and positive here).
    let mut seen_above: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut seen_below: std::collections::HashSet<u64> = std::collections::HashSet::new();
    for st in raw.get_ref() {
        let at = st.span().start;
        let r = st.get_ref();
        let threshold_ok = |v: &Spanned<f64>| v.get_ref().is_finite() && *v.get_ref() > 0.0;
        // Every problem of a rule is reported: its thresholds, then its change.
        let mut rule_ok = true;
        let (above, below) = match (&r.above, &r.below) {
            (Some(_), Some(_)) => {
                ctx.err(
                    at,
                    "a step rule has both `above` and `below`",
                    "split it into two rules, one per direction",
                );
                rule_ok = false;
                (None, None)
            }
            (None, None) => {
                if !ctx.dropped.contains(&format!("{dim}.steps.above"))
                    && !ctx.dropped.contains(&format!("{dim}.steps.below"))
                {
                    ctx.err(at, "a step rule has neither `above` nor `below`", STEP_HELP);
                }
                rule_ok = false;
                (None, None)
            }
            (Some(a), None) => {
                if !threshold_ok(a) {
                    ctx.err(
                        a.span().start,
                        format!("`above` = {} must be a positive utilization", a.get_ref()),
                        "utilization = demand / current capacity, e.g. 0.9",
                    );
                    rule_ok = false;
                } else {
                    if !seen_above.insert(a.get_ref().to_bits()) {
                        ctx.err(
                            a.span().start,
                            format!("two step rules have `above = {}`", a.get_ref()),
                            "each threshold may appear once",
                        );
                        rule_ok = false;
                    }
                }
                (Some(*a.get_ref()), None)
            }
            (None, Some(b)) => {
                if !threshold_ok(b) {
                    ctx.err(
                        b.span().start,
                        format!("`below` = {} must be a positive utilization", b.get_ref()),
                        "utilization = demand / current capacity, e.g. 0.3",
                    );
                    rule_ok = false;
                } else {
                    if !seen_below.insert(b.get_ref().to_bits()) {
                        ctx.err(
                            b.span().start,
                            format!("two step rules have `below = {}`", b.get_ref()),
                            "each threshold may appear once",
                        );
                        rule_ok = false;
                    }
                }
                (None, Some(*b.get_ref()))
            }
        };
        // None: the direction is unknown (reported above).
        let up = match (above, below) {
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            _ => None,
        };
        let Some(c) = &r.change else {
            if !ctx.dropped.contains(&format!("{dim}.steps.change")) {
                ctx.err(at, "a step rule has no `change`", STEP_HELP);
            }
            ok = false;
            continue;
        };
        let change = *c.get_ref();
        let wrong = match up {
            Some(true) if change <= 0 => Some("must be positive (an `above` rule scales up)"),
            Some(false) if change >= 0 => Some("must be negative (a `below` rule scales down)"),
            None if change == 0 => Some("must not be 0: a rule moves at least one step"),
            _ => None,
        };
        if let Some(want) = wrong {
            ctx.err(
                c.span().start,
                format!("`change` = {change} {want}"),
                STEP_HELP,
            );
            ok = false;
            continue;
        }
        if change.unsigned_abs() > 100 {
            ctx.err(
                c.span().start,
                format!("`change` = {change} is more than 100 ladder steps"),
                "ladders have a handful of values; use a small number of steps",
            );
            ok = false;
            continue;
        }
        let (true, Some(up)) = (rule_ok, up) else {
            ok = false;
            continue;
        };
        let (dir, cap) = if up {
            ("scale_up", behavior.scale_up.max_steps)
        } else {
            ("scale_down", behavior.scale_down.max_steps)
        };
        if change.unsigned_abs() > u64::from(cap) {
            ctx.warn(c.span().start, format!("`change` = {change} exceeds `behavior.{dir}.max_steps` = {cap}: each change moves at most {cap} step(s)"), format!("raise `behavior.{dir}.max_steps` or lower `change`"));
        }
        rules.push((
            at,
            StepRule {
                above,
                below,
                change: change as i32,
            },
        ));
    }
    // Bands must not overlap: a utilization that is both >= some `above` and < some
    // `below` would scale both ways.
    let min_above = rules
        .iter()
        .filter_map(|(_, r)| r.above)
        .fold(f64::INFINITY, f64::min);
    for (at, r) in &rules {
        if let Some(b) = r.below
            && b > min_above
        {
            ctx.err(*at, format!("`below = {b}` overlaps `above = {min_above}`: a utilization between them would match both"), "every `above` threshold must be at least every `below` threshold");
            ok = false;
        }
    }
    ok.then(|| rules.into_iter().map(|(_, r)| r).collect())
}

type Bounds = (Option<(u32, u32)>, Option<(u32, u32)>);

fn missing_data(
    ctx: &mut Ctx<'_>,
    raw: &Spanned<RawMissingData>,
    managed: (bool, bool),
    bounds: Bounds,
) -> MissingData {
    let r = raw.get_ref();
    let mut out = MissingData::default();
    if let Some(a) = &r.action {
        match a.get_ref().as_str() {
            "hold" => out.action = MissingAction::Hold,
            "fallback" => out.action = MissingAction::Fallback,
            other => {
                let hint = raw::suggest(other, ["hold", "fallback"])
                    .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                ctx.err(a.span().start, format!("unknown `on_missing_data.action` `{other}`"), format!("{hint}use `hold` (keep the current values) or `fallback` (go up to the fallback values)"));
            }
        }
    }
    if let Some(a) = &r.after
        && let Some(n) = ctx.uint(a, "on_missing_data.after", 1)
    {
        out.after = n;
    }
    for (dim, v, is_managed, b) in [
        ("bandwidth", &r.bandwidth, managed.0, bounds.0),
        ("concurrent", &r.concurrent, managed.1, bounds.1),
    ] {
        let Some(v) = v else { continue };
        let n = ctx.uint(v, &format!("on_missing_data.{dim}"), 1);
        if !is_managed {
            ctx.err(
                v.span().start,
                format!("`on_missing_data.{dim}` is set but the policy has no [{dim}] section"),
                format!("remove it, or add [{dim}]"),
            );
            continue;
        }
        let Some(n) = n else { continue };
        if out.action == MissingAction::Hold && r.action.is_some() {
            ctx.warn(
                v.span().start,
                format!("`on_missing_data.{dim}` is ignored with action = \"hold\""),
                "set `action = \"fallback\"` to use it, or remove it",
            );
        }
        if let Some((lo, hi)) = b {
            if n < lo {
                ctx.warn(v.span().start, format!("fallback {dim} {n} is below `{dim}.min` = {lo}: the bounds raise it to {lo}"), "use a value within min..max");
            } else if n > hi {
                ctx.warn(v.span().start, format!("fallback {dim} {n} is above `{dim}.max` = {hi}: the bounds lower it to {hi}"), "use a value within min..max");
            }
        }
        if dim == "bandwidth" {
            out.bandwidth = Some(n);
        } else {
            out.concurrent = Some(n);
        }
    }
    if out.action == MissingAction::Fallback
        && r.bandwidth.is_none()
        && r.concurrent.is_none()
        && !ctx.dropped.contains("on_missing_data.bandwidth")
        && !ctx.dropped.contains("on_missing_data.concurrent")
    {
        let at = r
            .action
            .as_ref()
            .map_or(raw.span().start, |a| a.span().start);
        ctx.err(at, "`on_missing_data.action = \"fallback\"` without fallback values", "add `bandwidth = ...` and/or `concurrent = ...`: the values to go up to after `after` evaluations without data");
    }
    if r.action.is_none() && (r.bandwidth.is_some() || r.concurrent.is_some()) {
        ctx.warn(
            raw.span().start,
            "fallback values are set but `action` defaults to \"hold\", which ignores them",
            "add `action = \"fallback\"`",
        );
    }
    out
}

fn window(
    ctx: &mut Ctx<'_>,
    i: usize,
    raw: &Spanned<RawWindow>,
    managed: (bool, bool),
    bounds: Bounds,
) -> Option<Window> {
    let at = raw.span().start;
    let r = raw.get_ref();
    let cron = match &r.cron {
        Some(c) => cron_key(ctx, c, &format!("window[{i}].cron")),
        None => {
            ctx.missing(
                "window.cron",
                at,
                format!("window #{} has no `cron`", i + 1),
                "add `cron = \"0 0 9 * * Mon-Fri\"`: when the window opens",
            );
            None
        }
    };
    let duration = match &r.duration {
        Some(d) => ctx.duration(d, &format!("window[{i}].duration"), false),
        None => {
            ctx.missing(
                "window.duration",
                at,
                format!("window #{} has no `duration`", i + 1),
                "add `duration = \"10h\"`: how long the window stays open",
            );
            None
        }
    };
    let timezone = match &r.timezone {
        None => Some(chrono_tz::Tz::UTC),
        Some(tz) => match tz.get_ref().parse::<chrono_tz::Tz>() {
            Ok(z) => Some(z),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                let help = match raw::suggest(tz.get_ref(), names) {
                    Some(s) => format!("did you mean `{s}`? use an IANA time zone name"),
                    None => "use an IANA time zone name such as `Asia/Shanghai`, `Europe/Frankfurt` or `UTC`".into(),
                };
                ctx.err(
                    tz.span().start,
                    format!("unknown time zone `{}`", tz.get_ref()),
                    help,
                );
                None
            }
        },
    };
    let mut vals = [None; 4];
    let keys = [
        "bandwidth_min",
        "bandwidth_max",
        "concurrent_min",
        "concurrent_max",
    ];
    for (k, (key, v)) in keys
        .iter()
        .zip([
            &r.bandwidth_min,
            &r.bandwidth_max,
            &r.concurrent_min,
            &r.concurrent_max,
        ])
        .enumerate()
    {
        let Some(v) = v else { continue };
        vals[k] = ctx.uint(
            v,
            &format!("window[{i}].{key}"),
            if key.ends_with("max") { 1 } else { 0 },
        );
        let (dim, is_managed) = if k < 2 {
            ("bandwidth", managed.0)
        } else {
            ("concurrent", managed.1)
        };
        if !is_managed {
            ctx.err(
                v.span().start,
                format!("`{key}` is set but the policy has no [{dim}] section"),
                format!("remove it, or add [{dim}]"),
            );
        }
    }
    let all_absent = [
        &r.bandwidth_min,
        &r.bandwidth_max,
        &r.concurrent_min,
        &r.concurrent_max,
    ]
    .iter()
    .all(|v| v.is_none());
    if all_absent
        && !keys
            .iter()
            .any(|k| ctx.dropped.contains(&format!("window.{k}")))
    {
        ctx.err(at, format!("window #{} changes no bound", i + 1), "set at least one of `bandwidth_min`, `bandwidth_max`, `concurrent_min`, `concurrent_max`");
    }
    for (dim, lo, hi, b) in [
        ("bandwidth", vals[0], vals[1], bounds.0),
        ("concurrent", vals[2], vals[3], bounds.1),
    ] {
        let Some((pmin, pmax)) = b else { continue };
        if lo.is_none() && hi.is_none() {
            continue;
        }
        let (emin, emax) = (lo.unwrap_or(pmin), hi.unwrap_or(pmax));
        if emin > emax {
            ctx.err(at, format!("inside window #{} the {dim} bounds are empty: min {emin} > max {emax}", i + 1), format!("the window's `{dim}_min`/`{dim}_max` replace the policy's min/max while it is open; keep min <= max"));
        }
    }
    Some(Window {
        cron: cron?,
        duration: duration?,
        timezone: timezone?,
        bandwidth_min: vals[0],
        bandwidth_max: vals[1],
        concurrent_min: vals[2],
        concurrent_max: vals[3],
        memo: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};

    const BASE: &str = r#"
name = "t"
proxies = ["link-aaaaaaaa"]
interval = "30s"
[signals.bandwidth]
query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'
[bandwidth]
signal = "bandwidth"
target_utilization = 0.7
min = 10
max = 500
"#;

    /// Applies a tweak to BASE: `(key line prefix, replacement)`; an empty replacement
    /// deletes the line; text is appended when the prefix is empty (so it lands in the
    /// last table), and inserted at the top (line 2) when the prefix is `^`.
    fn policy(edits: &[(&str, &str)]) -> String {
        let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
        for (prefix, repl) in edits {
            if prefix.is_empty() {
                lines.push(repl.to_string());
            } else if *prefix == "^" {
                lines.insert(1, repl.to_string());
            } else {
                let idx = lines
                    .iter()
                    .position(|l| l.starts_with(prefix))
                    .unwrap_or_else(|| panic!("no line {prefix}"));
                if repl.is_empty() {
                    lines.remove(idx);
                } else {
                    lines[idx] = repl.to_string();
                }
            }
        }
        lines.join("\n") + "\n"
    }

    fn diags(text: &str) -> Vec<Diagnostic> {
        check_policy(text, Path::new("t.toml")).1
    }

    #[test]
    fn the_base_policy_is_valid() {
        let (p, d) = check_policy(&policy(&[]), Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let p = p.unwrap().policy;
        assert_eq!(p.name, "t");
        assert_eq!(p.mode, Mode::Live);
        assert!(matches!(p.schedule, Schedule::Interval(d) if d == Duration::from_secs(30)));
        assert_eq!(p.signals["bandwidth"].proxy_label, "channel_id");
        assert_eq!(p.signals["bandwidth"].max_age, Duration::from_secs(300));
        assert_eq!(p.behavior, Behavior::default_behavior());
        assert_eq!(p.on_missing_data, MissingData::default());
    }

    /// One row per validation rule: the edit, and a fragment the error message must contain
    /// (and its line).
    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        type Edits<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("min =", "min = 600")],
                "`bandwidth.min` (600) is greater than `bandwidth.max` (500)",
                10,
            ),
            (
                &[("min =", "min = -1")],
                "`bandwidth.min` = -1 must not be negative",
                10,
            ),
            (
                &[("target_utilization", "target_utilization = 1.5")],
                "outside (0, 1]",
                9,
            ),
            (
                &[("target_utilization", "target_utilization = 0")],
                "outside (0, 1]",
                9,
            ),
            (
                &[("target_utilization", "")],
                "has neither `target_utilization` nor `steps`",
                7,
            ),
            (
                &[("", "steps = [{ above = 0.9, change = 1 }]")],
                "both `target_utilization` and `steps`",
                12,
            ),
            (
                &[("signal =", "signal = \"bandwith\"")],
                "unknown signal `bandwith`",
                8,
            ),
            (
                &[("interval", "interval = \"0s\"")],
                "`interval` must be longer than 0s",
                4,
            ),
            (
                &[("interval", "interval = \"5 minutes\"")],
                "invalid duration",
                4,
            ),
            (
                &[("interval", "interval = \"18446744073709551615ms\"")],
                "too large",
                4,
            ),
            (&[("interval", "")], "neither `interval` nor `cron`", 1),
            (
                &[("^", "cron = \"*/5 * * * *\"")],
                "both `interval` and `cron`",
                2,
            ),
            (
                &[("interval", "cron = \"0 0 25 * * *\"")],
                "invalid cron expression",
                4,
            ),
            (
                &[("interval", "cron = \"* * *\"")],
                "expected 5, 6 or 7 fields, found 3",
                4,
            ),
            (&[("interval", "cron = \"0 0 0 30 2 *\"")], "never fires", 4),
            (&[("proxies", "")], "selects no proxies", 1),
            (
                &[("proxies", "select = { tags = {} }")],
                "`select.tags` is empty",
                3,
            ),
            (
                &[("name", "name = \"no spaces allowed\"")],
                "invalid policy name",
                2,
            ),
            (&[("^", "mode = \"dryrun\"")], "unknown mode `dryrun`", 2),
            (&[("^", "billing_type = 3")], "not a GAAP billing type", 2),
            (
                &[("^", "pause = { directions = [\"sideways\"] }")],
                "`sideways` is not a direction to pause",
                2,
            ),
            (
                &[("^", "manual_hold = \"an hour\"")],
                "`manual_hold` = `an hour` is not a duration",
                2,
            ),
            (
                &[("^", "manual_hold = \"-1h\"")],
                "`manual_hold` = `-1h` is not a duration",
                2,
            ),
            (
                &[("^", "manual_hold_allows_saturation = \"yes\"")],
                "manual_hold_allows_saturation",
                2,
            ),
            (&[("query", "query = 'max(rate(x[5m])'")], "unclosed `(`", 6),
            (&[("query", "query = ''")], "query` is empty", 6),
            (
                &[("query", "query = 'x'\nproxy_label = \"channel-id\"")],
                "not a label name",
                7,
            ),
            (&[("[bandwidth]", "[concurrent]")], "", 0), // valid: concurrent only (checked below)
            (
                &[("", "[behavior.scale_up]\ntolerance = 1.0")],
                "outside [0, 1)",
                13,
            ),
            (
                &[("", "[behavior.scale_down]\nmax_steps = 0")],
                "must be at least 1",
                13,
            ),
            (
                &[("", "[behavior.scale_down]\ncooldown = \"-1m\"")],
                "`behavior.scale_down.cooldown` = `-1m` is negative",
                13,
            ),
            (
                &[("", "[on_missing_data]\naction = \"fallback\"")],
                "without fallback values",
                13,
            ),
            (
                &[(
                    "",
                    "[on_missing_data]\naction = \"fallback\"\nconcurrent = 5",
                )],
                "no [concurrent] section",
                14,
            ),
            (
                &[("", "[on_missing_data]\nafter = 0")],
                "must be at least 1",
                13,
            ),
            (
                &[("", "[on_missing_data]\naction = \"hodl\"")],
                "unknown `on_missing_data.action` `hodl`",
                13,
            ),
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"1h\"\ntimezone = \"Asia/Shangai\"\nbandwidth_min = 100",
                )],
                "unknown time zone `Asia/Shangai`",
                15,
            ),
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"0s\"\nbandwidth_min = 100",
                )],
                "must be longer than 0s",
                14,
            ),
            (
                &[("", "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"1h\"")],
                "changes no bound",
                12,
            ),
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"1h\"\nbandwidth_min = 800",
                )],
                "bounds are empty: min 800 > max 500",
                12,
            ),
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"1h\"\nconcurrent_max = 8",
                )],
                "no [concurrent] section",
                15,
            ),
            (
                &[("", "[[window]]\nduration = \"1h\"\nbandwidth_min = 100")],
                "has no `cron`",
                12,
            ),
        ];
        for (edits, want, line) in cases {
            let text = policy(edits);
            let d = diags(&text);
            if want.is_empty() {
                // The [concurrent]-only variant: valid apart from the unit (no error).
                assert!(d.iter().all(|d| !d.is_error()), "{edits:?}: {d:#?}");
                continue;
            }
            let hit = d.iter().find(|d| d.is_error() && d.message.contains(want));
            let hit =
                hit.unwrap_or_else(|| panic!("{edits:?}: no error containing {want:?} in {d:#?}"));
            assert_eq!(hit.line, *line, "{edits:?}: {hit}");
            assert!(hit.help.is_some(), "{edits:?}: every error has a help line");
        }
    }

    /// Validation is total: a problem does not hide another problem of the same key or
    /// section (each row's edits hold two or more independent problems, all reported).
    #[test]
    fn one_problem_does_not_hide_another() {
        type Edits<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Edits, &[&str])] = &[
            (
                &[("interval", "interval = \"0s\"\ncron = \"0 0 25 * * *\"")],
                &[
                    "both `interval` and `cron` are set",
                    "`interval` must be longer than 0s",
                    "invalid cron expression",
                ],
            ),
            (
                &[(
                    "target_utilization",
                    "target_utilization = 1.5\nsteps = [{ below = 0.3, change = 1 }]",
                )],
                &[
                    "both `target_utilization` and `steps`",
                    "outside (0, 1]",
                    "`change` = 1 must be negative",
                ],
            ),
            (
                &[(
                    "target_utilization",
                    "steps = [{ above = 0.9, below = 0.2, change = 0 }]",
                )],
                &["both `above` and `below`", "`change` = 0 must not be 0"],
            ),
            (
                &[(
                    "target_utilization",
                    "steps = [{ above = -1.0, change = 500 }]",
                )],
                &["positive utilization", "more than 100 ladder steps"],
            ),
            (
                &[("target_utilization", "steps = [{ change = 0 }]")],
                &["neither `above` nor `below`", "`change` = 0 must not be 0"],
            ),
            (
                &[(
                    "",
                    "[on_missing_data]\naction = \"fallback\"\nconcurrent = 0",
                )],
                &["must be at least 1", "no [concurrent] section"],
            ),
        ];
        for (edits, wants) in cases {
            let d = diags(&policy(edits));
            for want in *wants {
                assert!(
                    d.iter().any(|d| d.is_error() && d.message.contains(want)),
                    "{edits:?}: no error containing {want:?} in {d:#?}"
                );
            }
        }
    }

    #[test]
    fn neither_dimension_is_an_error() {
        let text = policy(&[
            ("[bandwidth]", ""),
            ("signal =", ""),
            ("target_utilization", ""),
            ("min =", ""),
            ("max =", ""),
        ]);
        let d = diags(&text);
        assert!(
            d.iter()
                .any(|d| d.message.contains("neither bandwidth nor concurrent")),
            "{d:#?}"
        );
        // ...and the now unused signal gets a warning.
        assert!(
            d.iter()
                .any(|d| !d.is_error() && d.message.contains("signal `bandwidth` is not used")),
            "{d:#?}"
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported_at_once() {
        let text = policy(&[
            ("min =", "min = 600"),
            ("interval", "interval = \"0s\""),
            ("^", "mode = \"fast\""),
            ("", "foo = 1"),
        ]);
        // `foo` after [bandwidth] lands in that table: an unknown key there.
        let d = diags(&text);
        let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 4, "{d:#?}");
    }

    /// A signal's `query` of the wrong type is one error (stage 1's), not a second one
    /// saying the signal has no query: the two stages agree on map keys like `signals.x`.
    #[test]
    fn a_wrong_typed_query_is_not_also_missing() {
        let text = policy(&[("", "[signals.extra]\nquery = 5")]);
        let d = diags(&text);
        let errors: Vec<String> = d
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("`signals.extra.query`: invalid type"),
            "{errors:#?}"
        );
        // A query left out is still missing.
        let d = diags(&policy(&[("", "[signals.extra]\nmax_age = \"1m\"")]));
        assert!(
            d.iter()
                .any(|d| d.is_error() && d.message == "signal `extra` has no `query`"),
            "{d:#?}"
        );
    }

    #[test]
    fn intervals_under_a_second_are_a_warning() {
        for (interval, warned) in [
            ("500ms", true),
            ("999ms", true),
            ("1s", false),
            ("30s", false),
        ] {
            let text = policy(&[("interval", &format!("interval = \"{interval}\""))]);
            let (p, d) = check_policy(&text, Path::new("t.toml"));
            assert!(p.is_some(), "{interval}: a warning, not an error: {d:#?}");
            let hit = d
                .iter()
                .any(|d| !d.is_error() && d.line == 4 && d.message.contains("shorter than 1s"));
            assert_eq!(hit, warned, "{interval}: {d:#?}");
        }
    }

    #[test]
    fn warnings_do_not_invalidate() {
        let text = policy(&[(
            "",
            "[on_missing_data]\naction = \"fallback\"\nbandwidth = 5",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(p.is_some(), "{d:#?}");
        assert_eq!(d.len(), 1);
        assert!(
            !d[0].is_error() && d[0].message.contains("below `bandwidth.min` = 10"),
            "{d:#?}"
        );
        assert_eq!(p.unwrap().policy.on_missing_data.bandwidth, Some(5));
    }

    #[test]
    fn step_rules_parse_and_are_checked() {
        let good = policy(&[(
            "target_utilization",
            "steps = [{ above = 0.9, change = 2 }, { above = 0.75, change = 1 }, { below = 0.3, change = -1 }]",
        )]);
        let (p, d) = check_policy(&good, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let Rule::Steps(rules) = &p.unwrap().policy.bandwidth.unwrap().rule else {
            panic!("steps expected")
        };
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0],
            StepRule {
                above: Some(0.9),
                below: None,
                change: 2
            }
        );
        assert_eq!(
            rules[2],
            StepRule {
                above: None,
                below: Some(0.3),
                change: -1
            }
        );

        let cases: &[(&str, &str)] = &[
            ("steps = []", "`bandwidth.steps` is empty"),
            (
                "steps = [{ above = 0.9, below = 0.2, change = 1 }]",
                "both `above` and `below`",
            ),
            ("steps = [{ change = 1 }]", "neither `above` nor `below`"),
            ("steps = [{ above = 0.9 }]", "no `change`"),
            ("steps = [{ above = 0.9, change = -1 }]", "must be positive"),
            ("steps = [{ below = 0.3, change = 1 }]", "must be negative"),
            ("steps = [{ above = 0.9, change = 0 }]", "must be positive"),
            (
                "steps = [{ above = -0.5, change = 1 }]",
                "positive utilization",
            ),
            (
                "steps = [{ above = 0.5, change = 1 }, { below = 0.6, change = -1 }]",
                "overlaps",
            ),
            (
                "steps = [{ above = 0.9, change = 1 }, { above = 0.9, change = 2 }]",
                "two step rules have `above = 0.9`",
            ),
            (
                "steps = [{ above = 0.9, chnage = 1 }]",
                "unknown key `chnage`",
            ),
        ];
        for (line, want) in cases {
            let d = diags(&policy(&[("target_utilization", line)]));
            assert!(
                d.iter()
                    .any(|d| d.is_error() && d.message.contains(want) && d.line == 9),
                "{line}: want {want:?} in {d:#?}"
            );
        }
        // A change larger than max_steps is a warning, not an error.
        let d = diags(&policy(&[(
            "target_utilization",
            "steps = [{ above = 0.9, change = 3 }]",
        )]));
        assert!(
            d.len() == 1 && !d[0].is_error() && d[0].message.contains("max_steps` = 2"),
            "{d:#?}"
        );
    }

    #[test]
    fn five_field_cron_reads_weekdays_the_standard_way() {
        let monday = chrono::Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(); // a Monday
        assert_eq!(monday.weekday(), Weekday::Mon);
        let fires = |expr: &str| -> Vec<Weekday> {
            let (spec, _) = parse_cron(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let mut days: Vec<Weekday> = spec
                .schedule
                .after(&monday)
                .take(7)
                .map(|t| t.weekday())
                .collect();
            days.sort_by_key(|d| d.num_days_from_sunday());
            days.dedup();
            days
        };
        use Weekday::*;
        let cases: &[(&str, &[Weekday])] = &[
            ("0 9 * * 1-5", &[Mon, Tue, Wed, Thu, Fri]),
            ("0 9 * * 0", &[Sun]),
            ("0 9 * * 7", &[Sun]),
            ("0 9 * * 0,6", &[Sun, Sat]),
            ("0 9 * * 5-7", &[Sun, Fri, Sat]),
            ("0 9 * * */2", &[Sun, Tue, Thu, Sat]),
            ("0 9 * * 1-5/2", &[Mon, Wed, Fri]),
            ("0 9 * * mon-fri", &[Mon, Tue, Wed, Thu, Fri]),
            ("0 0 9 * * Mon-Fri", &[Mon, Tue, Wed, Thu, Fri]),
        ];
        for (expr, want) in cases {
            assert_eq!(fires(expr), want.to_vec(), "{expr}");
        }
        let (spec, warn) = parse_cron("*/5 * * * *").unwrap();
        assert!(warn.is_none());
        assert_eq!(spec.expr, "*/5 * * * *");
        let next = spec.schedule.after(&monday).next().unwrap();
        assert_eq!((next.minute(), next.second()), (5, 0));
        // 6-field numeric weekdays follow the cron crate (1 = Sunday): accepted with a warning.
        let (_, warn) = parse_cron("0 0 9 * * 1-5").unwrap();
        assert!(warn.unwrap().contains("1 = Sunday"));
        assert!(parse_cron("0 0 9 * * 1/2").unwrap().1.is_some());
        assert!(parse_cron("0 */2 * * * *").unwrap().1.is_none());
        assert!(parse_cron("@daily").is_ok());
        let cases_err: &[(&str, &str)] = &[
            ("0 9 * * 8", "not a weekday"),
            ("0 9 * * 5-2", "goes backwards"),
            ("0 0 9 * * Mon-Fry", "day-of-week"),
            ("", "empty"),
        ];
        for (expr, want) in cases_err {
            let e = parse_cron(expr)
                .err()
                .unwrap_or_else(|| panic!("{expr} should fail"));
            assert!(e.contains(want), "{expr}: {e}");
        }
    }

    #[test]
    fn query_lint_finds_unbalanced_brackets_and_strings() {
        let cases: &[(&str, Option<&str>)] = &[
            ("max by (channel_id) (max_over_time(x[2m]))", None),
            ("x{channel_id=\"a)\"}", None),
            ("max(x", Some("unclosed `(`")),
            ("x[5m", Some("unclosed `[`")),
            ("x)", Some("unexpected `)`")),
            ("x{a=\"b}", Some("unclosed string (missing \")")),
        ];
        for (q, want) in cases {
            assert_eq!(lint_query(q).as_deref(), *want, "{q}");
        }
    }

    #[test]
    fn windows_parse_with_time_zones() {
        let text = policy(&[(
            "",
            "[[window]]\ncron = \"0 9 * * 1-5\"\nduration = \"10h\"\ntimezone = \"Asia/Shanghai\"\nbandwidth_min = 100",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let w = &p.unwrap().policy.windows[0];
        assert_eq!(w.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(w.duration, Duration::from_secs(36_000));
        assert_eq!((w.bandwidth_min, w.bandwidth_max), (Some(100), None));
        let monday = chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 11, 30, 0, 0, 0)
            .unwrap();
        let first = w.cron.schedule.after(&monday).next().unwrap();
        assert_eq!((first.weekday(), first.hour()), (Weekday::Mon, 9));
    }
}
