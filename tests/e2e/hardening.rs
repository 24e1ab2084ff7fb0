//! What a hostile plugin, a hostile server or a racing process tried, through the real binary:
//! each case failed on the release that preceded these fixes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use host_testkit::{Scripted, guests};
use serde_json::json;

use crate::support::{HostEnv, Output, mkfifo};

/// Characters that must never reach a terminal from a plugin or provider.
const UNSAFE: &[char] = &[
    '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200b}',
];

fn assert_clean(text: &str) {
    for c in UNSAFE {
        assert!(!text.contains(*c), "{c:?} reached the terminal: {text:?}");
    }
}

/// A home with the hostile test plugin installed as provider `evil`, configured with `section`.
async fn hostile(section: &str) -> HostEnv {
    let env = HostEnv::start().await;
    env.install_plugin("evil", guests::HOSTILE);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.evil]\n{section}\n"
    ));
    env
}

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

#[tokio::test]
async fn logs_are_colourless_when_stderr_is_not_a_terminal() {
    let env = HostEnv::start().await;
    let out = env
        .output(&[
            "-vv",
            "run",
            "--provider",
            "github",
            "--flow",
            "device",
            "--timeout",
            "1",
        ])
        .await;
    assert!(
        out.stderr.contains("DEBUG") || out.stderr.contains("TRACE"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains('\u{1b}'), "{:?}", out.stderr);
}

#[tokio::test]
async fn a_timeout_too_large_for_the_clock_does_not_panic() {
    let env = HostEnv::start().await;
    let mut child = env
        .host(&[
            "run",
            "--provider",
            "github",
            "--no-browser",
            "--timeout",
            "18446744073709551615",
        ])
        .spawn()
        .unwrap();
    // Once it has shown the URL it computes its deadline and waits for the login: it must
    // not end (a panic would end it at once; a process that waits never ends by itself).
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let (_, seen) = crate::support::read_url(&mut err).await;
    let ended = tokio::time::timeout(Duration::from_secs(3), child.wait()).await;
    assert!(
        ended.is_err(),
        "it waits for the login instead of dying: {ended:?}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut rest = String::new();
    let _ = tokio::io::AsyncReadExt::read_to_string(&mut err, &mut rest).await;
    let stderr = seen + &rest;
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `host token` that must refresh (the token lives an hour; it must be valid for more).
const DUE: &[&str] = &["token", "--provider", "github", "--min-valid", "4000"];

/// A logged-in home whose GitHub revocation goes to the RFC 7009 endpoint.
async fn logged_in() -> HostEnv {
    let env = HostEnv::start().await;
    env.write_config(&format!(
        "[providers.github]\nrevocation_url = \"{}\"\n",
        env.provider.url("/revoke")
    ));
    env.login_ok().await;
    env
}

/// Reads `child`'s stderr (its debug log) until a line containing `what`, then hands the
/// reader back, for the rest; fails the test after a minute.
async fn until_logged(
    child: &mut tokio::process::Child,
    what: &str,
) -> tokio::io::BufReader<tokio::process::ChildStderr> {
    use tokio::io::AsyncBufReadExt;
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).await.unwrap() == 0 {
                return false;
            }
            seen.push_str(&line);
            if line.contains(what) {
                return true;
            }
        }
    })
    .await;
    assert!(matches!(found, Ok(true)), "never logged {what:?}: {seen}");
    stderr
}

