//! The real `host` binary, end to end, against the test provider.

use std::time::Duration;

use serde_json::Value;

use crate::support::{HostEnv, browser_redirect};

fn state_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn run_then_token_then_refresh() {
    let env = HostEnv::start().await;
    env.provider.set_ttl(90);
    let summary = env.login_ok().await;
    assert_eq!(summary["provider"], "github");
    assert_eq!(summary["account"], "default");
    assert_eq!(
        summary["identity"], "octocat",
        "the GitHub login is looked up"
    );
    assert!(summary["expires_at"].is_string());

    let record = env.record_path("default");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&record).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir = std::fs::metadata(record.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir, 0o700);
    }
    let stored: Value = env.stored("github", "default").await.unwrap();
    let first = stored["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Valid for 90 s, more than the 60 s skew: printed as is, no refresh.
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, format!("{first}\n"));
    assert_eq!(env.provider.refresh_count(), 0);

    // Asking for more validity than it has refreshes first, and stores the rotated tokens.
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "120"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let second = out.stdout.trim().to_owned();
    assert_ne!(second, first);
    assert_eq!(env.provider.refresh_count(), 1);
    let stored: Value = env.stored("github", "default").await.unwrap();
    assert_eq!(stored["credential"]["access_token"], second.as_str());

    // A token that really expired is refreshed too.
    env.provider.set_ttl(1);
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "3600"])
        .await;
    let third = out.stdout.trim().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "0"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_ne!(out.stdout.trim(), third);
    assert_eq!(env.provider.refresh_count(), 3);
    let out = env
        .output(&[
            "token",
            "--provider",
            "github",
            "--json",
            "--min-valid",
            "0",
        ])
        .await;
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["token_type"], "bearer");
    assert!(json["access_token"].as_str().unwrap().starts_with("at-"));
    assert!(json["expires_at"].is_string());
    // `run` never prints a token.
    assert!(!summary.to_string().contains(&first));
}

#[tokio::test]
async fn a_tampered_state_is_rejected_and_the_real_callback_still_wins() {
    let env = HostEnv::start().await;
    let (out, answers) = env
        .login(&["--json"], async |url| {
            let real = browser_redirect(&url).await;
            let state = state_of(&url);
            let forged = real.replace(&state, "forged-state");
            let base = real.split('?').next().unwrap().to_owned();
            vec![forged, base.replace("/callback", "/elsewhere"), real]
        })
        .await;
    assert_eq!(answers[0].0, 400, "{answers:?}");
    assert!(answers[0].1.contains("not accepted"), "{answers:?}");
    assert_eq!(answers[1].0, 404, "{answers:?}");
    assert_eq!(answers[2].0, 200, "{answers:?}");
    assert!(answers[2].1.contains("close this tab"), "{answers:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.record_path("default").is_file());
}

#[tokio::test]
async fn access_denied_ends_the_run_with_a_clear_message() {
    let env = HostEnv::start().await;
    let (out, answers) = env
        .login(&[], async |url| {
            let real = browser_redirect(&url).await;
            let base = real.split('?').next().unwrap().to_owned();
            vec![format!(
                "{base}?error=access_denied&error_description=The+user+said+no&state={}",
                state_of(&url)
            )]
        })
        .await;
    assert_eq!(answers[0].0, 400);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("refused") && out.stderr.contains("The user said no"),
        "{}",
        out.stderr
    );
    assert!(!env.record_path("default").exists());
}

#[tokio::test]
async fn no_callback_before_the_timeout() {
    let env = HostEnv::start().await;
    let (out, _) = env.login(&["--timeout", "1"], async |_| vec![]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("no login callback arrived within 1s")
            && out.stderr.contains(
                "run `host run --provider github --flow oauth2` again, or raise --timeout"
            ),
        "{}",
        out.stderr
    );
    assert!(!env.record_path("default").exists(), "nothing stored");
}

#[tokio::test]
async fn twenty_concurrent_token_calls_share_one_refresh() {
    let env = HostEnv::start().await;
    env.provider.set_ttl(30); // inside the 60 s skew: every caller wants a refresh
    env.login_ok().await;
    env.provider.set_ttl(3600);
    let calls: Vec<_> = (0..20)
        .map(|_| env.output(&["token", "--provider", "github"]))
        .collect();
    let outs = futures_util::future::join_all(calls).await;
    let first = outs[0].stdout.clone();
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, first, "all print the same token");
    }
    assert_eq!(
        env.provider.refresh_count(),
        1,
        "exactly one refresh request"
    );
    // Tokens that live less than the skew even when new: the waiters take the token refreshed
    // while they waited instead of refreshing again one after the other.
    env.provider.set_ttl(30);
    env.output(&["token", "--provider", "github", "--min-valid", "999999"])
        .await;
    assert_eq!(env.provider.refresh_count(), 2);
    // The refresh takes 3 s, so that all 20 processes read the old token before it is done.
    env.provider.set_refresh_delay(Duration::from_secs(3));
    let calls: Vec<_> = (0..20)
        .map(|_| env.output(&["token", "--provider", "github"]))
        .collect();
    let outs = futures_util::future::join_all(calls).await;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(out.stdout, outs[0].stdout, "all print the same token");
    }
    assert_eq!(
        env.provider.refresh_count(),
        3,
        "one more refresh for all 20"
    );
}

