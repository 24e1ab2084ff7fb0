//! A hostile plugin fails alone and clearly: its URLs, texts, files, limits and requests are
//! held to the sandbox's rules, through the real binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use host_testkit::guests;

use crate::support::{HostEnv, Output, assert_clean, hostile, mkfifo};

/// A folder of desktop openers (`xdg-open` and the others the opener tries) that record what
/// they were asked to open in `opened.txt`.
fn opener_stubs(env: &HostEnv) -> (PathBuf, PathBuf) {
    let bin = env.home.path().join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = env.home.path().join("opened.txt");
    for name in ["xdg-open", "gio", "gnome-open", "kde-open", "wslview"] {
        let path = bin.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", record.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (bin, record)
}

async fn run_with_opener(env: &HostEnv, args: &[&str], bin: &Path) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .host(args)
        .env("PATH", path)
        .env("DISPLAY", ":99")
        .output()
        .await
        .unwrap();
    // The opener is started detached: give it a moment to write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn plugin_urls_other_than_https_are_never_shown_or_opened() {
    // The stubs work: a real login's https-or-loopback URL reaches the opener.
    let env = HostEnv::start().await;
    let (bin, record) = opener_stubs(&env);
    let out = run_with_opener(
        &env,
        &["run", "--provider", "github", "--timeout", "1"],
        &bin,
    )
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let opened = std::fs::read_to_string(&record).expect("the opener was called");
    assert!(opened.contains("/authorize?"), "{opened}");

    for (mode, scheme) in [
        ("redirect-js", "javascript:"),
        ("redirect-file", "file:"),
        ("device-data", "data:"),
    ] {
        let env = hostile(&format!("mode = \"{mode}\"")).await;
        let (bin, record) = opener_stubs(&env);
        let out =
            run_with_opener(&env, &["run", "--provider", "evil", "--timeout", "2"], &bin).await;
        assert_eq!(out.code, Some(1), "{mode}: {out:?}");
        assert!(!out.stderr.contains(scheme), "{mode}: {}", out.stderr);
        assert!(
            out.stderr.contains("does not use https"),
            "{mode}: {}",
            out.stderr
        );
        assert!(!record.exists(), "{mode}: the opener was called");
    }
}

#[tokio::test]
async fn escape_sequences_from_plugins_never_reach_the_terminal() {
    // The plugin's own error text.
    let env = hostile("mode = \"escapes\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("pwned"), "{}", out.stderr);
    assert_clean(&out.stderr);

    // A schema's pattern quoted in a validation error.
    let env = hostile("mode = \"login\"\ncolor = \"blue\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("providers.evil.color"),
        "{}",
        out.stderr
    );
    assert_clean(&out.stderr);

    // A host pattern quoted in a configuration error: sanitized and capped.
    let long = "\\u001b[2J\\u202e".repeat(20_000);
    let env = hostile(&format!(
        "mode = \"login\"\n[providers.evil.sandbox]\nallowed_hosts = [\"*{long}*\"]"
    ))
    .await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("allowed_hosts"), "{}", out.stderr);
    assert!(out.stderr.len() < 4096, "{} bytes", out.stderr.len());
    assert_clean(&out.stderr);
}

#[tokio::test]
async fn errors_and_log_lines_quoting_a_hostile_file_name_are_sanitized() {
    let env = HostEnv::start().await;
    // An error naming a path: the configuration file given on the command line.
    let dir = env
        .home
        .path()
        .join("evil\u{1b}]0;title\u{7}\u{1b}[2J\u{202e}");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("host.toml");
    std::fs::write(&config, "not = [valid").unwrap();
    let out = env
        .output(&["--config", config.to_str().unwrap(), "providers"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("host.toml"), "{out:?}");
    assert_clean(&out.stderr);
    // Log lines naming one (as a field and in a message): a plugin inspected from that folder.
    let plugin = dir.join("good.wasm");
    std::fs::copy(guests::FLOW_GOOD, &plugin).unwrap();
    let out = env
        .output(&["-v", "plugin", "inspect", plugin.to_str().unwrap()])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("good.wasm"), "{out:?}");
    assert_clean(&out.stderr);
}

#[tokio::test]
async fn a_plugin_log_flood_is_capped_per_call() {
    let env = hostile("mode = \"log-flood\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("done logging"), "{}", out.stderr.len());
    assert!(
        out.stderr
            .contains("plugin log: 19969 more messages dropped"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(1000)..]
    );
    // 20 000 messages of 2000 bytes were sent; the default cap keeps 64 KiB: 31 of them.
    assert!(out.stderr.len() < 256 * 1024, "{} bytes", out.stderr.len());
}

#[tokio::test]
async fn a_plugin_whose_host_calls_never_wait_is_stopped_at_the_wall_clock_limit() {
    // Empty log messages in a loop: each call returns at once, so the caller's timer never
    // gets to fire, and the time is the host's, not the guest's CPU time.
    let env = hostile("mode = \"log-spin\"").await;
    let config = std::fs::read_to_string(env.home.path().join("config/host/host.toml")).unwrap();
    env.write_config(&config.replace("[plugins]\n", "[plugins]\ncall_timeout_secs = 2\n"));
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("`authorize` did not finish within 2s"),
        "{}",
        &out.stderr[out.stderr.len().saturating_sub(2000)..]
    );
    // Empty messages cost the log budget too: a few thousand lines, not millions.
    assert!(
        out.stderr.contains("more messages dropped"),
        "{}",
        out.stderr.len()
    );
    assert!(out.stderr.len() < 512 * 1024, "{} bytes", out.stderr.len());
}

