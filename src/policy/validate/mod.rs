//! Stage 2: raw policy → validated [`Policy`], every problem collected with its place.
//!
//! Errors make the file invalid; warnings are reported but the policy is still usable
//! (e.g. a fallback value below `min`, which the bounds will clamp).
//!
//! One module per table of the policy file, each with its unit-test table beside it:
//! [`top`] (the top level's own keys: `name`, `mode`, `billing_type`, `manual_hold`...),
//! [`selector`] (`proxies`, `[select]`), [`schedule`] (`interval`, `cron`, and the cron
//! syntax windows share), [`pause`] (`paused`, `[pause]`), [`signals`] (`[signals.*]`),
//! [`dimension`] (`[bandwidth]`, `[concurrent]`) and its [`steps`], [`behavior`]
//! (`[behavior.scale_up]`, `[behavior.scale_down]`, the flap budget), [`missing_data`]
//! (`[on_missing_data]`), [`windows`] (`[[window]]`), [`predictive`] (`[predictive]`).
//! This module assembles them, in the order the checks have always run (diagnostics at
//! the same place keep that order).

mod behavior;
mod dimension;
mod missing_data;
mod pause;
mod predictive;
mod schedule;
mod selector;
mod signals;
mod steps;
mod top;
mod windows;

use std::path::Path;

use super::raw::{self, RawPolicy, Stage1};
use super::{Diagnostic, Policy, Window};
use crate::diagnostic::Omitted;

pub use predictive::MAX_LOOKBACK_DAYS;
pub use schedule::parse_cron;

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
    let (checked, diags, _) = check_policy_capped(text, path, usize::MAX);
    (checked, diags)
}

/// As [`check_policy`], keeping only the first `limit` diagnostics in the order of the
/// file and counting the others, which are never built (`validate` prints 100).
pub fn check_policy_capped(
    text: &str,
    path: &Path,
    limit: usize,
) -> (Option<CheckedPolicy>, Vec<Diagnostic>, Omitted) {
    let stage1: Stage1<RawPolicy> = raw::deserialize_capped(text, path, &[], limit);
    let (mut ctx, raw) = Ctx::capped(text, path, stage1, limit);
    let checked = raw.and_then(|r| validate_policy(&mut ctx, r));
    let ok = !ctx.has_errors();
    let (diags, omitted) = ctx.finish_capped();
    (checked.filter(|_| ok), diags, omitted)
}

fn validate_policy(ctx: &mut Ctx<'_>, raw: RawPolicy) -> Option<CheckedPolicy> {
    let mut spans = PolicySpans::default();
    let name = top::name(ctx, &raw, &mut spans);
    let selector = selector::selector(ctx, &raw, &mut spans);
    let schedule = schedule::schedule(ctx, &raw);
    let mode = top::mode(ctx, &raw);
    let billing_type = top::billing_type(ctx, &raw);
    let paused = pause::paused(ctx, &raw);
    let manual_hold = top::manual_hold(ctx, &raw);
    let manual_hold_allows_saturation = top::flag(&raw.manual_hold_allows_saturation);
    let hold_paid_capacity = top::flag(&raw.hold_paid_capacity);

    let signals = signals::signals(ctx, &raw);
    let behavior = behavior::behavior(ctx, raw.behavior.as_ref());
    let predictive = predictive::predictive(ctx, raw.predictive.as_ref());
    let (bandwidth, concurrent) = dimension::dimensions(ctx, &raw, &behavior, &mut spans);
    signals::unused(ctx, &raw);

    let managed = (raw.bandwidth.is_some(), raw.concurrent.is_some());
    let bounds = (
        bandwidth.as_ref().map(|d| (d.min, d.max)),
        concurrent.as_ref().map(|d| (d.min, d.max)),
    );
    let on_missing_data = raw
        .on_missing_data
        .as_ref()
        .map(|m| missing_data::missing_data(ctx, m, managed, bounds))
        .unwrap_or_default();
    let windows: Vec<Window> = raw
        .window
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, w)| windows::window(ctx, i, w, managed, bounds))
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

/// A dimension's (min, max) when it is valid, for bandwidth and concurrent.
type Bounds = (Option<(u32, u32)>, Option<(u32, u32)>);