#[tokio::test]
async fn a_refresh_in_flight_finishes_before_a_logout_which_revokes_its_tokens() {
    // The README's order: "a refresh in flight finishes first and its tokens are the ones
    // revoked". Forced by events: the provider holds the refresh once it has looked up the
    // refresh token and issued new ones; the logout is started and seen waiting for the
    // record's lock; only then is the refresh let through.
    let env = logged_in().await;
    let mut hold = env.provider.hold_refreshes();
    let token = env.host(DUE).spawn().unwrap();
    let issued = hold.arrived().await;
    let mut logout = env
        .host(&["logout", "--provider", "github"])
        .env("HOST_LOG", "host=debug")
        .spawn()
        .unwrap();
    let rest = until_logged(&mut logout, "waiting for the lock").await;
    assert!(
        env.provider.revoked().is_empty(),
        "the logout revoked nothing while the refresh held the record"
    );
    hold.release();
    let token = token.wait_with_output().await.unwrap();
    assert!(token.status.success(), "{token:?}");
    assert_eq!(
        String::from_utf8_lossy(&token.stdout).trim(),
        issued,
        "the refresh finished and handed out its token"
    );
    let status = logout.wait().await.unwrap();
    drop(rest);
    assert!(status.success());
    // What the refresh stored is what was revoked: its access token and its refresh token.
    let revoked = env.provider.revoked();
    assert!(revoked.contains(&issued), "{revoked:?}");
    assert_eq!(
        env.provider.live_refresh_tokens(),
        0,
        "a refresh token survived the logout unrevoked"
    );
    assert!(
        !env.record_path("default").exists(),
        "the refresh wrote the record back after the logout"
    );
    assert!(
        !env.record_path("default").with_extension("lock").exists(),
        "the logout leaves no lock file behind"
    );
}

#[tokio::test]
async fn an_older_refresh_never_replaces_a_newer_login() {
    // The login is started while the refresh holds the record (seen waiting for its lock
    // before it asks the provider anything); the refresh is let through; the login's
    // credential is what stays.
    use tokio::io::AsyncBufReadExt;
    let env = logged_in().await;
    let mut hold = env.provider.hold_refreshes();
    let token = env.host(DUE).spawn().unwrap();
    let refreshed = hold.arrived().await;
    let mut login = env
        .host(&[
            "run",
            "--provider",
            "github",
            "--no-browser",
            "--timeout",
            "30",
        ])
        .env("HOST_LOG", "host=debug")
        .spawn()
        .unwrap();
    let mut stderr = until_logged(&mut login, "waiting for the lock").await;
    hold.release();
    let token = token.wait_with_output().await.unwrap();
    assert!(token.status.success(), "{token:?}");
    // The login goes on: its URL, the test browser, the callback.
    let url = loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).await.unwrap(), 0, "no URL");
        if line.starts_with("http") {
            break line.trim().to_owned();
        }
    };
    let callback = crate::support::browser_redirect(&url).await;
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&callback)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(login.wait().await.unwrap().success());
    let out = env.output(&["token", "--provider", "github"]).await;
    let stored = out.stdout.trim();
    assert_ne!(
        stored, refreshed,
        "the older refresh's token replaced the login"
    );
    let grants: Vec<String> = env
        .provider
        .token_requests()
        .iter()
        .filter_map(|r| r.form.get("grant_type").cloned())
        .collect();
    assert_eq!(
        grants.last().map(String::as_str),
        Some("authorization_code"),
        "the login's exchange came after the refresh: {grants:?}"
    );
    assert!(stored.starts_with("at-"), "{out:?}");
    // The refresh's tokens were the login's predecessor: revoked when the login replaced them.
    assert!(env.provider.revoked().contains(&refreshed));
}

#[tokio::test]
async fn a_stopped_lock_holder_makes_others_give_up_and_names_it() {
    let env = logged_in().await;
    let current = env.output(&["token", "--provider", "github"]).await.stdout;
    let mut holder = env.hold_record_lock("default");
    use std::io::Write;
    holder.set_len(0).unwrap();
    write!(holder, "process 4242").unwrap();
    let wait = [("HOST_STORE__LOCK_TIMEOUT_SECS", "1")];
    // The token is still valid: it is handed out, with a warning naming the holder, as when
    // a refresh fails for a passing reason.
    let out = env.output_with(DUE, &wait).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, current);
    assert!(
        out.stderr.contains("using the current token")
            && out.stderr.contains("locked by process 4242")
            && out.stderr.contains("within 1s"),
        "{out:?}"
    );
    // An expired one cannot be: the waiter gives up and names the holder.
    drop(holder);
    env.provider.set_ttl(1);
    env.login_ok().await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut holder = env.hold_record_lock("default");
    holder.set_len(0).unwrap();
    write!(holder, "process 4242").unwrap();
    let out = env.output_with(DUE, &wait).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("locked by process 4242") && out.stderr.contains("within 1s"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(env.provider.refresh_count(), 0);
}

