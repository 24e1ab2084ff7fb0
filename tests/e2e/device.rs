//! The device authorization grant (RFC 8628) through the real `host` binary, against the test
//! provider with a one-second interval.

use host_testkit::{Scripted, USER_CODE};
use serde_json::{Value, json};

use crate::support::{HostEnv, Output};

fn pending_200() -> Scripted {
    // GitHub sends the device-flow errors with HTTP 200.
    Scripted::Json(200, json!({"error": "authorization_pending"}))
}

async fn device_login(env: &HostEnv, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--provider", "github", "--flow", "device", "--json"];
    args.extend_from_slice(extra);
    env.output(&args).await
}

/// `host run --flow device ARGS` against the device endpoint at `device_url`.
async fn device_run(env: &HostEnv, device_url: String, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--provider", "github", "--flow", "device"];
    args.extend_from_slice(extra);
    let mut cmd = env.host(&args);
    cmd.env(
        "HOST_PROVIDERS__GITHUB__DEVICE_AUTHORIZATION_URL",
        device_url,
    );
    HostEnv::finish_bounded(&mut cmd).await
}

/// [`device_run`] given up after a second (for what it shows, or why it cannot start).
async fn device_briefly(env: &HostEnv, device_url: String) -> Output {
    device_run(env, device_url, &["--timeout", "1"]).await
}

/// Seconds between consecutive device polls, as the provider saw them.
fn gaps(env: &HostEnv) -> Vec<f64> {
    let polls = env.provider.device_polls();
    polls
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect()
}

#[tokio::test]
async fn pending_pending_success_then_token_and_refresh() {
    let env = HostEnv::start().await;
    env.provider.script([
        pending_200(),
        Scripted::Json(400, json!({"error": "authorization_pending"})),
    ]);
    let out = device_login(&env, &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(USER_CODE),
        "the code is shown: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("/device"),
        "the URL is shown: {}",
        out.stderr
    );
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["flow"], "device");
    assert_eq!(
        env.provider.device_polls().len(),
        3,
        "pending, pending, success"
    );
    assert!(
        gaps(&env).iter().all(|g| *g >= 0.9),
        "never faster than the interval: {:?}",
        gaps(&env)
    );

    // Stored and refreshed like any other credential.
    let first = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let again = env
        .output(&["token", "--provider", "github", "--min-valid", "99999"])
        .await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_ne!(again.stdout, first.stdout);
    assert_eq!(env.provider.refresh_count(), 1);
}

