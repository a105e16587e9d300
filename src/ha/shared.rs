//! The state the daemons of `[ha]` share in etcd, under `prefix`:
//!
//! - `state/<policy>\0<proxy>`: the controller state (the sled log's bytes, versioned);
//! - `pending/<id>`: a decision logged as planned and not answered yet (its record): the
//!   intents a new leader reconciles with the same ClientToken;
//! - `log/<id>`: every record the leader makes (and each new version of it: answered,
//!   completed), under a lease of [`LOG_TTL`], for every daemon's sled log (see [`mirror`]);
//! - `control`: the operators' run-time pauses and the last hour's resumes
//!   ([`SharedControl`]), which any daemon may change (an operator may talk to any of
//!   them), by compare-and-swap on the key's revision, not fenced by the leadership.
//!
//! Writes are staged ([`SharedStore::stage_state`], [`SharedStore::stage_record`]) and
//! written by [`SharedStore::flush`] in transactions of at most [`MAX_TXN_OPS`] operations
//! and [`MAX_TXN_BYTES`],
//! each conditioned on the leader key's create revision ([`Leadership::fence`]): a daemon
//! that lost the leadership (or never had it) writes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::election::Leadership;
use super::etcd::{Compare, Etcd, EtcdError, MAX_TXN_OPS, Op};
use crate::core::ControllerState;
use crate::store::log::{decode, decode_state, encode_state};
use crate::store::{DecisionLog, DecisionRecord, Outcome, StoreError};
use crate::time::Timestamp;

/// How long a record stays under `log/` for the other daemons to copy: a daemon down
/// longer than this misses the records made meanwhile (the others keep them).
pub const LOG_TTL: Duration = Duration::from_secs(900);
/// The most key and value bytes one transaction carries.
pub const MAX_TXN_BYTES: usize = 1024 * 1024;
/// How many transactions of one flush are in flight at once.
const CONCURRENT_TXNS: usize = 8;
/// How often [`mirror`] reads `log/`.
pub const MIRROR_EVERY: Duration = Duration::from_millis(500);

/// Why shared state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The write's fence failed, or we are not the leader: another daemon leads now.
    #[error("not the leader (the leader key is not ours): nothing written")]
    NotLeader,
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared pauses changed under us too often in a row.
    #[error("the shared pauses kept changing under this daemon ({0} tries); try again")]
    Contended(usize),
}

/// How long a resume stays in [`SharedControl::resumes`] for the other daemons to apply.
pub const RESUME_TTL: Duration = Duration::from_secs(3600);

/// The operators' run-time control shared by the daemons of `[ha]` (`prefix/control`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SharedControl {
    /// The pauses every daemon applies.
    pub pauses: Vec<crate::core::Pause>,
    /// The resumes of the last [`RESUME_TTL`]: the daemon that leads ends the manual holds
    /// a resume covers, whichever daemon took it.
    pub resumes: Vec<SharedResume>,
}

/// One `resume`, as shared: its scope, and when and where it was taken (its identity).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SharedResume {
    pub scope: crate::core::Scope,
    pub at: Timestamp,
    pub instance: String,
}

enum Staged {
    Put { value: Vec<u8>, log: bool },
    Delete,
}

