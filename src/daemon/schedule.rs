//! When each policy runs: pure fire-time arithmetic, and the one clock the daemon reads.

use std::time::Duration;

use chrono::Utc;

use crate::policy::Schedule;
use crate::time::Timestamp;

/// The first evaluation time strictly after `after`. Intervals are aligned to multiples
/// of the interval since the epoch (a 30s policy runs at :00 and :30), so restarts keep
/// the same grid; cron schedules fire at their expression's times (UTC).
pub fn next_fire(schedule: &Schedule, after: Timestamp) -> Option<Timestamp> {
    match schedule {
        Schedule::Interval(d) => {
            let step = crate::time::millis_i64(*d).max(1);
            Some(Timestamp(
                (after.millis().div_euclid(step) + 1).saturating_mul(step),
            ))
        }
        Schedule::Cron(spec) => {
            let dt = after.to_datetime();
            spec.schedule
                .after(&dt)
                .next()
                .map(|f| Timestamp::from_datetime(&f))
        }
    }
}

/// The daemon's clock: wall time, but advancing with tokio's clock, so tests under
/// paused tokio time (`start_paused`) see time move exactly as the runtime does.
#[derive(Clone, Debug)]
pub struct Clock {
    base_wall: Timestamp,
    base: tokio::time::Instant,
}

impl Clock {
    /// Anchors the clock at the current wall time. The only wall-clock read of the daemon.
    pub fn system() -> Clock {
        Clock::starting_at(Timestamp::from_datetime(&Utc::now()))
    }
    /// A clock that reads `start` now and advances with tokio time.
    pub fn starting_at(start: Timestamp) -> Clock {
        Clock {
            base_wall: start,
            base: tokio::time::Instant::now(),
        }
    }
    pub fn now(&self) -> Timestamp {
        self.base_wall + self.base.elapsed()
    }
    /// The tokio instant at which this clock reads `t` (now if `t` is past).
    pub fn instant_at(&self, t: Timestamp) -> tokio::time::Instant {
        let ahead = t.millis() - self.now().millis();
        tokio::time::Instant::now() + Duration::from_millis(ahead.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::CronSpec;

    #[test]
    fn intervals_align_to_the_epoch_grid() {
        let s = Schedule::Interval(Duration::from_secs(30));
        let cases = [(0, 30), (1, 30), (29_999, 30), (30_000, 60), (45_500, 60)];
        for (after_ms, want_s) in cases {
            assert_eq!(
                next_fire(&s, Timestamp(after_ms)),
                Some(Timestamp::from_secs(want_s))
            );
        }
    }

    /// An interval too large for i64 milliseconds fires in the future, never in the past
    /// (`as i64` wrapped u64::MAX ms to -1 and ran passes back to back).
    #[test]
    fn huge_intervals_never_fire_in_the_past() {
        let t = Timestamp::from_secs(1_795_939_200);
        for ms in [u64::MAX, i64::MAX as u64 + 1, i64::MAX as u64] {
            let s = Schedule::Interval(Duration::from_millis(ms));
            let n = next_fire(&s, t).unwrap();
            assert!(n > t, "{ms} ms: next fire {n:?} is not after {t:?}");
        }
    }

    #[test]
    fn cron_fires_at_its_times() {
        let expr = "0 */5 * * * *";
        let s = Schedule::Cron(CronSpec {
            expr: expr.into(),
            schedule: expr.parse().unwrap(),
        });
        let t = crate::time::parse_time("2026-11-29T04:17:12Z").unwrap();
        let n = next_fire(&s, t).unwrap();
        assert_eq!(n.to_rfc3339(), "2026-11-29T04:20:00Z");
        assert_eq!(
            next_fire(&s, n).unwrap().to_rfc3339(),
            "2026-11-29T04:25:00Z"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_tokio_time() {
        let c = Clock::starting_at(Timestamp::from_secs(1000));
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(c.now(), Timestamp::from_secs(1090));
    }
}
