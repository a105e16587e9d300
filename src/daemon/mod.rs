//! The daemon: scheduling, evaluation passes, acting on decisions.
pub mod cmd;
