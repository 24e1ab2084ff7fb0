//! Test support for host's end-to-end tests: a real OAuth2 provider on `127.0.0.1:0` that
//! behaves well, or badly on demand.
//!
//! The provider implements the authorization endpoint (it "approves" at once and redirects back
//! with a code, as a browser would see it) and the token endpoint (authorization code with PKCE
//! S256 verification, refresh with rotation). Scripted responses replace the next token
//! responses to play a hostile or broken provider: errors inside HTTP 200, HTML 500s, bodies
//! that never end, servers that hang, redirects to a second endpoint (`/sink`) whose hits are
//! counted.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub mod python;

/// Paths of the test guest components built by `build.rs`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// The client id the provider knows.
pub const CLIENT_ID: &str = "test-client";
/// The grant type of a device poll.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The user code the device endpoint hands out.
pub const USER_CODE: &str = "WDJB-MJHT";

/// The API key `/api/keycheck` accepts.
pub const VALID_API_KEY: &str = "key-0123456789abcdef";

/// The client secret the provider knows.
pub const CLIENT_SECRET: &str = "test-secret-c0ffee";

/// A scripted token-endpoint response, used once instead of the real logic.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// A JSON body with a status.
    Json(u16, Value),
    /// Any body with a status, a content type and extra headers.
    Raw {
        /// The status.
        status: u16,
        /// The `Content-Type`, if any.
        content_type: Option<&'static str>,
        /// Extra headers.
        headers: Vec<(&'static str, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// A redirect to this provider's `/sink`.
    RedirectToSink(u16),
    /// Never answers (sleeps an hour).
    Hang,
    /// Sends headers, then one byte a second forever.
    Trickle,
    /// A body of this many bytes, with no `Content-Length` (streamed).
    Endless(usize),
}

/// One request the token endpoint received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// When it arrived.
    pub at: std::time::Instant,
    /// The form parameters.
    pub form: HashMap<String, String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
}

impl TokenRequest {
    /// The client id and secret from HTTP Basic, decoded.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let encoded = self.authorization.as_deref()?.strip_prefix("Basic ")?;
        let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    }
}

struct Grant {
    challenge: String,
    redirect_uri: Option<String>,
    scope: Option<String>,
}

#[derive(Default)]
struct Inner {
    grants: Mutex<HashMap<String, Grant>>,
    refresh_tokens: Mutex<HashMap<String, Option<String>>>,
    script: Mutex<VecDeque<Scripted>>,
    requests: Mutex<Vec<TokenRequest>>,
    sink_hits: AtomicUsize,
    counter: AtomicU64,
    /// Seconds the next issued tokens live.
    ttl: AtomicU64,
    /// Whether refresh responses carry a new refresh token.
    rotate: std::sync::atomic::AtomicBool,
    /// Scopes are returned comma-separated (as GitHub does).
    comma_scopes: std::sync::atomic::AtomicBool,
    /// Device codes issued, with the scope asked for.
    device_codes: Mutex<HashMap<String, Option<String>>>,
    /// The polling interval the device endpoint announces.
    device_interval: AtomicU64,
    /// Answers in Slack's shape.
    slack: std::sync::atomic::AtomicBool,
    /// Access tokens issued and not revoked.
    access_tokens: Mutex<Vec<String>>,
    /// Tokens revoked, through either API, in order.
    revoked: Mutex<Vec<String>>,
    /// Milliseconds every refresh request waits before it is answered.
    refresh_delay_ms: AtomicU64,
    /// The `Authorization` headers `/api/landing` received (empty string: none).
    landings: Mutex<Vec<String>>,
    /// The API refuses every token, fresh ones too (an app whose access was withdrawn).
    api_refuses: std::sync::atomic::AtomicBool,
}

/// The test OAuth2 provider, serving until dropped.
pub struct TestProvider {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProvider {
    /// Starts the provider on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        inner.ttl.store(3600, Ordering::SeqCst);
        inner.rotate.store(true, Ordering::SeqCst);
        inner.device_interval.store(1, Ordering::SeqCst);
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/sink", any(sink))
            .route("/revoke", post(revoke))
            .route("/device/code", post(device_code))
            .route("/device/evil", post(device_evil))
            .route("/api/user", get(user))
            .route("/api/keycheck", get(keycheck))
            .route("/api/items", get(items))
            .route("/api/echo", any(echo))
            .route("/api/away", get(away))
            .route("/api/landing", get(landing))
            .route(
                "/api/applications/{client_id}/token",
                axum::routing::delete(delete_token),
            )
            .with_state(Arc::clone(&inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// App credentials (JSON) for an OAuth2 provider pointed at this server.
    pub fn app_credentials(&self) -> Value {
        json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorize_url": self.url("/authorize"),
            "token_url": self.url("/token"),
            "scopes": ["read", "write"],
        })
    }

