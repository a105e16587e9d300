//! TC3-HMAC-SHA256 signing as pure functions: request in, headers out, time passed in.
//!
//! The steps follow Tencent's "签名方法 v3" document: canonical request → string to sign →
//! derived key (`TC3`+key → date → service → `tc3_request`) → signature → Authorization
//! header. The same functions recompute signatures in the sandbox, so client and server
//! share one definition of "canonical".

use chrono::DateTime;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// The only algorithm this module speaks.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The payload hash input when the `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` header is sent.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

type HmacSha256 = Hmac<Sha256>;

/// One request to sign. `headers` are the headers to sign besides nothing else: their names
/// in any case, values as sent (they are trimmed and lowercased for the canonical form, as
/// the document says). `content-type` and `host` must be among them.
#[derive(Clone, Debug)]
pub struct SignInput<'a> {
    pub service: &'a str,
    pub method: &'a str,
    /// The canonical query string (empty for POST).
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
    /// Unix seconds, the `X-TC-Timestamp` value.
    pub timestamp: i64,
}

/// Every intermediate value of one signature (the official examples publish all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub date: String,
    pub credential_scope: String,
    pub signed_headers: String,
    pub signature: String,
    pub authorization: String,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp: the credential scope's date. Never the
/// local date (1551113065 is 2019-02-26 in UTC+8 but 2019-02-25 here).
pub fn utc_date(timestamp: i64) -> String {
    DateTime::from_timestamp(timestamp, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".to_string())
}

/// The hashed payload: SHA-256 of the body bytes.
pub fn hashed_payload(payload: &[u8]) -> String {
    sha256_hex(payload)
}

/// Canonical headers and the signed-headers list: names lowercased and sorted, values trimmed
/// and lowercased, each line ending in `\n`.
pub fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()))
        .collect();
    pairs.sort();
    let mut canonical = String::new();
    for (k, v) in &pairs {
        canonical.push_str(k);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
    }
    let signed = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    (canonical, signed)
}

/// Step 1: the canonical request, given the payload's hash (hex).
pub fn canonical_request(
    method: &str,
    query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
) -> (String, String) {
    let (canonical, signed) = canonical_headers(headers);
    let req = format!("{method}\n/\n{query}\n{canonical}\n{signed}\n{payload_hash}");
    (req, signed)
}

/// Step 2: the string to sign.
pub fn string_to_sign(timestamp: i64, credential_scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Step 3a: the signing key `HMAC(HMAC(HMAC("TC3"+key, date), service), "tc3_request")`.
pub fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let secret_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac(&secret_date, service.as_bytes());
    hmac(&secret_service, b"tc3_request")
}

/// The three derived keys, for comparison with the published intermediate values.
pub fn derived_keys(secret_key: &str, date: &str, service: &str) -> [[u8; 32]; 3] {
    let secret_date = hmac(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let secret_service = hmac(&secret_date, service.as_bytes());
    let secret_signing = hmac(&secret_service, b"tc3_request");
    [secret_date, secret_service, secret_signing]
}

/// Step 3b: the signature (lowercase hex) from a signing key.
pub fn signature_with_key(signing_key: &[u8], string_to_sign: &str) -> String {
    hex::encode(hmac(signing_key, string_to_sign.as_bytes()))
}

/// Signs with an explicit payload hash (the sandbox passes the hash of `UNSIGNED-PAYLOAD`
/// when the client asked for it).
pub fn sign_with_payload_hash(
    secret_id: &str,
    secret_key: &str,
    input: &SignInput<'_>,
    payload_hash: &str,
) -> Signature {
    let (canonical_request, signed_headers) =
        canonical_request(input.method, input.query, input.headers, payload_hash);
    let date = utc_date(input.timestamp);
    let credential_scope = format!("{date}/{}/tc3_request", input.service);
    let string_to_sign = string_to_sign(input.timestamp, &credential_scope, &canonical_request);
    let key = signing_key(secret_key, &date, input.service);
    let signature = signature_with_key(&key, &string_to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={secret_id}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Signature {
        canonical_request,
        string_to_sign,
        date,
        credential_scope,
        signed_headers,
        signature,
        authorization,
    }
}

/// Signs one request with the given credentials. Pure: the time is `input.timestamp`.
pub fn sign(credentials: &Credentials, input: &SignInput<'_>) -> Signature {
    sign_with_payload_hash(
        credentials.secret_id(),
        credentials.secret_key(),
        input,
        &hashed_payload(input.payload),
    )
}

/// A parsed `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`.
/// Returns a short reason on malformed input.
pub fn parse_authorization(value: &str) -> Result<Authorization, &'static str> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or("the algorithm must be TC3-HMAC-SHA256 followed by one space")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        } else {
            return Err("unexpected part (expected Credential=, SignedHeaders=, Signature=)");
        }
    }
    let credential = credential.ok_or("missing Credential=")?;
    let signed = signed.ok_or("missing SignedHeaders=")?;
    let signature = signature.ok_or("missing Signature=")?;
    let fields: Vec<&str> = credential.split('/').collect();
    if fields.len() != 4 || fields[3] != "tc3_request" || fields.iter().any(|f| f.is_empty()) {
        return Err("Credential must be SecretId/Date/service/tc3_request");
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("Signature must be 64 hex digits");
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.to_ascii_lowercase() != *h)
    {
        return Err("SignedHeaders must be lowercase names separated by ';'");
    }
    Ok(Authorization {
        secret_id: fields[0].to_string(),
        date: fields[1].to_string(),
        service: fields[2].to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    #[test]
    fn utc_date_not_local_date() {
        let cases = [
            (1_551_113_065, "2019-02-25"),
            (1_551_139_199, "2019-02-25"),
            (1_551_139_200, "2019-02-26"),
            (0, "1970-01-01"),
        ];
        for (ts, want) in cases {
            assert_eq!(utc_date(ts), want, "ts {ts}");
        }
    }

    #[test]
    fn payload_hash_matches_doc() {
        assert_eq!(BODY.len(), 86); // the reference notes say 84; the published hash is over these 86 bytes
        assert_eq!(
            hashed_payload(BODY.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
    }

    #[test]
    fn canonical_headers_sorted_trimmed_lowercased() {
        let (c, s) = canonical_headers(&[
            ("Host", " cvm.tencentcloudapi.com "),
            ("X-TC-Action", "DescribeInstances"),
            ("Content-Type", "application/json"),
        ]);
        assert_eq!(
            c,
            "content-type:application/json\nhost:cvm.tencentcloudapi.com\nx-tc-action:describeinstances\n"
        );
        assert_eq!(s, "content-type;host;x-tc-action");
    }

    #[test]
    fn authorization_parses_and_rejects() {
        let ok = "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        let a = parse_authorization(ok).unwrap();
        assert_eq!(a.secret_id, "AKID");
        assert_eq!(a.signed_headers, ["content-type", "host"]);
        let bad = [
            "",
            "HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host",
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=xyz",
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request,SignedHeaders=content-type;host,Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ];
        for b in bad {
            assert!(parse_authorization(b).is_err(), "{b:?} should be rejected");
        }
    }
}
