//! `interval` and `cron`: when a policy is evaluated. The cron syntax is shared with
//! `[[window]] cron`.

use std::str::FromStr;
use std::time::Duration;

use chrono::TimeZone;
use toml::Spanned;

use super::Ctx;
use crate::policy::raw::RawPolicy;
use crate::policy::{CronSpec, Schedule};

const SCHEDULE_HELP: &str = "add `interval = \"30s\"` (evaluate every 30 seconds) or `cron = \"0 */5 * * * *\"` (sec min hour day month weekday)";

pub(super) fn schedule(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> Option<Schedule> {
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

pub(super) fn cron_key(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<CronSpec> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, policy};
    use super::parse_cron;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
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
        ];
        assert_errors_at(cases);
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
}
