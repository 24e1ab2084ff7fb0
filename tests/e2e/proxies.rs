//! Proxies from the environment and the configuration, for the built-in flows and plugins.

use host_testkit::guests;

use crate::support::{DUE, HostEnv, logged_in};

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
