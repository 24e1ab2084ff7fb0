//! Plugins: real components built from tests/guests, loaded into the runtime and run against
//! the test provider; hostile ones fail alone and clearly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use host::Registry;
use host::plugin::PluginError;
use host::{FlowError, flow::AuthorizeRequest, flow::Interaction};
use host_testkit::{Scripted, guests};
use serde_json::Value;

use crate::support::{HostEnv, login};

/// Loads the plugin at `path` as a new process would: a new app and plugin host over the
/// same folders and cache.
async fn load_anew(env: &HostEnv, toml: &str, path: &Path) -> Arc<host::plugin::LoadedPlugin> {
    let (_app, host) = env.app_with(toml);
    host.load(path).await.unwrap()
}

/// The compiled artifacts in the plugin cache.
fn artifacts(env: &HostEnv) -> Vec<PathBuf> {
    std::fs::read_dir(env.data_dir().join("cache/plugins"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// A section for the flow-good plugin installed as `name`, against the test provider.
fn good_section(env: &HostEnv, name: &str) -> String {
    format!(
        "[providers.{name}]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        env.provider.url("/authorize"),
        env.provider.url("/token")
    )
}

const LOOPBACK: &str = "[plugins]\nallow_http_loopback = true\n";

async fn plugin_flow(registry: &Registry, name: &str) -> Arc<dyn host::AuthFlow> {
    registry
        .get(name)
        .unwrap()
        .flow(host::plugin::PLUGIN_FLOW)
        .await
        .unwrap()
}

async fn flow_error(registry: &Registry, name: &str) -> FlowError {
    let provider = registry.get(name).unwrap();
    let flow = match provider.flow(host::plugin::PLUGIN_FLOW).await {
        Ok(f) => f,
        Err(host::provider::ProviderError::Build { source, .. }) => return *source,
        Err(e) => panic!("{e}"),
    };
    flow.authorize(AuthorizeRequest::default())
        .await
        .expect_err("must fail")
}

fn plugin_error(e: FlowError) -> PluginError {
    let cause = match e {
        FlowError::Failed(e) | FlowError::Transient { source: e, .. } => e,
        other => panic!("expected a plugin error, got {other:?}"),
    };
    *cause
        .downcast::<PluginError>()
        .unwrap_or_else(|e| panic!("expected a plugin error, got {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_plugin_logs_in_and_refreshes() {
    let s = HostEnv::start().await;
    s.install_plugin("acme", guests::FLOW_GOOD);
    let (app, host) = s.app_with(&format!("{LOOPBACK}{}", good_section(&s, "acme")));
    let registry = app.registry();
    assert!(!host.is_started(), "building the registry starts no engine");
    let acme = registry.get("acme").unwrap();
    let flow = acme.flow(host::plugin::PLUGIN_FLOW).await.unwrap();
    let credential = login(flow.as_ref()).await;
    let token = credential.as_oauth2().expect("an OAuth2 token");
    assert!(token.access_token.expose().starts_with("at-"));
    assert_eq!(token.extra.0["via"], "flow-good");
    let refreshed = flow.refresh(&credential).await.unwrap();
    assert_ne!(
        refreshed.as_oauth2().unwrap().access_token.expose(),
        token.access_token.expose()
    );
    assert_eq!(s.provider.refresh_count(), 1);
    // A plugin that cannot revoke says so.
    assert!(!flow.revoke(&refreshed).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_credentials_are_validated_against_the_plugin_schema_before_it_runs() {
    let s = HostEnv::start().await;
    s.install_plugin("acme", guests::FLOW_GOOD);
    let (app, _) = s.app_with(&format!(
        "{LOOPBACK}[providers.acme]\nclient_id = 42\nauthorize_url = [\"x\"]\n"
    ));
    let registry = app.registry();
    let err = flow_error(registry, "acme").await;
    let FlowError::InvalidAppCredentials(v) = &err else {
        panic!("{err:?}")
    };
    let text = v.to_string();
    assert!(
        text.contains("providers.acme.authorize_url must be of type string"),
        "{text}"
    );
    assert!(
        text.contains("providers.acme.token_url is missing"),
        "{text}"
    );
    assert!(text.contains("host.toml"), "{text}");
    assert_eq!(v.issues.len(), 2, "{text}");
    assert!(s.provider.token_requests().is_empty());
}

/// A TCP listener and a UDP socket on one 127.0.0.1 port that count whatever reaches them:
/// what a plugin's socket would hit if the sandbox let it out.
struct SocketTrap {
    address: String,
    tcp: tokio::net::TcpListener,
    udp: tokio::net::UdpSocket,
}

impl SocketTrap {
    async fn bind() -> Self {
        for _ in 0..20 {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = tcp.local_addr().unwrap().to_string();
            if let Ok(udp) = tokio::net::UdpSocket::bind(&address).await {
                return Self { address, tcp, udp };
            }
        }
        panic!("no 127.0.0.1 port free for both TCP and UDP");
    }

    /// Connections and datagrams that arrived (none is waited for: the plugin's call is over).
    async fn received(&self) -> usize {
        let mut count = 0;
        let wait = std::time::Duration::from_millis(100);
        while tokio::time::timeout(wait, self.tcp.accept()).await.is_ok() {
            count += 1;
        }
        let mut buf = [0u8; 64];
        while tokio::time::timeout(wait, self.udp.recv_from(&mut buf))
            .await
            .is_ok()
        {
            count += 1;
        }
        count
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_alone_with_their_own_errors() {
    let s = HostEnv::start().await;
    s.install_plugin("good", guests::FLOW_GOOD);
    let modes = [
        "loop",
        "bomb",
        "recurse",
        "panic",
        "undeclared",
        "redirect",
        "probe",
        "chatty",
    ];
    // Limits tighter than the defaults, and far apart, so that on a loaded machine the memory
    // bomb still hits memory first and the loop still hits the CPU deadline.
    let mut toml = format!(
        "{LOOPBACK}memory_mib = 64\ncpu_ms = 2000\n{}",
        good_section(&s, "good")
    );
    let socket_trap = SocketTrap::bind().await;
    for mode in modes {
        s.install_plugin(mode, guests::HOSTILE);
        let (m, url) = match mode {
            // localhost is not among the hosts the plugin declares (127.0.0.1 is).
            "undeclared" => (
                "fetch",
                s.provider.url("/token").replace("127.0.0.1", "localhost"),
            ),
            "redirect" => ("fetch", s.provider.url("/token")),
            "probe" => ("probe", socket_trap.address.clone()),
            other => (other, String::new()),
        };
        toml.push_str(&format!(
            "[providers.{mode}]\nmode = \"{m}\"\nurl = \"{url}\"\n"
        ));
    }
    let (app, _) = s.app_with(&toml);
    let registry = app.registry();

    let trap = |e: FlowError| match plugin_error(e) {
        PluginError::Trap { path, call, reason } => {
            assert_eq!(call, "authorize");
            (path, reason)
        }
        other => panic!("expected a trap, got {other:?}"),
    };
    let (path, reason) = trap(flow_error(registry, "loop").await);
    assert!(path.ends_with("loop.wasm"));
    assert!(reason.contains("2000 ms CPU-time limit"), "{reason}");
    let (_, reason) = trap(flow_error(registry, "bomb").await);
    assert!(reason.contains("more than 64 MiB of memory"), "{reason}");
    let (_, reason) = trap(flow_error(registry, "recurse").await);
    assert!(reason.contains("stack overflow"), "{reason}");
    let (_, reason) = trap(flow_error(registry, "panic").await);
    assert!(reason.contains("panicked"), "{reason}");

    let failed = |e: FlowError| match plugin_error(e) {
        PluginError::Failed { message, .. } => message,
        other => panic!("expected the plugin's own error, got {other:?}"),
    };
    let message = failed(flow_error(registry, "undeclared").await);
    assert!(
        message.contains("Denied") && message.contains("not among the hosts the plugin declares"),
        "{message}"
    );
    assert!(
        s.provider.token_requests().is_empty(),
        "a denied request is never sent"
    );

    s.provider.script([Scripted::RedirectToSink(307)]);
    let message = failed(flow_error(registry, "redirect").await);
    assert!(message.contains("got HTTP 307"), "{message}");
    assert_eq!(
        s.provider.sink_hits(),
        0,
        "the redirect target receives nothing"
    );

    let message = failed(flow_error(registry, "chatty").await);
    assert!(
        message.contains("done talking"),
        "a flood of output is capped, not fatal: {message}"
    );

    // The probe succeeds, and reports what it could see: nothing.
    let probe = plugin_flow(registry, "probe").await;
    let auth = probe.authorize(AuthorizeRequest::default()).await.unwrap();
    let Interaction::Redirect { url } = auth.interaction else {
        panic!()
    };
    // The report rides in an https URL's query: a redirect must be https to be shown.
    let url = url::Url::parse(&url).unwrap();
    let (_, report) = url.query_pairs().find(|(k, _)| k == "report").unwrap();
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(
        report["file"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["dir"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert_eq!(report["env"], serde_json::json!([]), "{report}");
    assert_eq!(report["home"], Value::Null, "{report}");
    // Sockets and name lookups are refused by the sandbox: the trap, which is listening,
    // received nothing (a plugin with network access would have reached it).
    for what in ["socket", "datagram", "lookup"] {
        assert!(
            report[what].as_str().unwrap().starts_with("Err"),
            "{what}: {report}"
        );
    }
    assert_eq!(socket_trap.received().await, 0, "{report}");

    // After all that, the host and the good plugin still work.
    let good = plugin_flow(registry, "good").await;
    let credential = login(good.as_ref()).await;
    assert!(credential.as_oauth2().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_are_refused_by_name_and_others_keep_working() {
    let s = HostEnv::start().await;
    s.install_plugin("good", guests::FLOW_GOOD);
    s.install_raw("garbage", b"this is not wasm at all");
    let mut corrupt = std::fs::read(guests::FLOW_GOOD).unwrap();
    corrupt.truncate(corrupt.len() / 2);
    s.install_raw("truncated", &corrupt);
    s.install_raw("core", b"\0asm\x01\0\0\0");
    s.install_plugin("future", guests::WRONG_VERSION);
    s.install_plugin("unrelated", guests::MISSING_EXPORT);
    s.install_plugin("greedy", guests::UNKNOWN_IMPORT);
    let mut toml = format!("{LOOPBACK}{}", good_section(&s, "good"));
    for name in [
        "garbage",
        "truncated",
        "core",
        "future",
        "unrelated",
        "greedy",
    ] {
        toml.push_str(&format!("[providers.{name}]\n"));
    }
    let (app, _) = s.app_with(&toml);
    let registry = app.registry();

    let check = |e: FlowError, file: &str| {
        let text = e.to_string();
        assert!(text.contains(&format!("{file}.wasm")), "{text}");
        plugin_error(e)
    };
    assert!(matches!(
        check(flow_error(registry, "garbage").await, "garbage"),
        PluginError::NotWasm { .. }
    ));
    assert!(matches!(
        check(flow_error(registry, "truncated").await, "truncated"),
        PluginError::Invalid { .. }
    ));
    assert!(matches!(
        check(flow_error(registry, "core").await, "core"),
        PluginError::CoreModule { .. }
    ));
    let e = check(flow_error(registry, "future").await, "future");
    let text = e.to_string();
    assert!(
        text.contains("integrations:auth@0.9.0")
            && text.contains("integrations:auth@0.1.0 or 0.2.0"),
        "{text}"
    );
    let e = check(flow_error(registry, "unrelated").await, "unrelated");
    assert!(matches!(e, PluginError::MissingExport { .. }), "{e:?}");
    // Only what the host cannot provide is refused, by name.
    let e = check(flow_error(registry, "greedy").await, "greedy");
    assert!(
        matches!(&e, PluginError::UnsupportedImports { imports, .. } if imports == &["test:unknown/vault"]),
        "{e:?}"
    );

    let good = plugin_flow(registry, "good").await;
    assert!(login(good.as_ref()).await.as_oauth2().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_uses_compile_once_and_a_corrupt_cache_is_recompiled() {
    let s = HostEnv::start().await;
    s.install_plugin("acme", guests::FLOW_GOOD);
    s.install_plugin("twin", guests::FLOW_GOOD);
    let toml = format!(
        "{LOOPBACK}{}{}",
        good_section(&s, "acme"),
        good_section(&s, "twin")
    );
    let (app, host) = s.app_with(&toml);
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let r = Arc::clone(&app);
            tokio::spawn(async move {
                let name = if i % 2 == 0 { "acme" } else { "twin" };
                r.registry()
                    .get(name)
                    .unwrap()
                    .flow(host::plugin::PLUGIN_FLOW)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let artifacts = artifacts(&s);
    assert_eq!(
        artifacts.len(),
        1,
        "same bytes, one artifact: {artifacts:?}"
    );
    let acme = s.plugins_dir().join("acme.wasm");
    let loaded = host.load(&acme).await.unwrap();
    assert_eq!(loaded.source(), host::plugin::LoadSource::Compiled);

    // A new process (a new host) takes it from the cache...
    let again = load_anew(&s, &toml, &acme).await;
    assert!(cached(again.source()), "{:?}", again.source());
    // ...unless the artifact is corrupt: then it recompiles, never trusting it.
    drop(again);
    let flipped = flip_a_byte(&artifacts[0]);
    let recompiled = load_anew(&s, &toml, &acme).await;
    assert_eq!(recompiled.source(), host::plugin::LoadSource::Compiled);
    assert_ne!(
        std::fs::read(&artifacts[0]).unwrap(),
        flipped,
        "the artifact was rewritten"
    );
    // ...or its MAC is missing.
    let mut digest = artifacts[0].clone().into_os_string();
    digest.push(".mac");
    std::fs::remove_file(&digest).unwrap();
    let recompiled = load_anew(&s, &toml, &acme).await;
    assert_eq!(recompiled.source(), host::plugin::LoadSource::Compiled);
    assert!(
        std::fs::metadata(&digest).is_ok(),
        "the MAC was written again"
    );
    let last = load_anew(&s, &toml, &acme).await;
    assert!(cached(last.source()), "{:?}", last.source());
}

/// Flips the middle byte of `file` in place (same inode, one byte written, never truncated),
/// returning the file's new content.
///
/// Nothing may have the file mapped when it changes (the contract of wasmtime's
/// `deserialize_file`, which the host keeps by writing artifacts by rename), so callers drop
/// the plugins loaded from it first. A truncating rewrite under a live mapping is the likely
/// cause of a CI run killed by SIGBUS in this file.
fn flip_a_byte(file: &Path) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.write_all_at(&bytes[mid..=mid], mid as u64).unwrap();
    bytes
}

/// From the cache, by the file's digest or (once the files have settled) by its index entry.
fn cached(source: host::plugin::LoadSource) -> bool {
    use host::plugin::LoadSource;
    matches!(source, LoadSource::Cache | LoadSource::Indexed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_plugin_loads_by_its_index_entry_and_any_change_is_seen() {
    use host::plugin::LoadSource;
    let s = HostEnv::start().await;
    let plugin = s.install_plugin("acme", guests::FLOW_GOOD);
    let toml = format!("{LOOPBACK}{}", good_section(&s, "acme"));
    // The index vouches only for files whose last change is 2 s old.
    let settle = || std::thread::sleep(std::time::Duration::from_millis(2100));
    settle();
    let first = load_anew(&s, &toml, &plugin).await;
    assert_eq!(first.source(), LoadSource::Compiled);
    let name = first.info().display_name.clone();
    // The next process finds the artifact by the file's identity, checks its digest once
    // (recording the artifact's identity once it has settled too), and runs no metadata call.
    settle();
    let second = load_anew(&s, &toml, &plugin).await;
    assert_eq!(second.source(), LoadSource::Indexed);
    assert_eq!(second.info().display_name, name);
    assert_eq!(second.info().schema, first.info().schema);
    let third = load_anew(&s, &toml, &plugin).await;
    assert_eq!(third.source(), LoadSource::Indexed);
    let index: Vec<PathBuf> =
        std::fs::read_dir(s.home.path().join("data/host/cache/plugins/index"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    assert_eq!(index.len(), 1, "{index:?}");
    // Its MAC, a newline, the entry.
    let text = std::fs::read_to_string(&index[0]).unwrap();
    let (mac, json) = text.split_once('\n').unwrap();
    assert_eq!(mac.len(), 64, "{text}");
    let entry: serde_json::Value = serde_json::from_str(json).unwrap();
    assert!(entry["artifact"].is_string(), "{entry}");
    assert_eq!(entry["metadata"]["display_name"], name.as_str());

    // The artifact changed in place: its identity no longer matches, its digest is checked,
    // and the plugin is recompiled, never mapped.
    let artifacts = artifacts(&s);
    let [artifact] = artifacts.as_slice() else {
        panic!("one artifact: {artifacts:?}");
    };
    drop((second, third));
    let flipped = flip_a_byte(artifact);
    let fourth = load_anew(&s, &toml, &plugin).await;
    assert_eq!(fourth.source(), LoadSource::Compiled);
    assert_ne!(std::fs::read(artifact).unwrap(), flipped);

    // The plugin file rewritten in place (same inode): another plugin is loaded, not the
    // indexed one.
    settle();
    assert_eq!(
        load_anew(&s, &toml, &plugin).await.source(),
        LoadSource::Indexed
    );
    std::fs::write(&plugin, std::fs::read(guests::DEVICE_PLUGIN).unwrap()).unwrap();
    let other = load_anew(&s, &toml, &plugin).await;
    assert_eq!(other.source(), LoadSource::Compiled);
    assert_ne!(other.info().display_name, name);
}

#[test]
fn discovery_lists_plugin_files_only() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "b.wasm",
        "a.wasm",
        "notes.txt",
        ".hidden.wasm",
        "bad name.wasm",
    ] {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    let found: Vec<String> = host::plugin::discover(dir.path())
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(found, vec!["a", "b"]);
    assert!(host::plugin::discover(Path::new("/nonexistent/plugins")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_http_requests_take_the_same_allow_list() {
    let s = HostEnv::start().await;
    s.install_plugin("allowed", guests::HOSTILE);
    s.install_plugin("undeclared", guests::HOSTILE);
    s.install_plugin("narrowed", guests::HOSTILE);
    let user = s.provider.url("/api/user");
    let toml = format!(
        "{LOOPBACK}[providers.allowed]\nmode = \"wasi-http\"\nurl = \"{user}\"\n\
         [providers.undeclared]\nmode = \"wasi-http\"\nurl = \"{}\"\n\
         [providers.narrowed]\nmode = \"wasi-http\"\nurl = \"{user}\"\n[providers.narrowed.sandbox]\nallowed_hosts = [\"api.example.com\"]\n",
        user.replace("127.0.0.1", "localhost"),
    );
    let (app, _) = s.app_with(&toml);
    let registry = app.registry();
    let message = |e: FlowError| match plugin_error(e) {
        PluginError::Failed { message, .. } => message,
        other => panic!("{other:?}"),
    };
    // Allowed: the request reaches the provider (which refuses the missing token).
    let m = message(flow_error(registry, "allowed").await);
    assert!(m.contains("wasi:http got HTTP 401"), "{m}");
    // Not declared, or narrowed away by the configuration: denied before any connection.
    let m = message(flow_error(registry, "undeclared").await);
    assert!(m.contains("HttpRequestDenied"), "{m}");
    let m = message(flow_error(registry, "narrowed").await);
    assert!(m.contains("HttpRequestDenied"), "{m}");
}

/// The API-key flow of the plugins in other languages: a secret prompt, a key the API refuses
/// (HTTP 401: rejected), the key it accepts (the credential).
async fn an_api_key_flow_prompts_and_checks_the_key(flow: &dyn host::AuthFlow) {
    let auth = flow.authorize(AuthorizeRequest::default()).await.unwrap();
    let Interaction::Prompt { fields } = &auth.interaction else {
        panic!("{:?}", auth.interaction)
    };
    assert_eq!(fields[0].name, "api_key");
    assert!(fields[0].secret);

    let wrong = host::flow::ExchangeInput::new([("api_key", "nope")]);
    let err = flow
        .exchange(auth.pending.clone(), wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FlowError::Rejected(host::flow::CallbackError::Rejected(m)) if m.contains("HTTP 401")),
        "{err:?}"
    );
    let right = host::flow::ExchangeInput::new([("api_key", host_testkit::VALID_API_KEY)]);
    let credential = flow.exchange(auth.pending, right).await.unwrap();
    let host::Credential::ApiKey { key } = credential else {
        panic!()
    };
    assert_eq!(key.expose(), host_testkit::VALID_API_KEY);
}

/// Builds tests/python-plugin with componentize-py (brought into a virtual environment under
/// the target folder on first use).
fn python_plugin() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    host_testkit::python::componentize(
        &tests.join("python-plugin"),
        &tests.join("../wit/v0.1.0"),
        &target.join("api_key_py.wasm"),
        target,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_plugin_built_with_componentize_py_runs_unchanged() {
    let wasm = python_plugin();
    let s = HostEnv::start().await;
    s.install_plugin("pykey", wasm.to_str().unwrap());
    let toml = format!(
        "{LOOPBACK}[providers.pykey]\nverify_url = \"{}\"\n",
        s.provider.url("/api/keycheck")
    );
    let (app, host) = s.app_with(&toml);
    let registry = app.registry();
    let flow = plugin_flow(registry, "pykey").await;
    // It imports wasi:sockets, wasi:filesystem and more: linked, granted nothing.
    let loaded = host
        .load(&s.plugins_dir().join("pykey.wasm"))
        .await
        .unwrap();
    let (imports, _) = loaded.interface_names();
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:sockets/tcp")),
        "{imports:?}"
    );

    an_api_key_flow_prompts_and_checks_the_key(flow.as_ref()).await;
}

/// Builds tests/javascript-plugin with componentize-js (installed under the target folder on
/// first use).
fn javascript_plugin() -> PathBuf {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    host_testkit::javascript::componentize(
        &tests.join("javascript-plugin"),
        &tests.join("../wit"),
        &target.join("api_key_js.wasm"),
        target,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_plugin_built_with_componentize_js_runs_unchanged() {
    let wasm = javascript_plugin();
    let s = HostEnv::start().await;
    s.install_plugin("jskey", wasm.to_str().unwrap());
    let toml = format!(
        "{LOOPBACK}[providers.jskey]\nverify_url = \"{}\"\n",
        s.provider.url("/api/keycheck")
    );
    let (app, _host) = s.app_with(&toml);
    let registry = app.registry();
    let flow = plugin_flow(registry, "jskey").await;

    an_api_key_flow_prompts_and_checks_the_key(flow.as_ref()).await;
}

#[tokio::test]
async fn a_command_naming_one_provider_looks_up_only_that_one() {
    let s = HostEnv::start().await;
    for name in ["alpha", "beta", "gamma"] {
        s.install_plugin(name, guests::FLOW_GOOD);
    }
    let (app, host) = s.app_with(&format!(
        "{LOOPBACK}{}{}",
        good_section(&s, "beta"),
        good_section(&s, "configured")
    ));
    let registry = app.registry();
    assert!(
        registry.loaded().is_empty(),
        "nothing is looked up at start"
    );
    registry.get("github").unwrap();
    assert_eq!(registry.loaded(), ["github"]);
    // A plugin is found by its file name; the others stay unread.
    let beta = registry.get("beta").unwrap();
    assert!(matches!(
        beta.source(),
        host::provider::ProviderSource::Plugin(_)
    ));
    assert_eq!(registry.loaded(), ["beta", "github"]);
    assert!(
        Arc::ptr_eq(&beta, &registry.get("beta").unwrap()),
        "the same provider"
    );
    let err = registry.get("nope").unwrap_err().to_string();
    assert!(
        err.contains("alpha") && err.contains("configured") && err.contains("gamma"),
        "an unknown name lists the choices: {err}"
    );
    // Listing everything finds every plugin file and section, and compiles nothing.
    let listed = registry.providers();
    let names: Vec<&str> = listed.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["alpha", "beta", "configured", "gamma", "github"]);
    assert!(!host.is_started());
    // What was looked up before is listed as itself; what was listed is what a lookup gives.
    assert!(Arc::ptr_eq(&beta, &listed[1]), "the loaded beta is listed");
    for p in &listed {
        assert!(
            Arc::ptr_eq(p, &registry.get(p.name()).unwrap()),
            "{}",
            p.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_file_bound_as_a_flow_of_several_providers_checks_each_ones_section() {
    let s = HostEnv::start().await;
    let path = s.install_plugin("shared", guests::FLOW_GOOD);
    // Two configured providers bind the same file as their `custom` flow; gamma's section
    // suits its own OAuth2 flow but not the plugin's schema (an empty client id).
    let bind = |name: &str| format!("[providers.{name}.flows.custom]\nplugin = \"shared.wasm\"\n");
    let gamma =
        good_section(&s, "gamma").replace(&format!("\"{}\"", host_testkit::CLIENT_ID), "\"\"");
    let (app, host) = s.app_with(&format!(
        "{LOOPBACK}{}{}{gamma}{}",
        good_section(&s, "beta"),
        bind("beta"),
        bind("gamma")
    ));
    let registry = app.registry();
    let custom = |name: &str| {
        let provider = registry.get(name).unwrap();
        async move { provider.flow("custom").await }
    };
    let invalid =
        |result: Result<Arc<dyn host::AuthFlow>, host::provider::ProviderError>| match result {
            Err(host::provider::ProviderError::Build { source, .. }) => match *source {
                FlowError::InvalidAppCredentials(v) => v,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("gamma's section must be refused"),
        };
    let refused = invalid(custom("gamma").await);
    assert_eq!(refused.issues.len(), 1, "{refused}");
    assert!(
        refused.to_string().contains("providers.gamma.client_id"),
        "{refused}"
    );
    // The other provider of the same file is checked against its own section.
    let flow = custom("beta").await.unwrap();
    let credential = login(flow.as_ref()).await;
    assert_eq!(credential.as_oauth2().unwrap().extra.0["via"], "flow-good");
    let refreshed = flow.refresh(&credential).await.unwrap();
    assert!(refreshed.secret().is_some());
    // And gamma is still refused, for its own reason only.
    let again = invalid(custom("gamma").await);
    assert_eq!(again.to_string(), refused.to_string());
    // One load of the file served both.
    let loaded = host.load(&path).await.unwrap();
    assert!(Arc::ptr_eq(&loaded, &host.load(&path).await.unwrap()));
    assert_eq!(s.provider.refresh_count(), 1);
}
