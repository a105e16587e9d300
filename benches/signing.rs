//! TC3-HMAC-SHA256 signing throughput: one signed ModifyProxyConfiguration request
//! (canonical request, string to sign, four HMACs, headers).
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gaap_autoscaler::cloud::credentials::Credentials;
use gaap_autoscaler::cloud::request::{self, Endpoint};
use gaap_autoscaler::cloud::signer::{self, SignInput};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let creds = Credentials::new(
        "AKIDbenchmark000000000000000000000",
        "benchmarkSecretKey00000000000000",
        None,
    )
    .unwrap();
    let body = br#"{"ProxyId":"link-kicu7m5b","Bandwidth":100,"Concurrent":5,"ClientToken":"01J9Z3D3R7Q4K8V2M6N0P5S1T7"}"#;
    let headers = [
        ("content-type", "application/json"),
        ("host", "gaap.tencentcloudapi.com"),
    ];
    let mut g = c.benchmark_group("signing");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| {
        b.iter(|| {
            let input = SignInput {
                service: "gaap",
                method: "POST",
                query: "",
                headers: &headers,
                payload: black_box(body),
                timestamp: black_box(1_795_925_378),
            };
            signer::sign(&creds, &input)
        })
    });
    let ep = Endpoint::parse("https://gaap.tencentcloudapi.com").unwrap();
    g.bench_function("build_signed_request", |b| {
        b.iter(|| {
            request::build(
                &ep,
                &creds,
                "ModifyProxyConfiguration",
                None,
                black_box(body.to_vec()),
                1_795_925_378,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
