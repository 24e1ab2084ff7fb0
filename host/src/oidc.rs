//! OpenID Connect: provider discovery (cached for its HTTP lifetime, bounded; RFC 8414
//! authorization server metadata where a plain OAuth2 server has no OpenID Connect document)
//! and `id_token` validation against the provider's published keys.
//!
//! Signatures are checked by [`jsonwebtoken`] (on `ring`, the crypto the TLS stack already
//! uses); this module decides which key and which claims: the key by `kid` from the JWKS
//! (fetched again once when a `kid` is unknown, as after a key rotation), only asymmetric
//! algorithms, the key's type matching the algorithm; then `iss`, `aud` (and `azp` with several
//! audiences), `exp` and `iat` with a bounded skew, the `nonce` of the login and `at_hash`.
//! Errors say which check failed, never the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::flow::FlowError;
use crate::net::http::{HttpClient, HttpError, require_secure};
use crate::util::text::sanitize;

/// The clock skew accepted on `exp` and `iat`.
pub const MAX_SKEW: Duration = Duration::from_secs(120);
/// The longest a discovery document is reused, whatever its `Cache-Control` says.
pub const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// How long a discovery document is reused when the provider gives no lifetime.
pub const DEFAULT_CACHE: Duration = Duration::from_secs(3600);

/// Which metadata document a server published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetadataKind {
    /// OpenID Connect discovery (`ISSUER/.well-known/openid-configuration`): `id_token`s are
    /// validated against its `jwks_uri`.
    #[default]
    OpenIdConnect,
    /// OAuth 2.0 authorization server metadata (RFC 8414,
    /// `/.well-known/oauth-authorization-server` inserted before the issuer's path): a plain
    /// OAuth2 server, no `id_token`s.
    OAuth2,
}

impl MetadataKind {
    /// What the document is called in messages.
    fn document(self) -> &'static str {
        match self {
            MetadataKind::OpenIdConnect => "an OpenID Connect discovery document",
            MetadataKind::OAuth2 => "OAuth 2.0 authorization server metadata (RFC 8414)",
        }
    }

    /// The document's address for `issuer` (an https URL, already checked).
    fn url(self, issuer: &Url) -> String {
        match self {
            MetadataKind::OpenIdConnect => format!(
                "{}/.well-known/openid-configuration",
                issuer.as_str().trim_end_matches('/')
            ),
            // RFC 8414 §3.1: the well-known segment goes between the host and the path.
            MetadataKind::OAuth2 => {
                let path = issuer.path().trim_end_matches('/');
                let mut url = issuer.clone();
                url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
                url.set_query(None);
                url.set_fragment(None);
                url.to_string()
            }
        }
    }
}

/// The parts of a provider's metadata (OpenID Connect discovery, or RFC 8414 for a plain OAuth2
/// server) the host uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer identifier; equal to the configured issuer.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: Url,
    /// The token endpoint.
    pub token_endpoint: Url,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// The userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<Url>,
    /// Where the signing keys are published (always there for OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// Whether callbacks carry `iss` (RFC 9207); then a callback without it is refused.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Which document this came from (not a field of either: set by [`discover`]).
    #[serde(skip)]
    pub kind: MetadataKind,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The configured issuer is not an https URL (or http on a loopback address), or carries
    /// a user name, password, query or fragment (which neither specification allows).
    #[error("the issuer `{issuer}` {reason}")]
    BadIssuer {
        /// The configured issuer without user name, password, query and fragment, sanitized.
        issuer: String,
        /// What is wrong.
        reason: &'static str,
        /// Why.
        #[source]
        source: Option<HttpError>,
    },
    /// The document could not be fetched.
    #[error("cannot fetch the discovery document {url}")]
    Unreachable {
        /// Its address.
        url: String,
        /// Why.
        #[source]
        source: HttpError,
    },
    /// The server answered with an error status.
    #[error("the discovery document {url} answered HTTP {status}")]
    Status {
        /// Its address.
        url: String,
        /// The status.
        status: u16,
    },
    /// The answer is not a metadata document.
    #[error("{url} is not {document} ({reason})")]
    Invalid {
        /// Its address.
        url: String,
        /// Which document was expected.
        document: &'static str,
        /// What is wrong (never the body).
        reason: String,
    },
    /// Neither document is published: the issuer is not an OpenID Connect provider nor an
    /// OAuth2 server with RFC 8414 metadata.
    #[error(
        "the issuer publishes no metadata: {oidc} ({oidc_why}) nor {oauth2} ({oauth2_why}); set authorize_url and token_url instead"
    )]
    NotPublished {
        /// The OpenID Connect discovery address.
        oidc: String,
        /// What it answered.
        oidc_why: String,
        /// The RFC 8414 address.
        oauth2: String,
        /// What it answered.
        oauth2_why: String,
    },
    /// The document names another issuer (a mix-up or a wrong setting).
    #[error("the discovery document names the issuer `{got}`, not the configured `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The document's, sanitized.
        got: String,
    },
    /// An endpoint in the document is not https.
    #[error("the discovery document's {field} is not an https URL")]
    Insecure {
        /// The field.
        field: &'static str,
        /// Why.
        #[source]
        source: HttpError,
    },
}

