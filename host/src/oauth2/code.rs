//! `OAuth2Flow`: authorization code with PKCE (S256) and state, token exchange, refresh,
//! revocation.
//!
//! The `oauth2` crate builds the authorization URL (state, PKCE challenge, scopes) and is the
//! configured client handed to callers who want more ([`OAuth2Flow::client`]). Every request to
//! the provider's token, device and revocation endpoints is built by one function here
//! ([`OAuth2Flow::endpoint_request`], which applies the client authentication) and every token
//! response is read once by [`super::response`]: the `oauth2` crate's strict parser would turn
//! a provider's lenient answer (errors inside HTTP 200, `expires_in` as a string) into a parse
//! error, and it has no single-poll device call for the shared polling schedule.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, PkceCodeChallenge, RedirectUrl, RevocationUrl, Scope, TokenUrl,
};
use serde::{Deserialize, Serialize};

use super::app::{ClientAuth, OAuth2AppCredentials, TokenRequestFormat};
use super::class::{StandardToken, TokenClass};
use super::error::{ErrorKind, OAuthError, TokenError};
use super::response::{carried_refresh_token, classify, fields, json_object, nested};
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, CallbackError, Credential, ExchangeInput, FlowError,
    Interaction, OAuth2Token, Pending,
};
use crate::net::http::{HttpClient, HttpPolicy, require_secure};
use crate::oidc::{IdTokenClaims, IdTokenError, IdTokenVerifier, NonceCheck};
use crate::util::secret::SecretString;
use crate::util::text::sanitize;

/// Bytes of randomness in `state` (256 bits; RFC 9700 asks for at least 128).
const STATE_BYTES: u32 = 32;

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

/// The name under which the pending state ties itself to this kind of flow.
const FLOW_NAME: &str = "oauth2";

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
    provider: String,
    app: OAuth2AppCredentials,
    class: C,
    http: HttpClient,
    id_tokens: Option<Arc<IdTokenVerifier>>,
}

/// What a token request checks of an `id_token` (when the flow validates them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdTokenCheck<'a> {
    /// What the `nonce` claim must be.
    pub(crate) nonce: NonceCheck<'a>,
    /// Whether the response must carry one (a login that asked for `openid`).
    pub(crate) required: bool,
    /// The subject of the login being refreshed: a new `id_token` must name the same.
    pub(crate) subject: Option<&'a str>,
}

