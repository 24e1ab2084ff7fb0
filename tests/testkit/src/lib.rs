//! Test support for host's end-to-end tests: a real OAuth2 provider on `127.0.0.1:0` that
//! behaves well, or badly on demand.
//!
//! The provider implements the authorization endpoint (it "approves" at once and redirects back
//! with a code, as a browser would see it) and the token endpoint (authorization code with PKCE
//! S256 verification, refresh with rotation). Scripted responses replace the next token
//! responses to play a hostile or broken provider: errors inside HTTP 200, HTML 500s, bodies
//! that never end, servers that hang, redirects to a second endpoint (`/sink`) whose hits are
//! counted.
//!
//! It is also a minimal OpenID Connect provider: discovery (`/.well-known/openid-configuration`),
//! a JWKS (`/jwks`) whose RSA key can be rotated, signed `id_token`s (RS256, ES256 or EdDSA, with
//! the fixed test keys in `tests/testkit/keys/`) for grants whose scope holds `openid`, the
//! RFC 9207 `iss` callback parameter, `/api/userinfo`, and forged or broken `id_token`s on demand
//! ([`IdTokenFault`]). Or a plain OAuth2 server with RFC 8414 metadata
//! ([`TestProvider::set_plain_oauth2`]).
//!
//! For clients without a user (`machine.rs`): JWT client authentication (`client_secret_jwt`,
//! `private_key_jwt` with keys from [`test_key`] registered by
//! [`TestProvider::register_client_key`]) at the token and revocation endpoints, the client
//! credentials, JWT bearer (RFC 7523) and token exchange (RFC 8693) grants, and a stand-in for
//! GitHub Actions' OIDC token endpoint ([`TestProvider::actions_env`]), all verified strictly,
//! every refusal saying why.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

mod der;
mod inputs;
pub mod javascript;
mod keys;
mod machine;
pub mod pg;
pub mod python;
pub mod tls;

pub use keys::{KeyKind, TestKey, test_key};
pub use machine::{
    ACCESS_TOKEN_TYPE, ACTIONS_DEFAULT_AUDIENCE, ACTIONS_SUBJECT, CLIENT_ASSERTION_TYPE,
    CLIENT_CREDENTIALS_GRANT, ClientAuthMethod, ID_TOKEN_TYPE, JWT_BEARER_GRANT, JWT_TOKEN_TYPE,
    MachineGrant, SERVICE_ACCOUNT_EMAIL, SeenAssertion, TOKEN_EXCHANGE_GRANT,
};

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

/// The `kid` of the forged `id_token`s of [`IdTokenFault::UnknownKid`]: never published.
pub const ROGUE_KID: &str = "rogue-1";

/// The subject (`sub`) of every `id_token` and of `/api/userinfo`.
pub const SUBJECT: &str = "user-1";

/// A broken or forged `id_token`, for every `id_token` issued while it is set
/// ([`TestProvider::set_id_token_fault`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTokenFault {
    /// A good `id_token`.
    #[default]
    None,
    /// RS256, signed by the unpublished rogue key but with the `kid` of the published RSA key.
    BadSignature,
    /// `aud` is `"someone-else"`.
    WrongAudience,
    /// `nonce` is `"wrong-nonce"` (on every grant, refreshes too).
    WrongNonce,
    /// `exp` an hour ago, `iat` two hours ago.
    Expired,
    /// RS256, signed by the rogue key, with `kid` [`ROGUE_KID`], which is never published.
    UnknownKid,
    /// `iss` is `"https://issuer.invalid"`.
    WrongIssuer,
    /// `at_hash` is the hash of another string than the access token.
    BadAtHash,
    /// No `nonce` claim, even when the authorization request had one.
    NoNonce,
    /// `aud` is `[CLIENT_ID, "other"]`, with no `azp`.
    MultipleAudiencesNoAzp,
    /// A good `id_token` about another user: `sub` is [`OTHER_SUBJECT`].
    OtherSubject,
}

/// Refreshes held by the test provider ([`TestProvider::hold_refreshes`]); dropped, it lets
/// every held refresh go and holds no more.
pub struct RefreshHold {
    arrived: tokio::sync::mpsc::UnboundedReceiver<String>,
    permits: Arc<tokio::sync::Semaphore>,
    inner: Arc<Inner>,
}

impl Drop for RefreshHold {
    fn drop(&mut self) {
        *self.inner.refresh_gate.lock().unwrap() = None;
        self.permits
            .add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    }
}

impl RefreshHold {
    /// Waits until a refresh has been looked up and issued its tokens (at most a minute);
    /// returns the new access token it is holding.
    pub async fn arrived(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(60), self.arrived.recv())
            .await
            .expect("a refresh arrives within a minute")
            .expect("the provider is running")
    }

    /// Lets one held refresh answer.
    pub fn release(&self) {
        self.permits.add_permits(1);
    }
}

/// The `sub` of [`IdTokenFault::OtherSubject`]'s `id_token`s.
pub const OTHER_SUBJECT: &str = "user-2";

/// The algorithm `id_token`s are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum IdTokenAlg {
    #[default]
    Rs256,
    Es256,
    EdDsa,
}

/// The fixed test keys (private, PEM): RSA in PKCS#1, the others in PKCS#8.
const RSA_1_PEM: &str = include_str!("../keys/rsa-1.pem");
const RSA_2_PEM: &str = include_str!("../keys/rsa-2.pem");
const RSA_ROGUE_PEM: &str = include_str!("../keys/rsa-rogue.pem");
const EC_1_PEM: &str = include_str!("../keys/ec-1.pem");
const ED_1_PEM: &str = include_str!("../keys/ed-1.pem");
/// The public JWKs of every key that may be published (not the rogue key's).
const JWKS_JSON: &str = include_str!("../keys/jwks.json");

/// The DER inside a PEM document.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD.decode(body).expect("PEM fixture")
}

