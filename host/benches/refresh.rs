#![allow(missing_docs)] // criterion_group! generates undocumented items
//! One refresh round trip, in process, against the same loopback token server, each beside its
//! floor: `cargo bench -p host --bench refresh`.
//!
//! - `reqwest`: the floor — a keep-alive `reqwest::Client` POSTs the refresh form and parses the
//!   JSON answer into a `serde_json::Value`;
//! - `native`: the built-in github flow's `refresh` (the same POST, the token response checked and
//!   typed);
//! - `plugin`: the slack example plugin's `refresh` (a fresh sandboxed instance per call, its
//!   POST through the host's `http` import) against the same server answering Slack's shape;
//! - `reqwest (slack server)`: the floor against that Slack-shaped server, the plugin's own
//!   floor.
//!
//! Then the plugin refresh split into its parts (the plugin call's own debug timing, averaged),
//! and Authlib's `AsyncOAuth2Client` (Python, `benches/authlib/refresh.py`) refreshes against
//! the same server as the native flow, each call timed one at a time, beside the native flow
//! timed the same way in the same run. The pinned Authlib and httpx are installed into a virtual
//! environment under the target folder on the first run (python3 and the package index needed;
//! without them the comparison is skipped and says why).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use host::{App, ConfigLoader, Credential, LoginOptions};
use host_testkit::TestProvider;

mod common;
use common::Approver;

/// Logs in to `provider` on `app` and returns the flow and the credential it gave.
async fn logged_in(
    app: &App,
    provider: &str,
    flow: &str,
) -> (std::sync::Arc<dyn host::AuthFlow>, Credential) {
    let options = LoginOptions::default().timeout(Duration::from_secs(20));
    let record = app
        .login(provider, "default", Some(flow), &options, &Approver)
        .await
        .unwrap();
    let flow = app.provider(provider).unwrap().flow(flow).await.unwrap();
    (flow, record.credential)
}

/// The refresh token a login gave.
fn refresh_token_of(credential: &Credential) -> String {
    credential
        .as_oauth2()
        .and_then(|t| t.refresh_token.as_ref())
        .expect("a refresh token")
        .expose()
        .to_owned()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // The native flow and the floor share one server.
    let github = rt.block_on(TestProvider::start());
    github.set_rotate(false);
    let home = tempfile::tempdir().unwrap();
    let config = ConfigLoader::with_env(github.github_env(home.path()))
        .defaults(host::builtin_defaults())
        .load()
        .unwrap();
    let app = App::from_config(config).expect("store settings");
    let (native, native_credential) = rt.block_on(logged_in(&app, "github", "oauth2"));
    let refresh_token = refresh_token_of(&native_credential);
    let token_url = github.url("/token");
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();

    // The slack plugin against a server answering Slack's shape.
    let slack = rt.block_on(common::slack_server());
    let slack_home = tempfile::tempdir().unwrap();
    common::install_slack(slack_home.path(), &slack);
    let config = ConfigLoader::with_env(slack.github_env(slack_home.path()))
        .load()
        .unwrap();
    let slack_app = App::from_config(config).expect("store settings");
    let (plugin, plugin_credential) =
        rt.block_on(logged_in(&slack_app, "slack", host::plugin::PLUGIN_FLOW));

    let slack_refresh_token = refresh_token_of(&plugin_credential);
    let slack_token_url = slack.url("/token");
    // The floor: one keep-alive POST of the refresh form, its JSON answer parsed.
    let floor = |url: &str, refresh_token: &str| {
        let request = plain.post(url).header("accept", "application/json").form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", host_testkit::CLIENT_ID),
            ("client_secret", host_testkit::CLIENT_SECRET),
        ]);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            let body: serde_json::Value =
                serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            body
        }
    };

    let mut group = c.benchmark_group("refresh");
    group.bench_function("reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let body = floor(token_url.as_str(), &refresh_token).await;
            assert!(body["access_token"].is_string());
        })
    });
    // The same floor against the Slack-shaped server (its answer is larger and nested): what
    // the plugin's round trip would cost without the plugin.
    group.bench_function("reqwest (slack server)", |b| {
        b.to_async(&rt).iter(|| async {
            let body = floor(slack_token_url.as_str(), &slack_refresh_token).await;
            assert!(body["authed_user"]["access_token"].is_string());
        })
    });
    group.bench_function("native", |b| {
        b.to_async(&rt).iter(|| async {
            let fresh = native.refresh(&native_credential).await.unwrap();
            assert!(fresh.secret().is_some());
        })
    });
    group.bench_function("plugin (slack)", |b| {
        b.to_async(&rt).iter(|| async {
            let fresh = plugin.refresh(&plugin_credential).await.unwrap();
            assert!(fresh.secret().is_some());
        })
    });
    group.finish();

    plugin_split(
        &rt,
        plugin.as_ref(),
        &plugin_credential,
        native.as_ref(),
        &native_credential,
    );
    authlib_comparison(&rt, native.as_ref(), &native_credential, &github);
}

