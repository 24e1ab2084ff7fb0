//! Typed errors of the token endpoint, and what they mean to a caller.

use std::fmt;
use std::time::Duration;

use crate::flow::FlowError;
use crate::net::http::HttpError;

/// The standard OAuth2 error codes (RFC 6749 §5.2, RFC 8628 §3.5), plus `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`: the client id or secret is wrong.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired or revoked.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `access_denied`.
    AccessDenied,
    /// `authorization_pending` (device flow).
    AuthorizationPending,
    /// `slow_down` (device flow).
    SlowDown,
    /// `expired_token` (device flow).
    ExpiredToken,
    /// `server_error`.
    ServerError,
    /// `temporarily_unavailable`.
    TemporarilyUnavailable,
    /// A code this program does not know.
    Other,
}

impl ErrorKind {
    /// The kind of a standard error code.
    pub fn from_code(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            _ => Self::Other,
        }
    }
}

/// An error the authorization server reported (`{"error": …}`), whatever the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The standard meaning (provider-specific codes are mapped by the token class).
    pub kind: ErrorKind,
    /// The code as sent, sanitized.
    pub code: String,
    /// The `error_description`, stripped of control characters and capped.
    pub description: Option<String>,
    /// The `error_uri`, sanitized.
    pub uri: Option<String>,
    /// The HTTP status it came with.
    pub status: u16,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the provider answered `{}`", self.code)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if self.status == 200 {
            f.write_str(" (inside an HTTP 200 response)")?;
        }
        Ok(())
    }
}

/// Why a request to one of the provider's OAuth2 endpoints (token, device authorization,
/// revocation) failed. The messages say "the provider's endpoint": the caller's context says
/// which one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The request did not complete (timeout, connection, size cap, insecure URL).
    #[error("the request to the provider failed")]
    Http(#[from] HttpError),
    /// The endpoint answered with a redirect, which is never followed.
    #[error(
        "the provider's endpoint answered with a redirect (HTTP {status}); redirects are never followed"
    )]
    Redirect {
        /// The 3xx status.
        status: u16,
    },
    /// The provider reported an OAuth2 error.
    #[error("{0}")]
    Provider(OAuthError),
    /// The provider is rate-limiting or unavailable.
    // The `Retry-After` is said by the temporary failure this becomes (`FlowError::Transient`).
    #[error("the provider's endpoint is unavailable (HTTP {status})")]
    Unavailable {
        /// 429 or 503.
        status: u16,
        /// The `Retry-After` delay, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// An HTTP error status without an OAuth2 error body.
    #[error("the provider's endpoint failed with HTTP {status}{}", .content_type.as_deref().map(|c| format!(" ({c} body)")).unwrap_or_default())]
    Status {
        /// The status.
        status: u16,
        /// The body's content type, if any.
        content_type: Option<String>,
    },
    /// A success status whose body is not JSON (or form-encoded).
    #[error("the provider's endpoint answered with a body that is not JSON{}", .content_type.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    NotJson {
        /// The declared content type.
        content_type: Option<String>,
    },
    /// The JSON body is not an object.
    #[error("the provider's endpoint answered with JSON {found} instead of an object")]
    NotObject {
        /// What it was (`null`, an array, …).
        found: &'static str,
    },
    /// A required field is absent.
    // Token and device authorization answers alike.
    #[error("the provider's answer has no `{field}`")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field is present but unusable.
    #[error("the provider's answer: `{field}` {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it (never its value).
        reason: &'static str,
    },
    /// `token_type` is not `bearer`.
    #[error("the token type `{0}` is not supported (only bearer tokens are)")]
    UnsupportedTokenType(String),
}

impl TokenError {
    /// The token error in `error`'s cause chain, if there is one.
    pub fn find(error: &FlowError) -> Option<&TokenError> {
        error.find_cause::<TokenError>()
    }

    /// Whether the endpoint gave no token answer at all, neither a token nor an OAuth2 error:
    /// a page that is not JSON, a redirect, an error status without an OAuth2 body, a body
    /// over the size cap (a maintenance page, a captive portal, a misrouted request).
    pub fn is_not_an_answer(&self) -> bool {
        match self {
            TokenError::Redirect { .. }
            | TokenError::Status { .. }
            | TokenError::NotJson { .. }
            | TokenError::NotObject { .. } => true,
            TokenError::Http(e) => matches!(e, HttpError::TooLarge { .. }),
            _ => false,
        }
    }

    /// Whether this is an `invalid_grant`: the code or refresh token is no longer valid.
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenError::Provider(e) if e.kind == ErrorKind::InvalidGrant)
    }

    /// The provider's OAuth2 error, if that is what this is.
    pub fn provider_error(&self) -> Option<&OAuthError> {
        match self {
            TokenError::Provider(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TokenError> for FlowError {
    /// Sorts a token-endpoint failure into the kind a caller acts on; the error itself stays
    /// the cause.
    fn from(e: TokenError) -> Self {
        let transient = |retry_after, e: TokenError| FlowError::Transient {
            retry_after,
            source: Box::new(e),
        };
        match &e {
            TokenError::Provider(p) => match p.kind {
                ErrorKind::AuthorizationPending => FlowError::Pending,
                ErrorKind::SlowDown => FlowError::SlowDown,
                ErrorKind::AccessDenied => FlowError::Denied {
                    description: p.description.clone(),
                },
                ErrorKind::ExpiredToken => FlowError::Expired,
                ErrorKind::InvalidGrant => FlowError::LoginRequired {
                    reason: "the provider refused the grant",
                    source: Some(Box::new(e)),
                },
                ErrorKind::ServerError | ErrorKind::TemporarilyUnavailable => transient(None, e),
                _ => FlowError::Failed(Box::new(e)),
            },
            TokenError::Unavailable { retry_after, .. } => transient(*retry_after, e),
            TokenError::Status { status, .. } if *status >= 500 => transient(None, e),
            TokenError::Http(h) if h.is_transient() => transient(None, e),
            _ if e.is_not_an_answer() => FlowError::NoAnswer(Box::new(e)),
            _ => FlowError::Failed(Box::new(e)),
        }
    }
}
