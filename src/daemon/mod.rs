//! The daemon: each policy evaluated on its schedule, decisions logged before they are
//! acted on, changes sent within the API budget.
//!
//! - [`ports`]: what the daemon needs from outside (cloud, metrics, journal) as traits.
//! - [`engine`]: one evaluation pass (fleet → signals → `core::decide` → log → act).
//! - [`schedule`]: fire times and the daemon's clock.
//! - [`supervisor`]: per-policy tasks, reload, shutdown.
//! - [`control`]: pause / resume / status (the control endpoint's rules and wire types).
//! - [`http`]: /metrics, /healthz, /readyz and the decision-log read endpoints.
//! - [`stats`]: the daemon's own Prometheus metrics.

pub mod adapters;
pub mod cmd;
pub mod control;
pub mod ctl;
pub mod engine;
pub mod http;
pub mod ports;
pub mod schedule;
pub mod stats;
pub mod supervisor;
