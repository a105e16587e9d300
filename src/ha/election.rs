//! Leader election on an etcd lease.
//!
//! A daemon becomes leader by creating `prefix/leader` (its instance name) under a lease of
//! `lease_ttl`, in a transaction that succeeds only if the key is absent. It renews the
//! lease every `ttl/6`; each renewal that etcd confirms moves its **fence** to
//! `sent + ttl/2` (sent: when the renewal left). The leader may act only before its fence:
//! etcd keeps the lease at least `ttl` after the renewal arrived, so a leader that stops
//! hearing from etcd stops sending `ttl/2` before anyone else can be elected. Every write
//! of shared state is conditioned on the leader key's create revision ([`Leadership::fence`]),
//! so a paused old leader that wakes up cannot overwrite its successor.
//!
//! Followers poll the key every `ttl/10` (at least 100 ms) and campaign when it is gone.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::etcd::{Compare, Etcd, Op};

/// Who leads, as this daemon knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Role {
    leader: bool,
    /// The leader key's create revision while we hold it (the fence's condition).
    create_revision: i64,
    lease: i64,
    /// We may act strictly before this instant.
    valid_until: Option<Instant>,
    /// The instance named by the leader key (us when leading), if any.
    leader_name: Option<String>,
}

/// This daemon's part in the election; shared by the engine (may it act?), the shared
/// store (the fence), /readyz and /metrics.
pub struct Leadership {
    instance: String,
    ttl: Duration,
    role: Mutex<Role>,
    /// Incremented on every election won: the engine reloads shared state when it changes.
    term: AtomicU64,
    stop: AtomicBool,
    gauge: Option<prometheus::IntGauge>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("instance", &self.instance)
            .field("role", &self.role)
            .finish()
    }
}

/// The key of the election under `prefix`.
pub fn leader_key(prefix: &str) -> Vec<u8> {
    format!("{prefix}/leader").into_bytes()
}

impl Leadership {
    /// A follower that has not seen a leader yet. `gauge` is set to 1 while leading.
    pub fn new(instance: &str, ttl: Duration, gauge: Option<prometheus::IntGauge>) -> Leadership {
        if let Some(g) = &gauge {
            g.set(0);
        }
        Leadership {
            instance: instance.to_string(),
            ttl,
            role: Mutex::new(Role::default()),
            term: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            gauge,
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// True once the daemon is stopping (resign called).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// True while this daemon leads and its fence has not passed: the only state in which
    /// it evaluates, writes shared state or sends.
    pub fn may_act(&self) -> bool {
        let r = crate::par::lock(&self.role);
        r.leader && r.valid_until.is_some_and(|t| Instant::now() < t)
    }

    /// Sets the `leader` gauge from [`Leadership::may_act`] (before a scrape: the fence
    /// may have passed before the renewal loop noticed).
    pub fn sample(&self) {
        if let Some(g) = &self.gauge {
            g.set(i64::from(self.may_act()));
        }
    }

    /// The election won last (0: never).
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::SeqCst)
    }

    /// The condition of every shared write: the leader key still has the create revision
    /// it got when we won. None when we may not act.
    pub fn fence(&self, prefix: &str) -> Option<Compare> {
        let r = crate::par::lock(&self.role);
        (r.leader && r.valid_until.is_some_and(|t| Instant::now() < t))
            .then(|| Compare::CreateRevision(leader_key(prefix), r.create_revision))
    }

    /// For /readyz: "leader" or "follower of NAME" (or "follower, no leader yet").
    pub fn describe(&self) -> String {
        if self.may_act() {
            return format!("leader ({})", self.instance);
        }
        match &crate::par::lock(&self.role).leader_name {
            Some(n) if *n != self.instance => format!("follower of {n}"),
            _ => "follower, no leader yet".into(),
        }
    }

    fn become_leader(&self, create_revision: i64, lease: i64, valid_until: Instant) {
        *crate::par::lock(&self.role) = Role {
            leader: true,
            create_revision,
            lease,
            valid_until: Some(valid_until),
            leader_name: Some(self.instance.clone()),
        };
        self.term.fetch_add(1, Ordering::SeqCst);
        if let Some(g) = &self.gauge {
            g.set(1);
        }
        info!(instance = %self.instance, create_revision, "role: leader (won the election)");
    }

    fn extend(&self, until: Instant) {
        let mut r = crate::par::lock(&self.role);
        if r.leader {
            r.valid_until = Some(until);
        }
    }

    fn step_down(&self, why: &str) {
        let was = {
            let mut r = crate::par::lock(&self.role);
            let was = r.leader;
            *r = Role::default();
            was
        };
        if let Some(g) = &self.gauge {
            g.set(0);
        }
        if was {
            warn!(instance = %self.instance, why, "role: follower (stepped down)");
        }
    }

    fn follow(&self, leader: Option<String>) {
        let mut r = crate::par::lock(&self.role);
        if r.leader_name != leader {
            match &leader {
                Some(l) => info!(instance = %self.instance, leader = %l, "role: follower"),
                None => info!(instance = %self.instance, "role: follower, no leader (campaigning)"),
            }
        }
        r.leader_name = leader;
    }

