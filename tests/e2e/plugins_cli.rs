//! Plugin-backed providers through the real `host` binary.

use serde_json::Value;

use crate::support::{HostEnv, assert_no_secrets, browser_redirect};

/// The flow-good test plugin installed as `acme`, configured against the test provider.
fn install_acme(env: &HostEnv) {
    env.install_plugin("acme", host_testkit::guests::FLOW_GOOD);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n\n[providers.acme]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        env.provider.url("/authorize"),
        env.provider.url("/token")
    ));
}

#[tokio::test]
async fn a_plugin_provider_works_with_run_token_providers_and_logout() {
    let env = HostEnv::start().await;
    install_acme(&env);

    let (out, answers) = env
        .login_as("acme", &["--json", "--timeout", "20"], async |url| {
            vec![browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 200);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["provider"], "acme");
    assert_eq!(summary["flow"], host::plugin::PLUGIN_FLOW);

    let out = env.output(&["token", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let first = out.stdout.trim().to_owned();
    assert!(first.starts_with("at-"));
    // With debug logging, the refresh says where its time went, and no token.
    let out = env
        .output_debug(&["token", "--provider", "acme", "--min-valid", "99999"])
        .await;
    let log = &out.stderr;
    assert_eq!(out.code, Some(0), "{log}");
    let fresh = out.stdout.trim();
    assert_ne!(fresh, first, "refreshed through the plugin");
    assert_eq!(env.provider.refresh_count(), 1);
    let timing = log
        .lines()
        .find(|l| l.contains("plugin call took"))
        .unwrap_or_else(|| panic!("no timing line: {log}"));
    for part in [
        "call=\"refresh\"",
        "acme.wasm",
        "fresh_instance_us=",
        "guest_us=",
        "host_functions_us=",
        "finishing_us=",
    ] {
        assert!(timing.contains(part), "{part} missing: {timing}");
    }
    let sent = env.provider.token_requests();
    let old_refresh = &sent.last().unwrap().form["refresh_token"];
    assert_no_secrets(
        log,
        &[
            fresh,
            &first,
            old_refresh.as_str(),
            host_testkit::CLIENT_SECRET,
        ],
    );
    // Nor the new refresh token (the test provider's are `rt-<n>`).
    let refresh_token = log
        .match_indices("rt-")
        .any(|(i, _)| log[i + 3..].starts_with(|c: char| c.is_ascii_digit()));
    assert!(!refresh_token, "{log}");

    let out = env.output(&["providers", "--json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let acme = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme")
        .unwrap();
    assert!(
        acme["source"].as_str().unwrap().ends_with("acme.wasm"),
        "{acme}"
    );
    assert_eq!(acme["accounts"][0]["account"], "default");

    let out = env.output(&["logout", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("no way to revoke")
            && out.stderr.contains("deleted the local credential"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_hundred_plugins_are_listed_without_compiling_any() {
    let env = HostEnv::start().await;
    for i in 0..100 {
        env.install_plugin(&format!("p{i:03}"), host_testkit::guests::FLOW_GOOD);
    }
    let out = env.output(&["providers", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let plugins = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with('p'))
        .count();
    assert_eq!(plugins, 100);
    let cache = env.data_dir().join("cache/plugins");
    let cached = match std::fs::read_dir(&cache) {
        Ok(dir) => dir.count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("cannot read the plugin cache folder: {e}"),
    };
    assert_eq!(cached, 0, "listing compiles nothing");
}

/// A listing longer than the block `host providers` writes at a time (32 KB): every plugin is
/// there once, in order, each with its own lines, in text and as JSON.
#[tokio::test]
async fn a_long_listing_is_whole_and_in_order() {
    let env = HostEnv::start().await;
    std::fs::create_dir_all(env.plugins_dir()).unwrap();
    let names: Vec<String> = (0..400).map(|i| format!("plugin-{i:04}")).collect();
    for name in &names {
        // Listing opens no plugin file: the contents do not matter.
        std::fs::write(env.plugins_dir().join(format!("{name}.wasm")), b"\0asm").unwrap();
    }
    let out = env.output(&["providers"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.len() > 64 * 1024, "{}", out.stdout.len());
    let headers: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("plugin-"))
        .collect();
    assert_eq!(headers.len(), names.len());
    for (header, name) in headers.iter().zip(&names) {
        assert!(header.starts_with(&format!("{name}  (")), "{header}");
    }
    let blocks: Vec<&str> = out.stdout.split("\nplugin-").skip(1).collect();
    assert_eq!(blocks.len(), names.len());
    for block in &blocks {
        assert!(block.contains("\n  flows: default\n"), "{block}");
        assert!(
            block.contains("\n  app credentials: unchecked\n"),
            "{block}"
        );
    }
    let out = env.output(&["providers", "--json"]).await;
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .filter(|n| n.starts_with("plugin-"))
        .collect();
    assert_eq!(listed, names);
}

#[tokio::test]
async fn the_second_process_loads_the_plugin_from_the_cache() {
    let env = HostEnv::start().await;
    let file = host_testkit::guests::FLOW_GOOD;
    let first = env.output_debug(&["plugin", "inspect", file]).await;
    let first_log = &first.stderr;
    assert_eq!(first.code, Some(0), "{first_log}");
    assert!(first_log.contains("compiling the plugin"), "{first_log}");
    let second = env
        .output_debug(&["plugin", "inspect", "--json", file])
        .await;
    let second_log = &second.stderr;
    assert!(
        second_log.contains("from the cache") && !second_log.contains("compiling"),
        "{second_log}"
    );
    let info: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(info["display_name"], "Test OAuth2 flow");
    assert_eq!(info["wit"], "integrations:auth@0.1.0");
    assert_eq!(info["allowed_hosts"], serde_json::json!(["127.0.0.1"]));
    assert!(
        info["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "integrations:auth/http@0.1.0")
    );
    assert_eq!(info["app_credentials_schema"]["required"][0], "client_id");
}

#[tokio::test]
async fn install_checks_the_file_and_puts_it_in_the_plugins_folder() {
    let env = HostEnv::start().await;
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "acme",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.plugins_dir().join("acme.wasm").is_file());
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "acme",
        ])
        .await;
    assert_eq!(out.code, Some(1), "no silent overwrite: {out:?}");
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    // With --force, the file is replaced and what loads under that name is the new plugin.
    let installed = env.plugins_dir().join("acme.wasm");
    let name_of = async || {
        let out = env
            .output(&["plugin", "inspect", installed.to_str().unwrap(), "--json"])
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        info["display_name"].as_str().unwrap().to_owned()
    };
    let before = name_of().await;
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::API_KEY_PLUGIN,
            "--name",
            "acme",
            "--force",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(host_testkit::guests::API_KEY_PLUGIN).unwrap()
    );
    let after = name_of().await;
    assert_ne!(
        before, after,
        "the new plugin loads, not the cached old one"
    );
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::WRONG_VERSION,
            "--name",
            "future",
        ])
        .await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("integrations:auth@0.9.0"),
        "{}",
        out.stderr
    );
    assert!(!env.plugins_dir().join("future.wasm").exists());
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "github",
        ])
        .await;
    assert_eq!(out.code, Some(1), "a built-in name is refused");
    assert!(
        out.stderr
            .contains("`github` is (or reads as) a built-in provider"),
        "{}",
        out.stderr
    );
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "GitHub",
        ])
        .await;
    assert_eq!(out.code, Some(1), "so is one that reads as it: {out:?}");
    assert!(
        out.stderr
            .contains("`GitHub` is (or reads as) a built-in provider"),
        "{}",
        out.stderr
    );
    assert!(!env.plugins_dir().join("github.wasm").exists());
    assert!(!env.plugins_dir().join("GitHub.wasm").exists());
    // A provider the configuration makes by its endpoints is not replaced by a plugin.
    env.write_config(&format!(
        "[providers.corp]\nclient_id = \"x\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\n",
        env.provider.url("/authorize"),
        env.provider.url("/token")
    ));
    let out = env
        .output(&[
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "corp",
        ])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("an OAuth2 provider of the configuration"),
        "{out:?}"
    );
    assert!(!env.plugins_dir().join("corp.wasm").exists());
    let out = env.output(&["providers", "--json"]).await;
    assert!(out.stdout.contains("\"acme\""), "{}", out.stdout);
}