/// The signing key and algorithm of a test key, by name (`rsa-1`, `rsa-2`, `rsa-rogue`, `ec-1`,
/// `ed-1`).
fn signing_key(name: &str) -> (Algorithm, EncodingKey) {
    match name {
        "rsa-1" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&pem_der(RSA_1_PEM)),
        ),
        "rsa-2" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&pem_der(RSA_2_PEM)),
        ),
        "rsa-rogue" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&pem_der(RSA_ROGUE_PEM)),
        ),
        "ec-1" => (
            Algorithm::ES256,
            EncodingKey::from_ec_der(&pem_der(EC_1_PEM)),
        ),
        "ed-1" => (
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(&pem_der(ED_1_PEM)),
        ),
        other => panic!("no test key {other}"),
    }
}

/// The public JWK of a publishable key, by `kid`.
fn public_jwk(kid: &str) -> Value {
    let jwks: Value = serde_json::from_str(JWKS_JSON).expect("jwks.json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .cloned()
        .unwrap_or_else(|| panic!("no published key {kid}"))
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

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
    /// The parameters: the form's, or the JSON object's (`token_request = "json"`).
    pub form: HashMap<String, String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
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
    /// The PKCE S256 challenge; `None` when PKCE is refused and the request had none.
    challenge: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    /// The `nonce` of the authorization request.
    nonce: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// `http://127.0.0.1:PORT`.
    issuer: String,
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
    /// While set ([`TestProvider::hold_refreshes`]): each refresh, its refresh token looked up
    /// and its new tokens issued, says so here and waits for a permit before it answers.
    refresh_gate: Mutex<
        Option<(
            tokio::sync::mpsc::UnboundedSender<String>,
            Arc<tokio::sync::Semaphore>,
        )>,
    >,
    /// The `Authorization` headers `/api/landing` received (empty string: none).
    landings: Mutex<Vec<String>>,
    /// The API refuses every token, fresh ones too (an app whose access was withdrawn).
    api_refuses: std::sync::atomic::AtomicBool,
    /// The client may be public: a token request with the client id and no secret is
    /// accepted (PKCE still protects the code).
    public_client: std::sync::atomic::AtomicBool,
    /// The `issuer` discovery announces instead of the real one.
    discovery_issuer: Mutex<Option<String>>,
    /// Discovery's `Cache-Control: max-age`.
    discovery_max_age: AtomicU64,
    /// Discovery answers 200 with a body that is not JSON.
    discovery_garbage: std::sync::atomic::AtomicBool,
    /// A plain OAuth2 server: no OpenID Connect discovery (404) and no `id_token`s, RFC 8414
    /// metadata instead.
    plain_oauth2: std::sync::atomic::AtomicBool,
    /// How often the RFC 8414 metadata was fetched.
    metadata_hits: AtomicUsize,
    /// Discovery answers with this status instead (0: normally).
    discovery_status: AtomicU64,
    /// Discovery answers `application/json` cut off in the middle.
    discovery_truncated: std::sync::atomic::AtomicBool,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    /// RFC 9207: discovery announces it and the callback carries `iss`.
    iss_parameter: std::sync::atomic::AtomicBool,
    /// The `iss` the callback carries instead of the issuer.
    callback_iss: Mutex<Option<String>>,
    /// RSA signing uses (and the JWKS publishes) `rsa-2` instead of `rsa-1`.
    rsa_rotated: std::sync::atomic::AtomicBool,
    id_token_alg: Mutex<IdTokenAlg>,
    id_token_fault: Mutex<IdTokenFault>,
    /// Every `id_token` issued, in order.
    id_tokens: Mutex<Vec<String>>,
    /// `/authorize` refuses PKCE (and the token endpoint then wants no verifier).
    pkce_rejected: std::sync::atomic::AtomicBool,
    /// `expires_in` is sent as a JSON string.
    string_expires_in: std::sync::atomic::AtomicBool,
    /// The query parameters of every `/authorize` request, in order.
    authorize_requests: Mutex<Vec<HashMap<String, String>>>,
    /// The token and revocation endpoints take only JSON bodies (Notion).
    json_only: std::sync::atomic::AtomicBool,
    /// A public client authenticates with HTTP Basic and an empty password, never with its id
    /// in the body (Reddit's installed apps).
    basic_public: std::sync::atomic::AtomicBool,
    /// The parameters of every device authorization request, in order.
    device_requests: Mutex<Vec<HashMap<String, String>>>,
    /// Client assertions, the non-interactive grants, the GitHub Actions stand-in.
    machine: machine::MachineState,
}

impl Inner {
    /// The `kid` (and key name) of the RSA key in use.
    fn rsa_kid(&self) -> &'static str {
        if self.rsa_rotated.load(Ordering::SeqCst) {
            "rsa-2"
        } else {
            "rsa-1"
        }
    }

    /// The `kid` of the key `id_token`s are signed with now (without faults).
    fn signing_kid(&self) -> &'static str {
        match *self.id_token_alg.lock().unwrap() {
            IdTokenAlg::Rs256 => self.rsa_kid(),
            IdTokenAlg::Es256 => "ec-1",
            IdTokenAlg::EdDsa => "ed-1",
        }
    }

    /// Mints (and records) an `id_token` for this access token, with the current algorithm
    /// and fault.
    fn mint_id_token(&self, access_token: &str, nonce: Option<&str>) -> String {
        let fault = *self.id_token_fault.lock().unwrap();
        let (key_name, kid) = match fault {
            IdTokenFault::BadSignature => ("rsa-rogue", self.rsa_kid()),
            IdTokenFault::UnknownKid => ("rsa-rogue", ROGUE_KID),
            _ => (self.signing_kid(), self.signing_kid()),
        };
        let (alg, key) = signing_key(key_name);
        let hashed = if fault == IdTokenFault::BadAtHash {
            format!("{access_token}-not-this-one")
        } else {
            access_token.to_owned()
        };
        let digest = match alg {
            Algorithm::EdDSA => Sha512::digest(hashed.as_bytes()).to_vec(),
            _ => Sha256::digest(hashed.as_bytes()).to_vec(),
        };
        let at_hash = URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]);
        let now = unix_now();
        let mut claims = json!({
            "iss": self.issuer,
            "sub": SUBJECT,
            "aud": CLIENT_ID,
            "exp": now + self.ttl.load(Ordering::SeqCst),
            "iat": now,
            "at_hash": at_hash,
            "email": "user@example.test",
            "name": "Test User",
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = Value::String(nonce.to_owned());
        }
        match fault {
            IdTokenFault::WrongAudience => claims["aud"] = json!("someone-else"),
            IdTokenFault::OtherSubject => claims["sub"] = json!(OTHER_SUBJECT),
            IdTokenFault::WrongNonce => claims["nonce"] = json!("wrong-nonce"),
            IdTokenFault::Expired => {
                claims["exp"] = json!(now - 3600);
                claims["iat"] = json!(now - 7200);
            }
            IdTokenFault::WrongIssuer => claims["iss"] = json!("https://issuer.invalid"),
            IdTokenFault::NoNonce => {
                claims.as_object_mut().expect("claims").remove("nonce");
            }
            IdTokenFault::MultipleAudiencesNoAzp => claims["aud"] = json!([CLIENT_ID, "other"]),
            IdTokenFault::None
            | IdTokenFault::BadSignature
            | IdTokenFault::UnknownKid
            | IdTokenFault::BadAtHash => {}
        }
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign id_token");
        self.id_tokens.lock().unwrap().push(token.clone());
        token
    }
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let inner = Arc::new(Inner {
            issuer: format!("http://{addr}"),
            ..Inner::default()
        });
        inner.ttl.store(3600, Ordering::SeqCst);
        inner.rotate.store(true, Ordering::SeqCst);
        inner.device_interval.store(1, Ordering::SeqCst);
        inner.discovery_max_age.store(300, Ordering::SeqCst);
        inner.iss_parameter.store(true, Ordering::SeqCst);
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/.well-known/oauth-authorization-server", get(as_metadata))
            .route(
                "/.well-known/oauth-authorization-server/{*path}",
                get(as_metadata_for_path),
            )
            .route("/jwks", get(jwks))
            .route("/api/userinfo", get(userinfo))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/actions/id-token", get(machine::actions_id_token))
            .route("/sink", any(sink))
            .route("/slow", any(slow))
            .route("/revoke", post(revoke))
            .route("/device/code", post(device_code))
            .route("/device/evil", post(device_evil))
            .route("/device/long", post(device_long))
            .route("/api/user", get(user))
            .route("/api/keycheck", get(keycheck))
            .route("/api/shop", get(shop))
            .route("/api/items", get(items))
            .route("/api/echo", any(echo))
            .route("/api/empty", any(empty))
            .route("/api/big", get(big))
            .route("/api/away", get(away))
            .route("/api/landing", get(landing))
            .route(
                "/api/applications/{client_id}/token",
                axum::routing::delete(delete_token),
            )
            .with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The environment of a `host` whose home is `home` and whose built-in github provider
    /// is this server: `HOME`, the XDG folders, the client's id and secret, every endpoint.
    pub fn github_env(&self, home: &std::path::Path) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", home.display().to_string()),
            ("XDG_CONFIG_HOME", home.join("config").display().to_string()),
            ("XDG_DATA_HOME", home.join("data").display().to_string()),
            ("GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            (
                "HOST_PROVIDERS__GITHUB__AUTHORIZE_URL",
                self.url("/authorize"),
            ),
            ("HOST_PROVIDERS__GITHUB__TOKEN_URL", self.url("/token")),
            ("HOST_PROVIDERS__GITHUB__API_URL", self.url("/api")),
            (
                "HOST_PROVIDERS__GITHUB__DEVICE_AUTHORIZATION_URL",
                self.url("/device/code"),
            ),
        ]
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

    /// Holds every refresh from now on at the point where its refresh token has been looked up
    /// and its new tokens issued (live, as far as the provider knows), until the test lets it
    /// answer: races are ordered by these events, not by sleeps.
    pub fn hold_refreshes(&self) -> RefreshHold {
        let (tx, arrived) = tokio::sync::mpsc::unbounded_channel();
        let permits = Arc::new(tokio::sync::Semaphore::new(0));
        *self.inner.refresh_gate.lock().unwrap() = Some((tx, Arc::clone(&permits)));
        RefreshHold {
            arrived,
            permits,
            inner: Arc::clone(&self.inner),
        }
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

    /// Accepts token requests from a public client (the client id, no secret).
    pub fn set_public_client(&self, on: bool) {
        self.inner.public_client.store(on, Ordering::SeqCst);
    }

    /// Forgets every access token (as if the user revoked them on the provider's website).
    pub fn revoke_access_tokens(&self) {
        self.inner.access_tokens.lock().unwrap().clear();
    }

    /// Forgets every refresh token (as if the user revoked the app).
    pub fn revoke_all(&self) {
        self.inner.refresh_tokens.lock().unwrap().clear();
    }

    /// The OpenID Connect issuer: `http://127.0.0.1:PORT`, no trailing slash.
    pub fn issuer(&self) -> String {
        self.url("")
    }

    /// Makes discovery announce this `issuer` instead of the real one (`None`: the real one).
    pub fn set_discovery_issuer(&self, issuer: Option<String>) {
        *self.inner.discovery_issuer.lock().unwrap() = issuer;
    }

    /// Sets discovery's `Cache-Control: max-age` (default 300 seconds).
    pub fn set_discovery_max_age(&self, seconds: u64) {
        self.inner
            .discovery_max_age
            .store(seconds, Ordering::SeqCst);
    }

    /// Makes discovery answer 200 with a body that is not JSON.
    pub fn set_discovery_garbage(&self, on: bool) {
        self.inner.discovery_garbage.store(on, Ordering::SeqCst);
    }

    /// Plays a plain OAuth2 server (default off): OpenID Connect discovery answers 404, no
    /// `id_token` is issued, and RFC 8414 metadata is published at
    /// `/.well-known/oauth-authorization-server`, also for an issuer with a path
    /// (`…/oauth-authorization-server/PATH` names the issuer `http://127.0.0.1:PORT/PATH`;
    /// the callback's `iss` stays [`TestProvider::issuer`] unless set).
    pub fn set_plain_oauth2(&self, on: bool) {
        self.inner.plain_oauth2.store(on, Ordering::SeqCst);
    }

    /// Makes discovery answer with `status` and no document (`None`: normally).
    pub fn set_discovery_status(&self, status: Option<u16>) {
        self.inner
            .discovery_status
            .store(status.map_or(0, u64::from), Ordering::SeqCst);
    }

    /// Makes discovery answer `application/json` cut off in the middle.
    pub fn set_discovery_truncated(&self, on: bool) {
        self.inner.discovery_truncated.store(on, Ordering::SeqCst);
    }

    /// How often the RFC 8414 metadata was fetched.
    pub fn metadata_hits(&self) -> usize {
        self.inner.metadata_hits.load(Ordering::SeqCst)
    }

    /// How often the discovery document was fetched.
    pub fn discovery_hits(&self) -> usize {
        self.inner.discovery_hits.load(Ordering::SeqCst)
    }

    /// How often `/jwks` was fetched.
    pub fn jwks_hits(&self) -> usize {
        self.inner.jwks_hits.load(Ordering::SeqCst)
    }

    /// RFC 9207 (default on): discovery announces
    /// `authorization_response_iss_parameter_supported` and the callback carries `iss`.
    pub fn set_iss_parameter(&self, on: bool) {
        self.inner.iss_parameter.store(on, Ordering::SeqCst);
    }

    /// The `iss` the callback carries (when the `iss` parameter is on) instead of the issuer,
    /// to play a mix-up; `None` (the default): the issuer.
    pub fn set_callback_iss(&self, iss: Option<String>) {
        *self.inner.callback_iss.lock().unwrap() = iss;
    }

    /// Rotates the RSA signing key: RS256 `id_token`s are signed with `rsa-2` from now on, and
    /// the JWKS publishes `rsa-2` instead of `rsa-1`.
    pub fn rotate_signing_key(&self) {
        self.inner.rsa_rotated.store(true, Ordering::SeqCst);
    }

    /// The `kid` the next good `id_token` is signed with (`rsa-1`, `rsa-2`, `ec-1` or `ed-1`).
    pub fn signing_kid(&self) -> String {
        self.inner.signing_kid().to_owned()
    }

    /// Signs `id_token`s with this algorithm from now on: `"RS256"` (the default), `"ES256"`
    /// or `"EdDSA"`. Panics on any other.
    pub fn set_id_token_alg(&self, alg: &str) {
        let alg = match alg {
            "RS256" => IdTokenAlg::Rs256,
            "ES256" => IdTokenAlg::Es256,
            "EdDSA" => IdTokenAlg::EdDsa,
            other => panic!("the test provider does not sign with {other}"),
        };
        *self.inner.id_token_alg.lock().unwrap() = alg;
    }

    /// Breaks or forges every `id_token` issued while set ([`IdTokenFault::None`]: good ones).
    pub fn set_id_token_fault(&self, fault: IdTokenFault) {
        *self.inner.id_token_fault.lock().unwrap() = fault;
    }

    /// Every `id_token` issued so far, in order.
    pub fn id_tokens(&self) -> Vec<String> {
        self.inner.id_tokens.lock().unwrap().clone()
    }

    /// Makes `/authorize` answer 400 "PKCE not supported" to any request with a
    /// `code_challenge`, and accept requests without one (whose code then needs no verifier).
    /// Off (the default): PKCE S256 is required.
    pub fn set_pkce_rejected(&self, on: bool) {
        self.inner.pkce_rejected.store(on, Ordering::SeqCst);
    }

    /// Sends `expires_in` as a JSON string (`"3600"`) in successful token responses.
    pub fn set_string_expires_in(&self, on: bool) {
        self.inner.string_expires_in.store(on, Ordering::SeqCst);
    }

    /// The query parameters of every `/authorize` request so far (refused ones too), in order.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.inner.authorize_requests.lock().unwrap().clone()
    }

    /// The token and revocation endpoints take JSON bodies only, as Notion documents; a form
    /// is refused with 415.
    pub fn set_json_only(&self, on: bool) {
        self.inner.json_only.store(on, Ordering::SeqCst);
    }

    /// A public client must authenticate with HTTP Basic and an empty password (Reddit's
    /// installed apps); its id alone in the body is refused.
    pub fn set_basic_public(&self, on: bool) {
        self.inner.basic_public.store(on, Ordering::SeqCst);
    }

    /// The parameters of every device authorization request so far, in order.
    pub fn device_requests(&self) -> Vec<HashMap<String, String>> {
        self.inner.device_requests.lock().unwrap().clone()
    }
}

