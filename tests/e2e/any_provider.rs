//! Providers made of configuration and OpenID Connect, against the test provider (which is
//! also a minimal OIDC provider: discovery, JWKS with key rotation, signed id_tokens).

use std::sync::Arc;
use std::time::Duration;

use host::{LoginOptions, LoginUi, flow::DeviceCode};
use host_testkit::{CLIENT_ID, CLIENT_SECRET, IdTokenFault, TestProvider};
use serde_json::Value;

use crate::support::{HostEnv, Output, browser_redirect};

/// A provider section for the test provider by its endpoints.
fn acme_config(p: &TestProvider) -> String {
    format!(
        r#"
[providers.acme]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
authorize_url = "{}"
token_url = "{}"
revocation_url = "{}"
identify_url = "{}"
identify_pointer = "/login"
api_url = "{}"
scopes = ["read", "write"]
"#,
        p.url("/authorize"),
        p.url("/token"),
        p.url("/revoke"),
        p.url("/api/user"),
        p.url("/api"),
    )
}

/// A provider section with nothing but an issuer and the client's credentials.
fn corp_config(p: &TestProvider) -> String {
    format!(
        r#"
[providers.corp]
issuer = "{}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
"#,
        p.issuer()
    )
}

async fn login(env: &HostEnv, provider: &str) -> (Output, Vec<(u16, String)>) {
    env.login_as(provider, &["--json", "--timeout", "20"], async |url| {
        vec![browser_redirect(&url).await]
    })
    .await
}

async fn record(env: &HostEnv, provider: &str) -> Option<Value> {
    env.stored(provider, "default").await
}

