//! Credentials: the chain the official SDKs use. Environment `TENCENTCLOUD_SECRET_ID` /
//! `TENCENTCLOUD_SECRET_KEY` (+ optional `TENCENTCLOUD_TOKEN`), else the profile file
//! (`TENCENTCLOUD_CREDENTIALS_FILE`, else `~/.tencentcloud/credentials`, section `[default]`,
//! keys `secret_id`, `secret_key`, optional `token`), else tccli's credential file
//! (`~/.tccli/<TCCLI_PROFILE or default>.credential`, JSON `secretId`, `secretKey`, optional
//! `token`). When none has credentials the error lists every place tried. The key and token never appear in
//! `Debug`/`Display` output or in error messages.

use std::fmt;
use std::path::{Path, PathBuf};

pub const ENV_SECRET_ID: &str = "TENCENTCLOUD_SECRET_ID";
pub const ENV_SECRET_KEY: &str = "TENCENTCLOUD_SECRET_KEY";
pub const ENV_TOKEN: &str = "TENCENTCLOUD_TOKEN";
pub const ENV_CREDENTIALS_FILE: &str = "TENCENTCLOUD_CREDENTIALS_FILE";

/// A SecretId/SecretKey pair with an optional session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    secret_id: String,
    secret_key: String,
    token: Option<String>,
}

impl Credentials {
    /// Rejects empty values and values with surrounding whitespace (as the SDK does).
    pub fn new(
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
        token: Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        let secret_id = secret_id.into();
        let secret_key = secret_key.into();
        for (name, v) in [("secret id", &secret_id), ("secret key", &secret_key)] {
            if v.is_empty() {
                return Err(CredentialsError::Invalid(format!("the {name} is empty")));
            }
            if v.trim() != v {
                return Err(CredentialsError::Invalid(format!(
                    "the {name} has leading or trailing whitespace"
                )));
            }
        }
        let token = token.filter(|t| !t.is_empty());
        Ok(Credentials {
            secret_id,
            secret_key,
            token,
        })
    }
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The default chain, reading the process environment and the home directory.
    pub fn from_default_chain() -> Result<Credentials, CredentialsError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        resolve(|k| std::env::var(k).ok(), home.as_deref())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretId {} (key redacted)", self.secret_id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// Every place of the chain was tried and none had credentials; each entry names one
    /// place and why it gave nothing.
    #[error(
        "no credentials found; tried: {}. Set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, write [default] secret_id/secret_key in ~/.tencentcloud/credentials, or run `tccli configure`",
        .0.join("; ")
    )]
    NotFound(Vec<String>),
    #[error("credentials: {0}")]
    Invalid(String),
    #[error("{path}:{line}: {message}")]
    Profile {
        path: String,
        line: usize,
        message: String,
    },
}

pub const ENV_TCCLI_PROFILE: &str = "TCCLI_PROFILE";

/// The chain as a pure function of an environment lookup and a home directory: the
/// environment, then the SDKs' profile file, then tccli's credential file
/// (`~/.tccli/<TCCLI_PROFILE or default>.credential`, JSON `secretId`, `secretKey`,
/// optional `token`).
pub fn resolve(
    env: impl Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<Credentials, CredentialsError> {
    let id = env(ENV_SECRET_ID).filter(|s| !s.is_empty());
    let key = env(ENV_SECRET_KEY).filter(|s| !s.is_empty());
    let token = env(ENV_TOKEN);
    match (id, key) {
        (Some(id), Some(key)) => return Credentials::new(id, key, token),
        (Some(_), None) => {
            return Err(CredentialsError::Invalid(
                "TENCENTCLOUD_SECRET_ID is set but TENCENTCLOUD_SECRET_KEY is not".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(CredentialsError::Invalid(
                "TENCENTCLOUD_SECRET_KEY is set but TENCENTCLOUD_SECRET_ID is not".into(),
            ));
        }
        (None, None) => {}
    }
    let mut tried = vec!["TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY (not set)".to_string()];
    let profile_path = match env(ENV_CREDENTIALS_FILE).filter(|s| !s.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None => home.map(|h| h.join(".tencentcloud").join("credentials")),
    };
    match &profile_path {
        None => tried.push("~/.tencentcloud/credentials (HOME is not set)".into()),
        Some(path) => {
            let shown = path.display().to_string();
            match std::fs::read_to_string(path) {
                Ok(text) => match parse_profile(&text, &shown)? {
                    Some(c) => return Ok(c),
                    None => tried.push(format!("{shown} (no [default] secret_id and secret_key)")),
                },
                Err(e) => tried.push(format!("{shown} ({})", io_reason(&e))),
            }
        }
    }
    let profile = env(ENV_TCCLI_PROFILE)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into());
    match home {
        None => tried.push(format!("~/.tccli/{profile}.credential (HOME is not set)")),
        Some(h) => {
            let path = h.join(".tccli").join(format!("{profile}.credential"));
            let shown = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => match parse_tccli(&text, &shown)? {
                    Some(c) => return Ok(c),
                    None => tried.push(format!("{shown} (no secretId and secretKey)")),
                },
                Err(e) => tried.push(format!("{shown} ({})", io_reason(&e))),
            }
        }
    }
    Err(CredentialsError::NotFound(tried))
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Parses a tccli credential file: JSON `{"secretId": ..., "secretKey": ..., "token": ...}`
/// (what `tccli configure` writes). `None` when it holds no key pair (an `oauth`/`sso`
/// profile, or empty values).
pub fn parse_tccli(text: &str, path: &str) -> Result<Option<Credentials>, CredentialsError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CredentialsError::Profile {
            path: path.to_string(),
            line: e.line(),
            message: format!(
                "not valid JSON ({e}); tccli writes {{\"secretId\": ..., \"secretKey\": ...}}"
            ),
        })?;
    let field = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    match (field("secretId"), field("secretKey")) {
        (Some(id), Some(key)) => Credentials::new(id, key, field("token"))
            .map(Some)
            .map_err(|e| match e {
                CredentialsError::Invalid(m) => CredentialsError::Invalid(format!("{path}: {m}")),
                other => other,
            }),
        _ => Ok(None),
    }
}

