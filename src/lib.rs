//! gaap-autoscaler: an autoscaling policy engine for Tencent Cloud GAAP proxies.
//!
//! # Layout
//! - [`policy`]: policy files, parsed in two stages (raw with spans → validated).
//! - [`fleet`]: the fleet file (ladders and proxies) for `simulate` and `sandbox`.
//! - [`core`]: the pure decision function, shared by the daemon and the simulation.
//! - [`trace`]: metric histories in memory.
//! - [`metrics`]: Prometheus as the metric source (instant and range queries).
//! - [`cloud`]: TC3 signing, credentials, the GAAP client, retries, the `api` command.
//! - [`ratelimit`]: the per-action token bucket (20 requests/second, never more).
//! - [`sandbox`]: a local stand-in for the GAAP API.
//! - [`store`]: the sled decision log and the `log` command.
//! - [`daemon`]: the scheduler and `run`.
//! - [`ha`]: high availability on etcd (leader election, shared state, shared log).
//! - [`sim`]: the dry-run simulation and its report.
//! - [`tune`]: policy tuning over a history (`tune`), on the simulation's replay.
//! - [`net`]: HTTP rules shared by the clients (no redirects, bounded bodies).
//! - [`time`]: timestamps and durations as values.

pub mod cli;
pub mod cloud;
pub mod config;
pub mod core;
pub mod daemon;
pub mod diagnostic;
pub mod exit;
pub mod fleet;
pub mod ha;
pub mod metrics;
pub mod net;
pub mod par;
pub mod policy;
pub mod ratelimit;
pub mod sandbox;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod term;
pub mod time;
pub mod trace;
pub mod tune;
