#![allow(missing_docs)] // criterion_group! generates undocumented items
//! What a command costs before it does its work, each figure beside its floor in the same run:
//! `cargo bench -p host --bench startup`.
//!
//! - `host token` on a fresh credential (file store) vs a trivial program that reads the same
//!   record as JSON and prints its token (`benches/floor`, built by this bench on first run);
//! - `host token --provider github` with 0 and 1000 plugin files installed;
//! - `host providers` with 0, 100 and 1000 plugin files;
//! - `host token` when a refresh is due (`--min-valid` beyond the token's lifetime, so every run
//!   refreshes against a loopback token server) vs a trivial program that does the same POST and
//!   writes the record (temporary file, fsync, rename);
//! - `host token` for a plugin provider (the slack example, its compiled artifact cached) vs
//!   `host token` refreshing natively, both refreshing on every run; and a client-credentials
//!   provider on the same server, renewed by a new grant on every run.
//!
//! After each set of criterion groups, the same commands run alternating, round-robin, and their
//! medians and ratios are printed: the figures to quote on a machine whose speed drifts.
//!
//! `HOST_BENCH_BIN=/path/to/host` measures another build of `host` (e.g. one linked differently)
//! against the same floor; `HOST_BENCH_VS=/path/to/host` adds that build's runs of the same
//! commands to the alternating rounds, so two builds are compared in one run.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{BenchmarkId, Criterion};
use host_testkit::TestProvider;

mod common;
use common::Approver;

/// The floor program (`benches/floor`), built once into this bench's temporary folder with
/// the release profile.
fn floor_binary() -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("floor-target");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/floor/Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--release", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cargo");
    assert!(status.success(), "cannot build the floor program");
    target.join("release/host-bench-floor")
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
        let mut cmd = Command::new(host_binary());
        cmd.args(args)
            .env_clear()
            .env("HOME", h)
            .env("XDG_CONFIG_HOME", h.join("config"))
            .env("XDG_DATA_HOME", h.join("data"))
            .env("GITHUB_CLIENT_ID", "Iv1.bench");
        cmd
    }
}

/// The `host` binary measured: this package's, or the one `HOST_BENCH_BIN` names.
fn host_binary() -> PathBuf {
    std::env::var_os("HOST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_host")))
}

