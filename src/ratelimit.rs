//! The per-action API budget: at most 20 requests of one action in any one-second window,
//! shared by every caller, urgent work first.
//!
//! A classic token bucket (burst 20, refill 20/s) can grant 40 requests within one second
//! (20 from a full bucket, then 20 refilled). This module keeps a stronger guarantee: a
//! log of the last `limit` grant times ([`Window`]). A grant at `now` is allowed only if the
//! `limit`-th most recent grant is at least `window` old, so no half-open interval of
//! length `window` ever holds more than `limit` grants. The default window is 1.05 s: 5%
//! headroom so that network jitter can never make the server see 21 requests inside its
//! own one second.
//!
//! [`Window`] is pure (time passed in); [`RateLimiter`] is the async shell (tokio time, so
//! tests run under paused time) with a priority queue per action.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::par::lock;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The documented GAAP limit: 20 requests/second per action. Never configurable above.
pub const MAX_PER_SECOND: u32 = 20;
/// The default window: one second plus 5% headroom for network jitter.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(1050);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("api_rate {0}/s is above the GAAP limit of 20 requests/second per action")]
    AboveLimit(u32),
    #[error("api_rate must be at least 1 request/second")]
    Zero,
    #[error("the rate-limit window must be at least one second")]
    WindowTooShort,
}

/// A sliding-window log: at most `limit` requests in any interval of length `window`, as
/// the server sees them.
///
/// The budget counts sends, the server counts arrivals, and a request reaches the server
/// somewhere between its grant and the end of its call (its answer, its error, or its
/// timeout). So a request counts from its grant ([`Window::begin`]) for as long as it is in
/// flight, and then for `window` after its end ([`Window::finish`]). Whatever the delays
/// between grant and arrival, no interval of length `window` can then hold more than
/// `limit` arrivals: if it held `limit + 1`, the last of them to be granted was granted
/// while the other `limit` were in flight or had ended less than `window` before.
/// [`Window::try_acquire`] is a request that ends at its grant (the simulation's model).
#[derive(Clone, Debug)]
pub struct Window {
    limit: usize,
    window: Duration,
    /// End times of finished requests, ascending; only the last `limit` matter.
    ends: VecDeque<Duration>,
    /// Granted and not finished.
    in_flight: usize,
    /// The latest time seen: time never runs backwards here.
    latest: Duration,
}

impl Window {
    /// `limit` grants per `window`; `limit` ≤ 20 and `window` ≥ 1 s, so the 20/s budget holds.
    pub fn new(limit: u32, window: Duration) -> Result<Window, RateError> {
        if limit == 0 {
            return Err(RateError::Zero);
        }
        if limit > MAX_PER_SECOND {
            return Err(RateError::AboveLimit(limit));
        }
        if window < Duration::from_secs(1) {
            return Err(RateError::WindowTooShort);
        }
        Ok(Window {
            limit: limit as usize,
            window,
            ends: VecDeque::with_capacity(limit as usize),
            in_flight: 0,
            latest: Duration::ZERO,
        })
    }

    /// The earliest time at or after `now` when a grant is possible; None while `limit`
    /// requests are in flight (one must finish first).
    pub fn next_free(&self, now: Duration) -> Option<Duration> {
        let now = self.clamp(now);
        if self.in_flight >= self.limit {
            return None;
        }
        let room = self.limit - self.in_flight;
        if self.ends.len() < room {
            return Some(now);
        }
        Some(now.max(self.ends[self.ends.len() - room] + self.window))
    }

    /// Grants one request at `now` that stays in flight until [`Window::finish`], or says
    /// when to try again (None: when a request in flight finishes).
    pub fn begin(&mut self, now: Duration) -> Result<(), Option<Duration>> {
        let now = self.clamp(now);
        match self.next_free(now) {
            Some(free) if free <= now => {
                self.in_flight += 1;
                self.latest = now;
                Ok(())
            }
            other => Err(other),
        }
    }

    /// One request granted by [`Window::begin`] ended at `now` (answered, failed or timed
    /// out): it counts until `now + window`.
    pub fn finish(&mut self, now: Duration) {
        let now = self.clamp(now);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.push_end(now);
    }