/// A token or revocation request's parameters and its `Content-Type`.
type EndpointParams = (HashMap<String, String>, Option<String>);

/// The parameters of a token or revocation request: a form, or (with a JSON content type) a
/// JSON object of strings; `Err` is the response refusing it (a form when only JSON is taken,
/// a body that is neither).
fn endpoint_params(
    inner: &Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<EndpointParams, Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json = content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/json"));
    if json {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return Err(Box::new(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
            )));
        };
        let mut form = HashMap::new();
        for (k, v) in map {
            let Value::String(v) = v else {
                return Err(Box::new(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                )));
            };
            form.insert(k, v);
        }
        return Ok((form, content_type));
    }
    if inner.json_only.load(Ordering::SeqCst) {
        return Err(Box::new(
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "JSON bodies only").into_response(),
        ));
    }
    let form = url::form_urlencoded::parse(body).into_owned().collect();
    Ok((form, content_type))
}

/// Whether the request is a public client authenticating as `basic_public` wants: HTTP Basic
/// with the client's id and an empty password.
fn basic_public_client(inner: &Inner, request: &TokenRequest) -> bool {
    inner.basic_public.load(Ordering::SeqCst)
        && request.basic_auth() == Some((CLIENT_ID.to_owned(), String::new()))
}

/// OpenID Connect discovery.
async fn discovery(State(inner): State<Arc<Inner>>) -> Response {
    inner.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if inner.plain_oauth2.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let status = inner.discovery_status.load(Ordering::SeqCst);
    if status != 0 {
        return StatusCode::from_u16(status as u16)
            .expect("a status")
            .into_response();
    }
    if inner.discovery_truncated.load(Ordering::SeqCst) {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"issuer\": \"{}\", \"authoriz", inner.issuer),
        )
            .into_response();
    }
    let cache_control = format!("max-age={}", inner.discovery_max_age.load(Ordering::SeqCst));
    if inner.discovery_garbage.load(Ordering::SeqCst) {
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html".to_owned()),
                (header::CACHE_CONTROL, cache_control),
            ],
            "<html><body>Welcome to the provider!</body></html>",
        )
            .into_response();
    }
    let base = &inner.issuer;
    let issuer = inner
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| base.clone());
    let mut body = metadata_common(&inner, &issuer);
    body["userinfo_endpoint"] = json!(format!("{base}/api/userinfo"));
    body["jwks_uri"] = json!(format!("{base}/jwks"));
    body["subject_types_supported"] = json!(["public"]);
    body["id_token_signing_alg_values_supported"] = json!(["RS256", "ES256", "EdDSA"]);
    body["scopes_supported"] = json!(["openid", "profile", "email", "read", "write"]);
    body["token_endpoint_auth_methods_supported"] =
        json!(["client_secret_basic", "client_secret_post"]);
    body["claims_supported"] = json!([
        "iss", "sub", "aud", "exp", "iat", "nonce", "at_hash", "email", "name"
    ]);
    ([(header::CACHE_CONTROL, cache_control)], Json(body)).into_response()
}