#[tokio::test]
async fn a_refused_refresh_token_is_not_sent_again() {
    let env = logged_in().await;
    env.provider.revoke_all();
    for _ in 0..2 {
        let out = env.output(DUE).await;
        assert_eq!(out.code, Some(4), "{out:?}");
        assert_eq!(
            out.stderr.matches("log in again").count(),
            1,
            "said once: {}",
            out.stderr
        );
    }
    assert_eq!(
        env.provider.refresh_count(),
        1,
        "the dead token went out again"
    );
    // A new login clears the mark.
    env.login_ok().await;
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn a_provider_outage_inside_the_skew_hands_out_the_current_token() {
    let env = logged_in().await;
    let current = env.output(&["token", "--provider", "github"]).await;
    env.provider.script([Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "1".into())],
        body: vec![],
    }]);
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, current.stdout);
    assert!(
        out.stderr.contains("using the current token"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("retry after 1s").count(),
        1,
        "said once: {}",
        out.stderr
    );
}

#[tokio::test]
async fn symlinks_in_the_store_are_refused_and_wide_permissions_repaired() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // A symlinked lock file: its target is never created.
    let env = logged_in().await;
    let target = env.home.path().join("elsewhere.txt");
    let lock_path = env.record_path("default").with_extension("lock");
    let _ = std::fs::remove_file(&lock_path);
    std::os::unix::fs::symlink(&target, &lock_path).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(!target.exists(), "the lock's target was created");

    // A symlinked credentials folder: refused, its target's permissions untouched.
    let env = HostEnv::start().await;
    let outside = env.home.path().join("outside");
    std::fs::create_dir_all(outside.join("github")).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, env.data_dir().join("credentials")).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(mode(&outside), 0o755);

    // A record open to others in a folder open to all: used, with a warning, and repaired.
    let env = logged_in().await;
    let record = env.record_path("default");
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
    let folder = record.parent().unwrap().to_owned();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("owner-only"), "{}", out.stderr);
    assert_eq!(mode(&record), 0o600);
    assert_eq!(mode(&folder), 0o700);
}

