//! `gaap-autoscaler run`: the daemon, or one pass with `--once`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::adapters::GaapCloud;
use super::engine::{Engine, EngineOptions};
use super::http::{self, HttpState};
use super::schedule::Clock;
use super::stats::Stats;
use super::supervisor::{Control, run_once, supervise};
use crate::cloud::client::{ClientConfig, GaapClient};
use crate::cloud::credentials::Credentials;
use crate::cloud::request::Endpoint;
use crate::config::Config;
use crate::exit::env_error;
use crate::metrics::{ClientOptions, Prometheus};
use crate::policy::diagnostic::render;
use crate::policy::{Diagnostic, Policy, load_policies};
use crate::ratelimit::RateLimiter;
use crate::store::DecisionLog;
use crate::time::parse_duration;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler run --config gaap-autoscaler.toml --dry-run --once   one pass, nothing applied\n  gaap-autoscaler run --config gaap-autoscaler.toml                     the daemon\n\nSignals: SIGHUP reloads the policies (so does changing a policy file); an invalid new\npolicy set is reported and the running one kept. SIGTERM/SIGINT stop scheduling, let\nin-flight calls finish (--grace), flush the log and exit 0.\n\nHigh availability: with an [ha] section (etcd URLs, prefix, lease_ttl, instance) two or\nthree daemons share one etcd; the one holding the lease leads (evaluates and sends), the\nothers stay ready (/readyz says `ready: follower of NAME`; gaap_autoscaler_leader{instance}\nis 1 only on the leader). A leader without a lease renewal for lease_ttl/2 stops sending;\nshared state is written only in etcd transactions fenced on the leader key. --once\nrefuses [ha] unless --dry-run (which ignores it). Without [ha]: one process, sled only."
)]
pub struct RunArgs {
    /// The config file (see examples/gaap-autoscaler.toml).
    #[arg(long, short, default_value = "gaap-autoscaler.toml")]
    pub config: PathBuf,
    /// Log every decision, send nothing that modifies (whatever the policies' mode).
    #[arg(long)]
    pub dry_run: bool,
    /// One evaluation pass of every policy now, wait for its calls, exit.
    #[arg(long)]
    pub once: bool,
    /// How long in-flight calls may take to finish at shutdown.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,
    /// How long decisions are kept in the log.
    #[arg(long, default_value = "90d", value_parser = parse_duration)]
    pub retention: Duration,
    /// With --once: evaluate as of this time (RFC 3339 or Unix seconds) instead of now,
    /// e.g. to replay an incident in dry-run mode. Queries run at that time too.
    #[arg(long, requires = "once", value_parser = crate::time::parse_time)]
    pub at: Option<crate::time::Timestamp>,
    /// With --once: how long to watch applied changes until their proxies are RUNNING
    /// again, so their completion is logged (0s: do not wait).
    #[arg(long, requires = "once", default_value = "2m", value_parser = parse_duration)]
    pub wait: Duration,
    /// Overrides `[engine] listen` (e.g. 127.0.0.1:0 for a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

fn load(dir: &Path) -> Result<Vec<Arc<Policy>>, Vec<Diagnostic>> {
    load_policies(&[dir.to_path_buf()]).map(|ps| ps.into_iter().map(Arc::new).collect())
}

/// Makes the daemon's memory (which holds the secret key and any session token) hard to
/// leak through a crash: no core file (RLIMIT_CORE 0, soft and hard), not dumpable
/// (PR_SET_DUMPABLE 0: no core, no ptrace attach by other processes of the same user),
/// and files it creates readable by its owner only (umask 077). Called first in `run`.
pub fn harden_process() -> std::io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid arguments; no memory is shared.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[cfg(target_os = "linux")]
        if libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::umask(0o077);
    }
    Ok(())
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    harden_process().map_err(|e| env_error(format!("cannot disable core dumps: {e}")))?;
    let config = Config::load(&args.config).map_err(|d| anyhow::anyhow!("{}", render(&d)))?;
    let policies = load(&config.engine.policies)
        .map_err(|d| anyhow::anyhow!("invalid policies:\n{}", render(&d)))?;
    if policies.is_empty() {
        anyhow::bail!(
            "no policy files in {}: add one (see policies/web.toml)",
            config.engine.policies.display()
        );
    }
    let endpoint = Endpoint::parse(&config.tencentcloud.endpoint)
        .with_context(|| format!("{}: [tencentcloud] endpoint", args.config.display()))?;
    let credentials = Credentials::from_default_chain().map_err(|e| {
        env_error(format!(
            "{e}; set TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY, or write ~/.tencentcloud/credentials"
        ))
    })?;
    // [ha]: a dry run sends nothing, so it takes no part in the election (it would keep
    // the live daemons from leading); `--once` acts at once, whoever leads, so it may not.
    let ha = match &config.ha {
        Some(_) if args.dry_run => {
            crate::telemetry::notice(
                "gaap-autoscaler: --dry-run: [ha] ignored (a dry run sends nothing and takes no part in the election)",
            );
            None
        }
        Some(_) if args.once => anyhow::bail!(
            "{}: `run --once` cannot be used with [ha] (it would act whoever leads); add --dry-run, or run the daemon",
            args.config.display()
        ),
        other => other.clone(),
    };
    let limiter = Arc::new(RateLimiter::new(config.engine.api_rate)?);
    let mut client_config = ClientConfig::new(endpoint);
    client_config.region = config.tencentcloud.region.clone();
    let stats = Arc::new(Stats::new());
    let ha = ha
        .map(|h| -> anyhow::Result<_> {
            // Each etcd request is bounded by a quarter of the TTL, so a dead member costs
            // the leader one try, not its lease.
            let etcd = crate::ha::Etcd::new(&h.etcd, h.lease_ttl / 4)
                .map_err(|e| env_error(e.to_string()))?;
            let leadership = Arc::new(crate::ha::Leadership::new(
                &h.instance,
                h.lease_ttl,
                Some(stats.leader.with_label_values(&[h.instance.as_str()])),
            ));
            Ok((h, Arc::new(etcd), leadership))
        })
        .transpose()?;
    let mut client = GaapClient::new(client_config, credentials, Arc::clone(&limiter))?;
    if let Some((_, _, leadership)) = &ha {
        let l = Arc::clone(leadership);
        client = client.with_send_gate(Arc::new(move || l.may_act()));
    }
    let client = Arc::new(client);
    let prometheus = Prometheus::new(
        &config.prometheus.url,
        ClientOptions::with_timeout(config.prometheus.timeout),
    )
    .with_context(|| format!("{}: [prometheus] url", args.config.display()))?;
    // Locked (another process holds it) or unreadable: the environment, exit 2.
    let log = DecisionLog::open(&config.engine.data_dir).map_err(|e| env_error(e.to_string()))?;
    let log = Arc::new(log);
    // A restart must not start with an empty budget: count what the previous process sent.
    let sent = crate::store::budget::recent_sends(
        &log,
        crate::time::Timestamp::from_datetime(&chrono::Utc::now()),
        limiter.window(),
        // The daemon's client retries with the default policy.
        crate::cloud::client::RetryPolicy::default().max_attempts,
    )
    .map_err(|e| env_error(e.to_string()))?;
    limiter.seed("ModifyProxyConfiguration", &sent);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let clock = Clock::system();
        let options = EngineOptions {
            dry_run: args.dry_run,
            fleet_refresh: config.engine.fleet_refresh,
            // `--once` watches its changes together at the end (see --wait).
            watch_completion: !args.once,
            watch_interval: if args.once { Duration::from_secs(1) } else { EngineOptions::default().watch_interval },
            ..EngineOptions::default()
        };
        let cloud = Arc::new(GaapCloud { api: client });
        let mut ha_tasks = Vec::new();
        let mirror_stop = Arc::new(AtomicBool::new(false));
        let engine = match &ha {
            None => Engine::new(cloud, Arc::new(prometheus), Arc::clone(&log), Arc::clone(&stats), options, clock.clone())
                .map_err(|e| env_error(e.to_string()))?,
            Some((h, etcd, leadership)) => {
                let shared = Arc::new(crate::ha::SharedStore::new(Arc::clone(etcd), &h.prefix, Arc::clone(leadership)));
                // A new leader's budget starts spent: the old leader may have used the
                // whole window just before it stopped (it stops sending half a TTL before
                // its lease can expire, and the TTL is at least 2 s).
                let seed_limiter = Arc::clone(&limiter);
                let rate = config.engine.api_rate as usize;
                let on_takeover = Box::new(move || {
                    seed_limiter.seed("ModifyProxyConfiguration", &vec![Duration::ZERO; rate]);
                });
                ha_tasks.push(tokio::spawn(crate::ha::election::run(Arc::clone(etcd), Arc::clone(leadership), h.prefix.clone())));
                if let Some(every) = h.compaction_interval {
                    ha_tasks.push(tokio::spawn(crate::ha::compactor::run(Arc::clone(etcd), Arc::clone(leadership), h.prefix.clone(), every)));
                }
                ha_tasks.push(tokio::spawn(crate::ha::shared::mirror(Arc::clone(etcd), h.prefix.clone(), Arc::clone(&log), Arc::clone(&mirror_stop))));
                info!(instance = %h.instance, prefix = %h.prefix, etcd = ?h.etcd, lease_ttl = ?h.lease_ttl, "high availability on etcd: campaigning");
                Engine::new_shared(cloud, Arc::new(prometheus), Arc::clone(&log), Arc::clone(&stats), options, clock.clone(), crate::daemon::engine::HaParts { store: shared, on_takeover })
                    .map_err(|e| env_error(e.to_string()))?
            }
        };

        // The HTTP endpoint comes up first, so /healthz answers during reconciliation.
        let listen = args.listen.unwrap_or(config.engine.listen);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| env_error(format!("cannot listen on {listen}: {e} (set [engine] listen or --listen)")))?;
        let local = listener.local_addr()?;
        if let Some(w) = http::listen_warning(local) {
            warn!(listen = %local, "{w}");
            crate::telemetry::notice(&format!("gaap-autoscaler: warning: {w}"));
        }
        let control_token = match crate::config::ControlToken::from_env() {
            Ok(Some(t)) => Some(t),
            Ok(None) => config.engine.control_token.clone(),
            Err(e) => return Err(env_error(e)),
        };
        let access = super::control::Access::new(control_token, local);
        if matches!(access, super::control::Access::Refused) {
            warn!(listen = %local, "pause and resume are refused: the endpoint is not on loopback and no control token is set ([engine] control_token or GAAP_AUTOSCALER_CONTROL_TOKEN)");
        }
        let ready = Arc::new(AtomicBool::new(false));
        let reader_log = Arc::clone(&log);
        let scrape_engine = Arc::clone(&engine);
        let sampler_stats = Arc::clone(&stats);
        let sampler_limiter = Arc::clone(&limiter);
        let sampler_leadership = ha.as_ref().map(|(_, _, l)| Arc::clone(l));
        let state = HttpState {
            stats: Arc::clone(&stats),
            ready: Arc::clone(&ready),
            log: Some(Arc::new(move |path: &str, query: &str| {
                crate::store::handle_log_request(&reader_log, path, query)
            })),
            before_scrape: Some(Arc::new(move || {
                for (action, n) in sampler_limiter.available() {
                    sampler_stats.api_tokens.with_label_values(&[action.as_str()]).set(i64::from(n));
                }
                if let Some(l) = &sampler_leadership {
                    l.sample();
                }
                scrape_engine.refresh_paused_metric(scrape_engine.clock.now());
            })),
            control: Some(Arc::clone(&engine) as Arc<dyn super::control::ControlPort>),
            access,
            role: ha.as_ref().map(|(_, _, l)| {
                let l = Arc::clone(l);
                Arc::new(move || l.describe()) as Arc<dyn Fn() -> String + Send + Sync>
            }),
        };
        let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, state, async {
            let _ = http_stopped.await;
        }));
        info!(address = %local, "serving /metrics, /healthz, /readyz, /log/decisions and /control");
        crate::telemetry::notice(&format!(
            "gaap-autoscaler: listening on http://{local} (policies: {})",
            policies.len()
        ));

        engine.set_policies(&policies);
        // Under [ha] the leader reconciles the shared intents when it takes over.
        let startup = if ha.is_some() { Ok(Default::default()) } else { engine.reconcile(clock.now()).await };
        match startup {
            Ok(s) if s.kept > 0 && engine.options.dry_run => crate::telemetry::notice(&format!(
                "gaap-autoscaler: {} decisions logged without an answer stay pending (dry run: none re-sent)",
                s.kept
            )),
            Ok(s) => {
                if s.settled() + s.kept > 0 {
                    info!(applied = s.applied, failed = s.failed, abandoned = s.abandoned, superseded = s.superseded, kept = s.kept, "reconciled decisions left without an outcome");
                }
            }
            Err(e) => warn!(error = %e, waiting = engine.unreconciled(), "reconciliation failed; it is retried before each pass, and the proxies with decisions logged without an answer are not evaluated until it succeeds"),
        }
        ready.store(true, Ordering::SeqCst);

        let code = if args.once {
            let at = args.at.unwrap_or_else(|| clock.now());
            let reports = run_once(&engine, &policies, at).await;
            let (complete, adjusting) = engine.await_completion(args.wait).await;
            if complete + adjusting > 0 {
                crate::telemetry::notice(&format!(
                    "gaap-autoscaler: {complete} changes complete{}",
                    if adjusting > 0 {
                        format!(", {adjusting} still adjusting after {:?} (their completion is not logged; see --wait)", args.wait)
                    } else {
                        String::new()
                    }
                ));
            }
            let mut failed = false;
            for r in &reports {
                match &r.error {
                    Some(e) => {
                        failed = true;
                        crate::telemetry::notice(&format!("{}: {e}", r.policy));
                    }
                    None => crate::telemetry::notice(&once_summary(r)),
                }
                failed |= r.query_errors > 0;
            }
            if failed { ExitCode::from(crate::exit::ENV_ERROR) } else { ExitCode::SUCCESS }
        } else {
            daemon(&engine, policies, &config, &args, &stats).await;
            ExitCode::SUCCESS
        };
        if let Some((_, _, leadership)) = &ha {
            // Hand over at once: the lease is revoked, a follower takes over.
            leadership.resign();
            mirror_stop.store(true, Ordering::SeqCst);
            for t in ha_tasks {
                let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
            }
        }
        let _ = http_stop.send(());
        let _ = server.await;
        if let Err(e) = log.flush() {
            error!(error = %e, "cannot flush the decision log");
        }
        Ok::<_, anyhow::Error>(code)
    })
}