pub struct SharedStore {
    etcd: Arc<Etcd>,
    prefix: String,
    leadership: Arc<Leadership>,
    staged: Mutex<BTreeMap<Vec<u8>, Staged>>,
    /// One flush at a time, so two versions of one key land in the order staged.
    flushing: tokio::sync::Mutex<()>,
    /// The lease of the `log/` keys and when it was granted.
    log_lease: tokio::sync::Mutex<Option<(i64, Instant)>>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn state_key(prefix: &str, policy: &str, proxy: &str) -> Vec<u8> {
    format!("{prefix}/state/{policy}\0{proxy}").into_bytes()
}

/// A record read from etcd (`what` names it in errors).
fn record_of(value: &[u8], what: &[u8]) -> Result<DecisionRecord, StoreError> {
    let mut key = vec![0u8; 8];
    key.extend_from_slice(what);
    decode(&key, value)
}

/// How many of `entries` (at least one) fit one transaction: at most [`MAX_TXN_OPS`]
/// operations and [`MAX_TXN_BYTES`] of keys and values (etcd refuses a request over
/// `--max-request-bytes`, 1.5 MiB by default).
fn txn_len(entries: &[(Vec<u8>, Staged)]) -> usize {
    let mut bytes = 0usize;
    for (i, (k, s)) in entries.iter().enumerate().take(MAX_TXN_OPS) {
        bytes += k.len()
            + match s {
                Staged::Put { value, .. } => value.len(),
                Staged::Delete => 0,
            };
        if i > 0 && bytes > MAX_TXN_BYTES {
            return i;
        }
    }
    entries.len().min(MAX_TXN_OPS)
}

impl SharedStore {
    pub fn new(etcd: Arc<Etcd>, prefix: &str, leadership: Arc<Leadership>) -> SharedStore {
        SharedStore {
            etcd,
            prefix: prefix.to_string(),
            leadership,
            staged: Mutex::new(BTreeMap::new()),
            flushing: tokio::sync::Mutex::new(()),
            log_lease: tokio::sync::Mutex::new(None),
        }
    }

    pub fn leadership(&self) -> &Arc<Leadership> {
        &self.leadership
    }

    pub fn etcd(&self) -> &Arc<Etcd> {
        &self.etcd
    }

    fn stage(&self, key: Vec<u8>, s: Staged) {
        crate::par::lock(&self.staged).insert(key, s);
    }

    fn control_key(&self) -> Vec<u8> {
        format!("{}/control", self.prefix).into_bytes()
    }

    /// The shared pauses and resumes, and the key's revision (0: never written).
    pub async fn control(&self) -> Result<(SharedControl, i64), SharedError> {
        match self.etcd.get(&self.control_key()).await? {
            None => Ok((SharedControl::default(), 0)),
            Some(kv) => {
                let c =
                    serde_json::from_slice(&kv.value).map_err(|source| StoreError::Corrupt {
                        id: String::from_utf8_lossy(&kv.key).into_owned(),
                        source,
                    })?;
                Ok((c, kv.mod_revision))
            }
        }
    }

    /// Changes the shared pauses and resumes with `change`, by compare-and-swap on the
    /// key's revision (a daemon that changed it meanwhile makes us read and apply again;
    /// at most 16 tries). Returns what was written.
    pub async fn update_control(
        &self,
        change: impl Fn(&mut SharedControl),
    ) -> Result<SharedControl, SharedError> {
        const TRIES: usize = 16;
        let key = self.control_key();
        for _ in 0..TRIES {
            let (mut c, rev) = self.control().await?;
            change(&mut c);
            let value = serde_json::to_vec(&c).map_err(StoreError::Encode)?;
            let put = Op::Put {
                key: key.clone(),
                value,
                lease: 0,
            };
            let done = self
                .etcd
                .txn(&[Compare::ModRevision(key.clone(), rev)], &[put], &[])
                .await?;
            if done.succeeded {
                return Ok(c);
            }
        }
        Err(SharedError::Contended(TRIES))
    }

    /// Stages a controller state.
    pub fn stage_state(
        &self,
        policy: &str,
        proxy: &str,
        state: &ControllerState,
    ) -> Result<(), StoreError> {
        let value = encode_state(state)?;
        self.stage(
            state_key(&self.prefix, policy, proxy),
            Staged::Put { value, log: false },
        );
        Ok(())
    }

    /// Stages a record for the shared log, and its pending intent (put while it is
    /// planned, deleted once answered).
    pub fn stage_record(&self, record: &DecisionRecord) -> Result<(), StoreError> {
        let mut rec = record.clone();
        if rec.instance.is_none() {
            rec.instance = Some(self.leadership.instance().to_string());
        }
        let value = serde_json::to_vec(&rec).map_err(StoreError::Encode)?;
        let pending = format!("{}/pending/{}", self.prefix, rec.id).into_bytes();
        if rec.outcome == Outcome::Planned {
            self.stage(
                pending,
                Staged::Put {
                    value: value.clone(),
                    log: false,
                },
            );
        } else {
            self.stage(pending, Staged::Delete);
        }
        self.stage(
            format!("{}/log/{}", self.prefix, rec.id).into_bytes(),
            Staged::Put { value, log: true },
        );
        Ok(())
    }

