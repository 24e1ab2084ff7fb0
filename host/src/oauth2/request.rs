//! `OAuth2Flow`'s requests to the provider's endpoints, with the client's authentication,
//! and the tokens read from their answers.
//!
//! Every request to the provider's token, device and revocation endpoints is built by one
//! function here ([`OAuth2Flow::endpoint_request`], which applies the client authentication)
//! and every token response is read once by [`super::response`]: the `oauth2` crate's strict
//! parser would turn a provider's lenient answer (errors inside HTTP 200, `expires_in` as a
//! string) into a parse error, and it has no single-poll device call for the shared polling
//! schedule.

use chrono::Utc;

use super::app::{ClientAuth, TokenRequestFormat};
use super::class::TokenClass;
use super::error::TokenError;
use super::flow::{ID_TOKEN_CLAIMS, OAuth2Flow};
use super::response::{carried_refresh_token, fields, json_object, nested};
use crate::flow::{Credential, FlowError, OAuth2Token};
use crate::oidc::{IdTokenError, NonceCheck};

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

impl<C: TokenClass> OAuth2Flow<C> {
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