#[tokio::test]
async fn a_crash_between_write_and_rename_loses_nothing() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let mut cmd = env.host(&["token", "--provider", "github", "--min-valid", "999999"]);
    cmd.env("HOST_TEST_FAULT", "abort-before-rename");
    let crashed = cmd.output().await.unwrap();
    assert!(
        !crashed.status.success(),
        "the injected crash must kill the process"
    );
    let good: Value = env
        .stored("github", "default")
        .await
        .expect("the record is intact");
    assert!(good["credential"]["access_token"].is_string());
    // The previous credential is still read back.
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "0"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        good["credential"]["access_token"].as_str().unwrap()
    );
    // The crashed writer's temp file is cleaned up by the next write of the record.
    let folder = env.record_path("default").parent().unwrap().to_owned();
    let temps = || {
        std::fs::read_dir(&folder)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count()
    };
    assert_eq!(temps(), 1, "the crash left its temp file");
    env.login_ok().await;
    assert_eq!(temps(), 0, "a stale temp file survived the next write");
}

#[tokio::test]
async fn a_truncated_record_is_reported_and_moved_aside() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let path = env.record_path("default");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("corrupt") && out.stderr.contains(&path.display().to_string()),
        "{}",
        out.stderr
    );
    let aside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "kept aside, not overwritten");
}

#[tokio::test]
async fn clear_one_sentence_errors() {
    let env = HostEnv::start().await;
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(4), "nothing stored: log in first");
    assert!(
        out.stderr.contains("no credential stored")
            && out.stderr.contains("host run --provider github"),
        "{}",
        out.stderr
    );

    let out = env.output(&["token", "--provider", "gitlub"]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("unknown provider `gitlub`") && out.stderr.contains("github"),
        "{}",
        out.stderr
    );

    let mut cmd = env.host(&[
        "run",
        "--provider",
        "github",
        "--no-browser",
        "--timeout",
        "1",
    ]);
    cmd.env_remove("GITHUB_CLIENT_ID");
    let out = cmd.output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("providers.github.client_id is missing")
            && stderr.contains("GITHUB_CLIENT_ID"),
        "{stderr}"
    );

    let config = env.home.path().join("bad.toml");
    std::fs::write(&config, "[providers.github\n").unwrap();
    let out = env
        .output(&[
            "--config",
            config.to_str().unwrap(),
            "token",
            "--provider",
            "github",
        ])
        .await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("bad.toml"), "{}", out.stderr);

    let out = env.output(&["token"]).await;
    assert_eq!(out.code, Some(2), "usage errors exit 2");
}

