//! `[[window]]`: recurring time windows that override a dimension's bounds while open.

use toml::Spanned;

use super::{Bounds, Ctx, schedule};
use crate::policy::Window;
use crate::policy::raw::{self, RawWindow};

pub(super) fn window(
    ctx: &mut Ctx<'_>,
    i: usize,
    raw: &Spanned<RawWindow>,
    managed: (bool, bool),
    bounds: Bounds,
) -> Option<Window> {
    let at = raw.span().start;
    let r = raw.get_ref();
    let cron = match &r.cron {
        Some(c) => schedule::cron_key(ctx, c, &format!("window[{i}].cron")),
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
                // A suggestion among ~600 names: only for the diagnostics kept.
                ctx.err_with(tz.span().start, || {
                    let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
                    let help = match raw::suggest(tz.get_ref(), names) {
                        Some(s) => format!("did you mean `{s}`? use an IANA time zone name"),
                        None => "use an IANA time zone name such as `Asia/Shanghai`, `Europe/Frankfurt` or `UTC`".into(),
                    };
                    (format!("unknown time zone `{}`", tz.get_ref()), help)
                });
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
    use std::path::Path;
    use std::time::Duration;

    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, policy};

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
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
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * *\"\nbandwidth_min = 100",
                )],
                "window #1 has no `duration`",
                12,
            ),
            (
                &[(
                    "",
                    "[[window]]\ncron = \"0 0 9 * * 8\"\nduration = \"1h\"\nbandwidth_min = 100",
                )],
                "`window[0].cron`: invalid cron expression",
                13,
            ),
        ];
        assert_errors_at(cases);
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
