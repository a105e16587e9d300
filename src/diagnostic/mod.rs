//! Diagnostics: a problem with its place, rendered as `file:line:col: message`. Shared by
//! the TOML input files (policies, the fleet, the config): [`collect`] holds the TOML
//! reading that collects every problem of a file.

pub mod collect;

use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests {
    use super::*;

    /// The index agrees with the scan from the start at every offset (ASCII, multi-byte
    /// chars, chunk boundaries, empty lines, past the end).
    #[test]
    fn the_line_index_agrees_with_a_scan() {
        let long = "é".repeat(LineIndex::CHUNK) + "x\n";
        let texts = ["", "a", "ab\ncd\n\nef", "é\nàb\n", long.as_str()];
        for text in texts {
            let index = LineIndex::new(text);
            for offset in
                (0..=text.len() + 1).filter(|o| text.is_char_boundary(*o.min(&text.len())))
            {
                assert_eq!(
                    index.line_col(offset),
                    Diagnostic::line_col(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    #[test]
    fn rendering_caps_the_count_and_says_how_many_are_left_out() {
        let p = Path::new("p.toml");
        let diags: Vec<Diagnostic> = (1..=5)
            .map(|i| {
                let d = Diagnostic::error(p, i, 1, format!("e{i}"));
                if i == 5 { d.as_warning() } else { d }
            })
            .collect();
        assert_eq!(render_capped(&diags, 10), render(&diags));
        assert_eq!(
            render_capped(&diags, 2),
            "p.toml:1:1: e1\np.toml:2:1: e2\n... and 3 more not shown (2 errors, 1 warnings)"
        );
    }

    /// A capped sink keeps what sorting everything and taking the first ones keeps
    /// (places repeated, out of order, ties in the order reported), and counts the rest.
    #[test]
    fn a_capped_sink_keeps_the_first_in_file_order() {
        let p = Path::new("p.toml");
        let all: Vec<Diagnostic> = (0..1000usize)
            .map(|i| {
                let line = (i * 7919) % 97 + 1; // scrambled, each line about ten times
                let d = Diagnostic::error(p, line, 1 + i % 2, format!("d{i}"));
                if i % 3 == 0 { d.as_warning() } else { d }
            })
            .collect();
        let mut sorted = all.clone();
        sorted.sort_by_key(|d| (d.line, d.col));
        for limit in [0, 1, 3, 100, 999, 1000, 5000] {
            let mut sink = Sink::new(limit);
            for d in &all {
                sink.push(d.clone());
            }
            assert!(sink.has_errors());
            let (kept, omitted) = sink.finish();
            let n = limit.min(all.len());
            assert_eq!(kept, sorted[..n], "limit {limit}");
            let (e, w) = count(&sorted[n..]);
            assert_eq!(
                omitted,
                Omitted {
                    errors: e,
                    warnings: w
                },
                "limit {limit}"
            );
            // Rendered as if everything had been kept.
            if limit >= 100 {
                assert_eq!(
                    render_capped_more(&kept, 100, omitted),
                    render_capped(&sorted, 100),
                    "limit {limit}"
                );
            }
        }
        let (kept, omitted) = Sink::all().finish();
        assert!(kept.is_empty() && omitted.total() == 0);
    }

    #[test]
    fn invalid_utf8_is_placed_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&[u8], (usize, usize))] = &[
            (b"\xff", (1, 1)),
            (b"name = \"a\"\nmode = \"\xc3\x28\"\n", (2, 9)),
            (b"\xc3\xa9 = 1\n\xc3\xa9\xfe", (2, 2)),
        ];
        for (i, (bytes, want)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.toml"));
            std::fs::write(&path, bytes).unwrap();
            let d = read_text(&path).unwrap_err();
            assert_eq!((d.line, d.col), *want, "{d}");
            assert!(d.message.contains("not UTF-8"), "{d}");
        }
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, "é = 1\n").unwrap();
        assert_eq!(read_text(&ok).unwrap(), "é = 1\n");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line and column (0 when the problem has no place, e.g. an unreadable file).
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            severity: Severity::Error,
            message: message.into(),
            help: None,
        }
    }
    pub fn warning(file: &Path, line: usize, col: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, line, col, message)
        }
    }
    /// An error at byte `offset` of `text` (the file's contents).
    pub fn at(text: &str, file: &Path, offset: usize, message: impl Into<String>) -> Diagnostic {
        let (line, col) = Diagnostic::line_col(text, offset);
        Diagnostic::error(file, line, col, message)
    }
    /// The same problem, as a warning (reported, but does not fail validation).
    pub fn as_warning(mut self) -> Diagnostic {
        self.severity = Severity::Warning;
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn io(file: &Path, err: &std::io::Error) -> Diagnostic {
        Diagnostic::error(file, 0, 0, format!("cannot read file: {err}"))
    }
    /// 1-based (line, col) of a byte offset in `text` (col counts chars).
    pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() + 1;
        (line, col)
    }
}

