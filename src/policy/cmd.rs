//! `gaap-autoscaler validate`: check policy files (and a fleet or config file), print
//! every problem as `file:line:col: message` with a help line, then a one-line summary.
//! Exit 0 when there is no error (warnings allowed), 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{
    CheckedPolicy, Diagnostic, FileKind, check_policy_files_capped, diagnostic, expand_paths,
    file_kind, fleet_checks,
};
use crate::config::{Config, check_config};
use crate::fleet::{Fleet, check_fleet};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  gaap-autoscaler validate                          ./policies (or the config's policies dir)\n  gaap-autoscaler validate policies/ --fleet examples/fleet.toml\n  gaap-autoscaler validate --config gaap-autoscaler.toml\n\nEvery problem is printed as file:line:col: message, with a help line. Exit 1 on any error."
)]
pub struct ValidateArgs {
    /// Policy files or directories of them (default: ./policies, or the config's policies
    /// directory); fleet and config files are recognized by their tables.
    pub paths: Vec<PathBuf>,
    /// A fleet file to check the policies against (proxies selected twice through tags,
    /// listed ids the fleet lacks, bounds without any allowed value).
    #[arg(long, value_name = "FILE")]
    pub fleet: Option<PathBuf>,
    /// A daemon config file (gaap-autoscaler.toml) to check.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// A check that needs the outside world, run on the valid policies after the offline
/// ones. `prometheus_url` is the `[prometheus] url` of the config file being validated,
/// if any. This is where query checks against a live Prometheus plug in.
pub type OnlineCheck =
    fn(policies: &[CheckedPolicy], prometheus_url: Option<&str>) -> Vec<Diagnostic>;

/// `validate` prints at most this many diagnostics, then how many it left out (the
/// summary counts them all).
pub const MAX_PRINTED: usize = 100;

/// What `validate` found.
#[derive(Debug, Default)]
pub struct Report {
    pub policies: usize,
    pub fleets: usize,
    pub configs: usize,
    /// The first [`MAX_PRINTED`] of each policy file's diagnostics are kept (so the
    /// first [`MAX_PRINTED`] of all are here, in order); the others are counted here.
    pub diagnostics: Vec<Diagnostic>,
    pub omitted: diagnostic::Omitted,
}

impl Report {
    pub fn errors(&self) -> usize {
        diagnostic::count(&self.diagnostics).0 + self.omitted.errors
    }
    /// "checked 3 policies, 1 fleet: 2 errors, 1 warning".
    pub fn summary(&self) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut what = vec![plural(self.policies, "policy", "policies")];
        if self.fleets > 0 {
            what.push(plural(self.fleets, "fleet", "fleets"));
        }
        if self.configs > 0 {
            what.push(plural(self.configs, "config", "configs"));
        }
        let (e, w) = diagnostic::count(&self.diagnostics);
        let (e, w) = (e + self.omitted.errors, w + self.omitted.warnings);
        format!(
            "checked {}: {}, {}",
            what.join(", "),
            plural(e, "error", "errors"),
            plural(w, "warning", "warnings")
        )
    }
}

