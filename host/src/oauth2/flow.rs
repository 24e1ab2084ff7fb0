//! `OAuth2Flow`: the native OAuth2 flow's type, its constructors and accessors, and the
//! configured `oauth2` client handed to callers who want more ([`OAuth2Flow::client`]). What
//! it does sits beside it: the authorization-code grant (`code.rs`), the requests to the
//! provider's endpoints (`request.rs`), revocation (`revoke.rs`), the device grant
//! (`device.rs`).

use std::sync::Arc;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, RedirectUrl, RevocationUrl, TokenUrl,
};

use super::app::{ClientAuth, OAuth2AppCredentials};
use super::class::{StandardToken, TokenClass};
use crate::flow::FlowError;
use crate::net::http::{HttpClient, HttpPolicy, require_secure};
use crate::oidc::IdTokenVerifier;

/// Authorization parameters the flow sets itself and configuration may not override.
const RESERVED_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
];

/// Token-request parameters the flow sets itself (grants, client authentication) and
/// `token_params` may not override.
const RESERVED_TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "device_code",
    "client_id",
    "client_secret",
    "scope",
    "token",
    "token_type_hint",
];

/// The `oauth2` crate's client, configured from a flow's app credentials: client id and secret,
/// client authentication, authorization and token endpoints, and the device, revocation and
/// redirect URLs when configured. Send its requests with the flow's
/// [`http_client`](OAuth2Flow::http_client).
pub type OAuth2Client = oauth2::basic::BasicClient<
    EndpointSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointSet,
>;

/// The authorization-code flow with PKCE, generic over the provider's [`TokenClass`].
pub struct OAuth2Flow<C: TokenClass = StandardToken> {
    pub(super) provider: String,
    pub(super) app: OAuth2AppCredentials,
    pub(super) class: C,
    pub(super) http: HttpClient,
    pub(super) id_tokens: Option<Arc<IdTokenVerifier>>,
}

/// Where a validated `id_token`'s claims are kept in a token's extras.
pub const ID_TOKEN_CLAIMS: &str = "id_token_claims";

impl<C: TokenClass> std::fmt::Debug for OAuth2Flow<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Flow")
            .field("provider", &self.provider)
            .field("app", &self.app)
            .field("id_tokens", &self.id_tokens)
            .finish()
    }
}

impl OAuth2Flow<StandardToken> {
    /// A flow for `provider` with the standard token model and the default HTTP limits.
    pub fn new(provider: &str, app: OAuth2AppCredentials) -> Result<Self, FlowError> {
        let http =
            HttpClient::new(HttpPolicy::default()).map_err(|e| FlowError::InvalidConfig {
                message: "cannot set up the HTTP client".into(),
                source: Some(Box::new(e)),
            })?;
        Self::with_class(provider, app, StandardToken, http)
    }
}

impl<C: TokenClass> OAuth2Flow<C> {
    /// A flow for `provider` with a token class and an HTTP client.
    ///
    /// Refuses plain-http endpoints to non-loopback hosts and extra authorization parameters
    /// that would override the ones the flow sets.
    pub fn with_class(
        provider: &str,
        app: OAuth2AppCredentials,
        class: C,
        http: HttpClient,
    ) -> Result<Self, FlowError> {
        let endpoints = [
            ("authorize_url", Some(&app.authorize_url)),
            ("token_url", Some(&app.token_url)),
            (
                "device_authorization_url",
                app.device_authorization_url.as_ref(),
            ),
            ("revocation_url", app.revocation_url.as_ref()),
        ];
        for (field, url) in endpoints {
            if let Some(url) = url {
                require_secure(url).map_err(|e| FlowError::InvalidConfig {
                    message: format!("providers.{provider}.{field}"),
                    source: Some(Box::new(e)),
                })?;
            }
        }
        let scope_param = app.scope_param.as_deref().unwrap_or("scope");
        if scope_param != "scope" && RESERVED_PARAMS.contains(&scope_param) {
            return Err(FlowError::config(format!(
                "providers.{provider}.scope_param: `{}` is another parameter the flow sets itself",
                crate::util::text::sanitize(scope_param, 64)
            )));
        }
        if let Some(name) = app
            .authorize_params
            .keys()
            .find(|k| RESERVED_PARAMS.contains(&k.as_str()) || k.as_str() == scope_param)
        {
            return Err(FlowError::config(format!(
                "providers.{provider}.authorize_params.{}: `{}` is set by the flow itself",
                crate::util::text::sanitize(name, 64),
                crate::util::text::sanitize(name, 64)
            )));
        }
        if let Some(name) = app
            .token_params
            .keys()
            .find(|k| RESERVED_TOKEN_PARAMS.contains(&k.as_str()))
        {
            return Err(FlowError::config(format!(
                "providers.{provider}.token_params.{}: `{}` is set by the flow itself",
                crate::util::text::sanitize(name, 64),
                crate::util::text::sanitize(name, 64)
            )));
        }
        if let Some(name) = &app.device_scope_param
            && name != "scope"
            && RESERVED_TOKEN_PARAMS.contains(&name.as_str())
        {
            return Err(FlowError::config(format!(
                "providers.{provider}.device_scope_param: `{}` is another parameter the flow sets itself",
                crate::util::text::sanitize(name, 64)
            )));
        }
        // The same rule for the authorization URL's own query: the URL would otherwise carry
        // the parameter twice, the configured value first (which most servers take).
        if let Some((name, _)) = app
            .authorize_url
            .query_pairs()
            .find(|(k, _)| RESERVED_PARAMS.contains(&k.as_ref()))
        {
            return Err(FlowError::config(format!(
                "providers.{provider}.authorize_url: its query sets `{}`, which the flow sets itself; remove it from the URL",
                crate::util::text::sanitize(&name, 64)
            )));
        }
        if let Some(pointer) = &app.token_pointer
            && !pointer.starts_with('/')
        {
            return Err(FlowError::config(format!(
                "providers.{provider}.token_pointer must be a JSON pointer starting with `/`"
            )));
        }
        Ok(Self {
            provider: provider.to_owned(),
            app,
            class,
            http,
            id_tokens: None,
        })
    }

