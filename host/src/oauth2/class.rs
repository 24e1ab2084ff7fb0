//! Token classes: how a provider extends the standard token model (the seed's `token_class`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{ErrorKind, TokenError};

/// How a provider extends the standard token (the seed's `token_class`): typed extra fields,
/// provider-specific error codes, and what a refresh keeps from the old token.
pub trait TokenClass: Send + Sync + 'static {
    /// The provider's typed extra fields.
    type Extra: Serialize + DeserializeOwned + Send + Sync;

    /// Builds the extras from the response's non-standard fields, at `received_at` (relative
    /// lifetimes become absolute times here).
    fn parse_extra(
        &self,
        fields: &Map<String, Value>,
        received_at: DateTime<Utc>,
    ) -> Result<Self::Extra, TokenError>;

    /// Maps a provider-specific error code to its standard meaning (GitHub's
    /// `bad_verification_code` is an `invalid_grant`). `None` uses the standard codes.
    fn error_kind(&self, code: &str) -> Option<ErrorKind> {
        let _ = code;
        None
    }

    /// On a refresh whose response carries no new refresh token, the old refresh token is
    /// kept; this lets the class keep what belongs to it (e.g. its expiry).
    fn keep_on_refresh(&self, old: &Self::Extra, new: &mut Self::Extra) {
        let _ = (old, new);
    }
}

/// The standard token class: every non-standard field is kept as it came.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardToken;

impl TokenClass for StandardToken {
    type Extra = Map<String, Value>;

    fn parse_extra(
        &self,
        fields: &Map<String, Value>,
        _received_at: DateTime<Utc>,
    ) -> Result<Self::Extra, TokenError> {
        Ok(fields.clone())
    }
}
