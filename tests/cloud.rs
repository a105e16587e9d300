//! The Tencent Cloud side end to end: the official TC3 worked examples, and the client
//! against an in-process sandbox over real HTTP on 127.0.0.1 (every action, retries under
//! injected faults, no-retry codes, the budget, signature checks, the `api` command).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gaap_autoscaler::cloud::client::{
    ClientConfig, GaapApi, GaapClient, ModifyRequest, ProxyQuery, RetryPolicy,
};
use gaap_autoscaler::cloud::credentials::Credentials;
use gaap_autoscaler::cloud::request::{self, Endpoint};
use gaap_autoscaler::cloud::signer::{self, SignInput};
use gaap_autoscaler::cloud::types::TagPair;
use gaap_autoscaler::core::{Ladder, ProxyState, ProxyStatus};
use gaap_autoscaler::fleet::{Fleet, LadderEntry};
use gaap_autoscaler::ratelimit::{Priority, RateLimiter, max_in_any_window};
use gaap_autoscaler::sandbox::arrivals::{Clock, ManualClock, most_in_one_second};
use gaap_autoscaler::sandbox::{SandboxConfig, faults::FaultPlan};
use serde_json::{Value, json};

const ID: &str = "AKIDsandboxTestId0000000000000000";
const KEY: &str = "sandboxTestKey00000000000000000";

// ---------------------------------------------------------------- official vectors

