//! The device authorization grant (RFC 8628): for machines without a browser.
//!
//! [`DeviceFlow::authorize`] asks the device authorization endpoint for a code and returns an
//! [`Interaction::DeviceCode`]; [`DeviceFlow::exchange`] makes **one** poll of the token
//! endpoint: it returns the credential, or a [`TokenError::Provider`] with
//! [`ErrorKind::AuthorizationPending`] or [`ErrorKind::SlowDown`] meaning "ask again later".
//! The polling schedule (interval, `slow_down`, back-off, deadline) is
//! [`crate::poll_device`]'s, so plugin device flows get the same rules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::class::{StandardToken, TokenClass};
use super::error::TokenError;
use super::flow::OAuth2Flow;
use super::response::{json_object, lifetime};
use crate::flow::{
    AuthFlow, Authorization, AuthorizeRequest, Credential, DeviceCode, ExchangeInput, FlowError,
    Interaction, Pending,
};
use crate::util::text::sanitize;

/// The grant type of a device poll.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The name under which the pending state ties itself to this kind of flow.
const FLOW_NAME: &str = "device";

/// The device flow of an OAuth2 provider with a `device_authorization_url`.
pub struct DeviceFlow<C: TokenClass = StandardToken> {
    inner: OAuth2Flow<C>,
}

impl<C: TokenClass> std::fmt::Debug for DeviceFlow<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceFlow")
            .field("provider", &self.inner.provider())
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct DevicePending {
    device_code: String,
    scopes: Vec<String>,
    expires_at: DateTime<Utc>,
}

impl<C: TokenClass> DeviceFlow<C> {
    /// The device flow over an OAuth2 flow's app credentials, class and HTTP client. Refused
    /// when the provider has no device authorization endpoint.
    pub fn new(inner: OAuth2Flow<C>) -> Result<Self, FlowError> {
        if inner.app_credentials().device_authorization_url.is_none() {
            return Err(FlowError::config(format!(
                "providers.{}.device_authorization_url is not set: the provider has no device flow",
                inner.provider()
            )));
        }
        Ok(Self { inner })
    }

    /// The OAuth2 flow underneath (refresh and revocation are its).
    pub fn oauth2(&self) -> &OAuth2Flow<C> {
        &self.inner
    }
}

fn text(
    map: &Map<String, Value>,
    names: &[&'static str],
    max: usize,
) -> Result<String, TokenError> {
    for name in names {
        match map.get(*name) {
            Some(Value::String(s)) if !s.trim().is_empty() => return Ok(sanitize(s.trim(), max)),
            Some(_) => {
                return Err(TokenError::Invalid {
                    field: name,
                    reason: "is not a non-empty string",
                });
            }
            None => {}
        }
    }
    Err(TokenError::Missing { field: names[0] })
}

/// A verification URI the user may be sent to: https (http to loopback, for local providers).
fn link(uri: String, field: &'static str) -> Result<String, TokenError> {
    crate::net::address::openable_url(&uri, true)
        .map_err(|reason| TokenError::Invalid { field, reason })
}

#[async_trait]
impl<C: TokenClass> AuthFlow for DeviceFlow<C> {
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError> {
        let app = self.inner.app_credentials();
        let url = app
            .device_authorization_url
            .as_ref()
            .expect("checked in new");
        let scopes = if req.scopes.is_empty() {
            app.scopes.clone()
        } else {
            req.scopes
        };
        let scope = scopes.join(app.scope_separator.as_deref().unwrap_or(" "));
        let mut params = Vec::new();
        if !scope.is_empty() {
            params.push((
                app.device_scope_param.as_deref().unwrap_or("scope"),
                scope.as_str(),
            ));
        }
        let request = self.inner.endpoint_request(url, &params)?;
        let response = self
            .inner
            .http_client()
            .send(request)
            .await
            .map_err(TokenError::from)?;
        let map = json_object(&response, &|c| self.inner.class().error_kind(c))?;
        let device_code = text(&map, &["device_code"], 4096)?;
        let user_code = text(&map, &["user_code"], 64)?;
        // Google says `verification_url`.
        // Kept one character past the longest URL shown, so that a longer one is refused as
        // too long by `link`, never cut.
        let verification_uri = link(
            text(
                &map,
                &["verification_uri", "verification_url"],
                crate::net::address::MAX_URL_LEN + 1,
            )?,
            "verification_uri",
        )?;
        let verification_uri_complete = match map.get("verification_uri_complete") {
            Some(Value::String(s)) => Some(link(s.clone(), "verification_uri_complete")?),
            _ => None,
        };
        let expires_in =
            lifetime(map.get("expires_in").cloned(), "expires_in")?.ok_or(TokenError::Missing {
                field: "expires_in",
            })?;
        let interval = lifetime(map.get("interval").cloned(), "interval")?;
        let code = DeviceCode::new(
            &user_code,
            &verification_uri,
            verification_uri_complete.as_deref(),
            interval,
            expires_in,
        );
        let pending = DevicePending {
            device_code,
            scopes,
            expires_at: Utc::now() + chrono::Duration::seconds(code.expires_in as i64),
        };
        Ok(Authorization {
            interaction: Interaction::DeviceCode(code),
            pending: Pending::seal_json(self.inner.provider(), FLOW_NAME, &pending)?,
        })
    }

    /// One poll: the credential, or `authorization_pending` / `slow_down` to ask again later.
    async fn exchange(
        &self,
        pending: Pending,
        _input: ExchangeInput,
    ) -> Result<Credential, FlowError> {
        let pending: DevicePending = pending.open_json(self.inner.provider(), FLOW_NAME)?;
        let token = self
            .inner
            .token_request(
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("device_code", &pending.device_code),
                ],
                &pending.scopes,
                super::request::IdTokenCheck {
                    // The device grant sends no nonce; asking for `openid` still requires
                    // an id_token.
                    required: pending.scopes.iter().any(|s| s == "openid")
                        && self.inner.id_token_verifier().is_some(),
                    ..super::request::IdTokenCheck::LENIENT
                },
            )
            .await?;
        Ok(Credential::OAuth2(token))
    }

    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        self.inner.refresh(credential).await
    }

    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        self.inner.revoke(credential).await
    }
}

/// How a provider's flow obtains its token: the browser redirect or the device grant, over
/// the same [`OAuth2Flow`] (which refreshes and revokes either way). What a provider adds
/// (its API, its identify endpoint) wraps one of these.
#[derive(Debug)]
pub(crate) enum Grant<C: TokenClass> {
    /// The browser redirect (authorization code with PKCE).
    Code(OAuth2Flow<C>),
    /// The device grant (RFC 8628).
    Device(DeviceFlow<C>),
}

impl<C: TokenClass> Grant<C> {
    /// The device grant when `device`, else the browser redirect (the device grant needs a
    /// device endpoint).
    pub(crate) fn new(flow: OAuth2Flow<C>, device: bool) -> Result<Self, FlowError> {
        Ok(if device {
            Grant::Device(DeviceFlow::new(flow)?)
        } else {
            Grant::Code(flow)
        })
    }

    /// The OAuth2 flow underneath.
    pub(crate) fn oauth2(&self) -> &OAuth2Flow<C> {
        match self {
            Grant::Code(f) => f,
            Grant::Device(d) => d.oauth2(),
        }
    }

    /// The grant as a flow (its `authorize` and `exchange`).
    pub(crate) fn flow(&self) -> &dyn AuthFlow {
        match self {
            Grant::Code(f) => f,
            Grant::Device(d) => d,
        }
    }
}
