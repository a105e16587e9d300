//! `gaap-autoscaler pause`, `resume` and `status`: requests to the running daemon's
//! control endpoint (see [`super::control`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::anyhow;

use super::control::{
    ControlStatus, PAUSE_PATH, PauseRequest, RESUME_PATH, ResumeRequest, STATUS_PATH,
};
use crate::config::{CONTROL_TOKEN_ENV, Config, ControlToken};
use crate::exit::env_error;
use crate::store::cmd::{DEFAULT_CONFIG, DEFAULT_DAEMON_URL, daemon_url_for_listen};

/// Where the daemon is and how to prove the right to change it.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// The daemon's config file: its `[engine] listen` and `control_token` become the
    /// defaults (default: ./gaap-autoscaler.toml when it exists).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The daemon's HTTP endpoint (default: the config's `listen`, else
    /// http://127.0.0.1:9464).
    #[arg(long, value_name = "URL")]
    pub daemon: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler pause --policy web --direction down --for 2h --reason \"migration\"\n  gaap-autoscaler pause --policy web --proxy link-kicu7m5b --direction both --reason \"load test\"\n  gaap-autoscaler pause --policy web --direction up --daemon http://10.0.0.5:9464   (token in GAAP_AUTOSCALER_CONTROL_TOKEN)\n\nA paused proxy is still evaluated and logged (guard.paused, with who, why and until\nin `log show`); nothing is sent in a paused direction. Pauses survive a restart."
)]
pub struct PauseArgs {
    /// The policy to pause (all its proxies, unless --proxy).
    #[arg(long)]
    pub policy: String,
    /// Pause one proxy only.
    #[arg(long, value_name = "ID")]
    pub proxy: Option<String>,
    /// up, down or both.
    #[arg(long, default_value = "both")]
    pub direction: String,
    /// How long (e.g. 30m, 2h); without it, until `resume`.
    #[arg(long = "for", value_name = "DURATION", value_parser = crate::time::parse_duration)]
    pub for_: Option<Duration>,
    /// Why (shown in `status` and in the log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Who (default: $USER@hostname).
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler resume --policy web                       every direction of the policy\n  gaap-autoscaler resume --policy web --proxy link-kicu7m5b --direction down\n\nResume also ends the manual holds (an operator's change, `manual_hold`) of what it names.\nThe next pass acts on fresh state."
)]
pub struct ResumeArgs {
    #[arg(long)]
    pub policy: String,
    #[arg(long, value_name = "ID")]
    pub proxy: Option<String>,
    /// up, down or both.
    #[arg(long, default_value = "both")]
    pub direction: String,
    #[arg(long)]
    pub by: Option<String>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler status\n  gaap-autoscaler status --daemon http://127.0.0.1:9464 --json"
)]
pub struct StatusArgs {
    /// Print the JSON answer.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

fn who(by: Option<String>) -> String {
    by.unwrap_or_else(|| {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        if host.is_empty() {
            user
        } else {
            format!("{user}@{host}")
        }
    })
}

/// The daemon's URL and the token to send (environment first, then the config).
fn target(args: &DaemonArgs) -> anyhow::Result<(String, Option<ControlToken>)> {
    let implicit = PathBuf::from(DEFAULT_CONFIG);
    let path = args
        .config
        .clone()
        .or_else(|| implicit.is_file().then_some(implicit));
    let config = match &path {
        Some(p) => Some(
            Config::load(p).map_err(|d| anyhow!("{}", crate::policy::diagnostic::render(&d)))?,
        ),
        None => None,
    };
    let url = args
        .daemon
        .clone()
        .or_else(|| {
            config
                .as_ref()
                .map(|c| daemon_url_for_listen(&c.engine.listen.to_string()))
        })
        .unwrap_or_else(|| DEFAULT_DAEMON_URL.to_string());
    let token = match ControlToken::from_env().map_err(|e| anyhow!(e))? {
        Some(t) => Some(t),
        None => config.and_then(|c| c.engine.control_token),
    };
    Ok((url, token))
}

fn call(
    args: &DaemonArgs,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<ControlStatus> {
    let (url, token) = target(args)?;
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| env_error(format!("cannot build an HTTP client: {e}")))?;
        let mut req = match &body {
            Some(b) => client.post(&full).json(b),
            None => client.get(&full),
        };
        if let Some(t) = &token {
            req = req.bearer_auth(t.expose());
        }
        let resp = req.send().await.map_err(|e| {
            env_error(format!(
                "the daemon at {url} did not answer ({e}); is `gaap-autoscaler run` running? pass --daemon URL or --config FILE"
            ))
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| env_error(format!("{full}: cannot read the answer: {e}")))?;
        let message = || {
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect())
        };
        match status {
            200 => serde_json::from_str(&text)
                .map_err(|e| env_error(format!("{full}: not a control answer: {e}"))),
            401 => Err(anyhow!(
                "refused by the daemon (401): {}; set {CONTROL_TOKEN_ENV} or [engine] control_token",
                message()
            )),
            400 | 404 => Err(anyhow!("{}", message())),
            s => Err(env_error(format!("{full}: HTTP {s}: {}", message()))),
        }
    })
}

pub fn pause(args: PauseArgs) -> anyhow::Result<ExitCode> {
    crate::core::pause::parse_directions(&args.direction).map_err(|e| anyhow!(e))?;
    let req = PauseRequest {
        policy: args.policy,
        proxy: args.proxy,
        direction: args.direction,
        for_: args.for_.map(crate::time::format_duration),
        reason: args.reason,
        by: who(args.by),
    };
    let status = call(&args.daemon, PAUSE_PATH, Some(serde_json::to_value(&req)?))?;
    print!("{}", render(&status));
    Ok(ExitCode::SUCCESS)
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    crate::core::pause::parse_directions(&args.direction).map_err(|e| anyhow!(e))?;
    let req = ResumeRequest {
        policy: args.policy,
        proxy: args.proxy,
        direction: Some(args.direction),
        by: who(args.by),
    };
    let status = call(&args.daemon, RESUME_PATH, Some(serde_json::to_value(&req)?))?;
    println!(
        "resumed: {} (pauses and manual holds ended)",
        status.resumed
    );
    print!("{}", render(&status));
    Ok(ExitCode::SUCCESS)
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let status = call(&args.daemon, STATUS_PATH, None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable status.
pub fn render(s: &ControlStatus) -> String {
    let mut out = String::new();
    if s.pauses.is_empty() && s.static_pauses.is_empty() && s.manual_holds.is_empty() {
        return "nothing paused or held\n".to_string();
    }
    for p in &s.pauses {
        out += &format!("paused: {}\n", p.sentence());
    }
    for p in &s.static_pauses {
        let dirs: Vec<&str> = p
            .directions
            .directions()
            .map(crate::core::pause::direction_name)
            .collect();
        out += &format!(
            "paused by the policy file: policy {} ({})\n",
            p.policy,
            dirs.join(", ")
        );
    }
    for h in &s.manual_holds {
        let until = h
            .until
            .map_or("until resumed".to_string(), |u| format!("until {u}"));
        let change = h.change.map_or(String::new(), |c| {
            format!(
                ": changed outside the autoscaler at {} ({}/{} → {}/{})",
                c.at, c.from.0, c.from.1, c.to.0, c.to.1
            )
        });
        out += &format!(
            "manual hold: proxy {} (policy {}) {until}{change}\n",
            h.proxy, h.policy
        );
    }
    out
}