fn vectors() -> Vec<Value> {
    let text = include_str!("data/tc3-doc-examples.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["examples"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("missing {k}"))
}

#[test]
fn official_worked_examples_byte_for_byte() {
    let mut checked = 0;
    for ex in vectors() {
        let name = s(&ex, "name");
        let (i, e) = (&ex["inputs"], &ex["expected"]);
        let payload = s(i, "payload").as_bytes();
        assert_eq!(
            signer::hashed_payload(payload),
            s(e, "hashed_request_payload"),
            "{name}"
        );
        let ts = i["timestamp"].as_i64().unwrap();
        assert_eq!(signer::utc_date(ts), s(e, "date"), "{name}");
        let mut headers = vec![
            ("content-type", s(i, "content_type")),
            ("host", s(i, "host")),
        ];
        if let Some(action) = i["action"].as_str() {
            headers.push(("x-tc-action", action));
        }
        let input = SignInput {
            service: s(i, "service"),
            method: "POST",
            query: "",
            headers: &headers,
            payload,
            timestamp: ts,
        };
        match i["secret_key"].as_str() {
            Some(key) => {
                let creds = Credentials::new(s(i, "secret_id"), key, None).unwrap();
                let sig = signer::sign(&creds, &input);
                assert_eq!(sig.canonical_request, s(e, "canonical_request"), "{name}");
                assert_eq!(
                    signer::sha256_hex(sig.canonical_request.as_bytes()),
                    s(e, "hashed_canonical_request"),
                    "{name}"
                );
                assert_eq!(sig.string_to_sign, s(e, "string_to_sign"), "{name}");
                assert_eq!(sig.credential_scope, s(e, "credential_scope"), "{name}");
                assert_eq!(sig.signed_headers, s(e, "signed_headers"), "{name}");
                let keys = signer::derived_keys(key, &sig.date, s(i, "service"));
                assert_eq!(hex::encode(keys[0]), s(e, "secret_date_hex"), "{name}");
                assert_eq!(hex::encode(keys[1]), s(e, "secret_service_hex"), "{name}");
                assert_eq!(hex::encode(keys[2]), s(e, "secret_signing_hex"), "{name}");
                assert_eq!(sig.signature, s(e, "signature"), "{name}");
                assert_eq!(sig.authorization, s(e, "authorization"), "{name}");
            }
            None => {
                // Masked key: everything up to the string to sign, then the last HMAC step
                // from the published SecretSigning.
                let (canonical, signed) = signer::canonical_request(
                    "POST",
                    "",
                    &headers,
                    &signer::hashed_payload(payload),
                );
                assert_eq!(canonical, s(e, "canonical_request"), "{name}");
                assert_eq!(signed, s(e, "signed_headers"), "{name}");
                assert_eq!(
                    signer::sha256_hex(canonical.as_bytes()),
                    s(e, "hashed_canonical_request"),
                    "{name}"
                );
                let sts = signer::string_to_sign(ts, s(e, "credential_scope"), &canonical);
                assert_eq!(sts, s(e, "string_to_sign"), "{name}");
                let key = hex::decode(s(e, "secret_signing_hex")).unwrap();
                assert_eq!(
                    signer::signature_with_key(&key, &sts),
                    s(e, "signature"),
                    "{name}"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn a_wrong_key_or_local_date_changes_the_signature() {
    let ex = &vectors()[0];
    let i = &ex["inputs"];
    let headers = [
        ("content-type", s(i, "content_type")),
        ("host", s(i, "host")),
    ];
    let input = SignInput {
        service: "cvm",
        method: "POST",
        query: "",
        headers: &headers,
        payload: s(i, "payload").as_bytes(),
        timestamp: 1_551_113_065,
    };
    let wrong =
        Credentials::new(s(i, "secret_id"), "Gu5t9xGARNpq86cd98joQYCN3EXAMPLF", None).unwrap();
    assert_ne!(
        signer::signature_with_key(
            &signer::signing_key(wrong.secret_key(), "2019-02-25", "cvm"),
            "x"
        ),
        ""
    );
    assert_ne!(
        signer::sign(&wrong, &input).signature,
        s(&ex["expected"], "signature")
    );
    // Signing with the UTC+8 date (2019-02-26) gives a different signature: the midnight pitfall.
    let right = Credentials::new(s(i, "secret_id"), s(i, "secret_key"), None).unwrap();
    let sig = signer::sign(&right, &input);
    let local_key = signer::signing_key(right.secret_key(), "2019-02-26", "cvm");
    assert_ne!(
        signer::signature_with_key(&local_key, &sig.string_to_sign),
        sig.signature
    );
}

// ---------------------------------------------------------------- sandbox harness

fn proxy(
    id: &str,
    access: &str,
    dest: &str,
    bw: u32,
    cc: u32,
    scalarable: i64,
    tag: &str,
) -> ProxyState {
    ProxyState {
        id: id.into(),
        name: Some(format!("{id}-name")),
        access_region: access.into(),
        real_server_region: dest.into(),
        bandwidth: bw,
        concurrent: cc,
        status: ProxyStatus::Running,
        scalarable,
        billing_type: Some(0),
        tags: BTreeMap::from([("autoscale".to_string(), tag.to_string())]),
    }
}

fn fleet() -> Fleet {
    Fleet {
        ladders: vec![
            LadderEntry {
                access_region: "Guangzhou".into(),
                dest_region: Some("Shanghai".into()),
                ladder: Ladder::new(vec![10, 20, 50, 100, 200], vec![2, 5, 10, 20]),
            },
            LadderEntry {
                access_region: "Guangzhou".into(),
                dest_region: None,
                ladder: Ladder::new(vec![10, 20, 50], vec![2, 5]),
            },
            LadderEntry {
                access_region: "HongKong".into(),
                dest_region: None,
                ladder: Ladder::new(vec![10, 20, 30], vec![2, 5]),
            },
        ],
        proxies: vec![
            proxy("link-web00001", "Guangzhou", "Shanghai", 10, 2, 1, "web"),
            proxy("link-api00002", "Guangzhou", "Beijing", 20, 2, 1, "api"),
            proxy("link-hk000003", "HongKong", "Shanghai", 10, 2, 1, "web"),
            proxy("link-fixed004", "HongKong", "Shanghai", 10, 2, 0, "web"),
        ],
    }
}

struct Sandbox {
    addr: std::net::SocketAddr,
    clock: Arc<ManualClock>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    http: reqwest::Client,
}

impl Sandbox {
    /// On a manual clock (starting at the wall clock): time moves only by `advance`.
    async fn start(mut config: SandboxConfig) -> Sandbox {
        let clock = Arc::new(ManualClock::starting_now());
        config.clock = clock.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(gaap_autoscaler::sandbox::serve(config, listener));
        Sandbox {
            addr,
            clock,
            task,
            http: reqwest::Client::new(),
        }
    }
    /// On the system clock (for tests of the budget over real time).
    async fn start_on_system_clock(config: SandboxConfig) -> Sandbox {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(gaap_autoscaler::sandbox::serve(config, listener));
        Sandbox {
            addr,
            clock: Arc::new(ManualClock::at(0)),
            task,
            http: reqwest::Client::new(),
        }
    }
    async fn with(faults: &str, adjusting: Duration, fleet: Fleet) -> Sandbox {
        let mut c = SandboxConfig::new(fleet, ID, KEY);
        c.faults = FaultPlan::parse(faults).unwrap();
        c.adjusting = adjusting;
        Sandbox::start(c).await
    }
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
    fn client(&self, key: &str, limiter: Arc<RateLimiter>) -> GaapClient {
        let mut cfg = ClientConfig::new(Endpoint::parse(&self.endpoint()).unwrap());
        cfg.timeout = Duration::from_secs(10);
        cfg.retry = RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        };
        GaapClient::new(cfg, Credentials::new(ID, key, None).unwrap(), limiter).unwrap()
    }
    fn default_client(&self) -> GaapClient {
        self.client(KEY, Arc::new(RateLimiter::new(20).unwrap()))
    }
    async fn calls(&self) -> Vec<Value> {
        let r = self
            .http
            .get(format!("{}/__sandbox/calls", self.endpoint()))
            .send()
            .await
            .unwrap();
        r.json::<Vec<Value>>().await.unwrap()
    }
    async fn calls_of(&self, action: &str) -> Vec<Value> {
        self.calls()
            .await
            .into_iter()
            .filter(|c| c["action"] == action)
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn modify(proxy: &str, bw: Option<u32>, cc: Option<u32>, token: &str) -> ModifyRequest {
    ModifyRequest {
        proxy_id: proxy.into(),
        bandwidth: bw,
        concurrent: cc,
        client_token: token.into(),
        billing_type: None,
    }
}

fn applied(calls: &[Value]) -> usize {
    calls.iter().filter(|c| c["applied"] == true).count()
}

// ---------------------------------------------------------------- every action

#[tokio::test]
async fn every_action_over_http() {
    let sb = Sandbox::with("", Duration::from_millis(400), fleet()).await;
    let client = sb.default_client();
    let c: &dyn GaapApi = &client; // the daemon may hold it as a trait object

    let all = c.describe_proxies(&ProxyQuery::All).await.unwrap();
    assert_eq!(all.len(), 4);
    let web = c
        .describe_proxies(&ProxyQuery::Tags(vec![TagPair {
            tag_key: "autoscale".into(),
            tag_value: "web".into(),
        }]))
        .await
        .unwrap();
    assert_eq!(
        web.iter().map(|p| p.id()).collect::<Vec<_>>(),
        ["link-web00001", "link-hk000003", "link-fixed004"]
    );
    let by_id = c
        .describe_proxies(&ProxyQuery::Ids(vec!["link-api00002".into()]))
        .await
        .unwrap();
    let state = by_id[0].to_state();
    assert_eq!(
        (state.bandwidth, state.concurrent, state.scalarable),
        (20, 2, 1)
    );
    assert_eq!(state.tags["autoscale"], "api");

    let detail = c.describe_proxy_detail("link-web00001").await.unwrap();
    assert_eq!((detail.bandwidth, detail.status.as_str()), (10, "RUNNING"));

    let regions = c
        .describe_access_regions_by_dest_region("Shanghai")
        .await
        .unwrap();
    let gz = regions.iter().find(|r| r.region_id == "Guangzhou").unwrap();
    assert_eq!(gz.bandwidth_list, [10, 20, 50, 100, 200]);
    assert_eq!(gz.concurrent_list, [2, 5, 10, 20]);

    let out = c
        .modify_proxy_configuration(
            &modify("link-web00001", Some(50), Some(5), "dec-0001"),
            Priority::High,
        )
        .await
        .unwrap();
    assert_eq!((out.attempts, out.confirmed_duplicate), (1, false));
    assert_eq!(out.request_id.len(), 36);

    let status = c
        .describe_proxies_status(&["link-web00001".to_string()])
        .await
        .unwrap();
    assert_eq!(status[0].status, "ADJUSTING");
    let detail = c.describe_proxy_detail("link-web00001").await.unwrap();
    assert_eq!((detail.bandwidth, detail.concurrent), (50, 5));
    assert!(detail.modify_config_time.is_some());
    // The sandbox's clock stands still: still ADJUSTING 399 ms on, RUNNING at 400 ms.
    sb.clock.advance(Duration::from_millis(399)).unwrap();
    let status = c
        .describe_proxies_status(&["link-web00001".to_string()])
        .await
        .unwrap();
    assert_eq!(status[0].status, "ADJUSTING");
    sb.clock.advance(Duration::from_millis(1)).unwrap();
    let status = c
        .describe_proxies_status(&["link-web00001".to_string()])
        .await
        .unwrap();
    assert_eq!(status[0].status, "RUNNING");

    let calls = sb.calls().await;
    assert!(calls.iter().all(|c| c["error_code"].is_null()), "{calls:?}");
    assert_eq!(applied(&calls), 1);
    let m = sb.calls_of("ModifyProxyConfiguration").await;
    assert_eq!(
        m[0]["params"],
        json!({"ProxyId": "link-web00001", "Bandwidth": 50, "Concurrent": 5, "ClientToken": "dec-0001"})
    );
}

#[tokio::test]
async fn describe_proxies_pages_by_100() {
    let mut f = fleet();
    for i in 0..250 {
        f.proxies.push(proxy(
            &format!("link-p{i:07}"),
            "Guangzhou",
            "Shanghai",
            10,
            2,
            1,
            if i % 2 == 0 { "even" } else { "odd" },
        ));
    }
    let sb = Sandbox::with("", Duration::from_secs(1), f).await;
    let c = sb.default_client();
    let all = c.describe_proxies(&ProxyQuery::All).await.unwrap();
    assert_eq!(all.len(), 254);
    let ids: Vec<String> = (0..150).map(|i| format!("link-p{i:07}")).collect();
    let some = c
        .describe_proxies(&ProxyQuery::Ids(ids.clone()))
        .await
        .unwrap();
    assert_eq!(
        some.iter().map(|p| p.id().to_string()).collect::<Vec<_>>(),
        ids
    );
    let even = c
        .describe_proxies(&ProxyQuery::Tags(vec![TagPair {
            tag_key: "autoscale".into(),
            tag_value: "even".into(),
        }]))
        .await
        .unwrap();
    assert_eq!(even.len(), 125);
    let calls = sb.calls_of("DescribeProxies").await;
    let limits: Vec<Value> = calls.iter().map(|c| c["params"]["Limit"].clone()).collect();
    assert!(limits.iter().all(|l| *l == 100), "{limits:?}");
    // 3 pages for all, 2 requests for 150 ids, 2 pages for 125 tagged.
    assert_eq!(calls.len(), 3 + 2 + 2);
}

// ---------------------------------------------------------------- retries never duplicate a change

#[tokio::test]
async fn retries_under_faults_apply_exactly_one_change() {
    let cases = [
        ("ModifyProxyConfiguration:InternalError@1,2", 3, false),
        ("ModifyProxyConfiguration:RequestLimitExceeded@1", 2, false),
        ("ModifyProxyConfiguration:drop@1", 2, true),
        (
            "ModifyProxyConfiguration:drop@1;ModifyProxyConfiguration:InternalError@2",
            3,
            true,
        ),
    ];
    for (spec, attempts, confirmed) in cases {
        let sb = Sandbox::with(spec, Duration::from_secs(5), fleet()).await;
        let c = sb.default_client();
        let out = c
            .modify_proxy_configuration(
                &modify("link-web00001", Some(100), None, "decision-42"),
                Priority::High,
            )
            .await
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert_eq!(
            (out.attempts, out.confirmed_duplicate),
            (attempts, confirmed),
            "{spec}"
        );
        let calls = sb.calls_of("ModifyProxyConfiguration").await;
        assert_eq!(calls.len(), attempts as usize, "{spec}");
        assert_eq!(applied(&calls), 1, "{spec}: exactly one applied change");
        assert!(
            calls
                .iter()
                .all(|c| c["params"]["ClientToken"] == "decision-42"),
            "{spec}: same ClientToken"
        );
        if confirmed {
            assert_eq!(
                calls.last().unwrap()["error_code"],
                "FailedOperation.DuplicatedRequest",
                "{spec}"
            );
            assert_eq!(
                sb.calls_of("DescribeProxies").await.len(),
                1,
                "{spec}: confirmed by DescribeProxies"
            );
        }
        let detail = c.describe_proxy_detail("link-web00001").await.unwrap();
        assert_eq!(detail.bandwidth, 100, "{spec}");
    }
}

#[tokio::test]
async fn retries_are_bounded() {
    let sb = Sandbox::with(
        "ModifyProxyConfiguration:InternalError",
        Duration::from_secs(1),
        fleet(),
    )
    .await;
    let c = sb.default_client();
    let err = c
        .modify_proxy_configuration(
            &modify("link-web00001", Some(20), None, "t-1"),
            Priority::Low,
        )
        .await
        .unwrap_err();
    assert_eq!((err.error.code(), err.attempts), ("InternalError", 4));
    assert_eq!(applied(&sb.calls().await), 0);
}

#[tokio::test]
async fn no_retry_codes_are_not_retried() {
    let sb = Sandbox::with("", Duration::from_secs(1), fleet()).await;
    let c = sb.default_client();
    let cases = [
        (
            modify("link-web00001", Some(30), None, "n-1"),
            "InvalidParameterValue",
        ),
        (
            modify("link-fixed004", Some(20), None, "n-2"),
            "FailedOperation.NotSupportScalar",
        ),
        (
            modify("link-nothere9", Some(20), None, "n-3"),
            "ResourceNotFound",
        ),
    ];
    for (req, code) in &cases {
        let err = c
            .modify_proxy_configuration(req, Priority::High)
            .await
            .unwrap_err();
        assert_eq!((err.error.code(), err.attempts), (*code, 1));
    }
    let bad_key = sb.client("not-the-key", Arc::new(RateLimiter::new(20).unwrap()));
    let err = bad_key
        .modify_proxy_configuration(
            &modify("link-web00001", Some(20), None, "n-4"),
            Priority::High,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.error.code(), err.attempts),
        ("AuthFailure.SignatureFailure", 1)
    );
    assert!(!err.to_string().contains("not-the-key"));
    let calls = sb.calls_of("ModifyProxyConfiguration").await;
    assert_eq!(calls.len(), 4);
    assert_eq!(applied(&calls), 0);
}

#[tokio::test]
async fn reused_client_token_on_a_fresh_call_is_confirmed_not_reapplied() {
    // A restart reconciling a decision whose first attempt was applied: the same token again.
    let sb = Sandbox::with("", Duration::from_secs(5), fleet()).await;
    let c = sb.default_client();
    let req = modify("link-api00002", Some(50), Some(5), "decision-7");
    assert!(
        !c.modify_proxy_configuration(&req, Priority::High)
            .await
            .unwrap()
            .confirmed_duplicate
    );
    let again = c
        .modify_proxy_configuration(&req, Priority::High)
        .await
        .unwrap();
    assert!(again.confirmed_duplicate);
    // A duplicate token for values that were never applied is not confirmed.
    let other = modify("link-api00002", Some(10), None, "decision-7");
    let err = c
        .modify_proxy_configuration(&other, Priority::High)
        .await
        .unwrap_err();
    assert_eq!(err.error.code(), "FailedOperation.DuplicatedRequest");
    assert_eq!(applied(&sb.calls().await), 1);
}

// ---------------------------------------------------------------- the budget over real HTTP

#[tokio::test]
async fn a_burst_of_60_stays_within_20_per_second() {
    // The shipped budget against the sandbox's own arrival check on the system clock: the
    // budget counts each request until its call has ended, so however late requests reach
    // the server, no second holds more than 20 (tests/budget.rs has the delays).
    let mut config = SandboxConfig::new(fleet(), ID, KEY);
    config.adjusting = Duration::ZERO;
    let sb = Sandbox::start_on_system_clock(config).await;
    let c = Arc::new(sb.client(KEY, Arc::new(RateLimiter::new(20).unwrap())));
    let mut tasks = Vec::new();
    for i in 0..60u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let bw = [10, 20, 50][i as usize % 3];
            let prio = if i % 2 == 0 {
                Priority::High
            } else {
                Priority::Low
            };
            c.modify_proxy_configuration(
                &modify("link-web00001", Some(bw), None, &format!("burst-{i}")),
                prio,
            )
            .await
        }));
    }
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out.attempts, 1);
    }
    let calls = sb.calls_of("ModifyProxyConfiguration").await;
    assert_eq!(calls.len(), 60);
    assert!(
        calls.iter().all(|c| c["error_code"].is_null()),
        "no RequestLimitExceeded"
    );
    let mut times: Vec<Duration> = calls
        .iter()
        .map(|c| {
            let t = gaap_autoscaler::time::parse_time(c["time"].as_str().unwrap()).unwrap();
            Duration::from_millis(t.millis() as u64)
        })
        .collect();
    times.sort();
    assert!(max_in_any_window(&times, Duration::from_secs(1)) <= 20);
    let ms: Vec<i64> = times.iter().map(|t| t.as_millis() as i64).collect();
    assert!(most_in_one_second(&ms) <= 20, "the sandbox's own count");
    // 60 arrivals at ≤ 20 per second span more than two seconds.
    assert!(ms[59] - ms[0] >= 2000, "{} ms", ms[59] - ms[0]);
}