#[tokio::test]
async fn waiting_on_a_slow_provider_is_not_counted_as_the_plugins_cpu_time() {
    let env = HostEnv::start().await;
    env.install_plugin("evil", guests::HOSTILE);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\ncpu_ms = 400\n[providers.evil]\nmode = \"fetch\"\nurl = \"{}\"\n",
        env.provider.url("/slow?ms=1500")
    ));
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    // The plugin got its answer (and fails on purpose), past its CPU limit in wall time.
    assert!(out.stderr.contains("got HTTP 200"), "{}", out.stderr);
    assert!(!out.stderr.contains("CPU-time limit"), "{}", out.stderr);
}

#[tokio::test]
async fn a_plugin_cannot_ask_an_allowed_server_for_another_host() {
    let env = HostEnv::start().await;
    env.install_plugin("evil", guests::HOSTILE);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.evil]\nmode = \"host-header\"\nurl = \"{}\"\n",
        env.provider.url("/sink")
    ));
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("the Host header must be the URL's host"),
        "{}",
        out.stderr
    );
    assert_eq!(env.provider.sink_hits(), 0, "nothing was sent");
}

#[tokio::test]
async fn oversized_plugin_answers_are_refused_with_clear_errors() {
    let env = hostile("mode = \"huge-pending\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("at most 65536"), "{}", out.stderr);

    let env = hostile("mode = \"login\"\nexchange = \"scopes-flood\"").await;
    let out = env
        .output(&["run", "--provider", "evil", "--field", "key=x"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("more than 256 scopes"),
        "{}",
        out.stderr
    );
    // Nothing stored (the provider's folder may exist: the login checked it could store
    // there before it began).
    let stored = match std::fs::read_dir(env.data_dir().join("credentials/evil")) {
        Ok(dir) => dir
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("cannot read the provider's folder: {e}"),
    };
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn an_expiry_no_clock_can_show_is_already_past() {
    let env = hostile("mode = \"login\"\nexchange = \"expires-min\"").await;
    let out = env
        .output(&["run", "--provider", "evil", "--field", "key=x"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // Due at once: `host token` refreshes (which this plugin cannot) instead of handing out
    // a token as if it never expired.
    let out = env.output(&["token", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(!out.stdout.contains("hostile-token"), "{out:?}");
    assert!(out.stderr.contains("cannot refresh"), "{}", out.stderr);

    // One after any clock can show is far off, not 1970: the token is handed out as it is.
    let env = hostile("mode = \"login\"\nexchange = \"expires-max\"").await;
    let out = env
        .output(&["run", "--provider", "evil", "--field", "key=x"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.output(&["token", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "hostile-token");
    let out = env.output(&["status", "--json"]).await;
    assert!(
        out.stdout.contains("\"9999-12-31T23:59:59Z\""),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_plugin_that_exits_is_blamed_for_it() {
    let env = hostile("mode = \"exit\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("the plugin exited (status"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("host failure"), "{}", out.stderr);
}

#[tokio::test]
async fn what_a_plugin_passes_wrong_is_its_trap_without_its_backtrace() {
    let env = hostile("mode = \"bad-utf8-log\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("trapped in `authorize`: invalid utf-8"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("host failure"), "{}", out.stderr);
    // The backtrace (names the plugin chose) only at debug.
    assert!(!out.stderr.contains("backtrace"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[tokio::test]
async fn a_plugin_that_sleeps_is_not_charged_cpu_time_for_it() {
    // Sleeping 3 s against a 1 s CPU limit: the plugin's own answer comes back.
    let env = hostile("mode = \"sleep\"").await;
    let out = env.output(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("slept well"), "{}", out.stderr);
    assert!(!out.stderr.contains("CPU"), "{}", out.stderr);
}

#[tokio::test]
async fn a_plugin_call_past_its_wall_clock_limit_is_ended_by_name() {
    // The same 3 s sleep against a 1 s limit on the whole call: ended, not awaited.
    let env = HostEnv::start().await;
    env.install_plugin("evil", guests::HOSTILE);
    env.write_config(
        "[plugins]\nallow_http_loopback = true\ncall_timeout_secs = 1\n[providers.evil]\nmode = \"sleep\"\n",
    );
    let out = env.output_bounded(&["run", "--provider", "evil"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("evil.wasm") && out.stderr.contains("did not finish within 1s"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("slept well"), "{}", out.stderr);
}

#[tokio::test]
async fn plugin_files_must_be_regular_files_of_bounded_size() {
    let env = HostEnv::start().await;
    let dir = env.plugins_dir();
    std::fs::create_dir_all(&dir).unwrap();
    mkfifo(&dir.join("fifo.wasm"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.wasm")).unwrap();
    std::fs::copy(guests::HOSTILE, dir.join("big.wasm")).unwrap();
    env.write_config("[plugins]\nmax_file_mib = 0\n[providers.big]\nmode = \"login\"\n");
    for name in ["fifo", "zero"] {
        let out = tokio::time::timeout(
            Duration::from_secs(20),
            env.output(&["run", "--provider", name]),
        )
        .await
        .unwrap_or_else(|_| panic!("`host run --provider {name}` hangs"));
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    }
    let out = env.output(&["run", "--provider", "big"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("larger than 0 MiB"), "{}", out.stderr);
}
