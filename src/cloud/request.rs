//! Building one signed API request, purely: endpoint, action, body and time in; URL,
//! headers and body out. The transport (client.rs) only sends what this returns.

use std::net::IpAddr;

use super::credentials::Credentials;
use super::signer::{self, SignInput};

/// The GAAP service name (the domain prefix, signed in the credential scope).
pub const SERVICE: &str = "gaap";
/// The API version this crate speaks.
pub const VERSION: &str = "2018-05-29";
/// The public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://gaap.tencentcloudapi.com";
/// What the official SDKs send (no charset; a charset would have to be signed too).
pub const CONTENT_TYPE: &str = "application/json";

/// A validated endpoint: https, or http only on a loopback host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host[:port]/`
    pub url: String,
    /// `host[:port]` exactly as sent in the Host header and signed.
    pub host: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint `{0}` is not a URL (write e.g. https://gaap.tencentcloudapi.com)")]
    Invalid(String),
    #[error(
        "endpoint `{0}` is not https; plain http is only allowed for loopback (127.0.0.1, ::1, localhost)"
    )]
    NotHttps(String),
    #[error("endpoint `{0}` must be scheme://host[:port] without a path, query or user info")]
    Extra(String),
}

/// Whether a URL host (as `Url::host_str` spells it: IPv6 in brackets) is loopback.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

impl Endpoint {
    /// Parses `https://gaap.tencentcloudapi.com` or, for a local sandbox,
    /// `http://127.0.0.1:9099`. A bare `host[:port]` means https.
    pub fn parse(input: &str) -> Result<Endpoint, EndpointError> {
        let s = input.trim();
        let with_scheme = if s.contains("://") {
            s.to_string()
        } else {
            format!("https://{s}")
        };
        let url = reqwest::Url::parse(&with_scheme)
            .map_err(|_| EndpointError::Invalid(input.to_string()))?;
        let host_str = url
            .host_str()
            .ok_or_else(|| EndpointError::Invalid(input.to_string()))?;
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || url.path() != "/"
        {
            return Err(EndpointError::Extra(input.to_string()));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host_str) => {}
            "http" => return Err(EndpointError::NotHttps(input.to_string())),
            _ => return Err(EndpointError::Invalid(input.to_string())),
        }
        let host_port = match url.port() {
            Some(p) => format!("{host_str}:{p}"),
            None => host_str.to_string(),
        };
        Ok(Endpoint {
            url: format!("{}://{host_port}/", url.scheme()),
            host: host_port,
        })
    }
}

/// One request ready to send. `Debug` redacts `X-TC-Token`.
#[derive(Clone)]
pub struct PreparedRequest {
    pub url: String,
    /// In the order the SDK sends them. Contains the Authorization (not a secret: it is a
    /// one-time HMAC) and, with a session token, `X-TC-Token` (a secret: never log headers).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if *k == "X-TC-Token" {
                        "<redacted>"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("PreparedRequest")
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// Builds and signs a POST of `body` (JSON) for `action`. `region` may be empty (the
/// header is then omitted, as the SDK does). `timestamp` is Unix seconds.
pub fn build(
    endpoint: &Endpoint,
    credentials: &Credentials,
    action: &str,
    region: Option<&str>,
    body: Vec<u8>,
    timestamp: i64,
) -> PreparedRequest {
    let signed_headers = [
        ("content-type", CONTENT_TYPE),
        ("host", endpoint.host.as_str()),
    ];
    let sig = signer::sign(
        credentials,
        &SignInput {
            service: SERVICE,
            method: "POST",
            query: "",
            headers: &signed_headers,
            payload: &body,
            timestamp,
        },
    );
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Content-Type", CONTENT_TYPE.to_string()),
        ("Host", endpoint.host.clone()),
        ("X-TC-Action", action.to_string()),
        ("X-TC-Timestamp", timestamp.to_string()),
        ("X-TC-Version", VERSION.to_string()),
    ];
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        headers.push(("X-TC-Region", r.to_string()));
    }
    if let Some(t) = credentials.token() {
        headers.push(("X-TC-Token", t.to_string()));
    }
    headers.push((
        "X-TC-RequestClient",
        concat!("gaap-autoscaler/", env!("CARGO_PKG_VERSION")).to_string(),
    ));
    headers.push(("Authorization", sig.authorization));
    PreparedRequest {
        url: endpoint.url.clone(),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let ok = [
            (
                "https://gaap.tencentcloudapi.com",
                "gaap.tencentcloudapi.com",
                "https://gaap.tencentcloudapi.com/",
            ),
            (
                "gaap.tencentcloudapi.com",
                "gaap.tencentcloudapi.com",
                "https://gaap.tencentcloudapi.com/",
            ),
            (
                "https://gaap.tencentcloudapi.com:443/",
                "gaap.tencentcloudapi.com",
                "https://gaap.tencentcloudapi.com/",
            ),
            (
                "https://gaap.example:8443",
                "gaap.example:8443",
                "https://gaap.example:8443/",
            ),
            (
                "http://127.0.0.1:9099",
                "127.0.0.1:9099",
                "http://127.0.0.1:9099/",
            ),
            ("http://127.8.9.10:80", "127.8.9.10", "http://127.8.9.10/"),
            ("http://localhost:1", "localhost:1", "http://localhost:1/"),
            ("http://[::1]:5000", "[::1]:5000", "http://[::1]:5000/"),
        ];
        for (input, host, url) in ok {
            let e = Endpoint::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((e.host.as_str(), e.url.as_str()), (host, url), "{input}");
        }
        let bad = [
            "http://gaap.tencentcloudapi.com",
            "http://10.0.0.1:9099",
            "ftp://127.0.0.1",
            "https://h/path",
            "https://u:p@h",
            "::::",
        ];
        for input in bad {
            assert!(Endpoint::parse(input).is_err(), "{input} should be refused");
        }
    }

    #[test]
    fn build_signs_host_with_port_and_token_unsigned() {
        let ep = Endpoint::parse("http://127.0.0.1:38547").unwrap();
        let c = Credentials::new("AKIDx", "key", Some("tok==".into())).unwrap();
        let r = build(
            &ep,
            &c,
            "DescribeProxies",
            None,
            b"{}".to_vec(),
            1_795_925_378,
        );
        let get = |k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("Host"), Some("127.0.0.1:38547"));
        assert_eq!(get("X-TC-Token"), Some("tok=="));
        assert_eq!(get("X-TC-Region"), None);
        let auth = get("Authorization").unwrap();
        assert!(auth.contains("SignedHeaders=content-type;host,"), "{auth}");
        assert!(
            auth.contains("Credential=AKIDx/2026-11-29/gaap/tc3_request"),
            "{auth}"
        );
        assert!(!auth.contains("key"));
        let debug = format!("{r:?}");
        assert!(
            !debug.contains("tok==") && debug.contains("<redacted>"),
            "{debug}"
        );
    }
}
