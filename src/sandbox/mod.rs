//! A local stand-in for the GAAP API.
pub mod cmd;
