//! The daemon config file `gaap-autoscaler.toml`.
//!
//! ```toml
//! [tencentcloud]
//! endpoint = "https://gaap.tencentcloudapi.com"   # default
//! region = "ap-guangzhou"                         # optional
//! [prometheus]
//! url = "http://127.0.0.1:9090"                   # required
//! timeout = "10s"                                 # default
//! [engine]
//! policies = "policies"                           # default; relative to this file's directory
//! data_dir = "data"                               # default; relative to this file's directory
//! listen = "127.0.0.1:9464"                       # default: /metrics and /healthz
//! api_rate = 20                                   # default; requests/second per API action, 1..=20
//! fleet_refresh = "5m"                            # default: how often DescribeProxies is re-read
//! control_token = "..."                           # optional: bearer token of /control/* (or GAAP_AUTOSCALER_CONTROL_TOKEN)
//! [ha]                                            # optional: high availability on etcd
//! etcd = ["http://127.0.0.1:2379"]                # required in [ha]: etcd client URLs
//! prefix = "/gaap-autoscaler"                     # default: where election, state and log keys live
//! lease_ttl = "10s"                               # default: the leader's lease (2s..=1h)
//! instance = "host-a"                             # default: hostname-pid
//! compaction_interval = "5m"                      # default: the leader compacts etcd's history; "0s": never
//! ```
//!
//! Credentials are never read from this file: a key that looks like one is rejected with a
//! pointer to `TENCENTCLOUD_SECRET_ID` / `TENCENTCLOUD_SECRET_KEY`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::diagnostic::collect::{Ctx, Stage1, deserialize_all};

pub const DEFAULT_ENDPOINT: &str = "https://gaap.tencentcloudapi.com";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// The API allows at most 20 requests per second per action; never more.
pub const MAX_API_RATE: u32 = 20;

/// Keys that would hold credentials: rejected wherever they appear.
const SECRET_KEYS: [&str; 10] = [
    "secret_id",
    "secret_key",
    "secretid",
    "secretkey",
    "token",
    "session_token",
    "tencentcloud_secret_id",
    "tencentcloud_secret_key",
    "password",
    "credentials",
];

/// A validated daemon config. Relative paths are resolved against the config file's directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub source: PathBuf,
    pub tencentcloud: TencentCloudConfig,
    pub prometheus: PrometheusConfig,
    pub engine: EngineConfig,
    /// `[ha]`: run as one of several daemons sharing etcd; None: one process, sled only.
    pub ha: Option<HaConfig>,
}

/// The default `[ha] prefix`.
pub const DEFAULT_HA_PREFIX: &str = "/gaap-autoscaler";
/// The shortest `[ha] lease_ttl`: a leader steps down at half of it, and the half must
/// cover one window of the API budget (1 s) so a new leader never overlaps the old one's
/// last second of sends.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

/// `[ha]`: leader election, shared state and the shared decision log on etcd.
#[derive(Clone, Debug, PartialEq)]
pub struct HaConfig {
    /// etcd client URLs (v3 JSON gateway; any member answers).
    pub etcd: Vec<String>,
    /// Key prefix, without a trailing slash (e.g. `/gaap-autoscaler`).
    pub prefix: String,
    /// The leader's lease; the leader steps down at half of it without a renewal.
    pub lease_ttl: Duration,
    /// This daemon's name in the election and in the records it makes.
    pub instance: String,
    /// How often the leader compacts etcd's history to what it was one interval before
    /// (`ha::compactor`); None (`"0s"`): never, etcd's operators do.
    pub compaction_interval: Option<Duration>,
}

/// The default `[ha] compaction_interval` (kube-apiserver's default too).
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

/// `hostname-pid`: the default instance name.
pub fn default_instance() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let host = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let host = if host.is_empty() {
        "localhost".into()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// Whether `name` may name an instance: 1..=64 printable ASCII characters, no spaces.
pub fn valid_instance(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_graphic())
}

