//! Policies, proxies and ladders built in code, for tests and benchmarks of the decision
//! core (no files involved). Not part of the supported API.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::policy::{
    Behavior, Dimension, MissingData, Mode, Policy, Rule, Schedule, Selector, Signal,
};

/// A target-tracking policy managing both dimensions: utilization 0.7, bandwidth
/// [10, 500], concurrent [2, 20], default behavior (up: 5%, 0s, 2 steps, 1m; down: 10%,
/// 10m, 1 step, 10m), hold on missing data.
pub fn policy() -> Policy {
    let signal = |name: &str, q: &str| Signal {
        name: name.into(),
        query: q.into(),
        proxy_label: "channel_id".into(),
        max_age: Duration::from_secs(300),
    };
    let mut signals = BTreeMap::new();
    signals.insert(
        "bandwidth".to_string(),
        signal(
            "bandwidth",
            "max by (channel_id) (qce_qaap_outbandwidth_max)",
        ),
    );
    signals.insert(
        "connections".to_string(),
        signal("connections", "max by (channel_id) (qce_qaap_connum_max)"),
    );
    Policy {
        name: "web".into(),
        source: None,
        selector: Selector {
            proxies: vec!["link-test0001".into()],
            tags: BTreeMap::new(),
        },
        schedule: Schedule::Interval(Duration::from_secs(30)),
        mode: Mode::Live,
        signals,
        bandwidth: Some(Dimension {
            signal: "bandwidth".into(),
            min: 10,
            max: 500,
            rule: Rule::TargetTracking {
                target_utilization: 0.7,
            },
            saturation: crate::policy::DEFAULT_SATURATION,
            hold_utilization: None,
            change_worth: None,
        }),
        concurrent: Some(Dimension {
            signal: "connections".into(),
            min: 2,
            max: 20,
            rule: Rule::TargetTracking {
                target_utilization: 0.7,
            },
            saturation: crate::policy::DEFAULT_SATURATION,
            hold_utilization: None,
            change_worth: None,
        }),
        behavior: Behavior::default_behavior(),
        on_missing_data: MissingData::default(),
        windows: Vec::new(),
        billing_type: None,
        paused: crate::core::Paused::NONE,
        manual_hold: crate::core::ManualHold::default(),
        manual_hold_allows_saturation: false,
        hold_paid_capacity: false,
        predictive: crate::policy::Predictive::default(),
    }
}

/// The ladder of DESIGN.md's fleet example.
pub fn ladder() -> Ladder {
    Ladder::new(
        vec![10, 20, 50, 100, 200, 500, 1000],
        vec![2, 5, 10, 20, 30],
    )
}

/// A RUNNING, scalable proxy at the given capacity.
pub fn proxy(bandwidth: u32, concurrent: u32) -> ProxyState {
    ProxyState {
        id: "link-test0001".into(),
        name: None,
        access_region: "Guangzhou".into(),
        real_server_region: "Shanghai".into(),
        bandwidth,
        concurrent,
        status: ProxyStatus::Running,
        scalarable: 1,
        billing_type: None,
        tags: BTreeMap::new(),
    }
}

/// An observation with both signals present (Mbps and a count of connections) at `at`.
pub fn observe(bandwidth_mbps: f64, connections: f64, at: Timestamp) -> Observation {
    let mut o = Observation::default();
    o.signals.insert(
        "bandwidth".into(),
        Reading::Value {
            value: bandwidth_mbps,
            at,
        },
    );
    o.signals.insert(
        "connections".into(),
        Reading::Value {
            value: connections,
            at,
        },
    );
    o
}

/// A window in Asia/Shanghai opening at `cron` for `hours`, raising bandwidth min to
/// `bandwidth_min` (e.g. business hours: `"0 0 9 * * Mon-Fri"`, 10 h, 100 Mbps).
pub fn window(cron: &str, hours: u64, bandwidth_min: u32) -> crate::policy::Window {
    crate::policy::Window {
        cron: crate::policy::CronSpec {
            expr: cron.into(),
            schedule: cron.parse().expect("a valid cron expression"),
        },
        duration: Duration::from_secs(hours * 3600),
        timezone: chrono_tz::Asia::Shanghai,
        bandwidth_min: Some(bandwidth_min),
        bandwidth_max: None,
        concurrent_min: None,
        concurrent_max: None,
        memo: Default::default(),
    }
}
