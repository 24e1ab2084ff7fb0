//! A stored credential: the record the store keeps for a provider and account, and what it
//! tells about its credential.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flow::Credential;

/// The record format version written by this program.
pub(super) const RECORD_VERSION: u32 = 1;

/// A stored credential with what is known about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// The record format version.
    pub version: u32,
    /// The provider.
    pub provider: String,
    /// The account name (`default` unless the user named one).
    pub account: String,
    /// The flow that produced the credential (and refreshes it).
    pub flow: String,
    /// The credential.
    pub credential: Credential,
    /// Who the credential belongs to, when the provider said (GitHub's login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Set when the provider refused the refresh token: why. The credential is not refreshed
    /// again (the dead token is never re-sent) until a new login replaces the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_required: Option<String>,
    /// When the login happened.
    pub created_at: DateTime<Utc>,
    /// When the record was last written.
    pub updated_at: DateTime<Utc>,
}

impl Record {
    /// A new record for a fresh login.
    pub fn new(provider: &str, account: &str, flow: &str, credential: Credential) -> Self {
        let now = Utc::now();
        Self {
            version: RECORD_VERSION,
            provider: provider.to_owned(),
            account: account.to_owned(),
            flow: flow.to_owned(),
            credential,
            identity: None,
            login_required: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// When the access token expires, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.credential.expires_at()
    }

    /// Whether this record holds another secret than `earlier` did (someone refreshed or
    /// logged in again in between); compared in constant time.
    pub(crate) fn replaces(&self, earlier: &Record) -> bool {
        match (self.credential.secret(), earlier.credential.secret()) {
            (Some(now), Some(then)) => !now.ct_eq(then.expose()),
            _ => false,
        }
    }

    /// Whether the credential must be refreshed before use.
    pub fn expires_within(&self, skew: chrono::Duration) -> bool {
        self.credential
            .as_oauth2()
            .is_some_and(|t| t.expires_within(Utc::now(), skew))
    }
}
