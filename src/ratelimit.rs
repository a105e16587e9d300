//! The per-action API budget: a token bucket, at most 20 requests in any one second.