impl DiscoveryError {
    /// The flow error a caller acts on: a network failure may pass, the rest is configuration.
    pub fn into_flow_error(self, provider: &str) -> FlowError {
        if self.is_transient() {
            return FlowError::Transient {
                retry_after: None,
                source: Box::new(self),
            };
        }
        FlowError::InvalidConfig {
            message: format!("providers.{provider}.issuer: discovery failed"),
            source: Some(Box::new(self)),
        }
    }

    /// A network failure, a server error or a rate limit: worth trying again later, never a
    /// reason to look elsewhere.
    fn is_transient(&self) -> bool {
        match self {
            DiscoveryError::Unreachable { source, .. } => source.is_transient(),
            DiscoveryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Not there: 404 or 410, or a page that is not JSON and does not say it is, as servers
    /// answer for a path they do not serve. Then the other document is tried; anything else
    /// (401, 403, broken JSON) is an error, never a reason to fall back to plain OAuth2.
    fn is_absent(&self) -> bool {
        match self {
            DiscoveryError::Status { status, .. } => matches!(status, 404 | 410),
            DiscoveryError::Invalid { reason, .. } => reason == NOT_JSON,
            _ => false,
        }
    }

    /// What the server answered, for [`DiscoveryError::NotPublished`].
    fn answer(&self) -> String {
        match self {
            DiscoveryError::Status { status, .. } => format!("HTTP {status}"),
            _ => NOT_JSON.to_owned(),
        }
    }
}

const NOT_JSON: &str = "not JSON";

/// What the discovery cache keeps on disk.
#[derive(Serialize, Deserialize)]
struct CachedDocument {
    expires_at: DateTime<Utc>,
    document: ProviderMetadata,
    /// Which document it is (caches written before RFC 8414 was tried hold OpenID Connect
    /// ones).
    #[serde(default)]
    kind: MetadataKind,
}

/// The metadata of `issuer`: from the cache folder while its lifetime lasts, else fetched,
/// checked and cached (`Cache-Control: max-age`, at most [`MAX_CACHE`]; [`DEFAULT_CACHE`]
/// without one; `no-store` is honoured).
///
/// OpenID Connect discovery is asked first; where the server has no such document (404 or
/// 410, or a page that neither is nor says it is JSON), its RFC 8414 authorization server
/// metadata. Anything else (a network failure, 401/403/429, a 5xx, broken JSON) is reported
/// as it is: it does not mean the document is absent.
pub async fn discover(
    issuer: &str,
    http: &HttpClient,
    cache_dir: Option<&Path>,
) -> Result<ProviderMetadata, DiscoveryError> {
    let issuer_url = checked_issuer(issuer)?;
    let cache_file = cache_dir.map(|d| cache_path(d, issuer));
    if let Some(file) = &cache_file
        && let Some(document) = read_cache(file, issuer)
    {
        return Ok(document);
    }
    let (document, lifetime) =
        match fetch(issuer, &issuer_url, MetadataKind::OpenIdConnect, http).await {
            Err(oidc) if oidc.is_absent() => {
                match fetch(issuer, &issuer_url, MetadataKind::OAuth2, http).await {
                    Err(oauth2) if oauth2.is_absent() => {
                        return Err(DiscoveryError::NotPublished {
                            oidc: MetadataKind::OpenIdConnect.url(&issuer_url),
                            oidc_why: oidc.answer(),
                            oauth2: MetadataKind::OAuth2.url(&issuer_url),
                            oauth2_why: oauth2.answer(),
                        });
                    }
                    other => other?,
                }
            }
            other => other?,
        };
    if let (Some(file), Some(lifetime)) = (&cache_file, lifetime) {
        let cached = CachedDocument {
            expires_at: Utc::now()
                + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero()),
            document: document.clone(),
            kind: document.kind,
        };
        // A cache that cannot be written costs a fetch next time, nothing more.
        if let Ok(bytes) = serde_json::to_vec(&cached)
            && let Some(dir) = file.parent()
            && crate::util::private_fs::ensure_private_dir(dir).is_ok()
            && let Err(e) = crate::util::private_fs::write_atomic(file, &[&bytes])
        {
            tracing::debug!("cannot cache the discovery document: {e}");
        }
    }
    Ok(document)
}

/// The issuer as a URL: https (or http to loopback), without user name, password, query or
/// fragment (OpenID Connect Discovery §4 and RFC 8414 §2; a password there would be sent to
/// the well-known address and quoted in messages).
fn checked_issuer(issuer: &str) -> Result<Url, DiscoveryError> {
    let Ok(url) = Url::parse(issuer) else {
        return Err(DiscoveryError::BadIssuer {
            issuer: "(not shown)".into(),
            reason: "is not a URL",
            source: None,
        });
    };
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    let bad = |reason, source| DiscoveryError::BadIssuer {
        issuer: sanitize(shown.as_str(), 200),
        reason,
        source,
    };
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad(
            "must not carry a user name, password, query or fragment",
            None,
        ));
    }
    require_secure(&url).map_err(|e| bad("is not an https URL", Some(e)))?;
    Ok(url)
}

