//! The cost of `[ha]`'s shared state per pass, 2,000 proxies, against a real 3-member etcd
//! on loopback (Debian `etcd-server`; started here, like the tests do): one pass's fenced
//! writes (2,000 controller states; and with 200 changes: their pending intents and shared
//! log records), and a takeover's read of every state and intent.
//!
//! Prints its figures (mean of the rounds, and the slowest). `cargo bench --bench ha --
//! --test` runs one round of each.

#[path = "../tests/support/etcd.rs"]
mod etcd_cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gaap_autoscaler::core::{ControllerState, decide, fixtures};
use gaap_autoscaler::ha::{Etcd, Leadership, SharedStore, election};
use gaap_autoscaler::policy::Mode;
use gaap_autoscaler::store::{DecisionRecord, Outcome, RecordContext, decision_id};
use gaap_autoscaler::time::Timestamp;

const N: usize = 2_000;
const CHANGES: usize = 200;
const T0: i64 = 1_795_939_200_000;

/// A state as a 30 s policy with a 5 min window keeps it: 10 recommendations a dimension.
fn state(i: usize) -> ControllerState {
    let mut s = ControllerState::default();
    for k in 0..10 {
        let t = Timestamp(T0 + (i as i64) + k * 30_000);
        s.bandwidth.recommendations.push((t, 100));
        s.concurrent.recommendations.push((t, 10));
    }
    s.bandwidth.last_up = Some(Timestamp(T0));
    s.bandwidth.observed_since = Some(Timestamp(T0));
    s.concurrent.observed_since = Some(Timestamp(T0));
    s
}

fn record(i: usize) -> DecisionRecord {
    let now = Timestamp(T0);
    let policy = fixtures::policy();
    let proxy = fixtures::proxy(10, 2);
    let ladder = fixtures::ladder();
    let obs = fixtures::observe(100.0, 30_000.0, now - Duration::from_secs(10));
    let d = decide(
        &policy,
        &proxy,
        Some(&ladder),
        &obs,
        &ControllerState::default(),
        now,
    );
    let mut r = DecisionRecord::from_decision(
        &d,
        &RecordContext {
            mode: Mode::Live,
            outcome: Outcome::Planned,
            proxy: &proxy,
            ladder: Some(&ladder),
            observation: &obs,
            policy: &policy,
            note: None,
        },
    );
    r.time = Timestamp(T0 + i as i64);
    r.time_ms = T0 + i as i64;
    r.proxy_id = format!("link-{i:08}");
    r.id = decision_id(r.time, &r.proxy_id, 0);
    r
}

fn report(what: &str, times: &[Duration]) {
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    let max = times.iter().max().unwrap();
    println!(
        "{what}: mean {mean:.1?}, slowest {max:.1?} ({} rounds)",
        times.len()
    );
}

fn main() {
    let rounds = if std::env::args().any(|a| a == "--test") {
        1
    } else {
        10
    };
    let cluster = etcd_cluster::EtcdCluster::start(3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let etcd = Arc::new(Etcd::new(&cluster.urls(), Duration::from_secs(5)).unwrap());
        let me = Arc::new(Leadership::new("bench", Duration::from_secs(10), None));
        tokio::spawn(election::run(
            Arc::clone(&etcd),
            Arc::clone(&me),
            "/bench".into(),
        ));
        let start = Instant::now();
        while !me.may_act() {
            assert!(start.elapsed() < Duration::from_secs(20), "never led");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let shared = SharedStore::new(Arc::clone(&etcd), "/bench", Arc::clone(&me));
        let states: Vec<ControllerState> = (0..N).map(state).collect();
        let records: Vec<DecisionRecord> = (0..CHANGES).map(record).collect();
        let bytes = states
            .iter()
            .map(|s| gaap_autoscaler::store::log::encode_state(s).unwrap().len())
            .sum::<usize>();
        println!("{N} states: {} KiB of values per pass", bytes / 1024);

        let mut held = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for (i, s) in states.iter().enumerate() {
                shared
                    .stage_state("web", &format!("link-{i:08}"), s)
                    .unwrap();
            }
            shared.flush().await.unwrap();
            held.push(t.elapsed());
        }
        report(&format!("one pass, {N} states written (all held)"), &held);

        let mut changing = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            for (i, s) in states.iter().enumerate() {
                shared
                    .stage_state("web", &format!("link-{i:08}"), s)
                    .unwrap();
            }
            for r in &records {
                shared.stage_record(r).unwrap();
            }
            shared.flush().await.unwrap();
            // The answers: the intents deleted, the records' new versions.
            for r in &records {
                let mut a = r.clone();
                a.outcome = Outcome::Applied;
                shared.stage_record(&a).unwrap();
            }
            shared.flush().await.unwrap();
            changing.push(t.elapsed());
        }
        report(
            &format!("one pass, {N} states + {CHANGES} changes (intent, answer, log records)"),
            &changing,
        );

        let mut takeover = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let s = shared.load_states().await.unwrap();
            let p = shared.pending().await.unwrap();
            assert_eq!((s.len(), p.len()), (N, 0));
            takeover.push(t.elapsed());
        }
        report(
            &format!("takeover: read {N} states and the intents"),
            &takeover,
        );
        me.resign();
    });
}