/// Parses the INI profile file's `[default]` section; `None` when it has no key pair.
pub fn parse_profile(text: &str, path: &str) -> Result<Option<Credentials>, CredentialsError> {
    let mut section = String::new();
    let (mut id, mut key, mut token) = (None, None, None);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(CredentialsError::Profile {
                path: path.to_string(),
                line: i + 1,
                message: "expected `key = value` or `[section]`".into(),
            });
        };
        if section != "default" {
            continue;
        }
        let v = v.trim().to_string();
        match k.trim() {
            "secret_id" => id = Some(v),
            "secret_key" => key = Some(v),
            "token" => token = Some(v),
            _ => {}
        }
    }
    match (id, key) {
        (Some(id), Some(key)) => Credentials::new(id, key, token)
            .map(Some)
            .map_err(|e| match e {
                CredentialsError::Invalid(m) => CredentialsError::Invalid(format!("{path}: {m}")),
                other => other,
            }),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn env_wins_over_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".tencentcloud")).unwrap();
        std::fs::write(
            dir.path().join(".tencentcloud/credentials"),
            "[default]\nsecret_id = FILEID\nsecret_key = FILEKEY\n",
        )
        .unwrap();
        let c = resolve(
            env(&[
                (ENV_SECRET_ID, "ENVID"),
                (ENV_SECRET_KEY, "ENVKEY"),
                (ENV_TOKEN, "TOK"),
            ]),
            Some(dir.path()),
        )
        .unwrap();
        assert_eq!(
            (c.secret_id(), c.secret_key(), c.token()),
            ("ENVID", "ENVKEY", Some("TOK"))
        );
        let c = resolve(env(&[]), Some(dir.path())).unwrap();
        assert_eq!(
            (c.secret_id(), c.secret_key(), c.token()),
            ("FILEID", "FILEKEY", None)
        );
    }

    #[test]
    fn credentials_file_env_var_and_sections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("creds");
        std::fs::write(&p, "# comment\n[other]\nsecret_id = NO\nsecret_key = NO\n[default]\nsecret_id=ID2\nsecret_key=KEY2\n").unwrap();
        let c = resolve(env(&[(ENV_CREDENTIALS_FILE, p.to_str().unwrap())]), None).unwrap();
        assert_eq!(c.secret_id(), "ID2");
    }

    #[test]
    fn missing_and_partial() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            resolve(env(&[]), Some(dir.path())),
            Err(CredentialsError::NotFound(_))
        ));
        assert!(matches!(
            resolve(env(&[(ENV_SECRET_ID, "X")]), None),
            Err(CredentialsError::Invalid(_))
        ));
        let e = parse_profile("[default]\nsecret_id\n", "f").unwrap_err();
        assert_eq!(e.to_string(), "f:2: expected `key = value` or `[section]`");
        assert!(Credentials::new("id", " key", None).is_err());
    }

    /// One temporary HOME per row: which files exist, which env vars are set, and what the
    /// chain answers (the SecretId found, or the places the error lists).
    #[test]
    fn chain_with_tccli_table() {
        const INI: &str = "[default]\nsecret_id = INIID\nsecret_key = INIKEY\n";
        const TCCLI: &str = r#"{"secretId": "TCID", "secretKey": "TCKEY", "token": "TCTOK"}"#;
        const PROD: &str = r#"{"secretId": "PRODID", "secretKey": "PRODKEY"}"#;
        type Row = (
            &'static str,
            &'static [(&'static str, &'static str)], // files under HOME
            &'static [(&'static str, &'static str)], // env
            Result<&'static str, &'static [&'static str]>,
        );
        let rows: &[Row] = &[
            (
                "env wins",
                &[(".tccli/default.credential", TCCLI)],
                &[(ENV_SECRET_ID, "E"), (ENV_SECRET_KEY, "K")],
                Ok("E"),
            ),
            (
                "profile file before tccli",
                &[
                    (".tencentcloud/credentials", INI),
                    (".tccli/default.credential", TCCLI),
                ],
                &[],
                Ok("INIID"),
            ),
            (
                "tccli default",
                &[(".tccli/default.credential", TCCLI)],
                &[],
                Ok("TCID"),
            ),
            (
                "TCCLI_PROFILE picks the file",
                &[
                    (".tccli/default.credential", TCCLI),
                    (".tccli/prod.credential", PROD),
                ],
                &[(ENV_TCCLI_PROFILE, "prod")],
                Ok("PRODID"),
            ),
            (
                "profile file without [default] falls through",
                &[
                    (
                        ".tencentcloud/credentials",
                        "[other]\nsecret_id=A\nsecret_key=B\n",
                    ),
                    (".tccli/default.credential", TCCLI),
                ],
                &[],
                Ok("TCID"),
            ),
            (
                "nothing anywhere",
                &[],
                &[],
                Err(&[
                    "TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY (not set)",
                    ".tencentcloud/credentials (no such file)",
                    ".tccli/default.credential (no such file)",
                ]),
            ),
            (
                "missing profile named",
                &[(".tccli/default.credential", TCCLI)],
                &[(ENV_TCCLI_PROFILE, "prod")],
                Err(&[".tccli/prod.credential (no such file)"]),
            ),
            (
                "oauth profile has no key pair",
                &[(
                    ".tccli/default.credential",
                    r#"{"type": "oauth", "oauth": {}}"#,
                )],
                &[],
                Err(&[".tccli/default.credential (no secretId and secretKey)"]),
            ),
        ];
        for (what, files, vars, want) in rows {
            let home = tempfile::tempdir().unwrap();
            for (rel, text) in *files {
                let p = home.path().join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            let got = resolve(env(vars), Some(home.path()));
            match (want, got) {
                (Ok(id), Ok(c)) => assert_eq!(c.secret_id(), *id, "{what}"),
                (Err(places), Err(CredentialsError::NotFound(tried))) => {
                    for place in *places {
                        assert!(
                            tried.iter().any(|t| t.ends_with(place)),
                            "{what}: {place} not in {tried:?}"
                        );
                    }
                    let msg = CredentialsError::NotFound(tried).to_string();
                    assert!(msg.contains("tccli configure"), "{what}: {msg}");
                }
                (want, got) => panic!("{what}: want {want:?}, got {got:?}"),
            }
        }
        // The token comes along; a broken file is an error with its place, not a fall-through.
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".tccli")).unwrap();
        std::fs::write(home.path().join(".tccli/default.credential"), TCCLI).unwrap();
        assert_eq!(
            resolve(env(&[]), Some(home.path())).unwrap().token(),
            Some("TCTOK")
        );
        std::fs::write(
            home.path().join(".tccli/default.credential"),
            "{\n  \"secretId\": \n",
        )
        .unwrap();
        match resolve(env(&[]), Some(home.path())) {
            Err(CredentialsError::Profile { path, line, .. }) => {
                assert!(path.ends_with(".tccli/default.credential"));
                assert_eq!(line, 3);
            }
            other => panic!("want a Profile error, got {other:?}"),
        }
    }

    #[test]
    fn debug_and_display_redact() {
        let c =
            Credentials::new("AKIDvisible", "SUPERSECRETKEY", Some("SESSIONTOKEN".into())).unwrap();
        for s in [format!("{c:?}"), format!("{c}"), format!("{c:#?}")] {
            assert!(s.contains("AKIDvisible"));
            assert!(
                !s.contains("SUPERSECRETKEY") && !s.contains("SESSIONTOKEN"),
                "{s}"
            );
        }
    }
}
