//! The metrics CSV of `simulate --metrics FILE`: header `timestamp,proxy_id,signal,value`,
//! one sample per line; timestamp in RFC 3339 or Unix seconds.
//!
//! A hand-rolled, streaming reader (one reused line buffer, no allocation per sample):
//! - a malformed line, an unparsable timestamp or value, or a timestamp earlier than the
//!   previous sample of the same series → an error naming `file:line`;
//! - `NaN` values are kept (they read as no data) and counted;
//! - samples of proxies not in the fleet or of signals no policy uses are skipped and
//!   counted (the report prints the counts); blank lines and `#` comments are ignored;
//!   fields may be wrapped in double quotes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::time::{Timestamp, parse_time};
use crate::trace::{Series, Trace};

pub const HEADER: &str = "timestamp,proxy_id,signal,value";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CsvError {
    #[error("{file}: cannot read: {message}")]
    Io { file: String, message: String },
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: u64,
        message: String,
    },
}

/// What the reader kept and skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsvStats {
    /// The file name, for messages.
    pub name: Option<String>,
    pub lines: u64,
    pub samples: u64,
    pub nan_values: u64,
    /// Skipped samples by unknown proxy id / unknown signal name.
    pub unknown_proxies: BTreeMap<String, u64>,
    pub unknown_signals: BTreeMap<String, u64>,
}

impl CsvStats {
    fn add(&mut self, o: CsvStats) {
        self.lines += o.lines;
        self.samples += o.samples;
        self.nan_values += o.nan_values;
        for (k, n) in o.unknown_proxies {
            *self.unknown_proxies.entry(k).or_insert(0) += n;
        }
        for (k, n) in o.unknown_signals {
            *self.unknown_signals.entry(k).or_insert(0) += n;
        }
        if self.name.is_none() {
            self.name = o.name;
        }
    }
    pub fn skipped(&self) -> u64 {
        self.unknown_proxies.values().sum::<u64>() + self.unknown_signals.values().sum::<u64>()
    }
}

/// Which samples to keep: None = keep all.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub proxies: Option<BTreeSet<String>>,
    pub signals: Option<BTreeSet<String>>,
}

/// Files larger than this are parsed by several threads, each a byte range.
const PARALLEL_BYTES: u64 = 8 << 20;

/// The most samples one metrics file may hold (16 bytes each in memory: about 1.6 GB).
pub const MAX_SAMPLES: u64 = 100_000_000;

/// Reads a metrics CSV file (large files in parallel byte ranges; the result and every
/// error are the same as a sequential read).
pub fn read_file(path: &Path, filter: &Filter) -> Result<(Trace, CsvStats), CsvError> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| CsvError::Io {
        file: name.clone(),
        message: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    let threads = crate::par::threads() as u64;
    if threads < 2 || len < PARALLEL_BYTES {
        let file = std::fs::File::open(path).map_err(io)?;
        return read(file, &name, filter);
    }
    let bounds: Vec<u64> = (0..=threads).map(|i| len * i / threads).collect();
    let chunks: Vec<Result<Chunk, CsvError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as usize)
            .map(|i| {
                let (from, to) = (bounds[i], bounds[i + 1]);
                let name = &name;
                scope.spawn(move || -> Result<Chunk, CsvError> {
                    let io = |e: std::io::Error| CsvError::Io {
                        file: name.clone(),
                        message: e.to_string(),
                    };
                    let mut file = std::fs::File::open(path).map_err(io)?;
                    // A chunk starts at the first line beginning at or after `from`.
                    let mut start = from;
                    if from > 0 {
                        file.seek(SeekFrom::Start(from - 1)).map_err(io)?;
                    }
                    let mut reader = BufReader::with_capacity(1 << 20, file);
                    if from > 0 {
                        let mut skip = Vec::new();
                        start = from - 1 + reader.read_until(b'\n', &mut skip).map_err(io)? as u64;
                    }
                    Ok(parse_chunk(
                        &mut reader,
                        name,
                        filter,
                        i == 0,
                        to.saturating_sub(start),
                        // Each reader its share, so the file stays under the cap.
                        MAX_SAMPLES / threads,
                    ))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("CSV reader thread"))
            .collect()
    });
    let mut parts = Vec::with_capacity(chunks.len());
    for c in chunks {
        parts.push(c?);
    }
    merge(parts)
}