/// Checks a metadata document (fetched, or read from the cache) against the issuer it is
/// for: the issuer exactly, a `jwks_uri` for OpenID Connect, every endpoint https (or
/// loopback).
fn check_document(
    document: &ProviderMetadata,
    issuer: &str,
    url: &str,
) -> Result<(), DiscoveryError> {
    if document.kind == MetadataKind::OpenIdConnect && document.jwks_uri.is_none() {
        return Err(DiscoveryError::Invalid {
            url: url.to_owned(),
            document: document.kind.document(),
            reason: "it names no jwks_uri".into(),
        });
    }
    // Both specifications require the document's issuer to be exactly the one asked about.
    if document.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: sanitize(issuer, 200),
            got: sanitize(&document.issuer, 200),
        });
    }
    let endpoints = [
        (
            "authorization_endpoint",
            Some(&document.authorization_endpoint),
        ),
        ("token_endpoint", Some(&document.token_endpoint)),
        ("jwks_uri", document.jwks_uri.as_ref()),
        (
            "device_authorization_endpoint",
            document.device_authorization_endpoint.as_ref(),
        ),
        ("revocation_endpoint", document.revocation_endpoint.as_ref()),
        ("userinfo_endpoint", document.userinfo_endpoint.as_ref()),
    ];
    for (field, url) in endpoints {
        if let Some(url) = url {
            require_secure(url).map_err(|source| DiscoveryError::Insecure { field, source })?;
        }
    }
    Ok(())
}

