//! The dry-run simulation: replay policies over a metric history with a virtual clock.
//!
//! [`replay`] drives the same decision as the daemon ([`crate::core::decide_into`], the
//! reused-buffer form of [`crate::core::decide`]), for every proxy a
//! policy selects, at each evaluation time of the policy (its interval, or its cron fire
//! times), carrying the controller state. It models the world the daemon lives in:
//!
//! - **Censoring**: the demand a policy observes is capped by the capacity in effect
//!   (bandwidth at the configured Mbps, connections at concurrent × 10,000); a step whose
//!   true demand exceeds the capacity counts as a censored sample.
//! - **Adjusting**: a change takes effect `adjusting` after its API call; until then the
//!   proxy is `ADJUSTING` and `decide` returns Wait.
//! - **API budget**: at most 20 `ModifyProxyConfiguration` calls in any one second across
//!   the fleet; extra changes queue to the next seconds, scale-ups first.
//! - **Gaps**: missing samples become [`crate::core::Reading::Missing`].
//!
//! The replay records, per proxy and step, the true demand and the capacity in effect
//! (columnar, no per-step allocation); [`report`] turns that into the figures.

pub mod billing;
pub mod cmd;
pub mod csv;
pub mod html;
pub mod openmetrics;
pub mod reference;
pub mod render;
pub mod report;
pub mod synthetic;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::par::lock;
use std::time::Duration;

use crate::core::{
    ControllerState, Decision, Dim, Direction, Ladder, Observation, ProxyState, ProxyStatus,
    Reading, ReasonCode, Verdict, decide_into,
};
use crate::fleet::Fleet;
use crate::policy::{Policy, Rule, Schedule};
use crate::time::Timestamp;
use crate::trace::{Series, Trace};

/// At most this many ModifyProxyConfiguration calls in any one second (GAAP's limit).
pub const API_CALLS_PER_SECOND: u32 = 20;

/// Connections per concurrent unit.
pub const CONNECTIONS_PER_UNIT: f64 = 10_000.0;

/// How to replay.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// First evaluation time (inclusive).
    pub start: Timestamp,
    /// Last evaluation time (inclusive).
    pub end: Timestamp,
    /// How long a change keeps the proxy ADJUSTING before the new capacity is in effect.
    pub adjusting: Duration,
    /// API calls allowed per second across the fleet (never more than 20).
    pub api_calls_per_second: u32,
    /// Threads for the replay; 0 = one per core when the fleet is large enough to gain.
    /// The result never depends on it.
    pub threads: usize,
    /// A pause schedule to replay (`--pause FILE`): each pause holds its direction from
    /// `since` to `until`, as the daemon's run-time pauses do.
    pub pauses: Vec<crate::core::Pause>,
}

impl SimOptions {
    pub fn new(start: Timestamp, end: Timestamp) -> SimOptions {
        SimOptions {
            start,
            end,
            adjusting: Duration::from_secs(60),
            api_calls_per_second: API_CALLS_PER_SECOND,
            threads: 0,
            pauses: Vec::new(),
        }
    }
}

/// A named set of policies (e.g. one `--policies DIR`): each set is replayed on its own
/// over the same trace, so sets can be compared side by side.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub label: String,
    pub policies: Vec<Policy>,
}

impl PolicySet {
    /// The index of the policy that manages `proxy`: the first that selects it.
    pub fn owner(&self, proxy: &ProxyState) -> Option<usize> {
        self.policies
            .iter()
            .position(|p| p.selector.matches(&proxy.id, &proxy.tags))
    }

    /// The ids of the fleet's proxies that policy `pi` manages.
    pub fn managed_by<'f>(&self, pi: usize, fleet: &'f Fleet) -> impl Iterator<Item = &'f str> {
        fleet
            .proxies
            .iter()
            .filter(move |px| self.owner(px) == Some(pi))
            .map(|px| px.id.as_str())
    }
}

/// What a dimension is managed by, for the baselines and the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct DimSetup {
    pub managed: bool,
    /// Target utilization for the baselines' need (step rules: 1.0).
    pub target_utilization: f64,
    /// Allowed values within the policy bounds (ascending). Unmanaged or no ladder: the
    /// initial value alone.
    pub allowed: Vec<u32>,
    /// The signal whose values are this dimension's demand.
    pub signal: Option<String>,
}

