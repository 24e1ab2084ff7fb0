//! `OAuth2AppCredentials`: what an OAuth2 client needs to know about itself and its provider.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret::SecretString;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), the RFC 6749 default.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body (`client_secret_post`).
    RequestBody,
}

/// The app credentials of an OAuth2 client.
///
/// In the configuration these are the fields of `[providers.<name>]`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OAuth2AppCredentials {
    /// The client id registered with the provider.
    #[schemars(length(min = 1))]
    pub client_id: String,
    /// The client secret; absent for a public client (PKCE only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretString>,
    /// The authorization endpoint.
    pub authorize_url: Url,
    /// The token endpoint.
    pub token_url: Url,
    /// The device authorization endpoint (RFC 8628), when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_url: Option<Url>,
    /// The revocation endpoint (RFC 7009), when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<Url>,
    /// A fixed redirect URI, used when the caller gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<Url>,
    /// Scopes asked for when the caller names none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Extra parameters added to the authorization URL (e.g. `prompt = "consent"`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// The authorization server's issuer identifier; when set, a callback's `iss` must equal it
    /// (RFC 9207 mix-up defence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}
