//! [`DecisionLog`]: the decision log on sled 0.34.7.
//!
//! Trees:
//! - `decisions`: key = 8 bytes of the id's millisecond (big-endian) ++ the id bytes;
//!   value = the record as JSON. Iteration order is time order; the key is derivable
//!   from the id, so looking a record up by id needs no second index.
//! - `pending`: the keys of records whose outcome is `planned` (logged, no answer yet),
//!   kept in the same transaction as the record, so start-up reconciliation reads a
//!   handful of keys instead of scanning 90 days of decisions.
//! - `state`: `policy \0 proxy` → the controller state (JSON, versioned).
//! - `control`: the operators' run-time pauses (`pause \0 scope \0 name \0 direction` →
//!   the pause as JSON), flushed when written, so a restart keeps them.
//!
//! Durability: `append`, `record_outcome` and `record_completion` flush before they
//! return. `save_state` does not (it becomes durable at the next flush of any kind,
//! sled's own every 500 ms included): call [`DecisionLog::flush`] when it must be.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::StoreError;
use super::record::{
    DecisionRecord, LogFilter, Outcome, OutcomeUpdate, RECORD_VERSION, decision_id, id_millis,
    id_proxy, id_proxy_part, parse_decision_id,
};
use crate::core::{ControllerState, Pause, Scope};
use crate::time::Timestamp;

const DECISIONS: &str = "decisions";
const PENDING: &str = "pending";
const STATE: &str = "state";
const CONTROL: &str = "control";

/// sled's page cache. Its default (1 GiB) would let the daemon's memory grow with the
/// log; the log is written far more than read, so a small cache costs little.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The durable decision log. Cheap to share by reference across threads (sled is
/// internally synchronized); only one process may hold a data dir at a time.
pub struct DecisionLog {
    dir: PathBuf,
    db: sled::Db,
    decisions: sled::Tree,
    pending: sled::Tree,
    state: sled::Tree,
    control: sled::Tree,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Why a transaction gave up (mapped to [`StoreError`] outside it).
#[derive(Debug)]
enum Abort {
    IdTaken,
    NotFound,
    Corrupt(serde_json::Error),
}

#[derive(Serialize, Deserialize)]
struct StoredState {
    v: u32,
    state: ControllerState,
}

/// The 8-byte, order-preserving prefix of a millisecond.
fn time_prefix(ms: i64) -> [u8; 8] {
    (ms.max(0) as u64).to_be_bytes()
}

fn key_of(ms: i64, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.len());
    k.extend_from_slice(&time_prefix(ms));
    k.extend_from_slice(id.as_bytes());
    k
}

/// The key of a decision id, or None if it is not a decision id.
fn key_for_id(id: &str) -> Option<Vec<u8>> {
    parse_decision_id(id).map(|(ms, _)| key_of(ms, id))
}

fn state_key(policy: &str, proxy: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(policy.len() + 1 + proxy.len());
    k.extend_from_slice(policy.as_bytes());
    k.push(0);
    k.extend_from_slice(proxy.as_bytes());
    k
}

/// False if the key's id names another proxy than `proxy` (as ids spell it): such a
/// record is skipped without decoding it.
fn key_may_match(key: &[u8], proxy: Option<&str>) -> bool {
    let Some(want) = proxy else {
        return true;
    };
    match std::str::from_utf8(key.get(8..).unwrap_or_default())
        .ok()
        .and_then(id_proxy_part)
    {
        Some(p) => p == want,
        None => true,
    }
}

fn key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key.get(8..).unwrap_or(key)).into_owned()
}