#[tokio::test]
async fn providers_config_and_logout() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env.output(&["providers", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let github = &list[0];
    assert_eq!(github["name"], "github");
    assert_eq!(github["source"], "built-in");
    assert_eq!(github["credentials"]["status"], "valid");
    assert_eq!(github["accounts"][0]["account"], "default");
    assert_eq!(github["accounts"][0]["identity"], "octocat");

    let out = env.output(&["config", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("providers.github.client_id = \"test-client\"  # from environment variable GITHUB_CLIENT_ID"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("providers.github.client_secret = \"[redacted]\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("providers.github.token_url = \"http://127.0.0.1"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains(host_testkit::CLIENT_SECRET));

    let stored: Value = env.stored("github", "default").await.unwrap();
    let token = stored["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Revoked") && out.stderr.contains("deleted"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.provider.revoked(),
        vec![token],
        "GitHub's token deletion API was called"
    );
    assert!(!env.record_path("default").exists());

    let out = env.output(&["completions", "bash"]).await;
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("host"));
}

#[tokio::test]
async fn a_rejected_refresh_token_says_to_log_in_again() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    env.provider.revoke_all();
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "999999"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr
            .contains("run `host run --provider github` to log in again"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("invalid_grant"), "{}", out.stderr);
}

/// The `redirect_uri` query parameter of an authorization URL.
fn redirect_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_configured_redirect_uri_is_where_the_login_listens_and_what_the_provider_is_sent() {
    let env = HostEnv::start().await;
    let port = crate::support::free_port();
    let fixed = format!("http://127.0.0.1:{port}/registered/cb");
    env.write_config(&format!("[providers.github]\nredirect_uri = \"{fixed}\"\n"));
    let (out, answers) = env
        .login(&["--json", "--timeout", "20"], async |url| {
            let real = browser_redirect(&url).await;
            assert_eq!(redirect_of(&url), fixed, "{url}");
            assert!(real.starts_with(&format!("{fixed}?")), "{real}");
            // The fixed path is the callback; the usual one is not.
            let usual = format!("http://127.0.0.1:{port}/callback");
            vec![usual, real]
        })
        .await;
    assert_eq!(answers[0].0, 404, "{answers:?}");
    assert_eq!(answers[1].0, 200, "{answers:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.record_path("default").is_file());
    // The token request carried the same redirect URI (RFC 6749 §4.1.3).
    let exchange = env.provider.token_requests().pop().unwrap();
    assert_eq!(exchange.form["redirect_uri"], fixed);

    // Refused before the provider is asked: a --port the URI does not name, a URI that is
    // not loopback http, one whose port is taken.
    let exchanges = env.provider.token_requests().len();
    let (other, _held) = crate::support::closed_port();
    let other = other.to_string();
    let out = env
        .run_briefly_with(&[], "github", &["--port", &other])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!("names port {port}")),
        "{}",
        out.stderr
    );
    for (uri, problem) in [
        ("https://127.0.0.1:8765/cb", "is https"),
        ("http://app.example.com/cb", "loopback address"),
        ("http://10.0.0.1:8765/cb", "loopback address"),
    ] {
        env.write_config(&format!("[providers.github]\nredirect_uri = \"{uri}\"\n"));
        let out = env.run_briefly(&[], "github").await;
        assert_eq!(out.code, Some(1), "{uri}: {out:?}");
        assert!(
            out.stderr.contains(problem) && out.stderr.contains("http://127.0.0.1:8765/callback"),
            "{uri}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("/authorize?"),
            "no login started: {}",
            out.stderr
        );
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    env.write_config(&format!(
        "[providers.github]\nredirect_uri = \"http://localhost:{taken_port}/cb\"\n"
    ));
    let out = env.run_briefly(&[], "github").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{taken_port}")),
        "{}",
        out.stderr
    );
    assert_eq!(env.provider.token_requests().len(), exchanges);
}

#[tokio::test]
async fn run_listens_on_the_port_asked_for_and_asks_for_the_scopes_given() {
    let env = HostEnv::start().await;
    let port = crate::support::free_port();
    let (out, answers) = env
        .login(
            &[
                "--json",
                "--timeout",
                "20",
                "--port",
                &port.to_string(),
                "--scope",
                "repo",
                "--scope",
                "read:org",
            ],
            async |url| {
                assert_eq!(
                    redirect_of(&url),
                    format!("http://127.0.0.1:{port}/callback"),
                    "{url}"
                );
                vec![browser_redirect(&url).await]
            },
        )
        .await;
    assert_eq!(answers[0].0, 200, "{answers:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
    // The scopes given replace the configured ones, and the stored token has what was granted.
    let asked = env.provider.authorize_requests().pop().unwrap();
    assert_eq!(asked["scope"], "repo read:org");
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["scopes"], serde_json::json!(["repo", "read:org"]));

    // A port in use: refused before any login starts, nothing stored for the account.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port().to_string();
    let out = env
        .run_briefly_with(&[], "github", &["--port", &busy, "--account", "other"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{busy}")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("/authorize?"), "{}", out.stderr);
    assert!(!env.record_path("other").exists());
}

#[tokio::test]
async fn the_configuration_named_must_exist_and_its_choices_are_followed() {
    let env = HostEnv::start().await;
    // A file named by --config or HOST_CONFIG that does not exist is an error naming it and
    // who named it, not a silent run on the defaults.
    let missing = env.home.path().join("nowhere/host.toml");
    let missing = missing.to_str().unwrap();
    let out = env.output(&["--config", missing, "providers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(missing) && out.stderr.contains("--config"),
        "{}",
        out.stderr
    );
    let out = env
        .output_with(&["providers"], &[("HOST_CONFIG", missing)])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HOST_CONFIG"), "{}", out.stderr);
    // A folder where the file should be is said to be one, named or the default.
    let folder = env.home.path().join("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    let out = env
        .output(&["--config", folder.to_str().unwrap(), "providers"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("is not a regular file") && out.stderr.contains("--config"),
        "{}",
        out.stderr
    );
    std::fs::create_dir_all(env.home.path().join("config/host/host.toml")).unwrap();
    let out = env.output(&["providers"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("is not a regular file"),
        "{}",
        out.stderr
    );
    std::fs::remove_dir(env.home.path().join("config/host/host.toml")).unwrap();

    // default_provider picks the provider when more than one holds a credential.
    let fresh = env.login_ok().await;
    assert_eq!(fresh["provider"], "github");
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n",
        env.provider.issuer(),
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET
    ));
    let (out, _) = env
        .login_as("corp", &["--json", "--timeout", "20"], async |url| {
            vec![browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.output(&["token"]).await;
    assert_eq!(out.code, Some(2), "two candidates: {out:?}");
    let corp = env.output(&["token", "--provider", "corp"]).await.stdout;
    let config = std::fs::read_to_string(env.home.path().join("config/host/host.toml")).unwrap();
    env.write_config(&format!("default_provider = \"corp\"\n{config}"));
    let out = env.output(&["token"]).await;
    assert_eq!((out.code, &out.stdout), (Some(0), &corp), "{out:?}");

    // --plugins-dir: where install puts a plugin, and where providers looks for them.
    let dir = env.home.path().join("elsewhere");
    let dir_arg = dir.to_str().unwrap();
    let out = env
        .output(&[
            "--plugins-dir",
            dir_arg,
            "plugin",
            "install",
            host_testkit::guests::FLOW_GOOD,
            "--name",
            "acme",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(dir.join("acme.wasm").is_file());
    assert!(!env.plugins_dir().join("acme.wasm").exists());
    let names = async |before: &[&str]| {
        let mut args = before.to_vec();
        args.extend(["providers", "--json"]);
        let out = env.output(&args).await;
        let listed: Value = serde_json::from_str(&out.stdout).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        names(&["--plugins-dir", dir_arg])
            .await
            .contains(&"acme".to_owned())
    );
    assert!(!names(&[]).await.contains(&"acme".to_owned()));
}

#[tokio::test]
async fn a_refresh_without_a_token_answer_hands_out_the_current_token_with_a_warning() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let current = env.output(&["token", "--provider", "github"]).await.stdout;
    let raw =
        |status: u16, content_type: Option<&'static str>, body: &str| host_testkit::Scripted::Raw {
            status,
            content_type,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
    // A maintenance page, a JSON list, a redirect, a 404 page, and (with [http]
    // max_body_bytes = 1000) a 10 kB answer: no token and no OAuth2 error, while the stored
    // token is still valid for an hour.
    let cases = [
        (
            raw(200, Some("text/html"), "<html>down for maintenance</html>"),
            "not JSON",
        ),
        (
            raw(200, Some("application/json"), "[1, 2]"),
            "instead of an object",
        ),
        (host_testkit::Scripted::RedirectToSink(302), "redirect"),
        (
            raw(404, Some("text/html"), "<html>not found</html>"),
            "HTTP 404",
        ),
        (
            host_testkit::Scripted::Endless(10_000),
            "larger than 1000 bytes",
        ),
    ];
    for (answer, why) in cases {
        env.provider.script([answer]);
        let out = env
            .output_with(
                &["token", "--provider", "github", "--min-valid", "99999"],
                &[("HOST_HTTP__MAX_BODY_BYTES", "1000")],
            )
            .await;
        assert_eq!(
            (out.code, &out.stdout),
            (Some(0), &current),
            "{why}: {out:?}"
        );
        assert!(
            out.stderr.contains("using the current token") && out.stderr.contains(why),
            "{why}: {}",
            out.stderr
        );
    }
    // An answer refused for what it says is an error, not a passing failure.
    env.provider.script([host_testkit::Scripted::Json(
        200,
        serde_json::json!({"access_token": "at-x", "token_type": "mac"}),
    )]);
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}

#[tokio::test]
async fn a_refused_refresh_answer_still_leaves_its_new_refresh_token_stored() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // The provider rotated the refresh token, but its answer is refused (an empty lifetime):
    // the new refresh token is stored, so the next refresh does not replay the retired one.
    env.provider.script([host_testkit::Scripted::Json(
        200,
        serde_json::json!({"access_token": "at-odd", "refresh_token": "rt-carried", "token_type": "bearer", "expires_in": ""}),
    )]);
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "99999"])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("at-odd"), "{out:?}");
    let stored: Value = env.stored("github", "default").await.unwrap();
    assert_eq!(stored["credential"]["refresh_token"], "rt-carried");
    let _ = env
        .output(&["token", "--provider", "github", "--min-valid", "99999"])
        .await;
    let last = env.provider.token_requests().pop().unwrap();
    assert_eq!(last.form["refresh_token"], "rt-carried");
}

#[tokio::test]
async fn the_library_describes_a_missing_login_and_the_command_says_what_to_run() {
    let env = HostEnv::start().await;
    let e = env
        .app()
        .token("github", "work", std::time::Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(e.not_logged_in(), "{e:?}");
    let said = e.to_string();
    assert!(
        said.contains("no credential stored") && !said.contains("host run"),
        "{said}"
    );
    let out = env
        .output(&["token", "--provider", "github", "--account", "work"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr
            .contains("run `host run --provider github --account work` first"),
        "{}",
        out.stderr
    );
}