/// Fetches and checks one kind of metadata document; with how long it may be cached.
async fn fetch(
    issuer: &str,
    issuer_url: &Url,
    kind: MetadataKind,
    http: &HttpClient,
) -> Result<(ProviderMetadata, Option<Duration>), DiscoveryError> {
    let url = kind.url(issuer_url);
    let request = http::Request::get(&url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|_| DiscoveryError::BadIssuer {
            issuer: sanitize(issuer, 200),
            reason: "does not make a request",
            source: None,
        })?;
    let response = http
        .send(request)
        .await
        .map_err(|source| DiscoveryError::Unreachable {
            url: url.clone(),
            source,
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::Status {
            url,
            status: status.as_u16(),
        });
    }
    let invalid = |reason: &str| DiscoveryError::Invalid {
        url: url.clone(),
        document: kind.document(),
        reason: reason.to_owned(),
    };
    // Only a page that does not even say it is JSON (a catch-all route's HTML) counts as no
    // document; broken JSON is a broken document.
    let says_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
    let mut document: ProviderMetadata = serde_json::from_slice(response.body()).map_err(|e| {
        invalid(match e.classify() {
            serde_json::error::Category::Data => {
                "a required field is missing or has the wrong type"
            }
            _ if says_json => "broken JSON",
            _ => NOT_JSON,
        })
    })?;
    document.kind = kind;
    check_document(&document, issuer, &url)?;
    Ok((document, cache_lifetime(response.headers())))
}

fn cache_path(dir: &Path, issuer: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, issuer.as_bytes());
    let name: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!("{name}.json"))
}

fn read_cache(file: &Path, issuer: &str) -> Option<ProviderMetadata> {
    // Only a document this user cached, in a folder only this user can write: another user's
    // could name their own endpoints (which would get the code, the PKCE verifier and the
    // client secret) and their own keys (which would sign id_tokens). Never blocks on a FIFO,
    // never follows a link; bounded like a fetched document.
    let dir = file.parent()?;
    for folder in dir.ancestors().skip(1).take(2) {
        crate::util::private_fs::warn_if_open(folder);
    }
    match crate::util::private_fs::trusted_dir(dir) {
        Ok(()) => {}
        Err(crate::util::private_fs::Untrusted::Missing) => return None,
        Err(why) => {
            crate::util::private_fs::warn_untrusted(dir, &why);
            return None;
        }
    }
    let (bytes, _) = crate::util::private_fs::read_own(file, 1 << 20)?;
    let cached: CachedDocument = serde_json::from_slice(&bytes).ok()?;
    let mut document = cached.document;
    document.kind = cached.kind;
    let now = Utc::now();
    let fresh = cached.expires_at > now
        && cached.expires_at
            <= now + chrono::Duration::from_std(MAX_CACHE).unwrap_or(chrono::Duration::zero());
    // Checked as a fetched one is: a cache that was edited is refetched, not trusted.
    let checked = check_document(&document, issuer, "the cached document");
    (fresh && checked.is_ok()).then_some(document)
}

/// How long a response may be reused: `None` for `no-store`/`no-cache`, else `max-age`
/// bounded by [`MAX_CACHE`], else [`DEFAULT_CACHE`].
fn cache_lifetime(headers: &http::HeaderMap) -> Option<Duration> {
    let Some(value) = headers
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return Some(DEFAULT_CACHE);
    };
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return None;
        }
        if let Some(age) = lower.strip_prefix("max-age=") {
            max_age = age.trim_matches('"').parse::<u64>().ok();
        }
    }
    match max_age {
        Some(0) => None,
        Some(secs) => Some(Duration::from_secs(secs).min(MAX_CACHE)),
        None => Some(DEFAULT_CACHE),
    }
}

/// The claims of a validated `id_token` the host keeps: who the user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer.
    pub iss: String,
    /// The subject: the user's stable identifier at the issuer.
    pub sub: String,
    /// The user's email address, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's name, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The user's preferred login name, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl IdTokenClaims {
    /// The name to show for the account: email, else login name, else name, else subject;
    /// sanitized.
    pub fn label(&self) -> String {
        let text = self
            .email
            .as_deref()
            .or(self.preferred_username.as_deref())
            .or(self.name.as_deref())
            .unwrap_or(&self.sub);
        sanitize(text, 100)
    }
}

