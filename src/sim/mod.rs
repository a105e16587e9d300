//! The dry-run simulation: replay policies over a metric history with a virtual clock.
pub mod cmd;