/// Byte offsets → (line, col) in time independent of the file's size: line starts are
/// found by binary search, and columns (in chars) from a count of chars kept every
/// [`LineIndex::CHUNK`] bytes, so a 10 MB one-line file costs no more per place.
#[derive(Clone, Debug)]
pub struct LineIndex<'a> {
    text: &'a [u8],
    starts: Vec<usize>,
    chars_before_chunk: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub const CHUNK: usize = 4096;

    pub fn new(text: &'a str) -> LineIndex<'a> {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut chars_before_chunk = Vec::with_capacity(bytes.len() / Self::CHUNK + 1);
        let mut n = 0;
        for chunk in bytes.chunks(Self::CHUNK) {
            chars_before_chunk.push(n);
            n += count_chars(chunk);
        }
        chars_before_chunk.push(n);
        LineIndex {
            text: bytes,
            starts,
            chars_before_chunk,
        }
    }

    /// Chars in `text[..offset]`.
    fn chars_before(&self, offset: usize) -> usize {
        let c = offset / Self::CHUNK;
        let from = c * Self::CHUNK;
        self.chars_before_chunk[c] + count_chars(&self.text[from..offset])
    }

    /// 1-based (line, col) of a byte offset (col counts chars), as [`Diagnostic::line_col`].
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset);
        let start = self.starts[line - 1];
        // A short way into the line: count its chars (the usual case, a few bytes); a long
        // one: from the chunk counts, so a place costs at most two chunks' scans.
        let chars = if offset - start <= Self::CHUNK {
            count_chars(&self.text[start..offset])
        } else {
            self.chars_before(offset) - self.chars_before(start)
        };
        (line, chars + 1)
    }

    /// An error at byte `offset`.
    pub fn diag(&self, file: &Path, offset: usize, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(offset);
        Diagnostic::error(file, line, col, message)
    }
}

/// Chars in UTF-8 `bytes` (the bytes that are not continuation bytes).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b & 0xC0 != 0x80).count()
}

/// The first `limit` diagnostics, one per line (as [`render`]), then a line counting the
/// ones left out: what `validate` prints for a file with thousands of problems.
pub fn render_capped(diags: &[Diagnostic], limit: usize) -> String {
    render_capped_more(diags, limit, Omitted::default())
}

/// As [`render_capped`], counting `more` diagnostics that were never kept among the ones
/// left out.
pub fn render_capped_more(diags: &[Diagnostic], limit: usize, more: Omitted) -> String {
    let mut out = render(&diags[..diags.len().min(limit)]);
    let (e, w) = count(&diags[diags.len().min(limit)..]);
    let (e, w) = (e + more.errors, w + more.warnings);
    if e + w > 0 {
        out.push_str(&format!(
            "\n... and {} more not shown ({e} errors, {w} warnings)",
            e + w
        ));
    }
    out
}

/// Diagnostics counted but not kept (beyond a [`Sink`]'s limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    pub errors: usize,
    pub warnings: usize,
}

impl Omitted {
    pub fn total(self) -> usize {
        self.errors + self.warnings
    }
    pub fn add(&mut self, other: Omitted) {
        self.errors += other.errors;
        self.warnings += other.warnings;
    }
}

/// Where a diagnostic sorts: its place, then the order it was reported in.
type SortKey = (usize, usize, u64);

