#![allow(missing_docs)] // criterion_group! generates undocumented items
//! What a command costs before it does its work, each figure beside its floor in the same run:
//! `cargo bench -p host --bench startup`.
//!
//! - `host token` on a fresh credential (file store) vs a trivial program that reads the same
//!   record as JSON and prints its token (this bench binary itself, re-run as that program);
//! - `host token --provider github` with 0 and 1000 plugin files installed;
//! - `host providers` with 0, 100 and 1000 plugin files.

use std::path::PathBuf;
use std::process::Command;

use criterion::{BenchmarkId, Criterion};

/// When set, this binary is the floor: read the JSON file named, print its token, exit.
const FLOOR_ENV: &str = "HOST_BENCH_READ_TOKEN";

fn floor(path: &str) {
    let bytes = std::fs::read(path).expect("the record");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    println!(
        "{}",
        value["credential"]["access_token"]
            .as_str()
            .unwrap_or_default()
    );
}

struct Home {
    dir: tempfile::TempDir,
    plain: PathBuf,
}

impl Home {
    /// A home with a fresh github credential and `plugins` plugin files.
    fn new(plugins: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/host");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut token = host::OAuth2Token::bearer(host::SecretString::new("gho_benchmark"));
        token.expires_at = Some(chrono::Utc::now() + chrono::Duration::days(30));
        let record = host::Record::new(
            "github",
            "default",
            "oauth2",
            host::Credential::OAuth2(token),
        );
        rt.block_on(host::Store::new(&data).save(&record)).unwrap();
        // The same record, unsealed, for the floor.
        let plain = dir.path().join("record.json");
        std::fs::write(&plain, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
        let plugins_dir = data.join("plugins");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        for i in 0..plugins {
            std::fs::write(plugins_dir.join(format!("p{i:04}.wasm")), b"\0asm").unwrap();
        }
        Self { dir, plain }
    }

    fn host(&self, args: &[&str]) -> Command {
        let h = self.dir.path();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host"));
        cmd.args(args)
            .env_clear()
            .env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_DATA_HOME", h.join("data"))
            .env("GITHUB_CLIENT_ID", "Iv1.bench");
        cmd
    }
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn benches(c: &mut Criterion) {
    let bare = Home::new(0);
    let mut group = c.benchmark_group("host token, fresh credential");
    group.bench_function("host token", |b| {
        b.iter(|| run(bare.host(&["token", "--provider", "github"])))
    });
    group.bench_function("floor: read the JSON record and print", |b| {
        let me = std::env::current_exe().unwrap();
        b.iter(|| {
            let mut cmd = Command::new(&me);
            cmd.env_clear().env(FLOOR_ENV, &bare.plain);
            run(cmd)
        })
    });
    group.finish();

    let crowded = Home::new(1000);
    let mut group = c.benchmark_group("host token --provider github, plugin files installed");
    for (count, home) in [(0, &bare), (1000, &crowded)] {
        group.bench_with_input(BenchmarkId::from_parameter(count), home, |b, home| {
            b.iter(|| run(home.host(&["token", "--provider", "github"])))
        });
    }
    group.finish();

    let hundred = Home::new(100);
    let mut group = c.benchmark_group("host providers, plugin files installed");
    for (count, home) in [(0, &bare), (100, &hundred), (1000, &crowded)] {
        group.bench_with_input(BenchmarkId::from_parameter(count), home, |b, home| {
            b.iter(|| run(home.host(&["providers", "--json"])))
        });
    }
    group.finish();
}

fn main() {
    if let Ok(path) = std::env::var(FLOOR_ENV) {
        floor(&path);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