#[tokio::test]
async fn sandbox_rejects_the_21st_request_in_a_second() {
    let sb = Sandbox::with("", Duration::from_secs(1), fleet()).await;
    // An unlimited caller: no client-side budget, so the sandbox's own limit shows.
    let creds = Credentials::new(ID, KEY, None).unwrap();
    let ep = Endpoint::parse(&sb.endpoint()).unwrap();
    let mut codes = Vec::new();
    for _ in 0..25 {
        let body = br#"{"ProxyId":"link-web00001"}"#.to_vec();
        let r = send_prepared(
            &sb,
            request::build(&ep, &creds, "DescribeProxyDetail", None, body, now_secs()),
        )
        .await;
        codes.push(
            r["Response"]["Error"]["Code"]
                .as_str()
                .unwrap_or("ok")
                .to_string(),
        );
    }
    // The sandbox's clock stands still: all 25 arrive in the same millisecond.
    let mut want = vec!["ok".to_string(); 20];
    want.extend(vec!["RequestLimitExceeded".to_string(); 5]);
    assert_eq!(codes, want);
    // A second later the budget is back.
    sb.clock.advance(Duration::from_secs(1)).unwrap();
    let body = br#"{"ProxyId":"link-web00001"}"#.to_vec();
    let r = send_prepared(
        &sb,
        request::build(&ep, &creds, "DescribeProxyDetail", None, body, now_secs()),
    )
    .await;
    assert!(r["Response"]["Error"].is_null(), "{r}");
}

