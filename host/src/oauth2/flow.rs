//! `OAuth2Flow`: authorization code with PKCE (S256) and state, token exchange, refresh.

use std::borrow::Cow;

use async_trait::async_trait;
use chrono::Utc;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::app::{ClientAuth, OAuth2AppCredentials};
use super::error::{ErrorKind, OAuthError, TokenError, sanitize};
use super::response::{TokenFields, classify};
use super::token::{OAuth2Token, StandardToken, TokenClass, TokenExtras};
use crate::credentials::SecretString;
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, CallbackError, Credential, ExchangeInput, FlowError,
    Interaction, Pending,
};
use crate::http::{HttpClient, HttpPolicy, require_secure};

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
];

/// The authorization-code flow with PKCE, generic over the provider's [`TokenClass`].
pub struct OAuth2Flow<C: TokenClass = StandardToken> {
    provider: String,
    app: OAuth2AppCredentials,
    class: C,
    http: HttpClient,
}

impl std::fmt::Debug for OAuth2Flow<StandardToken> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Flow")
            .field("provider", &self.provider)
            .field("app", &self.app)
            .finish()
    }
}

impl OAuth2Flow<StandardToken> {
    /// A flow for `provider` with the standard token model and the default HTTP limits.
    pub fn new(provider: &str, app: OAuth2AppCredentials) -> Result<Self, FlowError> {
        let http =
            HttpClient::new(HttpPolicy::default()).map_err(|e| FlowError::Config(e.to_string()))?;
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
                require_secure(url)
                    .map_err(|e| FlowError::Config(format!("providers.{provider}.{field}: {e}")))?;
            }
        }
        if let Some(name) = app
            .authorize_params
            .keys()
            .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(FlowError::Config(format!(
                "providers.{provider}.authorize_params.{name}: `{name}` is set by the flow itself"
            )));
        }
        Ok(Self {
            provider: provider.to_owned(),
            app,
            class,
            http,
        })
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

    /// The HTTP client every request of this flow goes through.
    pub fn http_client(&self) -> &HttpClient {
        &self.http
    }

    fn client(&self) -> OAuthClient {
        let mut client = oauth2::Client::new(ClientId::new(self.app.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.app.authorize_url.clone()))
            .set_token_uri(TokenUrl::from_url(self.app.token_url.clone()))
            .set_auth_type(match self.app.client_auth {
                ClientAuth::Basic => oauth2::AuthType::BasicAuth,
                ClientAuth::RequestBody => oauth2::AuthType::RequestBody,
            });
        if let Some(secret) = &self.app.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose().to_owned()));
        }
        client
    }

    /// Turns the outcome of a token request (built by the `oauth2` crate, sent through
    /// [`HttpFn`]) into a token, and says whether it carried a refresh token.
    fn finish(
        &self,
        result: Result<OAuthTokenResponse, RequestTokenError<TokenError, BasicErrorResponse>>,
        received_at: chrono::DateTime<Utc>,
        requested_scopes: &[String],
    ) -> Result<(OAuth2Token, bool), FlowError> {
        let response = result.map_err(|e| match e {
            RequestTokenError::Request(e) => FlowError::Token(e),
            // The normalized body we hand to `oauth2` always parses; anything else is a bug. The
            // raw body inside a parse error is dropped unread: it may hold a token.
            RequestTokenError::Parse(..) => {
                FlowError::Internal("token response re-parse failed".into())
            }
            RequestTokenError::ServerResponse(_) | RequestTokenError::Other(_) => {
                FlowError::Internal("unexpected token response shape".into())
            }
        })?;
        let fields = &response.extra_fields().0;
        let extra = self.class.parse_extra(fields, received_at)?;
        let extra = match serde_json::to_value(extra) {
            Ok(Value::Object(map)) => map,
            Ok(Value::Null) => Map::new(),
            _ => {
                return Err(FlowError::Internal(
                    "token extras must serialize to an object".into(),
                ));
            }
        };
        let got_refresh = response.refresh_token().is_some();
        let token = OAuth2Token {
            access_token: SecretString::new(response.access_token().secret().clone()),
            token_type: "bearer".into(),
            refresh_token: response
                .refresh_token()
                .map(|r| SecretString::new(r.secret().clone())),
            expires_at: response.expires_in().and_then(|d| {
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| received_at.checked_add_signed(d))
            }),
            scopes: match response.scopes() {
                Some(s) => s.iter().map(|s| s.to_string()).collect(),
                None => requested_scopes.to_vec(),
            },
            extra: TokenExtras(extra),
        };
        Ok((token, got_refresh))
    }

    fn decode_pending(&self, pending: &Pending) -> Result<PendingState, CallbackError> {
        let state: PendingState = serde_json::from_slice(pending.as_bytes())
            .map_err(|_| CallbackError::BadPending("cannot be read".into()))?;
        if state.provider != self.provider || state.flow != FLOW_NAME {
            return Err(CallbackError::BadPending(format!(
                "belongs to provider `{}`, not `{}`",
                sanitize(&state.provider, 64),
                self.provider
            )));
        }
        Ok(state)
    }
}

