//! A small etcd v3 client over etcd's own JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
//! `/v3/lease/*`): plain HTTP with base64 keys and values, through the `reqwest` the
//! daemon already has, so the build needs no code generation (no `protoc`).
//!
//! Every request goes to the endpoint that answered last; on a connection error or a
//! timeout the next endpoint is tried (each at most once per request), so one member
//! down costs one failed attempt, not the request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A failure to use etcd.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No endpoint answered (connection refused, timeout) or every one answered 5xx.
    #[error("etcd unreachable: {0}")]
    Unreachable(String),
    /// etcd answered with an error (bad request, too many operations, ...).
    #[error("etcd refused the request: {0}")]
    Refused(String),
    /// An answer that is not what the gateway sends.
    #[error("unreadable etcd answer: {0}")]
    Decode(String),
}

/// One key-value as etcd returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A comparison of a transaction.
#[derive(Clone, Debug)]
pub enum Compare {
    /// The key's create revision equals this (0: the key does not exist).
    CreateRevision(Vec<u8>, i64),
    /// The key's last modification revision equals this (0: the key does not exist).
    ModRevision(Vec<u8>, i64),
}

/// An operation of a transaction.
#[derive(Clone, Debug)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        /// 0: no lease.
        lease: i64,
    },
    Delete(Vec<u8>),
    Get(Vec<u8>),
}

/// What a transaction did.
#[derive(Clone, Debug, Default)]
pub struct TxnResult {
    pub succeeded: bool,
    /// The store's revision after the transaction.
    pub revision: i64,
    /// The key-values read by `Op::Get`s of the branch that ran, in order.
    pub kvs: Vec<Kv>,
}

/// The most operations one transaction may hold (etcd's `--max-txn-ops` default is 128;
/// one is kept for the fence's own read).
pub const MAX_TXN_OPS: usize = 120;

