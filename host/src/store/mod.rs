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

mod file;
#[cfg(feature = "postgres")]
mod postgres;
pub mod seal;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::flow::Credential;
use crate::util::names::{BadName, check_name};
use seal::{KeyError, KeyRing, KeySource, StoreKey};

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

/// Whether reading a key file failed because there is none.
fn is_missing(e: &KeyError) -> bool {
    matches!(e, KeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

impl StoreError {
    /// Whether the user must log in: nothing is stored.
    pub fn needs_login(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

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

/// What a sealed file record looks like.
#[derive(Serialize, Deserialize)]
struct Envelope {
    sealed: String,
    key: String,
    data: String,
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

    /// The store's keys; with `create`, the file store makes its default key file when there
    /// is none. `Ok(None)`: no key yet (only unsealed records can be read).
    pub(crate) fn keys(&self, create: bool) -> Result<Option<Arc<KeyRing>>, StoreError> {
        if let Some(ring) = self.cached_keys() {
            return Ok(Some(ring));
        }
        self.load_keys(create)
    }

    fn cached_keys(&self) -> Option<Arc<KeyRing>> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The keys read again from their files (another process's rekey may have replaced them
    /// since they were read); those in the environment, or a rekey's own, as they are.
    fn fresh_keys(&self, create: bool) -> Result<Option<Arc<KeyRing>>, StoreError> {
        if self.inner.keys_pinned || self.inner.options.key.is_some() {
            return self.keys(create);
        }
        self.load_keys(create)
    }

    /// Reads the keys (from the environment or the key files) and keeps them.
    fn load_keys(&self, create: bool) -> Result<Option<Arc<KeyRing>>, StoreError> {
        let o = &self.inner.options;
        let ring = if let Some(text) = &o.key {
            KeyRing {
                current: StoreKey::parse(text, KeySource::Env)?,
                previous: o
                    .previous_key
                    .as_ref()
                    .map(|p| StoreKey::parse(p, KeySource::PreviousEnv))
                    .transpose()?,
            }
        } else {
            let Some(path) = self.key_file() else {
                return Err(KeyError::Missing(format!(
                    "the {} store needs an encryption key: make one with `host store keygen > FILE` (then chmod 600 FILE) and set [store] key_file = FILE, or set {}",
                    self.backend_name(),
                    seal::KEY_ENV
                ))
                .into());
            };
            // Read where it should be (no look first: the open says whether it is there); the
            // default file is made when missing, a configured one must exist.
            let current = match StoreKey::read(&path) {
                Ok(key) => key,
                Err(e) if !is_missing(&e) || o.key_file.is_some() => return Err(e.into()),
                Err(_) if create => {
                    let key = StoreKey::generate(KeySource::File(path.clone()))?;
                    if key.write_new(&path)? {
                        tracing::info!("created the store key {}", path.display());
                        key
                    } else {
                        // Another process made it first: use theirs.
                        StoreKey::read(&path)?
                    }
                }
                Err(_) => return Ok(None),
            };
            let previous = match StoreKey::read(&seal::previous_key_file(&path)) {
                Ok(key) => Some(key),
                Err(e) if is_missing(&e) => None,
                Err(e) => return Err(e.into()),
            };
            KeyRing { current, previous }
        };
        let ring = Arc::new(ring);
        *self.inner.keys.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&ring));
        Ok(Some(ring))
    }

    /// Opens sealed bytes of `provider`/`account`.
    fn open_sealed(
        &self,
        provider: &str,
        account: &str,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Record, StoreError> {
        let ring = self.keys(false)?;
        let sealed_err = |key: KeySource, reason| StoreError::Sealed {
            provider: provider.to_owned(),
            account: account.to_owned(),
            key,
            reason,
        };
        let Some(ring) = ring else {
            let source = self
                .key_file()
                .map(KeySource::File)
                .unwrap_or(KeySource::Env);
            return Err(sealed_err(
                source,
                "there is no key (the key file is missing)",
            ));
        };
        // A key this process has not read: another process's rekey may have made it since.
        let ring = match ring.by_id(key_id) {
            Some(_) => ring,
            None => self.fresh_keys(false)?.unwrap_or(ring),
        };
        let Some(key) = ring.by_id(key_id) else {
            return Err(sealed_err(
                ring.current.source().clone(),
                "it was sealed with another key",
            ));
        };
        let plain = key.open(provider, account, sealed).ok_or_else(|| {
            sealed_err(
                key.source().clone(),
                "it was altered, or moved from another provider or account",
            )
        })?;
        let record: Record = serde_json::from_slice(&plain)
            .map_err(|_| sealed_err(key.source().clone(), "its content is not a record"))?;
        if record.provider != provider || record.account != account {
            return Err(sealed_err(
                key.source().clone(),
                "it belongs to another provider or account",
            ));
        }
        Ok(record)
    }

    /// Seals a record: (key id, sealed bytes).
    fn seal(&self, record: &Record) -> Result<(String, Vec<u8>), StoreError> {
        // Read again: sealed under a key another process's rekey has since replaced, the
        // record would be lost with that key once the rekey's previous key is removed.
        let ring = self.fresh_keys(true)?.expect("created when missing");
        let mut record = record.clone();
        record.version = RECORD_VERSION;
        record.updated_at = Utc::now();
        let plain = Zeroizing::new(serde_json::to_vec(&record).map_err(|e| StoreError::Io {
            action: "cannot encode",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })?);
        let sealed = ring
            .current
            .seal(&record.provider, &record.account, &plain)?;
        Ok((ring.current.id().to_owned(), sealed))
    }

    /// A file record's bytes, decoded: sealed ones opened, unsealed (older) ones read as they
    /// are, anything else moved aside as corrupt.
    fn decode_file(
        &self,
        f: &file::FileBackend,
        provider: &str,
        account: &str,
        bytes: &[u8],
        read: file::FileId,
    ) -> Result<Record, Option<StoreError>> {
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) {
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(&envelope.data)
                .ok()
                .filter(|_| envelope.sealed == seal::ALGORITHM);
            if let Some(sealed) = sealed {
                return self
                    .open_sealed(provider, account, &envelope.key, &sealed)
                    .map_err(Some);
            }
        }
        match serde_json::from_slice::<Record>(bytes) {
            Ok(r) if r.provider == provider && r.account == account => Ok(r),
            _ => Err(f.move_aside(provider, account, read)),
        }
    }

    fn encode_file(&self, record: &Record) -> Result<Vec<u8>, StoreError> {
        let (key, sealed) = self.seal(record)?;
        let envelope = Envelope {
            sealed: seal::ALGORITHM.to_owned(),
            key,
            data: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        serde_json::to_vec_pretty(&envelope).map_err(|e| StoreError::Io {
            action: "cannot encode",
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        })
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
            Backend::File(f) => Held::File(f.lock(provider, account, timeout).await?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Held::Postgres(pg.lock(provider, account).await?),
        };
        Ok(RecordLock {
            store: self.clone(),
            provider: provider.to_owned(),
            account: account.to_owned(),
            held,
            _gate: gate,
        })
    }

    /// Makes a new key the store's (written over the key file, the old key kept as `<key
    /// file>.previous`), then re-seals every record under it, each under its lock; a crash or
    /// a record that cannot be had midway loses nothing (records still open with the previous
    /// key), and running it again resumes: while a previous key is kept, no new key is made
    /// and the records are sealed under the current one. With the key in `HOST_STORE_KEY` (no
    /// file to write), give `new_key_file`: records are re-sealed and the caller points the
    /// configuration at it.
    pub async fn rekey(&self, new_key_file: Option<&Path>) -> Result<RekeyReport, StoreError> {
        let key_file = self.key_file();
        // One rekey at a time: two would each write a key of their own and seal every record
        // under it, and the one whose key file was written over would leave them sealed under
        // a key kept nowhere. On this machine (whatever key file each names) and, for the
        // shared store, on the database (another machine with its own key file). The keys are
        // read under the locks, as the last rekey left them.
        crate::util::private_fs::ensure_private_dir(&self.inner.options.data_dir).map_err(
            |source| StoreError::Io {
                action: "cannot make the folder",
                path: self.inner.options.data_dir.clone(),
                source,
            },
        )?;
        let _rekeying = rekey_lock(&self.inner.options.data_dir.join("rekey.lock"))?;
        // And on the key file (or the new one), which stores of other data folders may share.
        let _rekeying_key = match new_key_file.map(Path::to_owned).or(key_file.clone()) {
            Some(path) => {
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(".lock");
                Some(rekey_lock(&path.with_file_name(name))?)
            }
            None => None,
        };
        #[cfg(feature = "postgres")]
        let _rekeying_database = match &self.inner.backend {
            Backend::Postgres(pg) => Some(pg.rekey_lock().await?),
            Backend::File(_) => None,
        };
        let old = self.fresh_keys(false)?;
        let mut report = RekeyReport::default();
        // A previous key still kept (an earlier rekey, finished or not): that rekey is
        // resumed, every record sealed under the current key, and no new key is made; the
        // previous key may be the only one some record opens with, so it is never replaced.
        let kept_previous = old.as_ref().and_then(|o| {
            o.previous
                .as_ref()
                .filter(|p| p.id() != o.current.id())
                .map(|p| p.source().to_string())
        });
        let ring = if let (Some(old), Some(previous)) = (&old, &kept_previous) {
            if new_key_file.is_some() {
                return Err(StoreError::Config(format!(
                    "an earlier rekey kept its previous key ({previous}): run `host store rekey` without --new-key-file to finish it, remove that key once every machine uses the current one, then rekey again"
                )));
            }
            report.resumed = true;
            Arc::clone(old)
        } else {
            let new = match new_key_file {
                Some(path) => StoreKey::read(path)?,
                None => {
                    let Some(path) = &key_file else {
                        return Err(StoreError::Config(format!(
                            "the key is in {}: make a new one with `host store keygen > FILE`, run `host store rekey --new-key-file FILE`, then set {} to it",
                            seal::KEY_ENV,
                            seal::KEY_ENV
                        )));
                    };
                    StoreKey::generate(KeySource::File(path.clone()))?
                }
            };
            // Both keys are on disk before any record moves, so a crash or a record that does
            // not open loses nothing: the old key stays as the previous one (beside the key
            // file in use, or beside the new key file) until the user removes it, and a rekey
            // run again resumes.
            if let Some(old) = &old {
                if new.id() == old.current.id() {
                    return Err(StoreError::Config(format!(
                        "the new key is the current key already; to finish an earlier rekey, give the key it replaced in {} (or keep it beside the key file as `<key file>.previous`) and run `host store rekey` without --new-key-file",
                        seal::PREVIOUS_KEY_ENV
                    )));
                }
                match (new_key_file, &key_file) {
                    (None, Some(path)) => {
                        old.current.write(&seal::previous_key_file(path))?;
                        new.write(path)?;
                    }
                    (Some(new_path), _) => {
                        // A key kept there by an earlier rekey may be the only one some records
                        // open with: it is never written over by another.
                        let kept = seal::previous_key_file(new_path);
                        match StoreKey::read(&kept) {
                            Ok(key) if key.id() != old.current.id() => {
                                return Err(StoreError::Config(format!(
                                    "{} holds a key kept by an earlier rekey, which some records may still need: finish that rekey first (give that key in {} and run `host store rekey` without --new-key-file), or move the file away",
                                    kept.display(),
                                    seal::PREVIOUS_KEY_ENV
                                )));
                            }
                            Ok(_) => {}
                            Err(_) if kept.exists() => {
                                return Err(StoreError::Config(format!(
                                    "{} is in the way of the key this rekey keeps: move it away first",
                                    kept.display()
                                )));
                            }
                            Err(_) => old.current.write(&kept)?,
                        }
                    }
                    (None, None) => {}
                }
            } else if let (None, Some(path)) = (new_key_file, &key_file) {
                new.write(path)?;
            }
            Arc::new(KeyRing {
                current: new,
                previous: old.as_ref().map(|r| r.current.clone()),
            })
        };
        // The same backend and settings, sealing with the new ring whatever the files say.
        let mut rekeyed = Store::open(self.inner.options.clone())?;
        let inner = Arc::get_mut(&mut rekeyed.inner).expect("a store of its own");
        inner.keys = Mutex::new(Some(Arc::clone(&ring)));
        inner.keys_pinned = true;
        // One record that cannot be had (held by a stopped process, unopenable) is reported
        // and the others still move; a rekey run again takes up what is left.
        for (provider, account) in rekeyed.records().await? {
            let name = format!("provider `{provider}`, account `{account}`");
            let moved = async {
                let mut lock = rekeyed.lock(&provider, &account).await?;
                match lock.load().await? {
                    Some(record) => lock.save(&record).await.map(|()| true),
                    None => Ok(false),
                }
            };
            match moved.await {
                Ok(true) => report.resealed += 1,
                Ok(false) => {}
                Err(e) => report.failed.push(format!("{name}: {e}")),
            }
        }
        report.previous_key = old.as_ref().and_then(|_| {
            new_key_file
                .map(Path::to_owned)
                .or(key_file)
                .map(|p| seal::previous_key_file(&p))
        });
        Ok(report)
    }

    /// Copies every record into `to` (each under its lock there), reads each back and compares;
    /// returns the counts. A record `to` already holds with another credential is kept (and
    /// named in [`CopyReport::kept`]) unless `replace`.
    pub async fn copy_to(&self, to: &Store, replace: bool) -> Result<CopyReport, StoreError> {
        let mut report = CopyReport::default();
        for (provider, account) in self.records().await? {
            let record = match self.load(&provider, &account).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    report.failed.push(e.to_string());
                    continue;
                }
            };
            // A record the destination holds with another credential is kept unless asked: a
            // stale store copied over a shared one would put back a refresh token the provider
            // has since rotated. One that does not open there is left alone in any case. The
            // look and the write are under one lock: a refresh elsewhere cannot slip between.
            // One record that cannot be had there (held by another process, say) is named and
            // the others still go, as in a rekey.
            let name = format!("provider `{provider}`, account `{account}`");
            let copied = async {
                let mut lock = to.lock(&provider, &account).await?;
                match lock.load().await {
                    Ok(Some(theirs)) if !replace && !same_record(&theirs, &record) => {
                        return Ok(Copied::Kept);
                    }
                    Ok(_) => {}
                    Err(e) => return Ok(Copied::Unopenable(e)),
                }
                lock.save(&record).await?;
                let back = to.get(&provider, &account).await?;
                Ok::<_, StoreError>(if same_record(&back, &record) {
                    Copied::Same
                } else {
                    Copied::Different
                })
            };
            match copied.await {
                Ok(Copied::Same) => report.copied += 1,
                Ok(Copied::Kept) => report
                    .kept
                    .push(format!("{name}: the destination holds another credential")),
                Ok(Copied::Unopenable(e)) => report.failed.push(format!(
                    "{name}: the destination's record does not open ({e}); left as it is"
                )),
                Ok(Copied::Different) => report
                    .failed
                    .push(format!("{name} does not read back the same")),
                Err(e) => report.failed.push(format!("{name}: {e}")),
            }
        }
        Ok(report)
    }
}

/// What copying one record did.
enum Copied {
    /// Written and read back the same.
    Same,
    /// The destination holds another credential: kept.
    Kept,
    /// The destination's record does not open: left alone.
    Unopenable(StoreError),
    /// Written, but read back otherwise.
    Different,
}

/// A lock a rekey holds for as long as it runs (`rekey.lock` in the data folder, `<key
/// file>.lock` beside the key file), taken as a record's is: another rekey holding either is
/// refused, named.
fn rekey_lock(path: &Path) -> Result<std::fs::File, StoreError> {
    file::try_acquire(path)?.ok_or_else(|| {
        StoreError::Config(format!(
            "another `host store rekey` is running ({} holds {}); let it finish, then run this one again if it names records it left",
            file::holder(path),
            path.display()
        ))
    })
}

/// Whether two records hold the same credential from the same flow for the same identity.
fn same_record(a: &Record, b: &Record) -> bool {
    serde_json::to_value(&a.credential).ok() == serde_json::to_value(&b.credential).ok()
        && a.flow == b.flow
        && a.identity == b.identity
}

/// What [`Store::rekey`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct RekeyReport {
    /// Records sealed under the new key.
    pub resealed: usize,
    /// Whether an earlier rekey was resumed (its previous key was still kept): no new key was
    /// made, the records were sealed under the current one.
    pub resumed: bool,
    /// Where the old key was kept (records not resealed still open with it; remove it once
    /// every process and machine uses the new key).
    pub previous_key: Option<PathBuf>,
    /// Records that could not be had or opened (left as they are), with why.
    pub failed: Vec<String>,
}

/// What [`Store::copy_to`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CopyReport {
    /// Records copied and read back the same.
    pub copied: usize,
    /// Records not copied because the destination holds another credential, named.
    pub kept: Vec<String>,
    /// Records not copied, with why.
    pub failed: Vec<String>,
}