/// The name under which the pending state ties itself to this kind of flow.
const FLOW_NAME: &str = "oauth2";

type OAuthTokenResponse = StandardTokenResponse<RawExtras, BasicTokenType>;
type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    OAuthTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Non-standard token fields as `oauth2` hands them back; redacted in `Debug`.
#[derive(Clone, Serialize, Deserialize)]
struct RawExtras(Map<String, Value>);

impl std::fmt::Debug for RawExtras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl oauth2::ExtraTokenFields for RawExtras {}

/// The `oauth2` crate's HTTP seam, satisfied by the hardened client plus the classifier.
struct HttpFn<'a, C: TokenClass> {
    flow: &'a OAuth2Flow<C>,
}

impl<'c, C: TokenClass> oauth2::AsyncHttpClient<'c> for HttpFn<'_, C> {
    type Error = TokenError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, TokenError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.flow.http.send(request).await?;
            let class = &self.flow.class;
            let fields = classify(&response, &|code| class.error_kind(code))?;
            Ok(normalized(fields))
        })
    }
}

/// Re-encodes a classified response in the strict standard shape `oauth2` parses.
fn normalized(fields: TokenFields) -> oauth2::HttpResponse {
    let mut body = fields.extra;
    body.insert("access_token".into(), fields.access_token.expose().into());
    body.insert("token_type".into(), "bearer".into());
    if let Some(r) = &fields.refresh_token {
        body.insert("refresh_token".into(), r.expose().into());
    }
    if let Some(s) = fields.expires_in {
        body.insert("expires_in".into(), s.into());
    }
    if let Some(scopes) = fields.scopes {
        body.insert("scope".into(), scopes.join(" ").into());
    }
    let mut response = oauth2::HttpResponse::new(serde_json::to_vec(&body).unwrap_or_default());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// What `authorize` hands to `exchange`, serialized into [`Pending`].
#[derive(Serialize, Deserialize)]
struct PendingState {
    provider: String,
    flow: String,
    state: String,
    verifier: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
}

#[async_trait]
impl<C: TokenClass> AuthFlow for OAuth2Flow<C> {
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
            .map_err(|_| FlowError::Config("the redirect URI is not a valid URL".into()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let client = self.client();
        let mut request = client
            .authorize_url(|| CsrfToken::new_random_len(STATE_BYTES))
            .add_scopes(scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(url) = &redirect_url {
            request = request.set_redirect_uri(Cow::Borrowed(url));
        }
        for (k, v) in &self.app.authorize_params {
            request = request.add_extra_param(k.as_str(), v.as_str());
        }
        let (url, state) = request.url();
        let pending = PendingState {
            provider: self.provider.clone(),
            flow: FLOW_NAME.into(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            redirect_uri: redirect,
            scopes,
        };
        let pending =
            serde_json::to_vec(&pending).map_err(|e| FlowError::Internal(e.to_string()))?;
        Ok(Authorization {
            interaction: Interaction::Redirect {
                url: url.to_string(),
            },
            pending: Pending::new(pending),
        })
    }

    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        let pending = self.decode_pending(&pending)?;
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
        if let (Some(iss), Some(expected)) = (input.single("iss")?, &self.app.issuer)
            && iss != expected
        {
            return Err(CallbackError::IssuerMismatch {
                expected: expected.clone(),
                got: sanitize(iss, 200),
            }
            .into());
        }
        let code = match (code, error) {
            (Some(_), Some(_)) => return Err(CallbackError::CodeAndError.into()),
            (None, Some(error)) => {
                let description = input.single("error_description")?.map(|d| sanitize(d, 300));
                if error == "access_denied" {
                    return Err(FlowError::AccessDenied { description });
                }
                let code = sanitize(error, 64);
                return Err(FlowError::Authorization(OAuthError {
                    kind: self
                        .class
                        .error_kind(&code)
                        .unwrap_or_else(|| ErrorKind::from_code(&code)),
                    code,
                    description,
                    uri: None,
                    status: 0,
                }));
            }
            (Some(code), None) if !code.is_empty() => code,
            _ => return Err(CallbackError::Missing("code".into()).into()),
        };
        let client = self.client();
        let redirect = pending
            .redirect_uri
            .clone()
            .map(RedirectUrl::new)
            .transpose()
            .map_err(|_| FlowError::Internal("stored redirect URI unreadable".into()))?;
        let mut request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()));
        if let Some(r) = &redirect {
            request = request.set_redirect_uri(Cow::Borrowed(r));
        }
        let received_at = Utc::now();
        let result = request.request_async(&HttpFn { flow: self }).await;
        let (token, _) = self.finish(result, received_at, &pending.scopes)?;
        Ok(Credential::OAuth2(token))
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        let old = credential
            .as_oauth2()
            .ok_or_else(|| FlowError::Unsupported("only OAuth2 tokens can be refreshed".into()))?;
        let refresh = old
            .refresh_token
            .as_ref()
            .ok_or(FlowError::NoRefreshToken)?;
        let client = self.client();
        let refresh = RefreshToken::new(refresh.expose().to_owned());
        let received_at = Utc::now();
        let result = client
            .exchange_refresh_token(&refresh)
            .request_async(&HttpFn { flow: self })
            .await;
        let (mut token, got_refresh) = self.finish(result, received_at, &old.scopes)?;
        if !got_refresh {
            token.refresh_token = old.refresh_token.clone();
            if let (Ok(old_extra), Ok(mut new_extra)) =
                (old.extra_as::<C::Extra>(), token.extra_as::<C::Extra>())
            {
                self.class.keep_on_refresh(&old_extra, &mut new_extra);
                if let Ok(Value::Object(map)) = serde_json::to_value(new_extra) {
                    token.extra = TokenExtras(map);
                }
            }
        }
        Ok(Credential::OAuth2(token))
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.revoke_rfc7009(credential).await
    }
}

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
        for (secret, hint) in tokens {
            self.revoke_one(url, secret, hint).await?;
        }
        Ok(true)
    }

    async fn revoke_one(
        &self,
        url: &url::Url,
        token: &SecretString,
        hint: &str,
    ) -> Result<(), FlowError> {
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let request = self.revocation_request(url, token, hint)?;
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
            let wait = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .min(5);
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
        }
        Ok(())
    }
}

