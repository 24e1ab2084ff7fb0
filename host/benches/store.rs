#![allow(missing_docs)] // criterion_group! generates undocumented items
//! The store's backends side by side: `cargo bench -p host --bench store`.
//!
//! - `host token` (the release binary, a fresh credential) with the file store and with the
//!   PostgreSQL store (a throwaway local cluster over its Unix socket);
//! - the time for 100 concurrent `host token` processes to get one refreshed token, on
//!   PostgreSQL (4 "machines" of 25 processes, each with its own configuration and data) and on
//!   the file store (one machine), the credential expired before each round.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use host::{App, ConfigLoader, LoginOptions};
use host_testkit::TestProvider;
use host_testkit::pg::PgCluster;

mod common;
use common::Approver;

/// One "machine": its own home, configuration and data.
struct Machine {
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Machine {
    fn new(provider: &TestProvider, store: Option<(&str, &Path)>) -> Self {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let mut env: Vec<(String, String)> = provider
            .github_env(h)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if let Some((url, key_file)) = store {
            env.push(("HOST_STORE__BACKEND".into(), "postgres".into()));
            env.push(("HOST_STORE__URL".into(), url.to_owned()));
            env.push((
                "HOST_STORE__KEY_FILE".into(),
                key_file.display().to_string(),
            ));
        }
        Self { home, env }
    }

    fn app(&self) -> App {
        let config = ConfigLoader::with_env(self.env.clone())
            .defaults(host::builtin_defaults())
            .load()
            .unwrap();
        App::from_config(config).unwrap()
    }

    fn token(&self, min_valid: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(host_bin());
        cmd.args(["token", "--provider", "github", "--min-valid", min_valid])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let _ = &self.home;
        cmd
    }
}

fn host_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_host"))
}

/// Makes the stored credential due for a refresh.
async fn expire(app: &App) {
    let mut lock = app.store().lock("github", "default").await.unwrap();
    let mut record = lock.get().await.unwrap();
    if let host::Credential::OAuth2(t) = &mut record.credential {
        t.expires_at = Some(chrono::Utc::now() - chrono::Duration::seconds(10));
    }
    lock.save(&record).await.unwrap();
}

/// 100 concurrent `host token` processes over `machines`; returns how long until all printed,
/// after checking they printed one token.
async fn round(machines: &[Machine]) -> Duration {
    let per = 100 / machines.len();
    let start = Instant::now();
    let runs = machines
        .iter()
        .flat_map(|m| (0..per).map(move |_| m.token("600").output()));
    let outs = futures_util::future::join_all(runs).await;
    let took = start.elapsed();
    let first = &outs[0].as_ref().unwrap().stdout;
    for o in &outs {
        let o = o.as_ref().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(&o.stdout, first);
    }
    took
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let provider = rt.block_on(TestProvider::start());
    provider.set_ttl(3600);
    let cluster = PgCluster::start();
    cluster.create_db("bench");
    let url = cluster.url("bench");
    let key_dir = tempfile::tempdir().unwrap();
    let key_file = key_dir.path().join("store.key");
    host::store::seal::StoreKey::generate(host::store::seal::KeySource::File(key_file.clone()))
        .unwrap()
        .write(&key_file)
        .unwrap();

    let file = Machine::new(&provider, None);
    let pg: Vec<Machine> = (0..4)
        .map(|_| Machine::new(&provider, Some((&url, &key_file))))
        .collect();
    let options = LoginOptions::default().timeout(Duration::from_secs(20));
    let file_app = file.app();
    let pg_app = pg[0].app();
    rt.block_on(file_app.login("github", "default", None, &options, &Approver))
        .unwrap();
    rt.block_on(pg_app.login("github", "default", None, &options, &Approver))
        .unwrap();

    let mut group = c.benchmark_group("host token, fresh credential");
    group.sample_size(30);
    group.bench_function("file store", |b| {
        b.to_async(&rt).iter(|| async {
            let out = file.token("0").output().await.unwrap();
            assert!(out.status.success());
        })
    });
    group.bench_function("postgres store", |b| {
        b.to_async(&rt).iter(|| async {
            let out = pg[0].token("0").output().await.unwrap();
            assert!(out.status.success());
        })
    });
    group.finish();

    let mut group = c.benchmark_group("100 concurrent host token, one refresh");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("file store, 1 machine", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let file_app = &file_app;
            let file = &file;
            let provider = &provider;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    expire(file_app).await;
                    let before = provider.refresh_count();
                    total += round(std::slice::from_ref(file)).await;
                    assert_eq!(provider.refresh_count(), before + 1);
                }
                total
            }
        })
    });
    group.bench_function("postgres store, 4 machines", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let pg_app = &pg_app;
            let pg = &pg;
            let provider = &provider;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    expire(pg_app).await;
                    let before = provider.refresh_count();
                    total += round(pg).await;
                    assert_eq!(provider.refresh_count(), before + 1);
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
