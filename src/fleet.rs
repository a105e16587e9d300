//! The fleet file: ladders (allowed values per region pair) and proxies, as
//! `DescribeAccessRegionsByDestRegion` and `DescribeProxies` would return them. Used by
//! `simulate` and `sandbox`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::core::{Ladder, ProxyState, ProxyStatus};
use crate::diagnostic::Diagnostic;
use crate::diagnostic::collect::{Ctx, Stage1, deserialize_all};

/// A ladder row: the allowed values for proxies in `access_region` whose origin is
/// `dest_region` (None = any destination).
#[derive(Clone, Debug, PartialEq)]
pub struct LadderEntry {
    pub access_region: String,
    pub dest_region: Option<String>,
    pub ladder: Ladder,
}

#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub ladders: Vec<LadderEntry>,
    pub proxies: Vec<ProxyState>,
}

/// The example fleet bundled into the binary (`examples/fleet.toml`).
pub const BUNDLED_FLEET: &str = include_str!("../examples/fleet.toml");

impl Fleet {
    /// The ladder for a proxy: an exact (access, dest) row first, else the access region's
    /// any-destination row.
    pub fn ladder_for(&self, access_region: &str, dest_region: &str) -> Option<&Ladder> {
        self.ladders
            .iter()
            .find(|l| {
                l.access_region == access_region && l.dest_region.as_deref() == Some(dest_region)
            })
            .or_else(|| {
                self.ladders
                    .iter()
                    .find(|l| l.access_region == access_region && l.dest_region.is_none())
            })
            .map(|l| &l.ladder)
    }

    pub fn proxy(&self, id: &str) -> Option<&ProxyState> {
        self.proxies.iter().find(|p| p.id == id)
    }

    /// Parses a fleet file; every problem is reported with its place.
    pub fn parse(text: &str, path: &Path) -> Result<Fleet, Vec<Diagnostic>> {
        parse_fleet(text, path)
    }

    pub fn load(path: &Path) -> Result<Fleet, Vec<Diagnostic>> {
        crate::diagnostic::read_text(path)
            .map_err(|d| vec![d])
            .and_then(|text| Fleet::parse(&text, path))
    }

    pub fn bundled() -> Fleet {
        Fleet::parse(BUNDLED_FLEET, Path::new("<bundled fleet>"))
            .expect("the bundled fleet is valid")
    }
}

/// Parses a fleet file (errors and warnings). Returns the fleet when there is no error.
pub fn check_fleet(text: &str, path: &Path) -> (Option<Fleet>, Vec<Diagnostic>) {
    let stage1: Stage1<RawFleet> = deserialize_all(text, path, &[]);
    let (mut ctx, raw) = Ctx::new(text, path, stage1);
    let fleet = raw.map(|r| validate_fleet(&mut ctx, r));
    let ok = !ctx.has_errors();
    (fleet.filter(|_| ok), ctx.finish())
}