#[tokio::test]
async fn revocation_says_what_happened_and_fails_loudly() {
    // GitHub without the app's secret: the message says what revocation needs.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env
        .host(&["logout", "--provider", "github"])
        .env_remove("GITHUB_CLIENT_SECRET")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("needs the app's client secret"), "{stderr}");

    // GitHub's deletion API answering 503 with Retry-After is asked again.
    let env = HostEnv::start().await;
    env.login_ok().await;
    env.provider.script([Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "1".into())],
        body: vec![],
    }]);
    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Revoked"), "{}", out.stderr);
    assert_eq!(env.provider.revoked().len(), 1);

    // A configured revocation_url is used for GitHub too: refresh token first.
    let env = logged_in().await;
    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.provider.revoked().len(), 2, "refresh and access token");
    assert_eq!(env.provider.live_refresh_tokens(), 0);

    // A failed revocation prints one line even with -q, and the exit status says it; the
    // refresh token's failure does not keep the access token from being revoked.
    let env = logged_in().await;
    let access_token = env.stored("github", "default").await.unwrap()["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    env.provider.script([Scripted::Json(500, json!({}))]);
    let out = env.output(&["-q", "logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert_eq!(env.provider.revoked(), vec![access_token]);
    assert!(out.stderr.contains("could not revoke"), "{}", out.stderr);
    assert!(!env.record_path("default").exists());
}

#[tokio::test]
async fn configuration_errors_name_the_place_never_the_secret() {
    let env = HostEnv::start().await;
    // A TOML syntax error on the line of a secret.
    env.write_config("[providers.github]\nclient_secret = s3cr3t-value\n");
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("key `client_secret`"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
    // A secret made of digits, too large for a TOML integer: the parser's message quotes it.
    env.write_config("[providers.github]\nclient_secret = 12345678901234567890123\n");
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("key `client_secret`"), "{}", out.stderr);
    assert!(!out.stderr.contains("1234567890"), "{}", out.stderr);

    // A proxy URL that does not parse: named, its password never shown.
    env.write_config("[http]\nproxy = \"http://me:s3cr3t@proxy example:3128\"\n");
    let out = env.output(&["config"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("http.proxy"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);

    // Secrets named otherwise than `…secret`, and in a URL's query.
    env.write_config(
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://127.0.0.1:1/x?password=s3cr3t1&sslmode=disable\"\n\
         [providers.acme]\nbot_token = \"s3cr3t2\"\nprivate_key = \"s3cr3t3\"\npassphrase = \"s3cr3t4\"\n\
         verify_url = \"https://x.example/v?api_key=s3cr3t5&page=2\"\n",
    );
    for args in [&["config"][..], &["config", "--json"]] {
        let out = env.output(args).await;
        assert!(!out.stdout.contains("s3cr3t"), "{args:?}: {}", out.stdout);
        assert!(
            out.stdout.contains("sslmode=disable") && out.stdout.contains("page=2"),
            "{args:?}: {}",
            out.stdout
        );
    }

    // A secret nested under a secret key.
    env.write_config("[providers.github]\nclient_secret = { value = \"s3cr3t\" }\n");
    let out = env.output(&["config"]).await;
    assert!(!out.stdout.contains("s3cr3t"), "{}", out.stdout);

    // A misspelt key is an error naming the nearest known key, not a silent public client.
    env.write_config("[providers.github]\nclient_secert = \"s3cr3t\"\n");
    let out = env
        .output(&["run", "--provider", "github", "--timeout", "1"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(
            "providers.github.client_secert is not a known setting (did you mean `client_secret`?)"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
}

/// A "proxy" on 127.0.0.1 that records the first line of each connection and closes it.
async fn recording_proxy() -> (u16, crate::support::Seen) {
    crate::support::raw_server(async |_, _, _| {}).await
}

#[tokio::test]
async fn proxies_from_the_environment_are_honoured_and_can_be_turned_off() {
    let env = logged_in().await;
    let (port, seen) = recording_proxy().await;
    let proxy = format!("http://user:s3cr3t@127.0.0.1:{port}");
    let refresh_via_proxy = |extra: &[(&str, &str)]| {
        let mut cmd = env.host(DUE);
        cmd.env(
            "HOST_PROVIDERS__GITHUB__TOKEN_URL",
            "https://id.proxied.example/token",
        )
        .env("HTTPS_PROXY", &proxy);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output()
    };
    // The proxy refuses; the current token is still good for an hour, so it is handed out
    // with a warning that names the failure.
    let out = refresh_via_proxy(&[]).await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("using the current token"));
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("CONNECT id.proxied.example:443 HTTP/1.1"),
        "the refresh went through the proxy"
    );
    // ALL_PROXY alone names it too.
    seen.lock().unwrap().clear();
    let out = env
        .host(DUE)
        .env(
            "HOST_PROVIDERS__GITHUB__TOKEN_URL",
            "https://id.proxied.example/token",
        )
        .env("ALL_PROXY", &proxy)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("CONNECT id.proxied.example:443 HTTP/1.1"),
        "ALL_PROXY carried the refresh"
    );
    // NO_PROXY and `proxy = "none"` keep it away.
    for extra in [
        [("NO_PROXY", ".proxied.example")],
        [("HOST_HTTP__PROXY", "none")],
    ] {
        seen.lock().unwrap().clear();
        let out = refresh_via_proxy(&extra).await.unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(seen.lock().unwrap().is_empty(), "{extra:?}: {seen:?}");
    }
    // Every loopback address goes direct, not only 127.0.0.1: plain http is allowed there, and
    // through a proxy it would carry the client secret in clear text.
    seen.lock().unwrap().clear();
    let provider_port = url::Url::parse(&env.provider.url("/"))
        .unwrap()
        .port()
        .unwrap();
    let direct = format!("http://127.0.0.2:{provider_port}/token");
    let out = refresh_via_proxy(&[("HOST_PROVIDERS__GITHUB__TOKEN_URL", direct.as_str())])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
    // `host config` says which proxy is used and where it came from, password hidden.
    let out = env
        .host(&["config"])
        .env("HTTPS_PROXY", &proxy)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "http.proxy = \"http://user:redacted@127.0.0.1:{port}/\"  # from environment variable HTTPS_PROXY"
        )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_processes_never_lose_a_logout_or_leave_a_live_grant() {
    let env = logged_in().await;
    for round in 0..5 {
        env.login_ok().await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let env = &env;
            tasks.push(async move {
                let kind = match i % 10 {
                    0 => "logout",
                    1 | 2 => "run",
                    _ => "token",
                };
                let out = match kind {
                    "logout" => env.output(&["logout", "--provider", "github"]).await,
                    "run" => {
                        env.login(&["--timeout", "30"], async |url| {
                            vec![crate::support::browser_redirect(&url).await]
                        })
                        .await
                        .0
                    }
                    _ => env.output(DUE).await,
                };
                (kind, out)
            });
        }
        let mut ok = std::collections::BTreeMap::new();
        for (kind, out) in futures_util::future::join_all(tasks).await {
            // Every login works; a token or a logout may find the credential logged out
            // under it (4: nothing to refresh or revoke); nothing fails (1).
            let expected: &[i32] = if kind == "run" { &[0] } else { &[0, 4] };
            assert!(
                out.code.is_some_and(|c| expected.contains(&c)),
                "round {round}: {kind}: {out:?}"
            );
            assert!(
                !out.stderr.contains("panicked") && !out.stderr.contains("corrupt"),
                "round {round}: {out:?}"
            );
            if out.code == Some(0) {
                *ok.entry(kind).or_insert(0) += 1;
            }
        }
        // Every login works whatever else happens; the others depend on the interleaving.
        assert_eq!(ok.get("run"), Some(&10), "round {round}: {ok:?}");
        let _ = env.output(&["logout", "--provider", "github"]).await;
        assert!(
            !env.record_path("default").exists(),
            "round {round}: a record survived the last logout"
        );
        assert_eq!(
            env.provider.live_refresh_tokens(),
            0,
            "round {round}: a grant survived unrevoked"
        );
    }
}

#[tokio::test]
async fn a_new_login_revokes_the_one_it_replaces_unless_they_share_a_token() {
    // Different tokens: the replaced login's tokens are revoked, the new ones are not.
    let env = logged_in().await;
    let old = env.stored("github", "default").await.unwrap();
    env.login_ok().await;
    let new = env.stored("github", "default").await.unwrap();
    let revoked = env.provider.revoked();
    for field in ["access_token", "refresh_token"] {
        let old = old["credential"][field].as_str().unwrap().to_owned();
        let new = new["credential"][field].as_str().unwrap().to_owned();
        assert_ne!(old, new);
        assert!(revoked.contains(&old), "{field} of the old login revoked");
        assert!(!revoked.contains(&new), "{field} of the new login kept");
    }

    // A provider answering each authorization with the same tokens: revoking the old login
    // would end the new one, so nothing is revoked and the stored token still works.
    let env = logged_in().await;
    let same = Scripted::Json(
        200,
        json!({
            "access_token": "gho_same_access",
            "refresh_token": "ghr_same_refresh",
            "token_type": "bearer",
            "expires_in": 28800,
        }),
    );
    env.provider.script([same.clone()]);
    env.login_ok().await;
    let before = env.provider.revoked();
    assert_eq!(before.len(), 2, "the first login's tokens: {before:?}");
    env.provider.script([same]);
    env.login_ok().await;
    assert_eq!(env.provider.revoked(), before, "nothing more revoked");
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "gho_same_access");
}

#[tokio::test]
async fn a_fifo_in_place_of_a_record_or_the_key_is_refused_not_waited_on() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // Each command is bounded: one waiting for a writer would fail the test, not hang it.
    let token = async || env.output_bounded(&["token", "--provider", "github"]).await;
    let record = env.record_path("default");
    std::fs::remove_file(&record).unwrap();
    mkfifo(&record);
    let out = token().await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    std::fs::remove_file(&record).unwrap();

    // A record again, and its key named as a FIFO.
    env.login_ok().await;
    let key = env.home.path().join("key.fifo");
    mkfifo(&key);
    env.write_config(&format!("[store]\nkey_file = \"{}\"\n", key.display()));
    let out = token().await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
}

#[tokio::test]
async fn a_login_that_could_not_be_stored_stops_before_the_provider_issues_anything() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // The stored record no longer opens: the store's key was replaced. It is never written
    // over, so a new login could not be stored either.
    let key = env.output(&["store", "keygen"]).await.stdout;
    let key_file = env.data_dir().join("store.key");
    crate::support::write_key_file(&key_file, &key);
    let requests = env.provider.token_requests().len();
    let out = env
        .output_bounded(&[
            "run",
            "--provider",
            "github",
            "--no-browser",
            "--timeout",
            "20",
        ])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("does not open with the key"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("/authorize"),
        "no login started: {}",
        out.stderr
    );
    assert_eq!(env.provider.token_requests().len(), requests);
}

