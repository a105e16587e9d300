//! Raw serde types with spans (stage 1).
