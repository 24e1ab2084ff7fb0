//! `OAuth2Flow`'s authorization-code grant: the authorization request with PKCE (S256) and
//! state, the code's exchange, and refresh.
//!
//! The `oauth2` crate builds the authorization URL (state, PKCE challenge, scopes); the token
//! requests are `request.rs`'s.

use std::borrow::Cow;

use async_trait::async_trait;
use oauth2::{CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use serde::{Deserialize, Serialize};

use super::class::TokenClass;
use super::error::{ErrorKind, OAuthError};
use super::flow::{ID_TOKEN_CLAIMS, OAuth2Flow};
use super::request::IdTokenCheck;
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, CallbackError, Credential, ExchangeInput, FlowError,
    Interaction, Pending,
};
use crate::oidc::{IdTokenClaims, NonceCheck};
use crate::util::secret::SecretString;
use crate::util::text::sanitize;

/// Bytes of randomness in `state` (256 bits; RFC 9700 asks for at least 128).
const STATE_BYTES: u32 = 32;

/// The name under which the pending state ties itself to this kind of flow.
const FLOW_NAME: &str = "oauth2";

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