#[tokio::test]
async fn a_provider_section_named_with_escapes_is_ignored_and_never_printed_raw() {
    let env = HostEnv::start().await;
    env.write_config(
        "default_provider = \"abc\\u001b[31mRED\"\n\
         [providers.\"ev\\u001b[31mil\"]\nclient_id = \"x\"\nauthorize_url = \"https://id.example/a\"\ntoken_url = \"https://id.example/t\"\n",
    );
    for args in [
        &["providers"][..],
        &["config"],
        &["token"],
        &["token", "--provider", "nope"],
    ] {
        let out = env.output(args).await;
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains('\u{1b}'), "{args:?}: {text}");
        }
    }
    let out = env.output(&["providers", "--json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["name"].as_str().is_some_and(|n| !n.contains('\u{1b}'))),
        "{listed}"
    );
}

#[tokio::test]
async fn config_as_json_escapes_what_would_act_on_the_terminal_and_keeps_the_values() {
    let env = HostEnv::start().await;
    // A value and a section name holding a right-to-left override and a C1 control (CSI),
    // which JSON itself leaves raw inside strings.
    env.write_config(
        "[providers.acme]\nclient_id = \"a\\u202eb\\u009bc\"\nauthorize_url = \"https://id.example/a\"\ntoken_url = \"https://id.example/t\"\n\
         [providers.\"x\\u202e\"]\nclient_id = \"y\"\n",
    );
    for args in [
        &["config", "--json"][..],
        &["config", "--json", "--provider", "acme"],
    ] {
        let out = env.output(args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {}", out.stderr);
        assert_clean(&out.stdout);
        assert_clean(&out.stderr);
        // The same JSON to a parser: the value as written.
        let parsed: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let client_id = parsed["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "providers.acme.client_id")
            .unwrap_or_else(|| panic!("{args:?}: {parsed}"));
        assert_eq!(client_id["value"], "a\u{202e}b\u{9b}c");
    }
}

#[tokio::test]
async fn a_plugin_reaches_its_hosts_through_a_proxy_named_by_a_private_host_name() {
    // The proxy is the configuration's choice: its own name may resolve to a private address
    // (here loopback, with plugins not allowed loopback themselves); the plugin's request
    // goes to it as a CONNECT for the plugin's host.
    let env = HostEnv::start().await;
    let (port, seen) = recording_proxy().await;
    env.install_plugin("ak", guests::API_KEY_PLUGIN);
    env.write_config(&format!(
        "[http]\nproxy = \"http://localhost:{port}\"\n\
         [providers.ak]\nverify_url = \"https://keys.proxied.example/v1/me\"\n"
    ));
    let out = env
        .output_bounded(&["run", "--provider", "ak", "--field", "api_key=k3y-s3cr3t"])
        .await;
    // The recording proxy answers nothing, so the check fails; what matters is where it went.
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("CONNECT keys.proxied.example:443 HTTP/1.1"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("k3y-s3cr3t"), "{}", out.stderr);
}

#[tokio::test]
async fn a_full_disk_is_found_before_the_provider_is_asked_to_refresh() {
    // The store on a full file system (a small tmpfs in a mount namespace of its own): the
    // refresh would rotate the refresh token, so it must not be asked for when the record
    // cannot be written.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let asked = env.provider.token_requests().len();
    let mount = env.home.path().join("small");
    std::fs::create_dir_all(&mount).unwrap();
    let script = r#"mount -t tmpfs -o size=256k tmpfs "$MNT" && cp -a "$DATA" "$MNT/data" || exit 99
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null
XDG_DATA_HOME="$MNT/data" exec "$HOST" token --provider github --min-valid 99999"#;
    let mut cmd = env.command("unshare", &["-Urm", "sh", "-c", script]);
    cmd.env("MNT", &mount)
        .env("DATA", env.home.path().join("data"))
        .env("HOST", env!("CARGO_BIN_EXE_host"));
    let out = HostEnv::finish_bounded(&mut cmd).await;
    assert_ne!(
        out.code,
        Some(99),
        "the test could not set up its file system: {out:?}"
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot write in") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.provider.token_requests().len(),
        asked,
        "no refresh was asked for"
    );
}

#[tokio::test]
async fn a_file_too_large_to_be_a_record_is_refused_unread_and_left_alone() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let big = env.record_path("big");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(64 << 20).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = env
        .output_bounded(&["token", "--provider", "github", "--account", "big"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("larger than any record"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::metadata(&big).unwrap().len(),
        64 << 20,
        "left as it is"
    );
    let out = env.output(&["status", "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("larger than any record"),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_misspelt_secret_is_not_shown_by_config() {
    let env = HostEnv::start().await;
    env.write_config(
        "[providers.acme]\nclient_id = \"x\"\nsecret_client = \"file-s3cr3t-1\"\nclient_secert = \"file-s3cr3t-2\"\n\
         authorize_url = \"https://id.example/a\"\ntoken_url = \"https://id.example/t\"\n",
    );
    let vars = [("HOST_PROVIDERS__ACME__CLIENT_SECRETT", "env-s3cr3t-3")];
    for args in [
        &["config"][..],
        &["config", "--json"],
        &["run", "--provider", "acme"],
    ] {
        let out = env.output_with(args, &vars).await;
        for secret in ["file-s3cr3t-1", "file-s3cr3t-2", "env-s3cr3t-3"] {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{args:?}: {out:?}"
            );
        }
    }
    // Still listed, by name and origin, with the value redacted.
    let out = env.output_with(&["config"], &vars).await;
    assert!(
        out.stdout
            .contains("providers.acme.client_secrett = \"[redacted]\"")
            && out.stdout.contains("HOST_PROVIDERS__ACME__CLIENT_SECRETT"),
        "{}",
        out.stdout
    );
}
