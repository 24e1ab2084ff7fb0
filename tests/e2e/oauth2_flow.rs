//! OAuth2Flow through authorize → exchange → refresh against the test provider.

use host::{
    AuthFlow, Credential, FlowError, flow::AuthorizeRequest, flow::CallbackError,
    flow::ExchangeInput, flow::Interaction,
};
use host_testkit::{CLIENT_ID, CLIENT_SECRET, TestProvider};
use serde_json::json;

use crate::support::{REDIRECT, approved, assert_debug_no_secrets, flow, flow_with, login};

#[tokio::test]
async fn authorize_exchange_refresh() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider);

    let auth = flow
        .authorize(AuthorizeRequest::with_redirect(REDIRECT))
        .await
        .unwrap();
    let Interaction::Redirect { url } = &auth.interaction else {
        panic!()
    };
    let url = url::Url::parse(url).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["scope"], "read write");
    // At least 128 bits of state: 32 random bytes in URL-safe base64 are 43 characters.
    assert!(
        q["state"].len() >= 43,
        "state too short: {}",
        q["state"].len()
    );
    assert_debug_no_secrets(&auth.pending, &[&q["state"]]);

    // A second authorization uses a fresh state and a fresh verifier (each compared by
    // itself: the whole URLs would differ by the code challenge alone).
    let again = flow
        .authorize(AuthorizeRequest::with_redirect(REDIRECT))
        .await
        .unwrap();
    let Interaction::Redirect { url: url2 } = &again.interaction else {
        panic!()
    };
    let q2: std::collections::HashMap<_, _> = url::Url::parse(url2)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_ne!(q["state"], q2["state"], "a fresh state");
    assert_ne!(
        q["code_challenge"], q2["code_challenge"],
        "a fresh PKCE verifier"
    );

    let query = host_testkit::approve(url.as_str()).await;
    let credential = flow
        .exchange(auth.pending, ExchangeInput::from_query(&query))
        .await
        .unwrap();
    let token = credential.as_oauth2().expect("oauth2 token");
    assert!(token.access_token.expose().starts_with("at-"));
    assert_eq!(token.scopes, vec!["read", "write"]);
    let expires_in = token.expires_at.unwrap() - chrono::Utc::now();
    assert!(
        (3590..=3600).contains(&expires_in.num_seconds()),
        "{expires_in}"
    );
    let first_refresh = token.refresh_token.clone().expect("refresh token");

    // HTTP Basic by default: the secret travels in the header, not the body.
    let requests = provider.token_requests();
    assert_eq!(
        requests[0].basic_auth(),
        Some((CLIENT_ID.into(), CLIENT_SECRET.into()))
    );
    assert!(!requests[0].form.contains_key("client_secret"));
    assert!(requests[0].form.contains_key("code_verifier"));

    let refreshed = flow.refresh(&credential).await.unwrap();
    let refreshed = refreshed.as_oauth2().unwrap();
    assert_ne!(refreshed.access_token.expose(), token.access_token.expose());
    let second_refresh = refreshed.refresh_token.clone().unwrap();
    assert_ne!(
        second_refresh.expose(),
        first_refresh.expose(),
        "rotated refresh token kept"
    );
    assert_eq!(
        provider.token_requests()[1].form["grant_type"],
        "refresh_token"
    );
    assert_debug_no_secrets(
        &credential,
        &[token.access_token.expose(), first_refresh.expose()],
    );
}

#[tokio::test]
async fn refresh_keeps_old_refresh_token_when_none_returned() {
    let provider = TestProvider::start().await;
    provider.set_rotate(false);
    let flow = flow(&provider);
    let credential = login(&flow).await;
    let old = credential
        .as_oauth2()
        .unwrap()
        .refresh_token
        .clone()
        .unwrap();
    let refreshed = flow.refresh(&credential).await.unwrap();
    let new = refreshed.as_oauth2().unwrap();
    assert_eq!(new.refresh_token.as_ref().unwrap().expose(), old.expose());
    // And it still works.
    flow.refresh(&refreshed).await.unwrap();
}