/// One applied change (a ModifyProxyConfiguration call).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// When the decision was taken.
    pub time: Timestamp,
    /// When the API call went out (later than `time` when the second's budget was used).
    pub call_at: Timestamp,
    /// When the new capacity took effect (`call_at` + adjusting).
    pub effective_at: Timestamp,
    pub direction: Direction,
    pub bandwidth_from: u32,
    pub bandwidth_to: u32,
    pub concurrent_from: u32,
    pub concurrent_to: u32,
    pub reasons: Vec<String>,
}

/// The replay of one proxy: per evaluation step, true demand and capacity in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyRun {
    pub proxy_id: String,
    pub policy: String,
    pub bandwidth: DimSetup,
    pub concurrent: DimSetup,
    /// Evaluation times (Unix ms), ascending.
    pub times: Vec<i64>,
    /// Length of each step (ms): until the next evaluation.
    pub step_ms: Vec<u32>,
    /// True demand at each step (Mbps; a count of connections); NaN = no data.
    pub demand_bw: Vec<f64>,
    pub demand_conn: Vec<f64>,
    /// Capacity in effect at each step (Mbps; units of 10,000 connections).
    pub cap_bw: Vec<u32>,
    pub cap_conc: Vec<u32>,
    /// Steps whose true demand exceeded the capacity in effect (so the policy saw the cap).
    pub censored_bw: u64,
    pub censored_conn: u64,
    /// Reason codes over every decision (holds and waits included), by count.
    pub reasons: Vec<(ReasonCode, u64)>,
    pub changes: Vec<Change>,
    /// Changes whose API call was pushed to a later second by the budget.
    pub api_deferred: u64,
    /// Why the proxy cannot be resized (Scalarable not 1, not RUNNING), if so: the report
    /// shows it apart and leaves it out of the policy-vs-baseline fleet totals.
    pub unscalable: Option<String>,
    /// The seasonal forecasts made, per dimension (bandwidth, concurrent): the hour they
    /// were for (Unix ms of its start) → (sum of the forecast needs, how many).
    pub forecasts: [BTreeMap<i64, (f64, u32)>; 2],
}

/// Why `proxy` cannot be resized at all (None: it can). ADJUSTING is a passing state.
pub fn unscalable_reason(proxy: &ProxyState) -> Option<String> {
    if let ProxyStatus::Other(s) = &proxy.status {
        return Some(format!("status {s}, not RUNNING"));
    }
    (proxy.scalarable != 1).then(|| format!("Scalarable {}", proxy.scalarable))
}

impl ProxyRun {
    pub fn dim(&self, d: Dim) -> &DimSetup {
        match d {
            Dim::Bandwidth => &self.bandwidth,
            Dim::Concurrent => &self.concurrent,
        }
    }
    /// Demand of a dimension in its capacity unit (Mbps, or units of 10,000 connections).
    pub fn demand_units(&self, d: Dim, i: usize) -> f64 {
        match d {
            Dim::Bandwidth => self.demand_bw[i],
            Dim::Concurrent => self.demand_conn[i] / CONNECTIONS_PER_UNIT,
        }
    }
    pub fn capacity(&self, d: Dim, i: usize) -> u32 {
        match d {
            Dim::Bandwidth => self.cap_bw[i],
            Dim::Concurrent => self.cap_conc[i],
        }
    }
    pub fn steps(&self) -> usize {
        self.times.len()
    }
}

/// API usage over a whole replay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiStats {
    pub calls: u64,
    /// The most calls in any one second (never above the limit).
    pub peak_per_second: u32,
    /// Calls pushed to a later second, and the longest such wait.
    pub deferred: u64,
    pub max_wait_ms: i64,
}

/// The replay of one policy set.
#[derive(Clone, Debug, PartialEq)]
pub struct SimRun {
    pub label: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub adjusting: Duration,
    pub proxies: Vec<ProxyRun>,
    pub api: ApiStats,
    /// Fleet proxies no policy of the set selects.
    pub unmanaged_proxies: Vec<String>,
    /// Proxies selected by more than one policy: (proxy, the policy used, the others).
    pub overlaps: Vec<(String, String, Vec<String>)>,
}

/// Errors that stop a replay before it starts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error("the range is empty: start {start} is after end {end}")]
    EmptyRange { start: Timestamp, end: Timestamp },
    #[error("policy `{policy}` has a zero interval")]
    ZeroInterval { policy: String },
}

