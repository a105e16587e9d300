//! Diagnostics: a problem with its place, rendered as `file:line:col: message`. Shared by
//! the TOML input files (policies, the fleet, the config): [`collect`] holds the TOML
//! reading that collects every problem of a file.

pub mod collect;

use std::fmt;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests {
    use super::*;

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
