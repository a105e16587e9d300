//! The replay engine: one [`Live`] per proxy, the tick plan (every evaluation time in
//! order), the threaded drive with the fleet-wide API budget, and the loop that pulls
//! samples from a [`SampleSource`] a chunk at a time: evaluate every tick before which all
//! samples are in, drop all but each series' last sample, read on. Memory is bounded by
//! the fleet, the chunk and what each proxy carries (its controller state, its changes),
//! not by the time span, when the run is recorded as a [`Record::Tally`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::billing::DailyPrices;
use super::html::Range;
use super::report::tally::Tally;
use super::source::{SampleSource, Slots, TraceSource};
use super::{
    API_CALLS_PER_SECOND, ApiStats, CONNECTIONS_PER_UNIT, Change, DimSetup, PolicySet, ProxyRun,
    SimError, SimOptions, SimRun, dim_setup, reference, schedule_times, unscalable_reason,
};
use crate::core::{
    Decision, Dim, Direction, Ladder, Observation, ProxyState, ProxyStatus, Reading, Verdict,
    decide_into,
};
use crate::fleet::Fleet;
use crate::par::lock;
use crate::policy::{Policy, Schedule};
use crate::time::Timestamp;
use crate::trace::{Series, Trace};

/// The max age of a signal in a policy (default 5 minutes).
fn max_age_ms(policy: &Policy, signal: &str) -> i64 {
    policy
        .signals
        .get(signal)
        .map(|s| crate::time::millis_i64(s.max_age))
        .unwrap_or(300_000)
}

/// One proxy during the replay.
struct Live<'a> {
    policy: &'a Policy,
    proxy: ProxyState,
    ladder: Option<&'a Ladder>,
    /// The last decision, reused for the next; its `next_state` is the controller state.
    decision: Decision,
    obs: Observation,
    bw: Input,
    conn: Input,
    /// A change in flight: (effective at, bandwidth, concurrent).
    pending: Option<(i64, u32, u32)>,
    run: ProxyRun,
    /// A reference peer deciding instead of `core::decide` (`--reference`).
    peer: Option<reference::PeerState>,
    /// The replayed pauses that cover this proxy (`--pause`).
    pauses: Vec<crate::core::Pause>,
}

/// Where one dimension's demand comes from: a slot of [`Slots`].
struct Input {
    slot: usize,
    cursor: usize,
    max_age_ms: i64,
    /// The observation key to fill (managed dimensions only).
    key: Option<String>,
}

impl Input {
    fn read(&mut self, series: &[Series], now: Timestamp) -> Reading {
        series[self.slot].reading_from(&mut self.cursor, now, self.max_age_ms)
    }
}

/// A change waiting for its API call.
struct Request {
    live: usize,
    time: i64,
    direction: Direction,
}

/// How a replay keeps each proxy's steps.
#[derive(Clone, Copy, Debug)]
pub enum Record<'p> {
    /// Every step in the run's columns (memory grows with the steps): [`replay`].
    Columns,
    /// Figures and chart columns tallied as the replay goes ([`ProxyRun::tally`]);
    /// `daily` prices the timelines by billing day, `chart` is the range the report's
    /// charts use (None: the run's own).
    Tally {
        daily: Option<&'p DailyPrices>,
        chart: Option<Range>,
    },
}

/// How far a replay reads ahead of its next evaluation.
#[derive(Clone, Copy, Debug)]
pub struct ReadAhead {
    /// Samples up to this long after the next evaluation time are asked for at once.
    pub window_ms: i64,
    /// At most about this many samples are held at once (a source stops early).
    pub max_samples: usize,
}

impl Default for ReadAhead {
    fn default() -> Self {
        ReadAhead {
            window_ms: 3_600_000,
            max_samples: 1 << 20,
        }
    }
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
    replay_trace(set, fleet, trace, opts, None, progress)
}