/// Evaluation times of a schedule within [start, end]: interval schedules at multiples of
/// the interval since the epoch (as the daemon aligns them), cron at its fire times (UTC).
/// Also returns the length of the step after the last time.
pub fn schedule_times(
    schedule: &Schedule,
    start: Timestamp,
    end: Timestamp,
) -> (Vec<i64>, Vec<u32>) {
    let mut times = Vec::new();
    let mut steps = Vec::new();
    match schedule {
        Schedule::Interval(d) => {
            let iv = crate::time::millis_i64(*d).max(1);
            let mut t = start.millis().div_euclid(iv) * iv;
            if t < start.millis() {
                t += iv;
            }
            while t <= end.millis() {
                times.push(t);
                steps.push(iv.min(u32::MAX as i64) as u32);
                let Some(next) = t.checked_add(iv) else { break };
                t = next;
            }
        }
        Schedule::Cron(spec) => {
            let from = (start - Duration::from_millis(1)).to_datetime();
            let mut it = spec.schedule.after(&from).peekable();
            while let Some(fire) = it.next() {
                let t = Timestamp::from_datetime(&fire).millis();
                if t > end.millis() {
                    break;
                }
                let next = it
                    .peek()
                    .map(|n| Timestamp::from_datetime(n).millis())
                    .unwrap_or(t);
                times.push(t);
                steps.push((next - t).clamp(0, u32::MAX as i64) as u32);
            }
        }
    }
    (times, steps)
}

/// The setup of one dimension of a proxy under a policy.
pub fn dim_setup(policy: &Policy, dim: Dim, ladder: Option<&Ladder>, initial: u32) -> DimSetup {
    let cfg = match dim {
        Dim::Bandwidth => policy.bandwidth.as_ref(),
        Dim::Concurrent => policy.concurrent.as_ref(),
    };
    let conventional = match dim {
        Dim::Bandwidth => "bandwidth",
        Dim::Concurrent => "connections",
    };
    match cfg {
        Some(c) => {
            let allowed: Vec<u32> = ladder
                .map(|l| {
                    l.values(dim)
                        .iter()
                        .copied()
                        .filter(|&v| v >= c.min && v <= c.max)
                        .collect()
                })
                .unwrap_or_default();
            DimSetup {
                managed: true,
                target_utilization: match &c.rule {
                    Rule::TargetTracking { target_utilization } => *target_utilization,
                    Rule::Steps(_) => 1.0,
                },
                allowed: if allowed.is_empty() {
                    vec![initial]
                } else {
                    allowed
                },
                signal: Some(c.signal.clone()),
            }
        }
        None => DimSetup {
            managed: false,
            target_utilization: 1.0,
            allowed: vec![initial],
            signal: Some(conventional.to_string()),
        },
    }
}

/// The max age of a signal in a policy (default 5 minutes).
fn max_age_ms(policy: &Policy, signal: &str) -> i64 {
    policy
        .signals
        .get(signal)
        .map(|s| crate::time::millis_i64(s.max_age))
        .unwrap_or(300_000)
}

/// The controller state a proxy starts the replay with: empty, but for the seasonal
/// memory, warmed from the data before the start (up to `[predictive] lookback`).
fn warmed_state(policy: &Policy, bw: &Input, conn: &Input, start: Timestamp) -> ControllerState {
    let mut st = ControllerState::default();
    if policy.predictive.mode == crate::policy::PredictiveMode::Off {
        return st;
    }
    let from = start.millis() - crate::time::millis_i64(policy.predictive.lookback);
    for (dim, input) in [(Dim::Bandwidth, bw), (Dim::Concurrent, conn)] {
        let (Some(series), Some(_)) = (input.series, &input.key) else {
            continue;
        };
        let lo = series.times.partition_point(|&t| t < from);
        let hi = series.times.partition_point(|&t| t < start.millis());
        let samples = (lo..hi).map(|i| (Timestamp(series.times[i]), series.values[i]));
        crate::core::season::warm_up(policy, dim, st.dim_mut(dim), samples);
    }
    st
}

/// One proxy during the replay.
struct Live<'a> {
    policy: &'a Policy,
    proxy: ProxyState,
    ladder: Option<&'a Ladder>,
    /// The last decision, reused for the next; its `next_state` is the controller state.
    decision: Decision,
    obs: Observation,
    bw: Input<'a>,
    conn: Input<'a>,
    /// A change in flight: (effective at, bandwidth, concurrent).
    pending: Option<(i64, u32, u32)>,
    run: ProxyRun,
    /// A reference peer deciding instead of `core::decide` (`--reference`).
    peer: Option<reference::PeerState>,
    /// The replayed pauses that cover this proxy (`--pause`).
    pauses: Vec<crate::core::Pause>,
}