impl IdTokenCheck<'_> {
    /// A refresh or device poll: no nonce, no requirement.
    pub(crate) const LENIENT: IdTokenCheck<'static> = IdTokenCheck {
        nonce: NonceCheck::Unchecked,
        required: false,
        subject: None,
    };
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

    /// A POST to one of the provider's endpoints with the client's authentication (HTTP
    /// Basic, or `client_id`/`client_secret` in the body; a public client sends its id, or Basic
    /// with an empty password when `client_auth = "basic"` says so), its parameters a form or,
    /// with `token_request = "json"`, a JSON object: the one way every token, device and
    /// revocation request is built.
    pub(crate) fn endpoint_request(
        &self,
        url: &url::Url,
        params: &[(&str, &str)],
    ) -> Result<http::Request<Vec<u8>>, FlowError> {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        let mut request =
            http::Request::post(url.as_str()).header(http::header::ACCEPT, "application/json");
        let secret = self.app.client_secret.as_ref().map(|s| s.expose());
        let assertion;
        match (secret, self.app.client_auth) {
            _ if self.app.anonymous => {}
            (_, Some(ClientAuth::PrivateKeyJwt | ClientAuth::ClientSecretJwt)) => {
                let key = self.app.client_key.as_ref().ok_or_else(|| {
                    FlowError::config("the client authentication needs a signing key")
                })?;
                // `aud` is the token endpoint, whichever endpoint this is (RFC 7523 §3).
                assertion =
                    key.client_assertion(&self.app.client_id, self.app.token_url.as_str())?;
                pairs.push(("client_id", &self.app.client_id));
                pairs.push((
                    "client_assertion_type",
                    super::assertion::CLIENT_ASSERTION_TYPE,
                ));
                pairs.push(("client_assertion", &assertion));
            }
            (_, Some(ClientAuth::TlsClientAuth | ClientAuth::None)) => {
                pairs.push(("client_id", &self.app.client_id));
            }
            (Some(secret), None | Some(ClientAuth::Basic)) => {
                request = request.header(
                    http::header::AUTHORIZATION,
                    basic_auth(&self.app.client_id, secret),
                );
            }
            (None, Some(ClientAuth::Basic)) => {
                request = request.header(
                    http::header::AUTHORIZATION,
                    basic_auth(&self.app.client_id, ""),
                );
            }
            (secret, _) => {
                pairs.push(("client_id", &self.app.client_id));
                if let Some(secret) = secret {
                    pairs.push(("client_secret", secret));
                }
            }
        }
        let (content_type, body) = match self.app.token_request {
            TokenRequestFormat::Form => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.extend_pairs(&pairs);
                (
                    "application/x-www-form-urlencoded",
                    form.finish().into_bytes(),
                )
            }
            TokenRequestFormat::Json => {
                let object: serde_json::Map<String, serde_json::Value> = pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                    .collect();
                let body = serde_json::to_vec(&object)
                    .map_err(|e| FlowError::internal("cannot build a request", e))?;
                ("application/json", body)
            }
        };
        request
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| FlowError::internal("cannot build a request", e))
    }

    /// `GET url` with the credential's access token, for "who is this" endpoints (GitHub's
    /// `/user`, an identify URL, OIDC userinfo): the JSON of a 2xx answer (`Null` when it is
    /// not JSON), [`FlowError::LoginRequired`] for a 401.
    pub(crate) async fn get_as_user(
        &self,
        url: &str,
        credential: &Credential,
        accept: &str,
    ) -> Result<serde_json::Value, FlowError> {
        let token = credential
            .as_oauth2()
            .ok_or_else(|| FlowError::Unsupported("not an OAuth2 token".into()))?;
        let request = http::Request::get(url)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", token.access_token.expose()),
            )
            .header(http::header::ACCEPT, accept)
            .body(Vec::new())
            .map_err(|e| FlowError::internal("cannot build the request", e))?;
        let response = self.http.send(request).await.map_err(TokenError::from)?;
        match response.status().as_u16() {
            200..=299 => Ok(serde_json::from_slice(response.body()).unwrap_or_default()),
            401 => Err(FlowError::LoginRequired {
                reason: "the provider no longer accepts the token",
                source: None,
            }),
            status => Err(TokenError::Status {
                status,
                content_type: None,
            }
            .into()),
        }
    }

    /// An `invalid_client` answer says the client's authentication was refused, and how it
    /// was made (never with what): the configuration must change.
    fn client_refused(&self, e: TokenError) -> FlowError {
        let refused = e
            .provider_error()
            .is_some_and(|p| p.kind == super::ErrorKind::InvalidClient);
        if !refused {
            return e.into();
        }
        let id = crate::util::text::sanitize(&self.app.client_id, 80);
        let how = match (self.app.client_auth, self.app.client_secret.is_some()) {
            (Some(ClientAuth::PrivateKeyJwt), _) => {
                let key = self.app.client_key.as_deref();
                format!(
                    "a private_key_jwt assertion for client `{id}` signed {:?} with key id `{}`",
                    key.map(|k| k.algorithm())
                        .unwrap_or(jsonwebtoken::Algorithm::RS256),
                    key.and_then(|k| k.key_id()).unwrap_or("none")
                )
            }
            (Some(ClientAuth::ClientSecretJwt), _) => {
                format!(
                    "a client_secret_jwt assertion for client `{id}` (HMAC over its client secret)"
                )
            }
            (Some(ClientAuth::TlsClientAuth), _) => {
                format!("client `{id}` presenting its TLS client certificate (tls_client_auth)")
            }
            (Some(ClientAuth::None), _) | (None, false) => {
                format!("client `{id}` with no client authentication (a public client)")
            }
            (Some(ClientAuth::RequestBody), _) => {
                format!("client `{id}` with its client secret in the request body (request_body)")
            }
            (Some(ClientAuth::Basic), _) | (None, true) => {
                format!("client `{id}` with its client secret in HTTP Basic (basic)")
            }
        };
        FlowError::InvalidConfig {
            message: format!(
                "the provider refused the client authentication: {how}; check client_id, the secret or key, and client_auth"
            ),
            source: Some(Box::new(e)),
        }
    }

    /// Sends a token request (code, refresh or device grant) to the token endpoint and reads the
    /// token from the answer, once.
    pub(crate) async fn token_request(
        &self,
        params: &[(&str, &str)],
        requested_scopes: &[String],
        check: IdTokenCheck<'_>,
    ) -> Result<OAuth2Token, FlowError> {
        let mut params = params.to_vec();
        params.extend(
            self.app
                .token_params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let params = params.as_slice();
        let request = self.endpoint_request(&self.app.token_url, params)?;
        let received_at = Utc::now();
        let response = self.http.send(request).await.map_err(TokenError::from)?;
        let mut map = json_object(&response, &|code| self.class.error_kind(code))
            .map_err(|e| self.client_refused(e))?;
        if let Some(pointer) = &self.app.token_pointer {
            map = nested(map, pointer)?;
        }
        // A refresh answer refused for anything (its shape, its id_token) may carry the refresh
        // token the provider has already replaced the one it was sent with: that one is handed
        // back to be kept, in `RefreshRefused`.
        let refreshing = params.contains(&("grant_type", "refresh_token"));
        let carried = refreshing.then(|| carried_refresh_token(&map)).flatten();
        let keep = |e: FlowError| match carried.clone() {
            Some(refresh_token) => FlowError::RefreshRefused {
                refresh_token,
                source: Box::new(e),
            },
            None => e,
        };
        let mut fields = fields(map, &self.app.bearer_token_types).map_err(|e| keep(e.into()))?;
        // Only claims this flow validated are ever kept under that name: a provider's response
        // cannot plant them.
        fields.extra.remove(ID_TOKEN_CLAIMS);
        if let Some(verifier) = &self.id_tokens {
            let claims = match fields.extra.remove("id_token") {
                Some(serde_json::Value::String(id_token)) => verifier
                    .verify(&id_token, fields.access_token.expose(), check.nonce)
                    .await
                    .map(Some),
                Some(_) => Err(IdTokenError::Malformed),
                None if check.required => Err(IdTokenError::Missing),
                None => Ok(None),
            }
            .and_then(|claims| match claims {
                Some(claims) if check.subject.is_some_and(|sub| sub != claims.sub) => {
                    Err(IdTokenError::SubjectChanged)
                }
                claims => Ok(claims),
            });
            let claims = match claims {
                Ok(claims) => claims,
                Err(e) => {
                    // An answer about another user cannot stand for this login, and refreshing
                    // again would get the same answer: the login is over. Its refresh token is
                    // still kept (the provider may have retired the one sent; replaying that
                    // one trips reuse detection), but never used, since the record is marked.
                    let e = if matches!(e, IdTokenError::SubjectChanged) {
                        FlowError::LoginRequired {
                            reason: "the provider's answer to the refresh is about another user than the login (its id_token names another `sub`)",
                            source: Some(Box::new(crate::oidc::IdTokenRefused(e))),
                        }
                    } else {
                        e.into()
                    };
                    return Err(match fields.refresh_token.take() {
                        Some(refresh_token) if refreshing => FlowError::RefreshRefused {
                            refresh_token,
                            source: Box::new(e),
                        },
                        _ => e,
                    });
                }
            };
            if let Some(claims) = claims {
                let value = serde_json::to_value(&claims)
                    .map_err(|e| FlowError::internal("cannot keep the id_token's claims", e))?;
                fields.extra.insert(ID_TOKEN_CLAIMS.to_owned(), value);
            }
        }
        fields
            .into_token(&self.class, received_at, requested_scopes)
            .map_err(|e| keep(e.into()))
    }
}

