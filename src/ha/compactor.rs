//! Keeps etcd's history short, as kube-apiserver's compactor does. Every pass rewrites the
//! shared state, and etcd keeps every old version of a key until its history is compacted:
//! at a 30 s interval and 2,000 proxies that is gigabytes a day, and an etcd run without
//! `--auto-compaction-retention` fills its quota (2 GiB by default), refuses every write
//! and stops the leader from acting. So every `interval` the leader compacts to the
//! revision it saw one interval before: each old version stays one to two intervals. The
//! daemon never reads history (no watches, no reads at a revision), so nothing it needs is
//! lost. `[ha] compaction_interval = "0s"` leaves compaction to the etcd's operators.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, warn};

use super::{Etcd, Leadership};

/// What to compact, from one tick to the next: the revision seen at the previous tick
/// while leading. Plain data; the loop in [`run`] feeds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compactor {
    seen: Option<i64>,
}

impl Compactor {
    /// One tick: `revision` is the store's revision now (None: it could not be read),
    /// `leading` whether this daemon may act. Returns the revision to compact to, if any:
    /// the one seen a tick ago, while leading then and now.
    pub fn tick(&mut self, leading: bool, revision: Option<i64>) -> Option<i64> {
        if !leading {
            self.seen = None;
            return None;
        }
        let now = revision?;
        let due = self.seen.filter(|&s| s > 0 && s <= now);
        self.seen = Some(now);
        due
    }
}

/// Compacts etcd's history every `interval` while this daemon leads, until it stops.
pub async fn run(etcd: Arc<Etcd>, me: Arc<Leadership>, prefix: String, interval: Duration) {
    let key = super::election::leader_key(&prefix);
    let mut c = Compactor::default();
    info!(every = ?interval, "compacting etcd's history while leading");
    while !me.stopping() {
        // In slices of a second: the daemon waits for this task when it stops.
        let mut left = interval;
        while !left.is_zero() && !me.stopping() {
            let slice = left.min(Duration::from_secs(1));
            tokio::time::sleep(slice).await;
            left -= slice;
        }
        if me.stopping() {
            break;
        }
        let leading = me.may_act();
        let revision = if leading {
            match etcd.revision(&key).await {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(error = %e, "cannot read etcd's revision to compact; next time");
                    None
                }
            }
        } else {
            None
        };
        let Some(to) = c.tick(leading, revision) else {
            continue;
        };
        match etcd.compact(to).await {
            Ok(()) => debug!(revision = to, "compacted etcd's history"),
            // Someone (an operator, etcd's own auto-compaction) got there first.
            Err(e) if e.to_string().contains("compacted") => {
                debug!(revision = to, error = %e, "etcd's history was already compacted");
            }
            Err(e) => warn!(revision = to, error = %e, "cannot compact etcd's history; next time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_to_the_revision_seen_a_tick_before_while_leading() {
        // (leading, revision read) per tick → what is compacted
        type Case<'a> = (&'a str, &'a [(bool, Option<i64>)], &'a [Option<i64>]);
        let cases: &[Case] = &[
            (
                "leading",
                &[(true, Some(10)), (true, Some(50)), (true, Some(90))],
                &[None, Some(10), Some(50)],
            ),
            (
                "a follower compacts nothing, and a new leader waits a tick",
                &[(false, Some(10)), (true, Some(20)), (true, Some(30))],
                &[None, None, Some(20)],
            ),
            (
                "leadership lost in between: start over",
                &[
                    (true, Some(10)),
                    (false, None),
                    (true, Some(30)),
                    (true, Some(40)),
                ],
                &[None, None, None, Some(30)],
            ),
            (
                "an unread revision skips the tick, keeps what was seen",
                &[(true, Some(10)), (true, None), (true, Some(40))],
                &[None, None, Some(10)],
            ),
            (
                "never ahead of the store (a restored etcd)",
                &[(true, Some(50)), (true, Some(20)), (true, Some(30))],
                &[None, None, Some(20)],
            ),
        ];
        for (what, ticks, want) in cases {
            let mut c = Compactor::default();
            let got: Vec<Option<i64>> = ticks.iter().map(|&(l, r)| c.tick(l, r)).collect();
            assert_eq!(&got, want, "{what}");
        }
    }

    /// The daemon waits for its HA tasks at shutdown (5 s each at most): the compactor
    /// must notice the resignation within a second, not at the end of its interval.
    #[tokio::test(start_paused = true)]
    async fn a_resignation_ends_the_loop_within_a_second() {
        let etcd = Arc::new(
            Etcd::new(&["http://127.0.0.1:1".to_string()], Duration::from_secs(1)).unwrap(),
        );
        let me = Arc::new(Leadership::new("a", Duration::from_secs(10), None));
        let task = tokio::spawn(run(etcd, me.clone(), "/t".into(), Duration::from_secs(300)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        me.resign();
        let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(
            ended.is_ok(),
            "the compactor was still sleeping out its interval"
        );
    }
}