/// Where one dimension's demand comes from.
struct Input<'a> {
    series: Option<&'a Series>,
    cursor: usize,
    max_age_ms: i64,
    /// The observation key to fill (managed dimensions only).
    key: Option<String>,
}

impl Input<'_> {
    fn read(&mut self, now: Timestamp) -> Reading {
        match self.series {
            Some(s) => s.reading_from(&mut self.cursor, now, self.max_age_ms),
            None => Reading::Missing {
                reason: crate::core::NoData::NoSeries,
            },
        }
    }
}

/// A change waiting for its API call.
struct Request {
    live: usize,
    time: i64,
    direction: Direction,
}

/// Replays one policy set over `trace`. `progress` is called with the number of
/// evaluations done since the last call (every few thousand).
pub fn replay(
    set: &PolicySet,
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<SimRun, SimError> {
    replay_with(set, fleet, trace, opts, None, progress)
}

/// Replays a reference peer on the proxies, bounds and schedules of `set`, with the same
/// model (`--reference`); the run is labelled `reference: PEER`.
pub fn replay_reference(
    set: &PolicySet,
    peer: reference::Peer,
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<SimRun, SimError> {
    let label = format!("reference: {}", peer.as_str());
    let mut run = if peer == reference::Peer::Hpa {
        let hpa = PolicySet {
            label: label.clone(),
            policies: set.policies.iter().map(reference::hpa_policy).collect(),
        };
        replay_with(&hpa, fleet, trace, opts, None, progress)?
    } else {
        replay_with(set, fleet, trace, opts, Some(peer), progress)?
    };
    run.label = label;
    Ok(run)
}

fn replay_with(
    set: &PolicySet,
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    peer: Option<reference::Peer>,
    progress: &mut dyn FnMut(u64),
) -> Result<SimRun, SimError> {
    if opts.start > opts.end {
        return Err(SimError::EmptyRange {
            start: opts.start,
            end: opts.end,
        });
    }
    for p in &set.policies {
        if let Schedule::Interval(d) = p.schedule
            && d.is_zero()
        {
            return Err(SimError::ZeroInterval {
                policy: p.name.clone(),
            });
        }
    }
    let mut unmanaged = Vec::new();
    let mut overlaps = Vec::new();
    // Per policy: its evaluation times and the indices of its proxies in `lives`.
    let schedules: Vec<(Vec<i64>, Vec<u32>)> = set
        .policies
        .iter()
        .map(|p| schedule_times(&p.schedule, opts.start, opts.end))
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); set.policies.len()];
    let mut lives: Vec<Live> = Vec::new();
    for proxy in &fleet.proxies {
        let matching: Vec<usize> = set
            .policies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.selector.matches(&proxy.id, &proxy.tags))
            .map(|(i, _)| i)
            .collect();
        let Some(&pi) = matching.first() else {
            unmanaged.push(proxy.id.clone());
            continue;
        };
        if matching.len() > 1 {
            overlaps.push((
                proxy.id.clone(),
                set.policies[pi].name.clone(),
                matching[1..]
                    .iter()
                    .map(|&i| set.policies[i].name.clone())
                    .collect(),
            ));
        }
        let policy = &set.policies[pi];
        let ladder = fleet.ladder_for(&proxy.access_region, &proxy.real_server_region);
        let bandwidth = dim_setup(policy, Dim::Bandwidth, ladder, proxy.bandwidth);
        let concurrent = dim_setup(policy, Dim::Concurrent, ladder, proxy.concurrent);
        let input = |setup: &DimSetup| {
            let sig = setup.signal.as_deref().unwrap_or("");
            Input {
                series: trace.series(&proxy.id, sig),
                cursor: 0,
                max_age_ms: max_age_ms(policy, sig),
                key: setup.managed.then(|| sig.to_string()),
            }
        };
        let bw = input(&bandwidth);
        let conn = input(&concurrent);
        let n = schedules[pi].0.len();
        let mut obs = Observation::default();
        for key in [&bw.key, &conn.key].into_iter().flatten() {
            obs.signals.insert(
                key.clone(),
                Reading::Missing {
                    reason: crate::core::NoData::NoSeries,
                },
            );
        }
        members[pi].push(lives.len());
        lives.push(Live {
            policy,
            proxy: ProxyState {
                // A change in flight at the start is over by the first evaluation.
                status: match &proxy.status {
                    ProxyStatus::Adjusting => ProxyStatus::Running,
                    s => s.clone(),
                },
                ..proxy.clone()
            },
            ladder,
            decision: Decision::with_state(warmed_state(policy, &bw, &conn, opts.start)),
            obs,
            bw,
            conn,
            pending: None,
            run: ProxyRun {
                proxy_id: proxy.id.clone(),
                policy: policy.name.clone(),
                bandwidth,
                concurrent,
                times: Vec::with_capacity(n),
                step_ms: Vec::with_capacity(n),
                demand_bw: Vec::with_capacity(n),
                demand_conn: Vec::with_capacity(n),
                cap_bw: Vec::with_capacity(n),
                cap_conc: Vec::with_capacity(n),
                censored_bw: 0,
                censored_conn: 0,
                reasons: Vec::new(),
                changes: Vec::new(),
                api_deferred: 0,
                unscalable: unscalable_reason(proxy),
                forecasts: Default::default(),
            },
            peer: peer.map(reference::PeerState::new),
            pauses: opts
                .pauses
                .iter()
                .filter(|p| p.scope.covers(&policy.name, &proxy.id))
                .cloned()
                .collect(),
        });
    }
    let limit = opts.api_calls_per_second.clamp(1, API_CALLS_PER_SECOND);
    let api = drive(&mut lives, &members, &schedules, opts, limit, progress);
    Ok(SimRun {
        label: set.label.clone(),
        start: opts.start,
        end: opts.end,
        adjusting: opts.adjusting,
        proxies: lives.into_iter().map(|l| l.run).collect(),
        api,
        unmanaged_proxies: unmanaged,
        overlaps,
    })
}

