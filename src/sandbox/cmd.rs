//! `gaap-autoscaler sandbox [--listen ADDR] [--fleet FILE] [--secret-id ID --secret-key KEY]
//! [--adjusting DUR] [--faults SPEC | --faults-file FILE]`.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::SandboxConfig;
use super::faults::FaultPlan;
use crate::cloud::credentials::{ENV_SECRET_ID, ENV_SECRET_KEY};
use crate::fleet::Fleet;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler sandbox --secret-id AKIDlocal --secret-key localkey\n  gaap-autoscaler sandbox --listen 127.0.0.1:0 --fleet fleet.toml --adjusting 2s \\\n      --faults 'ModifyProxyConfiguration:InternalError@1'\n\nThen point a client at it: TENCENTCLOUD_SECRET_ID=AKIDlocal TENCENTCLOUD_SECRET_KEY=localkey\n  gaap-autoscaler api DescribeProxies --endpoint http://127.0.0.1:9099\nEvery call: GET /__sandbox/calls. Fault plan: GET|POST /__sandbox/faults."
)]
pub struct SandboxArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the real one is printed).
    #[arg(long, default_value = "127.0.0.1:9099")]
    pub listen: String,
    /// Fleet file (ladders and proxies); default: the bundled example fleet.
    #[arg(long)]
    pub fleet: Option<PathBuf>,
    /// The SecretId clients must sign with (default: $TENCENTCLOUD_SECRET_ID).
    #[arg(long)]
    pub secret_id: Option<String>,
    /// The SecretKey clients must sign with (default: $TENCENTCLOUD_SECRET_KEY).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// How long a modified proxy stays ADJUSTING.
    #[arg(long, default_value = "10s", value_parser = crate::time::parse_duration)]
    pub adjusting: Duration,
    /// Faults to inject, e.g. 'ModifyProxyConfiguration:InternalError@1,3;DescribeProxies:delay=2s@2'.
    #[arg(long)]
    pub faults: Option<String>,
    /// A file holding a fault spec (one rule per line, '#' comments).
    #[arg(long, conflicts_with = "faults")]
    pub faults_file: Option<PathBuf>,
    /// Stop the sandbox's clock at start-up; it moves only by `POST /__sandbox/clock`
    /// with a duration (for tests of ADJUSTING and the 20/s limit that need no sleeping).
    #[arg(long)]
    pub manual_clock: bool,
}

impl std::fmt::Debug for SandboxArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxArgs")
            .field("listen", &self.listen)
            .field("fleet", &self.fleet)
            .field("secret_id", &self.secret_id)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("adjusting", &self.adjusting)
            .field("faults", &self.faults)
            .field("faults_file", &self.faults_file)
            .field("manual_clock", &self.manual_clock)
            .finish()
    }
}

pub fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let fleet = match &args.fleet {
        Some(path) => Fleet::load(path).map_err(|diags| {
            let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            anyhow::anyhow!(
                "invalid fleet file {}:\n{}",
                path.display(),
                lines.join("\n")
            )
        })?,
        None => Fleet::bundled(),
    };
    let secret_id = args
        .secret_id
        .or_else(|| std::env::var(ENV_SECRET_ID).ok())
        .filter(|s| !s.is_empty());
    let secret_key = args
        .secret_key
        .or_else(|| std::env::var(ENV_SECRET_KEY).ok())
        .filter(|s| !s.is_empty());
    let (Some(secret_id), Some(secret_key)) = (secret_id, secret_key) else {
        anyhow::bail!(
            "the sandbox needs the credentials its clients sign with: --secret-id and --secret-key, or {ENV_SECRET_ID} and {ENV_SECRET_KEY}"
        );
    };
    let spec = match (&args.faults, &args.faults_file) {
        (Some(s), _) => s.clone(),
        (None, Some(p)) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        (None, None) => String::new(),
    };
    let faults = FaultPlan::parse(&spec).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let mut config = SandboxConfig::new(fleet, secret_id, secret_key);
    config.adjusting = args.adjusting;
    config.faults = faults;
    if args.manual_clock {
        config.clock = std::sync::Arc::new(super::arrivals::ManualClock::starting_now());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .map_err(|e| {
                crate::exit::env_error(format!("cannot listen on {}: {e}", args.listen))
            })?;
        let addr = listener.local_addr()?;
        println!("sandbox listening on http://{addr}");
        std::io::stdout().flush()?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        super::serve_with_shutdown(config, listener, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    })
}
