//! Credentials: what a flow produces, and what a session applies to requests.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::util::secret::SecretString;

/// A credential a flow produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Credential {
    /// An OAuth2 token.
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Token),
    /// An API key.
    ApiKey {
        /// The key.
        key: SecretString,
    },
    /// A username and password.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
}

impl Credential {
    /// The OAuth2 token, if this is one.
    pub fn as_oauth2(&self) -> Option<&OAuth2Token> {
        match self {
            Credential::OAuth2(t) => Some(t),
            _ => None,
        }
    }

    /// The secret a request carries: the access token or the API key (`None` for basic
    /// credentials, which carry two values).
    pub fn secret(&self) -> Option<&SecretString> {
        match self {
            Credential::OAuth2(t) => Some(&t.access_token),
            Credential::ApiKey { key } => Some(key),
            Credential::Basic { .. } => None,
        }
    }

    /// When the credential expires, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.as_oauth2().and_then(|t| t.expires_at)
    }

    /// Every secret value it holds: the access and refresh tokens, the key, the password.
    fn secret_values(&self) -> Vec<&str> {
        match self {
            Credential::OAuth2(t) => std::iter::once(&t.access_token)
                .chain(&t.refresh_token)
                .map(SecretString::expose)
                .collect(),
            Credential::ApiKey { key } => vec![key.expose()],
            Credential::Basic { password, .. } => vec![password.expose()],
        }
    }

    /// Whether the two hold a secret in common: a provider that answered a new login with a
    /// token of the old one still counts it as one grant, and revoking the old one would end
    /// the new one too.
    pub(crate) fn shares_a_secret_with(&self, other: &Credential) -> bool {
        let theirs = other.secret_values();
        self.secret_values().iter().any(|s| theirs.contains(s))
    }
}

/// An OAuth2 access token with what came with it.
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuth2Token {
    /// The access token.
    pub access_token: SecretString,
    /// Always `bearer` (other types are refused), lower-cased.
    pub token_type: String,
    /// The refresh token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<SecretString>,
    /// When the access token expires; `None` when the provider gave no usable lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The granted scopes (the requested ones when the provider did not say).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Provider-specific fields, as the provider's token class shaped them.
    #[serde(default, skip_serializing_if = "TokenExtras::is_empty")]
    pub extra: TokenExtras,
}

impl OAuth2Token {
    /// A bearer token with no lifetime, refresh token, scopes or extras.
    pub fn bearer(access_token: SecretString) -> Self {
        Self {
            access_token,
            token_type: "bearer".into(),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            extra: TokenExtras::default(),
        }
    }

    /// Whether the token expires within `skew` of `now` (never, without a known expiry).
    pub fn expires_within(&self, now: DateTime<Utc>, skew: chrono::Duration) -> bool {
        self.expires_at
            .is_some_and(|at| now.checked_add_signed(skew).is_none_or(|t| t >= at))
    }

    /// The extras as the provider's typed model (e.g. `GitHubTokenExtra`).
    pub fn extra_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(Value::Object(self.extra.0.clone()))
    }
}

impl fmt::Debug for OAuth2Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2Token")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token)
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("extra", &self.extra)
            .finish()
    }
}

/// Provider-specific token fields. They may hold secrets (an `id_token`), so `Debug` shows
/// only the field names.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenExtras(pub Map<String, Value>);

impl TokenExtras {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for TokenExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::secret::SecretString;

    #[test]
    fn debug_redacts_everything_secret() {
        let mut t = OAuth2Token::bearer(SecretString::new("gho_topsecret"));
        t.refresh_token = Some(SecretString::new("ghr_alsosecret"));
        t.extra
            .0
            .insert("id_token".into(), Value::String("eyJsecret".into()));
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
        assert!(dbg.contains("id_token"), "{dbg}");
    }

    #[test]
    fn expiry_with_skew() {
        let now = Utc::now();
        let mut t = OAuth2Token::bearer(SecretString::new("x"));
        assert!(!t.expires_within(now, chrono::Duration::seconds(60)));
        t.expires_at = Some(now + chrono::Duration::seconds(30));
        assert!(t.expires_within(now, chrono::Duration::seconds(60)));
        assert!(!t.expires_within(now, chrono::Duration::seconds(10)));
    }
}