/// One evaluation time of the replay: the policies due then, with their step lengths.
struct Tick {
    now: i64,
    due: Vec<(usize, u32)>,
}

/// Every evaluation time over all policies (with members), in order.
fn tick_plan(members: &[Vec<usize>], schedules: &[(Vec<i64>, Vec<u32>)]) -> Vec<Tick> {
    let mut next_idx = vec![0usize; schedules.len()];
    let mut ticks = Vec::new();
    loop {
        let mut now = i64::MAX;
        for (pi, (times, _)) in schedules.iter().enumerate() {
            if let Some(&t) = times.get(next_idx[pi])
                && !members[pi].is_empty()
            {
                now = now.min(t);
            }
        }
        if now == i64::MAX {
            return ticks;
        }
        let mut due = Vec::new();
        for (pi, (times, steps)) in schedules.iter().enumerate() {
            if times.get(next_idx[pi]) == Some(&now) && !members[pi].is_empty() {
                due.push((pi, steps[next_idx[pi]]));
                next_idx[pi] += 1;
            }
        }
        ticks.push(Tick { now, due });
    }
}

/// Fewest proxies per thread for a parallel replay to gain over its per-tick coordination.
const MIN_PROXIES_PER_THREAD: usize = 32;
const HOUR_MS: i64 = 3_600_000;

/// The API call of a change, as the budget placed it.
struct Placed {
    live: usize,
    call_at: i64,
    effective: i64,
    deferred: bool,
}

