//! Catalog entries whose providers need quirks, each driven through the binary against the
//! test provider answering as that provider does: the entry's own settings, only its URLs
//! pointed at 127.0.0.1.

use host_testkit::{CLIENT_ID, CLIENT_SECRET, TestProvider};
use serde_json::Value;

use crate::support::{HostEnv, Output, browser_redirect};

async fn login(env: &HostEnv, provider: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--json", "--timeout", "20"];
    args.extend_from_slice(extra);
    let (out, answers) = env
        .login_as(provider, &args, async |url| {
            vec![browser_redirect(&url).await]
        })
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 200, "{answers:?}");
    out
}

/// The endpoints of a catalog entry pointed at the test provider (what stays is the entry's).
fn endpoints(p: &TestProvider) -> String {
    format!(
        "authorize_url = \"{}\"\ntoken_url = \"{}\"\nrevocation_url = \"{}\"\nidentify_url = \"{}\"\nidentify_pointer = \"/login\"\napi_url = \"{}\"\n",
        p.url("/authorize"),
        p.url("/token"),
        p.url("/revoke"),
        p.url("/api/user"),
        p.url("/api"),
    )
}

async fn access_token(env: &HostEnv, provider: &str) -> String {
    let stored = env.stored(provider, "default").await.expect("a record");
    stored["credential"]["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// Slack: a loopback login asks for user scopes in `user_scope` and gets a user token,
/// nested under `authed_user` with token type `user`.
#[tokio::test]
async fn slack_asks_for_user_scopes_and_keeps_the_nested_user_token() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    p.set_slack_shape(true);
    env.write_config(&format!(
        "[providers.slack]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{}",
        endpoints(p)
    ));
    login(
        &env,
        "slack",
        &["--scope", "channels:read", "--scope", "chat:write"],
    )
    .await;
    let auth = &p.authorize_requests()[0];
    assert_eq!(auth["user_scope"], "channels:read,chat:write");
    assert!(!auth.contains_key("scope"), "no bot scopes: {auth:?}");
    let token = access_token(&env, "slack").await;
    assert!(token.starts_with("at-"), "the authed_user token: {token}");
    let out = env.output(&["token", "--provider", "slack"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), token);
}

/// Twitch: the authorization request asks for `preferred_username` with `claims`; the device
/// flow names its scopes `scopes`.
#[tokio::test]
async fn twitch_asks_for_the_username_claim_and_sends_device_scopes_as_scopes() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&format!(
        "[providers.twitch]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nissuer = \"{}\"\ndevice_authorization_url = \"{}\"\n{}",
        p.issuer(),
        p.url("/device/code"),
        endpoints(p)
    ));
    login(&env, "twitch", &[]).await;
    let auth = &p.authorize_requests()[0];
    let claims: Value = serde_json::from_str(&auth["claims"]).expect("claims is JSON");
    assert_eq!(
        claims,
        serde_json::json!({"userinfo": {"preferred_username": null}})
    );
    assert_eq!(auth["scope"], "openid");

    let mut device = env.host(&[
        "run",
        "--provider",
        "twitch",
        "--flow",
        "device",
        "--no-browser",
        "--account",
        "tv",
        "--scope",
        "user:read:email",
        "--scope",
        "chat:read",
        "--timeout",
        "20",
    ]);
    let out = HostEnv::finish_bounded(&mut device).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let asked = &p.device_requests()[0];
    assert_eq!(asked["scopes"], "user:read:email chat:read", "{asked:?}");
    assert!(!asked.contains_key("scope"), "{asked:?}");
}

fn shopify_config(p: &TestProvider, extra: &str) -> String {
    format!(
        "[providers.shopify]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{}{extra}",
        endpoints(p)
    )
}