/// Untimed calls before each timed series outside criterion.
const WARM_UP: usize = 200;

/// `count` refreshes through `flow`, one after another, each call's time.
fn timed(
    rt: &tokio::runtime::Runtime,
    flow: &dyn host::AuthFlow,
    credential: &Credential,
    count: usize,
) -> Vec<Duration> {
    rt.block_on(async {
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            let fresh = flow.refresh(credential).await.unwrap();
            times.push(started.elapsed());
            assert!(fresh.secret().is_some());
        }
        times
    })
}

/// The mean of `times`, in µs.
fn mean_us(times: &[Duration]) -> f64 {
    times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len() as f64
}

/// The median of `times`, in µs.
fn median_us(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6
}

/// Plugin calls timed in this split, after `WARM_UP` untimed ones.
const SPLIT_CALLS: usize = 5000;

/// Where a plugin refresh's time goes: the plugin call's own debug timing (`fresh_instance_us`,
/// `guest_us`, `host_functions_us`, `finishing_us`, logged by `host::plugin` when debug logging
/// is on), averaged over calls made with a subscriber that only collects those fields, beside
/// the whole call and a native refresh timed the same way. Skipped when the bench's filter does
/// not match "refresh/plugin split".
fn plugin_split(
    rt: &tokio::runtime::Runtime,
    plugin: &dyn host::AuthFlow,
    plugin_credential: &Credential,
    native: &dyn host::AuthFlow,
    native_credential: &Credential,
) {
    if common::filtered_out("refresh/plugin split") {
        return;
    }
    timed(rt, plugin, plugin_credential, WARM_UP);
    let split = std::sync::Arc::new(Split::default());
    let dispatch = tracing::Dispatch::from(std::sync::Arc::clone(&split));
    let whole = tracing::dispatcher::with_default(&dispatch, || {
        mean_us(&timed(rt, plugin, plugin_credential, SPLIT_CALLS))
    });
    timed(rt, native, native_credential, WARM_UP);
    let native = mean_us(&timed(rt, native, native_credential, SPLIT_CALLS));
    let (parts, calls) = *split.sums.lock().unwrap();
    assert_eq!(calls, SPLIT_CALLS, "each plugin call logs its timing once");
    let [instance, guest, host, finishing] = parts.map(|total| total / calls as f64);
    println!(
        "refresh/plugin split, where a plugin refresh's time goes (means of {SPLIT_CALLS} calls, debug timing on):"
    );
    for (name, value) in [
        ("a fresh instance (store, instantiation)", instance),
        ("the guest's own run (with its arguments and answer)", guest),
        (
            "host functions (the http import: its POST round trip)",
            host,
        ),
        (
            "finishing (answer checked, memory and tables released)",
            finishing,
        ),
        (
            "the rest (the credential taken from the answer)",
            whole - instance - guest - host - finishing,
        ),
        ("the whole plugin refresh", whole),
    ] {
        println!("  {name:<62} {value:>8.1} µs  {:.2}x", value / native);
    }
    println!(
        "  {:<62} {native:>8.1} µs  1.00x",
        "the native github flow's refresh, timed the same way"
    );
}