/// Reads a stored record (its version checked first); `key` names it in errors.
pub fn decode(key: &[u8], value: &[u8]) -> Result<DecisionRecord, StoreError> {
    // Check the version first so a newer record says so instead of failing to parse.
    #[derive(Deserialize)]
    struct Version {
        v: u32,
    }
    let id = key_text(key);
    let v = serde_json::from_slice::<Version>(value)
        .map_err(|source| StoreError::Corrupt {
            id: id.clone(),
            source,
        })?
        .v;
    if v != RECORD_VERSION {
        return Err(StoreError::UnsupportedVersion { id, v });
    }
    serde_json::from_slice(value).map_err(|source| StoreError::Corrupt { id, source })
}

fn tx_error(e: TransactionError<Abort>, id: &str) -> StoreError {
    match e {
        TransactionError::Abort(Abort::IdTaken) => StoreError::IdSpaceExhausted(id.to_string()),
        TransactionError::Abort(Abort::NotFound) => StoreError::NotFound(id.to_string()),
        TransactionError::Abort(Abort::Corrupt(source)) => StoreError::Corrupt {
            id: id.to_string(),
            source,
        },
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// Whether the log in `dir` was created with compression (sled's `conf` file), if it exists.
/// Logs written before compression keep working uncompressed.
fn created_compressed(dir: &Path) -> Option<bool> {
    // Text lines followed by a binary checksum.
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|l| l.strip_prefix("use_compression:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Creates `dir` (and missing parents) with mode 0700.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Makes what sled wrote in `dir` owner-only: 0700 for the dir and its subdirs (blobs),
/// 0600 for files. Best effort: a log owned by someone else (a reader) is left as it is.
fn restrict_permissions(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let set = |p: &Path, mode: u32| {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode));
        };
        set(dir, 0o700);
        let mut stack = vec![dir.to_path_buf()];
        // sled's layout is two levels deep (the dir, blobs/); stop at 3 to stay bounded.
        let mut depth = 0;
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                match e.file_type() {
                    Ok(t) if t.is_dir() && depth < 3 => {
                        set(&p, 0o700);
                        stack.push(p);
                    }
                    Ok(t) if t.is_file() => set(&p, 0o600),
                    _ => {}
                }
            }
            depth += 1;
        }
    }
}