#[tokio::test]
async fn invalid_grant_on_refresh_asks_for_a_new_login() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider);
    let credential = login(&flow).await;
    provider.revoke_all();
    let err = flow.refresh(&credential).await.unwrap_err();
    assert!(err.needs_login(), "{err:?}");
}

#[tokio::test]
async fn request_body_auth_and_public_clients_send_client_id_in_body() {
    let provider = TestProvider::start().await;
    let body_auth = flow_with(&provider, |app| app["client_auth"] = json!("request_body"));
    login(&body_auth).await;
    let req = &provider.token_requests()[0];
    assert_eq!(req.authorization, None);
    assert_eq!(req.form["client_id"], CLIENT_ID);
    assert_eq!(req.form["client_secret"], CLIENT_SECRET);

    // A public client (no secret) still names itself in the body; the provider then refuses
    // it (it expects the secret), which shows the request went out as asked.
    let public = flow_with(&provider, |app| {
        app.as_object_mut().unwrap().remove("client_secret");
    });
    let (pending, _, query) = approved(&public).await;
    let err = public
        .exchange(pending, ExchangeInput::from_query(&query))
        .await
        .unwrap_err();
    assert!(host::oauth2::TokenError::find(&err).is_some(), "{err:?}");
    let req = provider.token_requests().pop().unwrap();
    assert_eq!(req.authorization, None);
    assert_eq!(req.form["client_id"], CLIENT_ID);
    assert!(!req.form.contains_key("client_secret"));
}

