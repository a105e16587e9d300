//! `simulate --export-openmetrics FILE` writes what promtool backfills: the bundled
//! policies' metric names and proxy label, every trace sample, `# EOF` last, and
//! `promtool tsdb create-blocks-from openmetrics` accepts it (a missing promtool fails
//! this test: apt-get install prometheus).

use std::process::Command;

#[test]
fn the_export_names_what_the_policies_query_and_promtool_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let om = dir.path().join("trace.om");
    let out = Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"))
        .args(["simulate", "--days", "1", "--json", "--export-openmetrics"])
        .arg(&om)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));
    // The names the bundled policies' queries read (policies/web.toml, batch.toml).
    for policy in ["policies/web.toml", "policies/batch.toml"] {
        let p =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(policy))
                .unwrap();
        for metric in ["qce_qaap_outbandwidth_max", "qce_qaap_connum_max"] {
            assert!(p.contains(metric), "{policy} queries {metric}");
            assert!(
                text.contains(&format!("# TYPE {metric} gauge\n")),
                "{metric} family"
            );
        }
    }
    assert!(text.contains("qce_qaap_outbandwidth_max{channel_id=\"link-kicu7m5b\"} "));
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert!(samples > 5 * 2 * 1000, "{samples}");

    let blocks = dir.path().join("data");
    let promtool = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("run promtool (apt-get install prometheus)");
    assert!(
        promtool.status.success(),
        "promtool refused the export:\n{}\n{}",
        String::from_utf8_lossy(&promtool.stdout),
        String::from_utf8_lossy(&promtool.stderr)
    );
    // promtool lists each block it wrote (ULID, min, max, duration, samples, ...): every
    // sample line of the file is in a block.
    let listing = String::from_utf8_lossy(&promtool.stdout);
    let loaded: usize = listing
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() >= 5 && cols[0].len() == 26).then(|| cols[4].parse::<usize>().ok())?
        })
        .sum();
    assert_eq!(loaded, samples, "promtool's blocks:\n{listing}");
}