// ---------------------------------------------------------------- signature checks

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn send_prepared(sb: &Sandbox, p: request::PreparedRequest) -> Value {
    let mut req = sb.http.post(&p.url).body(p.body);
    for (k, v) in &p.headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

async fn send_raw(sb: &Sandbox, headers: &[(&str, String)], body: &str) -> Value {
    let mut req = sb
        .http
        .post(format!("{}/", sb.endpoint()))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

fn error_code(v: &Value) -> &str {
    v["Response"]["Error"]["Code"].as_str().unwrap_or("ok")
}

#[tokio::test]
async fn signature_verification_cases() {
    let sb = Sandbox::with("", Duration::from_secs(1), fleet()).await;
    let ep = Endpoint::parse(&sb.endpoint()).unwrap();
    let creds = Credentials::new(ID, KEY, None).unwrap();
    let body = || br#"{"ProxyId":"link-web00001"}"#.to_vec();
    let action = "DescribeProxyDetail";

    let ok = send_prepared(
        &sb,
        request::build(
            &ep,
            &creds,
            action,
            Some("ap-guangzhou"),
            body(),
            now_secs(),
        ),
    )
    .await;
    assert_eq!(error_code(&ok), "ok");
    let rid = ok["Response"]["RequestId"].as_str().unwrap();
    assert_eq!(rid.len(), 36);

    let skewed = send_prepared(
        &sb,
        request::build(&ep, &creds, action, None, body(), now_secs() - 400),
    )
    .await;
    assert_eq!(error_code(&skewed), "AuthFailure.SignatureExpire");
    let within = send_prepared(
        &sb,
        request::build(&ep, &creds, action, None, body(), now_secs() - 200),
    )
    .await;
    assert_eq!(error_code(&within), "ok");

    let stranger = Credentials::new("AKIDunknown", KEY, None).unwrap();
    let r = send_prepared(
        &sb,
        request::build(&ep, &stranger, action, None, body(), now_secs()),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SecretIdNotFound");

    let wrong = Credentials::new(ID, "wrong", None).unwrap();
    let r = send_prepared(
        &sb,
        request::build(&ep, &wrong, action, None, body(), now_secs()),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");

    // A body changed after signing.
    let mut p = request::build(&ep, &creds, action, None, body(), now_secs());
    p.body = br#"{"ProxyId":"link-api00002"}"#.to_vec();
    assert_eq!(
        error_code(&send_prepared(&sb, p).await),
        "AuthFailure.SignatureFailure"
    );

    // Session token: sent, not signed.
    let with_token = Credentials::new(ID, KEY, Some("session==".into())).unwrap();
    let r = send_prepared(
        &sb,
        request::build(&ep, &with_token, action, None, body(), now_secs()),
    )
    .await;
    assert_eq!(error_code(&r), "ok");

    // The current doc's variant: x-tc-action signed too, charset in the content type.
    let ts = now_secs();
    let ct = "application/json; charset=utf-8";
    let host = ep.host.clone();
    let payload = body();
    let hs = [
        ("content-type", ct),
        ("host", host.as_str()),
        ("x-tc-action", action),
    ];
    let sig = signer::sign(
        &creds,
        &SignInput {
            service: "gaap",
            method: "POST",
            query: "",
            headers: &hs,
            payload: &payload,
            timestamp: ts,
        },
    );
    assert!(
        sig.canonical_request
            .contains("x-tc-action:describeproxydetail\n")
    );
    let headers = vec![
        ("Content-Type", ct.to_string()),
        ("X-TC-Action", action.to_string()),
        ("X-TC-Timestamp", ts.to_string()),
        ("X-TC-Version", "2018-05-29".to_string()),
        ("Authorization", sig.authorization.clone()),
    ];
    let body_str = String::from_utf8(payload.clone()).unwrap();
    assert_eq!(error_code(&send_raw(&sb, &headers, &body_str).await), "ok");

    // Malformed Authorization headers.
    for auth in [
        "garbage".to_string(),
        sig.authorization
            .replace(", SignedHeaders", ",SignedHeaders"),
        sig.authorization
            .replace("content-type;host;x-tc-action", "host"),
        format!(
            "TC3-HMAC-SHA256 Credential={ID}/2019-02-25/gaap, SignedHeaders=content-type;host, Signature={}",
            "0".repeat(64)
        ),
    ] {
        let mut h = headers.clone();
        h[4].1 = auth.clone();
        assert_eq!(
            error_code(&send_raw(&sb, &h, &body_str).await),
            "AuthFailure.InvalidAuthorization",
            "{auth}"
        );
    }
    let h: Vec<(&str, String)> = headers[..4].to_vec();
    assert_eq!(
        error_code(&send_raw(&sb, &h, &body_str).await),
        "AuthFailure.InvalidAuthorization"
    );

    let calls = sb.calls().await;
    assert!(
        calls
            .iter()
            .any(|c| c["error_code"] == "AuthFailure.SignatureExpire")
    );
    assert!(
        calls
            .iter()
            .all(|c| c["request_id"].as_str().unwrap().len() == 36)
    );
}

#[tokio::test]
async fn faults_can_be_set_over_http_and_delay_works() {
    let sb = Sandbox::with("", Duration::from_secs(1), fleet()).await;
    let url = format!("{}/__sandbox/faults", sb.endpoint());
    let r = sb
        .http
        .post(&url)
        .body("DescribeProxyDetail:delay=300ms@1;DescribeProxyDetail:ResourceUnavailable@2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bad = sb.http.post(&url).body("nonsense").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let c = sb.default_client();
    let t0 = tokio::time::Instant::now();
    c.describe_proxy_detail("link-web00001").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    let err = c.describe_proxy_detail("link-web00001").await.unwrap_err();
    assert_eq!(err.code(), "ResourceUnavailable");
    let calls = sb.calls_of("DescribeProxyDetail").await;
    assert_eq!(calls[0]["fault"], "delay=300ms");
    assert_eq!(calls[1]["fault"], "ResourceUnavailable");
    assert_eq!(
        sb.http
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "DescribeProxyDetail:delay=300ms@1;DescribeProxyDetail:ResourceUnavailable@2"
    );
}

// ---------------------------------------------------------------- the api command

fn api_cmd(args: &[&str], key: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gaap-autoscaler"))
        .arg("api")
        .args(args)
        .env("TENCENTCLOUD_SECRET_ID", ID)
        .env("TENCENTCLOUD_SECRET_KEY", key)
        .env_remove("TENCENTCLOUD_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_command_exit_codes() {
    let sb = Sandbox::with("", Duration::from_secs(1), fleet()).await;
    let ep = sb.endpoint();
    let out = tokio::task::spawn_blocking(move || {
        let ok = api_cmd(
            &[
                "DescribeProxies",
                "--params",
                r#"{"ProxyIds":["link-web00001"]}"#,
                "--endpoint",
                &ep,
            ],
            KEY,
        );
        let api_err = api_cmd(
            &[
                "DescribeProxyDetail",
                "--params",
                r#"{"ProxyId":"link-none"}"#,
                "--endpoint",
                &ep,
            ],
            KEY,
        );
        let auth_err = api_cmd(&["DescribeProxies", "--endpoint", &ep], "bad-key-value");
        let refused = api_cmd(
            &["DescribeProxies", "--endpoint", "http://example.com"],
            KEY,
        );
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            drop(l);
            api_cmd(
                &[
                    "DescribeProxies",
                    "--endpoint",
                    &format!("http://127.0.0.1:{port}"),
                ],
                KEY,
            )
        };
        (ok, api_err, auth_err, refused, closed)
    })
    .await
    .unwrap();
    let (ok, api_err, auth_err, refused, closed) = out;
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["TotalCount"], 1);
    assert_eq!(v["ProxySet"][0]["ProxyId"], "link-web00001");
    assert_eq!(api_err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&api_err.stderr).starts_with("ResourceNotFound: "));
    assert_eq!(auth_err.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&auth_err.stderr);
    assert!(
        stderr.contains("AuthFailure.SignatureFailure") && !stderr.contains("bad-key-value"),
        "{stderr}"
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not https"));
    assert_eq!(
        closed.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&closed.stderr)
    );
}