    /// Grants one request that ends at its grant (recording it), or says when to try again.
    pub fn try_acquire(&mut self, now: Duration) -> Result<(), Option<Duration>> {
        self.begin(now)?;
        self.finish(now);
        Ok(())
    }

    /// Counts requests sent by someone else (an earlier process) `ages` before `now`, as if
    /// they had ended then. A time before the window's first moment counts as that moment
    /// (later, so more cautious).
    pub fn seed(&mut self, now: Duration, ages: &[Duration]) {
        let now = self.clamp(now);
        let mut times: Vec<Duration> = ages
            .iter()
            .filter(|&&a| a < self.window)
            .map(|&a| now.saturating_sub(a).max(self.latest))
            .collect();
        times.sort();
        for t in times {
            self.push_end(t);
        }
    }

    fn push_end(&mut self, at: Duration) {
        // `at` is clamped: never before an end already kept, so the deque stays sorted.
        self.latest = self.latest.max(at);
        if self.ends.len() == self.limit {
            self.ends.pop_front();
        }
        self.ends.push_back(at);
    }

    /// Grants still possible at `now` without waiting (for the daemon's /metrics).
    pub fn available(&self, now: Duration) -> u32 {
        let now = self.clamp(now);
        let used = self.in_flight + self.ends.iter().filter(|&&g| g + self.window > now).count();
        (self.limit - used.min(self.limit)) as u32
    }

    /// An earlier `now` than the latest time seen counts as that time.
    fn clamp(&self, now: Duration) -> Duration {
        now.max(self.latest)
    }
}

/// Who waits first when the budget is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Scale-ups: too little capacity drops traffic.
    High,
    /// Reads (Describe*).
    Normal,
    /// Scale-downs: only money is at stake while they wait.
    Low,
}

struct Slot {
    state: Mutex<SlotState>,
    notify: Notify,
}

struct SlotState {
    window: Window,
    queue: BTreeSet<(Priority, u64)>,
    seq: u64,
}

/// One sliding window per API action, shared by all callers (`Arc<RateLimiter>`).
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    origin: Instant,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .field("window", &self.window)
            .finish()
    }
}

impl RateLimiter {
    /// `per_second` requests per action (≤ 20) with the default 1.05 s window.
    pub fn new(per_second: u32) -> Result<RateLimiter, RateError> {
        RateLimiter::with_window(per_second, DEFAULT_WINDOW)
    }

