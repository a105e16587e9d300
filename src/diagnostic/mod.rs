//! Diagnostics: a problem with its place, rendered as `file:line:col: message`. Shared by
//! the TOML input files (policies, the fleet, the config): [`collect`] holds the TOML
//! reading that collects every problem of a file.

pub mod collect;

use std::fmt;
use std::path::{Path, PathBuf};

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
