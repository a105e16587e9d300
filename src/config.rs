//! The daemon config file `gaap-autoscaler.toml`.
