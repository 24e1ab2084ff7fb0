//! The test provider's non-interactive side: JWT client authentication at the token endpoint
//! (RFC 7523 §2.2: `client_secret_jwt`, `private_key_jwt`), the client credentials grant
//! (RFC 6749 §4.4), the JWT bearer grant (RFC 7523 §2.1, as Google service accounts use it),
//! token exchange (RFC 8693), and a stand-in for GitHub Actions' OIDC token endpoint.
//!
//! Everything is verified strictly, and every refusal says why in its `error_description`
//! (`test provider: <why>`): a client assertion that fails any check is refused with 401
//! `invalid_client`, a bad grant assertion or subject token with 400 `invalid_grant`, a
//! request missing a required parameter with 400 `invalid_request`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::keys::{PublicKey, write_private};
use crate::{
    CLIENT_ID, CLIENT_SECRET, Inner, TestKey, TestProvider, TokenRequest, public_jwk, signing_key,
    unix_now,
};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The grant type of the JWT bearer grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The grant type of token exchange (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The client credentials grant type (RFC 6749 §4.4).
pub const CLIENT_CREDENTIALS_GRANT: &str = "client_credentials";
/// RFC 8693 token type: an access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type: a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 token type: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The `sub` of the GitHub Actions stand-in's tokens.
pub const ACTIONS_SUBJECT: &str = "repo:acme/app:ref:refs/heads/main";
/// The `aud` of a GitHub Actions stand-in's token when the request names no audience.
pub const ACTIONS_DEFAULT_AUDIENCE: &str = "https://github.com/acme";
/// The `client_email` of [`TestProvider::service_account_file`]'s service account.
pub const SERVICE_ACCOUNT_EMAIL: &str = "robot@test.iam.gserviceaccount.com";

/// The token types RFC 8693 §3 defines (the only `requested_token_type`s taken).
const KNOWN_TOKEN_TYPES: &[&str] = &[
    ACCESS_TOKEN_TYPE,
    "urn:ietf:params:oauth:token-type:refresh_token",
    ID_TOKEN_TYPE,
    JWT_TOKEN_TYPE,
    "urn:ietf:params:oauth:token-type:saml1",
    "urn:ietf:params:oauth:token-type:saml2",
];

/// Clock skew allowed on `iat` and `nbf`, and on the 5 minutes a client assertion may live.
const LEEWAY: f64 = 60.0;
/// How far ahead a client assertion's `exp` may be (plus [`LEEWAY`]).
const CLIENT_ASSERTION_LIFETIME: f64 = 300.0;
/// How long after its `iat` a grant assertion may expire (RFC 7523 grants, as Google allows).
const GRANT_ASSERTION_LIFETIME: f64 = 3600.0;

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// Its id and secret in HTTP Basic.
    ClientSecretBasic,
    /// Its id and secret in the body.
    ClientSecretPost,
    /// A client assertion MACed with the client secret (HS256, HS384, HS512).
    ClientSecretJwt,
    /// A client assertion signed with a registered key.
    PrivateKeyJwt,
}

/// A JWT the token endpoint was shown, as a client assertion or as a grant assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenAssertion {
    /// The header's `alg`, as written (`None`: no readable `alg`).
    pub alg: Option<String>,
    /// The header's `kid`.
    pub kid: Option<String>,
    /// The header's `typ`.
    pub typ: Option<String>,
    /// The claims, decoded without verification (`Null` when unreadable).
    pub claims: Value,
    /// Whether it passed every check.
    pub accepted: bool,
    /// Why it was refused (the `error_description` without `test provider: `).
    pub reason: Option<String>,
}

/// A token issued by a non-interactive grant (client credentials, JWT bearer, token exchange).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineGrant {
    /// The grant type.
    pub grant_type: String,
    /// How the client authenticated (`None`: it did not, as the JWT bearer grant and token
    /// exchange allow).
    pub client_auth: Option<ClientAuthMethod>,
    /// The access token issued (`at-N`).
    pub access_token: String,
    /// The scope granted (and echoed): the request's, or the JWT bearer assertion's `scope`.
    pub scope: Option<String>,
    /// Every `audience` parameter, in order.
    pub audience: Vec<String>,
    /// Every `resource` parameter, in order.
    pub resource: Vec<String>,
    /// JWT bearer: the assertion's claims.
    pub assertion: Option<Value>,
    /// Token exchange: the subject token.
    pub subject_token: Option<String>,
    /// Token exchange: its type.
    pub subject_token_type: Option<String>,
    /// The subject: the JWT bearer assertion's `sub` (else its `iss`), or the `sub` of a JWT
    /// subject token (`None` for an access token).
    pub subject: Option<String>,
    /// Token exchange: the `requested_token_type`, if any.
    pub requested_token_type: Option<String>,
    /// Token exchange: the `actor_token_type`, if an actor token was given.
    pub actor_token_type: Option<String>,
    /// Token exchange: the actor token's `sub` (a JWT actor token).
    pub actor: Option<String>,
}

/// The provider's state for all this.
pub(crate) struct MachineState {
    /// Registered client keys, by `kid` (`None`: only for assertions naming no `kid`).
    keys: Mutex<Vec<(Option<String>, PublicKey)>>,
    /// Every `jti` of an accepted assertion.
    jtis: Mutex<HashSet<String>>,
    client_assertions: Mutex<Vec<SeenAssertion>>,
    grant_assertions: Mutex<Vec<SeenAssertion>>,
    grants: Mutex<Vec<MachineGrant>>,
    /// Successful grants, by grant type (every grant, the interactive ones too).
    counts: Mutex<HashMap<String, usize>>,
    /// Milliseconds a successful non-interactive grant waits before it answers.
    grant_delay_ms: AtomicU64,
    /// The bearer token the GitHub Actions stand-in takes.
    actions_token: String,
    actions_audiences: Mutex<Vec<Option<String>>>,
}