impl DecisionLog {
    /// Opens (or creates) the log in `dir`. A dir held by another process is
    /// [`StoreError::Locked`].
    pub fn open(dir: impl AsRef<Path>) -> Result<DecisionLog, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        // The log holds the fleet's decisions: owner only (0700 dir, 0600 files).
        if !dir.exists() {
            private_dir(&dir).map_err(|e| StoreError::Open {
                dir: dir.clone(),
                source: sled::Error::Io(e),
            })?;
        }
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(CACHE_BYTES)
            // zstd: a record is ~2 KB of JSON that repeats its keys and most values (about
            // 550 bytes on disk instead of 3,900). sled cannot switch an existing log.
            .use_compression(created_compressed(&dir).unwrap_or(true))
            .compression_factor(1)
            .open()
            .map_err(|e| {
                if is_lock_error(&e) {
                    StoreError::Locked { dir: dir.clone() }
                } else {
                    StoreError::Open {
                        dir: dir.clone(),
                        source: e,
                    }
                }
            })?;
        restrict_permissions(&dir);
        let decisions = db.open_tree(DECISIONS)?;
        let pending = db.open_tree(PENDING)?;
        let state = db.open_tree(STATE)?;
        let control = db.open_tree(CONTROL)?;
        Ok(DecisionLog {
            dir,
            db,
            decisions,
            pending,
            state,
            control,
        })
    }

    /// Like [`DecisionLog::open`], but waits up to `max_wait` for a lock to be released.
    ///
    /// sled 0.34 releases its file lock from background threads shortly *after* the last
    /// handle is dropped, so reopening a log in the same process (a restart in a test,
    /// a reload) can briefly see it locked. Do not use this to wait for another process.
    pub fn open_waiting(
        dir: impl AsRef<Path>,
        max_wait: std::time::Duration,
    ) -> Result<DecisionLog, StoreError> {
        let step = std::time::Duration::from_millis(20);
        let mut waited = std::time::Duration::ZERO;
        loop {
            match DecisionLog::open(dir.as_ref()) {
                Err(StoreError::Locked { .. }) if waited < max_wait => {
                    std::thread::sleep(step);
                    waited += step;
                }
                other => return other,
            }
        }
    }

    /// Opens the log in `dir` to read it (`log list`, `log show`), waiting up to
    /// `max_wait` for a lock as [`DecisionLog::open_waiting`] does. Reading needs no free
    /// space: when sled cannot open the dir itself because it cannot write there (disk
    /// full, read-only file system or dir, quota), the log's files are copied to a
    /// temporary dir in memory (`/dev/shm` when there is one, else the temp dir) and read
    /// from there; the copy is deleted when the log is dropped. Nothing is written to
    /// `dir`. Writes through a log opened this way are lost: use it only to read.
    pub fn open_for_reading(
        dir: impl AsRef<Path>,
        max_wait: std::time::Duration,
    ) -> Result<DecisionLog, StoreError> {
        let dir = dir.as_ref();
        match DecisionLog::open_waiting(dir, max_wait) {
            Err(StoreError::Open {
                source: sled::Error::Io(io),
                ..
            }) if cannot_write(&io) => {
                tracing::info!(dir = %dir.display(), error = %io, "cannot open the log in place; reading a copy");
                let copy = scratch_copy(dir).map_err(|e| StoreError::Open {
                    dir: dir.to_path_buf(),
                    source: sled::Error::Io(std::io::Error::new(
                        e.kind(),
                        format!("{io}; reading a copy failed too: {e}"),
                    )),
                })?;
                let db = sled::Config::new()
                    .path(&copy)
                    .temporary(true)
                    .cache_capacity(CACHE_BYTES)
                    .use_compression(created_compressed(&copy).unwrap_or(true))
                    .compression_factor(1)
                    .open()
                    .map_err(|source| StoreError::Open {
                        dir: dir.to_path_buf(),
                        source,
                    })?;
                Ok(DecisionLog {
                    dir: dir.to_path_buf(),
                    decisions: db.open_tree(DECISIONS)?,
                    pending: db.open_tree(PENDING)?,
                    state: db.open_tree(STATE)?,
                    control: db.open_tree(CONTROL)?,
                    db,
                })
            }
            other => other,
        }
    }

    /// True if `dir` holds a decision log (so a reader need not create one).
    pub fn exists(dir: impl AsRef<Path>) -> bool {
        dir.as_ref().join("db").is_file()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs a decision and flushes: when this returns Ok, the record survives a crash.
    /// Returns the id the record was stored under: the record's own id, or, if another
    /// decision already holds it (same proxy, same millisecond), the next free sequence.
    /// Use the returned id as the ClientToken.
    pub fn append(&self, record: &DecisionRecord) -> Result<String, StoreError> {
        let id = self.insert(record)?;
        self.flush()?;
        Ok(id)
    }

    /// Logs several decisions with one flush at the end (for records nobody acts on
    /// before the batch returns, e.g. the holds of a pass). Returns the stored ids.
    pub fn append_batch(&self, records: &[DecisionRecord]) -> Result<Vec<String>, StoreError> {
        let ids = records
            .iter()
            .map(|r| self.insert(r))
            .collect::<Result<Vec<_>, _>>()?;
        self.flush()?;
        Ok(ids)
    }

    /// Stores held records again under their own ids (their `repeats` grew), without a
    /// flush: the pass's [`DecisionLog::append_batch`] flushes them with its own records.
    /// Only held or skipped records: nothing is pending on them.
    pub fn rewrite_held<'r>(
        &self,
        records: impl IntoIterator<Item = &'r DecisionRecord>,
    ) -> Result<(), StoreError> {
        for r in records {
            if !matches!(r.outcome, Outcome::Held | Outcome::Skipped) {
                return Err(StoreError::NotHeld(r.id.clone()));
            }
            let key = key_for_id(&r.id).ok_or_else(|| StoreError::NotFound(r.id.clone()))?;
            let value = serde_json::to_vec(r).map_err(StoreError::Encode)?;
            self.decisions.insert(key.as_slice(), value)?;
        }
        Ok(())
    }

    fn insert(&self, record: &DecisionRecord) -> Result<String, StoreError> {
        let ms = id_millis(record.time);
        let first = parse_decision_id(&record.id)
            .filter(|(id_ms, _)| *id_ms == ms)
            .map(|(_, seq)| seq);
        let mut rec = record.clone();
        let mut seq = first.unwrap_or(0);
        loop {
            if first != Some(seq) {
                rec.id = decision_id(record.time, &record.proxy_id, seq);
            }
            let key = key_of(ms, &rec.id);
            let value = serde_json::to_vec(&rec).map_err(StoreError::Encode)?;
            let res = if rec.outcome == Outcome::Planned {
                // The record and its pending entry land together or not at all.
                (&self.decisions, &self.pending).transaction(|(d, p)| {
                    if d.get(&key)?.is_some() {
                        return Err(ConflictableTransactionError::Abort(Abort::IdTaken));
                    }
                    d.insert(key.as_slice(), value.as_slice())?;
                    p.insert(key.as_slice(), &[] as &[u8])?;
                    Ok(())
                })
            } else {
                // One tree: an atomic insert-if-absent is enough (and much cheaper).
                match self.decisions.compare_and_swap(
                    &key,
                    None as Option<&[u8]>,
                    Some(value.as_slice()),
                )? {
                    Ok(()) => Ok(()),
                    Err(_) => Err(TransactionError::Abort(Abort::IdTaken)),
                }
            };
            match res {
                Ok(()) => return Ok(rec.id),
                Err(TransactionError::Abort(Abort::IdTaken)) if seq < u16::MAX => seq += 1,
                Err(e) => return Err(tx_error(e, &rec.id)),
            }
        }
    }

    /// Records the answer to a sent decision (or its reconciliation) and flushes.
    pub fn record_outcome(
        &self,
        id: &str,
        outcome: Outcome,
        update: &OutcomeUpdate,
    ) -> Result<(), StoreError> {
        // The wall clock, not the engine's: the API budget is about real time.
        let answered = Timestamp::from_datetime(&chrono::Utc::now());
        self.update(id, |r| {
            r.apply_outcome(outcome, update);
            r.answered_at = Some(answered);
        })?;
        self.flush()
    }

    /// Records that the proxy was seen RUNNING again at `at`, and flushes.
    pub fn record_completion(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        self.update(id, |r| r.completed_at = Some(at))?;
        self.flush()
    }

    /// Rewrites one record, keeping the pending index in step with its outcome.
    fn update(&self, id: &str, f: impl Fn(&mut DecisionRecord)) -> Result<(), StoreError> {
        let key = key_for_id(id).ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        (&self.decisions, &self.pending)
            .transaction(|(d, p)| {
                let Some(old) = d.get(&key)? else {
                    return Err(ConflictableTransactionError::Abort(Abort::NotFound));
                };
                let mut rec: DecisionRecord = serde_json::from_slice(&old)
                    .map_err(|e| ConflictableTransactionError::Abort(Abort::Corrupt(e)))?;
                f(&mut rec);
                let value = serde_json::to_vec(&rec)
                    .map_err(|e| ConflictableTransactionError::Abort(Abort::Corrupt(e)))?;
                d.insert(key.as_slice(), value)?;
                if rec.outcome == Outcome::Planned {
                    p.insert(key.as_slice(), &[] as &[u8])?;
                } else {
                    p.remove(key.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e| tx_error(e, id))
    }

    /// Stores a copy of a record made elsewhere (the shared log of `[ha]`) under its own
    /// id, unless the log already has it as far along ([`DecisionRecord::progress`]);
    /// the pending index follows its outcome. Not flushed. Returns whether it was stored.
    pub fn upsert(&self, record: &DecisionRecord) -> Result<bool, StoreError> {
        let key = key_for_id(&record.id).ok_or_else(|| StoreError::NotFound(record.id.clone()))?;
        if let Some(old) = self.decisions.get(&key)?
            && let Ok(old) = decode(&key, &old)
            && old.progress() >= record.progress()
        {
            return Ok(false);
        }
        let value = serde_json::to_vec(record).map_err(StoreError::Encode)?;
        let planned = record.outcome == Outcome::Planned;
        (&self.decisions, &self.pending)
            .transaction(|(d, p)| {
                d.insert(key.as_slice(), value.as_slice())?;
                if planned {
                    p.insert(key.as_slice(), &[] as &[u8])?;
                } else {
                    p.remove(key.as_slice())?;
                }
                Ok(())
            })
            .map_err(|e: TransactionError<Abort>| tx_error(e, &record.id))?;
        Ok(true)
    }

    /// One record by id; None if there is none.
    pub fn get(&self, id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let Some(key) = key_for_id(id) else {
            return Ok(None);
        };
        match self.decisions.get(&key)? {
            Some(v) => decode(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn range(&self, filter: &LogFilter) -> sled::Iter {
        let start = match filter.since {
            Some(t) => Bound::Included(time_prefix(id_millis(t)).to_vec()),
            None => Bound::Unbounded,
        };
        let end = match filter.until {
            // The id's millisecond is clamped, so the exact check is done on `time`.
            Some(t) => Bound::Excluded(time_prefix(id_millis(t).saturating_add(1)).to_vec()),
            None => Bound::Unbounded,
        };
        self.decisions.range::<Vec<u8>, _>((start, end))
    }

    /// Every record matching the filter (but `limit`), oldest first, read lazily: for
    /// exports of any size.
    pub fn iter<'a>(
        &self,
        filter: &'a LogFilter,
    ) -> impl Iterator<Item = Result<DecisionRecord, StoreError>> + 'a {
        let proxy = filter.proxy.as_deref().map(id_proxy);
        self.range(filter).filter_map(move |kv| {
            if let Ok((k, _)) = &kv
                && !key_may_match(k, proxy.as_deref())
            {
                return None;
            }
            let rec = kv
                .map_err(StoreError::from)
                .and_then(|(k, v)| decode(&k, &v));
            match rec {
                Ok(r) if !filter.matches(&r) => None,
                other => Some(other),
            }
        })
    }

    /// The records matching the filter, oldest first; with `limit`, the newest `limit`.
    pub fn list(&self, filter: &LogFilter) -> Result<Vec<DecisionRecord>, StoreError> {
        let Some(limit) = filter.limit else {
            return self.iter(filter).collect();
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        let proxy = filter.proxy.as_deref().map(id_proxy);
        for kv in self.range(filter).rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv?;
            if !key_may_match(&k, proxy.as_deref()) {
                continue;
            }
            let r = decode(&k, &v)?;
            if filter.matches(&r) {
                out.push(r);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Decisions logged as `planned` without an answer (the process stopped between the
    /// log and the call's answer): to reconcile at start-up with the same ClientToken.
    /// Oldest first.
    pub fn pending(&self) -> Result<Vec<DecisionRecord>, StoreError> {
        let mut out = Vec::new();
        for k in self.pending.iter().keys() {
            let k = k?;
            match self.decisions.get(&k)? {
                Some(v) => {
                    let r = decode(&k, &v)?;
                    if r.outcome == Outcome::Planned {
                        out.push(r);
                    }
                }
                None => {
                    tracing::warn!(id = %key_text(&k), "pending index names a missing decision; dropping it");
                    self.pending.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Number of records in the log.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// Saves the controller state of one (policy, proxy). Not flushed by itself (see the
    /// module docs).
    pub fn save_state(
        &self,
        policy: &str,
        proxy: &str,
        state: &ControllerState,
    ) -> Result<(), StoreError> {
        let value = encode_state(state)?;
        self.state.insert(state_key(policy, proxy), value)?;
        Ok(())
    }

    pub fn load_state(
        &self,
        policy: &str,
        proxy: &str,
    ) -> Result<Option<ControllerState>, StoreError> {
        self.state
            .get(state_key(policy, proxy))?
            .map(|v| decode_state(policy, proxy, &v))
            .transpose()
    }

    /// Every saved controller state by (policy, proxy).
    pub fn load_all_states(
        &self,
    ) -> Result<BTreeMap<(String, String), ControllerState>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.state.iter() {
            let (k, v) = kv?;
            let text = String::from_utf8_lossy(&k);
            let (policy, proxy) = text.split_once('\0').unwrap_or((&text, ""));
            let st = decode_state(policy, proxy, &v)?;
            out.insert((policy.to_string(), proxy.to_string()), st);
        }
        Ok(out)
    }

    /// Forgets the controller state of one (policy, proxy) (e.g. it left the policy).
    pub fn remove_state(&self, policy: &str, proxy: &str) -> Result<(), StoreError> {
        self.state.remove(state_key(policy, proxy))?;
        Ok(())
    }

    /// Keeps a run-time pause (replacing the one of the same scope and direction), flushed.
    pub fn save_pause(&self, pause: &Pause) -> Result<(), StoreError> {
        let value = serde_json::to_vec(pause).map_err(StoreError::Encode)?;
        self.control.insert(pause_key(pause), value)?;
        self.flush()
    }

    /// Forgets a run-time pause (resumed or expired), flushed.
    pub fn remove_pause(&self, pause: &Pause) -> Result<(), StoreError> {
        self.control.remove(pause_key(pause))?;
        self.flush()
    }

    /// Every run-time pause kept, expired ones included (they apply no more).
    pub fn load_pauses(&self) -> Result<Vec<Pause>, StoreError> {
        let mut out = Vec::new();
        for kv in self.control.scan_prefix(b"pause\0") {
            let (k, v) = kv?;
            let pause = serde_json::from_slice(&v).map_err(|source| StoreError::Corrupt {
                id: String::from_utf8_lossy(&k).replace('\0', "/"),
                source,
            })?;
            out.push(pause);
        }
        Ok(out)
    }

    /// Deletes records older than `older_than` (retention), except `planned` ones, which
    /// still wait for reconciliation. Returns how many were deleted; flushes.
    pub fn prune(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        let end = Bound::Excluded(time_prefix(id_millis(older_than)).to_vec());
        let mut n = 0;
        for k in self
            .decisions
            .range::<Vec<u8>, _>((Bound::Unbounded, end))
            .keys()
        {
            let k = k?;
            if self.pending.contains_key(&k)? {
                continue;
            }
            if self.decisions.remove(&k)?.is_some() {
                n += 1;
            }
        }
        self.flush()?;
        Ok(n)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

fn pause_key(p: &Pause) -> Vec<u8> {
    let (kind, name) = match &p.scope {
        Scope::Policy(n) => ("policy", n),
        Scope::Proxy(n) => ("proxy", n),
    };
    let dir = crate::core::pause::direction_name(p.direction);
    format!("pause\0{kind}\0{name}\0{dir}").into_bytes()
}

/// A controller state as the log stores it (versioned JSON); the shared store of `[ha]`
/// stores the same bytes.
pub fn encode_state(state: &ControllerState) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredState {
        v: RECORD_VERSION,
        state: state.clone(),
    })
    .map_err(StoreError::Encode)
}

/// Reads what [`encode_state`] wrote.
pub fn decode_state(policy: &str, proxy: &str, v: &[u8]) -> Result<ControllerState, StoreError> {
    let stored: StoredState = serde_json::from_slice(v).map_err(|source| StoreError::Corrupt {
        id: format!("state {policy}/{proxy}"),
        source,
    })?;
    if stored.v != RECORD_VERSION {
        return Err(StoreError::UnsupportedVersion {
            id: format!("state {policy}/{proxy}"),
            v: stored.v,
        });
    }
    Ok(stored.state)
}

/// sled 0.34.7 reports a held lock as an `Io` error of kind Other whose message starts
/// with "could not acquire lock".
/// An open that failed because the dir cannot be written: no space, read-only, no
/// permission, quota.
fn cannot_write(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | ReadOnlyFilesystem | PermissionDenied | QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(28 | 30 | 13 | 122))
}

/// Copies the files of the log in `dir` (and its `blobs/`) to a new private dir in
/// memory, for [`DecisionLog::open_for_reading`].
fn scratch_copy(dir: &Path) -> std::io::Result<PathBuf> {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let copy = base.join(format!(
        "gaap-autoscaler-log-{}-{nanos}",
        std::process::id()
    ));
    let result = (|| {
        let mut stack = vec![(dir.to_path_buf(), copy.clone())];
        while let Some((from, to)) = stack.pop() {
            private_dir(&to)?;
            for e in std::fs::read_dir(&from)? {
                let e = e?;
                let t = e.file_type()?;
                let target = to.join(e.file_name());
                if t.is_dir() && stack.len() < 8 {
                    stack.push((e.path(), target));
                } else if t.is_file() {
                    std::fs::copy(e.path(), &target)?;
                }
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&copy);
        return Err(e);
    }
    Ok(copy)
}

fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_survive_a_reopen_and_replace_by_scope_and_direction() {
        use crate::core::Direction;
        let dir = tempfile::tempdir().unwrap();
        let pause = |scope: Scope, direction, reason: &str| Pause {
            scope,
            direction,
            since: Timestamp::from_secs(1_795_939_200),
            until: None,
            reason: reason.into(),
            by: "ops@host".into(),
        };
        {
            let log = DecisionLog::open(dir.path()).unwrap();
            log.save_pause(&pause(Scope::Policy("web".into()), Direction::Down, "a"))
                .unwrap();
            log.save_pause(&pause(Scope::Policy("web".into()), Direction::Down, "b"))
                .unwrap();
            log.save_pause(&pause(Scope::Proxy("link-x".into()), Direction::Up, "c"))
                .unwrap();
            log.save_pause(&pause(Scope::Proxy("link-x".into()), Direction::Down, "d"))
                .unwrap();
            log.remove_pause(&pause(Scope::Proxy("link-x".into()), Direction::Down, ""))
                .unwrap();
        }
        let log = DecisionLog::open_waiting(dir.path(), std::time::Duration::from_secs(5)).unwrap();
        let mut reasons: Vec<String> = log
            .load_pauses()
            .unwrap()
            .into_iter()
            .map(|p| p.reason)
            .collect();
        reasons.sort();
        assert_eq!(reasons, ["b", "c"]);
        // The pauses are not controller states.
        assert!(log.load_all_states().unwrap().is_empty());
    }

    #[test]
    fn keys_sort_in_time_order() {
        let times = [
            0i64,
            1,
            255,
            256,
            65_535,
            65_536,
            1_795_939_200_000,
            9_999_999_999_999,
        ];
        let keys: Vec<Vec<u8>> = times
            .iter()
            .map(|&t| key_of(t, &decision_id(Timestamp(t), "link-a", 0)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let id = decision_id(Timestamp(1_795_939_200_123), "link-a", 7);
        assert_eq!(key_for_id(&id), Some(key_of(1_795_939_200_123, &id)));
        assert_eq!(key_for_id("nope"), None);
    }

    #[test]
    fn state_keys_do_not_collide() {
        assert_ne!(state_key("ab", "c"), state_key("a", "bc"));
    }
}