#[derive(Clone, Debug, PartialEq)]
pub struct TencentCloudConfig {
    pub endpoint: String,
    pub region: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusConfig {
    pub url: String,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    /// The directory of policy files.
    pub policies: PathBuf,
    /// Where the decision log lives.
    pub data_dir: PathBuf,
    /// The address of `/metrics` and `/healthz`.
    pub listen: SocketAddr,
    /// Requests per second per API action (1..=20).
    pub api_rate: u32,
    /// How often the fleet (DescribeProxies, ladders) is re-read.
    pub fleet_refresh: Duration,
    /// The bearer token of the control endpoint (`/control/*`: pause, resume, status);
    /// the environment's `GAAP_AUTOSCALER_CONTROL_TOKEN` wins over it.
    pub control_token: Option<ControlToken>,
}

/// The control endpoint's bearer token: never printed (Debug is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct ControlToken(String);

/// The environment variable that holds the control token (read by `run` and by the
/// `pause`/`resume`/`status` commands; it wins over `[engine] control_token`).
pub const CONTROL_TOKEN_ENV: &str = "GAAP_AUTOSCALER_CONTROL_TOKEN";

impl ControlToken {
    /// A token of at least 16 characters, no whitespace.
    pub fn new(s: &str) -> Result<ControlToken, &'static str> {
        let t = s.trim();
        if t.chars().count() < 16 {
            Err("the control token is shorter than 16 characters")
        } else if t.chars().any(char::is_whitespace) {
            Err("the control token contains whitespace")
        } else {
            Ok(ControlToken(t.to_string()))
        }
    }
    /// The token from the environment, if set (an invalid one is an error).
    pub fn from_env() -> Result<Option<ControlToken>, String> {
        match std::env::var(CONTROL_TOKEN_ENV) {
            Ok(v) if !v.trim().is_empty() => ControlToken::new(&v)
                .map(Some)
                .map_err(|e| format!("{CONTROL_TOKEN_ENV}: {e}")),
            _ => Ok(None),
        }
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(redacted)")
    }
}

