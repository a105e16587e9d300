//! `gaap-autoscaler api ACTION [--params JSON] [--endpoint URL] [--region R]`: one signed
//! call, the `Response` object printed as JSON on stdout. Exit 0 on success, 1 on an API
//! error (code and message on stderr), 2 on a network error.
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::client::{ClientConfig, GaapClient, RetryPolicy};
use super::credentials::Credentials;
use super::error::CallError;
use super::request::{DEFAULT_ENDPOINT, Endpoint};
use crate::ratelimit::{MAX_PER_SECOND, Priority, RateLimiter};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler api DescribeProxies --params '{\"ProxyIds\":[\"link-kicu7m5b\"]}'\n  gaap-autoscaler api DescribeAccessRegionsByDestRegion --params '{\"DestRegion\":\"Shanghai\"}'\n  gaap-autoscaler api DescribeProxies --endpoint http://127.0.0.1:9099      (the sandbox)\n\nCredentials: TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (/ TENCENTCLOUD_TOKEN), else\n~/.tencentcloud/credentials. Exit 0 ok, 1 API error (code on stderr), 2 network error."
)]
pub struct ApiArgs {
    /// The action, e.g. DescribeProxies, ModifyProxyConfiguration.
    pub action: String,
    /// The request parameters as a JSON object, e.g. '{"ProxyIds":["link-kicu7m5b"]}'.
    #[arg(long, default_value = "{}")]
    pub params: String,
    /// The API endpoint; plain http only for loopback (a local sandbox).
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// X-TC-Region (GAAP does not need one).
    #[arg(long)]
    pub region: Option<String>,
    /// Request timeout.
    #[arg(long, default_value = "30s", value_parser = crate::time::parse_duration)]
    pub timeout: Duration,
}

pub fn run(args: ApiArgs) -> anyhow::Result<ExitCode> {
    let params: serde_json::Value = serde_json::from_str(&args.params)
        .with_context(|| format!("--params is not JSON: {}", args.params))?;
    anyhow::ensure!(
        params.is_object(),
        "--params must be a JSON object, e.g. '{{\"ProxyIds\":[\"link-kicu7m5b\"]}}'"
    );
    anyhow::ensure!(
        !args.action.is_empty() && args.action.bytes().all(|b| b.is_ascii_alphanumeric()),
        "ACTION must be an API action name such as DescribeProxies"
    );
    let endpoint = Endpoint::parse(&args.endpoint)?;
    let credentials = Credentials::from_default_chain()?;
    let mut config = ClientConfig::new(endpoint);
    config.region = args.region;
    config.timeout = args.timeout;
    config.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let limiter = Arc::new(RateLimiter::new(MAX_PER_SECOND)?);
    let client = GaapClient::new(config, credentials, limiter)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(client.call_once(&args.action, &params, Priority::High)) {
        Ok(response) => {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &response)?;
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(CallError::Api(e)) => {
            eprintln!("{}: {} (RequestId {})", e.code, e.message, e.request_id);
            Ok(ExitCode::from(crate::exit::USER_ERROR))
        }
        Err(
            e @ (CallError::Network { .. }
            | CallError::HttpStatus { .. }
            | CallError::Decode { .. }),
        ) => Err(crate::exit::env_error(format!(
            "{e}; is the endpoint reachable?"
        ))),
        Err(e) => Err(anyhow::Error::new(e)),
    }
}
