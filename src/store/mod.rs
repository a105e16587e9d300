//! The decision log: every decision of the daemon (changed or held) with its inputs,
//! reasons, mode and outcome, durable in sled 0.34.7 before the daemon acts on it.
//!
//! - [`record`]: [`DecisionRecord`] (format version 1), its id (= the ClientToken), the
//!   outcome strings and [`LogFilter`].
//! - [`log`]: [`DecisionLog`], the sled-backed store (decisions, pending index,
//!   controller state).
//! - [`explain`]: `log show`'s stage-by-stage explanation, a pure function of a record.
//! - [`query`]: the read endpoint the daemon mounts (`/log/decisions`), so `log`
//!   commands can read while the daemon holds the data dir.
//! - [`cmd`]: `gaap-autoscaler log list|show|export`.

pub mod budget;
pub mod cmd;
pub mod explain;
pub mod log;
pub mod query;
pub mod record;

use std::path::PathBuf;
use std::time::Duration;

/// How long decisions are kept when the config does not say (90 days); the daemon prunes
/// with [`DecisionLog::prune`].
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

pub use explain::explain;
pub use log::DecisionLog;
pub use query::{filter_from_query, handle_log_request, handle_log_request_capped};
pub use record::{DecisionRecord, LogFilter, Outcome, OutcomeUpdate, RecordContext, decision_id};

/// What can go wrong with the decision log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data dir (sled allows one process at a time).
    #[error(
        "the decision log in {} is locked: another gaap-autoscaler (probably the daemon) holds it; sled allows one process at a time",
        dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("cannot open the decision log in {}: {source}", dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("decision log storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("no decision with id `{0}`")]
    NotFound(String),
    #[error("decision `{0}` is not a hold: only holds are rewritten in place")]
    NotHeld(String),
    #[error("decision `{id}` is unreadable (corrupt or foreign record): {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("decision `{id}` has record version {v}; this gaap-autoscaler reads version 1")]
    UnsupportedVersion { id: String, v: u32 },
    #[error("cannot encode a decision record: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "no free decision id left for `{0}` (65,536 decisions for one proxy in one millisecond)"
    )]
    IdSpaceExhausted(String),
}