    /// Whether anything is staged.
    pub fn is_dirty(&self) -> bool {
        !crate::par::lock(&self.staged).is_empty()
    }

    /// Forgets what is staged (a daemon that stepped down: its successor has its own).
    pub fn discard(&self) {
        crate::par::lock(&self.staged).clear();
    }

    async fn log_lease(&self) -> Result<i64, EtcdError> {
        let mut l = self.log_lease.lock().await;
        match *l {
            Some((id, at)) if at.elapsed() < LOG_TTL / 2 => Ok(id),
            _ => {
                let id = self.etcd.grant(LOG_TTL).await?;
                *l = Some((id, Instant::now()));
                Ok(id)
            }
        }
    }

    /// Writes everything staged, fenced, in transactions of at most [`MAX_TXN_OPS`]
    /// operations. On an error, what was not written is staged again (unless a newer
    /// version was staged meanwhile) while we still lead, and dropped when we do not.
    pub async fn flush(&self) -> Result<(), SharedError> {
        let _one = self.flushing.lock().await;
        let staged = std::mem::take(&mut *crate::par::lock(&self.staged));
        if staged.is_empty() {
            return Ok(());
        }
        let Some(fence) = self.leadership.fence(&self.prefix) else {
            return Err(SharedError::NotLeader);
        };
        let needs_lease = staged
            .values()
            .any(|s| matches!(s, Staged::Put { log: true, .. }));
        let lease = if needs_lease {
            match self.log_lease().await {
                Ok(l) => l,
                Err(e) => {
                    self.restage(staged);
                    return Err(e.into());
                }
            }
        } else {
            0
        };
        let mut entries: Vec<(Vec<u8>, Staged)> = staged.into_iter().collect();
        let mut parts = Vec::new();
        while !entries.is_empty() {
            let rest = entries.split_off(txn_len(&entries));
            parts.push(std::mem::replace(&mut entries, rest));
        }
        // The parts hold distinct keys, so they go concurrently (etcd commits concurrent
        // proposals together: one pass of 2,000 states is not 17 round trips in a row),
        // each fenced on its own.
        let fence = &fence;
        let results: Vec<_> =
            futures_util::stream::iter(parts.into_iter().map(|part| async move {
                let ops: Vec<Op> = part
                    .iter()
                    .map(|(k, s)| match s {
                        Staged::Put { value, log } => Op::Put {
                            key: k.clone(),
                            value: value.clone(),
                            lease: if *log { lease } else { 0 },
                        },
                        Staged::Delete => Op::Delete(k.clone()),
                    })
                    .collect();
                let r = self.etcd.txn(std::slice::from_ref(fence), &ops, &[]).await;
                (part, r)
            }))
            .buffer_unordered(CONCURRENT_TXNS)
            .collect()
            .await;
        let mut not_leader = false;
        let mut failed = BTreeMap::new();
        let mut error = None;
        for (part, r) in results {
            match r {
                Ok(t) if t.succeeded => {
                    debug!(
                        ops = part.len(),
                        revision = t.revision,
                        "shared state written"
                    );
                }
                Ok(_) => not_leader = true,
                Err(e) => {
                    error.get_or_insert(e);
                    failed.extend(part);
                }
            }
        }
        if not_leader {
            // Another daemon leads: what is left is its business now.
            return Err(SharedError::NotLeader);
        }
        if let Some(e) = error {
            self.restage(failed);
            return Err(e.into());
        }
        Ok(())
    }

    fn restage(&self, old: BTreeMap<Vec<u8>, Staged>) {
        if !self.leadership.may_act() {
            return;
        }
        let mut staged = crate::par::lock(&self.staged);
        for (k, v) in old {
            staged.entry(k).or_insert(v);
        }
    }