#[tokio::test]
async fn a_provider_configured_by_its_endpoints_logs_in_refreshes_and_logs_out() {
    let env = HostEnv::start().await;
    env.write_config(&acme_config(&env.provider));
    env.provider.set_ttl(90);

    let (out, answers) = login(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 200);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["provider"], "acme");
    assert_eq!(
        summary["identity"], "octocat",
        "identify_url + identify_pointer"
    );
    let first = record(&env, "acme").await.unwrap()["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = &env.provider.authorize_requests()[0];
    assert_eq!(auth["scope"], "read write");
    assert_eq!(auth["code_challenge_method"], "S256", "PKCE by default");
    assert!(!auth.contains_key("nonce"), "no OpenID Connect, no nonce");

    let out = env.output(&["token", "--provider", "acme"]).await;
    assert_eq!(out.stdout.trim(), first, "{out:?}");
    let out = env
        .output(&["token", "--provider", "acme", "--min-valid", "600"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let second = out.stdout.trim().to_owned();
    assert_ne!(second, first);
    assert_eq!(env.provider.refresh_count(), 1);

    // The API through the session, with the configured base URL.
    let out = env.output(&["api", "--provider", "acme", "user"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("octocat"), "{out:?}");

    let out = env.output(&["providers", "--json"]).await;
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let acme = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme")
        .expect("acme is listed");
    assert_eq!(acme["source"], "configured");
    assert_eq!(acme["credentials"]["status"], "valid");
    assert_eq!(acme["flows"], serde_json::json!(["oauth2"]));

    let out = env.output(&["logout", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        env.provider.revoked().contains(&second),
        "revoked at the configured revocation_url"
    );
    assert!(record(&env, "acme").await.is_none());
}

#[tokio::test]
async fn quirks_are_configured_by_the_section_alone() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    // Slack's shape (the token under `authed_user`, errors inside HTTP 200), `expires_in` as
    // a string, a comma between scopes, and a provider that refuses PKCE.
    p.set_slack_shape(true);
    p.set_string_expires_in(true);
    p.set_pkce_rejected(true);
    env.write_config(&format!(
        r#"
[providers.chatty]
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
authorize_url = "{}"
token_url = "{}"
scopes = ["read", "write"]
scope_separator = ","
pkce = false
client_auth = "request_body"
token_pointer = "/authed_user"
bearer_token_types = ["user"]
authorize_params = {{ team = "T1" }}
"#,
        p.url("/authorize"),
        p.url("/token"),
    ));
    let (out, _) = login(&env, "chatty").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let auth = &p.authorize_requests()[0];
    assert_eq!(auth["scope"], "read,write");
    assert_eq!(auth["team"], "T1");
    assert!(!auth.contains_key("code_challenge"));
    let exchange = &p.token_requests()[0];
    assert!(!exchange.form.contains_key("code_verifier"));
    assert_eq!(
        exchange.form["client_secret"], CLIENT_SECRET,
        "request_body"
    );
    let stored = record(&env, "chatty").await.unwrap();
    let expires: chrono::DateTime<chrono::Utc> = stored["credential"]["expires_at"]
        .as_str()
        .expect("the string expires_in became an expiry")
        .parse()
        .unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::seconds(3000), "{left}");

    // An error inside HTTP 200 on refresh is a refused grant: log in again, nothing lost.
    p.revoke_all();
    let out = env
        .output(&["token", "--provider", "chatty", "--min-valid", "99999"])
        .await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("log in again"), "{out:?}");
}

#[tokio::test]
async fn an_issuer_and_a_client_id_are_enough() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    // Nothing but the issuer and the (public) client's id.
    p.set_public_client(true);
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n",
        p.issuer()
    ));
    p.set_ttl(90);

    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        summary["identity"], "user@example.test",
        "the id_token's email names the account"
    );
    let auth = &p.authorize_requests()[0];
    assert_eq!(auth["scope"], "openid", "an issuer asks for openid");
    let nonce = auth.get("nonce").expect("a nonce is sent");
    assert!(nonce.len() >= 32);
    let stored = record(&env, "corp").await.unwrap();
    assert_eq!(
        stored["credential"]["extra"]["id_token_claims"]["sub"],
        host_testkit::SUBJECT
    );
    assert_eq!(p.discovery_hits(), 1);

    // Discovery is cached (the provider said max-age=300): a refresh in another process does
    // not fetch it again; the refreshed id_token keeps the same subject.
    let out = env
        .output(&["token", "--provider", "corp", "--min-valid", "600"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(p.refresh_count(), 1);
    assert_eq!(p.discovery_hits(), 1, "the cached document was used");

    let out = env
        .output(&["status", "--provider", "corp", "--json"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("user@example.test"), "{out:?}");

    // Logout revokes at the discovered revocation endpoint.
    let out = env.output(&["logout", "--provider", "corp"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!p.revoked().is_empty());
}

#[tokio::test]
async fn a_plain_oauth2_server_is_found_by_its_issuer_through_rfc_8414_metadata() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    p.set_plain_oauth2(true);
    env.write_config(&corp_config(p));
    p.set_ttl(90);

    let (out, answers) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 200);
    // OpenID Connect discovery was asked first (404), then the RFC 8414 metadata.
    assert_eq!((p.discovery_hits(), p.metadata_hits()), (1, 1));
    let auth = &p.authorize_requests()[0];
    assert!(
        auth.get("scope").is_none_or(|s| !s.contains("openid")) && auth.get("nonce").is_none(),
        "a plain OAuth2 server is not asked for openid: {auth:?}"
    );
    let stored = record(&env, "corp").await.unwrap();
    assert!(stored["credential"]["access_token"].is_string());
    assert!(stored["credential"]["extra"]["id_token_claims"].is_null());

    // Cached like a discovery document: a refresh in another process fetches neither.
    let out = env
        .output(&["token", "--provider", "corp", "--min-valid", "600"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(p.refresh_count(), 1);
    assert_eq!((p.discovery_hits(), p.metadata_hits()), (1, 1));

    // The metadata says callbacks carry `iss` (RFC 9207): one naming another server is refused.
    p.set_callback_iss(Some("https://mix-up.example".into()));
    let (out, answers) = env
        .login_as("corp", &["--json", "--timeout", "3"], async |url| {
            vec![browser_redirect(&url).await]
        })
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert_eq!(answers[0].0, 400, "{answers:?}");

    // Logout revokes at the revocation endpoint the metadata names.
    let out = env.output(&["logout", "--provider", "corp"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!p.revoked().is_empty());

    // A section that expects OpenID Connect is not run as plain OAuth2, id_tokens unchecked.
    env.write_config(&format!(
        "{}scopes = [\"openid\", \"read\"]\n",
        corp_config(p)
    ));
    let out = env.run_briefly(&[], "corp").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("asks for OpenID Connect")
            && out.stderr.contains("publishes only OAuth2 metadata"),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_issuer_with_a_path_finds_its_metadata_and_absent_metadata_is_named() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    p.set_plain_oauth2(true);
    // RFC 8414 §3.1: `/.well-known/oauth-authorization-server` goes before the issuer's path.
    let issuer = p.url("/tenant-1");
    p.set_callback_iss(Some(issuer.clone()));
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
    ));
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(p.metadata_hits(), 1);

    // Neither document there: both addresses are named, with what each answered.
    p.set_plain_oauth2(false);
    let nowhere = p.url("/nowhere");
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"{nowhere}\"\nclient_id = \"{CLIENT_ID}\"\n"
    ));
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    for expected in [
        "publishes no metadata".to_owned(),
        format!("{nowhere}/.well-known/openid-configuration (HTTP 404)"),
        format!(
            "{}/.well-known/oauth-authorization-server/nowhere (HTTP 404)",
            p.issuer()
        ),
        "set authorize_url and token_url instead".to_owned(),
    ] {
        assert!(out.stderr.contains(&expected), "{expected}: {out:?}");
    }
}

