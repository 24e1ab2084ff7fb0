//! The one error model of a flow step: the kinds callers act on, causes kept.
//!
//! A caller decides on the variant: ask again ([`FlowError::Pending`]), slow down, try later
//! ([`FlowError::Transient`], [`FlowError::NoAnswer`]), stop because the user refused ([`FlowError::Denied`]) or the
//! login ran out ([`FlowError::Expired`]), send the user through a new login
//! ([`FlowError::LoginRequired`]), fix the configuration ([`FlowError::InvalidConfig`],
//! [`FlowError::InvalidAppCredentials`]), or ignore a bad callback ([`FlowError::Rejected`]).
//! What caused it travels as the error's [`source`](std::error::Error::source), for instance
//! a token endpoint's error or a plugin's, found again with [`FlowError::find_cause`].

use std::time::Duration;

use crate::providers::app_credentials::ValidationError;

/// A boxed cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a flow step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// The provider's app credentials do not satisfy their schema.
    #[error(transparent)]
    InvalidAppCredentials(#[from] ValidationError),
    /// The provider's configuration is unusable (a plain-http endpoint, a reserved parameter).
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is wrong, naming the setting (never its value).
        message: String,
        /// The cause, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The callback or the user's input was not accepted; a login may keep waiting for the
    /// real one.
    #[error(transparent)]
    Rejected(#[from] CallbackError),
    /// The user (or the provider on their behalf) refused access.
    #[error("access denied{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// The provider's explanation, sanitized.
        description: Option<String>,
    },
    /// The user has not finished authorizing yet (a device poll): ask again at the interval.
    #[error("the authorization is still pending")]
    Pending,
    /// The provider asks to poll less often (a device poll).
    #[error("the provider asked to slow down")]
    SlowDown,
    /// A failure that may pass: a network error, a timeout, a 5xx, rate limiting.
    #[error("a temporary failure{}", .retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    Transient {
        /// How long the provider asked to wait, if it said.
        retry_after: Option<Duration>,
        /// What failed.
        #[source]
        source: BoxError,
    },
    /// The device code or the login's time ran out before the user authorized.
    #[error("the code expired before it was entered; start the login again")]
    Expired,
    /// The credential can no longer be renewed: the user must log in again.
    #[error("{reason}; log in again")]
    LoginRequired {
        /// Why (the refresh token expired, was refused, or is absent).
        reason: &'static str,
        /// The provider's answer, when there was one.
        #[source]
        source: Option<BoxError>,
    },
    /// The provider gave no answer to act on: neither a token nor an OAuth2 error (a
    /// maintenance page, a redirect, an error status without an OAuth2 body, an answer over
    /// the size cap), as a native flow sees it or as the host saw the last answer a plugin
    /// got. Like [`FlowError::Transient`] it may pass by itself, so a renewal that fails this
    /// way hands out the current token while it is valid (see [`renewal`](crate::renewal)).
    #[error(transparent)]
    NoAnswer(BoxError),
    /// The step failed for a reason no retry or new login fixes by itself: a provider's error,
    /// an unusable response, a plugin's failure.
    #[error(transparent)]
    Failed(BoxError),
    /// A refresh's answer was refused (say, its `id_token` did not check out), but it carried
    /// a new refresh token. The provider may already have retired the one it was sent, so
    /// whoever stores the credential keeps this one (never the refused answer's access token)
    /// and then reports `source`: the [`Store`](crate::store::Store) does, and its callers see
    /// `source` only.
    #[error("the refresh's answer was refused, though it carried a new refresh token")]
    RefreshRefused {
        /// The refresh token the refused answer carried.
        refresh_token: crate::util::secret::SecretString,
        /// Why the answer was refused.
        #[source]
        source: Box<FlowError>,
    },
    /// The flow does not support this step or credential.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A bug or an unexpected internal failure.
    #[error("internal error: {message}")]
    Internal {
        /// What went wrong.
        message: &'static str,
        /// The cause, when there is one.
        #[source]
        source: Option<BoxError>,
    },
}

impl FlowError {
    /// This error and its causes on one line (`outer: inner: innermost`), for messages that
    /// cannot print a cause chain themselves.
    pub fn chain(&self) -> String {
        crate::util::text::error_chain(self)
    }

    /// Whether the user must log in again.
    pub fn needs_login(&self) -> bool {
        match self {
            FlowError::LoginRequired { .. } => true,
            FlowError::RefreshRefused { source, .. } => source.needs_login(),
            _ => false,
        }
    }

    /// An invalid configuration without a further cause.
    pub fn config(message: impl Into<String>) -> Self {
        FlowError::InvalidConfig {
            message: message.into(),
            source: None,
        }
    }

    /// An internal failure with its cause.
    pub fn internal(
        message: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        FlowError::Internal {
            message,
            source: Some(source.into()),
        }
    }

    /// The first error of type `E` in this error's cause chain (itself excluded).
    pub fn find_cause<E: std::error::Error + 'static>(&self) -> Option<&E> {
        // A transparent variant's `source()` skips the error it wraps: start with that one.
        let mut next: Option<&(dyn std::error::Error + 'static)> = match self {
            FlowError::Failed(e) | FlowError::NoAnswer(e) => Some(e.as_ref()),
            FlowError::InvalidAppCredentials(e) => Some(e),
            FlowError::Rejected(e) => Some(e),
            _ => std::error::Error::source(self),
        };
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<E>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

/// A callback or input that cannot be accepted (wrong state, duplicated parameters, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// A parameter appeared more than once.
    #[error("the callback carries `{0}` more than once")]
    Duplicated(String),
    /// A required parameter is absent.
    #[error("the callback carries no `{0}`")]
    Missing(String),
    /// The `state` does not match the one sent with the authorization request.
    #[error("the callback's `state` does not match this login attempt")]
    StateMismatch,
    /// Both `code` and `error` were present.
    #[error("the callback carries both `code` and `error`")]
    CodeAndError,
    /// The `iss` parameter names another authorization server (a mix-up attack, RFC 9207).
    #[error("the callback comes from issuer `{got}`, expected `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the callback (sanitized).
        got: String,
    },
    /// The flow (a plugin) refused the input, e.g. a wrong key.
    #[error("the input was rejected: {0}")]
    Rejected(String),
    /// The pending state belongs to another provider or flow, or cannot be read.
    #[error("the pending login state {0}")]
    BadPending(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[test]
    fn causes_are_found_down_the_chain() {
        let e = FlowError::Failed(Box::new(Outer(Inner)));
        assert!(e.find_cause::<Inner>().is_some());
        assert!(e.find_cause::<Outer>().is_some());
        let e = FlowError::LoginRequired {
            reason: "the refresh token was refused",
            source: None,
        };
        assert!(e.needs_login());
        assert_eq!(e.to_string(), "the refresh token was refused; log in again");
    }
}