/// Runs every offline check (and the given online ones) over the paths of `args`.
pub fn check(args: &ValidateArgs, online: &[OnlineCheck]) -> Report {
    let mut report = Report::default();
    let mut policy_files = Vec::new();
    let mut fleet_files: Vec<PathBuf> = args.fleet.iter().cloned().collect();
    let mut config_files: Vec<PathBuf> = args.config.iter().cloned().collect();

    let (files, diags) = expand_paths(&args.paths);
    report.diagnostics.extend(diags);
    for f in files {
        match std::fs::read_to_string(&f).map(|t| file_kind(&t)) {
            Ok(FileKind::Fleet) => fleet_files.push(f),
            Ok(FileKind::Config) => config_files.push(f),
            Ok(FileKind::Policy) | Err(_) => policy_files.push(f),
        }
    }

    let mut configs: Vec<Config> = Vec::new();
    for f in &config_files {
        report.configs += 1;
        let (c, d) = read_and(f, check_config);
        report.diagnostics.extend(d);
        configs.extend(c);
    }

    let mut fleet: Option<Fleet> = None;
    for (i, f) in fleet_files.iter().enumerate() {
        report.fleets += 1;
        let (fl, d) = read_and(f, check_fleet);
        report.diagnostics.extend(d);
        if i > 0 {
            report.diagnostics.push(
                Diagnostic::error(
                    f,
                    0,
                    0,
                    format!(
                        "a second fleet file (the first is {})",
                        fleet_files[0].display()
                    ),
                )
                .with_help("give one fleet file"),
            );
        } else {
            fleet = fl;
        }
    }

    // No policy path given: the config's policies directory, else ./policies.
    if args.paths.is_empty() {
        let dir = configs
            .first()
            .map_or_else(|| PathBuf::from("policies"), |c| c.engine.policies.clone());
        let (files, diags) = expand_paths(&[dir]);
        report.diagnostics.extend(diags);
        policy_files.extend(files);
    }

    report.policies = policy_files.len();
    let (checked, diags, omitted) = check_policy_files_capped(&policy_files, MAX_PRINTED);
    report.diagnostics.extend(diags);
    report.omitted = omitted;
    if let Some(fleet) = &fleet {
        report.diagnostics.extend(fleet_checks(&checked, fleet));
    }
    let url = configs.first().map(|c| c.prometheus.url.as_str());
    for check in online {
        report.diagnostics.extend(check(&checked, url));
    }
    report
}

/// A file checker: `check_config`, `check_fleet`...
type Checker<T> = fn(&str, &Path) -> (Option<T>, Vec<Diagnostic>);

fn read_and<T>(path: &Path, f: Checker<T>) -> (Option<T>, Vec<Diagnostic>) {
    match diagnostic::read_text(path) {
        Ok(text) => f(&text, path),
        Err(d) => (None, vec![d]),
    }
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let report = check(&args, &[]);
    if !report.diagnostics.is_empty() {
        eprintln!(
            "{}",
            diagnostic::render_capped_more(&report.diagnostics, MAX_PRINTED, report.omitted)
        );
    }
    eprintln!("{}", report.summary());
    Ok(if report.errors() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::USER_ERROR)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_by_their_tables() {
        let cases: &[(&str, FileKind)] = &[
            ("[[proxy]]\nid = \"x\"\n", FileKind::Fleet),
            ("[[ladder]]\naccess_region = \"x\"\n", FileKind::Fleet),
            ("[engine]\n", FileKind::Config),
            ("[prometheus]\nurl = \"x\"\n", FileKind::Config),
            ("name = \"web\"\n[bandwidth]\n", FileKind::Policy),
            ("this is not toml", FileKind::Policy),
            // Told without parsing when no such key can be there, else by parsing.
            ("\"proxy\" = []\n", FileKind::Fleet),
            ("'engine' = {}\n", FileKind::Config),
            ("\"pro\\u0078y\" = []\n", FileKind::Fleet),
            ("proxy.id = \"x\"\n", FileKind::Fleet),
            ("[signals.proxy]\nquery = 'x'\n", FileKind::Policy),
            (
                "# one proxy\nproxy_label = 'x'\nmy-engine = 1\n",
                FileKind::Policy,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(file_kind(text), *want, "{text}");
        }
    }

    #[test]
    fn the_summary_counts_and_pluralizes() {
        let mut r = Report {
            policies: 3,
            fleets: 1,
            configs: 0,
            diagnostics: vec![],
            omitted: Default::default(),
        };
        assert_eq!(
            r.summary(),
            "checked 3 policies, 1 fleet: 0 errors, 0 warnings"
        );
        r.diagnostics
            .push(Diagnostic::error(Path::new("a"), 1, 1, "x"));
        r.diagnostics
            .push(Diagnostic::error(Path::new("a"), 1, 1, "y"));
        r.diagnostics
            .push(Diagnostic::warning(Path::new("a"), 1, 1, "z"));
        r.policies = 1;
        r.configs = 1;
        assert_eq!(
            r.summary(),
            "checked 1 policy, 1 fleet, 1 config: 2 errors, 1 warning"
        );
        assert_eq!(r.errors(), 2);
        // Diagnostics counted but not kept count too.
        r.omitted = diagnostic::Omitted {
            errors: 3,
            warnings: 1,
        };
        assert_eq!(
            r.summary(),
            "checked 1 policy, 1 fleet, 1 config: 5 errors, 2 warnings"
        );
        assert_eq!(r.errors(), 5);
    }
}