#[tokio::test]
async fn discovery_is_not_downgraded_by_a_refusal_or_broken_json_and_its_cache_is_checked() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&corp_config(p));
    let run = async || env.run_briefly(&[], "corp").await;
    // A refusal or a broken JSON document at the OpenID Connect address is an error: RFC 8414
    // metadata (which would turn off id_token validation) is not asked for.
    p.set_discovery_status(Some(403));
    let out = run().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("answered HTTP 403"), "{out:?}");
    p.set_discovery_status(None);
    p.set_discovery_truncated(true);
    let out = run().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("(broken JSON)"), "{out:?}");
    assert_eq!(p.metadata_hits(), 0);
    p.set_discovery_truncated(false);

    // A good document is cached; the cache, edited to send codes elsewhere, is not trusted.
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let hits = p.discovery_hits();
    let cache_dir = env.data_dir().join("cache/oidc");
    let cached_files: Vec<std::path::PathBuf> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let [cache] = cached_files.as_slice() else {
        panic!("one cached document: {cached_files:?}")
    };
    let mut cached: Value = serde_json::from_slice(&std::fs::read(cache).unwrap()).unwrap();
    cached["document"]["token_endpoint"] = "http://evil.example/token".into();
    std::fs::write(cache, serde_json::to_vec(&cached).unwrap()).unwrap();
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        p.discovery_hits(),
        hits + 1,
        "the edited cache was fetched again"
    );
    // A FIFO in its place is passed over, not waited on.
    std::fs::remove_file(cache).unwrap();
    crate::support::mkfifo(cache);
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(p.discovery_hits(), hits + 2);

    // An issuer carrying a password or a query is refused before any request, unquoted.
    for issuer in [
        p.issuer().replace("http://", "http://alice:hunter2pass@"),
        format!("{}/t?api_key=QUERYSECRET", p.issuer()),
        format!("{}/t#frag", p.issuer()),
    ] {
        env.write_config(&format!(
            "[providers.corp]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n"
        ));
        let out = run().await;
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr
                .contains("must not carry a user name, password, query or fragment"),
            "{out:?}"
        );
        assert!(
            !out.stderr.contains("hunter2pass") && !out.stderr.contains("QUERYSECRET"),
            "{out:?}"
        );
    }
    assert_eq!(p.discovery_hits(), hits + 2);
}

#[tokio::test]
async fn every_broken_id_token_is_refused_and_nothing_is_stored() {
    let cases = [
        (IdTokenFault::BadSignature, "signature does not verify"),
        (IdTokenFault::WrongAudience, "meant for another client"),
        (IdTokenFault::WrongNonce, "nonce is not the login's"),
        (IdTokenFault::NoNonce, "nonce is missing"),
        (IdTokenFault::Expired, "has expired"),
        (IdTokenFault::UnknownKid, "does not publish (kid `rogue-1`)"),
        (IdTokenFault::WrongIssuer, "issuer (iss)"),
        (IdTokenFault::BadAtHash, "at_hash"),
        (
            IdTokenFault::MultipleAudiencesNoAzp,
            "several audiences and no azp",
        ),
    ];
    for (fault, says) in cases {
        let env = HostEnv::start().await;
        env.write_config(&corp_config(&env.provider));
        env.provider.set_id_token_fault(fault);
        let (out, _) = login(&env, "corp").await;
        assert_eq!(out.code, Some(1), "{fault:?}: {out:?}");
        assert!(
            out.stderr.contains("id_token was refused") && out.stderr.contains(says),
            "{fault:?}: {}",
            out.stderr
        );
        for id_token in env.provider.id_tokens() {
            assert!(!out.stderr.contains(&id_token), "the token is not shown");
            let payload = id_token.split('.').nth(1).unwrap();
            assert!(!out.stderr.contains(payload));
        }
        assert!(
            record(&env, "corp").await.is_none(),
            "{fault:?}: nothing stored"
        );
        if fault == IdTokenFault::UnknownKid {
            assert_eq!(
                env.provider.jwks_hits(),
                1,
                "keys fetched a moment ago are not fetched again"
            );
        }
    }
}

