//! Prometheus as the metric source.
