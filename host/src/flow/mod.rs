//! The flow model: what every auth flow (native or plugin) does, and the values it exchanges.
//!
//! A flow turns a user interaction into a [`Credential`] in three steps:
//! 1. [`AuthFlow::authorize`] says what the user must do ([`Interaction`]) and returns opaque
//!    [`Pending`] state (state parameter, PKCE verifier, device code, …);
//! 2. [`AuthFlow::exchange`] takes that pending state back together with what the user's
//!    interaction produced ([`ExchangeInput`]: callback parameters, prompt answers) and returns a
//!    credential;
//! 3. [`AuthFlow::refresh`] renews a credential.
//!
//! An unattended flow (a machine's own identity) skips the first two: [`AuthFlow::obtain`]
//! gets a credential directly, and running it again renews it.
//!
//! Flows keep no per-login state of their own: everything lives in `Pending`, which the caller
//! stores and hands back. So any instance (a fresh plugin instance, another process) can serve
//! any step.

pub(crate) mod binding;
mod credential;
mod error;
mod pending;

use std::fmt;

/// Re-exported so flows can be implemented without a direct dependency on `async-trait`.
pub use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use binding::{Applied, Binding, Scheme};
pub use credential::{Credential, OAuth2Token, TokenExtras};
pub use error::{BoxError, CallbackError, FlowError};
pub use pending::{MAX_PENDING_BYTES, Pending};

/// An authentication flow: authorize → exchange → refresh.
#[async_trait]
pub trait AuthFlow: Send + Sync {
    /// What the user must do next (open a URL, enter a device code, fill fields) and the pending
    /// state to hand back to [`AuthFlow::exchange`].
    async fn authorize(&self, req: AuthorizeRequest) -> Result<Authorization, FlowError>;

    /// Turns what came back from the user's interaction into a credential.
    async fn exchange(
        &self,
        pending: Pending,
        input: ExchangeInput,
    ) -> Result<Credential, FlowError>;

    /// Renews a credential. The default says the flow cannot refresh.
    async fn refresh(&self, credential: &Credential) -> Result<Credential, FlowError> {
        let _ = credential;
        Err(FlowError::Unsupported(
            "this flow cannot refresh credentials".into(),
        ))
    }

    /// Whether the flow obtains credentials with no person involved (client credentials, a
    /// JWT bearer assertion, a token exchange): then [`AuthFlow::obtain`] gets the first
    /// credential and every renewal runs it again (see [`renewal`](crate::renewal)). The
    /// default: a person is needed.
    fn unattended(&self) -> bool {
        false
    }

    /// Obtains a credential with no person involved, for a flow that is
    /// [`unattended`](AuthFlow::unattended). The default says the flow cannot.
    async fn obtain(&self) -> Result<Credential, FlowError> {
        Err(FlowError::Unsupported(
            "this flow needs a person to authorize".into(),
        ))
    }

    /// Revokes the credential at the provider. `Ok(false)` means the flow has no way to (the
    /// default); the caller still deletes its local copy.
    async fn revoke(&self, credential: &Credential) -> Result<bool, FlowError> {
        let _ = credential;
        Ok(false)
    }

    /// Asks the provider whether the credential still works: `Ok(Some(login))` (or
    /// `Ok(None)` without a login name) when it does, [`FlowError::LoginRequired`] when the
    /// provider refuses it. The default says the flow cannot check.
    async fn verify(&self, credential: &Credential) -> Result<Option<String>, FlowError> {
        let _ = credential;
        Err(FlowError::Unsupported(
            "this flow cannot check a credential with its provider".into(),
        ))
    }

    /// The redirect URI the flow is configured with, when the provider accepts only the one
    /// registered with it: [`login`](crate::login()) then listens where it points (a loopback
    /// `http` URI) instead of on a free port. `None` (the default): any loopback URI will do.
    fn redirect_uri(&self) -> Option<url::Url> {
        None
    }

    /// Who the credential belongs to (a login name), when the provider can say. Best effort:
    /// callers bound the time they wait for it and never fail because of it.
    async fn identify(&self, credential: &Credential) -> Option<String> {
        let _ = credential;
        None
    }
}

impl fmt::Debug for dyn AuthFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn AuthFlow")
    }
}

/// What the caller of [`AuthFlow::authorize`] asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthorizeRequest {
    /// Where the provider should send the user back (the loopback listener's URL).
    pub redirect_uri: Option<String>,
    /// Scopes to ask for; empty means the provider's configured defaults.
    pub scopes: Vec<String>,
}

impl AuthorizeRequest {
    /// A request with a redirect URI and the default scopes.
    pub fn with_redirect(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uri: Some(redirect_uri.into()),
            scopes: Vec::new(),
        }
    }

    /// Asks for these scopes instead of the configured defaults.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// The result of [`AuthFlow::authorize`]: what the user must do, and the state to keep.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// What the user must do.
    pub interaction: Interaction,
    /// Opaque state handed back to [`AuthFlow::exchange`].
    pub pending: Pending,
}

