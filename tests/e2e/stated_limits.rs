//! The limits SECURITY.md and the README state, each held by a test through the binary.

use std::time::{Duration, Instant};

use host_testkit::guests;

use crate::support::HostEnv;

/// A home with the hostile test plugin installed as `evil`, its section `section`.
async fn hostile(section: &str, plugins: &str) -> HostEnv {
    let env = HostEnv::start().await;
    env.install_plugin("evil", guests::HOSTILE);
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n{plugins}\n[providers.evil]\n{section}\n"
    ));
    env
}

#[tokio::test]
async fn every_plugin_call_gets_a_fresh_instance() {
    // The plugin counts the calls its instance served: the authorization, then the exchange.
    // An instance kept between calls would count two.
    let env = hostile("mode = \"login\"\nexchange = \"count-calls\"", "").await;
    let out = env
        .output(&["run", "--provider", "evil", "--field", "key=x"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.output(&["token", "--provider", "evil"]).await;
    assert_eq!(out.stdout.trim(), "calls-1", "{out:?}");
}

#[tokio::test]
async fn a_plugin_tokens_extra_json_is_capped_at_64_kib() {
    for (size, accepted) in [(65_536, true), (65_537, false)] {
        let env = hostile(
            &format!("mode = \"login\"\nexchange = \"extra-{size}\""),
            "",
        )
        .await;
        let out = env
            .output(&["run", "--provider", "evil", "--field", "key=x"])
            .await;
        if accepted {
            assert_eq!(out.code, Some(0), "{size}: {out:?}");
        } else {
            assert_eq!(out.code, Some(1), "{size}: {out:?}");
            assert!(
                out.stderr.contains("extra-json is larger than 65536 bytes"),
                "{}",
                out.stderr
            );
            assert_eq!(env.stored("evil", "default").await, None, "nothing stored");
        }
    }
}

#[tokio::test]
async fn a_plugins_printed_output_is_capped_per_call() {
    // The chatty plugin prints 5000 lines; what is kept (and logged) is at most the cap, the
    // rest counted.
    let printed: String = (0..5_000)
        .map(|i| format!("line {i} of a very chatty plugin that tries to flood the host's log\n"))
        .collect();
    for (cap, setting) in [(65_536, ""), (1_024, "max_output_bytes = 1024")] {
        let env = hostile("mode = \"chatty\"", setting).await;
        let out = env
            .output(&["-v", "run", "--provider", "evil", "--no-browser"])
            .await;
        assert_eq!(out.code, Some(1), "{out:?}");
        // The logged lines are the first `cap` bytes printed, line by line.
        let logged: Vec<&str> = out
            .stderr
            .lines()
            .filter_map(|l| l.split_once("plugin output: line "))
            .map(|(_, rest)| rest.split(" plugin=").next().unwrap())
            .collect();
        let kept: String = logged.iter().map(|l| format!("line {l}\n")).collect();
        let expected = &printed[..cap];
        assert!(
            kept.trim_end() == expected.trim_end(),
            "{cap}: the first {cap} bytes are logged, no more"
        );
        let dropped: usize = out
            .stderr
            .lines()
            .filter(|l| l.contains(" more bytes dropped"))
            .find_map(|l| {
                let (_, rest) = l.split_once("plugin output: ")?;
                rest.split(' ').next()?.parse().ok()
            })
            .expect("the dropped bytes are counted");
        assert_eq!(dropped, printed.len() - cap, "{cap}");
    }
}

#[tokio::test]
async fn a_store_key_file_open_to_others_or_anothers_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = HostEnv::start().await;
    env.login_ok().await;
    let key = env.data_dir().join("store.key");
    let token = || env.output(&["token", "--provider", "github"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = token().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("is readable by others; make it private (chmod 600)"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Another user's key (they could know it) is refused too.
    let status = std::process::Command::new("chown")
        .args(["65534:65534", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = token().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("belongs to another user (uid 65534)"),
        "{}",
        out.stderr
    );
    let status = std::process::Command::new("chown")
        .args(["0:0", key.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(token().await.code, Some(0));
}

#[tokio::test]
async fn unknown_keys_in_the_host_sections_are_errors_listing_the_known_ones() {
    let env = HostEnv::start().await;
    for (section, key, known) in [
        ("http", "timeout_sec", "timeout_secs"),
        ("store", "keyfile", "key_file"),
        ("plugins", "memory_mb", "memory_mib"),
    ] {
        env.write_config(&format!("[{section}]\n{key} = 5\n"));
        let out = env.output(&["config"]).await;
        assert_ne!(out.code, Some(0), "{section}.{key}: {out:?}");
        assert!(
            out.stderr.contains(key) && out.stderr.contains(known),
            "{section}.{key}: {}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn the_identity_lookup_after_a_login_is_bounded() {
    // The identity endpoint answers after 20 s; the login does not wait for it (3 s bound),
    // and stores the credential without an identity.
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&format!(
        "[providers.acme]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nidentify_url = \"{}\"\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        p.url("/authorize"),
        p.url("/token"),
        p.url("/slow?ms=20000"),
    ));
    let started = Instant::now();
    let (out, _) = env
        .login_as("acme", &["--json", "--timeout", "60"], async |url| {
            vec![crate::support::browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the login waited for the identity endpoint"
    );
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(summary["identity"].is_null(), "{summary}");
}

#[tokio::test]
async fn the_built_in_flows_log_no_secret_at_the_most_verbose_level() {
    // A login, a refresh and an API call with every log line on: no token, secret, code or
    // verifier in them.
    let env = HostEnv::start().await;
    let (out, _) = env
        .login(&["--json", "-vv", "--timeout", "20"], async |url| {
            vec![crate::support::browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut logs = out.stderr.clone();
    let out = env
        .output(&[
            "-vv",
            "token",
            "--provider",
            "github",
            "--min-valid",
            "99999",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    logs.push_str(&out.stderr);
    let out = env
        .output(&["-vv", "api", "--provider", "github", "/user"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    logs.push_str(&out.stderr);
    assert!(
        logs.lines().count() > 20,
        "the most verbose level logs: {logs}"
    );
    let stored = env.stored("github", "default").await.unwrap();
    let mut secrets = vec![host_testkit::CLIENT_SECRET.to_owned()];
    for field in ["access_token", "refresh_token"] {
        secrets.push(stored["credential"][field].as_str().unwrap().to_owned());
    }
    for request in env.provider.token_requests() {
        for field in ["code", "code_verifier", "refresh_token"] {
            if let Some(v) = request.form.get(field) {
                secrets.push(v.clone());
            }
        }
    }
    assert!(secrets.len() >= 5, "{secrets:?}");
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the log");
    }
}