/// Hex of `n` random bytes.
fn random_hex(n: usize) -> String {
    use ring::rand::SecureRandom;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for MachineState {
    fn default() -> Self {
        Self {
            keys: Mutex::default(),
            jtis: Mutex::default(),
            client_assertions: Mutex::default(),
            grant_assertions: Mutex::default(),
            grants: Mutex::default(),
            counts: Mutex::default(),
            grant_delay_ms: AtomicU64::new(0),
            actions_token: random_hex(20),
            actions_audiences: Mutex::default(),
        }
    }
}

impl MachineState {
    /// Counts a successful grant.
    pub(crate) fn count(&self, grant_type: &str) {
        *self
            .counts
            .lock()
            .unwrap()
            .entry(grant_type.to_owned())
            .or_default() += 1;
    }
}

impl TestProvider {
    /// Registers a client's public key under its `kid` and under its RFC 7638 thumbprint:
    /// `private_key_jwt` client assertions and JWT bearer grant assertions signed with it
    /// verify (when their header names either, or no `kid`).
    pub fn register_client_key(&self, key: &TestKey) {
        let mut keys = self.inner.machine.keys.lock().unwrap();
        keys.push((Some(key.kid.clone()), key.public.clone()));
        keys.push((Some(key.thumbprint.clone()), key.public.clone()));
    }

    /// Registers a client's public key from PEM (SPKI `PUBLIC KEY` of an RSA, P-256, P-384 or
    /// Ed25519 key, or PKCS#1 `RSA PUBLIC KEY`), under `kid` (`None`: it verifies only
    /// assertions whose header names no `kid`). Panics on anything else.
    pub fn register_client_key_pem(&self, kid: Option<&str>, public_pem: &str) {
        let key = PublicKey::from_pem(public_pem)
            .unwrap_or_else(|why| panic!("register_client_key_pem: {why}"));
        self.inner
            .machine
            .keys
            .lock()
            .unwrap()
            .push((kid.map(str::to_owned), key));
    }

    /// Forgets every registered client key (a client whose keys were withdrawn).
    pub fn clear_client_keys(&self) {
        self.inner.machine.keys.lock().unwrap().clear();
    }

    /// Writes a Google-style service account key file (`0600`) for `key` into `dir`
    /// (`KID.service-account.json`: `type`, `project_id` `test`, `private_key_id` the `kid`,
    /// `private_key` the PKCS#8 PEM, `client_email` [`SERVICE_ACCOUNT_EMAIL`], `client_id`
    /// `1234`, `token_uri` this provider's token endpoint) and registers the key.
    pub fn service_account_file(&self, key: &TestKey, dir: &Path) -> PathBuf {
        self.register_client_key(key);
        let path = dir.join(format!("{}.service-account.json", key.kid));
        let doc = json!({
            "type": "service_account",
            "project_id": "test",
            "private_key_id": key.kid,
            "private_key": key.private_pem_text(),
            "client_email": SERVICE_ACCOUNT_EMAIL,
            "client_id": "1234",
            "token_uri": self.url("/token"),
        });
        write_private(
            &path,
            serde_json::to_string_pretty(&doc).expect("json").as_bytes(),
        );
        path
    }

    /// Every client assertion the token and revocation endpoints were shown, in order.
    pub fn client_assertions(&self) -> Vec<SeenAssertion> {
        self.inner.machine.client_assertions.lock().unwrap().clone()
    }

    /// Every JWT bearer grant assertion the token endpoint was shown, in order.
    pub fn grant_assertions(&self) -> Vec<SeenAssertion> {
        self.inner.machine.grant_assertions.lock().unwrap().clone()
    }

    /// Every token issued by a non-interactive grant, in order.
    pub fn machine_grants(&self) -> Vec<MachineGrant> {
        self.inner.machine.grants.lock().unwrap().clone()
    }

    /// How many grants of this type succeeded (any grant type: `authorization_code`,
    /// `refresh_token`, the device grant, and the non-interactive ones).
    pub fn grants(&self, grant_type: &str) -> usize {
        self.inner
            .machine
            .counts
            .lock()
            .unwrap()
            .get(grant_type)
            .copied()
            .unwrap_or(0)
    }

    /// Makes every successful client credentials, JWT bearer and token exchange grant wait
    /// this long (its token already issued and counted) before it answers.
    pub fn set_grant_delay(&self, delay: Duration) {
        self.inner
            .machine
            .grant_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The environment a GitHub Actions job with `id-token: write` has, pointed at this
    /// provider's stand-in: `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub fn actions_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                self.url("/actions/id-token?api-version=2.0"),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                self.inner.machine.actions_token.clone(),
            ),
        ]
    }

    /// The `audience` of every authorized request to the GitHub Actions stand-in, in order
    /// (`None`: none asked).
    pub fn actions_audiences(&self) -> Vec<Option<String>> {
        self.inner.machine.actions_audiences.lock().unwrap().clone()
    }
}

/// A refusal: the status, the OAuth2 error code, why.
type Refusal = (StatusCode, &'static str, String);

/// An OAuth2 error whose description says why.
fn described(status: StatusCode, code: &str, why: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": format!("test provider: {why}")})),
    )
        .into_response()
}

fn invalid_client(why: &str) -> Box<Response> {
    Box::new(described(StatusCode::UNAUTHORIZED, "invalid_client", why))
}

/// The header and the claims of a JWT, not verified.
fn peek(token: &str) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _] = parts[..] else {
        return Err("not a JWT (three base64url parts)".into());
    };
    let object = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("the {what} is not base64url"))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(Value::Object(map)),
            _ => Err(format!("the {what} is not a JSON object")),
        }
    };
    Ok((object(header, "header")?, object(claims, "claims")?))
}

/// The JWS algorithm a header names; `none` and unknown names are refused.
fn algorithm(header: &Value) -> Result<Algorithm, String> {
    match header["alg"].as_str() {
        None => Err("the header has no alg".into()),
        Some("none") => Err("alg none is refused".into()),
        Some(name) => name
            .parse()
            .map_err(|_| format!("alg {name} is not supported")),
    }
}

/// Whether `token`'s signature verifies with `key` for `alg` (no claim checked).
fn signature_verifies(token: &str, key: &DecodingKey, alg: Algorithm) -> bool {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, key, &validation).is_ok()
}

/// Verifies the signature with a registered client key: the one the header's `kid` names,
/// else any.
fn verify_registered(
    inner: &Inner,
    token: &str,
    header: &Value,
    alg: Algorithm,
) -> Result<(), String> {
    let keys = inner.machine.keys.lock().unwrap().clone();
    let kid = header["kid"].as_str();
    let named: Vec<&PublicKey> = keys
        .iter()
        .filter(|(k, _)| kid.is_none() || k.as_deref() == kid)
        .map(|(_, key)| key)
        .collect();
    let Some(first) = named.first() else {
        return Err(match kid {
            Some(kid) => format!("no client key is registered under kid {kid}"),
            None => "no client key is registered".into(),
        });
    };
    let fitting: Vec<&&PublicKey> = named.iter().filter(|k| k.fits(alg)).collect();
    if fitting.is_empty() {
        return Err(format!(
            "the registered key{} is {}, which cannot verify {alg:?}",
            kid.map(|k| format!(" {k}")).unwrap_or_default(),
            first.describe()
        ));
    }
    if fitting
        .iter()
        .any(|key| signature_verifies(token, &key.decoding_key(), alg))
    {
        Ok(())
    } else {
        Err(format!(
            "the signature does not verify with the registered key{}",
            kid.map(|k| format!(" {k}")).unwrap_or_default()
        ))
    }
}

/// A NumericDate claim, if present (`Err` when it is not a number).
fn number(claims: &Value, name: &str) -> Result<Option<f64>, String> {
    match &claims[name] {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        _ => Err(format!("{name} is not a number")),
    }
}

/// A string claim (`Err` when present and not a string).
fn string<'a>(claims: &'a Value, name: &str) -> Result<Option<&'a str>, String> {
    match &claims[name] {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(format!("{name} is not a string")),
    }
}

/// `aud` is one of `audiences`, or an array holding one.
fn check_audience(claims: &Value, audiences: &[String]) -> Result<(), String> {
    let ok = match &claims["aud"] {
        Value::Null => return Err("no aud".into()),
        Value::String(aud) => audiences.contains(aud),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.iter().any(|w| w == a))),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "aud {} is not the token endpoint {}",
            claims["aud"], audiences[0]
        ))
    }
}

/// `iat` present and not in the future, `nbf` (if any) not in the future.
fn check_issued_at(claims: &Value, now: f64) -> Result<f64, String> {
    let iat = number(claims, "iat")?.ok_or("no iat")?;
    if iat > now + LEEWAY {
        return Err(format!("iat {iat} is in the future (now {now})"));
    }
    if let Some(nbf) = number(claims, "nbf")?
        && nbf > now + LEEWAY
    {
        return Err(format!("nbf {nbf} is in the future (now {now})"));
    }
    Ok(iat)
}