/// The long-running part: the supervisor, signals, policy-file watching, retention.
async fn daemon(
    engine: &Arc<Engine<GaapCloud, Prometheus>>,
    policies: Vec<Arc<Policy>>,
    config: &Config,
    args: &RunArgs,
    stats: &Arc<Stats>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::channel(4);
    let supervisor = tokio::spawn(supervise(Arc::clone(engine), policies, rx, args.grace));

    // Retention: prune once an hour.
    let pruner_log = Arc::clone(&engine.journal);
    let pruner_clock = engine.clock.clone();
    let retention = args.retention;
    let pruner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let cutoff = pruner_clock.now() - retention;
            match pruner_log.prune(cutoff) {
                Ok(0) => {}
                Ok(n) => info!(removed = n, "pruned decisions older than the retention"),
                Err(e) => warn!(error = %e, "cannot prune the decision log"),
            }
        }
    });

    let dir = config.engine.policies.clone();
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut seen = fingerprint(&dir);
    let mut poll = tokio::time::interval(Duration::from_secs(5));
    loop {
        let reason = tokio::select! {
            _ = hup.recv() => "SIGHUP",
            _ = poll.tick() => {
                let now = fingerprint(&dir);
                if now == seen { continue; }
                seen = now;
                "a policy file changed"
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        match load(&dir) {
            Ok(new) if !new.is_empty() => {
                info!(why = reason, policies = new.len(), "reloading policies");
                stats.reloads.with_label_values(&["ok"]).inc();
                let _ = tx.send(Control::Reload(new)).await;
            }
            Ok(_) => {
                stats.reloads.with_label_values(&["invalid"]).inc();
                error!(
                    why = reason,
                    "no policy files left; keeping the running policies"
                );
            }
            Err(diags) => {
                stats.reloads.with_label_values(&["invalid"]).inc();
                error!(why = reason, problems = %render(&diags), "invalid policies; keeping the running ones");
                crate::telemetry::notice(&format!(
                    "policy reload rejected, the running policies stay:\n{}",
                    render(&diags)
                ));
            }
        }
    }
    info!("shutting down");
    pruner.abort();
    let _ = tx.send(Control::Shutdown).await;
    let _ = supervisor.await;
}

/// Names, sizes and modification times of the policy files: a change triggers a reload.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    out.sort();
    out
}

/// One line per policy for `run --once`.
fn once_summary(r: &super::engine::PassReport) -> String {
    let mut line = format!(
        "{}: {} proxies evaluated, {} changes sent",
        r.policy, r.evaluated, r.changes
    );
    if r.dry_run_changes > 0 {
        line += &format!(", {} dry-run changes (none sent)", r.dry_run_changes);
    }
    if r.unreconciled > 0 {
        line += &format!(
            "; {} proxies not evaluated: a decision of theirs awaits reconciliation",
            r.unreconciled
        );
    }
    if r.stale > 0 {
        line += &format!(
            "; {} changes not sent: the proxy moved while the view grew old",
            r.stale
        );
    }
    if r.query_errors > 0 {
        line += &format!("; {} metric queries failed (proxies held)", r.query_errors);
    }
    line
}
