//! Using a stored credential, not just printing it: header lines, `host exec`, git's
//! credential helper, `host status`, the default provider and the exit codes.

use crate::support::HostEnv;

/// Port of the test provider, which is the github provider's git host in these tests.
fn git_host(env: &HostEnv) -> String {
    url::Url::parse(&env.provider.url("/"))
        .map(|u| format!("127.0.0.1:{}", u.port().unwrap()))
        .unwrap()
}

async fn token(env: &HostEnv) -> String {
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.trim().to_owned()
}

#[tokio::test]
async fn the_header_line_follows_the_binding() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token = token(&env).await;
    let out = env
        .output(&["token", "--provider", "github", "--header"])
        .await;
    assert_eq!(out.stdout.trim(), format!("Authorization: Bearer {token}"));

    // A binding set in the provider's section wins.
    env.write_config(
        "[providers.github]\nbinding = { header = \"X-Token\", prefix = \"token \" }\n",
    );
    let out = env
        .output(&["token", "--provider", "github", "--header"])
        .await;
    assert_eq!(
        out.stdout.trim(),
        format!("X-Token: token {token}"),
        "{out:?}"
    );
    // A query binding has no header line to print.
    env.write_config("[providers.github]\nbinding = { query = \"access_token\" }\n");
    let out = env
        .output(&["token", "--provider", "github", "--header"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("query parameter `access_token`") && !out.stderr.contains(&token),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    env.write_config("[providers.github]\nbinding = { nonsense = 1 }\n");
    let out = env
        .output(&["token", "--provider", "github", "--header"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("providers.github.binding"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn exec_never_puts_the_token_in_a_variable_the_loader_or_a_shell_interprets() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token = token(&env).await;
    let marker = env.home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    // Given on the command line: the dynamic loader would print the token in its error about
    // a library it cannot preload, where CI logs keep it; a shell would run what is in
    // BASH_ENV or PROMPT_COMMAND.
    for name in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "PATH",
        "IFS",
        "BASH_ENV",
        "ENV",
        "PS4",
        "PROMPT_COMMAND",
        "HOST_STORE_KEY",
    ] {
        let out = env
            .output(&["exec", "--env", name, "--", "sh", "-c", &touch])
            .await;
        assert_eq!(out.code, Some(1), "{name}: {out:?}");
        assert!(
            out.stderr.contains(&format!(
                "--env `{name}` names a variable the dynamic loader"
            )),
            "{name}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&token) && !out.stdout.contains(&token),
            "{out:?}"
        );
        assert!(!marker.exists(), "{name}: the command did not run");
    }
    // Set in the provider's section: refused naming the setting.
    env.write_config("[providers.github]\nenv = \"LD_PRELOAD\"\n");
    let out = env.output(&["exec", "--", "sh", "-c", &touch]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("providers.github.env names a variable the dynamic loader"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&token), "{out:?}");
    assert!(!marker.exists(), "the command did not run");
}

#[tokio::test]
async fn a_binding_never_names_a_header_that_steers_routing_or_connections() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    for header in [
        "Host",
        "connection",
        "Proxy-Authorization",
        "Cookie",
        "Transfer-Encoding",
        "X-Forwarded-For",
    ] {
        env.write_config(&format!(
            "[providers.github]\nbinding = {{ header = \"{header}\" }}\n"
        ));
        let out = env
            .output(&["token", "--provider", "github", "--header"])
            .await;
        assert_eq!(out.code, Some(1), "{header}: {out:?}");
        assert!(
            out.stderr
                .contains("providers.github.binding.header names a header that steers routing"),
            "{header}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{out:?}");
    }
}

#[tokio::test]
async fn exec_hands_the_token_to_the_command_and_passes_its_status_on() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token = token(&env).await;
    let out = env
        .output(&[
            "exec",
            "--provider",
            "github",
            "--",
            "sh",
            "-c",
            "printf %s \"$GITHUB_TOKEN\"; exit 7",
        ])
        .await;
    assert_eq!(out.code, Some(7), "{out:?}");
    assert_eq!(out.stdout, token);
    let out = env
        .output(&[
            "exec",
            "--env",
            "API_TOKEN",
            "--",
            "sh",
            "-c",
            "printf %s \"$API_TOKEN\"",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout, token,
        "the only provider logged in is the default"
    );
    // The section's `env` names the variable; a name the environment cannot hold is refused
    // before anything runs; a command ended by a signal ends `host` by it (it is the same
    // process).
    env.write_config("[providers.github]\nenv = \"GH_TOKEN\"\n");
    let out = env
        .output(&["exec", "--", "sh", "-c", "printf %s \"$GH_TOKEN\""])
        .await;
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), token.as_str()));
    let marker = env.home.path().join("ran");
    let touch = format!("touch {}", marker.display());
    for bad in ["A=B", ""] {
        let out = env
            .output(&["exec", "--env", bad, "--", "sh", "-c", &touch])
            .await;
        assert_eq!(out.code, Some(1), "{bad:?}: {out:?}");
        assert!(
            out.stderr.contains("is not an environment variable name"),
            "{}",
            out.stderr
        );
        assert!(!marker.exists(), "{bad:?}: the command did not run");
    }
    let out = env
        .host(&["exec", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .await
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(15), "{out:?}");

    // A signal sent to `host` reaches the command (a supervisor stopping it), which is not
    // left running, and its own exit status is the answer.
    let mut child = env
        .host(&[
            "exec",
            "--",
            "sh",
            "-c",
            "trap 'echo stopped; exit 9' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "ready\n");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the command ends on the signal")
        .unwrap();
    line.clear();
    stdout.read_line(&mut line).await.unwrap();
    assert_eq!(line, "stopped\n");
    assert_eq!(status.code(), Some(9));
}

#[tokio::test]
async fn git_asks_host_for_the_provider_and_nobody_else() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token = token(&env).await;
    let host = git_host(&env);

    let out = env.output(&["setup-git"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let key = format!("credential.https://{host}.helper");
    let helpers = env
        .command("git", &["config", "--global", "--get-all", &key])
        .output()
        .await
        .unwrap();
    let helpers = String::from_utf8_lossy(&helpers.stdout).into_owned();
    let lines: Vec<&str> = helpers.lines().collect();
    assert_eq!(lines.len(), 2, "{helpers}");
    assert_eq!(lines[0], "");
    assert!(
        lines[1].ends_with("git-credential --provider 'github'"),
        "{helpers}"
    );

    // The real git, through the helper setup-git wrote.
    let fill = async |host: String| {
        let mut cmd = env.command("git", &["credential", "fill"]);
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        let input = format!("protocol=https\nhost={host}\n\n");
        crate::support::fed(cmd, input.as_bytes()).await.stdout
    };
    let answer = fill(host.clone()).await;
    assert!(answer.contains(&format!("password={token}")), "{answer}");
    assert!(answer.contains("username=x-access-token"), "{answer}");

    // Another host gets no answer from host (git then tries the next helper).
    let (code, answer) = with_input(
        &env,
        &["git-credential", "get"],
        "protocol=https\nhost=git.example.org\n\n",
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(answer.is_empty(), "{answer:?}");
    let answer = fill("git.example.org".into()).await;
    assert!(!answer.contains("password="), "{answer}");
}

#[tokio::test]
async fn status_lists_accounts_and_check_reports_a_revoked_token() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env.output(&["status"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("github as octocat (account `default`)")
            && out.stdout.contains("refreshable"),
        "{}",
        out.stdout
    );
    let out = env.output(&["status", "--check", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["check"]["state"], "valid", "{rows}");

    assert_eq!(env.provider.refresh_count(), 0);

    // The access token refused but the refresh token good: the login works, as `host api`
    // would find (one refresh, then the provider accepts the new token).
    env.provider.revoke_access_tokens();
    let out = env.output(&["status", "--check"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("check: valid"), "{}", out.stdout);
    assert_eq!(env.provider.refresh_count(), 1);

    // A token due is refreshed before it is asked about, not called rejected.
    env.provider.set_ttl(30);
    env.login_ok().await;
    let out = env.output(&["status", "--check", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["check"]["state"], "valid", "{rows}");
    assert_eq!(env.provider.refresh_count(), 2);

    // Revoked on the provider's side, refresh token too: the check says so, and the exit
    // status says "log in".
    env.provider.revoke_access_tokens();
    env.provider.revoke_all();
    let out = env.output(&["status", "--check"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stdout.contains("check: rejected"), "{}", out.stdout);
    // It did not print the token.
    assert!(!out.stdout.contains("at-"), "{}", out.stdout);
}

#[tokio::test]
async fn the_provider_can_be_left_out_when_it_is_clear_which_one_is_meant() {
    let env = HostEnv::start().await;
    // Nobody logged in: a usage error that lists what there is; a named provider without a
    // credential says to log in (exit 4).
    let out = env.output(&["token"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("github"), "{}", out.stderr);
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");

    env.login_ok().await;
    let token = token(&env).await;
    let out = env.output(&["token"]).await;
    assert_eq!(out.stdout.trim(), token, "{out:?}");

    // Two providers logged in: ambiguous, and the error names both. The second record is
    // stored through the library (a sealed record opens only under its own provider's name).
    let store = env.app().store().clone();
    let mut record = store.get("github", "default").await.unwrap();
    record.provider = "acme".into();
    store.save(&record).await.unwrap();
    assert_eq!(
        store.providers_with_records().await.unwrap().len(),
        2,
        "two providers have records"
    );
    let out = env.output(&["token"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("acme") && out.stderr.contains("github"),
        "{}",
        out.stderr
    );
    // HOST_PROVIDER settles it.
    let out = env
        .host(&["token"])
        .env("HOST_PROVIDER", "github")
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);
}

#[tokio::test]
async fn a_refused_refresh_exits_with_4() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    env.provider.revoke_all();
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "4000"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
}

#[tokio::test]
async fn api_calls_resolve_paths_send_fields_and_join_pages() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env.output(&["api", "--paginate", "/items"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let items: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        items,
        serde_json::json!([1, 2, 3, 4, 5, 6]),
        "three pages joined"
    );
    // Links with a comma in the URI, after a `prev` link, `REL`, two relation types.
    let out = env
        .output(&["api", "--paginate", "/items?fields=id,name"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "[1,2,3,4,5,6]");
    // An empty page (204) has no items; empty pages without end are stopped all the same.
    let out = env.output(&["api", "--paginate", "/empty"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "[]");
    let out = env.output(&["api", "--paginate", "/empty?endless"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("more than 10000 pages"),
        "{}",
        out.stderr
    );

    // A header the caller gives replaces the default of its name, not beside it.
    let out = env
        .output(&[
            "api",
            "-X",
            "POST",
            "-H",
            "Accept: application/vnd.github.raw",
            "-H",
            "Content-Type: text/plain",
            "/echo",
            "-f",
            "a=b",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let echo: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        echo["accept"],
        serde_json::json!(["application/vnd.github.raw"])
    );
    assert_eq!(echo["content_type"], serde_json::json!(["text/plain"]));
    let out = env
        .output(&["api", "-X", "POST", "/echo", "-f", "a=b"])
        .await;
    let echo: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(echo["accept"], serde_json::json!(["application/json"]));
    assert_eq!(
        echo["content_type"],
        serde_json::json!(["application/json"])
    );

    let out = env
        .output(&[
            "api",
            "-X",
            "POST",
            "/echo",
            "-f",
            "title=Bug",
            "-f",
            "body=Details",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let echo: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(
        echo["body"],
        serde_json::json!({"title": "Bug", "body": "Details"})
    );

    let out = env.output(&["api", "/echo", "-f", "q=rust"]).await;
    let echo: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["query"]["q"], "rust");

    let input = env.home.path().join("body.json");
    std::fs::write(&input, r#"{"from": "a file"}"#).unwrap();
    let out = env
        .output(&[
            "api",
            "-X",
            "PUT",
            "/echo",
            "--input",
            input.to_str().unwrap(),
            "-i",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("HTTP/1.1 200 OK"), "{}", out.stdout);
    assert!(
        out.stdout.contains(r#""body":{"from":"a file"}"#),
        "{}",
        out.stdout
    );

    // A non-2xx answer: the body on stderr, a failing exit status.
    let out = env.output(&["api", "/nothing-here"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HTTP 404"), "{}", out.stderr);
}

#[tokio::test]
async fn a_401_refreshes_once_and_a_second_refusal_says_log_in() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // The provider forgot the access token (not the refresh token): one refresh, then it works.
    env.provider.revoke_access_tokens();
    let out = env.output(&["api", "/echo"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.provider.refresh_count(), 1);
    // Both gone: the refresh is refused too, and the user is told to log in (exit 4).
    env.provider.revoke_access_tokens();
    env.provider.revoke_all();
    let out = env.output(&["api", "/echo"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
    assert_eq!(env.provider.refresh_count(), 2);

    // The refresh works but the API still answers 401: one refresh, then "log in again".
    env.login_ok().await;
    let before = env.provider.refresh_count();
    env.provider.set_api_refuses(true);
    let out = env.output(&["api", "/echo"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);
    assert_eq!(
        env.provider.refresh_count(),
        before + 1,
        "exactly one refresh"
    );
    assert!(
        out.stderr.contains("even after a refresh"),
        "{}",
        out.stderr
    );

    // A credential without a refresh token: none is tried, and the message does not say so.
    env.provider.set_api_refuses(false);
    env.provider.script([host_testkit::Scripted::Json(
        200,
        serde_json::json!({"access_token": "at-lone", "token_type": "bearer", "expires_in": 3600}),
    )]);
    env.login_ok().await;
    let before = env.provider.refresh_count();
    let out = env.output(&["api", "/echo"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr.contains(
            "refused the credential for `github` and it could not be refreshed; log in again"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(env.provider.refresh_count(), before);
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env.output(&["api", "/away"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HTTP 302"), "{}", out.stderr);
    assert!(
        env.provider.landings().is_empty(),
        "the other origin was visited"
    );
    // A full URL on another origin is refused before anything is sent.
    let other = env
        .provider
        .url("/api/landing")
        .replace("127.0.0.1", "localhost");
    let out = env.output(&["api", &other]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("--allow-origin"), "{}", out.stderr);
    assert!(env.provider.landings().is_empty());
}

#[tokio::test]
async fn the_session_example_calls_the_api_in_a_few_lines() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let example = crate::library::example("api");
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/api.rs")).unwrap();
    let code = source
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count();
    assert!(code < 15, "examples/api.rs has {code} lines of code");
    let out = env
        .command(example.to_str().unwrap(), &["/user"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("octocat"));
}

#[tokio::test]
async fn plugins_of_both_contract_versions_load_and_a_declared_binding_is_used() {
    let env = HostEnv::start().await;
    env.install_plugin("api-key", host_testkit::guests::API_KEY_PLUGIN);
    // A 0.1.0 plugin (built from the frozen copy of the 0.1.0 WIT) and a 0.2.0 one (plugin-sdk).
    for (file, version) in [
        (host_testkit::guests::FLOW_GOOD, "0.1.0"),
        (host_testkit::guests::API_KEY_PLUGIN, "0.2.0"),
    ] {
        let out = env.output(&["plugin", "inspect", file]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout
                .contains(&format!("contract: integrations:auth@{version}")),
            "{}",
            out.stdout
        );
    }
    let keycheck = env.provider.url("/api/keycheck");
    env.write_config(&format!(
        "[plugins]\nallow_http_loopback = true\n[providers.api-key]\nverify_url = \"{keycheck}\"\n"
    ));
    let out = env
        .output(&[
            "run",
            "--provider",
            "api-key",
            "--field",
            &format!("api_key={}", host_testkit::VALID_API_KEY),
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // The plugin declares `{header}: {prefix}<key>`; unset, those fields take their defaults.
    let out = env
        .output(&["token", "--provider", "api-key", "--header"])
        .await;
    assert_eq!(
        out.stdout.trim(),
        format!("authorization: Bearer {}", host_testkit::VALID_API_KEY),
        "{out:?}"
    );
    // `host api` puts the key where the plugin says (the keycheck wants `Bearer <key>`).
    let out = env
        .output(&["api", "--provider", "api-key", "--allow-origin", &keycheck])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("\"ok\":true"), "{}", out.stdout);
    // A header the plugin's binding takes from the configuration is checked once filled in:
    // an HTTP header name, and not one that steers routing or connections.
    for (header, problem) in [
        ("X Bad", "is not an HTTP header name"),
        ("Proxy-Authorization", "names a header that steers routing"),
    ] {
        env.write_config(&format!(
            "[plugins]\nallow_http_loopback = true\n[providers.api-key]\nverify_url = \"{keycheck}\"\nheader = \"{header}\"\n"
        ));
        let out = env
            .output(&["api", "--provider", "api-key", "--allow-origin", &keycheck])
            .await;
        assert_eq!(out.code, Some(1), "{header}: {out:?}");
        let expected = format!("the binding the plugin declares has a header that {problem}");
        assert!(out.stderr.contains(&expected), "{header}: {out:?}");
    }
}

/// An API on its own 127.0.0.1 port answering hostile pages: a `Link` back to itself, a `Link`
/// to another origin, a relative `Link`, an endless error body, no answer at all. Records
/// each request line.
async fn hostile_api() -> (String, crate::support::Seen) {
    use tokio::io::AsyncWriteExt;
    let (port, seen) = crate::support::raw_server(async |port, first: String, mut stream| {
        let page = |link: &str, body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nlink: {link}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let head = match first.split(' ').nth(1).unwrap_or("") {
            // A link repeating the request's query, as APIs do (with a query binding, the
            // credential would be in it).
            "/loop?key=s3cr3t-in-link" => page("</loop?key=s3cr3t-in-link>; rel=\"next\"", "[1]"),
            "/away" => page(
                &format!("<http://localhost:{port}/stolen>; rel=\"next\""),
                "[1]",
            ),
            "/rel/list?page=1" => page("<?page=2>; rel=\"next\"", "[1]"),
            "/rel/list?page=2" => page("<next>; rel=\"none\"", "[2]"),
            // A same-origin redirect, then a page telling whether a `Referer` came along.
            "/redir?key=s3cr3t-in-link" => {
                "HTTP/1.1 302 Found\r\nlocation: /landed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
            }
            "/landed" => {
                let referer = first
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("referer:")
                            .then(|| l.to_owned())
                    })
                    .unwrap_or_default();
                page("<x>; rel=\"none\"", &serde_json::json!({ "referer": referer }).to_string())
            }
            "/hang" => {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                return;
            }
            "/endless" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\n\r\n")
                    .await;
                let chunk = vec![b'x'; 64 * 1024];
                while stream.write_all(&chunk).await.is_ok() {}
                return;
            }
            _ => "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        };
        let _ = stream.write_all(head.as_bytes()).await;
    })
    .await;
    (format!("http://127.0.0.1:{port}"), seen)
}

#[tokio::test]
async fn api_pages_and_error_bodies_cannot_lead_the_credential_away_or_run_forever() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let (api, seen) = hostile_api().await;
    // Each run is bounded: a command that kept reading would fail the test, not hang it.
    let api_call = async |path: &str| {
        env.output_bounded(&[
            "api",
            "--allow-origin",
            "--paginate",
            &format!("{api}{path}"),
        ])
        .await
    };

    // A next-page link on another origin is not followed, --allow-origin or not.
    let out = api_call("/away").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("another origin"), "{}", out.stderr);
    assert!(!seen.lock().unwrap().iter().any(|l| l.contains("/stolen")));

    // A link back to a page already fetched ends the walk instead of looping.
    let out = api_call("/loop?key=s3cr3t-in-link").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("already fetched"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("s3cr3t"),
        "the link is not quoted: {}",
        out.stderr
    );

    // A redirect does not repeat the first URL (with a query binding, the credential) in a
    // `Referer`.
    let out = api_call("/redir?key=s3cr3t-in-link").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("\"referer\":\"\""), "{out:?}");

    // A relative link is resolved against the page that gave it; no empty `?` is added.
    let out = api_call("/rel/list?page=1").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "[1,2]");
    let out = env
        .output_bounded(&["api", "--allow-origin", &format!("{api}/plain")])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        seen.lock()
            .unwrap()
            .contains(&"GET /plain HTTP/1.1".to_owned()),
        "{seen:?}"
    );

    // An endless error body: only what is shown is read, and the command ends.
    let out = env
        .output_bounded(&["api", "--allow-origin", &format!("{api}/endless")])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HTTP 500"), "{}", out.stderr);
    assert!(out.stderr.len() < 70 * 1024, "{} bytes", out.stderr.len());

    // An API that never answers: the request fails after [http] timeout_secs.
    let url = format!("{api}/hang");
    let out = HostEnv::finish_bounded(
        env.host(&["api", "--allow-origin", &url])
            .env("HOST_HTTP__TIMEOUT_SECS", "1"),
    )
    .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("did not answer within 1s") || out.stderr.contains("timed out"),
        "the timeout is the reason: {}",
        out.stderr
    );

    // Plain http to a host that is not loopback: refused before anything is sent.
    let out = env
        .output_bounded(&["api", "--allow-origin", "http://192.0.2.1/user"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("plain http to 192.0.2.1"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_credential_replaces_what_the_request_carried_under_its_binding() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let fresh = token(&env).await;
    // A stale Authorization given with -H is replaced, not sent first beside the fresh one
    // (the API takes the first and refuses it); other headers go along.
    let out = env
        .output(&[
            "api",
            "-H",
            "Authorization: Bearer stale-token",
            "-H",
            "X-Trace: 1",
            "/echo",
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.provider.refresh_count(), 0, "no refresh was needed");

    // With a query binding, a parameter of that name in the URL is replaced; the rest of the
    // query stays.
    let (api, seen) = hostile_api().await;
    env.write_config("[providers.github]\nbinding = { query = \"key\" }\n");
    let out = env
        .output_bounded(&[
            "api",
            "--allow-origin",
            &format!("{api}/list?page=1&key=stale-token&sort=new"),
        ])
        .await;
    assert_eq!(out.code, Some(1), "the page does not exist: {out:?}");
    let line = seen.lock().unwrap().last().cloned().unwrap_or_default();
    assert_eq!(
        line,
        format!("GET /list?page=1&sort=new&key={fresh} HTTP/1.1"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(&fresh), "{}", out.stderr);
}

/// `host ARGS` fed `input` on stdin: its exit code and stdout.
async fn with_input(env: &HostEnv, args: &[&str], input: &str) -> (Option<i32>, String) {
    let out = crate::support::fed(env.host(args), input.as_bytes()).await;
    (out.code, out.stdout)
}

#[tokio::test]
async fn git_credentials_go_only_over_https_to_the_git_host_a_section_names() {
    let env = HostEnv::start().await;
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\ngit_host = \"git.corp.example\"\n",
        env.provider.issuer(),
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET
    ));
    let (out, _) = env
        .login_as("corp", &["--json", "--timeout", "20"], async |url| {
            vec![crate::support::browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    env.login_ok().await;
    let corp = env.output(&["token", "--provider", "corp"]).await;
    let corp = corp.stdout.trim().to_owned();
    let github = token(&env).await;
    assert_ne!(corp, github);

    let env = &env;
    let get = async |args: &[&str], host: &str, protocol: &str| {
        let input = format!("protocol={protocol}\nhost={host}\n\n");
        let mut all = vec!["git-credential"];
        all.extend_from_slice(args);
        all.push("get");
        with_input(env, &all, &input).await
    };
    // The section's git_host: that provider answers for it, whichever is asked first.
    let (code, answer) = get(&[], "git.corp.example", "https").await;
    assert_eq!(code, Some(0));
    assert!(answer.contains(&format!("password={corp}\n")), "{answer}");
    assert!(answer.contains("host=git.corp.example\n"), "{answer}");
    // A path git passes as it is (not UTF-8) does not stop the answer.
    let input = b"protocol=https\nhost=git.corp.example\npath=r\xe9po.git\n\n";
    let out = crate::support::fed(env.host(&["git-credential", "get"]), input).await;
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains(&format!("password={corp}\n")),
        "{}",
        out.stdout
    );
    // Plain http gets nothing, for either host.
    for host in ["git.corp.example".to_owned(), git_host(env)] {
        let (code, answer) = get(&[], &host, "http").await;
        assert_eq!((code, answer.as_str()), (Some(0), ""), "{host}");
    }
    // --provider narrows the search: github does not serve corp's host.
    let (code, answer) = get(&["--provider", "github"], "git.corp.example", "https").await;
    assert_eq!((code, answer.as_str()), (Some(0), ""));
    let (_, answer) = get(&["--provider", "github"], &git_host(env), "https").await;
    assert!(answer.contains(&format!("password={github}\n")), "{answer}");

    // setup-git names the setting when a provider has no git host.
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{}\"\nclient_id = \"{}\"\n",
        env.provider.issuer(),
        host_testkit::CLIENT_ID
    ));
    let out = env.output(&["setup-git", "--provider", "corp"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("[providers.corp] git_host"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn status_exits_4_for_an_account_to_log_in_again_and_1_for_one_it_cannot_read() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // The provider forgets the refresh token: a refresh due marks the account.
    env.provider.revoke_all();
    let out = env
        .output(&["token", "--provider", "github", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    let out = env.output(&["status"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stdout.contains("log in again ("), "{}", out.stdout);
    let out = env.output(&["status", "--json"]).await;
    assert_eq!(out.code, Some(4), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        rows[0]["refresh"]
            .as_str()
            .is_some_and(|r| r.starts_with("log in again")),
        "{rows}"
    );

    // Under another key the record cannot be opened: listed as an error (exit 1), kept.
    let other = env.output(&["store", "keygen"]).await.stdout;
    let before = std::fs::read(env.record_path("default")).unwrap();
    let out = env
        .output_with(&["status", "--json"], &[("HOST_STORE_KEY", other.trim())])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["account"], "default", "{rows}");
    assert!(rows[0]["error"].is_string(), "{rows}");
    assert_eq!(std::fs::read(env.record_path("default")).unwrap(), before);
    // Logging out under that key deletes it without revoking, and says only that.
    let out = env
        .output_with(
            &["logout", "--provider", "github"],
            &[("HOST_STORE_KEY", other.trim())],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("without revoking it: it does not open with the key from")
            && !out.stderr.contains("left as it is"),
        "{}",
        out.stderr
    );
    assert!(!env.record_path("default").exists());
}

#[tokio::test]
async fn api_refreshes_a_token_about_to_expire_before_sending_and_reads_a_body_from_stdin() {
    let env = HostEnv::start().await;
    // Valid for 30 s, within the minute a session wants left: refreshed before the request,
    // not after a 401.
    env.provider.set_ttl(30);
    env.login_ok().await;
    env.provider.set_ttl(3600);
    let (code, out) = with_input(
        &env,
        &["api", "-X", "POST", "--input", "-", "/echo"],
        r#"{"from": "stdin"}"#,
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let echo: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["body"], serde_json::json!({"from": "stdin"}));
    // The old token would still have been accepted (the provider honours it until it is
    // revoked), so the one refresh was the session's own, ahead of expiry.
    assert_eq!(env.provider.refresh_count(), 1);
}

#[tokio::test]
async fn setup_git_pins_the_provider_the_account_and_the_configuration_file() {
    let env = HostEnv::start().await;
    // Two providers claim one git host, in a file git's helper would not find by itself.
    let file = env.home.path().join("elsewhere.toml");
    let section = |name: &str| {
        format!(
            "[providers.{name}]\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\ngit_host = \"git.corp.example\"\n",
            env.provider.issuer(),
            host_testkit::CLIENT_ID,
            host_testkit::CLIENT_SECRET
        )
    };
    std::fs::write(&file, format!("{}{}", section("aaa"), section("corp"))).unwrap();
    let file = file.to_str().unwrap();
    for (provider, account) in [("aaa", "default"), ("corp", "work")] {
        let (out, _) = env
            .login_as(
                provider,
                &["--config", file, "--account", account, "--timeout", "20"],
                async |url| vec![crate::support::browser_redirect(&url).await],
            )
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let out = env
        .output(&["--config", file, "token", "-p", "corp", "-a", "work"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let corp = out.stdout.trim().to_owned();

    let out = env
        .output(&["--config", file, "setup-git", "-p", "corp", "-a", "work"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("(provider `corp`, account `work`)"),
        "{}",
        out.stderr
    );
    // The real git, in an environment without the file's name.
    let mut cmd = env.command("git", &["credential", "fill"]);
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("HOST_CONFIG");
    let out = crate::support::fed(cmd, b"protocol=https\nhost=git.corp.example\n\n").await;
    assert!(
        out.stdout.contains(&format!("password={corp}\n")),
        "{}",
        out.stdout
    );
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_host_api_quietly() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let mut child = env
        .host(&["api", "/big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -c 10`: read a little, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    use tokio::io::AsyncReadExt;
    stdout.read_exact(&mut first).await.unwrap();
    assert_eq!(&first[..2], b"[\"");
    drop(stdout);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("host ends")
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