/// Remembers a `jti`; `Err` when it was seen before.
fn fresh_jti(inner: &Inner, jti: &str) -> Result<(), String> {
    if inner.machine.jtis.lock().unwrap().insert(jti.to_owned()) {
        Ok(())
    } else {
        Err(format!("jti {jti} was already used"))
    }
}

/// A record of `token` with its header and claims as far as they can be read.
fn seen(token: &str) -> SeenAssertion {
    let (header, claims) = peek(token).unwrap_or((Value::Null, Value::Null));
    let field = |name: &str| header[name].as_str().map(str::to_owned);
    SeenAssertion {
        alg: field("alg"),
        kid: field("kid"),
        typ: field("typ"),
        claims,
        accepted: false,
        reason: None,
    }
}

/// Authenticates the client by its assertion, when the request has one (`None`: it has no
/// `client_assertion` nor `client_assertion_type`). `Err` is the 401 `invalid_client` that
/// refuses it. Besides the token endpoint, `endpoint` (the revocation endpoint's URL) may be
/// the assertion's audience.
pub(crate) fn client_assertion(
    inner: &Inner,
    request: &TokenRequest,
    endpoint: Option<&str>,
) -> Option<Result<ClientAuthMethod, Box<Response>>> {
    let form = &request.form;
    if !form.contains_key("client_assertion") && !form.contains_key("client_assertion_type") {
        return None;
    }
    let mut audiences = vec![format!("{}/token", inner.issuer)];
    audiences.extend(endpoint.map(str::to_owned));
    let token = form.get("client_assertion").cloned().unwrap_or_default();
    let mut record = seen(&token);
    let result = check_client_assertion(inner, request, &token, &audiences);
    record.accepted = result.is_ok();
    record.reason = result.as_ref().err().cloned();
    inner.machine.client_assertions.lock().unwrap().push(record);
    Some(result.map_err(|why| invalid_client(&why)))
}

fn check_client_assertion(
    inner: &Inner,
    request: &TokenRequest,
    token: &str,
    audiences: &[String],
) -> Result<ClientAuthMethod, String> {
    let form = &request.form;
    match form.get("client_assertion_type") {
        Some(t) if t == CLIENT_ASSERTION_TYPE => {}
        Some(t) => {
            return Err(format!(
                "client_assertion_type {t} is not {CLIENT_ASSERTION_TYPE}"
            ));
        }
        None => return Err("client_assertion without client_assertion_type".into()),
    }
    if !form.contains_key("client_assertion") {
        return Err("client_assertion_type without client_assertion".into());
    }
    if request.authorization.is_some() || form.contains_key("client_secret") {
        return Err(
            "more than one client authentication method (a client assertion and a secret)".into(),
        );
    }
    let (header, claims) = peek(token)?;
    let alg = algorithm(&header)?;
    let method = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            let key = DecodingKey::from_secret(CLIENT_SECRET.as_bytes());
            if !signature_verifies(token, &key, alg) {
                return Err("the signature does not verify with the client secret".into());
            }
            ClientAuthMethod::ClientSecretJwt
        }
        _ => {
            verify_registered(inner, token, &header, alg)?;
            ClientAuthMethod::PrivateKeyJwt
        }
    };
    let iss = string(&claims, "iss")?.ok_or("no iss")?;
    if iss != CLIENT_ID {
        return Err(format!("iss {iss} is not the client id {CLIENT_ID}"));
    }
    let sub = string(&claims, "sub")?.ok_or("no sub")?;
    if sub != CLIENT_ID {
        return Err(format!("sub {sub} is not the client id {CLIENT_ID}"));
    }
    if let Some(id) = form.get("client_id")
        && id != CLIENT_ID
    {
        return Err(format!(
            "client_id {id} is not the assertion's iss {CLIENT_ID}"
        ));
    }
    check_audience(&claims, audiences)?;
    let now = unix_now() as f64;
    let exp = number(&claims, "exp")?.ok_or("no exp")?;
    if exp <= now {
        return Err(format!("exp {exp} is past (now {now})"));
    }
    if exp > now + CLIENT_ASSERTION_LIFETIME + LEEWAY {
        return Err(format!(
            "exp {exp} is more than 5 minutes ahead (now {now})"
        ));
    }
    check_issued_at(&claims, now)?;
    let jti = string(&claims, "jti")?.ok_or("no jti")?;
    fresh_jti(inner, jti)?;
    Ok(method)
}

/// Whether the request is for a grant this module answers.
pub(crate) fn is_machine_grant(form: &HashMap<String, String>) -> bool {
    matches!(
        form.get("grant_type").map(String::as_str),
        Some(CLIENT_CREDENTIALS_GRANT | JWT_BEARER_GRANT | TOKEN_EXCHANGE_GRANT)
    )
}

/// Authentication with the client secret, when the request has any (HTTP Basic, or a
/// `client_secret` in the body).
fn secret_auth(request: &TokenRequest) -> Option<Result<ClientAuthMethod, String>> {
    let form = &request.form;
    if request.authorization.is_some() {
        return Some(match request.basic_auth() {
            Some(_) if form.contains_key("client_secret") => Err(
                "more than one client authentication method (HTTP Basic and a client_secret)"
                    .into(),
            ),
            Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {
                Ok(ClientAuthMethod::ClientSecretBasic)
            }
            Some(_) => Err("the HTTP Basic credentials are not the client's".into()),
            None => Err("the Authorization header is not HTTP Basic".into()),
        });
    }
    let secret = form.get("client_secret")?;
    Some(
        if form.get("client_id").map(String::as_str) == Some(CLIENT_ID) && secret == CLIENT_SECRET {
            Ok(ClientAuthMethod::ClientSecretPost)
        } else {
            Err("client_id and client_secret are not the client's".into())
        },
    )
}