impl<C: TokenClass> OAuth2Flow<C> {
    fn revocation_request(
        &self,
        url: &url::Url,
        token: &SecretString,
        hint: &str,
    ) -> Result<http::Request<Vec<u8>>, FlowError> {
        self.form_request(url, &[("token", token.expose()), ("token_type_hint", hint)])
    }

    /// A form POST to one of the provider's endpoints, with the client's authentication (HTTP
    /// Basic, or `client_id`/`client_secret` in the body; a public client sends its id).
    pub(crate) fn form_request(
        &self,
        url: &url::Url,
        params: &[(&str, &str)],
    ) -> Result<http::Request<Vec<u8>>, FlowError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let mut request = http::Request::post(url.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        match (&self.app.client_secret, self.app.client_auth) {
            (Some(secret), ClientAuth::Basic) => {
                request = request.header(
                    http::header::AUTHORIZATION,
                    basic_auth(&self.app.client_id, secret.expose()),
                );
            }
            (secret, _) => {
                form.append_pair("client_id", &self.app.client_id);
                if let Some(secret) = secret {
                    form.append_pair("client_secret", secret.expose());
                }
            }
        }
        request
            .body(form.finish().into_bytes())
            .map_err(|e| FlowError::Internal(e.to_string()))
    }

    /// Sends a token request built by hand (the device grant) and reads the token the same way
    /// as every other: classified, then parsed by `oauth2` into the standard shape.
    pub(crate) async fn send_token_request(
        &self,
        request: http::Request<Vec<u8>>,
        requested_scopes: &[String],
    ) -> Result<OAuth2Token, FlowError> {
        let received_at = Utc::now();
        let response = self.http.send(request).await.map_err(TokenError::from)?;
        let fields = classify(&response, &|code| self.class.error_kind(code))?;
        let parsed: OAuthTokenResponse = serde_json::from_slice(normalized(fields).body())
            .map_err(|_| FlowError::Internal("token response re-parse failed".into()))?;
        self.finish(Ok(parsed), received_at, requested_scopes)
            .map(|(token, _)| token)
    }

    /// The provider's name.
    pub(crate) fn provider(&self) -> &str {
        &self.provider
    }

    /// The token class.
    pub(crate) fn class(&self) -> &C {
        &self.class
    }
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