    /// Queues scripted responses for the next token requests.
    pub fn script(&self, responses: impl IntoIterator<Item = Scripted>) {
        self.inner.script.lock().unwrap().extend(responses);
    }

    /// Every token request so far.
    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// How often `/sink` was hit.
    pub fn sink_hits(&self) -> usize {
        self.inner.sink_hits.load(Ordering::SeqCst)
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_ttl(&self, seconds: u64) {
        self.inner.ttl.store(seconds, Ordering::SeqCst);
    }

    /// Whether refreshes return a new refresh token.
    pub fn set_rotate(&self, rotate: bool) {
        self.inner.rotate.store(rotate, Ordering::SeqCst);
    }

    /// Returns scopes comma-separated, as GitHub does.
    pub fn set_comma_scopes(&self, on: bool) {
        self.inner.comma_scopes.store(on, Ordering::SeqCst);
    }

    /// Answers token requests as Slack does (token under `authed_user`, errors in HTTP 200).
    pub fn set_slack_shape(&self, on: bool) {
        self.inner.slack.store(on, Ordering::SeqCst);
    }

    /// The tokens revoked so far (RFC 7009 or GitHub's deletion API), in order.
    pub fn revoked(&self) -> Vec<String> {
        self.inner.revoked.lock().unwrap().clone()
    }

    /// How many refresh requests the token endpoint received.
    pub fn refresh_count(&self) -> usize {
        self.token_requests()
            .iter()
            .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
            .count()
    }

    /// The device polls (token requests with the device grant) so far.
    pub fn device_polls(&self) -> Vec<TokenRequest> {
        self.token_requests()
            .into_iter()
            .filter(|r| r.form.get("grant_type").map(String::as_str) == Some(DEVICE_GRANT))
            .collect()
    }

    /// Makes every refresh request wait this long before it is answered (a slow provider, to
    /// open race windows).
    pub fn set_refresh_delay(&self, delay: Duration) {
        self.inner
            .refresh_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many refresh tokens are live (issued, not used up by rotation, not revoked).
    pub fn live_refresh_tokens(&self) -> usize {
        self.inner.refresh_tokens.lock().unwrap().len()
    }

    /// The `Authorization` headers the redirect target `/api/landing` received (an empty
    /// string for a request without one).
    pub fn landings(&self) -> Vec<String> {
        self.inner.landings.lock().unwrap().clone()
    }

    /// Makes the API (`/api/items`, `/api/echo`) answer 401 to every token, fresh ones too.
    pub fn set_api_refuses(&self, on: bool) {
        self.inner.api_refuses.store(on, Ordering::SeqCst);
    }

    /// Forgets every access token (as if the user revoked them on the provider's website).
    pub fn revoke_access_tokens(&self) {
        self.inner.access_tokens.lock().unwrap().clear();
    }

    /// Forgets every refresh token (as if the user revoked the app).
    pub fn revoke_all(&self) {
        self.inner.refresh_tokens.lock().unwrap().clear();
    }
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("response_type").map(String::as_str) != Some("code")
        || q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let (Some(challenge), Some(state)) = (q.get("code_challenge"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "missing challenge or state").into_response();
    };
    let code = format!("code-{}", inner.counter.fetch_add(1, Ordering::SeqCst));
    inner.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge: challenge.clone(),
            redirect_uri: q.get("redirect_uri").cloned(),
            scope: q.get("scope").or_else(|| q.get("user_scope")).cloned(),
        },
    );
    let Some(redirect) = q.get("redirect_uri") else {
        return (StatusCode::OK, format!("code={code}")).into_response();
    };
    let mut url = url::Url::parse(redirect).expect("redirect uri");
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

async fn sink(State(inner): State<Arc<Inner>>) -> Response {
    inner.sink_hits.fetch_add(1, Ordering::SeqCst);
    Json(json!({"access_token": "stolen", "token_type": "bearer"})).into_response()
}

use axum::Json;

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": format!("test provider: {code}")})),
    )
        .into_response()
}