/// Every value of a parameter, in order (a JSON body has one at most).
fn all_values(request: &TokenRequest, body: &[u8], name: &str) -> Vec<String> {
    let json = request
        .content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/json"));
    if json {
        return request.form.get(name).cloned().into_iter().collect();
    }
    url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// Answers a client credentials, JWT bearer or token exchange request (scripted responses
/// already played, a client assertion already checked: `assertion`).
pub(crate) async fn grant(
    inner: &Inner,
    request: &TokenRequest,
    body: &[u8],
    assertion: Option<ClientAuthMethod>,
) -> Response {
    let form = &request.form;
    let client = match assertion.map(Ok).or_else(|| secret_auth(request)) {
        Some(Ok(method)) => Some(method),
        Some(Err(why)) => return *invalid_client(&why),
        None => None,
    };
    if client.is_none()
        && let Some(id) = form.get("client_id")
        && id != CLIENT_ID
    {
        return *invalid_client(&format!("client_id {id} is not the client's"));
    }
    let grant_type = form.get("grant_type").cloned().unwrap_or_default();
    let mut record = MachineGrant {
        grant_type: grant_type.clone(),
        client_auth: client,
        audience: all_values(request, body, "audience"),
        resource: all_values(request, body, "resource"),
        ..MachineGrant::default()
    };
    let scope = match grant_type.as_str() {
        CLIENT_CREDENTIALS_GRANT => {
            if client.is_none() {
                return *invalid_client("client_credentials needs client authentication");
            }
            form.get("scope").cloned()
        }
        JWT_BEARER_GRANT => match jwt_bearer(inner, form, &mut record) {
            Ok(scope) => scope,
            Err((status, code, why)) => return described(status, code, &why),
        },
        _ => match token_exchange(inner, form, &mut record) {
            Ok(()) => form.get("scope").cloned(),
            Err((status, code, why)) => return described(status, code, &why),
        },
    };
    issue(inner, record, scope).await
}

/// Issues an access token (no refresh token) for a checked grant, records it and answers.
async fn issue(inner: &Inner, mut record: MachineGrant, scope: Option<String>) -> Response {
    let n = inner.counter.fetch_add(1, Ordering::SeqCst);
    let access_token = format!("at-{n}");
    inner
        .access_tokens
        .lock()
        .unwrap()
        .push(access_token.clone());
    let ttl = inner.ttl.load(Ordering::SeqCst);
    let expires_in = if inner.string_expires_in.load(Ordering::SeqCst) {
        Value::String(ttl.to_string())
    } else {
        Value::from(ttl)
    };
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    if record.grant_type == TOKEN_EXCHANGE_GRANT {
        body["issued_token_type"] = json!(ACCESS_TOKEN_TYPE);
    }
    if let Some(scope) = &scope {
        body["scope"] = json!(scope);
    }
    record.access_token = access_token;
    record.scope = scope;
    inner.machine.count(&record.grant_type);
    inner.machine.grants.lock().unwrap().push(record);
    let delay = inner.machine.grant_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Json(body).into_response()
}

/// Checks a JWT bearer grant's assertion; the scope to grant.
fn jwt_bearer(
    inner: &Inner,
    form: &HashMap<String, String>,
    record: &mut MachineGrant,
) -> Result<Option<String>, Refusal> {
    let Some(assertion) = form.get("assertion") else {
        return Err((
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the jwt-bearer grant needs an assertion".into(),
        ));
    };
    let mut seen = seen(assertion);
    let result = check_grant_assertion(inner, assertion);
    seen.accepted = result.is_ok();
    seen.reason = result.as_ref().err().cloned();
    inner.machine.grant_assertions.lock().unwrap().push(seen);
    let claims = result.map_err(|why| (StatusCode::BAD_REQUEST, "invalid_grant", why))?;
    let subject = claims["sub"].as_str().or(claims["iss"].as_str());
    record.subject = subject.map(str::to_owned);
    let scope = claims["scope"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| form.get("scope").cloned());
    record.assertion = Some(claims);
    Ok(scope)
}

fn check_grant_assertion(inner: &Inner, token: &str) -> Result<Value, String> {
    let (header, claims) = peek(token)?;
    let alg = algorithm(&header)?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(format!(
            "a grant assertion must be signed with a registered key, not {alg:?}"
        ));
    }
    verify_registered(inner, token, &header, alg)?;
    string(&claims, "iss")?.ok_or("no iss")?;
    string(&claims, "sub")?;
    check_audience(&claims, &[format!("{}/token", inner.issuer)])?;
    let now = unix_now() as f64;
    let exp = number(&claims, "exp")?.ok_or("no exp")?;
    if exp <= now {
        return Err(format!("exp {exp} is past (now {now})"));
    }
    let iat = check_issued_at(&claims, now)?;
    if exp > iat + GRANT_ASSERTION_LIFETIME {
        return Err(format!("exp {exp} is more than an hour after iat {iat}"));
    }
    if let Some(jti) = string(&claims, "jti")? {
        fresh_jti(inner, jti)?;
    }
    Ok(claims)
}

/// Checks a token exchange request and records its subject (and actor).
fn token_exchange(
    inner: &Inner,
    form: &HashMap<String, String>,
    record: &mut MachineGrant,
) -> Result<(), Refusal> {
    let bad_request = |why: &str| (StatusCode::BAD_REQUEST, "invalid_request", why.to_owned());
    let (Some(token), Some(token_type)) =
        (form.get("subject_token"), form.get("subject_token_type"))
    else {
        return Err(bad_request(
            "token exchange needs subject_token and subject_token_type",
        ));
    };
    if let Some(requested) = form.get("requested_token_type")
        && !KNOWN_TOKEN_TYPES.contains(&requested.as_str())
    {
        return Err(bad_request(&format!(
            "requested_token_type {requested} is not a token type"
        )));
    }
    let actor = match (form.get("actor_token"), form.get("actor_token_type")) {
        (Some(token), Some(token_type)) => Some((token, token_type)),
        (None, None) => None,
        _ => {
            return Err(bad_request("actor_token and actor_token_type go together"));
        }
    };
    let invalid_grant = |why: String| (StatusCode::BAD_REQUEST, "invalid_grant", why);
    record.subject = check_subject_token(inner, token, token_type)
        .map_err(|why| invalid_grant(format!("subject_token: {why}")))?;
    if let Some((actor, actor_type)) = actor {
        record.actor = check_subject_token(inner, actor, actor_type)
            .map_err(|why| invalid_grant(format!("actor_token: {why}")))?;
        record.actor_token_type = Some(actor_type.clone());
    }
    record.subject_token = Some(token.clone());
    record.subject_token_type = Some(token_type.clone());
    record.requested_token_type = form.get("requested_token_type").cloned();
    Ok(())
}

/// Checks a token presented for exchange; its `sub` (JWTs).
fn check_subject_token(
    inner: &Inner,
    token: &str,
    token_type: &str,
) -> Result<Option<String>, String> {
    match token_type {
        ACCESS_TOKEN_TYPE => {
            if inner
                .access_tokens
                .lock()
                .unwrap()
                .iter()
                .any(|t| t == token)
            {
                Ok(None)
            } else {
                Err("not a live access token of this provider".into())
            }
        }
        JWT_TOKEN_TYPE | ID_TOKEN_TYPE => {
            let claims = verify_own_jwt(inner, token)?;
            Ok(claims["sub"].as_str().map(str::to_owned))
        }
        other => Err(format!("token type {other} is not taken")),
    }
}

/// Verifies a JWT signed by one of the provider's published keys (the JWKS's), unexpired.
fn verify_own_jwt(inner: &Inner, token: &str) -> Result<Value, String> {
    let (header, claims) = peek(token)?;
    let alg = algorithm(&header)?;
    let kid = header["kid"]
        .as_str()
        .ok_or("the JWT's header names no kid")?;
    if ![inner.rsa_kid(), "ec-1", "ed-1"].contains(&kid) {
        return Err(format!("kid {kid} is not a key the provider publishes"));
    }
    let jwk = public_jwk(kid);
    if jwk["alg"] != format!("{alg:?}") {
        return Err(format!("alg {alg:?} is not key {kid}'s"));
    }
    let jwk: Jwk = serde_json::from_value(jwk).expect("a published JWK");
    let key = DecodingKey::from_jwk(&jwk).expect("a published key");
    if !signature_verifies(token, &key, alg) {
        return Err(format!(
            "the signature does not verify with the provider's key {kid}"
        ));
    }
    let exp = number(&claims, "exp")?.ok_or("no exp")?;
    let now = unix_now() as f64;
    if exp <= now {
        return Err(format!("exp {exp} is past (now {now})"));
    }
    Ok(claims)
}

