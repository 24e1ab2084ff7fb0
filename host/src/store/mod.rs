//! The credential store: one record per provider and account, in one of two backends, every
//! record sealed at rest ([`seal`]).
//!
//! - **file** (the default): `$XDG_DATA_HOME/host/credentials/<provider>/<account>.json`,
//!   folders `0700`, files `0600`, each written to a temp file, fsynced, renamed over the old
//!   one and the folder fsynced (a crash leaves the previous record); a record that cannot be
//!   parsed is moved aside (`*.corrupt-<time>`), never silently overwritten; a symlinked
//!   record, lock or folder is refused; the lock is an exclusive file lock.
//! - **postgres** (`[store] backend = "postgres"`, `url`): a row per record, shared by every
//!   machine; the lock is a transaction-scoped advisory lock and writes are compare-and-swap
//!   on the row's version (see `postgres.rs`).
//!
//! Either way, every change of a record (a refresh, a login, a logout) happens under the
//! record's lock, on what was read under that lock: a refresh in flight cannot undo a logout
//! or replace a newer login. Inside a process an async gate per record comes first. Waiting is
//! bounded. The store is persistence, sealing and locks only: when and how a credential is
//! renewed under those locks is [`renewal`](crate::renewal)'s.
//!
//! A record that does not open with the store's key (another key, or moved under another
//! provider or account) is reported by name and left as it is. Records written before sealing
//! existed still load, and are sealed when next written.

mod admin;
mod error;
mod file;
mod lock;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
pub mod seal;
mod sealing;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::util::names::check_name;
use seal::KeyRing;

pub use admin::{CopyReport, RekeyReport};
pub use error::StoreError;
pub(crate) use error::io;
pub(crate) use lock::Prepared;
pub use lock::RecordLock;
pub use record::Record;

/// The account used when none is named.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One async gate per (provider, account): in-process single flight.
type Gates = Arc<Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>>;

/// How long a process waits for a record's lock unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of the key file the file store creates beside its records.
pub const DEFAULT_KEY_FILE: &str = "store.key";

/// Where records live.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// Files under the data folder.
    File,
    /// A PostgreSQL database (its connection URL).
    Postgres(String),
}

impl std::fmt::Debug for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendKind::File => f.write_str("File"),
            // The URL may carry a password.
            BackendKind::Postgres(_) => f.write_str("Postgres([redacted URL])"),
        }
    }
}