/// The valid policy every module's tests edit, and the loop of their error tables.
#[cfg(test)]
pub(super) mod fixture {
    use std::path::Path;

    use super::check_policy;
    use crate::policy::Diagnostic;

    pub const BASE: &str = r#"
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

    /// `(key line prefix, replacement)` edits of [`BASE`].
    pub type Edits<'a> = &'a [(&'a str, &'a str)];

    /// Applies a tweak to BASE: `(key line prefix, replacement)`; an empty replacement
    /// deletes the line; text is appended when the prefix is empty (so it lands in the
    /// last table), and inserted at the top (line 2) when the prefix is `^`.
    pub fn policy(edits: Edits<'_>) -> String {
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

    pub fn diags(text: &str) -> Vec<Diagnostic> {
        check_policy(text, Path::new("t.toml")).1
    }

    /// One row per validation rule: the edits, a fragment the error message must contain,
    /// and its line; every error has a help line.
    pub fn assert_errors_at(cases: &[(Edits<'_>, &str, usize)]) {
        for (edits, want, line) in cases {
            let d = diags(&policy(edits));
            let hit = d.iter().find(|d| d.is_error() && d.message.contains(want));
            let hit =
                hit.unwrap_or_else(|| panic!("{edits:?}: no error containing {want:?} in {d:#?}"));
            assert_eq!(hit.line, *line, "{edits:?}: {hit}");
            assert!(hit.help.is_some(), "{edits:?}: every error has a help line");
        }
    }

    /// As [`assert_errors_at`], with the column too: `(text appended, fragment, line, col)`.
    pub fn assert_errors_at_col(cases: &[(&str, &str, usize, usize)]) {
        for &(extra, want, line, col) in cases {
            let d = diags(&policy(&[("", extra)]));
            let hit = d
                .iter()
                .find(|d| d.is_error() && d.message.contains(want))
                .unwrap_or_else(|| panic!("{extra:?}: no error containing {want:?} in {d:#?}"));
            assert_eq!((hit.line, hit.col), (line, col), "{extra:?}: {hit}");
            assert!(hit.help.is_some(), "{extra:?}: every error says what to do");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::fixture::{Edits, diags, policy};
    use super::{check_policy, check_policy_capped};
    use crate::policy::{Behavior, MissingData, Mode, Schedule};

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

    /// Validation is total: a problem does not hide another problem of the same key or
    /// section (each row's edits hold two or more independent problems, all reported).
    #[test]
    fn one_problem_does_not_hide_another() {
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

    /// Capped, the check keeps exactly the first diagnostics of the full check, in the
    /// same order, and counts the others by severity: stage 1 (wrong types, unknown keys,
    /// a misspelt key standing for a missing one), stage 2 (errors with costly helps,
    /// prefixed step messages, warnings), places repeated and reported out of order.
    #[test]
    fn a_capped_check_keeps_the_first_diagnostics_and_counts_the_rest() {
        let mut text = policy(&[
            ("min =", "mni = 10"),
            ("interval", "interval = \"0s\"\ncron = \"0 0 25 * * *\""),
            (
                "target_utilization",
                "steps = [{ above = 0.9, chnage = 1 }, { below = 0.95, change = 5 }]",
            ),
        ]);
        for i in 0..40 {
            text.push_str(&format!(
                "[signals.s{i}]\nquery = {i}\nmax_age = \"{i}x\"\nfoo_{i} = 1\n"
            ));
            text.push_str(&format!(
                "[[window]]\ncron = \"0 0 9 * * *\"\nduration = \"1h\"\ntimezone = \"Asia/Shangai{i}\"\nbandwidth_min = 20\n"
            ));
        }
        let (full_policy, full) = check_policy(&text, Path::new("t.toml"));
        assert!(full_policy.is_none());
        assert!(full.len() > 200, "{}", full.len());
        for limit in [0, 1, 2, 7, 100, full.len() - 1, full.len(), usize::MAX] {
            let (p, kept, omitted) = check_policy_capped(&text, Path::new("t.toml"), limit);
            assert!(p.is_none());
            let n = limit.min(full.len());
            assert_eq!(kept, full[..n], "limit {limit}");
            let (e, w) = crate::diagnostic::count(&full[n..]);
            assert_eq!((omitted.errors, omitted.warnings), (e, w), "limit {limit}");
        }
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
}