/// Reads metrics CSV text from any reader; `name` is used in messages.
pub fn read<R: Read>(input: R, name: &str, filter: &Filter) -> Result<(Trace, CsvStats), CsvError> {
    read_capped(input, name, filter, MAX_SAMPLES)
}

/// [`read`] keeping at most `max_samples` samples: one more is an error at its line.
pub fn read_capped<R: Read>(
    input: R,
    name: &str,
    filter: &Filter,
    max_samples: u64,
) -> Result<(Trace, CsvStats), CsvError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    merge(vec![parse_chunk(
        &mut reader,
        name,
        filter,
        true,
        u64::MAX,
        max_samples,
    )])
}

/// The result of parsing a run of lines (line numbers local to the run).
struct Chunk {
    /// Series with the local line of their first sample.
    series: Vec<((String, String), Series, u64)>,
    stats: CsvStats,
    lines: u64,
    header_seen: bool,
    error: Option<CsvError>,
}

/// Joins chunks in file order: line numbers become global, series are concatenated (a
/// time going backwards across chunks is the same error as within one), and the first
/// error in the file wins.
fn merge(chunks: Vec<Chunk>) -> Result<(Trace, CsvStats), CsvError> {
    let mut trace = Trace::default();
    let mut stats = CsvStats::default();
    let mut offset = 0u64;
    let mut header_seen = false;
    let mut name = String::new();
    for chunk in chunks {
        header_seen |= chunk.header_seen;
        let shift = |e: CsvError| match e {
            CsvError::Line {
                file,
                line,
                message,
            } => CsvError::Line {
                file,
                line: line + offset,
                message,
            },
            other => other,
        };
        // The earliest error: one inside this chunk, or a seam between chunks.
        let mut first: Option<CsvError> = chunk.error.map(shift);
        let line_of = |e: &Option<CsvError>| match e {
            Some(CsvError::Line { line, .. }) => *line,
            Some(CsvError::Io { .. }) => 0,
            None => u64::MAX,
        };
        for ((proxy, signal), s, first_line) in chunk.series {
            let key = (proxy, signal);
            if let Some(prev) = trace.series.get(&key)
                && let (Some(&last), Some(&t)) = (prev.times.last(), s.times.first())
                && t < last
                && first_line + offset < line_of(&first)
            {
                let file = match &first {
                    Some(CsvError::Line { file, .. }) => file.clone(),
                    _ => name.clone(),
                };
                first = Some(CsvError::Line {
                    file,
                    line: first_line + offset,
                    message: backwards(Timestamp(t), Timestamp(last), &key.0, &key.1),
                });
            }
            let dst = trace.series.entry(key).or_default();
            if dst.times.is_empty() {
                *dst = s;
            } else {
                dst.times.extend_from_slice(&s.times);
                dst.values.extend_from_slice(&s.values);
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        if let Some(n) = chunk.stats.name.clone() {
            name = n;
        }
        stats.add(chunk.stats);
        offset += chunk.lines;
    }
    if !header_seen {
        return Err(CsvError::Line {
            file: name,
            line: offset.max(1),
            message: format!("empty file: expected the header `{HEADER}`"),
        });
    }
    Ok((trace, stats))
}

fn backwards(t: Timestamp, prev: Timestamp, proxy: &str, signal: &str) -> String {
    format!(
        "timestamp {t} is earlier than the previous sample {prev} of {proxy}/{signal}: samples of a series must be in time order"
    )
}

/// Parses lines until `byte_limit` bytes have been consumed (a line starting before the
/// limit is read whole) or the input ends.
fn parse_chunk<R: BufRead>(
    reader: &mut R,
    name: &str,
    filter: &Filter,
    expect_header: bool,
    byte_limit: u64,
    max_samples: u64,
) -> Chunk {
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut stats = CsvStats {
        name: Some(name.to_string()),
        ..CsvStats::default()
    };
    let err = |line: u64, message: String| CsvError::Line {
        file: name.to_string(),
        line,
        message,
    };
    // Series by "proxy\u{0}signal"; the last series used is cached (files are usually
    // grouped by series, or by time with few series).
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut series: Vec<((String, String), Series, u64)> = Vec::new();
    let mut key: Vec<u8> = Vec::with_capacity(64);
    let mut last_key: Vec<u8> = Vec::with_capacity(64);
    let mut last_slot: Option<Option<usize>> = None;
    let mut skip_cache: HashMap<Vec<u8>, ()> = HashMap::new();
    let mut header_seen = !expect_header;
    let mut lineno = 0u64;
    let mut consumed = 0u64;
    let mut error = None;
    while consumed < byte_limit {
        buf.clear();
        let n = match reader.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                error = Some(CsvError::Io {
                    file: name.to_string(),
                    message: e.to_string(),
                });
                break;
            }
        };
        if n == 0 {
            break;
        }
        consumed += n as u64;
        lineno += 1;
        if let Err(e) = parse_line(
            &buf,
            lineno,
            expect_header,
            filter,
            &mut header_seen,
            &mut key,
            &mut last_key,
            &mut last_slot,
            &mut index,
            &mut skip_cache,
            &mut series,
            &mut stats,
        ) {
            error = Some(err(lineno, e));
            break;
        }
        if stats.samples > max_samples {
            error = Some(err(
                lineno,
                format!(
                    "more than {max_samples} samples (about {} MB in memory): simulate a shorter period, or keep only the fleet's proxies and the policies' signals in the file",
                    max_samples * 16 / 1_000_000
                ),
            ));
            break;
        }
    }
    Chunk {
        series,
        stats,
        lines: lineno,
        header_seen: header_seen && expect_header,
        error,
    }
}

