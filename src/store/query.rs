//! Reading the log over HTTP while the daemon holds it (sled allows one process).
//!
//! The daemon mounts [`handle_log_request`] at:
//! - `GET /log/decisions?proxy=&policy=&since=&until=&outcome=&limit=` → a JSON array of
//!   records (the same objects as `log list --json`), oldest first;
//! - `GET /log/decisions/ID` → one record, or 404.
//!
//! `since`/`until` are absolute (RFC 3339 or Unix seconds); the `log` command turns a
//! relative `1h` into an absolute time before asking. Errors are `{"error": "..."}`.

use super::record::{LogFilter, Outcome};
use super::{DecisionLog, StoreError};
use crate::time::parse_time;

/// The path of the list endpoint; one record is at `LIST_PATH/ID`.
pub const LIST_PATH: &str = "/log/decisions";

/// Parses the query string of `GET /log/decisions` into a filter. Unknown keys and bad
/// values are errors that name them.
pub fn filter_from_query(query: &str) -> Result<LogFilter, String> {
    let mut f = LogFilter::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)?;
        let v = percent_decode(v)?;
        if v.is_empty() {
            continue;
        }
        match k.as_str() {
            "proxy" => f.proxy = Some(v),
            "policy" => f.policy = Some(v),
            "since" => f.since = Some(parse_time(&v).map_err(|e| format!("since: {e}"))?),
            "until" => f.until = Some(parse_time(&v).map_err(|e| format!("until: {e}"))?),
            "outcome" => f.outcome = Some(v.parse::<Outcome>()?),
            "limit" => {
                f.limit = Some(
                    v.parse()
                        .map_err(|_| format!("limit: `{v}` is not a whole number"))?,
                )
            }
            other => {
                return Err(format!(
                    "unknown parameter `{other}`; use proxy, policy, since, until, outcome or limit"
                ));
            }
        }
    }
    Ok(f)
}

/// The query string for a filter (inverse of [`filter_from_query`]).
pub fn filter_to_query(f: &LogFilter) -> String {
    let mut parts = Vec::new();
    let mut push = |k: &str, v: String| parts.push(format!("{k}={}", percent_encode(&v)));
    if let Some(p) = &f.proxy {
        push("proxy", p.clone());
    }
    if let Some(p) = &f.policy {
        push("policy", p.clone());
    }
    if let Some(t) = f.since {
        push("since", t.to_rfc3339());
    }
    if let Some(t) = f.until {
        push("until", t.to_rfc3339());
    }
    if let Some(o) = f.outcome {
        push("outcome", o.as_str().to_string());
    }
    if let Some(n) = f.limit {
        push("limit", n.to_string());
    }
    parts.join("&")
}

/// The most records one answer carries: the daemon builds the answer in memory, and it
/// must stay small beside the daemon's own work (10,000 records are about 20 MB of JSON).
pub const MAX_HTTP_RECORDS: usize = 10_000;

/// Answers one read of the log: `path` and `query` (without `?`) of the request →
/// (HTTP status, JSON body). Free of any HTTP framework; the daemon mounts it.
/// A list matching more than [`MAX_HTTP_RECORDS`] is refused (413) with advice.
pub fn handle_log_request(log: &DecisionLog, path: &str, query: &str) -> (u16, String) {
    handle_log_request_capped(log, path, query, MAX_HTTP_RECORDS)
}

/// [`handle_log_request`] with another cap on the records of one answer.
pub fn handle_log_request_capped(
    log: &DecisionLog,
    path: &str,
    query: &str,
    cap: usize,
) -> (u16, String) {
    let path = path.trim_end_matches('/');
    if path == LIST_PATH {
        let filter = match filter_from_query(query) {
            Ok(f) => f,
            Err(e) => return error(400, &e),
        };
        let records = match filter.limit {
            Some(n) if n > cap => {
                return error(
                    400,
                    &format!("limit {n} is above {cap}, the most the daemon answers at once"),
                );
            }
            Some(_) => log.list(&filter),
            None => log.iter(&filter).take(cap + 1).collect(),
        };
        return match records {
            Ok(records) if records.len() > cap => error(
                413,
                &format!(
                    "more than {cap} decisions match; narrow the query (--since, --until, --proxy, \
                     --policy, --outcome) or give --limit, or stop the daemon to read its data dir directly"
                ),
            ),
            Ok(records) => match serde_json::to_string(&records) {
                Ok(body) => (200, body),
                Err(e) => error(500, &e.to_string()),
            },
            Err(e) => error(500, &e.to_string()),
        };
    }
    if let Some(id) = path
        .strip_prefix(LIST_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        let id = match percent_decode(id) {
            Ok(id) => id,
            Err(e) => return error(400, &e),
        };
        return match log.get(&id) {
            Ok(Some(r)) => match serde_json::to_string(&r) {
                Ok(body) => (200, body),
                Err(e) => error(500, &e.to_string()),
            },
            Ok(None) => error(404, &StoreError::NotFound(id).to_string()),
            Err(e) => error(500, &e.to_string()),
        };
    }
    error(
        404,
        &format!("no such log endpoint `{path}`; use {LIST_PATH} or {LIST_PATH}/ID"),
    )
}

fn error(status: u16, message: &str) -> (u16, String) {
    (status, serde_json::json!({ "error": message }).to_string())
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (a space in query strings).
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in `{s}`"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    #[test]
    fn queries_parse_into_filters() {
        let cases: &[(&str, Result<LogFilter, &str>)] = &[
            ("", Ok(LogFilter::default())),
            (
                "proxy=link-a&policy=web&outcome=dry-run&limit=5",
                Ok(LogFilter {
                    proxy: Some("link-a".into()),
                    policy: Some("web".into()),
                    outcome: Some(Outcome::DryRun),
                    limit: Some(5),
                    ..LogFilter::default()
                }),
            ),
            (
                "since=2026-11-29T08%3A00%3A00Z&until=1795939260",
                Ok(LogFilter {
                    since: Some(Timestamp::from_secs(1_795_939_200)),
                    until: Some(Timestamp::from_secs(1_795_939_260)),
                    ..LogFilter::default()
                }),
            ),
            (
                "policy=my+web&proxy=",
                Ok(LogFilter {
                    policy: Some("my web".into()),
                    ..LogFilter::default()
                }),
            ),
            ("outcome=done", Err("unknown outcome")),
            ("limit=-1", Err("limit")),
            ("since=yesterday", Err("since")),
            ("color=red", Err("unknown parameter `color`")),
            ("proxy=%zz", Err("bad percent escape")),
        ];
        for (q, want) in cases {
            match (filter_from_query(q), want) {
                (Ok(got), Ok(w)) => assert_eq!(&got, w, "{q}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{q}: {e}"),
                (got, w) => panic!("{q}: got {got:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn filters_survive_the_query_round_trip() {
        let f = LogFilter {
            proxy: Some("link-a b&c=d".into()),
            policy: Some("wéb".into()),
            since: Some(Timestamp(1_795_939_200_123)),
            until: Some(Timestamp::from_secs(1_795_939_260)),
            outcome: Some(Outcome::Applied),
            limit: Some(3),
        };
        assert_eq!(filter_from_query(&filter_to_query(&f)).unwrap(), f);
    }
}