/// Collects a file's diagnostics, keeping the first `limit` in the order of the file (by
/// line and column, then as reported) and counting every one. A file with 700,000
/// problems keeps 100 and builds no more than a few hundred: [`Sink::admits`] tells
/// before a diagnostic is built whether it could be kept.
#[derive(Debug)]
pub struct Sink {
    limit: usize,
    kept: Vec<(SortKey, Diagnostic)>,
    /// The last key kept when `kept` was last cut to `limit` (the bar to get in).
    bar: Option<SortKey>,
    seq: u64,
    errors: usize,
    warnings: usize,
}

impl Sink {
    /// Keeps every diagnostic.
    pub fn all() -> Sink {
        Sink::new(usize::MAX)
    }
    /// Keeps the first `limit` in the order of the file.
    pub fn new(limit: usize) -> Sink {
        Sink {
            limit,
            kept: Vec::new(),
            bar: None,
            seq: 0,
            errors: 0,
            warnings: 0,
        }
    }
    /// Whether a diagnostic at (line, col), reported now, could be among the kept ones.
    pub fn admits(&self, line: usize, col: usize) -> bool {
        self.limit > 0 && self.bar.is_none_or(|bar| (line, col, self.seq) < bar)
    }
    /// Counts a diagnostic, and keeps it if it may be among the first `limit`.
    pub fn push(&mut self, d: Diagnostic) {
        if self.admits(d.line, d.col) {
            let key = (d.line, d.col, self.seq);
            self.count(d.severity);
            self.kept.push((key, d));
            if self.kept.len() >= self.limit.saturating_mul(2) {
                self.cut();
            }
        } else {
            self.count(d.severity);
        }
    }
    /// Counts a diagnostic that [`Sink::admits`] turned away, without building it.
    pub fn count(&mut self, severity: Severity) {
        self.seq += 1;
        match severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
        }
    }
    /// Counts diagnostics that were never kept (beyond an earlier sink's limit: they
    /// come after its kept ones, so after this one's too).
    pub fn add_omitted(&mut self, omitted: Omitted) {
        self.errors += omitted.errors;
        self.warnings += omitted.warnings;
        self.seq += omitted.total() as u64;
    }
    /// How many diagnostics were reported so far, kept or not.
    pub fn reported(&self) -> u64 {
        self.seq
    }
    fn cut(&mut self) {
        self.kept.sort_by_key(|(k, _)| *k);
        self.kept.truncate(self.limit);
        self.bar = self.kept.last().map(|(k, _)| *k);
    }
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }
    /// The kept diagnostics in the order of the file, and how many more there were.
    pub fn finish(mut self) -> (Vec<Diagnostic>, Omitted) {
        self.cut();
        let kept: Vec<Diagnostic> = self.kept.into_iter().map(|(_, d)| d).collect();
        let (e, w) = count(&kept);
        let omitted = Omitted {
            errors: self.errors - e,
            warnings: self.warnings - w,
        };
        (kept, omitted)
    }
}

/// Reads a text file. Not UTF-8: an error at the line and column of the first bad byte.
pub fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| Diagnostic::io(path, &e))?;
    String::from_utf8(bytes).map_err(|e| {
        let bad = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        // The valid prefix is UTF-8: count its lines and the chars of the last one.
        let valid = std::str::from_utf8(&bytes[..bad]).unwrap_or_default();
        let (line, col) = Diagnostic::line_col(valid, bad);
        Diagnostic::error(
            path,
            line,
            col,
            format!("the file is not UTF-8: invalid byte 0x{:02X}", bytes[bad]),
        )
        .with_help("save the file as UTF-8 (TOML files must be UTF-8)")
    })
}

/// Every diagnostic on its own line (`file:line:col: message`), as the commands print them.
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Counts (errors, warnings).
pub fn count(diags: &[Diagnostic]) -> (usize, usize) {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    (errors, diags.len() - errors)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        if self.line == 0 {
            write!(f, "{}: {sev}{}", self.file.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {sev}{}",
                self.file.display(),
                self.line,
                self.col,
                self.message
            )?;
        }
        if let Some(h) = &self.help {
            write!(f, "\n  help: {h}")?;
        }
        Ok(())
    }
}