/// The GitHub Actions OIDC token endpoint stand-in: for the request token as a bearer token,
/// a JWT about [`ACTIONS_SUBJECT`] for the `audience` asked, signed with the provider's RSA
/// key.
pub(crate) async fn actions_id_token(
    State(inner): State<std::sync::Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let expected = format!("Bearer {}", inner.machine.actions_token);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "test provider: bad or missing request token"})),
        )
            .into_response();
    }
    let audience = q.get("audience").cloned();
    inner
        .machine
        .actions_audiences
        .lock()
        .unwrap()
        .push(audience.clone());
    let now = unix_now();
    let claims = json!({
        "iss": format!("{}/actions", inner.issuer),
        "sub": ACTIONS_SUBJECT,
        "aud": audience.as_deref().unwrap_or(ACTIONS_DEFAULT_AUDIENCE),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": random_hex(16),
        "repository": "acme/app",
        "repository_owner": "acme",
        "ref": "refs/heads/main",
    });
    let kid = inner.rsa_kid();
    let (alg, key) = signing_key(kid);
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = Some(kid.to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    Json(json!({"count": 1, "value": token})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEVICE_GRANT, IdTokenFault, KeyKind, reqwest_client, test_key};
    use std::sync::atomic::AtomicUsize;

    /// A `jti` no other assertion of this process has.
    fn jti() -> String {
        static N: AtomicUsize = AtomicUsize::new(0);
        format!("jti-{}", N.fetch_add(1, Ordering::SeqCst))
    }

    /// Good client assertion claims for `p`.
    fn claims(p: &TestProvider) -> Value {
        let now = unix_now();
        json!({
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": p.url("/token"),
            "iat": now,
            "exp": now + 120,
            "jti": jti(),
        })
    }

    /// Posts a form to `path` (HTTP Basic when given): the status and the JSON body.
    async fn post(
        p: &TestProvider,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = reqwest_client().post(p.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.expect("post");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A client credentials request authenticated by this assertion.
    async fn with_assertion(p: &TestProvider, assertion: &str) -> (StatusCode, Value) {
        post(
            p,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
        )
        .await
    }

    /// Asserts a 401 `invalid_client` whose description holds `why`, and that the last
    /// client assertion recorded was refused for it.
    #[track_caller]
    fn refused_client(p: &TestProvider, (status, body): (StatusCode, Value), why: &str) {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("test provider: ") && description.contains(why),
            "{description:?} does not say {why:?}"
        );
        let last = p.client_assertions().pop().expect("recorded");
        assert!(!last.accepted);
        assert!(last.reason.unwrap().contains(why));
    }

    #[track_caller]
    fn refused(status: StatusCode, code: &str, (got, body): (StatusCode, Value), why: &str) {
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains(why),
            "{description:?} does not say {why:?}"
        );
    }

    #[track_caller]
    fn token_without_refresh(body: &Value) -> String {
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["expires_in"], 3600, "{body}");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let token = body["access_token"].as_str().expect("an access token");
        assert!(token.starts_with("at-"));
        token.to_owned()
    }

    fn hs(alg: Algorithm, secret: &str, claims: &Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(alg),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn unsigned_jwt(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[tokio::test]
    async fn private_key_jwt_of_every_key_type_is_accepted() {
        let p = TestProvider::start().await;
        let dir = tempfile::tempdir().unwrap();
        for kind in [KeyKind::Rsa, KeyKind::P256, KeyKind::P384, KeyKind::Ed25519] {
            let key = test_key(kind, dir.path());
            let claims = claims(&p);
            let assertion = key.sign(&claims);
            refused_client(
                &p,
                with_assertion(&p, &assertion).await,
                &format!("no client key is registered under kid {}", key.kid),
            );
            p.register_client_key(&key);
            let (status, body) = with_assertion(&p, &assertion).await;
            assert_eq!(status, StatusCode::OK, "{kind:?}: {body}");
            let token = token_without_refresh(&body);
            let seen = p.client_assertions().pop().unwrap();
            assert_eq!(
                seen,
                SeenAssertion {
                    alg: Some(format!("{:?}", kind.alg())),
                    kid: Some(key.kid.clone()),
                    typ: Some("JWT".into()),
                    claims: claims.clone(),
                    accepted: true,
                    reason: None,
                }
            );
            let grant = p.machine_grants().pop().unwrap();
            assert_eq!(grant.access_token, token);
            assert_eq!(grant.client_auth, Some(ClientAuthMethod::PrivateKeyJwt));

            // Under its thumbprint too, and with no kid at all.
            let mut header = jsonwebtoken::Header::new(kind.alg());
            header.kid = Some(key.thumbprint.clone());
            let by_thumbprint =
                jsonwebtoken::encode(&header, &self::claims(&p), &key.encoding_key()).unwrap();
            assert_eq!(with_assertion(&p, &by_thumbprint).await.0, StatusCode::OK);
            let no_kid = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(kind.alg()),
                &self::claims(&p),
                &key.encoding_key(),
            )
            .unwrap();
            assert_eq!(with_assertion(&p, &no_kid).await.0, StatusCode::OK);
        }
        assert_eq!(p.grants(CLIENT_CREDENTIALS_GRANT), 12);
        assert_eq!(p.client_assertions().len(), 16);
    }

    #[tokio::test]
    async fn bad_client_assertions_are_refused_saying_why() {
        let p = TestProvider::start().await;
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(KeyKind::Rsa, dir.path());
        p.register_client_key(&key);
        let now = unix_now();
        let with = |name: &str, value: Value| {
            let mut c = claims(&p);
            c[name] = value;
            c
        };
        let iat_future = format!("iat {} is in the future", now + 120);
        let nbf_future = format!("nbf {} is in the future", now + 120);
        let cases: Vec<(Value, &str)> = vec![
            (
                with("aud", json!("https://elsewhere.test/token")),
                "is not the token endpoint",
            ),
            (with("aud", json!(["a", "b"])), "is not the token endpoint"),
            (with("aud", Value::Null), "no aud"),
            (with("exp", json!(now - 5)), "is past"),
            (with("exp", json!(now + 600)), "more than 5 minutes ahead"),
            (with("exp", Value::Null), "no exp"),
            (with("exp", json!("soon")), "exp is not a number"),
            (with("iat", json!(now + 120)), &iat_future),
            (with("iat", Value::Null), "no iat"),
            (with("nbf", json!(now + 120)), &nbf_future),
            (with("jti", Value::Null), "no jti"),
            (
                with("iss", json!("someone")),
                "iss someone is not the client id",
            ),
            (
                with("sub", json!("someone")),
                "sub someone is not the client id",
            ),
            (with("sub", Value::Null), "no sub"),
        ];
        for (claims, why) in cases {
            refused_client(&p, with_assertion(&p, &key.sign(&claims)).await, why);
        }
        // The limits themselves pass: exp 5 minutes ahead, aud in an array.
        let mut ok = with("exp", json!(now + 300));
        ok["aud"] = json!(["other", p.url("/token")]);
        assert_eq!(with_assertion(&p, &key.sign(&ok)).await.0, StatusCode::OK);

        // Replayed.
        let once = key.sign(&claims(&p));
        assert_eq!(with_assertion(&p, &once).await.0, StatusCode::OK);
        refused_client(&p, with_assertion(&p, &once).await, "already used");

        // Signed by another key under the registered kid; an unregistered kid; a key of
        // another type under the kid.
        let other = test_key(KeyKind::Rsa, dir.path());
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        let forged = jsonwebtoken::encode(&header, &claims(&p), &other.encoding_key()).unwrap();
        refused_client(
            &p,
            with_assertion(&p, &forged).await,
            &format!(
                "the signature does not verify with the registered key {}",
                key.kid
            ),
        );
        refused_client(
            &p,
            with_assertion(&p, &other.sign(&claims(&p))).await,
            "no client key is registered under kid",
        );
        let ec = test_key(KeyKind::P256, dir.path());
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(key.kid.clone());
        let mismatched = jsonwebtoken::encode(&header, &claims(&p), &ec.encoding_key()).unwrap();
        refused_client(
            &p,
            with_assertion(&p, &mismatched).await,
            "is an RSA key, which cannot verify ES256",
        );

        // alg none, unknown algs, and garbage.
        let none = unsigned_jwt(&json!({"alg": "none"}), &claims(&p));
        refused_client(&p, with_assertion(&p, &none).await, "alg none is refused");
        let es512 = unsigned_jwt(&json!({"alg": "ES512"}), &claims(&p));
        refused_client(
            &p,
            with_assertion(&p, &es512).await,
            "alg ES512 is not supported",
        );
        refused_client(&p, with_assertion(&p, "garbage").await, "not a JWT");

        // The form: another client_id, a wrong assertion type, a secret as well.
        let (status, body) = post(
            &p,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "someone"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &key.sign(&claims(&p))),
            ],
        )
        .await;
        refused_client(
            &p,
            (status, body),
            "client_id someone is not the assertion's iss",
        );
        let (status, body) = post(
            &p,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &key.sign(&claims(&p))),
            ],
        )
        .await;
        refused_client(&p, (status, body), "client_assertion_type");
        let (status, body) = post(
            &p,
            "/token",
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &key.sign(&claims(&p))),
            ],
        )
        .await;
        refused_client(
            &p,
            (status, body),
            "more than one client authentication method",
        );
        assert!(p.machine_grants().len() == 2, "only the two good ones");
    }

    #[tokio::test]
    async fn client_secret_jwt_takes_the_client_secret_only() {
        let p = TestProvider::start().await;
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let (status, body) = with_assertion(&p, &hs(alg, CLIENT_SECRET, &claims(&p))).await;
            assert_eq!(status, StatusCode::OK, "{alg:?}: {body}");
            let grant = p.machine_grants().pop().unwrap();
            assert_eq!(grant.client_auth, Some(ClientAuthMethod::ClientSecretJwt));
        }
        refused_client(
            &p,
            with_assertion(&p, &hs(Algorithm::HS256, "another-secret", &claims(&p))).await,
            "the signature does not verify with the client secret",
        );
        // A client assertion authenticates the interactive grants too: a device poll.
        let (_, code) = post(&p, "/device/code", None, &[("client_id", CLIENT_ID)]).await;
        let device_code = code["device_code"].as_str().unwrap();
        let poll = |assertion: String| {
            let p = &p;
            async move {
                post(
                    p,
                    "/token",
                    None,
                    &[
                        ("grant_type", DEVICE_GRANT),
                        ("device_code", device_code),
                        ("client_id", CLIENT_ID),
                        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                        ("client_assertion", &assertion),
                    ],
                )
                .await
            }
        };
        refused_client(
            &p,
            poll(hs(Algorithm::HS256, "nope", &claims(&p))).await,
            "does not verify",
        );
        let (status, body) = poll(hs(Algorithm::HS256, CLIENT_SECRET, &claims(&p))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["refresh_token"].is_string());
        assert_eq!(p.grants(DEVICE_GRANT), 1);
    }

    #[tokio::test]
    async fn client_credentials_needs_the_client_and_issues_no_refresh_token() {
        let p = TestProvider::start().await;
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", "read write"),
            ("audience", "https://api.test"),
            ("resource", "https://a.test"),
            ("resource", "https://b.test"),
        ];
        let (status, body) = post(&p, "/token", Some((CLIENT_ID, CLIENT_SECRET)), &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = token_without_refresh(&body);
        assert_eq!(body["scope"], "read write");
        let grant = p.machine_grants().pop().unwrap();
        assert_eq!(grant.client_auth, Some(ClientAuthMethod::ClientSecretBasic));
        assert_eq!(grant.scope.as_deref(), Some("read write"));
        assert_eq!(grant.audience, ["https://api.test"]);
        assert_eq!(grant.resource, ["https://a.test", "https://b.test"]);
        assert_eq!(
            p.token_requests().last().unwrap().form["scope"],
            "read write"
        );

        // The token works on the API, and is revoked like any other.
        let api = reqwest_client()
            .get(p.url("/api/user"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::OK);
        let (status, _) = post(
            &p,
            "/revoke",
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[("token", &token)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(p.revoked(), [token.as_str()]);
        let api = reqwest_client()
            .get(p.url("/api/user"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);

        // In the body, without a scope.
        let (status, body) = post(
            &p,
            "/token",
            None,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        token_without_refresh(&body);
        assert!(body.get("scope").is_none());
        assert_eq!(
            p.machine_grants().pop().unwrap().client_auth,
            Some(ClientAuthMethod::ClientSecretPost)
        );

        // Refused: a wrong secret, no authentication (even as a public client), both at once.
        let cc = [("grant_type", "client_credentials")];
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            post(&p, "/token", Some((CLIENT_ID, "wrong")), &cc).await,
            "the HTTP Basic credentials are not the client's",
        );
        p.set_public_client(true);
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            post(&p, "/token", None, &[cc[0], ("client_id", CLIENT_ID)]).await,
            "client_credentials needs client authentication",
        );
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            post(
                &p,
                "/token",
                Some((CLIENT_ID, CLIENT_SECRET)),
                &[cc[0], ("client_secret", CLIENT_SECRET)],
            )
            .await,
            "more than one client authentication method",
        );
        assert_eq!(p.grants(CLIENT_CREDENTIALS_GRANT), 2);

        // Scripted responses come first; the TTL is honoured; the delay holds the answer.
        p.script([crate::Scripted::Json(
            503,
            json!({"error": "temporarily_unavailable"}),
        )]);
        let (status, _) = post(&p, "/token", Some((CLIENT_ID, CLIENT_SECRET)), &cc).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        p.set_ttl(60);
        p.set_grant_delay(Duration::from_millis(300));
        let started = std::time::Instant::now();
        let (_, body) = post(&p, "/token", Some((CLIENT_ID, CLIENT_SECRET)), &cc).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(body["expires_in"], 60);
        assert_eq!(p.grants(CLIENT_CREDENTIALS_GRANT), 3);
    }

    /// Google's way: the service account's key signs an assertion whose `iss` is its email,
    /// `scope` a claim, `aud` the `token_uri`.
    fn google_assertion(p: &TestProvider, file: &Value) -> Value {
        let now = unix_now();
        json!({
            "iss": file["client_email"],
            "scope": "https://www.googleapis.com/auth/cloud-platform openid",
            "aud": p.url("/token"),
            "iat": now,
            "exp": now + 3600,
        })
    }

    #[tokio::test]
    async fn jwt_bearer_grant_takes_a_service_account_assertion() {
        let p = TestProvider::start().await;
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(KeyKind::Rsa, dir.path());
        let path = p.service_account_file(&key, dir.path());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file["type"], "service_account");
        assert_eq!(file["private_key_id"], key.kid);
        assert_eq!(file["client_email"], SERVICE_ACCOUNT_EMAIL);
        assert_eq!(file["token_uri"], p.url("/token"));
        let pem = file["private_key"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(pem, std::fs::read_to_string(&key.private_pem).unwrap());

        let grant = |assertion: String| {
            let p = &p;
            async move {
                post(
                    p,
                    "/token",
                    None,
                    &[("grant_type", JWT_BEARER_GRANT), ("assertion", &assertion)],
                )
                .await
            }
        };
        let claims = google_assertion(&p, &file);
        let (status, body) = grant(key.sign(&claims)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        token_without_refresh(&body);
        assert_eq!(body["scope"], claims["scope"]);
        let record = p.machine_grants().pop().unwrap();
        assert_eq!(record.grant_type, JWT_BEARER_GRANT);
        assert_eq!(record.client_auth, None);
        assert_eq!(record.subject.as_deref(), Some(SERVICE_ACCOUNT_EMAIL));
        assert_eq!(record.assertion.as_ref(), Some(&claims));
        assert!(p.grant_assertions().pop().unwrap().accepted);
        assert_eq!(p.grants(JWT_BEARER_GRANT), 1);

        // ES256 and EdDSA keys too, the scope from the form, a `sub`.
        for kind in [KeyKind::P256, KeyKind::Ed25519] {
            let key = test_key(kind, dir.path());
            p.register_client_key(&key);
            let mut claims = google_assertion(&p, &file);
            claims.as_object_mut().unwrap().remove("scope");
            claims["sub"] = json!("user@example.test");
            let (status, body) = post(
                &p,
                "/token",
                None,
                &[
                    ("grant_type", JWT_BEARER_GRANT),
                    ("assertion", &key.sign(&claims)),
                    ("scope", "email"),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{kind:?}: {body}");
            assert_eq!(body["scope"], "email");
            let record = p.machine_grants().pop().unwrap();
            assert_eq!(record.subject.as_deref(), Some("user@example.test"));
        }

        // Refused with invalid_grant, saying why.
        let now = unix_now();
        let with = |name: &str, value: Value| {
            let mut c = google_assertion(&p, &file);
            c[name] = value;
            c
        };
        let cases = [
            (
                with("exp", json!(now + 7200)),
                "more than an hour after iat",
            ),
            (with("exp", json!(now - 1)), "is past"),
            (
                with("aud", json!("https://oauth2.googleapis.com/token")),
                "aud",
            ),
            (with("iss", Value::Null), "no iss"),
            (with("iat", Value::Null), "no iat"),
            (with("iat", json!(now + 600)), "in the future"),
        ];
        for (claims, why) in cases {
            refused(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                grant(key.sign(&claims)).await,
                why,
            );
            let seen = p.grant_assertions().pop().unwrap();
            assert!(!seen.accepted && seen.reason.unwrap().contains(why));
        }
        let stranger = test_key(KeyKind::Rsa, dir.path());
        refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            grant(stranger.sign(&google_assertion(&p, &file))).await,
            "no client key is registered under kid",
        );
        refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            grant(hs(Algorithm::HS256, CLIENT_SECRET, &claims)).await,
            "must be signed with a registered key",
        );
        refused(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            grant(unsigned_jwt(&json!({"alg": "none"}), &claims)).await,
            "alg none",
        );
        refused(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            post(&p, "/token", None, &[("grant_type", JWT_BEARER_GRANT)]).await,
            "needs an assertion",
        );
        // Client authentication is optional, but must be right when given.
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            post(
                &p,
                "/token",
                Some((CLIENT_ID, "wrong")),
                &[
                    ("grant_type", JWT_BEARER_GRANT),
                    ("assertion", &key.sign(&google_assertion(&p, &file))),
                ],
            )
            .await,
            "not the client's",
        );
        assert_eq!(p.grants(JWT_BEARER_GRANT), 3);
    }

    async fn actions_token(p: &TestProvider, audience: Option<&str>) -> String {
        let env: HashMap<_, _> = p.actions_env().into_iter().collect();
        let mut url = env["ACTIONS_ID_TOKEN_REQUEST_URL"].clone();
        if let Some(audience) = audience {
            url.push_str(&format!("&audience={audience}"));
        }
        let response = reqwest_client()
            .get(url)
            .bearer_auth(&env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(body["count"], 1);
        body["value"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn actions_stand_in_signs_for_its_request_token_only() {
        let p = TestProvider::start().await;
        let env: HashMap<_, _> = p.actions_env().into_iter().collect();
        assert_eq!(
            env["ACTIONS_ID_TOKEN_REQUEST_URL"],
            p.url("/actions/id-token?api-version=2.0")
        );
        let request_token = &env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"];
        assert!(request_token.len() >= 32);
        let url = &env["ACTIONS_ID_TOKEN_REQUEST_URL"];
        for bearer in [Some("wrong"), None] {
            let mut request = reqwest_client().get(url);
            if let Some(b) = bearer {
                request = request.bearer_auth(b);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let token = actions_token(&p, Some("sts.example.test")).await;
        let claims = verify_own_jwt(&p.inner, &token).expect("signed by a published key");
        assert_eq!(claims["iss"], format!("{}/actions", p.issuer()));
        assert_eq!(claims["sub"], ACTIONS_SUBJECT);
        assert_eq!(claims["aud"], "sts.example.test");
        let now = unix_now();
        let exp = claims["exp"].as_u64().unwrap();
        assert!(exp > now && exp <= now + 300);
        assert!(claims["jti"].is_string());
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("rsa-1"));
        assert_eq!(header.alg, Algorithm::RS256);
        // And with the JWKS, as a relying party would.
        let jwks = reqwest_client()
            .get(p.url("/jwks"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let jwks: Value = serde_json::from_str(&jwks).unwrap();
        let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&["sts.example.test"]);
        v.set_issuer(&[format!("{}/actions", p.issuer())]);
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &v).unwrap();

        let token = actions_token(&p, None).await;
        assert_eq!(
            verify_own_jwt(&p.inner, &token).unwrap()["aud"],
            ACTIONS_DEFAULT_AUDIENCE
        );
        assert_eq!(
            p.actions_audiences(),
            [Some("sts.example.test".to_owned()), None]
        );
    }

    #[tokio::test]
    async fn token_exchange_takes_the_providers_own_tokens_only() {
        let p = TestProvider::start().await;
        let exchange = |form: Vec<(&'static str, String)>| {
            let p = &p;
            async move {
                let mut all = vec![("grant_type", TOKEN_EXCHANGE_GRANT.to_owned())];
                all.extend(form);
                let borrowed: Vec<(&str, &str)> =
                    all.iter().map(|(k, v)| (*k, v.as_str())).collect();
                post(p, "/token", None, &borrowed).await
            }
        };
        // An access token it issued.
        let (_, body) = post(
            &p,
            "/token",
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        let access = body["access_token"].as_str().unwrap().to_owned();
        let (status, body) = exchange(vec![
            ("subject_token", access.clone()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.into()),
            ("audience", "https://downstream.test".into()),
            ("resource", "https://r1.test".into()),
            ("resource", "https://r2.test".into()),
            ("scope", "read".into()),
            ("requested_token_type", ACCESS_TOKEN_TYPE.into()),
        ])
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let exchanged = token_without_refresh(&body);
        assert_ne!(exchanged, access);
        assert_eq!(body["issued_token_type"], ACCESS_TOKEN_TYPE);
        assert_eq!(body["scope"], "read");
        let record = p.machine_grants().pop().unwrap();
        assert_eq!(record.subject_token.as_deref(), Some(access.as_str()));
        assert_eq!(
            record.subject_token_type.as_deref(),
            Some(ACCESS_TOKEN_TYPE)
        );
        assert_eq!(
            record.requested_token_type.as_deref(),
            Some(ACCESS_TOKEN_TYPE)
        );
        assert_eq!(record.audience, ["https://downstream.test"]);
        assert_eq!(record.resource, ["https://r1.test", "https://r2.test"]);
        assert_eq!(record.subject, None);

        // A GitHub Actions token, as a JWT and as an id_token; then an id_token it issued.
        let actions = actions_token(&p, Some("https://sts.test")).await;
        for token_type in [JWT_TOKEN_TYPE, ID_TOKEN_TYPE] {
            let (status, body) = exchange(vec![
                ("subject_token", actions.clone()),
                ("subject_token_type", token_type.into()),
            ])
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let record = p.machine_grants().pop().unwrap();
            assert_eq!(record.subject.as_deref(), Some(ACTIONS_SUBJECT));
            assert_eq!(record.subject_token_type.as_deref(), Some(token_type));
        }
        let id_token = p.inner.mint_id_token("at-x", None);
        let (status, _) = exchange(vec![
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN_TYPE.into()),
            ("actor_token", actions.clone()),
            ("actor_token_type", JWT_TOKEN_TYPE.into()),
        ])
        .await;
        assert_eq!(status, StatusCode::OK);
        let record = p.machine_grants().pop().unwrap();
        assert_eq!(record.subject.as_deref(), Some(crate::SUBJECT));
        assert_eq!(record.actor.as_deref(), Some(ACTIONS_SUBJECT));
        assert_eq!(p.grants(TOKEN_EXCHANGE_GRANT), 4);

        // Refused.
        let bad = |token: String, token_type: &str, why: &'static str| {
            let exchange = &exchange;
            let token_type = token_type.to_owned();
            async move {
                refused(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    exchange(vec![
                        ("subject_token", token),
                        ("subject_token_type", token_type),
                    ])
                    .await,
                    why,
                );
            }
        };
        bad(
            "at-999".into(),
            ACCESS_TOKEN_TYPE,
            "not a live access token",
        )
        .await;
        bad("garbage".into(), JWT_TOKEN_TYPE, "not a JWT").await;
        bad(
            actions.clone(),
            ACCESS_TOKEN_TYPE,
            "not a live access token",
        )
        .await;
        bad(
            access.clone(),
            "urn:ietf:params:oauth:token-type:refresh_token",
            "is not taken",
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let stranger = test_key(KeyKind::Rsa, dir.path());
        let now = unix_now();
        let foreign = stranger.sign(&json!({"sub": "x", "exp": now + 60}));
        bad(foreign, JWT_TOKEN_TYPE, "not a key the provider publishes").await;
        p.set_id_token_fault(IdTokenFault::Expired);
        bad(
            p.inner.mint_id_token("at-x", None),
            ID_TOKEN_TYPE,
            "is past",
        )
        .await;
        p.set_id_token_fault(IdTokenFault::BadSignature);
        bad(
            p.inner.mint_id_token("at-x", None),
            ID_TOKEN_TYPE,
            "does not verify",
        )
        .await;
        p.set_id_token_fault(IdTokenFault::None);
        // A revoked access token, and one from a key rotated out of the JWKS.
        post(
            &p,
            "/revoke",
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[("token", &access)],
        )
        .await;
        bad(access.clone(), ACCESS_TOKEN_TYPE, "not a live access token").await;
        p.rotate_signing_key();
        bad(
            actions.clone(),
            JWT_TOKEN_TYPE,
            "kid rsa-1 is not a key the provider publishes",
        )
        .await;

        for (form, why) in [
            (
                vec![("subject_token", exchanged.clone())],
                "needs subject_token and subject_token_type",
            ),
            (
                vec![
                    ("subject_token", exchanged.clone()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE.into()),
                    ("requested_token_type", "urn:x:made-up".into()),
                ],
                "not a token type",
            ),
            (
                vec![
                    ("subject_token", exchanged.clone()),
                    ("subject_token_type", ACCESS_TOKEN_TYPE.into()),
                    ("actor_token", exchanged.clone()),
                ],
                "go together",
            ),
        ] {
            refused(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                exchange(form).await,
                why,
            );
        }
        assert_eq!(p.grants(TOKEN_EXCHANGE_GRANT), 4);
    }

    #[tokio::test]
    async fn revocation_takes_a_client_assertion() {
        let p = TestProvider::start().await;
        let dir = tempfile::tempdir().unwrap();
        let key = test_key(KeyKind::P256, dir.path());
        p.register_client_key_pem(None, key.public_pem_text());
        let mut no_kid = claims(&p);
        no_kid["aud"] = json!(p.url("/revoke"));
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::ES256),
            &no_kid,
            &key.encoding_key(),
        )
        .unwrap();
        let (_, body) = with_assertion(&p, &key.sign(&claims(&p))).await;
        refused_client(
            &p,
            (StatusCode::UNAUTHORIZED, body),
            "no client key is registered under kid",
        );
        let (_, body) = post(
            &p,
            "/token",
            Some((CLIENT_ID, CLIENT_SECRET)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        let token = body["access_token"].as_str().unwrap();
        let revoke = |assertion: String| {
            let p = &p;
            async move {
                post(
                    p,
                    "/revoke",
                    None,
                    &[
                        ("token", token),
                        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                        ("client_assertion", &assertion),
                    ],
                )
                .await
            }
        };
        refused_client(&p, revoke("garbage".into()).await, "not a JWT");
        assert!(p.revoked().is_empty());
        assert_eq!(revoke(assertion).await.0, StatusCode::OK);
        assert_eq!(p.revoked(), [token]);
        p.clear_client_keys();
        refused_client(
            &p,
            with_assertion(
                &p,
                &jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(Algorithm::ES256),
                    &claims(&p),
                    &key.encoding_key(),
                )
                .unwrap(),
            )
            .await,
            "no client key is registered",
        );
    }

    /// Fifty at once: each gets its own token, and every one is counted.
    #[tokio::test]
    async fn concurrent_grants_are_each_counted() {
        let p = TestProvider::start().await;
        p.set_grant_delay(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let all = futures_util::future::join_all((0..50).map(|_| {
            post(
                &p,
                "/token",
                Some((CLIENT_ID, CLIENT_SECRET)),
                &[("grant_type", "client_credentials")],
            )
        }))
        .await;
        assert!(started.elapsed() < Duration::from_secs(5), "delays overlap");
        let tokens: HashSet<String> = all
            .iter()
            .map(|(s, b)| {
                assert_eq!(*s, StatusCode::OK);
                b["access_token"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(tokens.len(), 50);
        assert_eq!(p.grants(CLIENT_CREDENTIALS_GRANT), 50);
        assert_eq!(p.grants(JWT_BEARER_GRANT), 0);
    }
}