#[tokio::test]
async fn another_spelling_of_the_issuer_is_accepted_only_when_configured() {
    // The faulty tokens say `iss = "https://issuer.invalid"`: refused above; accepted when the
    // section lists it as another spelling of its issuer (as the catalog does for Google).
    let env = HostEnv::start().await;
    env.write_config(&format!(
        "{}id_token_issuers = [\"https://issuer.invalid\"]\n",
        corp_config(&env.provider)
    ));
    env.provider.set_id_token_fault(IdTokenFault::WrongIssuer);
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(record(&env, "corp").await.is_some());
    let google = host::catalog::entry("google").expect("google is in the catalog");
    assert_eq!(
        google.id_token_issuers.as_deref(),
        Some(&["accounts.google.com".to_owned()][..])
    );
}

#[tokio::test]
async fn id_tokens_signed_with_es256_and_eddsa_are_accepted() {
    for alg in ["ES256", "EdDSA"] {
        let env = HostEnv::start().await;
        env.write_config(&corp_config(&env.provider));
        env.provider.set_id_token_alg(alg);
        let (out, _) = login(&env, "corp").await;
        assert_eq!(out.code, Some(0), "{alg}: {out:?}");
        assert!(record(&env, "corp").await.is_some());
    }
}

/// A login front end that plays the user's browser.
struct Browser;

impl LoginUi for Browser {
    fn show_url(&self, url: &str) {
        let url = url.to_owned();
        tokio::spawn(async move {
            let callback = browser_redirect(&url).await;
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let _ = client.get(callback).send().await;
        });
    }

    fn show_device_code(&self, _code: &DeviceCode) {}
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_again_once() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&corp_config(p));
    let app = env.app();
    let options = LoginOptions::default().timeout(Duration::from_secs(20));
    let record = app
        .login("corp", "default", None, &options, &Browser)
        .await
        .expect("login");
    assert_eq!(record.identity.as_deref(), Some("user@example.test"));
    assert_eq!(p.jwks_hits(), 1);

    // The provider rotates its key; the next id_token has a kid the held keys lack.
    p.rotate_signing_key();
    let fresh = app
        .token("corp", "default", Duration::from_secs(99_999))
        .await
        .expect("refreshed with the new key");
    assert_ne!(
        fresh.credential.secret().map(|s| s.expose().to_owned()),
        record.credential.secret().map(|s| s.expose().to_owned()),
        "a new token"
    );
    assert_eq!(p.jwks_hits(), 2, "fetched again once");
    assert_eq!(p.signing_kid(), "rsa-2");

    // The same key again: no fetch.
    let kept = app
        .token("corp", "default", Duration::from_secs(99_999))
        .await
        .expect("refreshed");
    assert_eq!(p.jwks_hits(), 2);

    // A kid nobody publishes: fetched again once more, then refused; the stored token stays.
    p.set_id_token_fault(IdTokenFault::UnknownKid);
    let err = app
        .token("corp", "default", Duration::from_secs(99_999))
        .await
        .expect_err("refused");
    assert!(
        err.flow_error().unwrap().chain().contains("kid `rogue-1`"),
        "{}",
        err.flow_error().unwrap().chain()
    );
    assert_eq!(p.jwks_hits(), 3, "one more fetch, not a loop");
    let stored = app.store().load("corp", "default").await.unwrap().unwrap();
    assert_eq!(
        stored.credential.secret().map(|s| s.expose().to_owned()),
        kept.credential.secret().map(|s| s.expose().to_owned()),
        "the refused refresh stored no access token"
    );

    // The refused answer had rotated the refresh token (the provider retired the old one):
    // the new one was kept, so the next refresh works instead of replaying a retired token.
    p.set_id_token_fault(IdTokenFault::None);
    let after = app
        .token("corp", "default", Duration::from_secs(99_999))
        .await
        .expect("refreshed with the rotated refresh token");
    assert_ne!(
        after.credential.secret().map(|s| s.expose().to_owned()),
        kept.credential.secret().map(|s| s.expose().to_owned()),
    );
    assert_eq!(p.live_refresh_tokens(), 1);
}

