//! Credentials: the chain the official SDKs use. Environment `TENCENTCLOUD_SECRET_ID` /
//! `TENCENTCLOUD_SECRET_KEY` (+ optional `TENCENTCLOUD_TOKEN`), else the profile file
//! (`TENCENTCLOUD_CREDENTIALS_FILE`, else `~/.tencentcloud/credentials`, section `[default]`,
//! keys `secret_id`, `secret_key`, optional `token`). The key and token never appear in
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
    #[error(
        "no credentials: set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or write [default] secret_id/secret_key in {0}"
    )]
    NotFound(String),
    #[error("credentials: {0}")]
    Invalid(String),
    #[error("{path}:{line}: {message}")]
    Profile {
        path: String,
        line: usize,
        message: String,
    },
}

/// The chain as a pure function of an environment lookup and a home directory.
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
    let path = match env(ENV_CREDENTIALS_FILE).filter(|s| !s.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => match home {
            Some(h) => h.join(".tencentcloud").join("credentials"),
            None => {
                return Err(CredentialsError::NotFound(
                    "~/.tencentcloud/credentials".into(),
                ));
            }
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_profile(&text, &path.display().to_string()),
        Err(_) => Err(CredentialsError::NotFound(path.display().to_string())),
    }
}

/// Parses the INI profile file's `[default]` section.
pub fn parse_profile(text: &str, path: &str) -> Result<Credentials, CredentialsError> {
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
        (Some(id), Some(key)) => Credentials::new(id, key, token).map_err(|e| match e {
            CredentialsError::Invalid(m) => CredentialsError::Invalid(format!("{path}: {m}")),
            other => other,
        }),
        _ => Err(CredentialsError::NotFound(format!(
            "{path} (no [default] secret_id and secret_key)"
        ))),
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