/// What `authorize` hands to `exchange`, sealed into [`Pending`].
#[derive(Serialize, Deserialize)]
struct PendingState {
    state: String,
    /// Empty when PKCE is off for the provider.
    verifier: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    /// The `nonce` sent (OpenID Connect logins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
}

#[async_trait]
impl<C: TokenClass> AuthFlow for OAuth2Flow<C> {
    fn redirect_uri(&self) -> Option<url::Url> {
        self.app.redirect_uri.clone()
    }

    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        let scopes = if req.scopes.is_empty() {
            self.app.scopes.clone()
        } else {
            req.scopes
        };
        let redirect = match req.redirect_uri {
            Some(uri) => Some(uri),
            None => self.app.redirect_uri.as_ref().map(|u| u.to_string()),
        };
        let redirect_url = redirect
            .as_deref()
            .map(|u| RedirectUrl::new(u.to_owned()))
            .transpose()
            .map_err(|_| FlowError::config("the redirect URI is not a valid URL"))?;
        let client = self.client();
        let mut request = client.authorize_url(|| CsrfToken::new_random_len(STATE_BYTES));
        let joined;
        match (&self.app.scope_param, &self.app.scope_separator) {
            _ if scopes.is_empty() => {}
            (Some(param), separator) => {
                joined = scopes.join(separator.as_deref().unwrap_or(" "));
                request = request.add_extra_param(param.as_str(), joined.as_str());
            }
            (None, Some(separator)) => {
                joined = scopes.join(separator);
                request = request.add_extra_param("scope", joined.as_str());
            }
            (None, None) => request = request.add_scopes(scopes.iter().cloned().map(Scope::new)),
        }
        let mut verifier = String::new();
        if self.app.pkce {
            let (challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
            verifier = pkce_verifier.secret().clone();
            request = request.set_pkce_challenge(challenge);
        }
        let nonce = (self.id_tokens.is_some() && scopes.iter().any(|s| s == "openid"))
            .then(|| CsrfToken::new_random_len(STATE_BYTES).secret().clone());
        if let Some(nonce) = &nonce {
            request = request.add_extra_param("nonce", nonce.as_str());
        }
        if let Some(url) = &redirect_url {
            request = request.set_redirect_uri(Cow::Borrowed(url));
        }
        for (k, v) in &self.app.authorize_params {
            request = request.add_extra_param(k.as_str(), v.as_str());
        }
        let (url, state) = request.url();
        let pending = PendingState {
            state: state.secret().clone(),
            verifier,
            redirect_uri: redirect,
            scopes,
            nonce,
        };
        Ok(Authorization {
            interaction: Interaction::Redirect {
                url: url.to_string(),
            },
            pending: Pending::seal_json(&self.provider, FLOW_NAME, &pending)?,
        })
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        let pending: PendingState = pending.open_json(&self.provider, FLOW_NAME)?;
        // The state is checked first, on error callbacks too: an unchecked error callback would
        // let anyone who can reach the listener end the login.
        let state = input
            .single("state")?
            .ok_or_else(|| CallbackError::Missing("state".into()))?;
        if !SecretString::new(pending.state.clone()).ct_eq(state) {
            return Err(CallbackError::StateMismatch.into());
        }
        let code = input.single("code")?;
        let error = input.single("error")?;
        match (input.single("iss")?, &self.app.issuer) {
            (Some(iss), Some(expected)) if iss != expected => {
                return Err(CallbackError::IssuerMismatch {
                    expected: expected.clone(),
                    got: sanitize(iss, 200),
                }
                .into());
            }
            (None, Some(_)) if self.app.require_iss => {
                return Err(CallbackError::Missing("iss".into()).into());
            }
            _ => {}
        }
        let code = match (code, error) {
            (Some(_), Some(_)) => return Err(CallbackError::CodeAndError.into()),
            (None, Some(error)) => {
                let description = input.single("error_description")?.map(|d| sanitize(d, 300));
                if error == "access_denied" {
                    return Err(FlowError::Denied { description });
                }
                let code = sanitize(error, 64);
                return Err(FlowError::Failed(Box::new(AuthorizationError(
                    OAuthError {
                        kind: self
                            .class
                            .error_kind(&code)
                            .unwrap_or_else(|| ErrorKind::from_code(&code)),
                        code,
                        description,
                        uri: None,
                        status: 0,
                    },
                ))));
            }
            (Some(code), None) if !code.is_empty() => code,
            _ => return Err(CallbackError::Missing("code".into()).into()),
        };
        let mut params = vec![("grant_type", "authorization_code"), ("code", code)];
        if !pending.verifier.is_empty() {
            params.push(("code_verifier", pending.verifier.as_str()));
        }
        if let Some(redirect) = &pending.redirect_uri {
            params.push(("redirect_uri", redirect));
        }
        let check = IdTokenCheck {
            nonce: match &pending.nonce {
                Some(n) => NonceCheck::Equals(n),
                None => NonceCheck::Unchecked,
            },
            required: pending.nonce.is_some(),
            subject: None,
        };
        let token = self.token_request(&params, &pending.scopes, check).await?;
        Ok(Credential::OAuth2(token))
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        let old = credential
            .as_oauth2()
            .ok_or_else(|| FlowError::Unsupported("only OAuth2 tokens can be refreshed".into()))?;
        let refresh = old.refresh_token.as_ref().ok_or(FlowError::LoginRequired {
            reason: "the credential has no refresh token",
            source: None,
        })?;
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.expose()),
        ];
        let old_claims = old
            .extra
            .0
            .get(ID_TOKEN_CLAIMS)
            .and_then(|c| serde_json::from_value::<IdTokenClaims>(c.clone()).ok());
        let check = IdTokenCheck {
            subject: old_claims.as_ref().map(|c| c.sub.as_str()),
            ..IdTokenCheck::LENIENT
        };
        let mut token = self.token_request(&params, &old.scopes, check).await?;
        // Who the user is does not change with a refresh that sends no new id_token; only a
        // flow that validates id_tokens vouches for that (one that no longer does, its
        // provider no longer OpenID Connect, would carry claims it cannot check).
        if let Some(claims) = old.extra.0.get(ID_TOKEN_CLAIMS)
            && self.id_tokens.is_some()
            && !token.extra.0.contains_key(ID_TOKEN_CLAIMS)
        {
            token
                .extra
                .0
                .insert(ID_TOKEN_CLAIMS.to_owned(), claims.clone());
        }
        if token.refresh_token.is_none() {
            // No new refresh token: the old one stays valid, with what the class keeps of it.
            token.refresh_token = old.refresh_token.clone();
            if let (Ok(old_extra), Ok(mut new_extra)) =
                (old.extra_as::<C::Extra>(), token.extra_as::<C::Extra>())
            {
                self.class.keep_on_refresh(&old_extra, &mut new_extra);
                if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(new_extra) {
                    token.extra = crate::flow::TokenExtras(map);
                }
            }
        }
        Ok(Credential::OAuth2(token))
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.revoke_rfc7009(credential).await
    }
}

