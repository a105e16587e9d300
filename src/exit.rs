//! Exit codes and the two error kinds the binary distinguishes: 0 success, 1 a user
//! error (bad policy, flag or input file), 2 an environment error (cannot reach
//! Prometheus or the API, data dir locked).

use std::fmt;
use std::process::ExitCode;

pub const USER_ERROR: u8 = 1;
pub const ENV_ERROR: u8 = 2;

/// Marks an error as caused by the environment (exit 2). Anything else is a user error.
#[derive(Debug)]
pub struct EnvError(pub String);

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for EnvError {}

/// An environment error (exit code 2) with a message that says what to do.
pub fn env_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(EnvError(msg.into()))
}

/// The exit code for an error reaching `main`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    if err.chain().any(|e| e.is::<EnvError>()) {
        ExitCode::from(ENV_ERROR)
    } else {
        ExitCode::from(USER_ERROR)
    }
}
