//! `OAuth2AppCredentials`: what an OAuth2 client needs to know about itself and its provider.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::util::secret::SecretString;

/// How the client authenticates at the token endpoint, when set.
///
/// Unset, a client with a secret uses HTTP Basic (`client_secret_basic`, the RFC 6749
/// default) and a public client sends its `client_id` in the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`); without a secret, Basic with an empty password
    /// (Reddit's installed apps).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the request body (`client_secret_post`).
    RequestBody,
    /// A JWT assertion signed with the client's private key (RFC 7523 §2.2, OpenID Connect
    /// Core §9): [`OAuth2AppCredentials::client_key`].
    PrivateKeyJwt,
    /// A JWT assertion signed with HMAC over the client secret (OpenID Connect Core §9).
    ClientSecretJwt,
    /// The client's TLS certificate on the token connection (RFC 8705); the `client_id` in
    /// the body.
    TlsClientAuth,
    /// None: the `client_id` in the body (a public client).
    None,
}

impl ClientAuth {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::RequestBody => "request_body",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
            ClientAuth::ClientSecretJwt => "client_secret_jwt",
            ClientAuth::TlsClientAuth => "tls_client_auth",
            ClientAuth::None => "none",
        }
    }
}

/// How token, device and revocation requests carry their parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenRequestFormat {
    /// `application/x-www-form-urlencoded`, as RFC 6749 says.
    #[default]
    Form,
    /// A JSON object of strings (`application/json`), for providers that document it
    /// (Notion).
    Json,
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
    /// A fixed redirect URI (the one registered with the provider): a login listens where it
    /// points (a loopback `http` URI: `127.0.0.1`, `[::1]` or `localhost`, its port and path)
    /// instead of on a free port; used by `authorize` when the caller gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<Url>,
    /// Scopes asked for when the caller names none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the client authenticates at the token endpoint; unset, HTTP Basic with a secret
    /// and `client_id` in the body without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Extra parameters added to the authorization URL (e.g. `prompt = "consent"`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Extra parameters added to every token request: code exchange, refresh and device
    /// polls (e.g. Shopify's `expiring = "1"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_params: BTreeMap<String, String>,
    /// How token, device and revocation requests are encoded: `form` (the default) or
    /// `json`.
    #[serde(default, skip_serializing_if = "is_form")]
    pub token_request: TokenRequestFormat,
    /// The authorization parameter that carries the scopes, when not `scope` (Slack's
    /// `user_scope` for a user token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub scope_param: Option<String>,
    /// The device authorization parameter that carries the scopes, when not `scope`
    /// (Twitch's `scopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub device_scope_param: Option<String>,
    /// The authorization server's issuer identifier; when set, a callback's `iss` must equal it
    /// (RFC 9207 mix-up defence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Whether a callback must carry `iss` (the provider advertises
    /// `authorization_response_iss_parameter_supported`, RFC 9207).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_iss: bool,
    /// Whether the authorization request uses PKCE (S256). Only for the rare provider that
    /// refuses the PKCE parameters: turning it off loses the protection it gives.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub pkce: bool,
    /// What joins scopes in the authorization request, when the provider wants other than a
    /// space (e.g. `","`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 4))]
    pub scope_separator: Option<String>,
    /// Where the token sits in the token response, as a JSON pointer (RFC 6901), when the
    /// provider nests it (e.g. `"/authed_user"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^/"))]
    pub token_pointer: Option<String>,
    /// The provider's own names for what are bearer tokens, accepted as `token_type` besides
    /// `bearer` (Slack: `["bot", "user"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_token_types: Vec<String>,
    /// The key that signs client assertions (`private_key_jwt`, `client_secret_jwt`): never
    /// read from or written to the configuration as such, but loaded from its file.
    #[serde(skip)]
    #[schemars(skip)]
    pub client_key: Option<std::sync::Arc<super::assertion::SigningKey>>,
    /// Sends no client identification at all, not even the `client_id`: a JWT bearer grant
    /// or a token exchange whose assertion or subject token is the whole credential (Google's
    /// service accounts and security token service).
    #[serde(skip)]
    #[schemars(skip)]
    pub anonymous: bool,
}

fn yes() -> bool {
    true
}

fn is_form(format: &TokenRequestFormat) -> bool {
    *format == TokenRequestFormat::Form
}

impl OAuth2AppCredentials {
    /// App credentials with these endpoints and everything else at its default.
    pub fn new(client_id: impl Into<String>, authorize_url: Url, token_url: Url) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            authorize_url,
            token_url,
            device_authorization_url: None,
            revocation_url: None,
            redirect_uri: None,
            scopes: Vec::new(),
            client_auth: None,
            authorize_params: BTreeMap::new(),
            token_params: BTreeMap::new(),
            token_request: TokenRequestFormat::Form,
            scope_param: None,
            device_scope_param: None,
            issuer: None,
            require_iss: false,
            pkce: true,
            scope_separator: None,
            token_pointer: None,
            bearer_token_types: Vec::new(),
            client_key: None,
            anonymous: false,
        }
    }
}
