//! Configuration mistakes and hostile names: errors name the place, never the secret; what
//! is printed acts on no terminal; odd values never panic.

use std::time::Duration;

use crate::support::{HostEnv, assert_clean};

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