/// A subscriber that sums the plugin calls' timing fields and ignores everything else.
#[derive(Default)]
struct Split {
    /// The sums of `SPLIT_FIELDS`, and how many calls logged them.
    sums: std::sync::Mutex<([f64; 4], usize)>,
}

const SPLIT_FIELDS: [&str; 4] = [
    "fresh_instance_us",
    "guest_us",
    "host_functions_us",
    "finishing_us",
];

impl tracing::Subscriber for Split {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("host::plugin") && *metadata.level() <= tracing::Level::DEBUG
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        struct Visit([Option<f64>; 4]);
        impl tracing::field::Visit for Visit {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if let Some(i) = SPLIT_FIELDS.iter().position(|f| *f == field.name()) {
                    self.0[i] = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut visit = Visit([None; 4]);
        event.record(&mut visit);
        if let [Some(a), Some(b), Some(c), Some(d)] = visit.0 {
            let (parts, calls) = &mut *self.sums.lock().unwrap();
            for (sum, value) in parts.iter_mut().zip([a, b, c, d]) {
                *sum += value;
            }
            *calls += 1;
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The Authlib release compared, and the httpx it runs on.
const AUTHLIB: &str = "1.9.6";
const HTTPX: &str = "0.28.1";
/// Calls timed per side, after `WARM_UP` untimed ones.
const ROUNDS: usize = 2000;

/// Authlib's refresh beside the native flow's, each call timed one at a time (the script times
/// its calls the same way), medians; the native flow is timed before and after the script, so
/// drift during the Python run shows. Skipped when the bench's filter does not match "authlib".
fn authlib_comparison(
    rt: &tokio::runtime::Runtime,
    native: &dyn host::AuthFlow,
    credential: &Credential,
    github: &TestProvider,
) {
    if common::filtered_out("refresh/authlib") {
        return;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("authlib-{AUTHLIB}"));
    let requirements = [format!("authlib=={AUTHLIB}"), format!("httpx=={HTTPX}")];
    let requirements = requirements.each_ref().map(String::as_str);
    let python = match host_testkit::python::venv_with(&venv, &requirements) {
        Ok(python) => python,
        Err(why) => {
            println!("refresh/authlib: skipped ({why})");
            return;
        }
    };
    let native_median = || {
        timed(rt, native, credential, WARM_UP);
        median_us(timed(rt, native, credential, ROUNDS))
    };
    let before = native_median();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/authlib/refresh.py");
    // The token server answers on this thread's runtime while the script runs.
    let output = rt
        .block_on(async {
            tokio::process::Command::new(&python)
                .arg(&script)
                .arg(github.url("/token").as_str())
                .arg(host_testkit::CLIENT_ID)
                .arg(ROUNDS.to_string())
                .env("REFRESH_TOKEN", refresh_token_of(credential))
                .env("CLIENT_SECRET", host_testkit::CLIENT_SECRET)
                .output()
                .await
        })
        .expect("run the Authlib script");
    assert!(
        output.status.success(),
        "the Authlib script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = native_median();
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("its JSON");
    let authlib = result["authlib"]["median_us"].as_f64().unwrap();
    let httpx = result["httpx"]["median_us"].as_f64().unwrap();
    let native = (before + after) / 2.0;
    println!("refresh/authlib, one call timed at a time ({ROUNDS} each, medians, same run):");
    println!(
        "  {:<62} {native:>8.1} µs  1.00x",
        "native github flow (before and after)"
    );
    println!(
        "  {:<62} {authlib:>8.1} µs  {:.1}x",
        format!(
            "Authlib {AUTHLIB} AsyncOAuth2Client.refresh_token (Python {})",
            result["python"].as_str().unwrap_or("?")
        ),
        authlib / native
    );
    println!(
        "  {:<62} {httpx:>8.1} µs  {:.1}x",
        format!("httpx {HTTPX} POST + JSON (the client under Authlib)"),
        httpx / native
    );
    println!("  (native before: {before:.1} µs, after: {after:.1} µs)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