#[tokio::test]
async fn callbacks_must_carry_the_issuer_the_provider_advertises() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&corp_config(p));
    for (iss, why) in [
        (Some("https://evil.example".to_owned()), "issuer"),
        (None, "iss"),
    ] {
        let strip = iss.is_none();
        p.set_callback_iss(iss);
        let (out, answers) = env
            .login_as("corp", &["--json", "--timeout", "3"], async |url| {
                let mut callback = browser_redirect(&url).await;
                if strip {
                    let mut u = url::Url::parse(&callback).unwrap();
                    let kept: Vec<(String, String)> = u
                        .query_pairs()
                        .filter(|(k, _)| k != "iss")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    u.query_pairs_mut().clear().extend_pairs(kept);
                    callback = u.to_string();
                }
                vec![callback]
            })
            .await;
        assert_ne!(out.code, Some(0), "{out:?}");
        assert_eq!(answers[0].0, 400, "{why}: {answers:?}");
        assert!(record(&env, "corp").await.is_none());
        assert!(
            p.token_requests().is_empty(),
            "no code is exchanged after a mix-up"
        );
    }
}

#[tokio::test]
async fn discovery_failures_are_clear() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    // The document names another issuer.
    p.set_discovery_issuer(Some("https://other.example".into()));
    env.write_config(&corp_config(p));
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("names the issuer `https://other.example`, not the configured"),
        "{out:?}"
    );
    // Not a discovery document.
    p.set_discovery_issuer(None);
    p.set_discovery_garbage(true);
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    // (An HTML page where the document should be, as a catch-all route serves: the RFC 8414
    // metadata is tried too.)
    assert!(
        out.stderr.contains("publishes no metadata")
            && out.stderr.contains("openid-configuration (not JSON)")
            && out.stderr.contains("oauth-authorization-server (HTTP 404)"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("<html"), "the body is not shown");
    // Nobody there.
    let (port, _held) = crate::support::closed_port();
    env.write_config(&format!(
        "[providers.corp]\nissuer = \"http://127.0.0.1:{port}\"\nclient_id = \"x\"\n"
    ));
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot fetch the discovery document"),
        "{out:?}"
    );
    // Not https.
    env.write_config("[providers.corp]\nissuer = \"http://sso.example.com\"\nclient_id = \"x\"\n");
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("providers.corp.issuer is plain http to a host that is not loopback"),
        "{out:?}"
    );
}

