//! The decision log (sled 0.34.7).
pub mod cmd;
