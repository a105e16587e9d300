//! HTTP rules shared by the GAAP client and the Prometheus client: no redirects, and
//! answers read with a size limit (streamed, so an endless body costs at most the limit).

/// The most the GAAP client reads of one answer. A DescribeProxies page of 100 proxies is
/// about 150 KB; 8 MiB leaves room and still bounds memory.
pub const MAX_API_BODY: usize = 8 * 1024 * 1024;

/// The most the Prometheus client reads of one answer. A range query of 11,000 points for
/// a few hundred series is tens of MB; 64 MiB bounds a hostile or mistaken server.
pub const MAX_PROMETHEUS_BODY: usize = 64 * 1024 * 1024;

/// The redirect policy of every client: none. A signed call must reach the host it was
/// signed for, credentials (X-TC-Token, basic auth) must never go elsewhere, and following
/// a redirect would sidestep the "plain http only on loopback" check. A 3xx answer is
/// returned as it is and reported as an error by the caller.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::none()
}

/// Whether an HTTP status is a redirect (the answer is refused, not followed).
pub fn is_redirect(status: u16) -> bool {
    (300..400).contains(&status)
}

/// The `Location` of a redirect answer, for the error message (at most 200 characters).
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_else(|| "(no Location)".to_string())
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed while reading.
    Network(reqwest::Error),
    /// The body is longer than the limit (by its Content-Length or as it streamed in).
    TooLarge { limit: usize },
}

/// Reads the whole body of `resp`, at most `limit` bytes: a longer body (announced or
/// streamed) stops reading at once with [`BodyError::TooLarge`].
pub async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Network)? {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A byte count for messages: `8 MiB`, `512 KiB`, `100 bytes`.
pub fn format_bytes(n: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_and_redirect_statuses() {
        let cases = [
            (8 * 1024 * 1024, "8 MiB"),
            (512 * 1024, "512 KiB"),
            (1500, "1500 bytes"),
            (0, "0 bytes"),
        ];
        for (n, want) in cases {
            assert_eq!(format_bytes(n), want);
        }
        let statuses = [
            (200, false),
            (299, false),
            (301, true),
            (307, true),
            (308, true),
            (400, false),
        ];
        for (s, want) in statuses {
            assert_eq!(is_redirect(s), want, "{s}");
        }
    }
}