/// One line: the header, a comment/blank, or a sample. Errors are messages (the caller
/// adds file and line).
#[allow(clippy::too_many_arguments)]
fn parse_line(
    buf: &[u8],
    lineno: u64,
    expect_header: bool,
    filter: &Filter,
    header_seen: &mut bool,
    key: &mut Vec<u8>,
    last_key: &mut Vec<u8>,
    last_slot: &mut Option<Option<usize>>,
    index: &mut HashMap<Vec<u8>, usize>,
    skip_cache: &mut HashMap<Vec<u8>, ()>,
    series: &mut Vec<((String, String), Series, u64)>,
    stats: &mut CsvStats,
) -> Result<(), String> {
    let mut line: &[u8] = buf;
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    if lineno == 1 && expect_header && line.starts_with(&[0xEF, 0xBB, 0xBF]) {
        line = &line[3..];
    }
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() || trimmed.starts_with(b"#") {
        return Ok(());
    }
    if !*header_seen {
        let cols: Vec<String> = std::str::from_utf8(trimmed)
            .unwrap_or("")
            .split(',')
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if cols != ["timestamp", "proxy_id", "signal", "value"] {
            return Err(format!("expected the header `{HEADER}`"));
        }
        *header_seen = true;
        return Ok(());
    }
    stats.lines += 1;
    let mut fields = line.split(|&b| b == b',');
    let (Some(ts), Some(proxy), Some(signal), Some(value), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        let count = line.split(|&b| b == b',').count();
        return Err(format!(
            "expected 4 comma-separated fields ({HEADER}), found {count}"
        ));
    };
    let (ts, value) = (unquote(ts), unquote(value));
    let proxy = unquote(proxy);
    let signal = unquote(signal);
    if proxy.is_empty() || signal.is_empty() {
        return Err("empty proxy_id or signal".into());
    }
    let t = parse_timestamp(ts).ok_or_else(|| {
        format!(
            "unparsable timestamp `{}`: use RFC 3339 (2026-11-29T08:00:00Z) or Unix seconds",
            String::from_utf8_lossy(ts)
        )
    })?;
    let v = parse_value(value).ok_or_else(|| {
        format!(
            "unparsable value `{}`: expected a number (or NaN)",
            String::from_utf8_lossy(value)
        )
    })?;
    key.clear();
    key.extend_from_slice(proxy);
    key.push(0);
    key.extend_from_slice(signal);
    let slot = match *last_slot {
        Some(slot) if *last_key == *key => slot,
        _ => {
            let slot = if let Some(&i) = index.get(key.as_slice()) {
                Some(i)
            } else if skip_cache.contains_key(key.as_slice()) {
                None
            } else {
                let p = String::from_utf8_lossy(proxy).into_owned();
                let s = String::from_utf8_lossy(signal).into_owned();
                let proxy_ok = filter.proxies.as_ref().is_none_or(|f| f.contains(&p));
                let signal_ok = filter.signals.as_ref().is_none_or(|f| f.contains(&s));
                if proxy_ok && signal_ok {
                    index.insert(key.clone(), series.len());
                    series.push(((p, s), Series::default(), lineno));
                    Some(series.len() - 1)
                } else {
                    skip_cache.insert(key.clone(), ());
                    None
                }
            };
            last_key.clear();
            last_key.extend_from_slice(key);
            *last_slot = Some(slot);
            slot
        }
    };
    let Some(i) = slot else {
        let p = String::from_utf8_lossy(proxy);
        let s = String::from_utf8_lossy(signal);
        if filter
            .proxies
            .as_ref()
            .is_some_and(|f| !f.contains(p.as_ref()))
        {
            *stats.unknown_proxies.entry(p.into_owned()).or_insert(0) += 1;
        } else {
            *stats.unknown_signals.entry(s.into_owned()).or_insert(0) += 1;
        }
        return Ok(());
    };
    let ((sp, ss), s, _) = &mut series[i];
    if let Some(&prev) = s.times.last()
        && t.millis() < prev
    {
        return Err(backwards(t, Timestamp(prev), sp, ss));
    }
    if v.is_nan() {
        stats.nan_values += 1;
    }
    s.push(t, v);
    stats.samples += 1;
    Ok(())
}