#[tokio::test]
async fn braces_in_a_secret_are_part_of_it_not_a_placeholder() {
    let env = HostEnv::start().await;
    env.write_config(&acme_config(&env.provider).replace(CLIENT_SECRET, "zq9{supersecret}x"));
    let out = env.output(&["providers", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let acme = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme")
        .unwrap();
    assert_eq!(acme["credentials"]["status"], "valid", "{acme}");
    assert!(!out.stderr.contains("supersecret"), "{out:?}");
    // It reaches the token endpoint as written (the test provider refuses it, by name only).
    let (out, _) = login(&env, "acme").await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.contains("supersecret"), "{out:?}");
    let sent = env.provider.token_requests();
    // (HTTP Basic carries it form-encoded, RFC 6749 §2.3.1.)
    let secret = sent[0].basic_auth().map(|(_, s)| s);
    assert!(
        matches!(
            secret.as_deref(),
            Some("zq9{supersecret}x" | "zq9%7Bsupersecret%7Dx")
        ),
        "{secret:?}"
    );
}

#[tokio::test]
async fn catalog_entries_need_only_a_client_id_and_name_missing_placeholders() {
    let env = HostEnv::start().await;
    // GOOGLE_CLIENT_ID alone enables the catalog's google.
    let out = env
        .host(&["providers", "--json"])
        .env("GOOGLE_CLIENT_ID", "1234-abc.apps.googleusercontent.com")
        .output()
        .await
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let google = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "google")
        .expect("google is enabled by its variable");
    assert_eq!(google["source"], "catalog");
    assert_eq!(google["credentials"]["status"], "valid", "{google}");
    assert!(
        !listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "okta"),
        "catalog entries nobody enabled are not listed"
    );

    // The section overrides the catalog; a template without its placeholder names it.
    env.write_config("[providers.okta]\nclient_id = \"0oa1\"\n");
    let out = env
        .output(&["run", "--provider", "okta", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("providers.okta.domain is missing")
            && out.stderr.contains("`{domain}` in authorize_url needs it")
            && out.stderr.contains("HOST_PROVIDERS__OKTA__DOMAIN"),
        "{}",
        out.stderr
    );
    let out = env.output(&["config", "--provider", "okta"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");

    // With every placeholder filled, the endpoints are the provider's.
    env.write_config(
        "[providers.okta]\nclient_id = \"0oa1\"\ndomain = \"dev-1.okta.com\"\n[providers.microsoft]\nclient_id = \"c\"\n",
    );
    let app = env.app();
    let okta = host::configured::settings(app.provider("okta").unwrap().context().section())
        .expect("resolves");
    assert_eq!(
        okta.authorize_url.unwrap().as_str(),
        "https://dev-1.okta.com/oauth2/v1/authorize"
    );
    let ms = host::configured::settings(app.provider("microsoft").unwrap().context().section())
        .expect("the tenant has a default");
    assert!(ms.authorize_url.unwrap().as_str().contains("/common/"));
    let out = env.output(&["providers", "--all"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("okta") && out.stdout.contains("(enabled)"));
    assert!(out.stdout.lines().count() > 50);
}

#[tokio::test]
async fn the_device_flow_of_an_oidc_provider_comes_from_discovery() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&corp_config(p));
    let app = env.app();
    let provider = app.provider("corp").unwrap();
    assert_eq!(
        provider.flow_names().collect::<Vec<_>>(),
        ["device", "oauth2"]
    );
    let flow: Arc<host::configured::ConfiguredFlow> = provider.flow_as("device").await.unwrap();
    assert_eq!(
        flow.oauth2()
            .app_credentials()
            .device_authorization_url
            .as_ref()
            .map(|u| u.as_str().to_owned()),
        Some(p.url("/device/code"))
    );
    assert!(flow.oauth2().id_token_verifier().is_some());
}

#[tokio::test]
async fn a_provider_cannot_plant_validated_claims() {
    let env = HostEnv::start().await;
    env.write_config(&acme_config(&env.provider));
    env.provider.script([host_testkit::Scripted::Json(
        200,
        serde_json::json!({
            "access_token": "at-planted",
            "token_type": "bearer",
            "expires_in": 3600,
            "id_token_claims": { "iss": "x", "sub": "evil", "email": "evil@example.test" },
        }),
    )]);
    let (out, _) = login(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("evil"), "{}", out.stdout);
    let stored = record(&env, "acme").await.unwrap();
    assert!(
        stored["credential"]["extra"]
            .get("id_token_claims")
            .is_none()
    );
}

#[tokio::test]
async fn a_refresh_answer_about_another_user_keeps_its_refresh_token_and_is_never_replayed() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    env.write_config(&corp_config(p));
    p.set_rotate(true);
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let before = record(&env, "corp").await.unwrap();
    let token = async || {
        env.output(&["token", "--provider", "corp", "--min-valid", "99999"])
            .await
    };

    // The provider rotates the refresh token, but its id_token names another user.
    p.set_id_token_fault(IdTokenFault::OtherSubject);
    let out = token().await;
    assert_eq!(out.code, Some(4), "a new login is needed: {out:?}");
    assert!(
        out.stderr.contains("about another user than the login"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    let refreshes = p.refresh_count();
    let after = record(&env, "corp").await.unwrap();
    assert_ne!(
        after["credential"]["refresh_token"], before["credential"]["refresh_token"],
        "the rotated refresh token is kept"
    );
    assert_eq!(
        after["credential"]["access_token"], before["credential"]["access_token"],
        "the refused answer's access token is not"
    );
    assert!(after["login_required"].is_string(), "{after}");

    // Later: no refresh is sent (the retired token is not replayed), the user is told to log
    // in again and why.
    p.set_id_token_fault(IdTokenFault::None);
    let out = token().await;
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr.contains("log in again") && out.stderr.contains("another user"),
        "{}",
        out.stderr
    );
    assert_eq!(p.refresh_count(), refreshes, "nothing was sent");
    // A new login clears it.
    let (out, _) = login(&env, "corp").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = token().await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn the_authorization_urls_own_query_cannot_set_a_flow_parameter() {
    let env = HostEnv::start().await;
    let p = &env.provider;
    for param in [
        "redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        "state=fixed",
        "response_type=token",
        "code_challenge_method=plain",
    ] {
        let config = acme_config(p).replace(
            &format!("authorize_url = \"{}\"", p.url("/authorize")),
            &format!(
                "authorize_url = \"{}?team=T1&{param}\"",
                p.url("/authorize")
            ),
        );
        env.write_config(&config);
        let out = env
            .output(&[
                "run",
                "--provider",
                "acme",
                "--no-browser",
                "--timeout",
                "1",
            ])
            .await;
        assert_eq!(out.code, Some(1), "{param}: {out:?}");
        let name = param.split('=').next().unwrap();
        assert!(
            out.stderr.contains(&format!(
                "providers.acme.authorize_url: its query sets `{name}`, which the flow sets itself"
            )),
            "{param}: {}",
            out.stderr
        );
    }
    assert!(p.authorize_requests().is_empty());
    // Other parameters in its query stay, once.
    let config = acme_config(p).replace(
        &format!("authorize_url = \"{}\"", p.url("/authorize")),
        &format!("authorize_url = \"{}?team=T1\"", p.url("/authorize")),
    );
    env.write_config(&config);
    let (out, _) = login(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let asked = p.authorize_requests();
    assert_eq!(asked.last().unwrap()["team"], "T1");
}

#[tokio::test]
async fn the_nonce_is_the_flows_own() {
    let env = HostEnv::start().await;
    env.write_config(&format!(
        "{}authorize_params = {{ nonce = \"fixed\" }}\n",
        corp_config(&env.provider)
    ));
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("providers.corp.authorize_params.nonce: `nonce` is set by the flow itself"),
        "{}",
        out.stderr
    );
    assert!(env.provider.authorize_requests().is_empty());
}

#[tokio::test]
async fn records_of_a_provider_no_longer_configured_are_shown_and_can_be_deleted() {
    let env = HostEnv::start().await;
    env.write_config(&acme_config(&env.provider));
    let (out, _) = login(&env, "acme").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // The section is removed; the record stays on disk.
    env.write_config("");
    let out = env.output(&["status"]).await;
    assert!(
        out.stdout.contains("acme") && out.stdout.contains("host logout --provider acme"),
        "{out:?}"
    );
    assert_eq!(
        out.code,
        Some(1),
        "a record that cannot be used fails the status"
    );
    let out = env.output(&["logout", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("without revoking"), "{}", out.stderr);
    assert!(record(&env, "acme").await.is_none());
    // Nothing stored under that name: still an unknown provider.
    let out = env.output(&["logout", "--provider", "acme"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("unknown provider"), "{}", out.stderr);
}

#[tokio::test]
async fn a_placeholder_cannot_name_a_setting_least_of_all_a_secret() {
    let env = HostEnv::start().await;
    for (param, setting) in [
        ("{client_secret}", "client_secret"),
        ("{client_id}", "client_id"),
    ] {
        env.write_config(&format!(
            "{}authorize_params = {{ x = \"{param}\" }}\n",
            acme_config(&env.provider)
        ));
        let out = env.run_briefly(&[], "acme").await;
        assert_eq!(out.code, Some(1), "{param}: {out:?}");
        assert!(
            out.stderr.contains("providers.acme.authorize_params")
                && out
                    .stderr
                    .contains(&format!("names the setting `{setting}` as a placeholder")),
            "{param}: {}",
            out.stderr
        );
        assert!(!out.stderr.contains(CLIENT_SECRET), "{}", out.stderr);
        assert!(
            !out.stderr.contains("/authorize?"),
            "no login started: {}",
            out.stderr
        );
    }
    assert!(env.provider.token_requests().is_empty());
}

#[tokio::test]
async fn plain_http_endpoints_off_loopback_make_the_section_invalid_where_it_is_listed() {
    let env = HostEnv::start().await;
    env.write_config(
        "[providers.corp]\nclient_id = \"cid\"\nauthorize_url = \"https://id.example.com/authorize\"\ntoken_url = \"http://id.example.com/token\"\n",
    );
    let out = env.output(&["providers", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    let corp = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "corp")
        .expect("corp is listed");
    assert_eq!(corp["credentials"]["status"], "invalid", "{corp}");
    let text = corp.to_string();
    assert!(
        text.contains("token_url") && text.contains("plain http"),
        "{text}"
    );
    let out = env
        .output(&["run", "--provider", "corp", "--no-browser"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("plain http"), "{}", out.stderr);
}