/// What both metadata documents (OpenID Connect discovery, RFC 8414) say: the issuer, the
/// endpoints, the grants, PKCE and RFC 9207.
fn metadata_common(inner: &Inner, issuer: &str) -> Value {
    let base = &inner.issuer;
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device/code"),
        "revocation_endpoint": format!("{base}/revoke"),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
        "authorization_response_iss_parameter_supported":
            inner.iss_parameter.load(Ordering::SeqCst),
    })
}

/// RFC 8414 metadata of the issuer without a path.
async fn as_metadata(State(inner): State<Arc<Inner>>) -> Response {
    as_metadata_of(&inner, None)
}

/// RFC 8414 metadata of the issuer with this path.
async fn as_metadata_for_path(
    State(inner): State<Arc<Inner>>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    as_metadata_of(&inner, Some(&path))
}

fn as_metadata_of(inner: &Inner, path: Option<&str>) -> Response {
    inner.metadata_hits.fetch_add(1, Ordering::SeqCst);
    if !inner.plain_oauth2.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let base = &inner.issuer;
    let issuer = inner
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| match path {
            Some(p) => format!("{base}/{p}"),
            None => base.clone(),
        });
    let mut body = metadata_common(inner, &issuer);
    body["scopes_supported"] = json!(["read", "write"]);
    let cache_control = format!("max-age={}", inner.discovery_max_age.load(Ordering::SeqCst));
    ([(header::CACHE_CONTROL, cache_control)], Json(body)).into_response()
}