/// A field without surrounding blanks and double quotes (`"link-a"` → `link-a`).
fn unquote(b: &[u8]) -> &[u8] {
    let b = b.trim_ascii();
    match b {
        [b'"', inner @ .., b'"'] => inner.trim_ascii(),
        _ => b,
    }
}

fn parse_value(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    s.parse::<f64>().ok()
}

/// Unix seconds (integer or fraction) or RFC 3339. Fast paths for integers and
/// `YYYY-MM-DDTHH:MM:SSZ`; anything else goes through [`parse_time`].
pub fn parse_timestamp(b: &[u8]) -> Option<Timestamp> {
    if !b.is_empty() && b.len() <= 12 && b.iter().all(u8::is_ascii_digit) {
        let mut n: i64 = 0;
        for &c in b {
            n = n * 10 + i64::from(c - b'0');
        }
        return Some(Timestamp::from_secs(n));
    }
    if b.len() == 20
        && b[19] == b'Z'
        && let Some(t) = fast_rfc3339(b)
    {
        return Some(t);
    }
    parse_time(std::str::from_utf8(b).ok()?).ok()
}

fn fast_rfc3339(b: &[u8]) -> Option<Timestamp> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut n = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(c - b'0');
        }
        Some(n)
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let days_in_month = [
        31,
        if leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > days_in_month[(m - 1) as usize]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let days = days_from_civil(y, m, d);
    Some(Timestamp::from_secs(
        days * 86_400 + hh * 3600 + mm * 60 + ss,
    ))
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Writes a trace as metrics CSV (Unix seconds), for exports, tests and benchmarks.
pub fn write<W: std::io::Write>(trace: &Trace, mut out: W) -> std::io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for ((proxy, signal), s) in &trace.series {
        for (t, v) in s.times.iter().zip(&s.values) {
            writeln!(out, "{},{proxy},{signal},{v}", t.div_euclid(1000))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Trace, CsvStats), CsvError> {
        read(text.as_bytes(), "m.csv", &Filter::default())
    }

    #[test]
    fn timestamps_fast_paths_agree_with_parse_time() {
        for s in [
            "1795939200",
            "0",
            "2026-11-29T08:00:00Z",
            "2024-02-29T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2000-03-01T00:00:00Z",
            "2026-11-29T16:00:00+08:00",
            "1795939200.5",
        ] {
            assert_eq!(parse_timestamp(s.as_bytes()), parse_time(s).ok(), "{s}");
        }
        for bad in [
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_timestamp(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn the_sample_count_is_capped_at_its_line() {
        let text = "timestamp,proxy_id,signal,value\n1,a,b,1\n2,a,b,2\n# c\n3,a,b,3\n4,a,b,4\n";
        let read = |cap| read_capped(text.as_bytes(), "m.csv", &Filter::default(), cap);
        assert_eq!(read(4).unwrap().1.samples, 4);
        let e = read(3).unwrap_err().to_string();
        assert!(e.starts_with("m.csv:6: more than 3 samples"), "{e}");
    }

    #[test]
    fn reads_samples_grouped_by_series() {
        let (trace, stats) = parse(
            "timestamp,proxy_id,signal,value\n\
             1000,link-a,bandwidth,10\n\
             2026-11-29T08:00:00Z,link-a,bandwidth,12.5\r\n\
             \n# a comment\n\
             1000,link-a,connections,NaN\n\
             \"2026-11-29T08:01:00Z\",\"link-a\",\"bandwidth\",\"13\"\n",
        )
        .unwrap();
        let s = trace.series("link-a", "bandwidth").unwrap();
        assert_eq!(
            s.times,
            vec![1_000_000, 1_795_939_200_000, 1_795_939_260_000]
        );
        assert_eq!(s.values, vec![10.0, 12.5, 13.0]);
        assert!(trace.series("link-a", "connections").unwrap().values[0].is_nan());
        assert_eq!(stats.samples, 4);
        assert_eq!(stats.nan_values, 1);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, u64, &str)] = &[
            (
                "timestamp,proxy_id,signal,value\n1000,link-a,bandwidth\n",
                2,
                "4 comma-separated",
            ),
            (
                "timestamp,proxy_id,signal,value\n1000,link-a,bandwidth,1,2\n",
                2,
                "found 5",
            ),
            (
                "timestamp,proxy_id,signal,value\n\n10x0,link-a,bandwidth,1\n",
                3,
                "unparsable timestamp",
            ),
            (
                "timestamp,proxy_id,signal,value\n1000,link-a,bandwidth,abc\n",
                2,
                "unparsable value",
            ),
            (
                "timestamp,proxy_id,signal,value\n2000,link-a,bandwidth,1\n1000,link-b,bandwidth,1\n1000,link-a,bandwidth,1\n",
                4,
                "earlier than the previous sample",
            ),
            ("time,proxy,signal,value\n", 1, "expected the header"),
            ("", 1, "empty file"),
        ];
        for (text, line, needle) in cases {
            match parse(text) {
                Err(CsvError::Line {
                    file,
                    line: l,
                    message,
                }) => {
                    assert_eq!(file, "m.csv");
                    assert_eq!(l, *line, "{text:?}: {message}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a line error, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_proxies_and_signals_are_counted_skips() {
        let filter = Filter {
            proxies: Some(["link-a".to_string()].into()),
            signals: Some(["bandwidth".to_string()].into()),
        };
        let text = "timestamp,proxy_id,signal,value\n1,link-a,bandwidth,1\n1,link-z,bandwidth,1\n2,link-z,bandwidth,1\n1,link-a,cpu,3\n";
        let (trace, stats) = read(text.as_bytes(), "m.csv", &filter).unwrap();
        assert_eq!(trace.series.len(), 1);
        assert_eq!(stats.unknown_proxies.get("link-z"), Some(&2));
        assert_eq!(stats.unknown_signals.get("cpu"), Some(&1));
        assert_eq!(stats.skipped(), 3);
    }

    #[test]
    fn write_then_read_round_trips() {
        let mut trace = Trace::default();
        trace
            .series_mut("link-a", "bandwidth")
            .push(Timestamp::from_secs(60), 1.25);
        trace
            .series_mut("link-a", "bandwidth")
            .push(Timestamp::from_secs(120), 3.0);
        trace
            .series_mut("link-b", "connections")
            .push(Timestamp::from_secs(60), 40000.0);
        let mut out = Vec::new();
        write(&trace, &mut out).unwrap();
        let (back, _) = read(out.as_slice(), "x", &Filter::default()).unwrap();
        assert_eq!(back, trace);
    }
}