/// Why an `id_token` was refused. The message names the check, never the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The token response carries no `id_token` although `openid` was asked for.
    #[error("the provider sent no id_token although the login asked for `openid`")]
    Missing,
    /// Not a JWT.
    #[error("the id_token is not a well-formed JWT")]
    Malformed,
    /// An algorithm the host does not accept (symmetric ones, `none`).
    #[error("the id_token is signed with {0}, which is not accepted")]
    Algorithm(String),
    /// No published key has the token's `kid`, even after fetching the keys again.
    #[error(
        "the id_token is signed with a key the provider does not publish (kid `{kid}`), even after fetching its keys again"
    )]
    UnknownKey {
        /// The key id, sanitized.
        kid: String,
    },
    /// The signature does not verify.
    #[error("the id_token's signature does not verify")]
    Signature,
    /// `iss` is not the provider's issuer.
    #[error("the id_token's issuer (iss) is not `{expected}`")]
    Issuer {
        /// The issuer expected.
        expected: String,
    },
    /// `aud` does not name this client, or `azp` is missing or another client.
    #[error("the id_token is meant for another client ({0})")]
    Audience(&'static str),
    /// `exp` has passed.
    #[error("the id_token has expired")]
    Expired,
    /// `iat` is missing or in the future.
    #[error("the id_token's issue time (iat) is {0}")]
    IssuedAt(&'static str),
    /// `nonce` is missing or not the login's.
    #[error("the id_token's nonce {0}")]
    Nonce(&'static str),
    /// `at_hash` does not match the access token.
    #[error("the id_token's at_hash does not match the access token")]
    AtHash,
    /// A required claim is missing or unusable.
    #[error("the id_token's `{0}` claim is missing or unusable")]
    Claim(&'static str),
    /// The subject differs from the one of the login (a refresh must keep it).
    #[error("the refreshed id_token names another user (sub) than the login")]
    SubjectChanged,
    /// The keys could not be fetched.
    #[error("cannot fetch the provider's signing keys (jwks_uri)")]
    Keys(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<IdTokenError> for FlowError {
    fn from(e: IdTokenError) -> Self {
        match &e {
            IdTokenError::Keys(_) => FlowError::Transient {
                retry_after: None,
                source: Box::new(e),
            },
            _ => FlowError::Failed(Box::new(IdTokenRefused(e))),
        }
    }
}

/// A token response refused because of its `id_token`.
#[derive(Debug, thiserror::Error)]
#[error("the id_token was refused")]
pub struct IdTokenRefused(#[source] pub IdTokenError);

/// What the `nonce` claim must be.
#[derive(Debug, Clone, Copy)]
pub enum NonceCheck<'a> {
    /// Equal to this (the login sent it in the authorization request).
    Equals(&'a str),
    /// Not checked (refresh and device grants send no nonce).
    Unchecked,
}

/// Validates a provider's `id_token`s for one client. Keys are fetched on first use and kept.
pub struct IdTokenVerifier {
    issuer: String,
    /// Other `iss` values accepted for the same issuer.
    aliases: Vec<String>,
    client_id: String,
    jwks_uri: Url,
    http: HttpClient,
    keys: tokio::sync::Mutex<Option<JwkSet>>,
}

impl std::fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri.as_str())
            .finish()
    }
}

/// The algorithms accepted: asymmetric ones only.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The claims read from the token before they are checked.
#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    #[serde(default)]
    sub: Option<String>,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    at_hash: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(#[allow(dead_code, reason = "only its shape matters")] String),
    Many(Vec<String>),
}

impl IdTokenVerifier {
    /// A verifier for tokens `issuer` issues to `client_id`, with keys from `jwks_uri`.
    pub fn new(issuer: String, client_id: String, jwks_uri: Url, http: HttpClient) -> Self {
        Self {
            issuer,
            aliases: Vec::new(),
            client_id,
            jwks_uri,
            http,
            keys: tokio::sync::Mutex::new(None),
        }
    }

    /// Also accepts these `iss` values: other spellings the provider documents for the same
    /// issuer (Google's `id_token`s say `accounts.google.com` or `https://accounts.google.com`).
    pub fn also_issued_as(mut self, issuers: Vec<String>) -> Self {
        self.aliases = issuers;
        self
    }

    /// Whether `iss` names this verifier's issuer.
    fn is_issuer(&self, iss: &str) -> bool {
        iss == self.issuer || self.aliases.iter().any(|a| a == iss)
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Validates `id_token` (see the module documentation); `access_token` is checked against
    /// `at_hash` when the token has one.
    pub async fn verify(
        &self,
        id_token: &str,
        access_token: &str,
        nonce: NonceCheck<'_>,
    ) -> Result<IdTokenClaims, IdTokenError> {
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| IdTokenError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let key = self.key(header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = MAX_SKEW.as_secs();
        let issuers: Vec<&str> = std::iter::once(self.issuer.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .collect();
        validation.set_issuer(&issuers);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<RawClaims>(id_token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::Crypto(_) => {
                    IdTokenError::Signature
                }
                K::ExpiredSignature => IdTokenError::Expired,
                K::InvalidIssuer => IdTokenError::Issuer {
                    expected: sanitize(&self.issuer, 200),
                },
                K::InvalidAudience => IdTokenError::Audience("aud"),
                K::MissingRequiredClaim(c) => IdTokenError::Claim(match c.as_str() {
                    "exp" => "exp",
                    "iss" => "iss",
                    _ => "aud",
                }),
                K::ImmatureSignature => IdTokenError::IssuedAt("in the future"),
                K::InvalidAlgorithm => IdTokenError::Algorithm(format!("{:?}", header.alg)),
                _ => IdTokenError::Malformed,
            }
        })?;
        let claims = data.claims;
        // jsonwebtoken checked `iss` and `aud`; the rest is OpenID Connect Core 3.1.3.7.
        if !self.is_issuer(&claims.iss) {
            return Err(IdTokenError::Issuer {
                expected: sanitize(&self.issuer, 200),
            });
        }
        let several = matches!(&claims.aud, Audience::Many(list) if list.len() > 1);
        match (&claims.azp, several) {
            (Some(azp), _) if *azp != self.client_id => {
                return Err(IdTokenError::Audience("azp names another client"));
            }
            (None, true) => {
                return Err(IdTokenError::Audience("several audiences and no azp"));
            }
            _ => {}
        }
        let now = Utc::now().timestamp() as f64;
        match claims.iat {
            None => return Err(IdTokenError::IssuedAt("missing")),
            Some(iat) if iat > now + MAX_SKEW.as_secs_f64() => {
                return Err(IdTokenError::IssuedAt("in the future"));
            }
            Some(_) => {}
        }
        if let NonceCheck::Equals(expected) = nonce {
            match &claims.nonce {
                None => return Err(IdTokenError::Nonce("is missing")),
                Some(n) if !crate::util::secret::SecretString::new(n.clone()).ct_eq(expected) => {
                    return Err(IdTokenError::Nonce("is not the login's"));
                }
                Some(_) => {}
            }
        }
        if let Some(at_hash) = &claims.at_hash
            && *at_hash != token_hash(header.alg, access_token)
        {
            return Err(IdTokenError::AtHash);
        }
        let sub = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(IdTokenError::Claim("sub"))?;
        Ok(IdTokenClaims {
            iss: claims.iss,
            sub,
            email: claims.email,
            name: claims.name,
            preferred_username: claims.preferred_username,
        })
    }

    /// The key for `kid` and `alg`: from the keys held, else from a fresh fetch (once).
    async fn key(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, IdTokenError> {
        let mut keys = self.keys.lock().await;
        let mut fetched = false;
        if keys.is_none() {
            *keys = Some(self.fetch_keys().await?);
            fetched = true;
        }
        loop {
            if let Some(jwk) = keys.as_ref().and_then(|set| pick(set, kid, alg)) {
                return DecodingKey::from_jwk(jwk).map_err(|_| IdTokenError::Signature);
            }
            if fetched {
                return Err(IdTokenError::UnknownKey {
                    kid: sanitize(kid.unwrap_or("(none)"), 80),
                });
            }
            // An unknown key: the provider may have rotated its keys. Fetch them again, once.
            *keys = Some(self.fetch_keys().await?);
            fetched = true;
        }
    }

    async fn fetch_keys(&self) -> Result<JwkSet, IdTokenError> {
        let request = http::Request::get(self.jwks_uri.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| IdTokenError::Keys(Box::new(e)))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| IdTokenError::Keys(Box::new(e)))?;
        if !response.status().is_success() {
            return Err(IdTokenError::Keys(
                format!("the key set answered HTTP {}", response.status().as_u16()).into(),
            ));
        }
        // Keys the crate cannot read (another `kty`) are skipped, not fatal.
        let raw: serde_json::Value = serde_json::from_slice(response.body())
            .map_err(|_| IdTokenError::Keys("the key set is not JSON".into()))?;
        let keys = raw
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or_else(|| IdTokenError::Keys("the key set has no `keys`".into()))?
            .iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .collect();
        Ok(JwkSet { keys })
    }
}

/// The published key for `kid` whose type fits `alg` (by `kid`; without one, the only key of
/// that type).
fn pick<'a>(set: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    let fits = |jwk: &&Jwk| {
        let family = matches!(
            (&jwk.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        let declared = jwk
            .common
            .key_algorithm
            .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"));
        let signing = !matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        );
        family && declared && signing
    };
    match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|k| k.common.key_id.as_deref() == Some(kid))
            .find(fits),
        None => {
            let mut candidates = set.keys.iter().filter(fits);
            let first = candidates.next()?;
            candidates.next().is_none().then_some(first)
        }
    }
}

/// `at_hash`: the left half of the access token's hash (the hash of the signing algorithm;
/// SHA-512 for EdDSA with Ed25519), base64url without padding.
fn token_hash(alg: Algorithm, access_token: &str) -> String {
    use ring::digest;
    let algorithm = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => &digest::SHA384,
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let hash = digest::digest(algorithm, access_token.as_bytes());
    let half = &hash.as_ref()[..hash.as_ref().len() / 2];
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_addresses_follow_each_specification() {
        let at = |kind: MetadataKind, issuer: &str| kind.url(&Url::parse(issuer).unwrap());
        let oidc = MetadataKind::OpenIdConnect;
        let oauth2 = MetadataKind::OAuth2;
        // OpenID Connect appends; RFC 8414 inserts before the path.
        assert_eq!(
            at(oidc, "https://id.example/tenant/"),
            "https://id.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            at(oauth2, "https://id.example/tenant/"),
            "https://id.example/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(
            at(oauth2, "https://id.example"),
            "https://id.example/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            at(oauth2, "https://id.example:8443/a/b"),
            "https://id.example:8443/.well-known/oauth-authorization-server/a/b"
        );
    }

    #[test]
    fn cache_lifetimes_are_bounded() {
        let with = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::CACHE_CONTROL, v.parse().unwrap());
            cache_lifetime(&h)
        };
        assert_eq!(cache_lifetime(&http::HeaderMap::new()), Some(DEFAULT_CACHE));
        assert_eq!(with("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(with("max-age=99999999"), Some(MAX_CACHE));
        assert_eq!(with("no-store"), None);
        assert_eq!(with("max-age=0"), None);
    }

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OpenID Connect Core, Appendix A.3 (RS256): access token and at_hash.
        assert_eq!(
            token_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
