//! Why the store failed: [`StoreError`], and the helpers that make one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::seal::{KeyError, KeySource};
use crate::util::names::BadName;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A provider or account name that cannot be a file name.
    #[error(transparent)]
    BadName(#[from] BadName),
    /// File-system trouble.
    #[error("{action} {}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A record that cannot be read; it has been moved aside.
    #[error("the stored credential {} is corrupt; it was moved to {}", .path.display(), .moved_to.display())]
    Corrupt {
        /// The record's path.
        path: PathBuf,
        /// Where it was moved.
        moved_to: PathBuf,
    },
    /// The record's lock is held by another process for longer than the lock timeout.
    #[error("the credential {} is locked by {holder} and was not released within {}s; is that process stopped?", .path.display(), .waited.as_secs())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the holder wrote it (`process 1234`), or `another process`.
        holder: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// A path in the store is a symbolic link (or not a regular file or folder): refused, and
    /// nothing outside the store is touched.
    #[error("refusing to use {}: {reason}", .path.display())]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A record that does not open with the store's keys: left as it is.
    #[error(
        "the stored credential of provider `{provider}`, account `{account}` does not open with the key from {key}: {reason}; it is left as it is"
    )]
    Sealed {
        /// The provider.
        provider: String,
        /// The account.
        account: String,
        /// Where the key tried came from (never the key).
        key: KeySource,
        /// Why: another key, or altered (or moved from another provider or account).
        reason: &'static str,
    },
    /// The store's key cannot be had.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database failed.
    #[error("{action}")]
    Database {
        /// What was being done.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store's settings are unusable.
    #[error("{0}")]
    Config(String),
    /// A lock in the database was not released in time.
    #[error("{what} is locked by another process and was not released within {}s; is that process stopped?", .waited.as_secs())]
    Busy {
        /// What is locked.
        what: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// The record changed since it was read under its lock (a writer that did not take the
    /// lock): nothing was written over it.
    #[error(
        "the stored credential of provider `{provider}`, account `{account}` changed while it was being written; nothing was overwritten"
    )]
    Conflict {
        /// The provider.
        provider: String,
        /// The account.
        account: String,
    },
    /// Nothing stored for this provider and account.
    #[error("no credential stored for provider `{provider}`, account `{account}`")]
    NotFound {
        /// The provider.
        provider: String,
        /// The account.
        account: String,
    },
}

pub(crate) fn io(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

impl StoreError {
    /// Whether the user must log in: nothing is stored.
    pub fn needs_login(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}
