//! The ten stages of DESIGN.md, in order.

use super::*;
use crate::policy::Policy;

/// Decides one proxy at `now`. Pure: same inputs, same output; never fails.
pub fn decide(
    policy: &Policy,
    proxy: &ProxyState,
    ladder: Option<&Ladder>,
    obs: &Observation,
    state: &ControllerState,
    now: Timestamp,
) -> Decision {
    let _ = (policy, ladder, obs, now);
    Decision {
        time: now,
        proxy_id: proxy.id.clone(),
        policy: policy.name.clone(),
        verdict: Verdict::Hold,
        bandwidth_from: proxy.bandwidth,
        bandwidth_to: proxy.bandwidth,
        concurrent_from: proxy.concurrent,
        concurrent_to: proxy.concurrent,
        direction: None,
        reasons: vec![],
        bandwidth: DimTrace::default(),
        concurrent: DimTrace::default(),
        next_state: state.clone(),
    }
}