/// Runs each variant in turn, `rounds` times round-robin, and prints each one's median and its
/// ratio to the first: on a machine whose speed drifts over seconds (a shared VM), alternating
/// keeps a ratio honest where criterion's one-group-after-another may not. Skipped when the
/// bench's filter (the first free argument) does not occur in `title`.
fn alternate(title: &str, variants: &[(&str, &dyn Fn() -> Command)], rounds: usize) {
    if common::filtered_out(title) {
        return;
    }
    // With `HOST_BENCH_VS`, each command of the measured `host` runs a second time with that
    // build, in the same round.
    let vs = std::env::var_os("HOST_BENCH_VS").map(PathBuf::from);
    let ours = host_binary();
    let mut runs: Vec<(String, Box<dyn Fn() -> Command + '_>)> = Vec::new();
    for (name, command) in variants {
        runs.push((name.to_string(), Box::new(command)));
        if let Some(vs) = &vs
            && Path::new(command().get_program()) == ours
        {
            runs.push((
                format!("{name} [HOST_BENCH_VS]"),
                Box::new(move || rebuilt_with(&command(), vs)),
            ));
        }
    }
    let variants = runs;
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for ((_, command), times) in variants.iter().zip(&mut times) {
            let started = std::time::Instant::now();
            run(command());
            times.push(started.elapsed());
        }
    }
    let medians: Vec<std::time::Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();
    println!("{title} (alternating, {rounds} rounds, medians):");
    for ((name, _), median) in variants.iter().zip(&medians) {
        println!(
            "  {name:<60} {:>8.3} ms  {:.2}x",
            median.as_secs_f64() * 1e3,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}

/// `cmd` (which clears its environment) with another program.
fn rebuilt_with(cmd: &Command, program: &Path) -> Command {
    let mut other = Command::new(program);
    other.args(cmd.get_args()).env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            other.env(key, value);
        }
    }
    other
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn benches(c: &mut Criterion, floor: &Path) {
    let bare = Home::new(0);
    let mut group = c.benchmark_group("host token, fresh credential");
    group.bench_function("host token", |b| {
        b.iter(|| run(bare.host(&["token", "--provider", "github"])))
    });
    group.bench_function("floor: read the JSON record and print", |b| {
        b.iter(|| {
            let mut cmd = Command::new(floor);
            cmd.env_clear().arg("read").arg(&bare.plain);
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

    let floor_read = || {
        let mut cmd = Command::new(floor);
        cmd.env_clear().arg("read").arg(&bare.plain);
        cmd
    };
    alternate(
        "host token, fresh credential",
        &[
            ("floor: read the JSON record and print", &floor_read),
            ("host token", &|| {
                bare.host(&["token", "--provider", "github"])
            }),
            ("host token, 1000 plugin files", &|| {
                crowded.host(&["token", "--provider", "github"])
            }),
        ],
        300,
    );

    let hundred = Home::new(100);
    let mut group = c.benchmark_group("host providers, plugin files installed");
    for (count, home) in [(0, &bare), (100, &hundred), (1000, &crowded)] {
        group.bench_with_input(BenchmarkId::from_parameter(count), home, |b, home| {
            b.iter(|| run(home.host(&["providers", "--json"])))
        });
    }
    group.finish();
    alternate(
        "host providers, plugin files installed",
        &[
            ("0", &|| bare.host(&["providers", "--json"])),
            ("100", &|| hundred.host(&["providers", "--json"])),
            ("1000", &|| crowded.host(&["providers", "--json"])),
        ],
        300,
    );
}

/// A home logged in to the github provider and to the slack example plugin, each against its
/// own loopback token server that never rotates refresh tokens (so every run can refresh).
struct RefreshHome {
    dir: tempfile::TempDir,
    github: TestProvider,
    _slack: TestProvider,
    /// The github record, unsealed, for the floor.
    plain: PathBuf,
}

impl RefreshHome {
    fn new(rt: &tokio::runtime::Runtime) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        let (github, slack) =
            rt.block_on(async { (TestProvider::start().await, common::slack_server().await) });
        github.set_rotate(false);
        common::install_slack(h, &slack);
        // A provider for machines on the same token server: renewed by a new client-credentials
        // grant where github is refreshed.
        let config = h.join("config/host/host.toml");
        let mut toml = std::fs::read_to_string(&config).unwrap();
        toml.push_str(&format!(
            "[providers.machine]\nclient_id = \"{}\"\nclient_secret = \"{}\"\ntoken_url = \"{}\"\nflow = \"client_credentials\"\n",
            host_testkit::CLIENT_ID,
            host_testkit::CLIENT_SECRET,
            github.url("/token")
        ));
        std::fs::write(&config, toml).unwrap();
        let config = host::ConfigLoader::with_env(github.github_env(h))
            .defaults(host::builtin_defaults())
            .load()
            .unwrap();
        let app = host::App::from_config(config).unwrap();
        let options = host::LoginOptions::default().timeout(std::time::Duration::from_secs(20));
        let record = rt.block_on(async {
            app.login("slack", "default", None, &options, &Approver)
                .await
                .unwrap();
            app.login("github", "default", Some("oauth2"), &options, &Approver)
                .await
                .unwrap()
        });
        let plain = h.join("record.json");
        std::fs::write(&plain, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
        // A first run compiles the plugin and caches the artifact.
        let home = Self {
            dir,
            github,
            _slack: slack,
            plain,
        };
        run(home.host(&["token", "--provider", "slack"]));
        home
    }

    fn host(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(host_binary());
        cmd.args(args).env_clear();
        for (k, v) in self.github.github_env(self.dir.path()) {
            cmd.env(k, v);
        }
        cmd
    }
}

fn refresh_benches(c: &mut Criterion, floor: &Path) {
    // The token servers answer from a runtime thread while the processes run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let home = RefreshHome::new(&rt);
    let due = ["--min-valid", "999999"];
    let mut group = c.benchmark_group("host token, refresh due");
    group.bench_function("host token", |b| {
        b.iter(|| run(home.host(&["token", "--provider", "github", due[0], due[1]])))
    });
    group.bench_function("floor: POST the refresh and write the record", |b| {
        let url = home.github.url("/token");
        b.iter(|| {
            let mut cmd = Command::new(floor);
            cmd.env_clear().arg("refresh").arg(&home.plain).args([
                url.as_str(),
                host_testkit::CLIENT_ID,
                host_testkit::CLIENT_SECRET,
            ]);
            run(cmd)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("host token, refresh due, plugin vs native");
    group.bench_function("native (github)", |b| {
        b.iter(|| run(home.host(&["token", "--provider", "github", due[0], due[1]])))
    });
    group.bench_function("plugin (slack, cached artifact)", |b| {
        b.iter(|| run(home.host(&["token", "--provider", "slack", due[0], due[1]])))
    });
    group.bench_function("client credentials (a new grant)", |b| {
        b.iter(|| run(home.host(&["token", "--provider", "machine", due[0], due[1]])))
    });
    group.finish();
    let floor_refresh = || {
        let mut cmd = Command::new(floor);
        cmd.env_clear().arg("refresh").arg(&home.plain).args([
            home.github.url("/token").as_str(),
            host_testkit::CLIENT_ID,
            host_testkit::CLIENT_SECRET,
        ]);
        cmd
    };
    alternate(
        "host token, refresh due",
        &[
            (
                "floor: POST the refresh and write the record",
                &floor_refresh,
            ),
            ("native (github)", &|| {
                home.host(&["token", "--provider", "github", due[0], due[1]])
            }),
            ("plugin (slack, cached artifact)", &|| {
                home.host(&["token", "--provider", "slack", due[0], due[1]])
            }),
            ("client credentials (a new grant)", &|| {
                home.host(&["token", "--provider", "machine", due[0], due[1]])
            }),
        ],
        300,
    );
}

fn main() {
    let floor = floor_binary();
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &floor);
    refresh_benches(&mut c, &floor);
    c.final_summary();
}
