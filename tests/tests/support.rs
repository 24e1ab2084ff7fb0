//! Helpers shared by the tests.

use std::time::Duration;

use host::credentials::RawAppCredentials;
use host::flow::{AuthFlow, AuthorizeRequest, Credential, ExchangeInput, Interaction};
use host::http::{HttpClient, HttpPolicy};
use host::oauth2::{OAuth2AppCredentials, OAuth2Flow, StandardToken};
use host_e2e::TestProvider;
use serde_json::Value;

/// The redirect URI the tests claim (nothing listens there: the test "browser" stops at the
/// provider's redirect).
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// Tight limits so hanging or trickling servers fail within seconds.
pub(crate) fn tight_http() -> HttpClient {
    let mut policy = HttpPolicy::default();
    policy.connect_timeout = Duration::from_secs(2);
    policy.timeout = Duration::from_secs(2);
    policy.max_body = 64 * 1024;
    HttpClient::new(policy).expect("client")
}

/// An OAuth2 flow against the test provider, with app credentials patched by `patch`.
pub(crate) fn flow_with(provider: &TestProvider, patch: impl FnOnce(&mut Value)) -> OAuth2Flow {
    let mut app = provider.app_credentials();
    patch(&mut app);
    let app: OAuth2AppCredentials = RawAppCredentials::from_code("test", app)
        .parse()
        .expect("valid app credentials");
    OAuth2Flow::with_class("test", app, StandardToken, tight_http()).expect("flow")
}

/// An OAuth2 flow against the test provider.
pub(crate) fn flow(provider: &TestProvider) -> OAuth2Flow {
    flow_with(provider, |_| {})
}

/// Runs authorize → approve (the test browser) → exchange.
pub(crate) async fn login(flow: &dyn AuthFlow) -> Credential {
    let auth = flow
        .authorize(AuthorizeRequest::with_redirect(REDIRECT))
        .await
        .expect("authorize");
    let Interaction::Redirect { url } = auth.interaction else {
        panic!("expected a redirect")
    };
    let query = host_e2e::approve(&url).await;
    flow.exchange(auth.pending, ExchangeInput::from_query(&query))
        .await
        .expect("exchange")
}

/// Asserts that neither `Display` nor `Debug` of `value` shows any of `secrets`.
pub(crate) fn assert_no_secrets<E: std::fmt::Display + std::fmt::Debug>(
    value: &E,
    secrets: &[&str],
) {
    let shown = format!("{value} / {value:?}");
    for s in secrets {
        assert!(!shown.contains(s), "secret {s:?} leaked into: {shown}");
    }
}

/// Asserts that `Debug` of `value` shows none of `secrets`.
pub(crate) fn assert_debug_no_secrets<T: std::fmt::Debug>(value: &T, secrets: &[&str]) {
    let shown = format!("{value:?}");
    for s in secrets {
        assert!(!shown.contains(s), "secret {s:?} leaked into: {shown}");
    }
}
