#![allow(missing_docs)] // criterion_group! generates undocumented items
//! A session's cost per API request over plain reqwest, against the same loopback server:
//! `cargo bench -p host --bench session`. Both keep connections alive; the session adds the
//! binding, the credential check and the 401 watch.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use host::{App, ConfigLoader, LoginOptions};
use host_testkit::TestProvider;

mod common;
use common::Approver;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let provider = rt.block_on(TestProvider::start());
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let config = ConfigLoader::with_env(provider.github_env(h))
        .defaults(host::builtin_defaults())
        .load()
        .unwrap();
    let app = App::from_config(config).expect("store settings");
    let options = LoginOptions::default().timeout(Duration::from_secs(20));
    let record = rt
        .block_on(app.login("github", "default", None, &options, &Approver))
        .unwrap();
    let token = record.credential.secret().unwrap().expose().to_owned();
    let session = rt.block_on(app.session("github", "default")).unwrap();
    let url = session.url("/echo", false).unwrap();
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut group = c.benchmark_group("api_request");
    group.bench_function("reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let r = plain
                .get(url.as_str())
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap()
        })
    });
    group.bench_function("session", |b| {
        b.to_async(&rt).iter(|| async {
            let request = http::Request::get(url.as_str()).body(Vec::new()).unwrap();
            let r = session.send(request).await.unwrap();
            assert!(r.status().is_success());
            r.bytes().await.unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