fn parse_fleet(text: &str, path: &Path) -> Result<Fleet, Vec<Diagnostic>> {
    match check_fleet(text, path) {
        (Some(f), diags) => {
            for d in &diags {
                tracing::warn!(file = %d.file.display(), line = d.line, col = d.col, "{}", d.message);
            }
            Ok(f)
        }
        (None, diags) => Err(diags),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    ladder: Option<Vec<Spanned<RawLadder>>>,
    proxy: Option<Vec<Spanned<RawProxy>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLadder {
    access_region: Option<Spanned<String>>,
    dest_region: Option<Spanned<String>>,
    bandwidth: Option<Spanned<Vec<Spanned<i64>>>>,
    concurrent: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    id: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    access_region: Option<Spanned<String>>,
    real_server_region: Option<Spanned<String>>,
    bandwidth: Option<Spanned<i64>>,
    concurrent: Option<Spanned<i64>>,
    status: Option<Spanned<String>>,
    scalarable: Option<Spanned<i64>>,
    billing_type: Option<Spanned<i64>>,
    tags: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

/// Proxy statuses `DescribeProxies` reports (others are kept, with a warning).
const KNOWN_STATUSES: [&str; 12] = [
    "RUNNING",
    "CREATING",
    "DESTROYING",
    "OPENING",
    "CLOSING",
    "CLOSED",
    "ADJUSTING",
    "ISOLATING",
    "ISOLATED",
    "CLONING",
    "RECOVERING",
    "MOVING",
];

fn required_str(
    ctx: &mut Ctx<'_>,
    v: &Option<Spanned<String>>,
    key: &str,
    what: &str,
    at: usize,
    help: &str,
) -> Option<String> {
    match v {
        Some(s) if s.get_ref().trim().is_empty() => {
            ctx.err(s.span().start, format!("`{key}` is empty"), help);
            None
        }
        Some(s) => Some(s.get_ref().trim().to_string()),
        None => {
            ctx.missing(
                key,
                at,
                format!("{what} has no `{}`", key.rsplit('.').next().unwrap_or(key)),
                help,
            );
            None
        }
    }
}

fn ladder_list(
    ctx: &mut Ctx<'_>,
    v: &Option<Spanned<Vec<Spanned<i64>>>>,
    key: &str,
    at: usize,
) -> Option<Vec<u32>> {
    let Some(list) = v else {
        ctx.missing(
            &format!("ladder.{key}"),
            at,
            format!("[[ladder]] has no `{key}` list"),
            format!("add `{key} = [...]`: the allowed values, ascending"),
        );
        return None;
    };
    if list.get_ref().is_empty() {
        ctx.err(
            list.span().start,
            format!("`{key}` is empty"),
            "list the allowed values, ascending",
        );
        return None;
    }
    let mut out: Vec<u32> = Vec::new();
    let mut ok = true;
    for item in list.get_ref() {
        let Some(n) = ctx.uint(item, key, 1) else {
            ok = false;
            continue;
        };
        if let Some(&prev) = out.last()
            && n <= prev
        {
            ctx.err(
                item.span().start,
                format!("`{key}` is not ascending: {n} comes after {prev}"),
                "list each allowed value once, smallest first",
            );
            ok = false;
        }
        out.push(n);
    }
    ok.then_some(out)
}

fn validate_fleet(ctx: &mut Ctx<'_>, raw: RawFleet) -> Fleet {
    let mut fleet = Fleet::default();
    // The first row of each (access, dest) pair and where it is: one lookup per row.
    let mut ladder_at: BTreeMap<(String, Option<String>), usize> = BTreeMap::new();
    for l in raw.ladder.iter().flatten() {
        let at = l.span().start;
        let r = l.get_ref();
        let access = required_str(
            ctx,
            &r.access_region,
            "ladder.access_region",
            "[[ladder]]",
            at,
            "add `access_region = \"Guangzhou\"`: the access region this row applies to",
        );
        let dest = r
            .dest_region
            .as_ref()
            .map(|d| d.get_ref().trim().to_string());
        let bandwidth = ladder_list(ctx, &r.bandwidth, "bandwidth", at);
        let concurrent = ladder_list(ctx, &r.concurrent, "concurrent", at);
        let Some(access) = access else { continue };
        if let Some(&first) = ladder_at.get(&(access.clone(), dest.clone())) {
            let (line, col) = ctx.loc(first);
            let pair = match &dest {
                Some(d) => format!("{access} → {d}"),
                None => format!("{access} → any destination"),
            };
            ctx.err(
                at,
                format!("duplicate [[ladder]] row for {pair} (first at line {line}, column {col})"),
                "keep one row per (access_region, dest_region) pair",
            );
            continue;
        }
        if let (Some(b), Some(c)) = (bandwidth, concurrent) {
            ladder_at.insert((access.clone(), dest.clone()), at);
            fleet.ladders.push(LadderEntry {
                access_region: access,
                dest_region: dest,
                ladder: Ladder::new(b, c),
            });
        }
    }
    let mut proxy_at: BTreeMap<String, usize> = BTreeMap::new();
    for p in raw.proxy.iter().flatten() {
        let at = p.span().start;
        let r = p.get_ref();
        let id = required_str(
            ctx,
            &r.id,
            "proxy.id",
            "[[proxy]]",
            at,
            "add `id = \"link-xxxxxxxx\"`",
        );
        // A duplicate is reported, and its other problems too (it is not kept).
        let mut duplicate = false;
        if let (Some(id), Some(idv)) = (&id, &r.id)
            && let Some(first) = proxy_at.get(id)
        {
            let (line, col) = ctx.loc(*first);
            ctx.err(
                idv.span().start,
                format!("duplicate proxy id `{id}` (first at line {line}, column {col})"),
                "each [[proxy]] needs its own id",
            );
            duplicate = true;
        }
        let access = required_str(
            ctx,
            &r.access_region,
            "proxy.access_region",
            "[[proxy]]",
            at,
            "add `access_region = \"Guangzhou\"`",
        );
        let dest = required_str(
            ctx,
            &r.real_server_region,
            "proxy.real_server_region",
            "[[proxy]]",
            at,
            "add `real_server_region = \"Shanghai\"` (the origin's region)",
        );
        let dim = |ctx: &mut Ctx<'_>, v: &Option<Spanned<i64>>, key: &str, unit: &str| match v {
            Some(v) => ctx.uint(v, key, 1),
            None => {
                ctx.missing(
                    &format!("proxy.{key}"),
                    at,
                    format!("[[proxy]] has no `{key}`"),
                    format!("add `{key} = ...`: the current value ({unit})"),
                );
                None
            }
        };
        let bandwidth = dim(ctx, &r.bandwidth, "bandwidth", "Mbps");
        let concurrent = dim(
            ctx,
            &r.concurrent,
            "concurrent",
            "units of 10,000 connections",
        );
        let status = match &r.status {
            None => ProxyStatus::Running,
            Some(s) => {
                let v = s.get_ref();
                if !KNOWN_STATUSES.contains(&v.as_str()) {
                    let upper = v.to_ascii_uppercase();
                    let help = if KNOWN_STATUSES.contains(&upper.as_str()) {
                        format!("statuses are written in capitals: `{upper}`")
                    } else {
                        format!(
                            "DescribeProxies reports one of {}",
                            KNOWN_STATUSES.join(", ")
                        )
                    };
                    ctx.warn(
                        s.span().start,
                        format!("unknown proxy status `{v}`: the proxy will be skipped"),
                        help,
                    );
                }
                ProxyStatus::parse(s.get_ref())
            }
        };
        let scalarable = match &r.scalarable {
            None => 1,
            Some(v) if matches!(v.get_ref(), 0 | 1) => *v.get_ref(),
            Some(v) => {
                ctx.err(
                    v.span().start,
                    format!("`scalarable` = {} must be 0 or 1", v.get_ref()),
                    "1 = the proxy can be rescaled, 0 = it cannot",
                );
                1
            }
        };
        let billing_type = match &r.billing_type {
            Some(v) if !matches!(v.get_ref(), 0 | 1) => {
                ctx.err(
                    v.span().start,
                    format!("`billing_type` = {} must be 0 or 1", v.get_ref()),
                    "0 = billed by bandwidth, 1 = billed by traffic",
                );
                None
            }
            v => v.as_ref().map(|v| *v.get_ref()),
        };
        let tags: BTreeMap<String, String> = r
            .tags
            .iter()
            .flat_map(|t| t.get_ref().iter())
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        let (Some(id), Some(access), Some(dest), Some(bandwidth), Some(concurrent)) =
            (id, access, dest, bandwidth, concurrent)
        else {
            continue;
        };
        match fleet.ladder_for(&access, &dest) {
            None => ctx.err(
                at,
                format!("proxy `{id}` ({access} → {dest}) has no [[ladder]] row"),
                format!("add a [[ladder]] with access_region = \"{access}\" (and dest_region = \"{dest}\", or none for any destination)"),
            ),
            Some(ladder) => {
                for (key, value, list, v) in [("bandwidth", bandwidth, &ladder.bandwidth, &r.bandwidth), ("concurrent", concurrent, &ladder.concurrent, &r.concurrent)] {
                    if !list.contains(&value) {
                        let at = v.as_ref().map_or(at, |v| v.span().start);
                        let allowed = list.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
                        ctx.warn(at, format!("proxy `{id}`: current {key} {value} is not an allowed value ({allowed})"), "the first change moves it onto the list; check for a typo");
                    }
                }
            }
        }
        if duplicate {
            continue;
        }
        proxy_at.insert(id.clone(), r.id.as_ref().map_or(at, |v| v.span().start));
        fleet.proxies.push(ProxyState {
            id,
            name: r.name.as_ref().map(|n| n.get_ref().clone()),
            access_region: access,
            real_server_region: dest,
            bandwidth,
            concurrent,
            status,
            scalarable,
            billing_type,
            tags,
        });
    }
    if fleet.proxies.is_empty() && raw.proxy.is_none() && !ctx.dropped.contains("proxy") {
        ctx.err(
            0,
            "the fleet has no [[proxy]]",
            "add [[proxy]] tables: id, access_region, real_server_region, bandwidth, concurrent",
        );
    }
    fleet
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: &str =
        "[[ladder]]\naccess_region = \"GZ\"\nbandwidth = [10, 20, 50]\nconcurrent = [2, 5]\n";

    fn check(text: &str) -> (Option<Fleet>, Vec<Diagnostic>) {
        check_fleet(text, Path::new("fleet.toml"))
    }

    /// A duplicate id does not hide the other problems of that [[proxy]].
    #[test]
    fn a_duplicate_proxy_is_still_checked() {
        let text = format!(
            "{LADDER}[[proxy]]\nid = \"link-a\"\naccess_region = \"GZ\"\nreal_server_region = \"SH\"\nbandwidth = 10\nconcurrent = 2\n\
             [[proxy]]\nid = \"link-a\"\naccess_region = \"GZ\"\nreal_server_region = \"SH\"\nbandwidth = 0\nconcurrent = 2\nscalarable = 3\n"
        );
        let (f, d) = check(&text);
        assert!(f.is_none());
        for want in [
            "duplicate proxy id `link-a`",
            "`bandwidth` = 0 must be at least 1",
            "`scalarable` = 3 must be 0 or 1",
        ] {
            assert!(d.iter().any(|d| d.message.contains(want)), "{want}: {d:#?}");
        }
    }

    #[test]
    fn the_bundled_fleet_parses_without_warnings() {
        let (f, d) = check(BUNDLED_FLEET);
        assert!(d.is_empty(), "{d:#?}");
        let f = f.unwrap();
        assert_eq!(f.proxies.len(), 5);
        assert_eq!(f.ladders.len(), 4);
        let legacy = f.proxy("link-legacy01").unwrap();
        assert_eq!(
            (legacy.scalarable, &legacy.status),
            (0, &ProxyStatus::Running)
        );
        let web = f.proxy("link-kicu7m5b").unwrap();
        assert_eq!(web.tags.get("autoscale").map(String::as_str), Some("web"));
        assert_eq!(
            f.ladder_for("Guangzhou", "Beijing")
                .unwrap()
                .bandwidth
                .last(),
            Some(&500)
        );
        assert_eq!(
            f.ladder_for("Guangzhou", "Shanghai")
                .unwrap()
                .bandwidth
                .last(),
            Some(&1000)
        );
        assert_eq!(Fleet::bundled().proxies.len(), 5);
    }

    #[test]
    fn each_rule_reports_its_problem() {
        let proxy = |extra: &str| {
            format!(
                "{LADDER}[[proxy]]\nid = \"link-a\"\naccess_region = \"GZ\"\nreal_server_region = \"SH\"\nbandwidth = 10\nconcurrent = 2\n{extra}"
            )
        };
        let cases: Vec<(String, &str, bool)> = vec![
            (LADDER.to_string(), "no [[proxy]]", true),
            (
                proxy("status = \"BROKEN\"\n"),
                "unknown proxy status",
                false,
            ),
            (proxy("scalarable = 2\n"), "must be 0 or 1", true),
            (proxy("billing_type = 7\n"), "must be 0 or 1", true),
            (proxy("colour = 1\n"), "unknown key `colour`", true),
            (
                proxy(
                    "[[proxy]]\nid = \"link-a\"\naccess_region = \"GZ\"\nreal_server_region = \"SH\"\nbandwidth = 10\nconcurrent = 2\n",
                ),
                "duplicate proxy id `link-a`",
                true,
            ),
            (
                proxy("").replace(
                    "access_region = \"GZ\"\nreal",
                    "access_region = \"HK\"\nreal",
                ),
                "(HK → SH) has no [[ladder]] row",
                true,
            ),
            (
                proxy("").replace(
                    "bandwidth = 10\nconcurrent = 2\n",
                    "bandwidth = 15\nconcurrent = 2\n",
                ),
                "current bandwidth 15 is not an allowed value",
                false,
            ),
            (
                proxy("").replace("[10, 20, 50]", "[10, 50, 20]"),
                "not ascending: 20 comes after 50",
                true,
            ),
            (
                proxy("").replace("[10, 20, 50]", "[0, 10]"),
                "must be at least 1",
                true,
            ),
            (
                proxy("").replace("[10, 20, 50]", "[]"),
                "`bandwidth` is empty",
                true,
            ),
            (
                proxy("").replace("bandwidth = 10\n", ""),
                "[[proxy]] has no `bandwidth`",
                true,
            ),
            (
                proxy("").replace("id = \"link-a\"\n", ""),
                "[[proxy]] has no `id`",
                true,
            ),
            (
                format!("{LADDER}{}", proxy("")),
                "duplicate [[ladder]] row for GZ → any destination",
                true,
            ),
        ];
        for (text, want, is_error) in cases {
            let (f, d) = check(&text);
            let hit = d
                .iter()
                .find(|d| d.message.contains(want))
                .unwrap_or_else(|| panic!("{want:?} not in {d:#?}\n{text}"));
            assert_eq!(hit.is_error(), is_error, "{hit}");
            assert_eq!(f.is_some(), !is_error, "{want}");
            assert!(hit.help.is_some());
            if hit.line == 0 {
                assert!(want.contains("no [[proxy]]"), "{hit}");
            }
        }
    }

    #[test]
    fn defaults_apply() {
        let text = format!(
            "{LADDER}[[proxy]]\nid = \"link-a\"\naccess_region = \"GZ\"\nreal_server_region = \"SH\"\nbandwidth = 10\nconcurrent = 2\n"
        );
        let f = Fleet::parse(&text, Path::new("f.toml")).unwrap();
        let p = &f.proxies[0];
        assert_eq!(
            (
                p.status.clone(),
                p.scalarable,
                p.billing_type,
                p.name.clone()
            ),
            (ProxyStatus::Running, 1, None, None)
        );
        assert!(p.tags.is_empty());
    }
}
