//! Messages that say what happened and what to do, where they used to send the user the wrong
//! way.

use crate::support::{HostEnv, browser_redirect};
use host_testkit::guests;

#[tokio::test]
async fn a_token_endpoint_that_never_answers_is_named_not_the_callback() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    // A token endpoint that takes the request and never answers.
    let (port, seen) =
        crate::support::raw_server(async |_: u16, _: String, stream: tokio::net::TcpStream| {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            drop(stream);
        })
        .await;
    env.write_config(&format!(
        "[providers.acme]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"http://127.0.0.1:{port}/token\"\n",
        host_testkit::CLIENT_ID,
        host_testkit::CLIENT_SECRET,
        p.url("/authorize"),
    ));
    let (out, _) = env
        .login_as("acme", &["--timeout", "3"], async |url| {
            // The browser lands on the callback; its page waits on the exchange, so the
            // request is left to itself.
            let callback = browser_redirect(&url).await;
            tokio::spawn(async move {
                let client = reqwest::Client::builder().no_proxy().build().unwrap();
                let _ = client.get(&callback).send().await;
            });
            Vec::new()
        })
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "the exchange was sent");
    assert!(
        out.stderr.contains(
            "the login callback arrived, but the provider's token endpoint did not answer the code's exchange within 3s; nothing was stored"
        ),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("no login callback arrived"),
        "{}",
        out.stderr
    );
    // With no callback at all, it is the browser that is waited for.
    let out = env.run_briefly(&[], "acme").await;
    assert!(
        out.stderr.contains("no login callback arrived within 1s"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_plugin_schema_that_cannot_be_used_names_the_plugin_file() {
    let env = HostEnv::start().await;
    env.install_plugin("remote", guests::REMOTE_REF);
    let file = env.plugins_dir().join("remote.wasm");
    let out = env.run_briefly(&[], "remote").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "the plugin {} declares an app-credentials schema that is not a valid JSON schema",
            file.display()
        )) && out.stderr.contains("https://schemas.example/client.json"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_catalog_provider_without_a_client_id_says_what_to_set() {
    let env = HostEnv::start().await;
    let out = env.run_briefly(&[], "okta").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(!out.stderr.contains("unknown provider"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("provider `okta` is in the catalog but not configured yet")
            && out.stderr.contains("OKTA_CLIENT_ID")
            && out.stderr.contains("[providers.okta]"),
        "{}",
        out.stderr
    );
    // What its endpoints leave open is named too.
    let entry = host::catalog::entry("okta").expect("okta is in the catalog");
    for (name, placeholder) in &entry.placeholders {
        if placeholder.default.is_none() {
            assert!(
                out.stderr.contains(&format!("`{name}`")),
                "{name}: {}",
                out.stderr
            );
        }
    }
    // A name in no catalog is still unknown.
    let out = env.run_briefly(&[], "oktaa").await;
    assert!(
        out.stderr.contains("unknown provider `oktaa`"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_plugin_request_to_a_private_address_says_so() {
    // A name that resolves only to a private address (an /etc/hosts entry, in a mount
    // namespace of the test's own): the refusal is named, not reported as a host that cannot
    // be reached. Nothing is sent there: the address is refused before any connection.
    let env = HostEnv::start().await;
    env.install_plugin("ak", guests::API_KEY_PLUGIN);
    env.write_config("[providers.ak]\nverify_url = \"https://intranet.test/v1/me\"\n");
    let hosts = env.home.path().join("hosts");
    std::fs::write(&hosts, "10.0.0.1 intranet.test\n").unwrap();
    let script = r#"mount --bind "$HOSTS" /etc/hosts || exit 99
exec "$HOST" run --provider ak --field api_key=k3y-s3cr3t"#;
    let mut cmd = env.command("unshare", &["-Urm", "sh", "-c", script]);
    cmd.env("HOSTS", &hosts)
        .env("HOST", env!("CARGO_BIN_EXE_host"));
    let out = HostEnv::finish_bounded(&mut cmd).await;
    assert_ne!(
        out.code,
        Some(99),
        "the test could not set up its hosts file: {out:?}"
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("intranet.test resolves to a private or reserved address"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot reach"), "{}", out.stderr);
    assert!(!out.stderr.contains("k3y-s3cr3t"), "{}", out.stderr);
}
