//! High availability on etcd (`[ha]` in the config): two or three daemons, one leader.
//!
//! - [`etcd`]: a small etcd v3 client over etcd's JSON gateway (no code generation).
//! - [`election`]: leader election on a lease, the fence (`ttl/2` without a renewal: step
//!   down), the role for /readyz and /metrics.
//! - [`shared`]: controller state, pending intents and the shared decision log in etcd,
//!   written in fenced transactions; [`shared::mirror`] copies the shared log into each
//!   daemon's sled log.
//! - [`compactor`]: the leader compacts etcd's history every `compaction_interval`.
//!
//! Without `[ha]` none of this runs: one process, the sled log alone.

pub mod compactor;
pub mod election;
pub mod etcd;
pub mod shared;

pub use election::Leadership;
pub use etcd::{Etcd, EtcdError};
pub use shared::{SharedError, SharedStore};