async fn callback(flow: &dyn AuthFlow, edit: impl FnOnce(String, &str) -> String) -> FlowError {
    let (pending, url, query) = approved(flow).await;
    let state: String = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let query = edit(query, &state);
    flow.exchange(pending, ExchangeInput::from_query(&query))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn bad_callbacks_are_refused_before_any_token_request() {
    let provider = TestProvider::start().await;
    // Each case breaks one thing; the provider's own `iss` would be a second.
    provider.set_iss_parameter(false);
    let flow = flow_with(&provider, |app| app["issuer"] = json!("https://id.example"));

    type Edit = Box<dyn Fn(String, &str) -> String>;
    let cases: Vec<(&str, Edit, CallbackError)> = vec![
        (
            "wrong state",
            Box::new(|q, s| q.replace(s, "forged")),
            CallbackError::StateMismatch,
        ),
        (
            "no state",
            Box::new(|q, s| q.replace(&format!("state={s}"), "x=1")),
            CallbackError::Missing("state".into()),
        ),
        (
            "duplicated state",
            Box::new(|q, s| format!("{q}&state={s}")),
            CallbackError::Duplicated("state".into()),
        ),
        (
            "duplicated code",
            Box::new(|q, _| format!("{q}&code=other")),
            CallbackError::Duplicated("code".into()),
        ),
        (
            "no code",
            Box::new(|_, s| format!("state={s}")),
            CallbackError::Missing("code".into()),
        ),
        (
            "code and error",
            Box::new(|q, _| format!("{q}&error=access_denied")),
            CallbackError::CodeAndError,
        ),
        (
            "other issuer",
            Box::new(|q, _| format!("{q}&iss=https%3A%2F%2Fevil.example")),
            CallbackError::IssuerMismatch {
                expected: "https://id.example".into(),
                got: "https://evil.example".into(),
            },
        ),
    ];
    for (name, edit, want) in cases {
        let err = callback(&flow, edit).await;
        match err {
            FlowError::Rejected(got) => assert_eq!(got, want, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    assert!(
        provider.token_requests().is_empty(),
        "no bad callback may reach the token endpoint"
    );

    // The right issuer passes.
    let ok = callback(&flow, |_, s| {
        format!("state={s}&iss=https%3A%2F%2Fid.example")
    })
    .await;
    assert!(
        matches!(&ok, FlowError::Rejected(CallbackError::Missing(m)) if m == "code"),
        "{ok:?}"
    );
}

#[tokio::test]
async fn access_denied_with_the_right_state_is_a_clean_error() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider);
    let err = callback(&flow, |_, s| {
        format!("state={s}&error=access_denied&error_description=User%20said%20no%1b%5B31m")
    })
    .await;
    match &err {
        FlowError::Denied { description } => {
            assert_eq!(description.as_deref(), Some("User said no[31m"))
        }
        other => panic!("{other:?}"),
    }
    // With a wrong state, the same error callback is just a forgery.
    let err = callback(&flow, |_, _| "state=forged&error=access_denied".into()).await;
    assert!(
        matches!(err, FlowError::Rejected(CallbackError::StateMismatch)),
        "{err:?}"
    );
}

#[tokio::test]
async fn pending_state_is_tied_to_its_provider() {
    let provider = TestProvider::start().await;
    let a = flow(&provider);
    let app = host::ProviderSection::from_code("other", provider.app_credentials())
        .parse()
        .unwrap();
    let b = host::oauth2::OAuth2Flow::new("other", app).unwrap();
    let (pending, _, query) = approved(&a).await;
    let err = b
        .exchange(pending, ExchangeInput::from_query(&query))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FlowError::Rejected(CallbackError::BadPending(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused() {
    let provider = TestProvider::start().await;
    let mut app = provider.app_credentials();
    app["token_url"] = json!("http://id.example/token");
    let app = host::ProviderSection::from_code("x", app).parse().unwrap();
    let err = host::oauth2::OAuth2Flow::new("x", app).unwrap_err();
    let text = err.chain();
    assert!(
        text.contains("providers.x.token_url") && text.contains("https"),
        "{text}"
    );
}

#[tokio::test]
async fn github_provider_end_to_end_from_configuration() {
    let provider = TestProvider::start().await;
    provider.set_comma_scopes(true);
    let home = tempfile::tempdir().unwrap();
    let config = host::ConfigLoader::with_env([
        ("HOME", home.path().to_str().unwrap().to_owned()),
        ("GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
        ("GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        (
            "HOST_PROVIDERS__GITHUB__AUTHORIZE_URL",
            provider.url("/authorize"),
        ),
        ("HOST_PROVIDERS__GITHUB__TOKEN_URL", provider.url("/token")),
        (
            "HOST_PROVIDERS__GITHUB__SCOPES",
            "[repo, \"read:org\"]".to_owned(),
        ),
    ])
    .defaults(host::builtin_defaults())
    .load()
    .unwrap();
    let app = host::App::from_config(config).expect("store settings");
    let registry = app.registry();
    let github = registry.get("github").unwrap();
    assert!(!github.is_flow_built("oauth2"));
    let flow = github.flow("oauth2").await.unwrap();
    let credential = login(flow.as_ref()).await;
    let Credential::OAuth2(token) = &credential else {
        panic!()
    };
    assert_eq!(
        token.scopes,
        vec!["repo", "read:org"],
        "comma-separated scopes are split"
    );
    // GitHub's default is request-body client authentication.
    assert_eq!(provider.token_requests()[0].form["client_id"], CLIENT_ID);

    // A GitHub App user token: expiring, with an expiring refresh token.
    provider.script([host_testkit::Scripted::Json(
        200,
        json!({"access_token":"ghu_new","token_type":"bearer","expires_in":28800,
               "refresh_token":"ghr_new","refresh_token_expires_in":"15811200","scope":""}),
    )]);
    let refreshed = flow.refresh(&credential).await.unwrap();
    let token = refreshed.as_oauth2().unwrap();
    let extra: host::github::GitHubTokenExtra = token.extra_as().unwrap();
    let left = extra.refresh_token_expires_at.unwrap() - chrono::Utc::now();
    assert!(
        (15811190..=15811200).contains(&left.num_seconds()),
        "{left}"
    );

    // GitHub's errors come with HTTP 200 and map to typed errors.
    provider.script([host_testkit::Scripted::Json(
        200,
        json!({"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}),
    )]);
    let err = flow.refresh(&refreshed).await.unwrap_err();
    assert!(err.needs_login(), "{err:?}");
    let t = host::oauth2::TokenError::find(&err).expect("a token error");
    assert_eq!(
        host::github::GitHubErrorCode::of(t),
        Some(host::github::GitHubErrorCode::BadRefreshToken)
    );
    assert!(err.chain().contains("bad_refresh_token"), "{err}");
}

#[tokio::test]
async fn rfc7009_revocation_revokes_the_refresh_token_first_and_retries_503() {
    let provider = TestProvider::start().await;
    let flow = flow_with(&provider, |app| {
        app["revocation_url"] = json!(provider.url("/revoke"))
    });
    let credential = login(&flow).await;
    let token = credential.as_oauth2().unwrap();
    provider.script([host_testkit::Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "1".into())],
        body: vec![],
    }]);
    assert!(flow.revoke(&credential).await.unwrap(), "revoked");
    let refresh = token.refresh_token.as_ref().unwrap().expose().to_owned();
    assert_eq!(
        provider.revoked(),
        vec![refresh, token.access_token.expose().to_owned()]
    );
    let hints: Vec<String> = provider
        .token_requests()
        .iter()
        .filter_map(|r| r.form.get("token_type_hint").cloned())
        .collect();
    assert_eq!(
        hints,
        vec!["refresh_token", "refresh_token", "access_token"],
        "503 retried once"
    );

    // A revocation endpoint that stays unavailable is asked three times, then the failure is
    // the answer (the access token is still sent).
    let busy = |_| host_testkit::Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "0".into())],
        body: vec![],
    };
    let before = provider.token_requests().len();
    provider.script((0..3).map(busy));
    let err = flow.revoke(&credential).await.expect_err("unavailable");
    assert!(err.chain().contains("503"), "{}", err.chain());
    let hints: Vec<String> = provider.token_requests()[before..]
        .iter()
        .filter_map(|r| r.form.get("token_type_hint").cloned())
        .collect();
    assert_eq!(
        hints,
        vec![
            "refresh_token",
            "refresh_token",
            "refresh_token",
            "access_token"
        ],
        "three attempts for the refresh token, then the access token"
    );

    // Without a revocation endpoint, nothing is sent and the caller is told.
    let plain = flow_with(&provider, |_| {});
    assert!(!plain.revoke(&credential).await.unwrap());
}

#[tokio::test]
async fn an_expired_github_refresh_token_asks_for_a_login_without_a_request() {
    let provider = TestProvider::start().await;
    let home = tempfile::tempdir().unwrap();
    let config = host::ConfigLoader::with_env([
        ("HOME", home.path().to_str().unwrap().to_owned()),
        ("GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
        ("HOST_PROVIDERS__GITHUB__TOKEN_URL", provider.url("/token")),
    ])
    .defaults(host::builtin_defaults())
    .load()
    .unwrap();
    let app = host::App::from_config(config).expect("store settings");
    let registry = app.registry();
    let flow = registry
        .get("github")
        .unwrap()
        .flow("oauth2")
        .await
        .unwrap();
    let mut token = host::OAuth2Token::bearer(host::SecretString::new("ghu_x"));
    token.refresh_token = Some(host::SecretString::new("ghr_x"));
    token.extra.0.insert(
        "refresh_token_expires_at".into(),
        json!("2020-01-01T00:00:00Z"),
    );
    let err = flow.refresh(&Credential::OAuth2(token)).await.unwrap_err();
    assert!(
        matches!(err, FlowError::LoginRequired { source: None, .. }) && err.needs_login(),
        "{err:?}"
    );
    assert!(provider.token_requests().is_empty());
}