    pub fn with_window(per_second: u32, window: Duration) -> Result<RateLimiter, RateError> {
        Window::new(per_second, window)?;
        Ok(RateLimiter {
            limit: per_second,
            window,
            origin: Instant::now(),
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The window each action's budget is counted over.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn slot(&self, action: &str) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        slots
            .entry(action.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: Mutex::new(SlotState {
                        window: Window::new(self.limit, self.window)
                            .expect("validated in the constructor"),
                        queue: BTreeSet::new(),
                        seq: 0,
                    }),
                    notify: Notify::new(),
                })
            })
            .clone()
    }

    /// Requests each action seen so far may still send without waiting, by action name.
    pub fn available(&self) -> Vec<(String, u32)> {
        let now = self.origin.elapsed();
        let slots = lock(&self.slots);
        let mut out: Vec<(String, u32)> = slots
            .iter()
            .map(|(action, slot)| {
                let st = lock(&slot.state);
                (action.clone(), st.window.available(now))
            })
            .collect();
        out.sort();
        out
    }

    /// Counts `ages` (how long ago each was sent, by an earlier process) against
    /// `action`'s budget: a new process starts with the budget its predecessor left, not
    /// an empty one. Ages of a window or more are ignored.
    pub fn seed(&self, action: &str, ages: &[Duration]) {
        let slot = self.slot(action);
        lock(&slot.state).window.seed(self.origin.elapsed(), ages);
    }

    /// Waits until `action` may be called. Higher priorities go first; equal priorities in
    /// arrival order. Cancel-safe: a dropped waiter leaves the queue.
    ///
    /// The request counts against the budget until the returned [`Sent`] is dropped and
    /// for one window after: hold it until the call has ended (answer, error or timeout).
    pub async fn acquire(&self, action: &str, priority: Priority) -> Sent {
        let slot = self.slot(action);
        let key = {
            let mut st = lock(&slot.state);
            st.seq += 1;
            let key = (priority, st.seq);
            st.queue.insert(key);
            key
        };
        let mut guard = QueueGuard {
            slot: &slot,
            key,
            armed: true,
        };
        loop {
            let notified = slot.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let retry_at = {
                let mut st = lock(&slot.state);
                if st.queue.first() == Some(&key) {
                    match st.window.begin(self.origin.elapsed()) {
                        Ok(()) => {
                            st.queue.remove(&key);
                            guard.armed = false;
                            drop(st);
                            slot.notify.notify_waiters();
                            return Sent {
                                slot: Arc::clone(&slot),
                                origin: self.origin,
                            };
                        }
                        Err(at) => at,
                    }
                } else {
                    None
                }
            };
            match retry_at {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(self.origin + at) => {}
                        _ = &mut notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

/// One granted request, counted as in flight until dropped (then for one window more).
#[must_use = "hold the permit until the call has ended; dropping it ends the request"]
pub struct Sent {
    slot: Arc<Slot>,
    origin: Instant,
}

impl std::fmt::Debug for Sent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sent")
    }
}

impl Drop for Sent {
    fn drop(&mut self) {
        lock(&self.slot.state).window.finish(self.origin.elapsed());
        self.slot.notify.notify_waiters();
    }
}

struct QueueGuard<'a> {
    slot: &'a Slot,
    key: (Priority, u64),
    armed: bool,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut st = lock(&self.slot.state);
            st.queue.remove(&self.key);
            drop(st);
            self.slot.notify.notify_waiters();
        }
    }
}

/// The grant times of `n` requests that all arrive at time zero and each take the first
/// free moment of `window`: what a burst through the budget looks like, without sleeping.
pub fn burst(window: &mut Window, n: usize) -> Vec<Duration> {
    let mut now = Duration::ZERO;
    let mut grants = Vec::with_capacity(n);
    while grants.len() < n {
        match window.try_acquire(now) {
            Ok(()) => grants.push(now),
            Err(at) => now = at.expect("nothing is in flight in a burst of instant grants"),
        }
    }
    grants
}