/// What the user must do to authorize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Interaction {
    /// Open this URL in a browser; the provider redirects back to the redirect URI.
    Redirect {
        /// The authorization URL.
        url: String,
    },
    /// Visit a verification URL and enter a code (RFC 8628).
    DeviceCode(DeviceCode),
    /// Fill these fields (an API key, a username and password).
    Prompt {
        /// The fields to ask for.
        fields: Vec<PromptField>,
    },
}

/// A device code for the user to enter (RFC 8628), as shown to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeviceCode {
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// A URL that already carries the code, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval: u64,
    /// Seconds until the code expires.
    pub expires_in: u64,
}

impl DeviceCode {
    /// The interval when the provider gives none (RFC 8628 §3.5), in seconds.
    pub const DEFAULT_INTERVAL: u64 = 5;
    /// Bounds on the interval a provider or plugin may ask for, in seconds.
    pub const INTERVAL_BOUNDS: (u64, u64) = (1, 60);
    /// Bounds on a device code's lifetime, in seconds.
    pub const LIFETIME_BOUNDS: (u64, u64) = (10, 3600);

    /// A device code from whatever a provider or plugin said: texts stripped of control
    /// characters and capped, the interval (default [`DeviceCode::DEFAULT_INTERVAL`]) and
    /// the lifetime clamped to [`DeviceCode::INTERVAL_BOUNDS`] and
    /// [`DeviceCode::LIFETIME_BOUNDS`].
    pub fn new(
        user_code: &str,
        verification_uri: &str,
        verification_uri_complete: Option<&str>,
        interval: Option<u64>,
        expires_in: u64,
    ) -> Self {
        use crate::util::text::sanitize;
        Self {
            user_code: sanitize(user_code.trim(), 64),
            // Never cut (a URL cut is another URL): the flows check them as openable, at
            // most [`MAX_URL_LEN`](crate::net::address::MAX_URL_LEN) bytes.
            verification_uri: sanitize(verification_uri.trim(), crate::net::address::MAX_URL_LEN),
            verification_uri_complete: verification_uri_complete
                .map(|u| sanitize(u.trim(), crate::net::address::MAX_URL_LEN)),
            interval: interval
                .unwrap_or(Self::DEFAULT_INTERVAL)
                .clamp(Self::INTERVAL_BOUNDS.0, Self::INTERVAL_BOUNDS.1),
            expires_in: expires_in.clamp(Self::LIFETIME_BOUNDS.0, Self::LIFETIME_BOUNDS.1),
        }
    }
}

/// One field of a [`Interaction::Prompt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptField {
    /// The name the answer is sent back under.
    pub name: String,
    /// What to show the user.
    pub label: String,
    /// Whether the answer is a secret (read without echo, never printed).
    pub secret: bool,
}

/// What came back from the user's interaction, as name/value pairs in arrival order.
///
/// For a redirect these are the callback's query parameters (duplicates kept, so a flow can
/// refuse a duplicated `state` or `code`); for a prompt, the answers. `Debug` shows names only.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct ExchangeInput {
    params: Vec<(String, String)>,
}

impl ExchangeInput {
    /// Input from name/value pairs.
    pub fn new<I, K, V>(params: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            params: params
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Input from a callback URL's query string.
    pub fn from_query(query: &str) -> Self {
        Self::new(url::form_urlencoded::parse(query.as_bytes()))
    }

    /// All pairs, in order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The single value of `name`: `Ok(None)` when absent, an error when given more than once.
    pub fn single(&self, name: &str) -> Result<Option<&str>, CallbackError> {
        let mut found = self
            .params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        match (found.next(), found.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v)),
            (Some(_), Some(_)) => Err(CallbackError::Duplicated(name.to_owned())),
        }
    }
}

impl fmt::Debug for ExchangeInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.params.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ExchangeInput")
            .field("names", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_codes_are_sanitized_and_clamped() {
        let code = DeviceCode::new(
            "\u{1b}[2JAB-CD",
            "https://x.example/device\u{7}",
            None,
            Some(0),
            1_000_000,
        );
        assert_eq!(code.user_code, "[2JAB-CD");
        assert_eq!(code.verification_uri, "https://x.example/device");
        assert_eq!(code.interval, DeviceCode::INTERVAL_BOUNDS.0);
        assert_eq!(code.expires_in, DeviceCode::LIFETIME_BOUNDS.1);
        assert_eq!(
            DeviceCode::new("a", "b", None, None, 60).interval,
            DeviceCode::DEFAULT_INTERVAL
        );
    }
}