/// Shopify: `expiring=1` on the token request (an expiring offline token), and the token in
/// `X-Shopify-Access-Token` on API requests, not as a bearer token.
#[tokio::test]
async fn shopify_asks_for_expiring_tokens_and_sends_its_own_header() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&shopify_config(p, ""));
    login(&env, "shopify", &["--scope", "read_products"]).await;
    let exchange = &p.token_requests()[0];
    assert_eq!(exchange.form["grant_type"], "authorization_code");
    assert_eq!(exchange.form["expiring"], "1", "{:?}", exchange.form);

    // A refresh asks the same way.
    let out = env
        .output(&["token", "--provider", "shopify", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let refresh = p.token_requests().pop().unwrap();
    assert_eq!(refresh.form["grant_type"], "refresh_token");
    assert_eq!(refresh.form["expiring"], "1");

    let token = access_token(&env, "shopify").await;
    let out = env
        .output(&["token", "--provider", "shopify", "--header"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!("X-Shopify-Access-Token: {token}")
    );
    // The test API answers only that header (a bearer token is refused).
    let out = env.output(&["api", "--provider", "shopify", "/shop"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("Acme Store"), "{out:?}");
}

/// `token_params` may not set what the flow sets: the error names the setting, not the value;
/// `host config` shows what is set.
#[tokio::test]
async fn token_params_that_would_override_the_flow_are_refused() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&shopify_config(
        p,
        "token_params = { grant_type = \"s3cr3t-grant\" }\ntoken_request = \"json\"\n",
    ));
    let out = env.run_briefly(&[], "shopify").await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(
            "providers.shopify.token_params.grant_type: `grant_type` is set by the flow itself"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("s3cr3t-grant"), "{out:?}");
    assert!(p.authorize_requests().is_empty());

    let out = env.output(&["config", "--provider", "shopify"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for shown in [
        "providers.shopify.token_params.grant_type = \"s3cr3t-grant\"",
        "providers.shopify.token_request = \"json\"",
    ] {
        assert!(out.stdout.contains(shown), "{shown}: {out:?}");
    }
}

/// Notion: token and revocation requests as JSON bodies (the test provider refuses forms),
/// the client authenticated with HTTP Basic.
#[tokio::test]
async fn notion_sends_json_token_and_revocation_requests() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    p.set_json_only(true);
    env.write_config(&format!(
        "[providers.notion]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{}",
        endpoints(p)
    ));
    login(&env, "notion", &[]).await;
    let auth = &p.authorize_requests()[0];
    assert_eq!(auth["owner"], "user");
    let exchange = &p.token_requests()[0];
    assert_eq!(exchange.content_type.as_deref(), Some("application/json"));
    assert_eq!(exchange.form["grant_type"], "authorization_code");
    assert_eq!(
        exchange.basic_auth(),
        Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
    );
    let token = access_token(&env, "notion").await;

    let out = env.output(&["logout", "--provider", "notion"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(p.revoked().contains(&token), "{:?}", p.revoked());
    let revocation = p.token_requests().pop().unwrap();
    assert_eq!(revocation.content_type.as_deref(), Some("application/json"));
    assert_eq!(revocation.form["token"], token);
}

/// Reddit: an installed app has no secret and authenticates with HTTP Basic and an empty
/// password (the test provider refuses its id alone in the body).
#[tokio::test]
async fn reddit_without_a_secret_sends_basic_with_an_empty_password() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    p.set_basic_public(true);
    env.write_config(&format!(
        "[providers.reddit]\nclient_id = \"{CLIENT_ID}\"\n{}",
        endpoints(p)
    ));
    login(&env, "reddit", &[]).await;
    let auth = &p.authorize_requests()[0];
    assert_eq!(auth["duration"], "permanent");
    let exchange = &p.token_requests()[0];
    assert_eq!(
        exchange.basic_auth(),
        Some((CLIENT_ID.to_owned(), String::new()))
    );
    assert!(
        !exchange.form.contains_key("client_id"),
        "{:?}",
        exchange.form
    );
    let token = access_token(&env, "reddit").await;
    let out = env.output(&["logout", "--provider", "reddit"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(p.revoked().contains(&token));
}