#[derive(Debug)]
enum Held {
    File(file::FileLock),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgLock),
}

/// What a write goes through once prepared.
pub(crate) enum Prepared {
    File(crate::util::private_fs::AtomicFile),
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A record's lock, held until dropped (or until a save or delete commits). Reads and changes
/// through it see and make the record's latest state: nothing else changes it meanwhile.
#[derive(Debug)]
pub struct RecordLock {
    store: Store,
    provider: String,
    account: String,
    held: Held,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl RecordLock {
    /// The record as it is now.
    pub async fn load(&mut self) -> Result<Option<Record>, StoreError> {
        match &mut self.held {
            Held::File(_) => self.store.load(&self.provider, &self.account).await,
            #[cfg(feature = "postgres")]
            Held::Postgres(pg) => match pg.read().await? {
                Some(row) => self
                    .store
                    .open_sealed(&self.provider, &self.account, &row.key_id, &row.sealed)
                    .map(Some),
                None => Ok(None),
            },
        }
    }

    /// The record, which must exist.
    pub async fn get(&mut self) -> Result<Record, StoreError> {
        self.load().await?.ok_or_else(|| StoreError::NotFound {
            provider: self.provider.clone(),
            account: self.account.clone(),
        })
    }

    /// Proves the record can be written before anything irreversible happens: a temp file in
    /// its folder, or a no-op update of its row (privileges, a read-only replica).
    pub(crate) async fn prepare(&mut self) -> Result<Prepared, StoreError> {
        Ok(match &mut self.held {
            Held::File(f) => Prepared::File(f.prepare()?),
            #[cfg(feature = "postgres")]
            Held::Postgres(pg) => {
                pg.check_writable().await?;
                Prepared::Postgres
            }
        })
    }

    /// Writes the record, sealed (atomically: a file replaced, or a row compare-and-swapped
    /// on the version read under the lock and committed), and releases the lock.
    pub async fn save(self, record: &Record) -> Result<(), StoreError> {
        let mut this = self;
        let prepared = this.prepare().await?;
        this.commit(record, prepared).await
    }

    pub(crate) async fn commit(
        self,
        record: &Record,
        prepared: Prepared,
    ) -> Result<(), StoreError> {
        if record.provider != self.provider || record.account != self.account {
            return Err(StoreError::Config(
                "the record belongs to another provider or account than its lock".into(),
            ));
        }
        match (self.held, prepared) {
            (Held::File(f), Prepared::File(target)) => {
                let bytes = self.store.encode_file(record)?;
                f.commit(target, &bytes)
            }
            #[cfg(feature = "postgres")]
            (Held::Postgres(pg), Prepared::Postgres) => {
                let (key_id, sealed) = self.store.seal(record)?;
                pg.write(&key_id, &sealed).await
            }
            #[cfg(feature = "postgres")]
            _ => unreachable!("a lock prepares for its own backend"),
        }
    }

    /// Deletes the record; `Ok(false)` when there was none.
    pub async fn delete(self) -> Result<bool, StoreError> {
        match self.held {
            Held::File(f) => f.delete(),
            #[cfg(feature = "postgres")]
            Held::Postgres(pg) => pg.delete().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::OAuth2Token;
    use crate::util::secret::SecretString;
    use std::fs;

    fn record(token: &str) -> Record {
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
    async fn unsealed_records_load_and_are_sealed_when_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let path = store.path("github", "default").unwrap();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, serde_json::to_vec(&record("plain-old")).unwrap()).unwrap();
        let old = store.get("github", "default").await.unwrap();
        assert_eq!(old.credential.secret().unwrap().expose(), "plain-old");
        store.save(&old).await.unwrap();
        assert!(!fs::read_to_string(&path).unwrap().contains("plain-old"));
        assert_eq!(
            store
                .get("github", "default")
                .await
                .unwrap()
                .credential
                .secret()
                .unwrap()
                .expose(),
            "plain-old"
        );
    }

    #[tokio::test]
    async fn a_record_under_another_name_or_key_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&record("t")).await.unwrap();
        let from = store.path("github", "default").unwrap();
        let to = store.path("github", "other").unwrap();
        fs::copy(&from, &to).unwrap();
        let err = store.load("github", "other").await.unwrap_err();
        assert!(
            matches!(err, StoreError::Sealed { .. }) && err.to_string().contains("moved from"),
            "{err}"
        );
        assert!(to.exists(), "left as it is");
        // Another store key: named by its source, never shown.
        let key = dir.path().join(DEFAULT_KEY_FILE);
        let shown = fs::read_to_string(&key).unwrap();
        StoreKey::generate(KeySource::File(key.clone()))
            .unwrap()
            .write(&key)
            .unwrap();
        let err = Store::new(dir.path())
            .load("github", "default")
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("another key") && text.contains(&key.display().to_string()),
            "{text}"
        );
        assert!(!text.contains(shown.trim()));
        assert!(from.exists());
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

    #[tokio::test]
    async fn the_key_file_is_made_when_missing_and_a_bad_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(DEFAULT_KEY_FILE);
        // Each load by a new store, so the key files are read again.
        let load = || async { Store::new(dir.path()).load("github", "default").await };
        Store::new(dir.path()).save(&record("t")).await.unwrap();
        assert!(key.is_file(), "made on the first write");
        // No previous key beside it: the record reads.
        assert!(load().await.unwrap().is_some());
        // A previous key file that is no key is an error naming it, not ignored.
        let previous = seal::previous_key_file(&key);
        fs::write(&previous, "not base64 at all\n").unwrap();
        let err = load().await.unwrap_err();
        assert!(
            err.to_string().contains(&previous.display().to_string()),
            "{err}"
        );
        fs::remove_file(&previous).unwrap();
        // A key file that is not text is malformed, not an I/O error, and never quoted.
        let good = fs::read(&key).unwrap();
        fs::write(&key, [0xff, 0xfe, b'k', b'e', b'y']).unwrap();
        let err = load().await.unwrap_err();
        assert!(
            err.to_string().contains("not 32 bytes of standard base64"),
            "{err}"
        );
        fs::write(&key, &good).unwrap();
        assert!(load().await.unwrap().is_some());
    }
}