    /// Every controller state in etcd, by (policy, proxy).
    pub async fn load_states(
        &self,
    ) -> Result<BTreeMap<(String, String), ControllerState>, SharedError> {
        let prefix = format!("{}/state/", self.prefix);
        let (kvs, _) = self.etcd.get_prefix(prefix.as_bytes()).await?;
        let mut out = BTreeMap::new();
        for kv in kvs {
            let name = String::from_utf8_lossy(&kv.key[prefix.len()..]).into_owned();
            let (policy, proxy) = name.split_once('\0').unwrap_or((&name, ""));
            let state = decode_state(policy, proxy, &kv.value)?;
            out.insert((policy.to_string(), proxy.to_string()), state);
        }
        Ok(out)
    }

    /// The pending intents in etcd, oldest first.
    pub async fn pending(&self) -> Result<Vec<DecisionRecord>, SharedError> {
        let prefix = format!("{}/pending/", self.prefix);
        let (kvs, _) = self.etcd.get_prefix(prefix.as_bytes()).await?;
        let mut out = kvs
            .iter()
            .map(|kv| record_of(&kv.value, &kv.key))
            .collect::<Result<Vec<_>, _>>()?;
        out.retain(|r| r.outcome == Outcome::Planned);
        out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        Ok(out)
    }
}

/// Copies every record under `prefix/log/` into `log` (each daemon runs one, the leader
/// included), newest version wins ([`DecisionLog::upsert`]), until `stop` is set. Reads
/// the keys changed since the last revision seen, every [`MIRROR_EVERY`].
pub async fn mirror(
    etcd: Arc<Etcd>,
    prefix: String,
    log: Arc<DecisionLog>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let key = format!("{prefix}/log/").into_bytes();
    let mut next = 1i64;
    const BATCH: usize = 1000;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        match etcd.changed_since(&key, next, BATCH).await {
            Ok((kvs, revision)) => {
                let full = kvs.len() >= BATCH;
                let mut stored = 0usize;
                for kv in &kvs {
                    next = next.max(kv.mod_revision);
                    match record_of(&kv.value, &kv.key) {
                        Ok(r) => match log.upsert(&r) {
                            Ok(true) => stored += 1,
                            Ok(false) => {}
                            Err(e) => warn!(id = %r.id, error = %e, "cannot copy a shared record"),
                        },
                        Err(e) => warn!(error = %e, "unreadable shared record; skipped"),
                    }
                }
                // A full batch may end inside one revision (a transaction's keys share it):
                // the next read starts at that revision again. It holds at most
                // MAX_TXN_OPS < BATCH keys, so the reads move on.
                if !full {
                    next = next.max(revision + 1);
                }
                if stored > 0 {
                    if let Err(e) = log.flush() {
                        warn!(error = %e, "cannot flush copied records");
                    }
                    debug!(stored, "copied shared records");
                }
                if full {
                    continue;
                }
            }
            Err(e) => debug!(error = %e, "cannot read the shared log"),
        }
        tokio::time::sleep(MIRROR_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, n: usize) -> (Vec<u8>, Staged) {
        (
            key.as_bytes().to_vec(),
            Staged::Put {
                value: vec![0; n],
                log: false,
            },
        )
    }

    #[test]
    fn transactions_are_bounded_by_operations_and_bytes() {
        let small: Vec<_> = (0..300).map(|i| put(&format!("k{i}"), 10)).collect();
        assert_eq!(txn_len(&small), MAX_TXN_OPS);
        assert_eq!(txn_len(&small[..5]), 5);
        // 400 KiB each: two fit under 1 MiB, the third does not.
        let big: Vec<_> = (0..5).map(|i| put(&format!("k{i}"), 400 * 1024)).collect();
        assert_eq!(txn_len(&big), 2);
        // One value over the limit still goes alone (etcd says whether it fits).
        let huge = vec![put("h", 2 * MAX_TXN_BYTES), put("s", 1)];
        assert_eq!(txn_len(&huge), 1);
        let deletes: Vec<_> = (0..200)
            .map(|i| (format!("d{i}").into_bytes(), Staged::Delete))
            .collect();
        assert_eq!(txn_len(&deletes), MAX_TXN_OPS);
    }
}