/// An in-memory trace through the streaming replay, every step kept (`Record::Columns`).
fn replay_trace(
    set: &PolicySet,
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    peer: Option<reference::Peer>,
    progress: &mut dyn FnMut(u64),
) -> Result<SimRun, SimError> {
    let mut source = TraceSource::new(trace);
    replay_stream(
        set,
        fleet,
        &mut source,
        opts,
        peer,
        Record::Columns,
        ReadAhead::default(),
        progress,
    )
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
    replay_trace(set, fleet, trace, opts, Some(peer), progress)
}

/// Replays `set` (or, with `peer`, that reference peer on the set's proxies, bounds and
/// schedules, labelled `reference: PEER`) over the samples of `source`, read `ahead` in
/// chunks, keeping each proxy's steps as `record` says. The source is read to its end
/// (its errors and counts are the whole input's).
#[allow(clippy::too_many_arguments)]
pub fn replay_stream(
    set: &PolicySet,
    fleet: &Fleet,
    source: &mut dyn SampleSource,
    opts: &SimOptions,
    peer: Option<reference::Peer>,
    record: Record,
    ahead: ReadAhead,
    progress: &mut dyn FnMut(u64),
) -> Result<SimRun, SimError> {
    let Some(peer) = peer else {
        return replay_with(set, fleet, source, opts, None, record, ahead, progress);
    };
    let label = format!("reference: {}", peer.as_str());
    let mut run = if peer == reference::Peer::Hpa {
        let hpa = PolicySet {
            label: label.clone(),
            policies: set.policies.iter().map(reference::hpa_policy).collect(),
        };
        replay_with(&hpa, fleet, source, opts, None, record, ahead, progress)?
    } else {
        replay_with(
            set,
            fleet,
            source,
            opts,
            Some(peer),
            record,
            ahead,
            progress,
        )?
    };
    run.label = label;
    Ok(run)
}

/// The range of the report's charts for a replay of `set` (the same as the run's).
pub fn chart_range(set: &PolicySet, fleet: &Fleet, opts: &SimOptions) -> Range {
    let last = set
        .policies
        .iter()
        .enumerate()
        .filter(|&(pi, _)| set.managed_by(pi, fleet).next().is_some())
        .filter_map(|(_, p)| {
            schedule_times(&p.schedule, opts.start, opts.end)
                .1
                .last()
                .copied()
        })
        .max();
    Range::new(opts.start, opts.end, last)
}

