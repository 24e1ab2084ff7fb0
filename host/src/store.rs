//! The credential store: one record per provider and account, under
//! `$XDG_DATA_HOME/host/credentials/<provider>/<account>.json`.
//!
//! - folders are `0700`, files `0600`;
//! - a record is written to a temp file in the same folder, fsynced, renamed over the old one,
//!   and the folder fsynced: a crash at any point leaves the previous record intact;
//! - a corrupt record is reported with its path and moved aside (`*.corrupt-<time>`), never
//!   silently overwritten;
//! - [`Store::fresh`] hands out a credential that is valid for at least a skew, refreshing it
//!   first when needed; concurrent callers share one refresh, inside a process (an async mutex
//!   per record) and across processes (an exclusive file lock, then a re-read).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flow::{AuthFlow, Credential, FlowError};
use crate::names::{BadName, check_name};
use crate::private_fs::{create_private_dir, write_atomic};

/// The record format version written by this program.
const RECORD_VERSION: u32 = 1;

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
            created_at: now,
            updated_at: now,
        }
    }

    /// When the access token expires, if it does.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.credential.expires_at()
    }

    /// Whether the credential must be refreshed before use.
    pub fn expires_within(&self, skew: chrono::Duration) -> bool {
        self.credential
            .as_oauth2()
            .is_some_and(|t| t.expires_within(Utc::now(), skew))
    }
}

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
    #[error("the stored credential {} is corrupt; it was moved to {}; run `host run` to log in again", .path.display(), .moved_to.display())]
    Corrupt {
        /// The record's path.
        path: PathBuf,
        /// Where it was moved.
        moved_to: PathBuf,
    },
    /// Nothing stored for this provider and account.
    #[error("no credential stored for provider `{provider}`, account `{account}`; run `host run --provider {provider}{}` first", account_flag(.account))]
    NotFound {
        /// The provider.
        provider: String,
        /// The account.
        account: String,
    },
}

fn account_flag(account: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        String::new()
    } else {
        format!(" --account {account}")
    }
}

/// The account used when none is named.
pub const DEFAULT_ACCOUNT: &str = "default";

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + use<> {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// Why [`Store::fresh`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FreshError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The flow that refreshes the credential cannot be had.
    #[error(transparent)]
    Flow(#[from] crate::provider::ProviderError),
    /// The refresh failed.
    #[error("cannot refresh the credential for provider `{provider}`")]
    Refresh {
        /// The provider.
        provider: String,
        /// Why.
        #[source]
        source: FlowError,
    },
}

/// One async gate per (provider, account): in-process single flight.
type Gates = Arc<Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>>;

/// The credential store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    inflight: Gates,
}

