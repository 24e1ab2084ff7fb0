//! `id_token` validation: the signature against the provider's published keys, then the
//! claims; the errors name the check that failed, never the token.

use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::flow::FlowError;
use crate::net::http::HttpClient;
use crate::util::text::sanitize;

/// The clock skew accepted on `exp` and `iat`.
pub const MAX_SKEW: Duration = Duration::from_secs(120);

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
