//! Provider discovery: an issuer's metadata (its OpenID Connect discovery document, or RFC
//! 8414 authorization server metadata for a plain OAuth2 server), fetched, checked, and cached
//! for its HTTP lifetime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::flow::FlowError;
use crate::net::http::{HttpClient, HttpError, require_secure};
use crate::util::text::sanitize;

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
}