/// The published keys: the RSA key in use, `ec-1` and `ed-1`.
async fn jwks(State(inner): State<Arc<Inner>>) -> Response {
    inner.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = [inner.rsa_kid(), "ec-1", "ed-1"]
        .into_iter()
        .map(public_jwk)
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

/// OpenID Connect userinfo, for a live access token.
async fn userinfo(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if live_bearer(&inner, &headers) {
        Json(json!({
            "sub": SUBJECT,
            "email": "user@example.test",
            "name": "Test User",
            "preferred_username": "user1",
        }))
        .into_response()
    } else {
        bad_credentials()
    }
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    inner.authorize_requests.lock().unwrap().push(q.clone());
    let pkce_rejected = inner.pkce_rejected.load(Ordering::SeqCst);
    if pkce_rejected && q.contains_key("code_challenge") {
        return (StatusCode::BAD_REQUEST, "PKCE not supported").into_response();
    }
    if q.get("response_type").map(String::as_str) != Some("code")
        || q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || (!pkce_rejected && q.get("code_challenge_method").map(String::as_str) != Some("S256"))
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    // Without PKCE (refused), a request needs no challenge; otherwise it must have one.
    let challenge = q.get("code_challenge").cloned();
    let (Some(state), true) = (q.get("state"), challenge.is_some() || pkce_rejected) else {
        return (StatusCode::BAD_REQUEST, "missing challenge or state").into_response();
    };
    let code = format!("code-{}", inner.counter.fetch_add(1, Ordering::SeqCst));
    inner.grants.lock().unwrap().insert(
        code.clone(),
        Grant {
            challenge,
            redirect_uri: q.get("redirect_uri").cloned(),
            scope: q.get("scope").or_else(|| q.get("user_scope")).cloned(),
            nonce: q.get("nonce").cloned(),
        },
    );
    let Some(redirect) = q.get("redirect_uri") else {
        return (StatusCode::OK, format!("code={code}")).into_response();
    };
    let mut url = url::Url::parse(redirect).expect("redirect uri");
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    if inner.iss_parameter.load(Ordering::SeqCst) {
        let iss = inner
            .callback_iss
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| inner.issuer.clone());
        url.query_pairs_mut().append_pair("iss", &iss);
    }
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
    body: axum::body::Bytes,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (form, content_type) = match endpoint_params(&inner, &headers, &body) {
        Ok(parsed) => parsed,
        Err(refused) => return *refused,
    };
    let request = TokenRequest {
        at: std::time::Instant::now(),
        form: form.clone(),
        authorization,
        content_type,
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
    let assertion = match machine::client_assertion(&inner, &request, None) {
        Some(Ok(method)) => Some(method),
        Some(Err(refused)) => return *refused,
        None => None,
    };
    if machine::is_machine_grant(&form) {
        return machine::grant(&inner, &request, &body, assertion).await;
    }
    let (id, secret) = match request.basic_auth() {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let public = if inner.basic_public.load(Ordering::SeqCst) {
        basic_public_client(&inner, &request)
    } else {
        inner.public_client.load(Ordering::SeqCst)
            && request.authorization.is_none()
            && !form.contains_key("client_secret")
    };
    if assertion.is_none() && (id != CLIENT_ID || (secret != CLIENT_SECRET && !public)) {
        return token_error(&inner, StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let (scope, nonce) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let grant = form
                .get("code")
                .and_then(|c| inner.grants.lock().unwrap().remove(c));
            let Some(grant) = grant else {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let pkce_ok = grant.challenge.as_ref().is_none_or(|c| *c == computed);
            if !pkce_ok || grant.redirect_uri != form.get("redirect_uri").cloned() {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            }
            (grant.scope, grant.nonce)
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
            (scope, None)
        }
        Some(DEVICE_GRANT) => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some(scope) = inner.device_codes.lock().unwrap().remove(&code) else {
                return token_error(&inner, StatusCode::BAD_REQUEST, "invalid_grant");
            };
            (scope, None)
        }
        _ => return token_error(&inner, StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let n = inner.counter.fetch_add(1, Ordering::SeqCst);
    let ttl = inner.ttl.load(Ordering::SeqCst);
    let expires_in = if inner.string_expires_in.load(Ordering::SeqCst) {
        Value::String(ttl.to_string())
    } else {
        Value::from(ttl)
    };
    let access_token = format!("at-{n}");
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    let openid = scope
        .as_deref()
        .is_some_and(|s| s.split([' ', ',']).any(|s| s == "openid"));
    if openid && !inner.plain_oauth2.load(Ordering::SeqCst) {
        body["id_token"] = Value::String(inner.mint_id_token(&access_token, nonce.as_deref()));
    }
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
    inner
        .machine
        .count(form.get("grant_type").map_or("", String::as_str));
    if is_refresh {
        let gate = inner.refresh_gate.lock().unwrap().clone();
        if let Some((arrived, permits)) = gate {
            let _ = arrived.send(format!("at-{n}"));
            if let Ok(permit) = permits.acquire().await {
                permit.forget();
            }
        }
    }
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
        content_type: None,
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
    body: axum::body::Bytes,
) -> Response {
    let (form, content_type) = match endpoint_params(&inner, &headers, &body) {
        Ok(parsed) => parsed,
        Err(refused) => return *refused,
    };
    let request = TokenRequest {
        at: std::time::Instant::now(),
        form: form.clone(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        content_type,
    };
    inner.requests.lock().unwrap().push(request.clone());
    if let Some(s) = inner.script.lock().unwrap().pop_front() {
        return scripted_response(s);
    }
    let public = inner.public_client.load(Ordering::SeqCst)
        && headers.get(header::AUTHORIZATION).is_none()
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID);
    let basic_public = basic_public_client(&inner, &request);
    let revocation_endpoint = format!("{}/revoke", inner.issuer);
    let assertion = machine::client_assertion(&inner, &request, Some(&revocation_endpoint));
    match assertion {
        Some(Err(refused)) => return *refused,
        Some(Ok(_)) => {}
        None if !client_authenticated(&headers, Some(&form)) && !public && !basic_public => {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        None => {}
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

/// Answers `{}` after `?ms=N` milliseconds (a provider that takes its time).
async fn slow(Query(q): Query<HashMap<String, String>>) -> Response {
    let ms = q.get("ms").and_then(|m| m.parse().ok()).unwrap_or(1000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Json(json!({})).into_response()
}

/// The device authorization endpoint (RFC 8628 §3.2); `?expires_in=N` gives the code that
/// lifetime (default 900 s).
async fn device_code(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.device_requests.lock().unwrap().push(form.clone());
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
        "expires_in": q.get("expires_in").and_then(|s| s.parse::<u64>().ok()).unwrap_or(900),
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

/// A device endpoint whose verification URIs are long (as a tenant-qualified one can be): a
/// 1000-character `verification_uri_complete` ending in `&user_code=…`, and one of 5000 as
/// the plain `verification_uri` when asked with `?too_long`.
async fn device_long(Query(q): Query<HashMap<String, String>>) -> Response {
    let padding = |n: usize| "a".repeat(n);
    let plain = if q.contains_key("too_long") {
        format!("https://login.example/device?tenant={}", padding(5000))
    } else {
        format!("https://login.example/device?tenant={}", padding(600))
    };
    Json(json!({
        "device_code": "dc-long",
        "user_code": USER_CODE,
        "verification_uri": plain,
        "verification_uri_complete": format!(
            "https://login.example/device?tenant={}&user_code={USER_CODE}",
            padding(950)
        ),
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
        // `?fields=a,b`: links as RFC 8288 also allows them (a comma in the URI, the previous
        // page first, the parameter name in capitals, two relation types).
        let link = match q.get("fields") {
            Some(fields) => format!(
                "<http://{host}/api/items?fields={fields}&page={page}>; rel=\"prev\", <http://{host}/api/items?fields={fields}&page={}>; REL=\"next last\"",
                page + 1
            ),
            None => format!("<http://{host}/api/items?page={}>; rel=\"next\"", page + 1),
        };
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
    let all = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    Json(json!({
        "method": method.as_str(),
        "query": q,
        "body": body,
        "accept": all(header::ACCEPT),
        "content_type": all(header::CONTENT_TYPE),
    }))
    .into_response()
}

/// An authenticated request answered with 4 MiB of JSON (more than a pipe holds).
async fn big(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    if !live_bearer(&inner, &headers) {
        return bad_credentials();
    }
    Json(json!(vec!["x".repeat(1024); 4096])).into_response()
}

/// An authenticated request answered `204 No Content`; with `?endless`, each with a link to
/// a next page that is the same again.
async fn empty(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !live_bearer(&inner, &headers) {
        return bad_credentials();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if q.contains_key("endless") {
        let page: u64 = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
        let link = format!("</api/empty?endless&page={}>; rel=\"next\"", page + 1);
        response
            .headers_mut()
            .insert(header::LINK, link.parse().unwrap());
    }
    response
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

/// Shopify's Admin API: the token in `X-Shopify-Access-Token`, never as a bearer token.
async fn shop(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let live = inner
        .access_tokens
        .lock()
        .unwrap()
        .iter()
        .any(|t| t == token);
    if !live || headers.contains_key(header::AUTHORIZATION) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": "[API] Invalid API key or access token"})),
        )
            .into_response();
    }
    Json(json!({"shop": {"name": "Acme Store"}})).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{DecodingKey, Header, Validation, decode, decode_header, encode};

    const REDIRECT: &str = "http://127.0.0.1:9/callback";
    const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-long";

    fn decoding_key(jwk: &Value) -> DecodingKey {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a JWK");
        DecodingKey::from_jwk(&jwk).expect("a decoding key")
    }

    fn validation(alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.validate_aud = false;
        v
    }

    #[test]
    fn every_published_jwk_verifies_its_own_key_and_no_other() {
        let claims = json!({"sub": "x", "exp": unix_now() + 60});
        let published = ["rsa-1", "rsa-2", "ec-1", "ed-1"];
        for kid in published {
            let (alg, key) = signing_key(kid);
            let jwk = public_jwk(kid);
            assert_eq!(jwk["alg"], format!("{alg:?}"), "{kid}");
            assert_eq!(jwk["use"], "sig", "{kid}");
            let token = encode(&Header::new(alg), &claims, &key).expect("sign");
            decode::<Value>(&token, &decoding_key(&jwk), &validation(alg))
                .unwrap_or_else(|e| panic!("{kid}: {e}"));
            for other in published.iter().filter(|o| **o != kid) {
                let other_jwk = public_jwk(other);
                if other_jwk["alg"] == jwk["alg"] {
                    assert!(
                        decode::<Value>(&token, &decoding_key(&other_jwk), &validation(alg))
                            .is_err(),
                        "{kid} verified by {other}"
                    );
                }
            }
        }
        let (alg, rogue) = signing_key("rsa-rogue");
        let forged = encode(&Header::new(alg), &claims, &rogue).expect("sign");
        for kid in ["rsa-1", "rsa-2"] {
            assert!(
                decode::<Value>(&forged, &decoding_key(&public_jwk(kid)), &validation(alg))
                    .is_err()
            );
        }
    }

    async fn get(url: &str, bearer: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let mut request = reqwest_client().get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("get");
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }

    async fn get_json(url: &str) -> Value {
        serde_json::from_str(&get(url, None).await.2).expect("json")
    }

    async fn post_token(p: &TestProvider, form: &[(&str, &str)]) -> Value {
        let response = reqwest_client()
            .post(p.url("/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(form)
            .send()
            .await
            .expect("token");
        serde_json::from_str(&response.text().await.expect("body")).expect("json")
    }

    fn authorization_url(p: &TestProvider, scope: &str, pkce: bool) -> String {
        let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "the-state")
            .append_pair("nonce", "the-nonce");
        if pkce {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
            url.query_pairs_mut()
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
        }
        url.to_string()
    }

    /// Authorize (with PKCE and a nonce) and exchange: the callback's parameters, the token
    /// response.
    async fn login(p: &TestProvider, scope: &str) -> (HashMap<String, String>, Value) {
        let query = approve(&authorization_url(p, scope, true)).await;
        let callback: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let body = post_token(
            p,
            &[
                ("grant_type", "authorization_code"),
                ("code", &callback["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
        (callback, body)
    }

    /// Verifies an `id_token` as a relying party would, with the provider's JWKS.
    async fn verify(p: &TestProvider, token: &str) -> Result<Value, String> {
        let header = decode_header(token).map_err(|e| e.to_string())?;
        let jwks = get_json(&p.url("/jwks")).await;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| Some(k["kid"].as_str().unwrap()) == header.kid.as_deref())
            .ok_or("unknown kid")?;
        let mut v = Validation::new(header.alg);
        v.set_audience(&[CLIENT_ID]);
        v.set_issuer(&[p.issuer()]);
        decode::<Value>(token, &decoding_key(jwk), &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }

    fn at_hash(alg: Algorithm, access_token: &str) -> String {
        let digest = if alg == Algorithm::EdDSA {
            Sha512::digest(access_token.as_bytes()).to_vec()
        } else {
            Sha256::digest(access_token.as_bytes()).to_vec()
        };
        URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
    }

    #[tokio::test]
    async fn discovery_announces_the_endpoints_and_obeys_its_knobs() {
        let p = TestProvider::start().await;
        let issuer = p.issuer();
        assert!(issuer.starts_with("http://127.0.0.1:") && !issuer.ends_with('/'));
        let url = p.url("/.well-known/openid-configuration");
        let (status, headers, body) = get(&url, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=300");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["authorization_endpoint"], p.url("/authorize"));
        assert_eq!(doc["token_endpoint"], p.url("/token"));
        assert_eq!(doc["device_authorization_endpoint"], p.url("/device/code"));
        assert_eq!(doc["revocation_endpoint"], p.url("/revoke"));
        assert_eq!(doc["userinfo_endpoint"], p.url("/api/userinfo"));
        assert_eq!(doc["jwks_uri"], p.url("/jwks"));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            json!(["RS256", "ES256", "EdDSA"])
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);

        p.set_discovery_issuer(Some("https://elsewhere.test".into()));
        p.set_discovery_max_age(7);
        p.set_iss_parameter(false);
        let (_, headers, body) = get(&url, None).await;
        assert_eq!(headers[header::CACHE_CONTROL], "max-age=7");
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["issuer"], "https://elsewhere.test");
        assert_eq!(doc["token_endpoint"], p.url("/token"));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], false);

        p.set_discovery_garbage(true);
        let (status, _, body) = get(&url, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(serde_json::from_str::<Value>(&body).is_err());
        assert_eq!(p.discovery_hits(), 3);
    }

    #[tokio::test]
    async fn rs256_id_tokens_verify_and_follow_the_key_rotation() {
        let p = TestProvider::start().await;
        let (callback, body) = login(&p, "openid email").await;
        assert_eq!(callback["iss"], p.issuer());
        assert_eq!(callback["state"], "the-state");
        let access = body["access_token"].as_str().unwrap();
        let id_token = body["id_token"].as_str().expect("an id_token");
        assert_eq!(
            decode_header(id_token).unwrap().kid.as_deref(),
            Some("rsa-1")
        );
        let claims = verify(&p, id_token).await.expect("a good id_token");
        assert_eq!(claims["sub"], SUBJECT);
        assert_eq!(claims["aud"], CLIENT_ID);
        assert_eq!(claims["nonce"], "the-nonce");
        assert_eq!(claims["email"], "user@example.test");
        assert_eq!(claims["name"], "Test User");
        assert_eq!(claims["at_hash"], at_hash(Algorithm::RS256, access));
        let iat = claims["iat"].as_u64().unwrap();
        assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);

        let kids = |jwks: &Value| -> Vec<String> {
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            kids(&get_json(&p.url("/jwks")).await),
            ["rsa-1", "ec-1", "ed-1"]
        );
        p.rotate_signing_key();
        assert_eq!(p.signing_kid(), "rsa-2");
        assert_eq!(
            kids(&get_json(&p.url("/jwks")).await),
            ["rsa-2", "ec-1", "ed-1"]
        );
        assert_eq!(verify(&p, id_token).await.unwrap_err(), "unknown kid");

        let refreshed = post_token(
            &p,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        let id_token2 = refreshed["id_token"]
            .as_str()
            .expect("an id_token on refresh");
        assert_eq!(
            decode_header(id_token2).unwrap().kid.as_deref(),
            Some("rsa-2")
        );
        let claims = verify(&p, id_token2).await.expect("a good id_token");
        assert!(claims.get("nonce").is_none());
        assert_eq!(
            claims["at_hash"],
            at_hash(
                Algorithm::RS256,
                refreshed["access_token"].as_str().unwrap()
            )
        );
        assert_eq!(p.id_tokens(), [id_token, id_token2]);
        assert_eq!(p.jwks_hits(), 5);

        // Without `openid`, no id_token.
        let (_, body) = login(&p, "read write").await;
        assert!(body.get("id_token").is_none());
        assert_eq!(p.id_tokens().len(), 2);
    }

    #[tokio::test]
    async fn es256_and_eddsa_id_tokens_verify() {
        let p = TestProvider::start().await;
        for (name, alg, kid) in [
            ("ES256", Algorithm::ES256, "ec-1"),
            ("EdDSA", Algorithm::EdDSA, "ed-1"),
        ] {
            p.set_id_token_alg(name);
            let (_, body) = login(&p, "openid").await;
            let id_token = body["id_token"].as_str().unwrap();
            let header = decode_header(id_token).unwrap();
            assert_eq!((header.alg, header.kid.as_deref()), (alg, Some(kid)));
            let claims = verify(&p, id_token).await.expect("a good id_token");
            assert_eq!(
                claims["at_hash"],
                at_hash(alg, body["access_token"].as_str().unwrap())
            );
        }
    }

    #[tokio::test]
    async fn id_token_faults_break_what_they_say() {
        let p = TestProvider::start().await;
        let issued = |fault| {
            p.set_id_token_fault(fault);
            let p = &p;
            async move {
                let (_, body) = login(p, "openid").await;
                let token = body["id_token"].as_str().unwrap().to_owned();
                let access = body["access_token"].as_str().unwrap().to_owned();
                (token, access)
            }
        };
        let (token, _) = issued(IdTokenFault::BadSignature).await;
        assert_eq!(decode_header(&token).unwrap().kid.as_deref(), Some("rsa-1"));
        assert!(
            verify(&p, &token)
                .await
                .unwrap_err()
                .contains("InvalidSignature")
        );
        let (token, _) = issued(IdTokenFault::UnknownKid).await;
        assert_eq!(
            decode_header(&token).unwrap().kid.as_deref(),
            Some(ROGUE_KID)
        );
        assert_eq!(verify(&p, &token).await.unwrap_err(), "unknown kid");
        let (token, _) = issued(IdTokenFault::WrongAudience).await;
        assert!(
            verify(&p, &token)
                .await
                .unwrap_err()
                .contains("InvalidAudience")
        );
        let (token, _) = issued(IdTokenFault::WrongIssuer).await;
        assert!(
            verify(&p, &token)
                .await
                .unwrap_err()
                .contains("InvalidIssuer")
        );
        let (token, _) = issued(IdTokenFault::Expired).await;
        assert!(
            verify(&p, &token)
                .await
                .unwrap_err()
                .contains("ExpiredSignature")
        );
        let (token, _) = issued(IdTokenFault::WrongNonce).await;
        assert_eq!(verify(&p, &token).await.unwrap()["nonce"], "wrong-nonce");
        let (token, _) = issued(IdTokenFault::NoNonce).await;
        assert!(verify(&p, &token).await.unwrap().get("nonce").is_none());
        let (token, access) = issued(IdTokenFault::BadAtHash).await;
        assert_ne!(
            verify(&p, &token).await.unwrap()["at_hash"],
            at_hash(Algorithm::RS256, &access)
        );
        let (token, _) = issued(IdTokenFault::MultipleAudiencesNoAzp).await;
        let claims = verify(&p, &token).await.unwrap();
        assert_eq!(claims["aud"], json!([CLIENT_ID, "other"]));
        assert!(claims.get("azp").is_none());
        let (token, access) = issued(IdTokenFault::None).await;
        let claims = verify(&p, &token).await.unwrap();
        assert_eq!(
            (&claims["nonce"], &claims["at_hash"]),
            (
                &json!("the-nonce"),
                &json!(at_hash(Algorithm::RS256, &access))
            )
        );
    }

    #[tokio::test]
    async fn pkce_refusal_string_expiry_userinfo_and_the_callback_iss() {
        let p = TestProvider::start().await;
        p.set_pkce_rejected(true);
        let (status, _, body) = get(&authorization_url(&p, "openid", true), None).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::BAD_REQUEST, "PKCE not supported")
        );
        p.set_callback_iss(Some("https://mix-up.test".into()));
        let query = approve(&authorization_url(&p, "openid read", false)).await;
        let callback: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(callback["iss"], "https://mix-up.test");
        p.set_string_expires_in(true);
        let body = post_token(
            &p,
            &[
                ("grant_type", "authorization_code"),
                ("code", &callback["code"]),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
        assert_eq!(body["expires_in"], "3600");
        assert!(body["id_token"].is_string());

        let requests = p.authorize_requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[1]["scope"], "openid read");
        assert_eq!(requests[1]["nonce"], "the-nonce");
        assert!(!requests[1].contains_key("code_challenge"));

        let access = body["access_token"].as_str().unwrap();
        let (status, _, info) = get(&p.url("/api/userinfo"), Some(access)).await;
        assert_eq!(status, StatusCode::OK);
        let info: Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["sub"], SUBJECT);
        assert_eq!(info["preferred_username"], "user1");
        let (status, _, _) = get(&p.url("/api/userinfo"), Some("at-nope")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // PKCE back on: a request without a challenge is refused, and no `iss` when it is off.
        p.set_pkce_rejected(false);
        let (status, _, _) = get(&authorization_url(&p, "openid", false), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        p.set_iss_parameter(false);
        let (callback, body) = login(&p, "read").await;
        assert!(!callback.contains_key("iss"));
        assert_eq!(body["expires_in"], "3600");
    }
}