/// Warms the seasonal memory of every predictive proxy with the samples before the start
/// that arrived since the last call (as [`crate::core::season::warm_up`] would from the
/// whole history before the start, in the same order per dimension).
fn warm_up(lives: &mut [Live], slots: &Slots, start: Timestamp) {
    for live in lives.iter_mut() {
        let policy = live.policy;
        if policy.predictive.mode == crate::policy::PredictiveMode::Off {
            continue;
        }
        let from = start.millis() - crate::time::millis_i64(policy.predictive.lookback);
        for (dim, input) in [(Dim::Bandwidth, &live.bw), (Dim::Concurrent, &live.conn)] {
            if input.key.is_none() {
                continue;
            }
            let (times, values) = slots.fresh(input.slot);
            let lo = times.partition_point(|&t| t < from);
            let hi = times.partition_point(|&t| t < start.millis());
            if lo >= hi {
                continue;
            }
            let samples = (lo..hi).map(|i| (Timestamp(times[i]), values[i]));
            crate::core::season::warm_up(
                policy,
                dim,
                live.decision.next_state.dim_mut(dim),
                samples,
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn replay_with(
    set: &PolicySet,
    fleet: &Fleet,
    source: &mut dyn SampleSource,
    opts: &SimOptions,
    peer: Option<reference::Peer>,
    record: Record,
    ahead: ReadAhead,
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
    let chart = match record {
        Record::Tally { chart, .. } => Some(chart.unwrap_or_else(|| chart_range(set, fleet, opts))),
        Record::Columns => None,
    };
    let mut slots = Slots::default();
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
        let mut input = |setup: &DimSetup| {
            let sig = setup.signal.as_deref().unwrap_or("");
            Input {
                slot: slots.slot(&proxy.id, sig),
                cursor: 0,
                max_age_ms: max_age_ms(policy, sig),
                key: setup.managed.then(|| sig.to_string()),
            }
        };
        let bw = input(&bandwidth);
        let conn = input(&concurrent);
        let n = match record {
            Record::Columns => schedules[pi].0.len(),
            Record::Tally { .. } => 0,
        };
        let tally = match record {
            Record::Tally { daily, .. } => {
                Some(Box::new(Tally::new(&bandwidth, &concurrent, daily, chart)))
            }
            Record::Columns => None,
        };
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
            decision: Decision::with_state(Default::default()),
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
                tally,
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
    let ticks = tick_plan(&members, &schedules);
    let mut budget = Budget {
        limit,
        adjusting_ms: crate::time::millis_i64(opts.adjusting),
        seconds: BTreeMap::new(),
        api: ApiStats::default(),
        all: Vec::new(),
    };
    // Read a chunk, warm up on what came before the start, evaluate every tick before
    // which all samples are in, keep each series' last sample, read on.
    let mut k = 0;
    let mut safe = i64::MIN;
    while k < ticks.len() {
        let until = ticks[k].now.saturating_add(ahead.window_ms.max(1));
        safe = source.fill(&mut slots, until, ahead.max_samples)?;
        warm_up(&mut lives, &slots, opts.start);
        slots.mark_seen();
        let hi = k + ticks[k..].partition_point(|t| t.now < safe);
        if hi > k {
            drive(
                &mut lives,
                &members,
                &ticks[k..hi],
                slots.series(),
                opts,
                &mut budget,
                progress,
            );
            k = hi;
        }
        slots.compact();
        for live in &mut lives {
            live.bw.cursor = 0;
            live.conn.cursor = 0;
        }
    }
    // The rest of the input: read (its errors and counts are the input's), not kept.
    while safe != i64::MAX {
        safe = source.fill(&mut slots, i64::MAX, ahead.max_samples)?;
        slots.compact();
    }
    for live in &mut lives {
        if let Some(t) = &mut live.run.tally {
            t.flush();
        }
    }
    Ok(SimRun {
        label: set.label.clone(),
        start: opts.start,
        end: opts.end,
        adjusting: opts.adjusting,
        proxies: lives.into_iter().map(|l| l.run).collect(),
        api: budget.api,
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
    ticks: &[Tick],
    series: &[Series],
    opts: &SimOptions,
    budget: &mut Budget,
    progress: &mut dyn FnMut(u64),
) {
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
        requests: (0..parts).map(|_| Mutex::new(BTreeMap::new())).collect(),
        inbox: (0..parts).map(|_| Mutex::new(Vec::new())).collect(),
        budget: Mutex::new(std::mem::take(budget)),
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
            let (local, shared) = (&local[c], &shared);
            scope.spawn(move || part_loop(c, part, ticks, series, local, shared, &mut |_| {}));
        }
        // The first part reports progress (evaluations over the whole fleet).
        let mut done_since_report = 0u64;
        part_loop(0, first, ticks, series, &local[0], &shared, &mut |k| {
            done_since_report += total[k];
            if done_since_report >= 4096 || k + 1 == ticks.len() {
                progress(done_since_report);
                done_since_report = 0;
            }
        });
    });
    *budget = shared
        .budget
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
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
    /// Per part: its change requests by tick index (published out of tick order: a part
    /// runs proxy by proxy).
    requests: Vec<Mutex<BTreeMap<usize, Vec<Request>>>>,
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
                if let Some(rs) = lock(q).remove(&k) {
                    budget.all.extend(rs);
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
#[derive(Default)]
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

/// One part's replay: `part` holds lives `c * chunk ..`. `finished(k)` is called once
/// every proxy of the part has evaluated tick `k`.
///
/// Proxy by proxy: each proxy runs through the ticks until it asks for a change, and
/// waits there until that change's call is placed; so a proxy's state stays in the cache
/// over many ticks (tick by tick over a fleet of 2,000, it fell out before its next tick).
/// The result is the tick-by-tick one: a proxy depends on the others only through the
/// placement of its own change, and the calls of tick k are placed once every proxy has
/// evaluated tick k, in the serial order (scale-ups first, then proxy order).
#[allow(clippy::too_many_arguments)]
fn part_loop(
    c: usize,
    part: &mut [Live],
    ticks: &[Tick],
    series: &[Series],
    local: &[Vec<usize>],
    shared: &Shared,
    finished: &mut dyn FnMut(usize),
) {
    let _abort = AbortOnUnwind(&shared.aborted);
    let base = c * shared.chunk;
    // Per proxy of the part: its policy, the next tick it evaluates, and the tick of its
    // change waiting for its call (none: it may run on).
    let mut policy = vec![usize::MAX; part.len()];
    for (pi, members) in local.iter().enumerate() {
        for &li in members {
            policy[li] = pi;
        }
    }
    let mut next = vec![0usize; part.len()];
    let mut blocked: Vec<Option<usize>> = vec![None; part.len()];
    let mut mine: BTreeMap<usize, Vec<Request>> = BTreeMap::new();
    let mut reported = 0usize;
    loop {
        for li in 0..part.len() {
            if blocked[li].is_some() || policy[li] == usize::MAX {
                continue;
            }
            let pi = policy[li];
            while next[li] < ticks.len() {
                let k = next[li];
                next[li] = k + 1;
                let tick = &ticks[k];
                let Some(&(_, step)) = tick.due.iter().find(|(p, _)| *p == pi) else {
                    continue;
                };
                if let Some(direction) = evaluate(&mut part[li], series, tick.now, step) {
                    mine.entry(k).or_default().push(Request {
                        live: base + li,
                        time: tick.now,
                        direction,
                    });
                    blocked[li] = Some(k);
                    break;
                }
            }
        }
        // Every proxy not of this part's policies is done at once.
        let done = next
            .iter()
            .zip(&policy)
            .map(|(&n, &p)| if p == usize::MAX { ticks.len() } else { n })
            .min()
            .unwrap_or(ticks.len());
        if !mine.is_empty() {
            let mut q = lock(&shared.requests[c]);
            for (k, rs) in std::mem::take(&mut mine) {
                q.entry(k).or_default().extend(rs);
            }
        }
        shared.done[c].0.store(done, Ordering::Release);
        while reported < done {
            finished(reported);
            reported += 1;
        }
        let Some(first) = blocked.iter().flatten().min().copied() else {
            break;
        };
        // The earliest change waiting gets its call time (and any placed since).
        shared.wait_placed(first + 1);
        for p in lock(&shared.inbox[c]).iter() {
            blocked[p.live - base] = None;
        }
        apply_placed(part, base, &shared.inbox[c]);
    }
    // The last ticks' calls (the budget's figures).
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
fn evaluate(live: &mut Live, series: &[Series], now: i64, step: u32) -> Option<Direction> {
    if live.pending.is_some_and(|(e, _, _)| e <= now) {
        apply_pending(live);
    }
    let t = Timestamp(now);
    let cap_bw = live.proxy.bandwidth;
    let cap_conc = live.proxy.concurrent;
    let true_bw = live.bw.read(series, t);
    let true_conn = live.conn.read(series, t);
    let d_bw = true_bw.value().unwrap_or(f64::NAN);
    let d_conn = true_conn.value().unwrap_or(f64::NAN);
    let run = &mut live.run;
    match &mut run.tally {
        Some(t) => t.step(now, step, d_bw, d_conn, [cap_bw, cap_conc]),
        None => {
            run.times.push(now);
            run.step_ms.push(step);
            run.demand_bw.push(d_bw);
            run.demand_conn.push(d_conn);
            run.cap_bw.push(cap_bw);
            run.cap_conc.push(cap_conc);
        }
    }
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
            match &mut run.tally {
                Some(t) => t.forecast(i, hour, need),
                None => {
                    let e = run.forecasts[i].entry(hour).or_insert((0.0, 0));
                    e.0 += need;
                    e.1 += 1;
                }
            }
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
