#![allow(missing_docs)]
//! Plugin runtime figures: `cargo bench -p host --bench plugins`.
//!
//! - `registry/list/{0,100}`: load the configuration, build the registry (built-ins plus one
//!   provider per plugin file) and list it, as `host providers` does. Nothing is compiled.
//! - `cli/providers/{0,100}`: the same through the real `host providers --json` process.
//! - `engine/start`: start the plugin engine (its configuration, the instance pool, the linker
//!   with every WASI interface), as the first plugin use in a process does.
//! - `first_access/cold`: compile a plugin (no cache) and read its metadata.
//! - `first_access/cached`: the same with the precompiled artifact in the cache.
//! - `call/instance_and_trivial_call`: a fresh instance of a loaded plugin plus one trivial
//!   call (`revoke`, which the test plugin answers at once).

use std::path::Path;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use host::Credential;
use host::OAuth2Token;
use host::SecretString;
use host::plugin::{PLUGIN_FLOW, PluginHost};
use host::{Config, ConfigLoader};

fn config(home: &Path) -> Config {
    ConfigLoader::with_env([("HOME", home.to_str().unwrap())])
        .defaults(host::builtin_defaults())
        .load()
        .unwrap()
}

fn plugin_host(config: &Config, cache: bool) -> Arc<PluginHost> {
    let cache = cache.then(|| config.plugin_cache_dir());
    Arc::new(PluginHost::new(
        config.plugin_settings(),
        config.http_policy(),
        cache,
    ))
}

/// A temporary home whose default plugins folder holds `count` copies of the test plugin.
fn home_with_plugins(count: usize) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".local/share/host/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        std::fs::copy(
            host_testkit::guests::FLOW_GOOD,
            dir.join(format!("p{i:03}.wasm")),
        )
        .unwrap();
    }
    home
}

fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("registry/list");
    for count in [0usize, 100] {
        let home = home_with_plugins(count);
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, &count| {
            b.iter(|| {
                let config = config(home.path());
                let app = host::App::from_config(config).expect("store settings");
                let listed: Vec<(String, usize)> = app
                    .registry()
                    .providers()
                    .iter()
                    .map(|p| (p.name().to_owned(), p.flow_names().count()))
                    .collect();
                assert_eq!(listed.len(), count + 1);
                assert!(!app.plugins().is_started());
            })
        });
    }
    group.finish();
}

/// `host providers --json` as a user runs it, with 0 and 100 plugin files: the figure the
/// "listing 100 plugins within 1.2x of none" budget is about.
fn cli_providers(c: &mut Criterion) {
    let mut group = c.benchmark_group("cli/providers");
    group.sample_size(30);
    for count in [0usize, 100] {
        let home = home_with_plugins(count);
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.iter(|| {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_host"))
                    .args(["providers", "--json"])
                    .env_clear()
                    .env("HOME", home.path())
                    .output()
                    .unwrap();
                assert!(out.status.success());
            })
        });
    }
    group.finish();
}

fn engine(c: &mut Criterion) {
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path());
    let mut group = c.benchmark_group("engine");
    group.sample_size(30);
    group.bench_function("start", |b| {
        b.iter(|| {
            let host = plugin_host(&config, false);
            host.warm_up().unwrap();
            assert!(host.is_started());
        })
    });
    group.finish();
}

fn first_access(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path());
    let file = Path::new(host_testkit::guests::FLOW_GOOD);
    let mut group = c.benchmark_group("first_access");
    group.sample_size(20);
    group.bench_function("cold", |b| {
        b.to_async(&rt).iter(|| async {
            let host = plugin_host(&config, false);
            host.load(file).await.unwrap();
        })
    });
    // Warm the cache once, then every fresh host takes the artifact from it.
    rt.block_on(plugin_host(&config, true).load(file)).unwrap();
    // One engine per process, as in `host`: the engine is created before the clock starts.
    group.sample_size(100);
    group.bench_function("cached", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let config = config.clone();
            async move {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let host = plugin_host(&config, true);
                    host.warm_up().unwrap();
                    let start = std::time::Instant::now();
                    host.load(file).await.unwrap();
                    total += start.elapsed();
                }
                total
            }
        })
    });
    group.finish();
}

fn call(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".local/share/host/plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(host_testkit::guests::FLOW_GOOD, dir.join("acme.wasm")).unwrap();
    std::fs::write(
        home.path().join("host.toml"),
        "[providers.acme]\nclient_id = \"x\"\nauthorize_url = \"https://a.example/\"\ntoken_url = \"https://a.example/t\"\n",
    )
    .unwrap();
    let config = ConfigLoader::with_env([("HOME", home.path().to_str().unwrap())])
        .file(home.path().join("host.toml"))
        .load()
        .unwrap();
    let app = host::App::from_config(config).expect("store settings");
    let flow = rt
        .block_on(app.provider("acme").unwrap().flow(PLUGIN_FLOW))
        .unwrap();
    let credential = Credential::OAuth2(OAuth2Token::bearer(SecretString::new("t")));
    c.bench_function("call/instance_and_trivial_call", |b| {
        b.to_async(&rt)
            .iter(|| async { assert!(!flow.revoke(&credential).await.unwrap()) })
    });
}

criterion_group!(benches, registry, cli_providers, engine, first_access, call);
criterion_main!(benches);