/// The largest number of `times` (sorted ascending) inside any half-open interval of
/// length `window`: what "no one-second window holds more than 20" is checked against.
pub fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] >= times[lo] + window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn limits_are_enforced_at_construction() {
        assert_eq!(
            Window::new(21, ms(1000)).unwrap_err(),
            RateError::AboveLimit(21)
        );
        assert_eq!(Window::new(0, ms(1000)).unwrap_err(), RateError::Zero);
        assert_eq!(
            Window::new(20, ms(999)).unwrap_err(),
            RateError::WindowTooShort
        );
        assert!(RateLimiter::new(21).is_err());
        assert!(RateLimiter::new(20).is_ok());
    }

    #[test]
    fn table_of_grants() {
        // (now ms, expected result: Ok or Err(retry at ms)) against 3 per 1000 ms.
        let mut w = Window::new(3, ms(1000)).unwrap();
        let steps: &[(u64, Result<(), u64>)] = &[
            (0, Ok(())),
            (0, Ok(())),
            (500, Ok(())),
            (600, Err(1000)),
            (999, Err(1000)),
            (1000, Ok(())),
            (1000, Ok(())),
            (1001, Err(1500)),
            (1500, Ok(())),
            (1400, Err(2000)), // a clock going backwards counts as the last grant's time
            (2000, Ok(())),
        ];
        for (i, (now, want)) in steps.iter().enumerate() {
            let got = w
                .try_acquire(ms(*now))
                .map_err(|d| d.expect("nothing in flight").as_millis() as u64);
            assert_eq!(got, *want, "step {i} at {now} ms");
        }
    }

    #[test]
    fn classic_bucket_pitfall_cannot_happen() {
        // A burst at 0, then a burst just before 1 s: a token bucket with burst 20 and refill
        // 20/s would grant 20 + ~20 here. The window grants 20 in total.
        let mut w = Window::new(20, ms(1000)).unwrap();
        let mut granted = Vec::new();
        for t in [0u64, 990] {
            for _ in 0..30 {
                if w.try_acquire(ms(t)).is_ok() {
                    granted.push(ms(t));
                }
            }
        }
        assert_eq!(granted.len(), 20);
        assert_eq!(max_in_any_window(&granted, ms(1000)), 20);
    }

    /// A burst of 500 requests under simulated time: every one-second window holds ≤ 20, and
    /// the burst completes within 10% of the 25-second minimum.
    #[test]
    fn burst_of_500_under_simulated_time() {
        let grants = burst(&mut Window::new(20, DEFAULT_WINDOW).unwrap(), 500);
        assert!(max_in_any_window(&grants, ms(1000)) <= 20);
        let span = *grants.last().unwrap() + ms(1000); // the last grant's second
        assert!(span >= Duration::from_secs(25), "{span:?}");
        assert!(
            span <= Duration::from_millis(27_500),
            "{span:?} is more than 10% over 25 s"
        );
    }

    #[test]
    fn max_in_any_window_counts_half_open() {
        let t = [ms(0), ms(500), ms(999), ms(1000), ms(1999)];
        assert_eq!(max_in_any_window(&t, ms(1000)), 3);
        assert_eq!(max_in_any_window(&[], ms(1000)), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn async_burst_respects_window_and_priority() {
        let limiter = Arc::new(RateLimiter::new(20).unwrap());
        let start = Instant::now();
        let log = Arc::new(Mutex::new(Vec::<(Duration, Priority)>::new()));
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let (l, log) = (limiter.clone(), log.clone());
            let p = if i % 2 == 0 {
                Priority::Low
            } else {
                Priority::High
            };
            tasks.push(tokio::spawn(async move {
                drop(l.acquire("ModifyProxyConfiguration", p).await);
                log.lock().unwrap().push((start.elapsed(), p));
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap();
        let times: Vec<Duration> = log.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.len(), 100);
        assert!(max_in_any_window(&times, ms(1000)) <= 20);
        // The first 20 were granted at once in arrival order (10 High, 10 Low); after that the
        // remaining 40 High all go before the remaining 40 Low.
        let after_first: Vec<Priority> = log.iter().skip(20).map(|(_, p)| *p).collect();
        assert!(
            after_first[..40].iter().all(|p| *p == Priority::High),
            "{after_first:?}"
        );
        assert!(after_first[40..].iter().all(|p| *p == Priority::Low));
        // 100 grants need 4 more windows after the first burst.
        assert_eq!(*times.last().unwrap(), DEFAULT_WINDOW * 4);
    }

    /// 500 concurrent modify requests through the shared limiter under paused time: no
    /// one-second window above 20, done within 10% of the 25-second minimum.
    #[tokio::test(start_paused = true)]
    async fn async_burst_of_500() {
        let limiter = Arc::new(RateLimiter::new(20).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    let p = if i % 3 == 0 {
                        Priority::Low
                    } else {
                        Priority::High
                    };
                    drop(l.acquire("ModifyProxyConfiguration", p).await);
                    start.elapsed()
                })
            })
            .collect();
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        assert_eq!(max_in_any_window(&times, ms(1000)), 20);
        let span = *times.last().unwrap() + ms(1000);
        assert!(
            span >= Duration::from_secs(25) && span <= Duration::from_millis(27_500),
            "{span:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn actions_have_separate_budgets_and_cancel_is_clean() {
        let limiter = RateLimiter::new(2).unwrap();
        let start = Instant::now();
        for _ in 0..2 {
            drop(limiter.acquire("A", Priority::Normal).await);
        }
        drop(limiter.acquire("B", Priority::Normal).await);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A cancelled waiter does not block the queue.
        let r = tokio::time::timeout(ms(10), limiter.acquire("A", Priority::High)).await;
        assert!(r.is_err());
        drop(limiter.acquire("A", Priority::Low).await);
        assert_eq!(start.elapsed(), DEFAULT_WINDOW);
    }
}