/// The replay loop over `lives`: every evaluation time in order; changes go through the
/// API queue (`limit` calls per second fleet-wide, scale-ups first).
///
/// Proxies only meet in the API budget, and the call time of a change matters to its
/// proxy no sooner than the proxy's next evaluation. So the fleet is split into
/// contiguous parts, one thread each, that run ahead independently: after each tick a
/// part publishes its change requests; the calls of tick k are placed in the budget (all
/// parts' requests of that tick, scale-ups first, then proxy order: the serial order) as
/// soon as every part has finished tick k, by whichever thread gets there; and a part
/// with a change in flight waits, before its next tick, until that change is placed.
/// The result is the same for any number of threads (a test checks it).
fn drive(
    lives: &mut [Live],
    members: &[Vec<usize>],
    schedules: &[(Vec<i64>, Vec<u32>)],
    opts: &SimOptions,
    limit: u32,
    progress: &mut dyn FnMut(u64),
) -> ApiStats {
    let ticks = tick_plan(members, schedules);
    let threads = match opts.threads {
        0 => crate::par::threads().min(lives.len() / MIN_PROXIES_PER_THREAD),
        n => n.min(lives.len()),
    }
    .max(1);
    let chunk = lives.len().div_ceil(threads).max(1);
    let parts = lives.len().div_ceil(chunk).max(1);
    // Per part, per policy: the part's members (indices within the part).
    let local: Vec<Vec<Vec<usize>>> = (0..parts)
        .map(|c| {
            members
                .iter()
                .map(|m| {
                    m.iter()
                        .filter(|&&li| li / chunk == c)
                        .map(|&li| li - c * chunk)
                        .collect()
                })
                .collect()
        })
        .collect();
    let shared = Shared {
        chunk,
        done: (0..parts).map(|_| Padded(AtomicUsize::new(0))).collect(),
        placed: AtomicUsize::new(0),
        requests: (0..parts).map(|_| Mutex::new(VecDeque::new())).collect(),
        inbox: (0..parts).map(|_| Mutex::new(Vec::new())).collect(),
        budget: Mutex::new(Budget {
            limit,
            adjusting_ms: crate::time::millis_i64(opts.adjusting),
            seconds: BTreeMap::new(),
            api: ApiStats::default(),
            all: Vec::new(),
        }),
        aborted: AtomicBool::new(false),
    };
    let total: Vec<u64> = ticks
        .iter()
        .map(|t| t.due.iter().map(|&(pi, _)| members[pi].len() as u64).sum())
        .collect();
    std::thread::scope(|scope| {
        let mut split = lives.chunks_mut(chunk).enumerate();
        let (_, first) = split.next().expect("at least one part");
        for (c, part) in split {
            let (ticks, local, shared) = (&ticks, &local[c], &shared);
            scope.spawn(move || part_loop(c, part, ticks, local, shared, &mut |_| {}));
        }
        // The first part reports progress (evaluations over the whole fleet).
        let mut done_since_report = 0u64;
        part_loop(0, first, &ticks, &local[0], &shared, &mut |k| {
            done_since_report += total[k];
            if done_since_report >= 4096 || k + 1 == ticks.len() {
                progress(done_since_report);
                done_since_report = 0;
            }
        });
    });
    let budget = shared
        .budget
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    budget.api
}

/// A counter on a cache line of its own (each part writes its own every tick).
#[repr(align(128))]
struct Padded(AtomicUsize);

/// What the parts share.
struct Shared {
    chunk: usize,
    /// Per part: how many ticks it has finished (its requests for them are published).
    done: Vec<Padded>,
    /// How many ticks have their calls placed (each part's placements in its inbox).
    placed: AtomicUsize,
    /// Per part: its change requests, by tick index, oldest first.
    requests: Vec<Mutex<VecDeque<(usize, Request)>>>,
    /// Per part: placed calls not yet applied to its proxies.
    inbox: Vec<Mutex<Vec<Placed>>>,
    budget: Mutex<Budget>,
    /// Set when a part panics: the others stop waiting for it and panic too.
    aborted: AtomicBool,
}

impl Shared {
    /// Places the calls of every tick all parts have finished, unless another thread is
    /// doing it right now.
    fn place_ready(&self) {
        let Ok(mut budget) = self.budget.try_lock() else {
            return;
        };
        let ready = self
            .done
            .iter()
            .map(|d| d.0.load(Ordering::Acquire))
            .min()
            .unwrap_or(0);
        let mut k = self.placed.load(Ordering::Relaxed);
        while k < ready {
            for q in &self.requests {
                let mut q = lock(q);
                while q.front().is_some_and(|(tick, _)| *tick == k) {
                    let (_, r) = q.pop_front().expect("front exists");
                    budget.all.push(r);
                }
            }
            if !budget.all.is_empty() {
                budget.place(&mut |p| lock(&self.inbox[p.live / self.chunk]).push(p));
            }
            k += 1;
            self.placed.store(k, Ordering::Release);
        }
    }

