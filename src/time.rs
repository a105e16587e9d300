//! Time as a value: the decision core and the simulation never read a clock.
//!
//! [`Timestamp`] is Unix time in milliseconds (UTC). Durations in policy files are
//! written like `30s`, `10m`, `1h30m`, `2d` and parsed by [`parse_duration`].

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s * 1000)
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Self {
        Timestamp(dt.timestamp_millis())
    }
    /// RFC 3339 in UTC with second precision (millisecond precision when needed).
    pub fn to_rfc3339(self) -> String {
        let dt = self.to_datetime();
        if self.0 % 1000 == 0 {
            dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        } else {
            dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        }
    }
    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

/// The longest duration a file or flag may give: 100 years of 365 days (`36500d`).
/// Anything longer is an error, so every parsed duration fits in i64 milliseconds with
/// room to spare (no cast can wrap, no timestamp sum can overflow).
pub const MAX_DURATION: Duration = Duration::from_millis(3_153_600_000_000);

/// A duration in milliseconds as i64, saturating at `i64::MAX` (never wrapping).
pub fn millis_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis_i64(d)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis_i64(d)))
    }
}

/// Parses a time given on the command line or in a CSV file: RFC 3339
/// (`2026-11-29T08:00:00Z`, `2026-11-29T16:00:00+08:00`) or Unix seconds (`1795939200`,
/// fractions allowed).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty time".into());
    }
    if t.bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        let secs: f64 = t
            .parse()
            .map_err(|_| format!("`{t}` is not a number of Unix seconds"))?;
        if !secs.is_finite() {
            return Err(format!("`{t}` is not a finite time"));
        }
        // A float beyond i64 would saturate silently: check the range first.
        let ms = (secs * 1000.0).round();
        let representable =
            ms.abs() < 9.0e18 && Utc.timestamp_millis_opt(ms as i64).single().is_some();
        if !representable {
            return Err(format!(
                "`{t}` is out of range: Unix seconds between -8210266876800 and 8210266876799"
            ));
        }
        return Ok(Timestamp(ms as i64));
    }
    DateTime::parse_from_rfc3339(t)
        .map(|dt| Timestamp::from_datetime(&dt))
        .map_err(|e| {
            format!("`{t}` is neither RFC 3339 (2026-11-29T08:00:00Z) nor Unix seconds: {e}")
        })
}

/// Parses `500ms`, `30s`, `10m`, `1h30m`, `2d`, `1w`. A bare number is rejected: the unit
/// is always written. At most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. `30s`, `10m` or `1h`".into());
    }
    let mut total_ms: u128 = 0;
    let bytes = t.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "invalid duration `{t}`: expected a number at `{}`; write e.g. `30s`, `10m` or `1h30m`",
                &t[start..]
            ));
        }
        let n: u128 = t[start..i]
            .parse()
            .map_err(|_| format!("invalid duration `{t}`: number too large"))?;
        let ustart = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit_ms: u128 = match &t[ustart..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "" => {
                return Err(format!(
                    "invalid duration `{t}`: missing unit after `{n}` (use ms, s, m, h, d or w)"
                ));
            }
            u => {
                return Err(format!(
                    "invalid duration `{t}`: unknown unit `{u}` (use ms, s, m, h, d or w)"
                ));
            }
        };
        total_ms = total_ms.saturating_add(n.saturating_mul(unit_ms));
    }
    if total_ms > MAX_DURATION.as_millis() {
        return Err(format!(
            "invalid duration `{t}`: too large (at most 100 years, `36500d`)"
        ));
    }
    Ok(Duration::from_millis(total_ms as u64))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `45s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_written() {
        let cases: &[(&str, Option<u64>)] = &[
            ("30s", Some(30_000)),
            ("10m", Some(600_000)),
            ("1h30m", Some(5_400_000)),
            ("2d", Some(172_800_000)),
            ("500ms", Some(500)),
            ("0s", Some(0)),
            ("30", None),
            ("", None),
            ("5x", None),
            ("m", None),
            ("-5s", None),
            // Not representable as i64 milliseconds, or beyond 100 years: an error.
            ("18446744073709551615ms", None),
            ("9223372036854775807ms", None),
            ("36500d", Some(3_153_600_000_000)),
            ("36500d1ms", None),
            ("5300w", None),
        ];
        for (input, want) in cases {
            let got = parse_duration(input).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "parse_duration({input:?})");
        }
    }

    #[test]
    fn durations_round_trip() {
        for ms in [0u64, 1, 999, 1000, 61_000, 5_400_000, 90_061_001] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }

    #[test]
    fn times_parse_both_forms() {
        assert_eq!(
            parse_time("1795939200").unwrap(),
            Timestamp::from_secs(1_795_939_200)
        );
        assert_eq!(
            parse_time("2026-11-29T08:00:00+08:00").unwrap(),
            parse_time("2026-11-29T00:00:00Z").unwrap()
        );
        assert_eq!(parse_time("1.5").unwrap(), Timestamp(1500));
        assert!(parse_time("yesterday").is_err());
        // Beyond what a timestamp can hold: an error, not a saturated value.
        for t in ["1e300", "99999999999999999999", "-99999999999999999999"] {
            assert!(parse_time(t).is_err(), "{t}");
        }
        assert_eq!(Timestamp::from_secs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    }
}