#[tokio::test]
async fn slow_down_widens_every_later_interval_by_five_seconds() {
    let env = HostEnv::start().await;
    env.provider.script([
        pending_200(),
        Scripted::Json(200, json!({"error": "slow_down"})),
        pending_200(),
    ]);
    let out = device_login(&env, &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let gaps = gaps(&env);
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    assert!(gaps[0] < 3.0, "one second until slow_down: {gaps:?}");
    for gap in &gaps[1..] {
        assert!(
            *gap >= 5.5 && *gap < 9.0,
            "1 + 5 seconds for every poll after slow_down: {gaps:?}"
        );
    }
}

#[tokio::test]
async fn access_denied_and_expired_token_stop_with_clear_messages() {
    let env = HostEnv::start().await;
    env.provider.script([
        pending_200(),
        Scripted::Json(200, json!({"error": "access_denied"})),
    ]);
    let out = device_login(&env, &[]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("refused") && out.stderr.contains("access denied"),
        "{}",
        out.stderr
    );
    assert!(!env.record_path("default").exists());

    env.provider
        .script([Scripted::Json(400, json!({"error": "expired_token"}))]);
    let out = device_login(&env, &[]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    // The provider's expiry, not our own wait running out.
    assert!(
        out.stderr.contains("expired before it was entered") && !out.stderr.contains("within"),
        "{}",
        out.stderr
    );
    assert!(!env.record_path("default").exists());

    // Our own wait running out says how long it waited.
    env.provider.script([pending_200()]);
    let out = device_login(&env, &["--timeout", "1"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("not entered within 1s"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_network_error_in_the_middle_backs_off_and_goes_on() {
    let env = HostEnv::start().await;
    env.provider.script([
        pending_200(),
        Scripted::Raw {
            status: 502,
            content_type: None,
            headers: vec![],
            body: vec![],
        },
    ]);
    let out = device_login(&env, &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let gaps = gaps(&env);
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(
        gaps[1] >= 1.9,
        "backed off after the error, never faster: {gaps:?}"
    );
}

#[tokio::test]
async fn no_browser_here_picks_the_device_flow_by_itself() {
    let env = HostEnv::start().await;
    // No DISPLAY in the test environment, no --flow and no --no-browser: the device flow.
    let out = env.output(&["run", "--provider", "github", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("using the device flow"),
        "{}",
        out.stderr
    );
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["flow"], "device");
    // --flow always wins (here with a timeout, as nobody answers the browser flow).
    let out = env
        .output(&[
            "run",
            "--provider",
            "github",
            "--flow",
            "oauth2",
            "--timeout",
            "1",
        ])
        .await;
    assert!(
        out.stderr.contains("no login callback arrived within 1s"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_code_shown_is_sanitized() {
    let env = HostEnv::start().await;
    // A hostile device endpoint: escape sequences in the user code.
    let out = device_briefly(&env, env.provider.url("/device/evil")).await;
    let stderr = &out.stderr;
    assert!(
        stderr.contains("ABCD-EFGH"),
        "the code is still shown: {stderr:?}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
        "no escape sequence reaches the terminal: {stderr:?}"
    );
}

/// A home with the device-flow test plugin installed as provider `gadget`.
async fn gadget() -> HostEnv {
    let env = HostEnv::start().await;
    env.install_plugin("gadget", host_testkit::guests::DEVICE_PLUGIN);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.gadget]\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
         device_url = \"{}\"\ntoken_url = \"{}\"\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        env.provider.url("/device/code"),
        env.provider.url("/token")
    ));
    env
}

#[tokio::test]
async fn a_plugin_device_flow_is_polled_the_same_way() {
    let env = gadget().await;
    env.provider.script([
        pending_200(),
        Scripted::Raw {
            status: 502,
            content_type: None,
            headers: vec![],
            body: vec![],
        },
        Scripted::Json(200, json!({"error": "slow_down"})),
    ]);
    let out = env.output(&["run", "--provider", "gadget", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains(USER_CODE), "{}", out.stderr);
    let gaps = gaps(&env);
    assert_eq!(gaps.len(), 3, "{gaps:?}");
    assert!(
        gaps[1] >= 1.9,
        "the plugin's network error backs off (1 s to 2 s): {gaps:?}"
    );
    assert!(
        gaps[2] >= 6.5,
        "slow_down from a plugin widens it by 5 s too: {gaps:?}"
    );
    let out = env.output(&["token", "--provider", "gadget"]).await;
    assert!(out.stdout.starts_with("at-"), "{out:?}");
}

#[tokio::test]
async fn a_plugin_device_flow_stops_at_a_protocol_error_as_the_native_one_does() {
    let env = gadget().await;
    // A pending poll, then an answer no retry can fix: an HTML page with HTTP 200.
    env.provider.script([
        pending_200(),
        Scripted::Raw {
            status: 200,
            content_type: Some("text/html"),
            headers: vec![],
            body: b"<html>maintenance</html>".to_vec(),
        },
    ]);
    let out = env.output(&["run", "--provider", "gadget"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("protocol"), "{}", out.stderr);
    // It stopped at the bad answer instead of backing off until the code expired.
    assert_eq!(env.provider.device_polls().len(), 2, "{}", out.stderr);
}

#[tokio::test]
async fn long_verification_uris_are_shown_whole_and_too_long_ones_refused() {
    let env = HostEnv::start().await;
    let out = device_briefly(&env, env.provider.url("/device/long")).await;
    // The plain URI is what is printed (the complete one goes to a browser, none here).
    let shown = format!("https://login.example/device?tenant={}\n", "a".repeat(600));
    assert!(out.stderr.contains(&shown), "shown whole: {}", out.stderr);
    assert!(!out.stderr.contains('…'), "nothing cut: {}", out.stderr);
    // The code's lifetime was not the limit here, --timeout was: the hint says the same
    // command again, flow included, and to raise --timeout.
    assert!(
        out.stderr
            .contains("run `host run --provider github --flow device` again, or raise --timeout"),
        "{}",
        out.stderr
    );
    let out = device_briefly(
        &env,
        format!("{}?too_long", env.provider.url("/device/long")),
    )
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("verification_uri") && out.stderr.contains("too long"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_code_whose_lifetime_runs_out_says_to_start_again_not_to_wait_longer() {
    let env = HostEnv::start().await;
    // Never entered; the code lives 1 s, which the lower bound makes 10 s.
    env.provider.script((0..40).map(|_| pending_200()));
    let out = device_run(
        &env,
        env.provider.url("/device/code?expires_in=1"),
        &["--scope", "gist", "--timeout", "50"],
    )
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("the code was not entered within 10s; nothing was stored")
            && out
                .stderr
                .contains("(run `host run --provider github --flow device --scope gist` again)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("raise --timeout"), "{}", out.stderr);
    assert!(!env.record_path("default").exists(), "nothing stored");
}
