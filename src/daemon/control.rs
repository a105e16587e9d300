//! The control endpoint (issue 12): `POST /control/pause`, `POST /control/resume`,
//! `GET /control/status` on the daemon's HTTP server, and the wire types the
//! `pause` / `resume` / `status` commands send and read.
//!
//! Who may change state: a configured bearer token (`[engine] control_token`, or
//! `GAAP_AUTOSCALER_CONTROL_TOKEN`) is required whenever one is set; without one, the
//! changing requests are accepted only when the daemon listens on loopback (otherwise
//! 401). The token is compared in constant time and never logged. Reads (`status`) stay
//! open, like `/metrics` and the decision log.

use serde::{Deserialize, Serialize};

use crate::config::ControlToken;
use crate::core::{ManualChange, Pause, Paused};
use crate::time::Timestamp;

pub const PAUSE_PATH: &str = "/control/pause";
pub const RESUME_PATH: &str = "/control/resume";
pub const STATUS_PATH: &str = "/control/status";

/// `POST /control/pause`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRequest {
    pub policy: String,
    /// One proxy (in any policy) instead of the whole policy.
    #[serde(default)]
    pub proxy: Option<String>,
    /// `up`, `down` or `both` (or `scale_up`, `scale_down`).
    pub direction: String,
    /// How long (`2h`); none: until resumed.
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub reason: String,
    /// Who asks (user@host).
    #[serde(default)]
    pub by: String,
}

/// `POST /control/resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRequest {
    pub policy: String,
    #[serde(default)]
    pub proxy: Option<String>,
    /// Default `both`.
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub by: String,
}

/// A manual hold in force (an operator's change seen by the engine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldStatus {
    pub policy: String,
    pub proxy: String,
    /// None: until resumed (`manual_hold = "forever"`).
    pub until: Option<Timestamp>,
    pub change: Option<ManualChange>,
}

/// A policy file's own pause (`paused = true`, `[pause] directions`): changed by editing
/// the file, not by `resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticPause {
    pub policy: String,
    pub directions: Paused,
}

/// `GET /control/status`, and the answer to pause and resume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStatus {
    pub now: Timestamp,
    /// The run-time pauses in force.
    pub pauses: Vec<Pause>,
    pub static_pauses: Vec<StaticPause>,
    pub manual_holds: Vec<HoldStatus>,
    /// Resume only: how many pauses and manual holds it ended.
    #[serde(default)]
    pub resumed: usize,
}

/// Why a control request was refused (the HTTP status says which kind).
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the decision log cannot keep it: {0}")]
    Store(#[from] crate::store::StoreError),
    /// Under `[ha]`: taken here, but not shared with the other daemons.
    #[error("taken by this daemon, but not shared with the others (etcd): {0}; send it again")]
    Shared(String),
}

impl ControlError {
    pub fn status(&self) -> u16 {
        match self {
            ControlError::BadRequest(_) => 400,
            ControlError::NotFound(_) => 404,
            ControlError::Store(_) | ControlError::Shared(_) => 503,
        }
    }
}

/// What the HTTP layer needs of the engine (not generic, so `HttpState` stays plain).
pub trait ControlPort: Send + Sync {
    /// Under `[ha]` the pause is shared with every daemon (etcd) before it answers.
    fn pause(
        &self,
        req: PauseRequest,
    ) -> futures_util::future::BoxFuture<'_, Result<ControlStatus, ControlError>>;
    fn resume(
        &self,
        req: ResumeRequest,
    ) -> futures_util::future::BoxFuture<'_, Result<ControlStatus, ControlError>>;
    fn status(&self) -> ControlStatus;
}

/// Who may send changing requests.
#[derive(Clone, Debug)]
pub enum Access {
    /// A token is configured: `Authorization: Bearer <token>` is required.
    Token(ControlToken),
    /// No token, listening on loopback: open to local processes.
    Loopback,
    /// No token, listening off loopback: refused (401).
    Refused,
}

impl Access {
    pub fn new(token: Option<ControlToken>, listen: std::net::SocketAddr) -> Access {
        match token {
            Some(t) => Access::Token(t),
            None if listen.ip().is_loopback() => Access::Loopback,
            None => Access::Refused,
        }
    }

    /// Ok, or the 401 message. `authorization` is the header's value, if any.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), &'static str> {
        match self {
            Access::Loopback => Ok(()),
            Access::Refused => Err(
                "the control endpoint listens off loopback and no control token is configured: set [engine] control_token or GAAP_AUTOSCALER_CONTROL_TOKEN",
            ),
            Access::Token(t) => {
                let given = authorization
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .map(str::trim);
                match given {
                    Some(g) if constant_time_eq(g.as_bytes(), t.expose().as_bytes()) => Ok(()),
                    Some(_) => Err("wrong bearer token"),
                    None => Err("a bearer token is required (Authorization: Bearer ...)"),
                }
            }
        }
    }
}

/// Equal bytes, in a time that depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rules() {
        let tok = ControlToken::new("0123456789abcdef0123").unwrap();
        let lo: std::net::SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let any: std::net::SocketAddr = "0.0.0.0:9464".parse().unwrap();
        let cases: [(Access, Option<&str>, bool); 8] = [
            (Access::new(None, lo), None, true),
            (Access::new(None, any), None, false),
            (
                Access::new(None, any),
                Some("Bearer 0123456789abcdef0123"),
                false,
            ),
            (Access::new(Some(tok.clone()), any), None, false),
            (
                Access::new(Some(tok.clone()), any),
                Some("Bearer 0123456789abcdef0124"),
                false,
            ),
            (
                Access::new(Some(tok.clone()), any),
                Some("0123456789abcdef0123"),
                false,
            ),
            (
                Access::new(Some(tok.clone()), any),
                Some("Bearer 0123456789abcdef0123"),
                true,
            ),
            // A configured token is required on loopback too.
            (Access::new(Some(tok), lo), None, false),
        ];
        for (i, (access, header, ok)) in cases.into_iter().enumerate() {
            assert_eq!(access.check(header).is_ok(), ok, "case {i}");
        }
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let tok = ControlToken::new("s3cr3t-token-value-xyz").unwrap();
        let a = Access::new(Some(tok), "0.0.0.0:1".parse().unwrap());
        assert!(!format!("{a:?}").contains("s3cr3t"));
    }
}