async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = TokenRequest {
        at: std::time::Instant::now(),
        form: form.clone(),
        authorization,
    };
    inner.requests.lock().unwrap().push(request.clone());
    let delay = inner.refresh_delay_ms.load(Ordering::SeqCst);
    if delay > 0 && form.get("grant_type").map(String::as_str) == Some("refresh_token") {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let scripted = inner.script.lock().unwrap().pop_front();
    if let Some(s) = scripted {
        return scripted_response(s);
    }
    let (id, secret) = match request.basic_auth() {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if id != CLIENT_ID || secret != CLIENT_SECRET {
        return token_error(&inner, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let scope = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let grant = form
                .get("code")
                .and_then(|c| inner.grants.lock().unwrap().remove(c));
            let Some(grant) = grant else {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if computed != grant.challenge
                || grant.redirect_uri != form.get("redirect_uri").cloned()
            {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            }
            grant.scope
        }
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let known = if inner.rotate.load(Ordering::SeqCst) {
                inner.refresh_tokens.lock().unwrap().remove(&rt)
            } else {
                inner.refresh_tokens.lock().unwrap().get(&rt).cloned()
            };
            let Some(scope) = known else {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            scope
        }
        Some(DEVICE_GRANT) => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some(scope) = inner.device_codes.lock().unwrap().remove(&code) else {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            scope
        }
        _ => return token_error(&inner, StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let n = inner.counter.fetch_add(1, Ordering::SeqCst);
    let mut body = json!({
        "access_token": format!("at-{n}"),
        "token_type": "Bearer",
        "expires_in": inner.ttl.load(Ordering::SeqCst),
    });
    if let Some(scope) = &scope {
        let scope = if inner.comma_scopes.load(Ordering::SeqCst) {
            scope.replace(' ', ",")
        } else {
            scope.clone()
        };
        body["scope"] = Value::String(scope);
    }
    let is_refresh = form.get("grant_type").map(String::as_str) == Some("refresh_token");
    if !is_refresh || inner.rotate.load(Ordering::SeqCst) {
        let rt = format!("rt-{n}");
        inner
            .refresh_tokens
            .lock()
            .unwrap()
            .insert(rt.clone(), scope);
        body["refresh_token"] = Value::String(rt);
    }
    inner.access_tokens.lock().unwrap().push(format!("at-{n}"));
    if inner.slack.load(Ordering::SeqCst) {
        // Slack's oauth.v2.access: the user token nested under `authed_user`, the team beside.
        let mut user = body;
        user["token_type"] = Value::String("user".into());
        user["id"] = Value::String("U0123".into());
        let wrapped = json!({
            "ok": true,
            "app_id": "A0123",
            "team": {"id": "T0123", "name": "Acme Corp"},
            "authed_user": user,
        });
        return Json(wrapped).into_response();
    }
    Json(body).into_response()
}

/// An OAuth2 error, or Slack's `{"ok": false, "error": …}` with HTTP 200 in Slack mode.
fn token_error(inner: &Inner, status: StatusCode, code: &str) -> Response {
    if inner.slack.load(Ordering::SeqCst) {
        return Json(json!({"ok": false, "error": code})).into_response();
    }
    oauth_error(status, code)
}

fn client_authenticated(headers: &HeaderMap, form: Option<&HashMap<String, String>>) -> bool {
    let request = TokenRequest {
        at: std::time::Instant::now(),
        form: form.cloned().unwrap_or_default(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let pair = request.basic_auth().or_else(|| {
        Some((
            request.form.get("client_id")?.clone(),
            request.form.get("client_secret")?.clone(),
        ))
    });
    pair == Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned()))
}

/// RFC 7009 revocation.
async fn revoke(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.requests.lock().unwrap().push(TokenRequest {
        at: std::time::Instant::now(),
        form: form.clone(),
        authorization: None,
    });
    if let Some(s) = inner.script.lock().unwrap().pop_front() {
        return scripted_response(s);
    }
    if !client_authenticated(&headers, Some(&form)) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token = form.get("token").cloned().unwrap_or_default();
    inner.refresh_tokens.lock().unwrap().remove(&token);
    inner.access_tokens.lock().unwrap().retain(|t| *t != token);
    inner.revoked.lock().unwrap().push(token);
    StatusCode::OK.into_response()
}

/// GitHub's `GET /user`, answering the login for a live access token.
async fn user(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if live_bearer(&inner, &headers) {
        Json(json!({"login": "octocat", "id": 1})).into_response()
    } else {
        bad_credentials()
    }
}

/// The API's answer to a token it does not accept.
fn bad_credentials() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

/// The device authorization endpoint (RFC 8628 §3.2).
async fn device_code(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !client_authenticated(&headers, Some(&form))
        && form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let n = inner.counter.fetch_add(1, Ordering::SeqCst);
    let device_code = format!("dc-{n}");
    inner
        .device_codes
        .lock()
        .unwrap()
        .insert(device_code.clone(), form.get("scope").cloned());
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    Json(json!({
        "device_code": device_code,
        "user_code": USER_CODE,
        "verification_uri": format!("http://{host}/device"),
        "verification_uri_complete": format!("http://{host}/device?user_code={USER_CODE}"),
        "expires_in": 900,
        "interval": inner.device_interval.load(Ordering::SeqCst),
    }))
    .into_response()
}

/// A hostile device endpoint: terminal escape sequences in what is shown to the user.
async fn device_evil() -> Response {
    Json(json!({
        "device_code": "dc-evil",
        "user_code": "\u{1b}]0;pwned\u{7}\u{1b}[2JABCD-EFGH",
        "verification_uri": "https://example.com/device\u{1b}[31m",
        "expires_in": 900,
        "interval": 1,
    }))
    .into_response()
}

/// An API that accepts one key: `Authorization: Bearer VALID_API_KEY`.
/// Whether the request carries a live access token as a bearer token.
fn live_bearer(inner: &Inner, headers: &HeaderMap) -> bool {
    if inner.api_refuses.load(Ordering::SeqCst) {
        return false;
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    inner
        .access_tokens
        .lock()
        .unwrap()
        .iter()
        .any(|t| t == token)
}

/// A paginated API: `?page=N` (1 to 3) answers `[2N-1, 2N]`, with a `Link` to the next page.
async fn items(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !live_bearer(&inner, &headers) {
        return bad_credentials();
    }
    let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut response = Json(json!([page * 2 - 1, page * 2])).into_response();
    if page < 3 {
        let link = format!("<http://{host}/api/items?page={}>; rel=\"next\"", page + 1);
        response
            .headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    response
}

/// Echoes the method, the query and the body of an authenticated request.
async fn echo(
    State(inner): State<Arc<Inner>>,
    method: axum::http::Method,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    if !live_bearer(&inner, &headers) {
        return bad_credentials();
    }
    let body: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Json(json!({"method": method.as_str(), "query": q, "body": body})).into_response()
}

/// Redirects to `/api/landing` on another origin (`localhost` instead of `127.0.0.1`).
async fn away(headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .replace("127.0.0.1", "localhost");
    Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, format!("http://{host}/api/landing"))
        .body(Body::empty())
        .unwrap()
}

/// Records the `Authorization` header a redirected request arrived with.
async fn landing(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    inner.landings.lock().unwrap().push(auth);
    Json(json!({"landed": true})).into_response()
}

async fn keycheck(headers: HeaderMap) -> Response {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {VALID_API_KEY}"));
    if ok {
        Json(json!({"ok": true})).into_response()
    } else {
        (StatusCode::UNAUTHORIZED, Json(json!({"error": "bad key"}))).into_response()
    }
}

/// GitHub's `DELETE /applications/{client_id}/token`.
async fn delete_token(
    State(inner): State<Arc<Inner>>,
    axum::extract::Path(client_id): axum::extract::Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(s) = inner.script.lock().unwrap().pop_front() {
        return scripted_response(s);
    }
    if client_id != CLIENT_ID || !client_authenticated(&headers, None) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let token = body["access_token"].as_str().unwrap_or_default().to_owned();
    let known = inner.access_tokens.lock().unwrap().contains(&token);
    inner.access_tokens.lock().unwrap().retain(|t| *t != token);
    inner.revoked.lock().unwrap().push(token);
    if known {
        StatusCode::NO_CONTENT.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

fn scripted_response(s: Scripted) -> Response {
    match s {
        Scripted::Json(status, body) => {
            (StatusCode::from_u16(status).expect("status"), Json(body)).into_response()
        }
        Scripted::Raw {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut r = Response::builder().status(status);
            if let Some(ct) = content_type {
                r = r.header(header::CONTENT_TYPE, ct);
            }
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(body)).expect("response")
        }
        Scripted::RedirectToSink(status) => Response::builder()
            .status(status)
            .header(header::LOCATION, "/sink")
            .body(Body::empty())
            .expect("response"),
        Scripted::Hang => Response::builder()
            .body(Body::from_stream(futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, std::io::Error>(Vec::<u8>::new())
            })))
            .expect("response"),
        Scripted::Trickle => {
            let stream = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some((Ok::<_, std::io::Error>(b"{".to_vec()), ()))
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Scripted::Endless(total) => {
            let chunk = vec![b' '; 64 * 1024];
            let stream = futures_util::stream::unfold(0usize, move |sent| {
                let chunk = chunk.clone();
                async move {
                    (sent < total)
                        .then(|| (Ok::<_, std::io::Error>(chunk.clone()), sent + chunk.len()))
                }
            });
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .expect("response")
        }
    }
}

/// Plays the user's browser: follows the authorization URL and returns the query string the
/// provider redirected back with (the callback's parameters), without contacting the redirect
/// URI itself.
pub async fn approve(authorization_url: &str) -> String {
    let client = reqwest_client();
    let response = client
        .get(authorization_url)
        .send()
        .await
        .expect("authorize request");
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "the provider must redirect back"
    );
    let location = response.headers()[header::LOCATION]
        .to_str()
        .expect("location")
        .to_owned();
    url::Url::parse(&location)
        .expect("location url")
        .query()
        .unwrap_or_default()
        .to_owned()
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client")
}