pub struct Etcd {
    http: reqwest::Client,
    endpoints: Vec<String>,
    current: AtomicUsize,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = match chunk.len() {
            3 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]),
            2 => (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8),
            _ => u32::from(chunk[0]) << 16,
        };
        let digits = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, d) in digits.iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[*d as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Result<Vec<u8>, EtcdError> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return Err(EtcdError::Decode(format!("bad base64 byte {c:#x}"))),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// The end of the range of every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// int64 fields come as JSON strings (proto3 mapping); absent means 0.
fn int(v: &Value, key: &str) -> i64 {
    match v.get(key) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn kv_of(v: &Value) -> Result<Kv, EtcdError> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    Ok(Kv {
        key: unb64(text("key"))?,
        value: unb64(text("value"))?,
        create_revision: int(v, "create_revision"),
        mod_revision: int(v, "mod_revision"),
        lease: int(v, "lease"),
    })
}

fn kvs_of(v: &Value) -> Result<Vec<Kv>, EtcdError> {
    v.get("kvs")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(kv_of).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn revision_of(v: &Value) -> i64 {
    v.get("header").map_or(0, |h| int(h, "revision"))
}

#[derive(Serialize)]
struct RangeRequest {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    range_end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_mod_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_order: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_target: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
}

#[derive(Deserialize)]
struct GatewayError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
}

impl Etcd {
    /// A client of these endpoints; `timeout` bounds each request.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Etcd, EtcdError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .redirect(crate::net::redirect_policy())
            .build()
            .map_err(|e| EtcdError::Refused(format!("cannot build the HTTP client: {e}")))?;
        if endpoints.is_empty() {
            return Err(EtcdError::Refused("no etcd endpoint".into()));
        }
        Ok(Etcd {
            http,
            endpoints: endpoints.to_vec(),
            current: AtomicUsize::new(0),
        })
    }

    /// POSTs `body` to `path` at the current endpoint, moving on to the next one when it
    /// cannot be reached.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, EtcdError> {
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let at = (start + i) % n;
            let url = format!("{}{path}", self.endpoints[at]);
            let resp = match self.http.post(&url).json(body).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = format!("{}: {e}", self.endpoints[at]);
                    continue;
                }
            };
            let status = resp.status();
            let bytes = match crate::net::read_limited(resp, 64 * 1024 * 1024).await {
                Ok(b) => b,
                Err(crate::net::BodyError::Network(e)) => {
                    last = format!("{}: {e}", self.endpoints[at]);
                    continue;
                }
                Err(crate::net::BodyError::TooLarge { limit }) => {
                    return Err(EtcdError::Decode(format!(
                        "answer larger than {}",
                        crate::net::format_bytes(limit)
                    )));
                }
            };
            if status.is_server_error() {
                // A member without quorum or a leader answers 5xx: another may do better.
                let e: Option<GatewayError> = serde_json::from_slice(&bytes).ok();
                last = format!(
                    "{}: HTTP {status}: {}",
                    self.endpoints[at],
                    e.map(|e| if e.message.is_empty() {
                        e.error
                    } else {
                        e.message
                    })
                    .unwrap_or_default()
                );
                continue;
            }
            self.current.store(at, Ordering::Relaxed);
            if !status.is_success() {
                let e: Option<GatewayError> = serde_json::from_slice(&bytes).ok();
                return Err(EtcdError::Refused(format!(
                    "HTTP {status}: {}",
                    e.map(|e| if e.message.is_empty() {
                        e.error
                    } else {
                        e.message
                    })
                    .unwrap_or_default()
                )));
            }
            return serde_json::from_slice(&bytes).map_err(|e| EtcdError::Decode(e.to_string()));
        }
        Err(EtcdError::Unreachable(last))
    }

    /// Grants a lease of `ttl` (whole seconds); returns its id.
    pub async fn grant(&self, ttl: Duration) -> Result<i64, EtcdError> {
        let v = self
            .post(
                "/v3/lease/grant",
                &json!({"TTL": ttl.as_secs().max(1).to_string()}),
            )
            .await?;
        match int(&v, "ID") {
            0 => Err(EtcdError::Decode("lease grant without an ID".into())),
            id => Ok(id),
        }
    }

    /// Renews a lease once; returns the TTL granted (0: the lease has expired).
    pub async fn keep_alive(&self, lease: i64) -> Result<i64, EtcdError> {
        let v = self
            .post("/v3/lease/keepalive", &json!({"ID": lease.to_string()}))
            .await?;
        Ok(v.get("result").map_or(0, |r| int(r, "TTL")))
    }

    /// Revokes a lease (its keys are deleted).
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.post("/v3/lease/revoke", &json!({"ID": lease.to_string()}))
            .await
            .map(|_| ())
    }

    /// One key.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Kv>, EtcdError> {
        let v = self.get_one(key).await?;
        Ok(kvs_of(&v)?.into_iter().next())
    }

    /// The store's revision, read with `key` (any key; it need not exist).
    pub async fn revision(&self, key: &[u8]) -> Result<i64, EtcdError> {
        Ok(revision_of(&self.get_one(key).await?))
    }

    /// The gateway's answer to a range of one key.
    async fn get_one(&self, key: &[u8]) -> Result<Value, EtcdError> {
        let req = RangeRequest {
            key: b64(key),
            range_end: None,
            min_mod_revision: None,
            sort_order: None,
            sort_target: None,
            limit: None,
        };
        self.post("/v3/kv/range", &json!(req)).await
    }

    /// Every key under `prefix` (and the store's revision), by key.
    pub async fn get_prefix(&self, prefix: &[u8]) -> Result<(Vec<Kv>, i64), EtcdError> {
        let req = RangeRequest {
            key: b64(prefix),
            range_end: Some(b64(&prefix_end(prefix))),
            min_mod_revision: None,
            sort_order: None,
            sort_target: None,
            limit: None,
        };
        let v = self.post("/v3/kv/range", &json!(req)).await?;
        Ok((kvs_of(&v)?, revision_of(&v)))
    }

    /// The keys under `prefix` modified at or after revision `since`, oldest change first,
    /// at most `limit` of them; and the store's revision.
    pub async fn changed_since(
        &self,
        prefix: &[u8],
        since: i64,
        limit: usize,
    ) -> Result<(Vec<Kv>, i64), EtcdError> {
        let req = RangeRequest {
            key: b64(prefix),
            range_end: Some(b64(&prefix_end(prefix))),
            min_mod_revision: Some(since.max(1).to_string()),
            sort_order: Some("ASCEND"),
            sort_target: Some("MOD"),
            limit: Some(limit.to_string()),
        };
        let v = self.post("/v3/kv/range", &json!(req)).await?;
        Ok((kvs_of(&v)?, revision_of(&v)))
    }

    /// A transaction: if every comparison holds, `success` runs, else `failure`.
    pub async fn txn(
        &self,
        compare: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<TxnResult, EtcdError> {
        let cmp: Vec<Value> = compare
            .iter()
            .map(|c| match c {
                Compare::CreateRevision(key, rev) => json!({
                    "result": "EQUAL", "target": "CREATE", "key": b64(key),
                    "create_revision": rev.to_string(),
                }),
                Compare::ModRevision(key, rev) => json!({
                    "result": "EQUAL", "target": "MOD", "key": b64(key),
                    "mod_revision": rev.to_string(),
                }),
            })
            .collect();
        let ops = |ops: &[Op]| -> Vec<Value> {
            ops.iter()
                .map(|o| match o {
                    Op::Put { key, value, lease } => {
                        let mut put = json!({"key": b64(key), "value": b64(value)});
                        if *lease != 0 {
                            put["lease"] = json!(lease.to_string());
                        }
                        json!({ "request_put": put })
                    }
                    Op::Delete(key) => json!({"request_delete_range": {"key": b64(key)}}),
                    Op::Get(key) => json!({"request_range": {"key": b64(key)}}),
                })
                .collect()
        };
        let body = json!({"compare": cmp, "success": ops(success), "failure": ops(failure)});
        let v = self.post("/v3/kv/txn", &body).await?;
        let mut kvs = Vec::new();
        for r in v
            .get("responses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(range) = r.get("response_range") {
                kvs.extend(kvs_of(range)?);
            }
        }
        Ok(TxnResult {
            succeeded: v.get("succeeded").and_then(Value::as_bool).unwrap_or(false),
            revision: revision_of(&v),
            kvs,
        })
    }

    /// Compacts the store's history up to `revision` (what kube-apiserver does every few
    /// minutes): without it, every rewrite of a key stays in etcd until its quota fills.
    pub async fn compact(&self, revision: i64) -> Result<(), EtcdError> {
        self.post(
            "/v3/kv/compaction",
            &json!({"revision": revision.to_string()}),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        let cases: [(&[u8], &str); 6] = [
            (b"", ""),
            (b"a", "YQ=="),
            (b"ab", "YWI="),
            (b"abc", "YWJj"),
            (b"/p/leader", "L3AvbGVhZGVy"),
            (&[0, 0xff, 0x10, 0x80], "AP8QgA=="),
        ];
        for (raw, text) in cases {
            assert_eq!(b64(raw), text);
            assert_eq!(unb64(text).unwrap(), raw);
        }
        assert!(unb64("a*b").is_err());
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/p/"), b"/p0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn int64_fields_are_strings_or_absent() {
        let v = json!({"ID": "4111120489188233223", "TTL": 5, "x": null});
        assert_eq!(int(&v, "ID"), 4_111_120_489_188_233_223);
        assert_eq!(int(&v, "TTL"), 5);
        assert_eq!(int(&v, "x"), 0);
        assert_eq!(int(&v, "missing"), 0);
    }
}