/// An error the authorization server reported on the callback (other than `access_denied`).
#[derive(Debug, thiserror::Error)]
#[error("the authorization failed: {0}")]
pub struct AuthorizationError(pub OAuthError);

impl<C: TokenClass> OAuth2Flow<C> {
    /// Revokes the credential at the RFC 7009 revocation endpoint: the refresh token first
    /// (which ends the whole grant at most providers), then the access token. `Ok(false)` when
    /// no revocation endpoint is configured.
    pub async fn revoke_rfc7009(&self, credential: &Credential) -> Result<bool, FlowError> {
        let Some(url) = &self.app.revocation_url else {
            return Ok(false);
        };
        let token = credential
            .as_oauth2()
            .ok_or_else(|| FlowError::Unsupported("only OAuth2 tokens can be revoked".into()))?;
        let mut tokens = Vec::new();
        if let Some(r) = &token.refresh_token {
            tokens.push((r, "refresh_token"));
        }
        tokens.push((&token.access_token, "access_token"));
        // Each is sent even when one fails (say the refresh token with
        // `unsupported_token_type`): the access token still dies at the provider. The first
        // failure is reported.
        let mut failed = None;
        for (secret, hint) in tokens {
            if let Err(e) = self.revoke_one(url, secret, hint).await {
                failed.get_or_insert(e);
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(true),
        }
    }

    async fn revoke_one(
        &self,
        url: &url::Url,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), FlowError> {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let request = self
                .endpoint_request(url, &[("token", token.expose()), ("token_type_hint", hint)])?;
            let response = self.http.send(request).await.map_err(TokenError::from)?;
            let status = response.status();
            // RFC 7009 §2.2: 200 means revoked (or already invalid), whatever the body.
            if status.is_success() {
                return Ok(());
            }
            let retry = status == http::StatusCode::SERVICE_UNAVAILABLE && attempt < ATTEMPTS;
            if !retry {
                return Err(classify(&response, &|c| self.class.error_kind(c))
                    .err()
                    .unwrap_or(TokenError::Status {
                        status: status.as_u16(),
                        content_type: None,
                    })
                    .into());
            }
            tokio::time::sleep(revocation_retry_wait(response.headers())).await;
        }
        Ok(())
    }
}

/// How long to wait before asking a revocation endpoint again after a 503: its `Retry-After`
/// in seconds (1 s when absent), at most 5 s.
pub(crate) fn revocation_retry_wait(headers: &http::HeaderMap) -> std::time::Duration {
    let secs = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .min(5);
    std::time::Duration::from_secs(secs)
}

/// An RFC 6749 §2.3.1 Basic header: id and secret form-urlencoded, then base64.
pub(crate) fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_is_asked_again_after_its_retry_after_up_to_5_s() {
        let wait = |value: Option<&str>| {
            let mut h = http::HeaderMap::new();
            if let Some(v) = value {
                h.insert(http::header::RETRY_AFTER, v.parse().unwrap());
            }
            revocation_retry_wait(&h).as_secs()
        };
        assert_eq!(wait(None), 1);
        assert_eq!(wait(Some("0")), 0);
        assert_eq!(wait(Some("3")), 3);
        assert_eq!(wait(Some("3600")), 5);
        assert_eq!(wait(Some("Wed, 21 Oct 2015 07:28:00 GMT")), 1);
    }
}