#[tokio::test]
async fn perf_map_names_the_plugin_functions_for_perf_only_when_asked() {
    let env = HostEnv::start().await;
    // The map a run of `plugin inspect` wrote, if any (removed before anything is asserted). A
    // file left by an earlier process with the same PID, older than the run, is not this run's.
    let inspect = async |config: &str| {
        env.write_config(config);
        let spawned = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        let child = env
            .host(&["plugin", "inspect", host_testkit::guests::FLOW_GOOD])
            .spawn()
            .unwrap();
        let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", child.id().unwrap()));
        let out = child.wait_with_output().await.unwrap();
        let text = match std::fs::read_to_string(&map) {
            Ok(text) => {
                let written = std::fs::metadata(&map).unwrap().modified().unwrap();
                std::fs::remove_file(&map).unwrap();
                (written >= spawned).then_some(text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("{}: {e}", map.display()),
        };
        assert!(out.status.success(), "{out:?}");
        text
    };
    assert_eq!(inspect("").await, None, "no map unless asked");
    let text = inspect("[plugins]\nperf_map = true\n")
        .await
        .expect("the perf map");
    // `perf`'s format: start address, size (both hex), name. The guest's own functions are
    // among them (by number: the test guest carries no name section), not only trampolines.
    assert!(text.contains("wasm[0]::function["), "{text}");
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (start, size) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(
            start.starts_with("0x") && u64::from_str_radix(&start[2..], 16).is_ok(),
            "{line}"
        );
        assert!(u64::from_str_radix(size, 16).is_ok_and(|n| n > 0), "{line}");
        assert!(parts.next().is_some_and(|name| !name.is_empty()), "{line}");
    }
}

#[tokio::test]
async fn inspect_prints_nothing_a_terminal_acts_on_from_a_plugins_schema() {
    let env = HostEnv::start().await;
    let out = env
        .output(&["plugin", "inspect", host_testkit::guests::HOSTILE])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // The hostile plugin's schema has a pattern with ESC and a right-to-left override.
    assert!(out.stdout.contains("\"pattern\""), "{}", out.stdout);
    for c in ['\u{1b}', '\u{202e}'] {
        assert!(!out.stdout.contains(c), "{:?} printed: {}", c, out.stdout);
    }
    // As JSON the text is kept, the override written as an escape: the same to a parser.
    let out = env
        .output(&["plugin", "inspect", "--json", host_testkit::guests::HOSTILE])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for c in ['\u{1b}', '\u{202e}'] {
        assert!(!out.stdout.contains(c), "{:?} printed: {}", c, out.stdout);
    }
    assert!(out.stdout.contains("\\u202e"), "{}", out.stdout);
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(info.to_string().contains('\u{202e}'), "{info}");
}

/// A plugin's log lines show with `-v`, its trace lines too: at debug, marked, since release
/// builds of the command leave the trace level out. Without `-v`, neither.
#[tokio::test]
async fn a_plugins_log_lines_show_with_v_its_trace_lines_included() {
    let env = HostEnv::start().await;
    install_acme(&env);
    let out = env.run_briefly(&["-v"], "acme").await;
    assert!(
        out.stderr.contains("authorization URL built"),
        "{}",
        out.stderr
    );
    let trace = out
        .stderr
        .lines()
        .find(|l| l.contains("state and verifier made"))
        .unwrap_or_else(|| panic!("no trace line: {}", out.stderr));
    assert!(
        trace.contains("DEBUG") && trace.contains("level=trace"),
        "{trace}"
    );
    let out = env.run_briefly(&[], "acme").await;
    assert!(!out.stderr.contains("authorization URL built"), "{out:?}");
    assert!(!out.stderr.contains("state and verifier made"), "{out:?}");
}
