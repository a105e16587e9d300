//! Stage 1: raw serde types with spans, as close to the TOML as possible.
//!
//! Every field is optional here (a missing required key is reported by stage 2, with a
//! help line), numbers keep their TOML type (i64/f64) so that stage 2 can say "must be
//! positive" instead of a serde range error, and every struct denies unknown keys.
//!
//! [`deserialize_all`] (in [`crate::diagnostic::collect`], shared with the fleet and the
//! config) turns a TOML text into one of these types while collecting *every* problem.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub use crate::diagnostic::collect::{
    Stage1, deserialize_all, deserialize_capped, edit_distance, suggest, top_level_keys,
};

/// A policy file (`policies/*.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Option<Spanned<String>>,
    pub proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub select: Option<Spanned<RawSelect>>,
    pub interval: Option<Spanned<String>>,
    pub cron: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub billing_type: Option<Spanned<i64>>,
    pub signals: Option<Spanned<BTreeMap<String, Spanned<RawSignal>>>>,
    pub bandwidth: Option<Spanned<RawDimension>>,
    pub concurrent: Option<Spanned<RawDimension>>,
    pub behavior: Option<Spanned<RawBehavior>>,
    pub on_missing_data: Option<Spanned<RawMissingData>>,
    pub window: Option<Vec<Spanned<RawWindow>>>,
    /// `paused = true`: both directions paused (issue 12).
    pub paused: Option<Spanned<bool>>,
    /// `[pause] directions = ["scale_up" | "scale_down"]`.
    pub pause: Option<Spanned<RawPause>>,
    /// `manual_hold = "1h"` (or `"0"`, `"forever"`): how long an operator's change holds.
    pub manual_hold: Option<Spanned<String>>,
    /// `manual_hold_allows_saturation = true`: a saturated scale-up overrides the hold.
    pub manual_hold_allows_saturation: Option<Spanned<bool>>,
    /// `hold_paid_capacity = true`: scale-downs wait for the end of the billing day.
    pub hold_paid_capacity: Option<Spanned<bool>>,
    /// `[predictive]`: the seasonal recommender.
    pub predictive: Option<Spanned<RawPredictive>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPredictive {
    pub mode: Option<Spanned<String>>,
    pub lookback: Option<Spanned<String>>,
    pub lead: Option<Spanned<String>>,
    pub quantile: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPause {
    pub directions: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    pub tags: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub query: Option<Spanned<String>>,
    pub proxy_label: Option<Spanned<String>>,
    pub max_age: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDimension {
    pub signal: Option<Spanned<String>>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub target_utilization: Option<Spanned<f64>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
    pub saturation: Option<Spanned<f64>>,
    pub hold_utilization: Option<Spanned<f64>>,
    pub change_worth: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub above: Option<Spanned<f64>>,
    pub below: Option<Spanned<f64>>,
    pub change: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    pub scale_up: Option<Spanned<RawDirection>>,
    pub scale_down: Option<Spanned<RawDirection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirection {
    pub tolerance: Option<Spanned<f64>>,
    pub stabilization: Option<Spanned<String>>,
    pub max_steps: Option<Spanned<i64>>,
    pub cooldown: Option<Spanned<String>>,
    /// scale_down only: `"1/2h"` or `"off"`.
    pub flap_budget: Option<Spanned<String>>,
    /// scale_down only: the longest the flap budget stretches stabilization.
    pub max_stabilization: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMissingData {
    pub action: Option<Spanned<String>>,
    pub after: Option<Spanned<i64>>,
    pub bandwidth: Option<Spanned<i64>>,
    pub concurrent: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub cron: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub bandwidth_min: Option<Spanned<i64>>,
    pub bandwidth_max: Option<Spanned<i64>>,
    pub concurrent_min: Option<Spanned<i64>>,
    pub concurrent_max: Option<Spanned<i64>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_serde_error_is_collected() {
        let text = "name = 5\nmode = \"live\"\nfoo = 1\n[bandwidth]\nsignal = \"bandwidth\"\nmni = 1\nmax = \"x\"\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        let rendered: Vec<String> = s.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(s.diags.len(), 4, "{rendered:#?}");
        let value = s.value.expect("the rest still deserializes");
        assert_eq!(value.mode.unwrap().into_inner(), "live");
        assert_eq!(
            value
                .bandwidth
                .unwrap()
                .into_inner()
                .signal
                .unwrap()
                .into_inner(),
            "bandwidth"
        );
        assert!(
            rendered
                .iter()
                .any(|r| r.starts_with("p.toml:1:8: `name`: invalid type")),
            "{rendered:#?}"
        );
        assert!(
            rendered
                .iter()
                .any(|r| r.starts_with("p.toml:3:1: unknown key `foo` at the top level")),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(
                |r| r.contains("p.toml:6:1: unknown key `mni` in `bandwidth`")
                    && r.contains("did you mean `min`?")
            ),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(|r| r.starts_with(
                "p.toml:7:7: `bandwidth.max`: invalid type: string \"x\", expected an integer"
            )),
            "{rendered:#?}"
        );
        assert!(s.dropped.contains("bandwidth.max") && s.dropped.contains("name"));
    }

    /// Every error is collected, however many (the old loop stopped after 500), and
    /// the rest still deserializes.
    #[test]
    fn thousands_of_errors_are_all_collected() {
        let mut text = String::from("name = \"big\"\n");
        for i in 0..700 {
            text.push_str(&format!("unknown_{i} = 1\n"));
        }
        for i in 0..700 {
            text.push_str(&format!("[[window]]\ncron = {i}\nduration = \"1h\"\n"));
        }
        let s: Stage1<RawPolicy> = deserialize_all(&text, Path::new("p.toml"), &[]);
        assert_eq!(s.diags.len(), 1400);
        let unknown = s
            .diags
            .iter()
            .filter(|d| d.message.starts_with("unknown key `unknown_"))
            .count();
        let cron = s
            .diags
            .iter()
            .filter(|d| {
                d.message.contains("`window[") && d.message.contains("].cron`: invalid type")
            })
            .count();
        assert_eq!((unknown, cron), (700, 700));
        // Placed where they are written: line 2 is the first unknown key.
        assert!(
            s.diags
                .iter()
                .any(|d| d.line == 2 && d.message.contains("unknown_0"))
        );
        let v = s.value.expect("the rest deserializes");
        assert_eq!(v.name.unwrap().into_inner(), "big");
        assert_eq!(v.window.unwrap().len(), 700);
    }

    #[test]
    fn errors_inside_arrays_of_tables_are_found() {
        let text = "[[window]]\ncron = \"0 0 9 * * *\"\n[[window]]\ncron = 5\nbandwith_min = 3\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        let rendered: Vec<String> = s.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(s.diags.len(), 2, "{rendered:#?}");
        assert!(
            rendered.iter().any(|r| r.contains("4:8: `window[1].cron`")),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(
                |r| r.contains("5:1: unknown key `bandwith_min` in `window[1]`")
                    && r.contains("`bandwidth_min`")
            ),
            "{rendered:#?}"
        );
        assert_eq!(s.value.unwrap().window.unwrap().len(), 2);
    }

    #[test]
    fn syntax_errors_are_all_reported() {
        let text = "name = \"a\nmin = = 3\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        assert!(s.value.is_none());
        assert!(!s.diags.is_empty());
        assert!(
            s.diags
                .iter()
                .all(|d| d.message.starts_with("TOML syntax error") && d.line >= 1)
        );
    }
}
