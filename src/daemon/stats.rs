//! The daemon's own metrics, served at /metrics in the Prometheus text format.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

pub struct Stats {
    registry: Registry,
    /// Decisions by policy, outcome and reason code.
    pub decisions: IntCounterVec,
    /// ModifyProxyConfiguration results: applied, rejected:<code>, failed.
    pub modify_calls: IntCounterVec,
    /// Metric query errors by policy and kind.
    pub query_errors: IntCounterVec,
    /// Tokens available in each action's budget (sampled at scrape time).
    pub api_tokens: IntGaugeVec,
    /// Duration of one evaluation pass, by policy.
    pub pass_duration: HistogramVec,
    /// Proxies seen in the last pass by status (RUNNING, ADJUSTING, ...).
    pub proxies: IntGaugeVec,
    /// Policy (re)loads by result.
    pub reloads: IntCounterVec,
    /// Evaluation ticks skipped because the previous pass of the policy was still running.
    pub skipped_ticks: IntCounterVec,
    /// Run-time and policy-file pauses in force: 1 per (policy, proxy, direction); proxy
    /// is empty for a whole policy, policy empty for a proxy paused by id.
    pub paused: IntGaugeVec,
    /// Operators' changes seen (a proxy's values changed outside the autoscaler).
    pub manual_changes: IntCounterVec,
    /// Under `[ha]`: 1 while this daemon (label `instance`) leads, else 0.
    pub leader: IntGaugeVec,
}

impl Stats {
    pub fn new() -> Stats {
        let registry = Registry::new_custom(Some("gaap_autoscaler".into()), None)
            .expect("a static prefix is valid");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let decisions = counter(
            "decisions_total",
            "Decisions by policy, outcome and reason code.",
            &["policy", "outcome", "reason"],
        );
        let modify_calls = counter(
            "modify_calls_total",
            "ModifyProxyConfiguration results after retries.",
            &["result"],
        );
        let query_errors = counter(
            "query_errors_total",
            "Metric query errors by policy and kind.",
            &["policy", "kind"],
        );
        let api_tokens = gauge(
            "api_tokens_available",
            "Requests each GAAP action may still send in the current one-second window.",
            &["action"],
        );
        let proxies = gauge(
            "proxies",
            "Proxies seen in the last pass, by status.",
            &["status"],
        );
        let reloads = counter(
            "policy_reloads_total",
            "Policy reloads by result.",
            &["result"],
        );
        let skipped_ticks = counter(
            "skipped_ticks_total",
            "Ticks skipped because the previous pass was still running.",
            &["policy"],
        );
        let paused = gauge(
            "paused",
            "Pauses in force (1 each): policy, proxy (empty: the whole policy), direction.",
            &["policy", "proxy", "direction"],
        );
        let manual_changes = counter(
            "manual_changes_total",
            "Proxies seen changed outside the autoscaler, by policy.",
            &["policy"],
        );
        let leader = gauge(
            "leader",
            "1 while this daemon leads under [ha] (the only one that evaluates and sends), else 0.",
            &["instance"],
        );
        let pass_duration = HistogramVec::new(
            HistogramOpts::new("pass_duration_seconds", "Duration of one evaluation pass.")
                .buckets(vec![
                    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            &["policy"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(pass_duration.clone()))
            .expect("registered once");
        Stats {
            registry,
            decisions,
            modify_calls,
            query_errors,
            api_tokens,
            pass_duration,
            proxies,
            reloads,
            skipped_ticks,
            paused,
            manual_changes,
            leader,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}
