//! The sandbox's own rate check: at most `limit` admitted arrivals of one action in any
//! one second, by arrival time on the sandbox's clock.
//!
//! Deliberately its own code, not the client's [`crate::ratelimit::Window`]: the sandbox
//! is what the client's budget is tested against, so it must not share the budget's
//! reasoning. It keeps every admitted arrival of the last two seconds and, for a new one,
//! counts the admitted arrivals in every one-second interval that would contain it
//! (arrivals may be checked slightly out of order, so intervals after it count too).
//! Times are Unix milliseconds from a [`Clock`], which tests control.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One second, in the milliseconds arrivals are measured in.
pub const SECOND_MS: i64 = 1000;

/// Where the sandbox reads the time (Unix milliseconds).
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    /// Moves a manual clock forward; the system clock refuses.
    fn advance(&self, by: Duration) -> Result<i64, String> {
        let _ = by;
        Err("the sandbox runs on the system clock; start it with --manual-clock to move time by hand".into())
    }
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock that stands still until moved (tests; `sandbox --manual-clock` with
/// `POST /__sandbox/clock`).
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    pub fn at(ms: i64) -> ManualClock {
        ManualClock {
            ms: AtomicI64::new(ms),
        }
    }

    /// Starting at the wall clock's current millisecond (so signatures stay in skew).
    pub fn starting_now() -> ManualClock {
        ManualClock::at(SystemClock.now_ms())
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
    fn advance(&self, by: Duration) -> Result<i64, String> {
        let by = i64::try_from(by.as_millis()).map_err(|_| "too far".to_string())?;
        Ok(self.ms.fetch_add(by, Ordering::SeqCst) + by)
    }
}

/// The admitted arrivals per action.
#[derive(Debug)]
pub struct Arrivals {
    limit: usize,
    admitted: HashMap<String, Vec<i64>>,
}

impl Arrivals {
    pub fn new(limit: u32) -> Arrivals {
        Arrivals {
            limit: limit as usize,
            admitted: HashMap::new(),
        }
    }

    /// Admits an arrival of `action` at `at_ms` if no one-second interval containing it
    /// would then hold more than `limit` admitted arrivals; records it if admitted.
    pub fn admit(&mut self, action: &str, at_ms: i64) -> bool {
        let times = self.admitted.entry(action.to_string()).or_default();
        let newest = times.iter().copied().max().unwrap_or(at_ms).max(at_ms);
        times.retain(|&t| t > newest - 2 * SECOND_MS);
        let mut with: Vec<i64> = times.clone();
        with.push(at_ms);
        // Every interval [s, s + 1 s) holding `at_ms` with the most arrivals starts at one
        // of the arrivals at or before it.
        let worst = with
            .iter()
            .filter(|&&s| s <= at_ms && at_ms < s + SECOND_MS)
            .map(|&s| {
                with.iter()
                    .filter(|&&t| s <= t && t < s + SECOND_MS)
                    .count()
            })
            .max()
            .unwrap_or(1);
        if worst > self.limit {
            return false;
        }
        times.push(at_ms);
        true
    }
}

/// The most of `times_ms` (any order) inside one half-open second `[s, s + 1000)`.
pub fn most_in_one_second(times_ms: &[i64]) -> usize {
    times_ms
        .iter()
        .map(|&s| {
            times_ms
                .iter()
                .filter(|&&t| s <= t && t < s + SECOND_MS)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_twenty_per_second_table() {
        // (arrival ms, admitted?) for a limit of 3.
        let steps: &[(i64, bool)] = &[
            (0, true),
            (10, true),
            (999, true),
            (999, false), // the fourth inside [0, 1000)
            (1000, true), // 0 has left: [1, 1001) holds 10, 999, 1000
            (1005, false),
            (1010, true),
            (500, false), // late-checked, inside [0, 1000) with three already
            (2500, true),
        ];
        let mut a = Arrivals::new(3);
        for (i, &(t, want)) in steps.iter().enumerate() {
            assert_eq!(a.admit("X", t), want, "step {i} at {t} ms");
        }
        // Actions have separate budgets.
        assert!(a.admit("Y", 999));
    }

    #[test]
    fn a_late_arrival_cannot_overfill_a_later_second() {
        // 3 admitted in [600, 1600); an arrival checked late at 500 would make [500, 1500)
        // hold 4 with the first three of them.
        let mut a = Arrivals::new(3);
        for t in [600, 700, 1400] {
            assert!(a.admit("X", t));
        }
        assert!(!a.admit("X", 500));
        // [399, 1399) holds 399, 600 and 700: admitted.
        assert!(a.admit("X", 399));
    }

    #[test]
    fn most_in_one_second_is_half_open_and_order_free() {
        assert_eq!(most_in_one_second(&[]), 0);
        assert_eq!(most_in_one_second(&[1999, 0, 999, 1000, 500]), 3);
        assert_eq!(most_in_one_second(&[0, 1000, 2000]), 1);
    }

    #[test]
    fn manual_clock_moves_only_by_hand() {
        let c = ManualClock::at(5_000);
        assert_eq!(c.now_ms(), 5_000);
        assert_eq!(c.advance(Duration::from_millis(250)).unwrap(), 5_250);
        assert_eq!(c.now_ms(), 5_250);
        assert!(SystemClock.advance(Duration::from_secs(1)).is_err());
    }
}