    /// Waits until the calls of the first `ticks` ticks are placed, helping to place them.
    fn wait_placed(&self, ticks: usize) {
        let mut spins = 0u32;
        while self.placed.load(Ordering::Acquire) < ticks {
            assert!(
                !self.aborted.load(Ordering::Relaxed),
                "another replay thread panicked"
            );
            self.place_ready();
            if spins < 200 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// The fleet-wide API budget: calls per second, scale-ups first.
struct Budget {
    limit: u32,
    adjusting_ms: i64,
    seconds: BTreeMap<i64, u32>,
    api: ApiStats,
    /// The requests of the tick being placed, from every part.
    all: Vec<Request>,
}

impl Budget {
    /// Places the calls of one tick (sorted: scale-ups first, then proxy order).
    fn place(&mut self, out: &mut impl FnMut(Placed)) {
        self.all.sort_by_key(|r| (r.direction, r.live));
        let now = self.all[0].time;
        for r in &self.all {
            let mut sec = r.time.div_euclid(1000);
            while self.seconds.get(&sec).copied().unwrap_or(0) >= self.limit {
                sec += 1;
            }
            let used = self.seconds.entry(sec).or_insert(0);
            *used += 1;
            self.api.peak_per_second = self.api.peak_per_second.max(*used);
            self.api.calls += 1;
            let call_at = (sec * 1000).max(r.time);
            let deferred = call_at / 1000 > r.time / 1000;
            if deferred {
                self.api.deferred += 1;
                self.api.max_wait_ms = self.api.max_wait_ms.max(call_at - r.time);
            }
            out(Placed {
                live: r.live,
                call_at,
                effective: call_at + self.adjusting_ms,
                deferred,
            });
        }
        self.all.clear();
        // Forget seconds that can no longer receive calls.
        let floor = now.div_euclid(1000);
        while let Some((&s, _)) = self.seconds.first_key_value() {
            if s >= floor {
                break;
            }
            self.seconds.pop_first();
        }
    }
}

/// One part's replay: `part` holds lives `c * chunk ..`. `finished(k)` is called after
/// each tick `k`.
fn part_loop(
    c: usize,
    part: &mut [Live],
    ticks: &[Tick],
    local: &[Vec<usize>],
    shared: &Shared,
    finished: &mut dyn FnMut(usize),
) {
    let _abort = AbortOnUnwind(&shared.aborted);
    let base = c * shared.chunk;
    let mut mine = Vec::new();
    // Changes of this part whose call is not placed yet.
    let mut in_flight = 0usize;
    for (k, tick) in ticks.iter().enumerate() {
        if in_flight > 0 {
            // Every change asked for before tick k gets its call time before anyone
            // evaluates tick k.
            shared.wait_placed(k);
            in_flight -= apply_placed(part, base, &shared.inbox[c]);
        }
        for &(pi, step) in &tick.due {
            for &li in &local[pi] {
                if let Some(direction) = evaluate(&mut part[li], tick.now, step) {
                    mine.push((
                        k,
                        Request {
                            live: base + li,
                            time: tick.now,
                            direction,
                        },
                    ));
                }
            }
        }
        if !mine.is_empty() {
            in_flight += mine.len();
            lock(&shared.requests[c]).extend(mine.drain(..));
        }
        shared.done[c].0.store(k + 1, Ordering::Release);
        finished(k);
    }
    // The last ticks' calls (their times and the budget's figures).
    shared.wait_placed(ticks.len());
    apply_placed(part, base, &shared.inbox[c]);
}

/// Gives each change in `inbox` its call time: the proxy is ADJUSTING until the change
/// takes effect. Returns how many there were.
fn apply_placed(part: &mut [Live], base: usize, inbox: &Mutex<Vec<Placed>>) -> usize {
    let mut inbox = lock(inbox);
    for p in inbox.iter() {
        let live = &mut part[p.live - base];
        if p.deferred {
            live.run.api_deferred += 1;
        }
        if let Some(ch) = live.run.changes.last_mut() {
            ch.call_at = Timestamp(p.call_at);
            ch.effective_at = Timestamp(p.effective);
            live.pending = Some((p.effective, ch.bandwidth_to, ch.concurrent_to));
        }
    }
    let n = inbox.len();
    inbox.clear();
    n
}

/// Marks the replay aborted if its thread panics.
struct AbortOnUnwind<'a>(&'a AtomicBool);

impl Drop for AbortOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

fn apply_pending(live: &mut Live) {
    if let Some((_, bw, conc)) = live.pending.take() {
        live.proxy.bandwidth = bw;
        live.proxy.concurrent = conc;
        live.proxy.status = ProxyStatus::Running;
    }
}

/// One evaluation of one proxy at `now`. Returns the direction of a change, if any (the
/// change is recorded; its call and effect times are filled in by the API scheduler).
fn evaluate(live: &mut Live, now: i64, step: u32) -> Option<Direction> {
    if live.pending.is_some_and(|(e, _, _)| e <= now) {
        apply_pending(live);
    }
    let t = Timestamp(now);
    let cap_bw = live.proxy.bandwidth;
    let cap_conc = live.proxy.concurrent;
    let true_bw = live.bw.read(t);
    let true_conn = live.conn.read(t);
    let d_bw = true_bw.value().unwrap_or(f64::NAN);
    let d_conn = true_conn.value().unwrap_or(f64::NAN);
    let run = &mut live.run;
    run.times.push(now);
    run.step_ms.push(step);
    run.demand_bw.push(d_bw);
    run.demand_conn.push(d_conn);
    run.cap_bw.push(cap_bw);
    run.cap_conc.push(cap_conc);
    let conn_cap = f64::from(cap_conc) * CONNECTIONS_PER_UNIT;
    if d_bw > f64::from(cap_bw) {
        run.censored_bw += 1;
    }
    if d_conn > conn_cap {
        run.censored_conn += 1;
    }
    // What the policy observes: demand capped by the capacity in effect.
    let censor = |r: Reading, cap: f64| match r {
        Reading::Value { value, at } => Reading::Value {
            value: value.min(cap),
            at,
        },
        missing => missing,
    };
    if let Some(k) = &live.bw.key
        && let Some(slot) = live.obs.signals.get_mut(k)
    {
        *slot = censor(true_bw, f64::from(cap_bw));
    }
    if let Some(k) = &live.conn.key
        && let Some(slot) = live.obs.signals.get_mut(k)
    {
        *slot = censor(true_conn, conn_cap);
    }
    if live.pending.is_some() {
        live.proxy.status = ProxyStatus::Adjusting;
    } else if live.proxy.status == ProxyStatus::Adjusting {
        live.proxy.status = ProxyStatus::Running;
    }
    // Wait and Skip leave the state as it was (the guard stops before any stage).
    let d = &mut live.decision;
    let before = crate::core::operator::stamps(&d.next_state);
    match &mut live.peer {
        None => decide_into(live.policy, &live.proxy, live.ladder, &live.obs, t, d),
        Some(peer) => peer.decide(live.policy, &live.proxy, live.ladder, &live.obs, t, d),
    }
    if !live.pauses.is_empty() {
        let (paused, why) =
            crate::core::paused_at(&live.pauses, &live.policy.name, &live.proxy.id, t);
        if paused.any() {
            crate::core::apply_pause_stamps(d, &before, paused, why);
        }
    }
    for r in &d.reasons {
        match run.reasons.iter_mut().find(|(c, _)| *c == r.code) {
            Some((_, n)) => *n += 1,
            None => run.reasons.push((r.code, 1)),
        }
    }
    for (i, trace) in [&d.bandwidth, &d.concurrent].into_iter().enumerate() {
        if let Some((at, need)) = trace.forecast {
            let hour = at.millis().div_euclid(HOUR_MS) * HOUR_MS;
            let e = run.forecasts[i].entry(hour).or_insert((0.0, 0));
            e.0 += need;
            e.1 += 1;
        }
    }
    if d.verdict == Verdict::Wait || d.verdict == Verdict::Skip {
        return None;
    }
    let direction = d.direction;
    let change = (d.verdict == Verdict::Change).then(|| Change {
        time: t,
        call_at: t,
        effective_at: t,
        direction: direction.unwrap_or(Direction::Up),
        bandwidth_from: d.bandwidth_from,
        bandwidth_to: d.bandwidth_to,
        concurrent_from: d.concurrent_from,
        concurrent_to: d.concurrent_to,
        reasons: d.reasons.iter().map(ToString::to_string).collect(),
    });
    let change = change?;
    let dir = change.direction;
    run.changes.push(change);
    live.pending = Some((i64::MAX, d.bandwidth_to, d.concurrent_to));
    Some(dir)
}

/// Replays every set; `progress` receives evaluation counts across all of them.
pub fn replay_all(
    sets: &[PolicySet],
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<SimRun>, SimError> {
    sets.iter()
        .map(|s| replay(s, fleet, trace, opts, progress))
        .collect()
}

/// How many evaluations a replay of `set` will do (for a progress bar).
pub fn evaluation_count(set: &PolicySet, fleet: &Fleet, opts: &SimOptions) -> u64 {
    set.policies
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let proxies = set.managed_by(pi, fleet).count() as u64;
            proxies * schedule_times(&p.schedule, opts.start, opts.end).0.len() as u64
        })
        .sum()
}
