//! How the binary meets the terminal: colour only on a terminal and never with `NO_COLOR`,
//! box-drawing and arrows only in a UTF-8 locale (or never, with `--ascii`), and a reader
//! that went away (`| head`) ends the command quietly. The rules are pure functions of what
//! the process sees; `main` applies them once.

use std::sync::atomic::{AtomicBool, Ordering};

static ASCII: AtomicBool = AtomicBool::new(false);

/// Colour for log lines: only when they go to a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn colour(is_terminal: bool, no_color: Option<&str>) -> bool {
    is_terminal && no_color.is_none_or(str::is_empty)
}

/// Whether the locale is UTF-8: the first non-empty of `LC_ALL`, `LC_CTYPE`, `LANG` names
/// UTF-8 (`C.UTF-8`, `en_US.utf8`). None set counts as UTF-8 (today's terminals); a locale
/// that is set and is not UTF-8 (`C`, `POSIX`, `en_US.ISO-8859-1`) does not.
pub fn locale_is_utf8(env: impl Fn(&str) -> Option<String>) -> bool {
    match ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()))
    {
        None => true,
        Some(v) => {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        }
    }
}

/// Chooses the table glyphs for the whole process.
pub fn set_ascii(ascii: bool) {
    ASCII.store(ascii, Ordering::Relaxed);
}

pub fn ascii() -> bool {
    ASCII.load(Ordering::Relaxed)
}

/// The text as the terminal can show it: unchanged in a UTF-8 locale; with `--ascii` (or a
/// locale that is not UTF-8) the few non-ASCII glyphs the tables and explanations use are
/// replaced (`→` `->`, `×` `x`, `─` `-`, `–` `-`, `·` `*`, `↑` `^`, `↓` `v`).
pub fn fit(text: String) -> String {
    if ascii() { to_ascii(&text) } else { text }
}

fn to_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '→' => out.push_str("->"),
            '×' => out.push('x'),
            '─' | '–' | '—' => out.push('-'),
            '·' => out.push('*'),
            '↑' => out.push('^'),
            '↓' => out.push('v'),
            '…' => out.push_str("..."),
            c => out.push(c),
        }
    }
    out
}

/// An error that only says the reader of stdout went away (EPIPE).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                // serde_json keeps the io::Error inside (its `source` skips it).
                e.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            })
            == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// A panic raised by `print!`/`println!` when stdout is gone (std's message).
pub fn is_stdout_gone_panic(message: &str) -> bool {
    message.contains("failed printing to stdout") && message.contains("Broken pipe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_table() {
        for (tty, no_color, want) in [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (false, None, false),
            (false, Some("1"), false),
        ] {
            assert_eq!(colour(tty, no_color), want, "{tty} {no_color:?}");
        }
    }

    #[test]
    fn locale_table() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("LANG", "C.UTF-8")], true),
            (&[("LANG", "en_US.utf8")], true),
            (&[("LANG", "C")], false),
            (&[("LANG", "POSIX")], false),
            (&[("LANG", "en_US.ISO-8859-1")], false),
            (&[("LANG", "C.UTF-8"), ("LC_ALL", "C")], false),
            (&[("LANG", "C"), ("LC_CTYPE", "C.UTF-8")], true),
            (&[("LANG", "C"), ("LC_ALL", "")], false),
        ];
        for (vars, want) in cases {
            let get = |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            };
            assert_eq!(locale_is_utf8(get), *want, "{vars:?}");
        }
    }

    #[test]
    fn ascii_replacements() {
        assert_eq!(
            to_ascii("10→50 held ×3 ── a–b · ↑↓ …"),
            "10->50 held x3 -- a-b * ^v ..."
        );
        assert_eq!(to_ascii("plain"), "plain");
    }

    #[test]
    fn broken_pipe_is_recognised_through_context() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::new(io).context("writing the report");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("Broken pipe")));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
        assert!(is_stdout_gone_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_stdout_gone_panic("index out of bounds"));
    }
}