impl Store {
    /// The store in `data_dir/credentials` (created `0700` on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("credentials"),
            inflight: Arc::default(),
        }
    }

    /// The folder holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a record.
    pub fn path(&self, provider: &str, account: &str) -> Result<PathBuf, StoreError> {
        check_name(provider)?;
        check_name(account)?;
        Ok(self.dir.join(provider).join(format!("{account}.json")))
    }

    /// Reads a record: `Ok(None)` when there is none; a corrupt one is moved aside and reported.
    pub fn load(&self, provider: &str, account: &str) -> Result<Option<Record>, StoreError> {
        let path = self.path(provider, account)?;
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("cannot read", &path)(e)),
        };
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) if r.provider == provider && r.account == account => Ok(Some(r)),
            _ => {
                let moved_to = path.with_extension(format!(
                    "json.corrupt-{}",
                    Utc::now().format("%Y%m%dT%H%M%S%.f")
                ));
                fs::rename(&path, &moved_to).map_err(io("cannot move aside", &path))?;
                Err(StoreError::Corrupt { path, moved_to })
            }
        }
    }

    /// Reads a record that must exist.
    pub fn get(&self, provider: &str, account: &str) -> Result<Record, StoreError> {
        self.load(provider, account)?
            .ok_or_else(|| StoreError::NotFound {
                provider: provider.to_owned(),
                account: account.to_owned(),
            })
    }

    /// Writes a record atomically (temp file, fsync, rename, fsync of the folder).
    pub fn save(&self, record: &Record) -> Result<PathBuf, StoreError> {
        let path = self.path(&record.provider, &record.account)?;
        let dir = path.parent().expect("record paths have a parent");
        self.create_dirs(dir)?;
        let mut record = record.clone();
        record.version = RECORD_VERSION;
        record.updated_at = Utc::now();
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Io {
            action: "cannot encode",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(&path, &[&bytes]).map_err(io("cannot write", &path))?;
        Ok(path)
    }

    /// Deletes a record; `Ok(false)` when there was none.
    pub fn delete(&self, provider: &str, account: &str) -> Result<bool, StoreError> {
        let path = self.path(provider, account)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("cannot delete", &path)(e)),
        }
    }

    /// The providers that have stored records (one folder read).
    pub fn providers_with_records(&self) -> std::collections::BTreeSet<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Default::default();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect()
    }

    /// The accounts stored for a provider, sorted.
    pub fn accounts(&self, provider: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join(provider)) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
            .filter(|n| check_name(n).is_ok())
            .collect();
        out.sort();
        out
    }

    /// Takes the exclusive cross-process lock of a record (released on drop).
    pub async fn lock(&self, provider: &str, account: &str) -> Result<RecordLock, StoreError> {
        let path = self.path(provider, account)?.with_extension("lock");
        let dir = path
            .parent()
            .expect("record paths have a parent")
            .to_owned();
        self.create_dirs(&dir)?;
        tokio::task::spawn_blocking(move || {
            let file = private_options()
                .read(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .map_err(io("cannot open", &path))?;
            file.lock().map_err(io("cannot lock", &path))?;
            Ok(RecordLock { _file: file })
        })
        .await
        .map_err(|e| StoreError::Io {
            action: "cannot lock",
            path: dir,
            source: std::io::Error::other(e),
        })?
    }

    fn create_dirs(&self, dir: &Path) -> Result<(), StoreError> {
        for d in [&self.dir, dir] {
            create_private_dir(d).map_err(io("cannot create", d))?;
        }
        Ok(())
    }

    /// A credential valid for at least `skew`, refreshed first when needed (through the flow
    /// `flow` gives for the record's flow name, asked only then) and stored before it is
    /// returned. Concurrent callers (threads or processes) share one refresh: whoever gets the
    /// lock first refreshes, the others re-read its result.
    pub async fn fresh<F, Fut>(
        &self,
        provider: &str,
        account: &str,
        skew: chrono::Duration,
        flow: F,
    ) -> Result<Record, FreshError>
    where
        F: FnOnce(String) -> Fut,
        Fut:
            std::future::Future<Output = Result<Arc<dyn AuthFlow>, crate::provider::ProviderError>>,
    {
        let record = self.get(provider, account)?;
        if !record.expires_within(skew) {
            return Ok(record);
        }
        let gate = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry((provider.to_owned(), account.to_owned()))
                    .or_default(),
            )
        };
        let _in_process = gate.lock().await;
        let _across_processes = self.lock(provider, account).await?;
        // Someone may have refreshed while we waited.
        let mut record = self.get(provider, account)?;
        if !record.expires_within(skew) {
            return Ok(record);
        }
        let flow = flow(record.flow.clone()).await?;
        let credential =
            flow.refresh(&record.credential)
                .await
                .map_err(|source| FreshError::Refresh {
                    provider: provider.to_owned(),
                    source,
                })?;
        record.credential = credential;
        // Stored (with any rotated refresh token) before the new access token is handed out.
        self.save(&record)?;
        Ok(record)
    }
}

/// An exclusive lock on a record, released when dropped.
#[derive(Debug)]
pub struct RecordLock {
    _file: File,
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.create(true);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::OAuth2Token;
    use crate::secret::SecretString;

    fn record(token: &str) -> Record {
        Record::new(
            "github",
            "default",
            "oauth2",
            Credential::OAuth2(OAuth2Token::bearer(SecretString::new(token))),
        )
    }

    #[test]
    fn save_load_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(store.load("github", "default").unwrap().is_none());
        let path = store.save(&record("one")).unwrap();
        let back = store.get("github", "default").unwrap();
        assert_eq!(
            back.credential.as_oauth2().unwrap().access_token.expose(),
            "one"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(path.parent().unwrap())
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777,
                0o700
            );
            assert_eq!(
                fs::metadata(store.dir()).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        assert_eq!(store.accounts("github"), vec!["default"]);
        assert!(store.delete("github", "default").unwrap());
        assert!(!store.delete("github", "default").unwrap());
    }

    #[test]
    fn corrupt_records_are_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let path = store.save(&record("one")).unwrap();
        let good = fs::read(&path).unwrap();
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = store.load("github", "default").unwrap_err();
        let StoreError::Corrupt { moved_to, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(fs::read(moved_to).unwrap(), &good[..good.len() / 2]);
        assert!(err.to_string().contains(&path.display().to_string()));
        assert!(store.load("github", "default").unwrap().is_none());
    }

    #[test]
    fn names_cannot_escape_the_store() {
        let store = Store::new(Path::new("/tmp/x"));
        for bad in ["../etc", "a/b", ".hidden", "", "x\0y"] {
            assert!(store.path("github", bad).is_err(), "{bad:?}");
        }
    }
}