/// How a [`Store`] is set up (from `[store]` in the configuration).
#[derive(Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Where records live.
    pub backend: BackendKind,
    /// The data folder (the file store's records, its default key file).
    pub data_dir: PathBuf,
    /// The key file (`[store] key_file`).
    pub key_file: Option<PathBuf>,
    /// The key itself (`HOST_STORE_KEY`), base64.
    pub key: Option<Zeroizing<String>>,
    /// The previous key (`HOST_STORE_PREVIOUS_KEY`), while records move to `key`.
    pub previous_key: Option<Zeroizing<String>>,
    /// How long to wait for a record's lock.
    pub lock_timeout: Duration,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field(
                "backend",
                &match &self.backend {
                    BackendKind::File => "file",
                    BackendKind::Postgres(_) => "postgres",
                },
            )
            .field("data_dir", &self.data_dir)
            .field("key_file", &self.key_file)
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field(
                "previous_key",
                &self.previous_key.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl StoreOptions {
    /// The file store in `data_dir`, its key in `data_dir/store.key` (created on first write).
    pub fn file(data_dir: &Path) -> Self {
        Self {
            backend: BackendKind::File,
            data_dir: data_dir.to_owned(),
            key_file: None,
            key: None,
            previous_key: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

#[derive(Debug)]
enum Backend {
    File(file::FileBackend),
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgBackend>),
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    options: StoreOptions,
    /// The keys as last read; read again when a record names a key they lack and before
    /// sealing (another process's rekey may have replaced them), unless `keys_pinned`.
    keys: Mutex<Option<Arc<KeyRing>>>,
    /// A rekey's own store, sealing with the ring it was given whatever the files say.
    keys_pinned: bool,
    inflight: Gates,
}

/// The credential store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// The file store in `data_dir/credentials`, sealed with the key in `data_dir/store.key`
    /// (created `0600` on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self::open(StoreOptions::file(data_dir)).expect("the file store needs no settings")
    }

    /// The store `options` describe. Nothing is connected, read or created until used.
    pub fn open(options: StoreOptions) -> Result<Self, StoreError> {
        let backend = match &options.backend {
            BackendKind::File => Backend::File(file::FileBackend {
                dir: options.data_dir.join("credentials"),
            }),
            #[cfg(feature = "postgres")]
            BackendKind::Postgres(url) => Backend::Postgres(Box::new(postgres::PgBackend::new(
                url,
                options.lock_timeout,
            )?)),
            #[cfg(not(feature = "postgres"))]
            BackendKind::Postgres(_) => {
                return Err(StoreError::Config(
                    "this build has no PostgreSQL store (the `postgres` feature is off)".into(),
                ));
            }
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                options,
                keys: Mutex::new(None),
                keys_pinned: false,
                inflight: Arc::default(),
            }),
        })
    }

    /// How the store was set up.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// The backend's name: `file` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        match &self.inner.backend {
            Backend::File(_) => "file",
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Where a record is kept, for people (a path, or the database row).
    pub fn location(&self, provider: &str, account: &str) -> Result<String, StoreError> {
        check_name(provider)?;
        check_name(account)?;
        Ok(match &self.inner.backend {
            Backend::File(f) => f.path(provider, account)?.display().to_string(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => {
                format!("the database (provider `{provider}`, account `{account}`)")
            }
        })
    }

    /// The path of a file record (the file store only).
    pub fn path(&self, provider: &str, account: &str) -> Result<PathBuf, StoreError> {
        match &self.inner.backend {
            Backend::File(f) => f.path(provider, account),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Err(StoreError::Config(
                "records of the postgres store have no path".into(),
            )),
        }
    }

    /// The key file the store uses (configured, or the file store's default).
    pub fn key_file(&self) -> Option<PathBuf> {
        let o = &self.inner.options;
        if o.key.is_some() {
            return None;
        }
        match (&o.key_file, &o.backend) {
            (Some(f), _) => Some(f.clone()),
            (None, BackendKind::File) => Some(o.data_dir.join(DEFAULT_KEY_FILE)),
            (None, _) => None,
        }
    }

    /// Reads a record: `Ok(None)` when there is none. Reading takes no lock: a record is
    /// replaced atomically, so a reader sees the old or the new one.
    pub async fn load(&self, provider: &str, account: &str) -> Result<Option<Record>, StoreError> {
        check_name(provider)?;
        check_name(account)?;
        match &self.inner.backend {
            Backend::File(f) => {
                // A record that reads as corrupt is read again if a writer replaced it meanwhile.
                for _ in 0..3 {
                    let Some((bytes, id)) = f.read(provider, account)? else {
                        return Ok(None);
                    };
                    match self.decode_file(f, provider, account, &bytes, id) {
                        Ok(record) => return Ok(Some(record)),
                        Err(Some(e)) => return Err(e),
                        Err(None) => continue,
                    }
                }
                Err(StoreError::Busy {
                    what: format!(
                        "the credential of provider `{provider}`, account `{account}` (rewritten while read)"
                    ),
                    waited: Duration::ZERO,
                })
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => match pg.read(provider, account).await? {
                Some(row) => self
                    .open_sealed(provider, account, &row.key_id, &row.sealed)
                    .map(Some),
                None => Ok(None),
            },
        }
    }

    /// Reads a record that must exist.
    pub async fn get(&self, provider: &str, account: &str) -> Result<Record, StoreError> {
        self.load(provider, account)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                provider: provider.to_owned(),
                account: account.to_owned(),
            })
    }

    /// Stores a record (a new login) under its lock; returns the record it replaced, if any.
    /// A write that finds the record changed under it (a writer without the lock) reads again
    /// and retries; it never writes over a version it did not read.
    pub async fn save(&self, record: &Record) -> Result<Option<Record>, StoreError> {
        let mut attempts = 0;
        loop {
            let mut lock = self.lock(&record.provider, &record.account).await?;
            let old = match lock.load().await {
                Ok(old) => old,
                // A record this store cannot open is someone's credential (another key, another
                // machine): it is not written over. `host logout` removes it deliberately.
                Err(e @ StoreError::Sealed { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            };
            match lock.save(record).await {
                Err(StoreError::Conflict { .. }) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(old),
            }
        }
    }

    /// Proves a new record for `provider`'s `account` could be saved now: the key can be had,
    /// a record already there opens with it (one that does not is never written over), and
    /// the record's place is writable. A login checks this before it starts, so that tokens
    /// the provider issues are not then dropped, unstored and unrevoked. The lock is held only
    /// for the check.
    pub async fn check_save(&self, provider: &str, account: &str) -> Result<(), StoreError> {
        self.keys(true)?;
        let mut lock = self.lock(provider, account).await?;
        // Any other unreadable record is kept aside and replaced by `save`, as there; a
        // database that failed is the error (not a confusing one from the next statement of
        // its aborted transaction).
        if let Err(e @ (StoreError::Sealed { .. } | StoreError::Database { .. })) =
            lock.load().await
        {
            return Err(e);
        }
        lock.prepare().await.map(drop)
    }

    /// Deletes a record under its lock; `Ok(false)` when there was none.
    pub async fn delete(&self, provider: &str, account: &str) -> Result<bool, StoreError> {
        self.lock(provider, account).await?.delete().await
    }

    /// The providers that have stored records.
    pub async fn providers_with_records(&self) -> Result<BTreeSet<String>, StoreError> {
        match &self.inner.backend {
            Backend::File(f) => Ok(f.providers()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.providers().await,
        }
    }

    /// The accounts stored for a provider, sorted.
    pub async fn accounts(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        match &self.inner.backend {
            Backend::File(f) => Ok(f.accounts(provider)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.accounts(provider).await,
        }
    }

    /// Every (provider, account) with a record.
    pub async fn records(&self) -> Result<Vec<(String, String)>, StoreError> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(pg) = &self.inner.backend {
            return pg.records().await;
        }
        let mut out = Vec::new();
        for provider in self.providers_with_records().await? {
            for account in self.accounts(&provider).await? {
                out.push((provider.clone(), account));
            }
        }
        Ok(out)
    }

    /// Creates or updates the database schema (the postgres store; the file store has none).
    /// Returns the migration versions applied.
    pub async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        match &self.inner.backend {
            Backend::File(_) => Ok(Vec::new()),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => pg.migrate().await,
        }
    }

    /// Takes a record's lock: first this process's gate for the record, then the backend's
    /// lock (a file lock, or an advisory lock in the database), waiting at most the lock
    /// timeout. Every change of the record goes through the guard; it is released when the
    /// guard is dropped, saved or deleted.
    pub async fn lock(&self, provider: &str, account: &str) -> Result<RecordLock, StoreError> {
        check_name(provider)?;
        check_name(account)?;
        let timeout = self.inner.options.lock_timeout;
        let gate = {
            let mut map = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry((provider.to_owned(), account.to_owned()))
                    .or_default(),
            )
        };
        let gate = tokio::time::timeout(timeout, gate.lock_owned())
            .await
            .map_err(|_| StoreError::Busy {
                what: format!(
                    "the credential of provider `{provider}`, account `{account}` (in this process)"
                ),
                waited: timeout,
            })?;
        let held = match &self.inner.backend {
            Backend::File(f) => lock::Held::File(f.lock(provider, account, timeout).await?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => lock::Held::Postgres(pg.lock(provider, account).await?),
        };
        Ok(RecordLock {
            store: self.clone(),
            provider: provider.to_owned(),
            account: account.to_owned(),
            held,
            _gate: gate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Credential, OAuth2Token};
    use crate::util::secret::SecretString;
    use std::fs;

    pub(super) fn record(token: &str) -> Record {
        Record::new(
            "github",
            "default",
            "oauth2",
            Credential::OAuth2(OAuth2Token::bearer(SecretString::new(token))),
        )
    }

    #[tokio::test]
    async fn save_load_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(store.load("github", "default").await.unwrap().is_none());
        store.save(&record("one-secret")).await.unwrap();
        let path = store.path("github", "default").unwrap();
        let back = store.get("github", "default").await.unwrap();
        assert_eq!(
            back.credential.as_oauth2().unwrap().access_token.expose(),
            "one-secret"
        );
        let raw = fs::read_to_string(&path).unwrap();
        assert!(!raw.contains("one-secret"), "sealed at rest");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            assert_eq!(mode(&dir.path().join("credentials")), 0o700);
            assert_eq!(mode(&dir.path().join(DEFAULT_KEY_FILE)), 0o600);
        }
        assert_eq!(store.accounts("github").await.unwrap(), vec!["default"]);
        assert!(store.delete("github", "default").await.unwrap());
        assert!(!store.delete("github", "default").await.unwrap());
    }

    #[tokio::test]
    async fn corrupt_records_are_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&record("one")).await.unwrap();
        let path = store.path("github", "default").unwrap();
        let good = fs::read(&path).unwrap();
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = store.load("github", "default").await.unwrap_err();
        let StoreError::Corrupt { moved_to, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(fs::read(moved_to).unwrap(), &good[..good.len() / 2]);
        assert!(err.to_string().contains(&path.display().to_string()));
        assert!(store.load("github", "default").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_names_the_holder_whatever_the_lock_file_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&record("t")).await.unwrap();
        let lock_file = store
            .path("github", "default")
            .unwrap()
            .with_extension("lock");
        // Left longer than an owner line (by another version, or by hand): cut to the line.
        fs::write(
            &lock_file,
            "process 1 and far more than the owner line holds\n",
        )
        .unwrap();
        let held = store.lock("github", "default").await.unwrap();
        let owner = format!("process {}", std::process::id());
        assert_eq!(fs::read_to_string(&lock_file).unwrap().trim(), owner);

        let mut options = StoreOptions::file(dir.path());
        options.lock_timeout = Duration::from_millis(50);
        let waiter = Store::open(options).unwrap();
        let Err(StoreError::LockTimeout { holder, .. }) = waiter.lock("github", "default").await
        else {
            panic!("the lock is held");
        };
        assert_eq!(holder, owner);
        drop(held);
        // Taken again: the same line, written over the last one.
        let again = waiter.lock("github", "default").await.unwrap();
        assert_eq!(fs::read_to_string(&lock_file).unwrap().trim(), owner);
        drop(again);
    }
}