impl Config {
    /// Reads and validates a config file; every problem with its place.
    pub fn load(path: &Path) -> Result<Config, Vec<Diagnostic>> {
        let text = crate::diagnostic::read_text(path).map_err(|d| vec![d])?;
        match check_config(&text, path) {
            (Some(c), _) => Ok(c),
            (None, diags) => Err(diags),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tencentcloud: Option<Spanned<RawTencentCloud>>,
    prometheus: Option<Spanned<RawPrometheus>>,
    engine: Option<Spanned<RawEngine>>,
    ha: Option<Spanned<RawHa>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHa {
    etcd: Option<Spanned<Vec<Spanned<String>>>>,
    prefix: Option<Spanned<String>>,
    lease_ttl: Option<Spanned<String>>,
    instance: Option<Spanned<String>>,
    compaction_interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTencentCloud {
    endpoint: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrometheus {
    url: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    policies: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    api_rate: Option<Spanned<i64>>,
    fleet_refresh: Option<Spanned<String>>,
    control_token: Option<Spanned<String>>,
}

/// Validates a config file's text (errors and warnings); the config when there is no error.
pub fn check_config(text: &str, path: &Path) -> (Option<Config>, Vec<Diagnostic>) {
    let stage1: Stage1<RawConfig> = deserialize_all(text, path, &SECRET_KEYS);
    let (mut ctx, raw) = Ctx::new(text, path, stage1);
    let config = raw.and_then(|r| validate_config(&mut ctx, r));
    let ok = !ctx.has_errors();
    (config.filter(|_| ok), ctx.finish())
}

fn http_url(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<String> {
    let s = v.get_ref().trim();
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if !u.username().is_empty() || u.password().is_some() {
                ctx.err(
                    v.span().start,
                    format!("`{key}` contains credentials"),
                    "remove the user:password part; credentials are never kept in this file",
                );
                return None;
            }
            Some(s.trim_end_matches('/').to_string())
        }
        Ok(_) => {
            ctx.err(
                v.span().start,
                format!("`{key}` must be an http:// or https:// URL"),
                "e.g. `http://127.0.0.1:9090`",
            );
            None
        }
        Err(e) => {
            ctx.err(
                v.span().start,
                format!("`{key}` is not a URL: {e}"),
                "e.g. `http://127.0.0.1:9090`",
            );
            None
        }
    }
}

fn validate_config(ctx: &mut Ctx<'_>, raw: RawConfig) -> Option<Config> {
    let dir = ctx
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();

    let mut tencentcloud = TencentCloudConfig {
        endpoint: DEFAULT_ENDPOINT.to_string(),
        region: None,
    };
    if let Some(tc) = &raw.tencentcloud {
        let r = tc.get_ref();
        if let Some(e) = &r.endpoint {
            // The very check `run` makes, so `validate --config` refuses what `run` refuses.
            match crate::cloud::request::Endpoint::parse(e.get_ref()) {
                Ok(_) => tencentcloud.endpoint = e.get_ref().trim().to_string(),
                Err(err) => ctx.err(
                    e.span().start,
                    format!("`tencentcloud.endpoint`: {err}"),
                    "use https://gaap.tencentcloudapi.com, or http://127.0.0.1:PORT for a local sandbox",
                ),
            }
        }
        if let Some(region) = &r.region {
            let v = region.get_ref().trim();
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                ctx.err(
                    region.span().start,
                    format!("`tencentcloud.region` = `{v}` is not a region name"),
                    "e.g. `ap-guangzhou`, or leave it out",
                );
            }
            tencentcloud.region = Some(v.to_string());
        }
    }

    let mut prometheus = PrometheusConfig {
        url: String::new(),
        timeout: Duration::from_secs(10),
    };
    match &raw.prometheus {
        None => {
            if !ctx.dropped.contains("prometheus") {
                ctx.err(0, "no [prometheus] section", "add [prometheus] with `url = \"http://127.0.0.1:9090\"`: where the policies' queries run");
            }
        }
        Some(p) => {
            let r = p.get_ref();
            match &r.url {
                Some(u) => prometheus.url = http_url(ctx, u, "prometheus.url").unwrap_or_default(),
                None => ctx.missing(
                    "prometheus.url",
                    p.span().start,
                    "[prometheus] has no `url`",
                    "add `url = \"http://127.0.0.1:9090\"`",
                ),
            }
            if let Some(t) = &r.timeout
                && let Some(d) = ctx.duration(t, "prometheus.timeout", false)
            {
                prometheus.timeout = d;
            }
        }
    }

    let mut engine = EngineConfig {
        policies: dir.join("policies"),
        data_dir: dir.join("data"),
        listen: DEFAULT_LISTEN.parse().ok()?,
        api_rate: MAX_API_RATE,
        fleet_refresh: Duration::from_secs(300),
        control_token: None,
    };
    if let Some(e) = &raw.engine {
        let r = e.get_ref();
        for (key, v, out) in [
            ("policies", &r.policies, &mut engine.policies),
            ("data_dir", &r.data_dir, &mut engine.data_dir),
        ] {
            let Some(v) = v else { continue };
            if v.get_ref().trim().is_empty() {
                ctx.err(
                    v.span().start,
                    format!("`engine.{key}` is empty"),
                    "give a directory (relative paths are relative to this file)",
                );
            } else {
                *out = dir.join(v.get_ref().trim());
            }
        }
        if let Some(l) = &r.listen {
            match l.get_ref().trim().parse::<SocketAddr>() {
                Ok(a) => engine.listen = a,
                Err(_) => ctx.err(l.span().start, format!("`engine.listen` = `{}` is not an address", l.get_ref()), "write IP:PORT, e.g. `127.0.0.1:9464` (or `0.0.0.0:9464` to listen on every interface)"),
            }
        }
        if let Some(a) = &r.api_rate {
            let n = *a.get_ref();
            if (1..=i64::from(MAX_API_RATE)).contains(&n) {
                engine.api_rate = n as u32;
            } else {
                ctx.err(a.span().start, format!("`engine.api_rate` = {n} is outside 1..=20"), "the GAAP API allows at most 20 requests per second per action; the default is 20");
            }
        }
        if let Some(f) = &r.fleet_refresh
            && let Some(d) = ctx.duration(f, "engine.fleet_refresh", false)
        {
            engine.fleet_refresh = d;
        }
        if let Some(t) = &r.control_token {
            // The message never repeats the value.
            match ControlToken::new(t.get_ref()) {
                Ok(tok) => engine.control_token = Some(tok),
                Err(e) => ctx.err(
                    t.span().start,
                    format!("`engine.control_token`: {e}"),
                    "use a random string of 16 or more characters (e.g. `openssl rand -hex 32`), or set GAAP_AUTOSCALER_CONTROL_TOKEN instead",
                ),
            }
        }
    }

    let ha = raw.ha.as_ref().and_then(|h| validate_ha(ctx, h));

    if ctx.has_errors() {
        return None;
    }
    Some(Config {
        source: ctx.path.to_path_buf(),
        tencentcloud,
        prometheus,
        engine,
        ha,
    })
}

fn validate_ha(ctx: &mut Ctx<'_>, h: &Spanned<RawHa>) -> Option<HaConfig> {
    let r = h.get_ref();
    let mut etcd = Vec::new();
    match &r.etcd {
        None => ctx.missing(
            "ha.etcd",
            h.span().start,
            "[ha] has no `etcd`",
            "list the etcd client URLs, e.g. `etcd = [\"http://10.0.0.1:2379\", \"http://10.0.0.2:2379\", \"http://10.0.0.3:2379\"]`",
        ),
        Some(list) if list.get_ref().is_empty() => ctx.err(
            list.span().start,
            "`ha.etcd` is empty",
            "list at least one etcd client URL (every member of the cluster, for failover)",
        ),
        Some(list) => {
            for u in list.get_ref() {
                if let Some(url) = http_url(ctx, u, "ha.etcd") {
                    etcd.push(url);
                }
            }
        }
    }
    let mut prefix = DEFAULT_HA_PREFIX.to_string();
    if let Some(p) = &r.prefix {
        let v = p.get_ref().trim().trim_end_matches('/');
        if !v.starts_with('/') || v.len() < 2 || v.chars().any(|c| c.is_control() || c == '\0') {
            ctx.err(
                p.span().start,
                format!("`ha.prefix` = `{}` is not a key prefix", p.get_ref()),
                "start it with `/` and give it a name, e.g. `/gaap-autoscaler` (the default)",
            );
        } else {
            prefix = v.to_string();
        }
    }
    let mut lease_ttl = Duration::from_secs(10);
    if let Some(t) = &r.lease_ttl
        && let Some(d) = ctx.duration(t, "ha.lease_ttl", false)
    {
        if d < MIN_LEASE_TTL || d > Duration::from_secs(3600) || d.subsec_nanos() != 0 {
            ctx.err(
                t.span().start,
                format!("`ha.lease_ttl` = `{}` is outside 2s..=1h or not whole seconds", t.get_ref()),
                "etcd leases count whole seconds; the leader steps down at half the TTL, which must cover the API budget's 1 s window; the default is 10s",
            );
        } else {
            lease_ttl = d;
        }
    }
    let instance = match &r.instance {
        Some(i) => {
            let v = i.get_ref().trim();
            if !valid_instance(v) {
                ctx.err(
                    i.span().start,
                    format!("`ha.instance` = `{}` is not an instance name", i.get_ref()),
                    "use 1 to 64 printable characters without spaces, e.g. `host-a`; the default is hostname-pid",
                );
            }
            v.to_string()
        }
        None => default_instance(),
    };
    let mut compaction_interval = Some(DEFAULT_COMPACTION_INTERVAL);
    if let Some(t) = &r.compaction_interval
        && let Some(d) = ctx.duration(t, "ha.compaction_interval", true)
    {
        if d.is_zero() {
            compaction_interval = None;
        } else if d < Duration::from_secs(10) {
            ctx.err(
                t.span().start,
                format!("`ha.compaction_interval` = `{}` is shorter than 10s", t.get_ref()),
                "each old version stays one to two intervals; the default is 5m, and \"0s\" leaves compaction to etcd (--auto-compaction-retention)",
            );
        } else {
            compaction_interval = Some(d);
        }
    }
    Some(HaConfig {
        etcd,
        prefix,
        lease_ttl,
        instance,
        compaction_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> (Option<Config>, Vec<Diagnostic>) {
        check_config(text, Path::new("conf/gaap-autoscaler.toml"))
    }

    #[test]
    fn defaults_and_relative_paths() {
        let (c, d) = check("[prometheus]\nurl = \"http://127.0.0.1:9090/\"\n");
        assert!(d.is_empty(), "{d:#?}");
        let c = c.unwrap();
        assert_eq!(c.tencentcloud.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(c.tencentcloud.region, None);
        assert_eq!(c.prometheus.url, "http://127.0.0.1:9090");
        assert_eq!(c.prometheus.timeout, Duration::from_secs(10));
        assert_eq!(c.engine.policies, PathBuf::from("conf/policies"));
        assert_eq!(c.engine.data_dir, PathBuf::from("conf/data"));
        assert_eq!(c.engine.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.engine.api_rate, 20);
        assert_eq!(c.engine.fleet_refresh, Duration::from_secs(300));
        assert_eq!(c.ha, None, "no [ha]: one process, sled only");
    }

    #[test]
    fn ha_defaults_and_values() {
        let p = "[prometheus]\nurl = \"http://127.0.0.1:9090\"\n";
        let (c, d) = check(&format!(
            "{p}[ha]\netcd = [\"http://127.0.0.1:2379/\", \"https://e2:2379\"]\n"
        ));
        assert!(d.is_empty(), "{d:#?}");
        let ha = c.unwrap().ha.unwrap();
        assert_eq!(ha.etcd, ["http://127.0.0.1:2379", "https://e2:2379"]);
        assert_eq!(ha.prefix, DEFAULT_HA_PREFIX);
        assert_eq!(ha.lease_ttl, Duration::from_secs(10));
        assert_eq!(ha.compaction_interval, Some(DEFAULT_COMPACTION_INTERVAL));
        assert!(
            ha.instance.ends_with(&format!("-{}", std::process::id())),
            "{}",
            ha.instance
        );
        assert!(valid_instance(&ha.instance));
        let (c, d) = check(&format!(
            "{p}[ha]\netcd = [\"http://e:2379\"]\nprefix = \"/x/y/\"\nlease_ttl = \"2s\"\ninstance = \"host-a\"\n"
        ));
        assert!(d.is_empty(), "{d:#?}");
        let ha = c.unwrap().ha.unwrap();
        assert_eq!(
            (ha.prefix.as_str(), ha.lease_ttl, ha.instance.as_str()),
            ("/x/y", Duration::from_secs(2), "host-a")
        );
        for (text, want) in [
            (
                "compaction_interval = \"1m\"",
                Some(Duration::from_secs(60)),
            ),
            ("compaction_interval = \"0s\"", None),
        ] {
            let (c, d) = check(&format!("{p}[ha]\netcd = [\"http://e:2379\"]\n{text}\n"));
            assert!(d.is_empty(), "{d:#?}");
            assert_eq!(c.unwrap().ha.unwrap().compaction_interval, want, "{text}");
        }
    }

    #[test]
    fn the_example_config_is_valid() {
        let text = include_str!("../examples/gaap-autoscaler.toml");
        let (c, d) = check_config(text, Path::new("examples/gaap-autoscaler.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(
            c.unwrap().engine.policies,
            PathBuf::from("examples/../policies")
        );
    }

    #[test]
    fn each_rule_reports_its_problem() {
        let p = "[prometheus]\nurl = \"http://127.0.0.1:9090\"\n";
        let cases: Vec<(String, &str, usize)> = vec![
            (String::new(), "no [prometheus] section", 1),
            (
                "[prometheus]\ntimeout = \"5s\"\n".into(),
                "[prometheus] has no `url`",
                1,
            ),
            (
                "[prometheus]\nurl = \"localhost:9090\"\n".into(),
                "must be an http:// or https:// URL",
                2,
            ),
            (
                "[prometheus]\nurl = \"http://u:p@h:9090\"\n".into(),
                "contains credentials",
                2,
            ),
            (
                format!("{p}timeout = \"0s\"\n"),
                "must be longer than 0s",
                3,
            ),
            (format!("{p}[engine]\napi_rate = 21\n"), "outside 1..=20", 4),
            (
                format!("{p}[engine]\ncontrol_token = \"short-tok\"\n"),
                "shorter than 16 characters",
                4,
            ),
            (format!("{p}[engine]\napi_rate = 0\n"), "outside 1..=20", 4),
            (
                format!("{p}[engine]\nlisten = \"localhost\"\n"),
                "is not an address",
                4,
            ),
            (
                format!("{p}[engine]\nfleet_refresh = \"soon\"\n"),
                "invalid duration",
                4,
            ),
            (
                format!("{p}[engine]\npolicy = \"p\"\n"),
                "unknown key `policy` in `engine`",
                4,
            ),
            (
                format!("{p}[tencentcloud]\nendpoint = \"ftp://x\"\n"),
                "is not a URL",
                4,
            ),
            // What `run` refuses (Endpoint::parse), validate refuses, at its place.
            (
                format!("{p}[tencentcloud]\nendpoint = \"http://10.1.2.3\"\n"),
                "plain http is only allowed for loopback",
                4,
            ),
            (
                format!("{p}[tencentcloud]\nendpoint = \"https://h/path\"\n"),
                "without a path",
                4,
            ),
            (
                format!("{p}[tencentcloud]\nregion = \"ap guangzhou\"\n"),
                "not a region name",
                4,
            ),
            (
                format!("{p}[ha]\nprefix = \"/x\"\n"),
                "[ha] has no `etcd`",
                3,
            ),
            (format!("{p}[ha]\netcd = []\n"), "`ha.etcd` is empty", 4),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\", \"e:2379\"]\n"),
                "must be an http:// or https:// URL",
                4,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://u:p@e:2379\"]\n"),
                "contains credentials",
                4,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\nprefix = \"gaap\"\n"),
                "is not a key prefix",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\nlease_ttl = \"1s\"\n"),
                "outside 2s..=1h",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\nlease_ttl = \"2500ms\"\n"),
                "not whole seconds",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\nlease_ttl = \"soon\"\n"),
                "invalid duration",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\ncompaction_interval = \"5s\"\n"),
                "is shorter than 10s",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\ninstance = \"host a\"\n"),
                "is not an instance name",
                5,
            ),
            (
                format!("{p}[ha]\netcd = [\"http://e:1\"]\nleader = \"x\"\n"),
                "unknown key `leader` in `ha`",
                5,
            ),
        ];
        for (text, want, line) in cases {
            let (c, d) = check(&text);
            assert!(c.is_none(), "{want}");
            let hit = d
                .iter()
                .find(|d| d.message.contains(want))
                .unwrap_or_else(|| panic!("{want:?} not in {d:#?}"));
            assert_eq!(hit.line, line, "{hit}");
            assert!(hit.help.is_some());
        }
    }

    #[test]
    fn secrets_are_rejected_without_echoing_them() {
        for key in ["secret_id", "secret_key", "SecretKey", "token"] {
            let text = format!(
                "[tencentcloud]\n{key} = \"AKIDsupersecret\"\n[prometheus]\nurl = \"http://h:9090\"\n"
            );
            let (c, d) = check(&text);
            assert!(c.is_none(), "{key}");
            let rendered: String = d.iter().map(|d| d.to_string()).collect();
            assert!(
                rendered.contains("credentials do not belong in this file"),
                "{rendered}"
            );
            assert!(rendered.contains("TENCENTCLOUD_SECRET_ID"), "{rendered}");
            assert!(!rendered.contains("supersecret"), "{rendered}");
        }
    }
}
