//! The example plugins (plugins/api-key, plugins/slack), built with plugin-sdk by the test
//! suite, end to end through the real `host` binary against the test provider.

use serde_json::Value;

use crate::support::{HostEnv, browser_redirect};

async fn stored(env: &HostEnv, provider: &str) -> Value {
    env.stored(provider, "default")
        .await
        .expect("a stored record")
}

#[tokio::test]
async fn api_key_plugin_prompts_verifies_and_stores_the_key() {
    let env = HostEnv::start().await;
    env.install_plugin("api-key", host_testkit::guests::API_KEY_PLUGIN);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.api-key]\nverify_url = \"{}\"\n",
        env.provider.url("/api/keycheck")
    ));

    // Non-interactive and nothing given: one sentence saying how to give it.
    let out = env.output(&["run", "--provider", "api-key"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--field api_key=") && out.stderr.contains("HOST_FIELD_API_KEY"),
        "{}",
        out.stderr
    );

    // A wrong key is refused by the plugin's check.
    let out = env
        .output(&["run", "--provider", "api-key", "--field", "api_key=wrong"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("the API key was refused (HTTP 401)"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("wrong"),
        "the key is never echoed: {}",
        out.stderr
    );
    // An unknown field is a usage mistake, said clearly.
    let out = env
        .output(&["run", "--provider", "api-key", "--field", "token=x"])
        .await;
    assert!(out.stderr.contains("no field `token`"), "{}", out.stderr);

    // From the environment.
    let mut cmd = env.host(&["run", "--provider", "api-key", "--json"]);
    cmd.env("HOST_FIELD_API_KEY", host_testkit::VALID_API_KEY);
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["provider"], "api-key");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(host_testkit::VALID_API_KEY));
    assert_eq!(
        stored(&env, "api-key").await["credential"]["kind"],
        "api_key"
    );

    // `host token` prints the key; a key never expires, so asking for more validity changes
    // nothing.
    for args in [
        &["token", "--provider", "api-key"][..],
        &["token", "--provider", "api-key", "--min-valid", "99999"],
    ] {
        let out = env.output(args).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout.trim(), host_testkit::VALID_API_KEY);
    }

    // Piped standard input works too (`host run --provider api-key < key.txt`).
    use tokio::io::AsyncWriteExt;
    let mut cmd = env.host(&["run", "--provider", "api-key", "--account", "piped"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", host_testkit::VALID_API_KEY).as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_plugins_schema_refuses_bad_configuration_before_it_runs() {
    let env = HostEnv::start().await;
    env.install_plugin("api-key", host_testkit::guests::API_KEY_PLUGIN);
    env.write_config(
        "[plugins]\nallow_http_loopback = true\n[providers.api-key]\nheader = [\"x\"]\n",
    );
    let out = env
        .output(&["run", "--provider", "api-key", "--field", "api_key=x"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("providers.api-key.verify_url is missing"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("providers.api-key.header must be of type string"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("host.toml"),
        "the source is named: {}",
        out.stderr
    );
    assert!(env.provider.token_requests().is_empty());
}

#[tokio::test]
async fn slack_plugin_logs_in_refreshes_and_keeps_the_team() {
    let env = HostEnv::start().await;
    env.provider.set_slack_shape(true);
    env.install_plugin("slack", host_testkit::guests::SLACK_PLUGIN);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.slack]\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
         authorize_url = \"{}\"\ntoken_url = \"{}\"\nuser_scopes = [\"users:read\", \"chat:write\"]\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        env.provider.url("/authorize"),
        env.provider.url("/token")
    ));
    let (out, answers) = env
        .login_as("slack", &["--json", "--timeout", "20"], async |url| {
            assert!(
                url.contains("user_scope=users%3Aread%2Cchat%3Awrite"),
                "{url}"
            );
            vec![browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 200);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        summary["scopes"],
        serde_json::json!(["users:read", "chat:write"]),
        "comma-separated scopes split"
    );
    let record = stored(&env, "slack").await;
    assert_eq!(
        record["credential"]["extra"]["team_name"], "Acme Corp",
        "the team is kept with the token"
    );
    let first = record["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = env.output(&["token", "--provider", "slack"]).await;
    assert_eq!(out.stdout.trim(), first);
    let out = env
        .output(&["token", "--provider", "slack", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_ne!(out.stdout.trim(), first, "refreshed");
    assert_eq!(env.provider.refresh_count(), 1);
    assert_eq!(
        stored(&env, "slack").await["credential"]["extra"]["team_id"],
        "T0123"
    );

    // A maintenance page, a 404 page or a redirect instead of an answer: the plugin fails on
    // it, and the host, which saw what it got, treats it as a native flow's "no answer": the
    // current token (valid for an hour) is handed out with a warning.
    let current = out.stdout.trim().to_owned();
    let raw = |status: u16, body: &str| host_testkit::Scripted::Raw {
        status,
        content_type: Some("text/html"),
        headers: vec![],
        body: body.as_bytes().to_vec(),
    };
    for (answer, why) in [
        (
            raw(200, "<html>down for maintenance</html>"),
            "HTTP 200 (text/html), not JSON",
        ),
        (
            raw(404, "<html>not found</html>"),
            "HTTP 404 (text/html), not JSON",
        ),
        (host_testkit::Scripted::RedirectToSink(302), "a redirect"),
    ] {
        env.provider.script([answer]);
        let out = env
            .output(&["token", "--provider", "slack", "--min-valid", "99999"])
            .await;
        assert_eq!(
            (out.code, out.stdout.trim()),
            (Some(0), current.as_str()),
            "{why}: {out:?}"
        );
        assert!(
            out.stderr.contains("using the current token") && out.stderr.contains(why),
            "{why}: {}",
            out.stderr
        );
    }
    // An answer the plugin refuses for what it says (JSON without a token) is an error.
    env.provider.script([host_testkit::Scripted::Json(
        200,
        serde_json::json!({"ok": true}),
    )]);
    let out = env
        .output(&["token", "--provider", "slack", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");

    // Slack's errors come as {"ok": false} with HTTP 200: a revoked refresh token means
    // "log in again".
    env.provider.revoke_all();
    let out = env
        .output(&["token", "--provider", "slack", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr
            .contains("run `host run --provider slack` to log in again"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_oauth2_example_stays_short() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/slack/src/lib.rs"
    ))
    .unwrap();
    let lines = source.lines().count();
    assert!(lines < 150, "plugins/slack/src/lib.rs has {lines} lines");
}

/// Reads the pseudo-terminal's output until `needle` has shown up `times` times.
async fn read_until(
    out: &mut tokio::process::ChildStdout,
    seen: &mut String,
    needle: &str,
    times: usize,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    while seen.matches(needle).count() < times {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), out.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("waiting for {needle:?}; the terminal shows {seen:?}"))
            .unwrap();
        assert!(n > 0, "the terminal closed before {needle:?}: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[tokio::test]
async fn on_a_terminal_secret_fields_are_asked_without_echo_and_retried() {
    use tokio::io::AsyncWriteExt;
    let env = HostEnv::start().await;
    env.install_plugin("api-key", host_testkit::guests::API_KEY_PLUGIN);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.api-key]\nverify_url = \"{}\"\n",
        env.provider.url("/api/keycheck")
    ));
    // `script` (util-linux) gives `host` a real pseudo-terminal.
    let line = format!("{} run --provider api-key", env!("CARGO_BIN_EXE_host"));
    let mut child = env
        .command("script", &["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut input = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let mut seen = String::new();
    // The prompt is printed a moment before echo is turned off (rpassword prints, then sets
    // the terminal): a person reads the prompt before typing, and so does this test.
    let settle = || tokio::time::sleep(std::time::Duration::from_millis(300));
    read_until(&mut output, &mut seen, "API key: ", 1).await;
    settle().await;
    input.write_all(b"not-the-key\n").await.unwrap();
    // Refused by the plugin's check: said, and asked again.
    read_until(&mut output, &mut seen, "API key: ", 2).await;
    assert!(
        seen.contains("the API key was refused (HTTP 401). Try again."),
        "{seen:?}"
    );
    settle().await;
    input
        .write_all(format!("{}\n", host_testkit::VALID_API_KEY).as_bytes())
        .await
        .unwrap();
    read_until(&mut output, &mut seen, "Logged in", 1).await;
    let status = child.wait().await.unwrap();
    assert!(status.success(), "{seen}");
    assert!(
        !seen.contains("not-the-key") && !seen.contains(host_testkit::VALID_API_KEY),
        "echoed: {seen:?}"
    );
    assert_eq!(
        stored(&env, "api-key").await["credential"]["key"],
        host_testkit::VALID_API_KEY
    );
}