    /// The lease we lead under, if we do.
    fn lease(&self) -> Option<i64> {
        let r = crate::par::lock(&self.role);
        r.leader.then_some(r.lease)
    }

    /// Ends [`run`]: it steps down and revokes its lease, so a follower takes over at once.
    pub fn resign(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Campaigns, leads and follows until [`Leadership::resign`]; then revokes the lease.
pub async fn run(etcd: std::sync::Arc<Etcd>, me: std::sync::Arc<Leadership>, prefix: String) {
    let key = leader_key(&prefix);
    let ttl = me.ttl;
    // Followers look often: the poll adds to the failover time (lease expiry + poll + the
    // next pass), and one range request is cheap.
    let poll = (ttl / 10).max(Duration::from_millis(100));
    let renew = ttl / 6;
    while !me.stop.load(Ordering::SeqCst) {
        // Follower: who leads?
        match etcd.get(&key).await {
            Ok(Some(kv)) => {
                me.follow(Some(String::from_utf8_lossy(&kv.value).into_owned()));
                tokio::time::sleep(poll).await;
                continue;
            }
            Ok(None) => me.follow(None),
            Err(e) => {
                warn!(error = %e, "cannot read the leader key; retrying");
                tokio::time::sleep(poll).await;
                continue;
            }
        }
        // Campaign: a lease, then create the key under it if it is still absent.
        let sent = Instant::now();
        let lease = match etcd.grant(ttl).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot get a lease to campaign; retrying");
                tokio::time::sleep(poll).await;
                continue;
            }
        };
        let won = etcd
            .txn(
                &[Compare::CreateRevision(key.clone(), 0)],
                &[Op::Put {
                    key: key.clone(),
                    value: me.instance.as_bytes().to_vec(),
                    lease,
                }],
                &[Op::Get(key.clone())],
            )
            .await;
        match won {
            Ok(t) if t.succeeded => me.become_leader(t.revision, lease, sent + ttl / 2),
            Ok(t) => {
                let _ = etcd.revoke(lease).await;
                me.follow(
                    t.kvs
                        .first()
                        .map(|kv| String::from_utf8_lossy(&kv.value).into_owned()),
                );
                tokio::time::sleep(poll).await;
                continue;
            }
            Err(e) => {
                // Maybe written, maybe not: if it was, the lease expires unrenewed.
                warn!(error = %e, "campaign failed; retrying");
                tokio::time::sleep(poll).await;
                continue;
            }
        }
        // Leader: renew until a renewal fails for ttl/2, the lease is gone, or we resign.
        let mut fence = sent + ttl / 2;
        loop {
            if me.stop.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(renew).await;
            let sent = Instant::now();
            match etcd.keep_alive(lease).await {
                Ok(granted) if granted > 0 => {
                    fence = sent + ttl / 2;
                    me.extend(fence);
                }
                Ok(_) => {
                    me.step_down("the lease expired in etcd");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "cannot renew the leader lease");
                }
            }
            if Instant::now() >= fence {
                me.step_down("no lease renewal for half the lease TTL");
                break;
            }
        }
        if let Some(l) = me.lease().or(Some(lease)) {
            me.step_down("resigned");
            let _ = etcd.revoke(l).await;
        }
    }
    if let Some(l) = me.lease() {
        me.step_down("resigned");
        let _ = etcd.revoke(l).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_fence_closes_without_a_renewal_and_moves_with_one() {
        let gauge = prometheus::IntGauge::new("leader_test", "test").unwrap();
        let me = Leadership::new("a", Duration::from_secs(10), Some(gauge.clone()));
        assert!(!me.may_act());
        assert!(me.fence("/p").is_none());
        assert_eq!(me.describe(), "follower, no leader yet");

        let won = Instant::now();
        me.become_leader(42, 7, won + Duration::from_secs(5));
        assert_eq!(me.term(), 1);
        assert!(me.may_act());
        assert_eq!(gauge.get(), 1);
        assert_eq!(me.describe(), "leader (a)");
        match me.fence("/p") {
            Some(Compare::CreateRevision(key, rev)) => {
                assert_eq!((key, rev), (b"/p/leader".to_vec(), 42));
            }
            other => panic!("a leader within its fence has one on its key: {other:?}"),
        }

        // A renewal confirmed moves the fence; without another, acting stops there.
        tokio::time::advance(Duration::from_secs(4)).await;
        me.extend(Instant::now() + Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(me.may_act(), "the renewal moved the fence");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!me.may_act(), "half the TTL without a renewal: no acting");
        assert!(me.fence("/p").is_none(), "and no shared write");
        me.sample();
        assert_eq!(gauge.get(), 0, "the gauge follows the fence at a scrape");

        me.step_down("test");
        me.extend(Instant::now() + Duration::from_secs(60));
        assert!(!me.may_act(), "a renewal does not make a follower lead");
        me.follow(Some("b".into()));
        assert_eq!(me.describe(), "follower of b");
    }
}
