//! Every token-endpoint case of SECURITY.md against a hostile test provider: each bad response
//! yields its typed error, and no secret shows in any error.

use std::time::{Duration, Instant};

use host::http::HttpError;
use host::oauth2::{ErrorKind, TokenError};
use host::{AuthFlow, Credential, FlowError, flow::ExchangeInput};
use host_testkit::{CLIENT_SECRET, Scripted, TestProvider};
use serde_json::json;

use crate::support::{approved, assert_no_secrets, flow, login};

/// A token-shaped secret planted in hostile bodies: it must never reach an error.
const PLANTED: &str = "planted-secret-9f8e7d";

fn raw(status: u16, content_type: Option<&'static str>, body: &str) -> Scripted {
    Scripted::Raw {
        status,
        content_type,
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

/// Runs an exchange whose token response is `scripted`; returns the error.
async fn exchange_with(provider: &TestProvider, scripted: Scripted) -> (FlowError, Vec<String>) {
    let flow = flow(provider);
    let (pending, _, query) = approved(&flow).await;
    // provider \0 flow \0 state: the state is the flow's JSON.
    let sealed = pending.as_bytes().splitn(3, |b| *b == 0).nth(2).unwrap();
    let state: serde_json::Value = serde_json::from_slice(sealed).unwrap();
    let code = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    provider.script([scripted]);
    let err = flow
        .exchange(pending, ExchangeInput::from_query(&query))
        .await
        .unwrap_err();
    let secrets = vec![
        CLIENT_SECRET.to_owned(),
        PLANTED.to_owned(),
        code,
        state["verifier"].as_str().unwrap().to_owned(),
        state["state"].as_str().unwrap().to_owned(),
    ];
    (err, secrets)
}

fn token_error(err: FlowError) -> TokenError {
    let cause = match err {
        FlowError::Failed(e)
        | FlowError::NoAnswer(e)
        | FlowError::InvalidConfig {
            source: Some(e), ..
        }
        | FlowError::Transient { source: e, .. }
        | FlowError::LoginRequired {
            source: Some(e), ..
        } => e,
        other => panic!("expected a token error, got {other:?}"),
    };
    *cause
        .downcast::<TokenError>()
        .unwrap_or_else(|e| panic!("expected a token error, got {e:?}"))
}

#[tokio::test]
async fn each_bad_response_has_its_typed_error_and_leaks_nothing() {
    let provider = TestProvider::start().await;
    type Check = fn(&TokenError) -> bool;
    let cases: Vec<(&str, Scripted, Check)> = vec![
        (
            "400 JSON error",
            Scripted::Json(
                400,
                json!({"error":"invalid_grant","error_description":"code expired"}),
            ),
            |e| matches!(e, TokenError::Provider(p) if p.kind == ErrorKind::InvalidGrant && p.status == 400),
        ),
        (
            "401 invalid_client",
            Scripted::Json(401, json!({"error":"invalid_client"})),
            |e| matches!(e, TokenError::Provider(p) if p.kind == ErrorKind::InvalidClient),
        ),
        (
            "error inside HTTP 200",
            Scripted::Json(
                200,
                json!({"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}),
            ),
            |e| matches!(e, TokenError::Provider(p) if p.code == "bad_verification_code" && p.status == 200),
        ),
        (
            "HTML 500",
            raw(500, Some("text/html"), &format!("<html>{PLANTED}</html>")),
            |e| matches!(e, TokenError::Status { status: 500, content_type: Some(c) } if c == "text/html"),
        ),
        ("empty 502", raw(502, None, ""), |e| {
            matches!(e, TokenError::Status { status: 502, .. })
        }),
        (
            "429 with Retry-After",
            Scripted::Raw {
                status: 429,
                content_type: None,
                headers: vec![("retry-after", "7".into())],
                body: vec![],
            },
            |e| matches!(e, TokenError::Unavailable { status: 429, retry_after: Some(d) } if *d == Duration::from_secs(7)),
        ),
        (
            "503 with Retry-After",
            Scripted::Raw {
                status: 503,
                content_type: Some("text/plain"),
                headers: vec![("retry-after", "30".into())],
                body: b"busy".to_vec(),
            },
            |e| {
                matches!(
                    e,
                    TokenError::Unavailable {
                        status: 503,
                        retry_after: Some(_)
                    }
                )
            },
        ),
        (
            "non-JSON 200",
            raw(200, Some("text/plain"), &format!("access_token {PLANTED}")),
            |e| matches!(e, TokenError::NotJson { .. }),
        ),
        (
            "null body",
            raw(200, Some("application/json"), "null"),
            |e| matches!(e, TokenError::NotObject { found: "null" }),
        ),
        (
            "array body",
            raw(200, Some("application/json"), &format!("[\"{PLANTED}\"]")),
            |e| matches!(e, TokenError::NotObject { found: "an array" }),
        ),
        (
            "truncated JSON",
            raw(
                200,
                Some("application/json"),
                &format!("{{\"access_token\":\"{PLANTED}\","),
            ),
            |e| matches!(e, TokenError::NotJson { .. }),
        ),
        (
            "token_type mac",
            Scripted::Json(200, json!({"access_token":PLANTED,"token_type":"mac"})),
            |e| matches!(e, TokenError::UnsupportedTokenType(t) if t == "mac"),
        ),
        (
            "no token_type",
            Scripted::Json(200, json!({"access_token":PLANTED})),
            |e| {
                matches!(
                    e,
                    TokenError::Missing {
                        field: "token_type"
                    }
                )
            },
        ),
        (
            "no access_token",
            Scripted::Json(200, json!({"token_type":"bearer","refresh_token":PLANTED})),
            |e| {
                matches!(
                    e,
                    TokenError::Missing {
                        field: "access_token"
                    }
                )
            },
        ),
        (
            "empty access_token",
            Scripted::Json(200, json!({"access_token":"","token_type":"bearer"})),
            |e| {
                matches!(
                    e,
                    TokenError::Invalid {
                        field: "access_token",
                        ..
                    }
                )
            },
        ),
        (
            "CR/LF in access_token",
            Scripted::Json(
                200,
                json!({"access_token":format!("{PLANTED}\r\nX-Evil: 1"),"token_type":"bearer"}),
            ),
            |e| {
                matches!(
                    e,
                    TokenError::Invalid {
                        field: "access_token",
                        ..
                    }
                )
            },
        ),
        (
            "absurdly long access_token",
            Scripted::Json(
                200,
                json!({"access_token":PLANTED.repeat(2000),"token_type":"bearer"}),
            ),
            |e| {
                matches!(
                    e,
                    TokenError::Invalid {
                        field: "access_token",
                        ..
                    }
                )
            },
        ),
        (
            "access_token not a string",
            Scripted::Json(
                200,
                json!({"access_token":{"v":PLANTED},"token_type":"bearer"}),
            ),
            |e| {
                matches!(
                    e,
                    TokenError::Invalid {
                        field: "access_token",
                        ..
                    }
                )
            },
        ),
        (
            "expires_in garbage",
            Scripted::Json(
                200,
                json!({"access_token":PLANTED,"token_type":"bearer","expires_in":"soon"}),
            ),
            |e| {
                matches!(
                    e,
                    TokenError::Invalid {
                        field: "expires_in",
                        ..
                    }
                )
            },
        ),
        ("307 redirect", Scripted::RedirectToSink(307), |e| {
            matches!(e, TokenError::Redirect { status: 307 })
        }),
        ("302 redirect", Scripted::RedirectToSink(302), |e| {
            matches!(e, TokenError::Redirect { status: 302 })
        }),
        ("128 MiB body", Scripted::Endless(128 * 1024 * 1024), |e| {
            matches!(e, TokenError::Http(HttpError::TooLarge { .. }))
        }),
        ("hanging server", Scripted::Hang, |e| {
            matches!(e, TokenError::Http(HttpError::Timeout { .. }))
        }),
        ("a byte a second", Scripted::Trickle, |e| {
            matches!(e, TokenError::Http(HttpError::Timeout { .. }))
        }),
    ];
    for (name, scripted, check) in cases {
        let started = Instant::now();
        let (err, secrets) = exchange_with(&provider, scripted).await;
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secrets(&err, &secrets);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} took {:?}",
            started.elapsed()
        );
        let err = token_error(err);
        assert!(check(&err), "{name}: unexpected {err:?}");
    }
    assert_eq!(
        provider.sink_hits(),
        0,
        "a redirect target must receive nothing"
    );
}

#[tokio::test]
async fn odd_but_valid_responses_are_accepted() {
    let provider = TestProvider::start().await;
    let cases = [
        (
            json!({"access_token":"a1","token_type":"BEARER","expires_in":"3600"}),
            Some(3600),
        ),
        (
            json!({"access_token":"a2","token_type":"bearer","expires_in":59.9}),
            Some(59),
        ),
        // Zero and negative lifetimes are "unknown", never "expired now" (no refresh storm).
        (
            json!({"access_token":"a3","token_type":"bearer","expires_in":0}),
            None,
        ),
        (
            json!({"access_token":"a4","token_type":"bearer","expires_in":-100}),
            None,
        ),
        // Absurd lifetimes never panic: the expiry is simply unknown.
        (
            json!({"access_token":"a5","token_type":"bearer","expires_in":1e300}),
            None,
        ),
        (
            json!({"access_token":"a6","token_type":"bearer","expires_in":"99999999999999999999"}),
            None,
        ),
    ];
    for (body, want_secs) in cases {
        let flow = flow(&provider);
        provider.script([Scripted::Json(200, body.clone())]);
        let (pending, _, query) = approved(&flow).await;
        let cred = flow
            .exchange(pending, ExchangeInput::from_query(&query))
            .await;
        let cred = cred.unwrap_or_else(|e| panic!("{body}: {e}"));
        let token = cred.as_oauth2().unwrap();
        let got = token
            .expires_at
            .map(|at| (at - chrono::Utc::now()).num_seconds() + 1);
        match want_secs {
            Some(s) => assert!(
                got.is_some_and(|g| (s - 5..=s).contains(&g)),
                "{body}: {got:?}"
            ),
            None => assert_eq!(got, None, "{body}"),
        }
        // Scopes absent: the requested ones are recorded.
        assert_eq!(token.scopes, vec!["read", "write"], "{body}");
    }
}

#[tokio::test]
async fn form_encoded_token_responses_are_understood() {
    let provider = TestProvider::start().await;
    provider.script([raw(
        200,
        Some("application/x-www-form-urlencoded"),
        "access_token=form-token&token_type=bearer&scope=repo%2Cgist",
    )]);
    let cred = login(&flow(&provider)).await;
    let Credential::OAuth2(token) = cred else {
        panic!()
    };
    assert_eq!(token.access_token.expose(), "form-token");
    assert_eq!(token.scopes, vec!["repo", "gist"]);
}

#[tokio::test]
async fn refresh_errors_are_typed_too() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider);
    let credential = login(&flow).await;
    let rt = credential
        .as_oauth2()
        .unwrap()
        .refresh_token
        .clone()
        .unwrap();
    provider.script([Scripted::RedirectToSink(307)]);
    let err = flow.refresh(&credential).await.unwrap_err();
    assert_no_secrets(&err, &[rt.expose(), CLIENT_SECRET]);
    assert!(matches!(
        token_error(err),
        TokenError::Redirect { status: 307 }
    ));
    assert_eq!(provider.sink_hits(), 0);

    let no_refresh = Credential::OAuth2(host::OAuth2Token::bearer(host::SecretString::new("x")));
    let err = flow.refresh(&no_refresh).await.unwrap_err();
    assert!(
        matches!(err, FlowError::LoginRequired { source: None, .. }) && err.needs_login(),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_fast_and_cleanly() {
    let (port, _held) = crate::support::closed_port();
    let provider = TestProvider::start().await;
    let flow = crate::support::flow_with(&provider, |app| {
        app["token_url"] = json!(format!("http://127.0.0.1:{port}/token"));
    });
    let (pending, _, query) = approved(&flow).await;
    let err = flow
        .exchange(pending, ExchangeInput::from_query(&query))
        .await
        .unwrap_err();
    // Worth retrying, and it says so by its kind; its causes go down to the OS error.
    assert!(matches!(err, FlowError::Transient { .. }), "{err:?}");
    let os = err
        .find_cause::<std::io::Error>()
        .expect("the OS error is still in the chain");
    assert_eq!(os.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(matches!(
        token_error(err),
        TokenError::Http(HttpError::Connect { .. })
    ));
}

/// Token endpoints over https are checked against the platform's roots (read only when a TLS
/// connection is made): a server signed by an unknown CA gets no request, and the same server
/// is trusted once `SSL_CERT_FILE` names its CA — through the real binary, as users run it.
#[tokio::test]
async fn https_token_endpoints_are_verified_against_the_platform_roots() {
    let env = crate::support::HostEnv::start().await;
    env.login_ok().await;
    let before =
        env.stored("github", "default").await.unwrap()["credential"]["access_token"].clone();
    let tls = host_testkit::tls::TlsTokenServer::start().await;
    let refresh = |trust: Option<std::path::PathBuf>| {
        let mut cmd = env.host(&["token", "--provider", "github", "--min-valid", "999999"]);
        cmd.env("HOST_PROVIDERS__GITHUB__TOKEN_URL", tls.url("/token"));
        if let Some(ca) = trust {
            cmd.env("SSL_CERT_FILE", ca);
        }
        async move { cmd.output().await.expect("run host") }
    };

    // The machine's own roots do not include the test CA: the handshake fails and nothing is
    // sent; the token, still valid, is printed with a warning naming the certificate.
    let out = refresh(None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        before.as_str().unwrap(),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid peer certificate: UnknownIssuer"),
        "the certificate is named as the cause: {stderr}"
    );
    assert_eq!(
        tls.answered(),
        0,
        "no request over an unverified connection"
    );
    assert_eq!(
        env.stored("github", "default").await.unwrap()["credential"]["access_token"],
        before,
        "the stored token is kept"
    );

    // Trusting the CA through the platform's own setting: the refresh goes through.
    let out = refresh(Some(tls.ca_cert())).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "tls-token-1");
    assert_eq!(tls.answered(), 1);
}

#[tokio::test]
async fn a_refresh_answer_refused_for_its_shape_hands_back_the_refresh_token_it_carried() {
    let provider = TestProvider::start().await;
    let flow = flow(&provider);
    let credential = login(&flow).await;
    let sent = credential
        .as_oauth2()
        .unwrap()
        .refresh_token
        .clone()
        .unwrap();
    for (i, answer) in [
        json!({"access_token": "at-shape", "refresh_token": "rt-carried-1", "token_type": "bearer", "expires_in": ""}),
        json!({"access_token": "at-shape", "refresh_token": "rt-carried-2", "expires_in": 3600}),
        json!({"access_token": "at-shape", "refresh_token": "rt-carried-3", "token_type": "bearer", "scope": {"a": 1}}),
        json!({"refresh_token": "rt-carried-4", "token_type": "bearer"}),
    ]
    .into_iter()
    .enumerate()
    {
        provider.script([Scripted::Json(200, answer.clone())]);
        let err = flow.refresh(&credential).await.unwrap_err();
        let FlowError::RefreshRefused { refresh_token, source } = &err else {
            panic!("{answer}: {err:?}")
        };
        assert_eq!(refresh_token.expose(), format!("rt-carried-{}", i + 1));
        assert!(!source.needs_login(), "{answer}: {source:?}");
        assert_no_secrets(&err, &[sent.expose(), refresh_token.expose(), CLIENT_SECRET]);
    }
    // An answer without a usable refresh token is refused as it was.
    provider.script([Scripted::Json(
        200,
        json!({"access_token": "at-shape", "refresh_token": 7, "expires_in": ""}),
    )]);
    let err = flow.refresh(&credential).await.unwrap_err();
    assert!(!matches!(err, FlowError::RefreshRefused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_error_key_that_is_null_or_empty_is_no_error() {
    let provider = TestProvider::start().await;
    for error in [json!(null), json!("")] {
        provider.script([Scripted::Json(
            200,
            json!({"access_token": "at-ok", "token_type": "bearer", "expires_in": 3600, "error": error}),
        )]);
        let credential = login(&flow(&provider)).await;
        assert_eq!(
            credential.as_oauth2().unwrap().access_token.expose(),
            "at-ok",
            "{error}"
        );
    }
}
