//! The leader keeps etcd's history short (`ha::compactor`), against a real etcd: the old
//! versions of a rewritten key are compacted away, the current ones stay, and the daemon's
//! own reads (current values, `min_mod_revision` ranges) go on working.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use gaap_autoscaler::ha::etcd::Op;
use gaap_autoscaler::ha::{Etcd, Leadership, compactor, election};
use serde_json::{Value, json};

/// A read of `/t/x` (base64 `L3QveA==`) as it was at `revision`, over etcd's JSON gateway.
async fn read_at(url: &str, revision: i64) -> Value {
    reqwest::Client::new()
        .post(format!("{url}/v3/kv/range"))
        .json(&json!({"key": "L3QveA==", "revision": revision.to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn put(etcd: &Etcd, n: u32) -> i64 {
    let put = Op::Put {
        key: b"/t/x".to_vec(),
        value: format!("v{n}").into_bytes(),
        lease: 0,
    };
    etcd.txn(&[], &[put], &[]).await.unwrap().revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_compacts_the_history_it_no_longer_needs() {
    let cluster = support::etcd::EtcdCluster::start(1);
    cluster.wait_healthy(Duration::from_secs(30));
    let url = cluster.urls()[0].clone();
    let etcd = Arc::new(Etcd::new(&cluster.urls(), Duration::from_secs(5)).unwrap());
    let first = put(&etcd, 0).await;
    for n in 1..20 {
        put(&etcd, n).await;
    }
    // Before: the first version is still in etcd's history.
    let old = read_at(&url, first).await;
    assert_eq!(old["kvs"][0]["value"], "djA=", "v0 at its revision: {old}");

    let me = Arc::new(Leadership::new("a", Duration::from_secs(4), None));
    tokio::spawn(election::run(etcd.clone(), me.clone(), "/t".into()));
    let started = Instant::now();
    while !me.may_act() {
        assert!(started.elapsed() < Duration::from_secs(20), "never leads");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let task = tokio::spawn(compactor::run(
        etcd.clone(),
        me.clone(),
        "/t".into(),
        Duration::from_secs(1),
    ));
    // The first tick sees the revision, the next compacts to it.
    let compacted = loop {
        let v = read_at(&url, first).await;
        let text = v.to_string();
        if text.contains("compacted") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never compacted: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(compacted.contains("required revision"), "{compacted}");
    // What the daemon reads is all there.
    let now = etcd
        .get(b"/t/x")
        .await
        .unwrap()
        .expect("the key is current");
    assert_eq!(now.value, b"v19");
    let leader = etcd
        .get(b"/t/leader")
        .await
        .unwrap()
        .expect("still leading");
    assert_eq!(leader.value, b"a");
    let (changed, _) = etcd.changed_since(b"/t/", first, 10).await.unwrap();
    assert!(changed.iter().any(|kv| kv.key == b"/t/x"), "{changed:?}");
    // Writes go on after it.
    let after = put(&etcd, 20).await;
    assert!(after > first);
    me.resign();
    task.abort();
}