    /// Validates the `id_token` of every token response with `verifier` (OpenID Connect): a
    /// login asking for `openid` sends a `nonce` and requires a valid `id_token`; its claims
    /// are kept in the token's extras under [`ID_TOKEN_CLAIMS`].
    pub fn with_id_token_verifier(mut self, verifier: Arc<IdTokenVerifier>) -> Self {
        self.id_tokens = Some(verifier);
        self
    }

    /// The `id_token` verifier, when the flow validates them.
    pub fn id_token_verifier(&self) -> Option<&Arc<IdTokenVerifier>> {
        self.id_tokens.as_ref()
    }

    /// Replaces the HTTP client (other limits, a proxy).
    pub fn with_http_client(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// The app credentials.
    pub fn app_credentials(&self) -> &OAuth2AppCredentials {
        &self.app
    }

    /// The HTTP client every request of this flow goes through. It implements the `oauth2`
    /// crate's `AsyncHttpClient`, so requests built with [`OAuth2Flow::client`] can use it.
    pub fn http_client(&self) -> &HttpClient {
        &self.http
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The token class.
    pub fn class(&self) -> &C {
        &self.class
    }

    /// Direct access to a configured `oauth2` client (the seed's `client`/`create_client`):
    /// for grants this flow does not drive, such as client credentials or token introspection.
    ///
    /// ```no_run
    /// # async fn demo(flow: &host::oauth2::OAuth2Flow) -> Result<(), Box<dyn std::error::Error>> {
    /// use oauth2::TokenResponse as _;
    /// let token = flow
    ///     .client()
    ///     .exchange_client_credentials()
    ///     .add_scope(oauth2::Scope::new("read".into()))
    ///     .request_async(flow.http_client())
    ///     .await?;
    /// println!("expires in {:?}", token.expires_in());
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> OAuth2Client {
        let app = &self.app;
        let mut client = BasicClient::new(ClientId::new(app.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(app.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(app.token_url.clone()))
            .set_device_authorization_url_option(
                app.device_authorization_url
                    .clone()
                    .map(DeviceAuthorizationUrl::from_url),
            )
            .set_revocation_url_option(app.revocation_url.clone().map(RevocationUrl::from_url))
            // The crate cannot sign assertions nor present a certificate: with those, its
            // client sends the `client_id` in the body, for grants this crate does not drive.
            .set_auth_type(match app.client_auth {
                None | Some(ClientAuth::Basic) => oauth2::AuthType::BasicAuth,
                Some(_) => oauth2::AuthType::RequestBody,
            });
        match (&app.client_secret, app.client_auth) {
            (
                _,
                Some(
                    ClientAuth::PrivateKeyJwt
                    | ClientAuth::ClientSecretJwt
                    | ClientAuth::TlsClientAuth
                    | ClientAuth::None,
                ),
            ) => {}
            (Some(secret), _) => {
                client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
            }
            // Basic asked for without a secret: an empty password (the crate sends the id in
            // the body when there is no secret at all).
            (None, Some(ClientAuth::Basic)) => {
                client = client.set_client_secret(ClientSecret::new(String::new()));
            }
            (None, _) => {}
        }
        if let Some(redirect) = &app.redirect_uri {
            client = client.set_redirect_uri(RedirectUrl::from_url(redirect.clone()));
        }
        client
    }
}
