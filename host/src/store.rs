//! The credential store: one record per provider and account, under
//! `$XDG_DATA_HOME/host/credentials/<provider>/<account>.json`.
//!
//! - folders are `0700`, files `0600`;
//! - a record is written to a temp file in the same folder, fsynced, renamed over the old one,
//!   and the folder fsynced: a crash at any point leaves the previous record intact;
//! - a corrupt record is reported with its path and moved aside (`*.corrupt-<time>`), never
//!   silently overwritten;
//! - every change of a record (a refresh, a login, a logout) happens under the record's lock,
//!   on what was read under that lock: a refresh in flight cannot undo a logout or replace a
//!   newer login. The lock is an async mutex per record inside a process and an exclusive file
//!   lock across processes; waiting for it is bounded, and the error names the holder;
//! - [`Store::fresh`] hands out a credential that is valid for at least a skew, refreshing it
//!   first when needed, one refresh for all concurrent callers; a refresh token the provider
//!   refused is remembered, so it is not sent again;
//! - a symlinked record, lock or store folder is refused; permissions wider than owner-only are
//!   repaired, with a warning.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::flow::{Credential, FlowError};
use crate::names::{BadName, check_name};
use crate::private_fs::{AtomicFile, ensure_private_dir, repair_private_file};
use crate::provider::Provider;

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

impl StoreError {
    /// Whether the user must log in: nothing is stored.
    pub fn needs_login(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }
}

impl FreshError {
    /// Whether the user must log in (again): nothing is stored, or the provider refused the
    /// credential.
    pub fn needs_login(&self) -> bool {
        match self {
            FreshError::Store(e) => e.needs_login(),
            FreshError::Refresh { source, .. } => source.needs_login(),
            FreshError::Flow(_) => false,
        }
    }
}

/// One async gate per (provider, account): in-process single flight.
type Gates = Arc<Mutex<HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>>>;

/// How long a process waits for a record's lock unless told otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting process tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(15);

/// The credential store.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    inflight: Gates,
    lock_timeout: Duration,
}

impl Store {
    /// The store in `data_dir/credentials` (created `0700` on first write).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("credentials"),
            inflight: Arc::default(),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }

    /// Waits at most `timeout` for a record's lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
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
    /// Reading takes no lock: a record is replaced atomically, so a reader sees the old or the
    /// new one.
    pub fn load(&self, provider: &str, account: &str) -> Result<Option<Record>, StoreError> {
        let path = self.path(provider, account)?;
        // The store's folders are its own: a symbolic link there could lead anywhere.
        refuse_symlink(&self.dir)?;
        refuse_symlink(path.parent().expect("record paths have a parent"))?;
        let bytes = match read_private(&path)? {
            Some(b) => b,
            None => return Ok(None),
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

    /// Stores a record (a new login) under its lock, atomically; returns the record it
    /// replaced, if any.
    pub async fn save(&self, record: &Record) -> Result<Option<Record>, StoreError> {
        let lock = self.lock(&record.provider, &record.account).await?;
        let old = lock.load().unwrap_or_else(|e| {
            tracing::warn!("{e}");
            None
        });
        lock.save(record)?;
        Ok(old)
    }

    /// Deletes a record under its lock; `Ok(false)` when there was none.
    pub async fn delete(&self, provider: &str, account: &str) -> Result<bool, StoreError> {
        self.lock(provider, account).await?.delete()
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

    /// Takes a record's lock: first this process's gate for the record, then the exclusive
    /// file lock, waiting at most the lock timeout. Every change of the record goes through
    /// the guard; it is released when dropped.
    pub async fn lock(&self, provider: &str, account: &str) -> Result<RecordLock, StoreError> {
        let record = self.path(provider, account)?;
        let dir = record
            .parent()
            .expect("record paths have a parent")
            .to_owned();
        self.create_dirs(&dir)?;
        let gate = {
            let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry((provider.to_owned(), account.to_owned()))
                    .or_default(),
            )
        };
        let now = Instant::now();
        let deadline = now
            .checked_add(self.lock_timeout)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        let waited = self.lock_timeout;
        let gate = tokio::time::timeout(self.lock_timeout, gate.lock_owned())
            .await
            .map_err(|_| StoreError::LockTimeout {
                path: record.with_extension("lock"),
                holder: "this process".into(),
                waited,
            })?;
        let path = record.with_extension("lock");
        let file = tokio::task::spawn_blocking(move || acquire(&path, deadline, waited))
            .await
            .map_err(|e| StoreError::Io {
                action: "cannot lock",
                path: dir,
                source: std::io::Error::other(e),
            })??;
        Ok(RecordLock {
            store: self.clone(),
            provider: provider.to_owned(),
            account: account.to_owned(),
            record,
            _file: file,
            _gate: gate,
        })
    }

    fn create_dirs(&self, dir: &Path) -> Result<(), StoreError> {
        for d in [&self.dir, dir] {
            ensure_private_dir(d).map_err(|e| dir_error(d, e))?;
        }
        Ok(())
    }

    /// A credential valid for at least `skew`, refreshed first when needed (through the
    /// provider's flow that made it, built only then) and stored before it is
    /// returned. Concurrent callers (threads or processes) share one refresh: whoever gets the
    /// lock first refreshes, the others re-read its result.
    ///
    /// - A refresh is sent only when the new tokens can be stored (a rotated refresh token
    ///   would otherwise be lost).
    /// - A refresh the provider refuses marks the record: later calls say "log in again"
    ///   without sending the dead token.
    /// - When the provider is unreachable or failing but the token is still valid (inside the
    ///   skew), the token is handed out with a warning.
    pub async fn fresh(
        &self,
        provider: &Provider,
        account: &str,
        skew: chrono::Duration,
    ) -> Result<Record, FreshError> {
        let record = self.get(provider.name(), account)?;
        if !record.expires_within(skew) {
            return Ok(record);
        }
        let lock = self.lock(provider.name(), account).await?;
        // Someone may have refreshed, logged in again or logged out while we waited.
        let record = lock.get()?;
        if !record.expires_within(skew) {
            return Ok(record);
        }
        let current = record.clone();
        match self.refresh_locked(provider, &lock, record).await {
            Err(FreshError::Refresh {
                source: source @ FlowError::Transient { .. },
                ..
            }) if !current.expires_within(chrono::Duration::zero()) => {
                tracing::warn!(
                    "cannot refresh the credential for `{}` ({}); using the current token, valid until {}",
                    provider.name(),
                    source.chain(),
                    current
                        .expires_at()
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default()
                );
                Ok(current)
            }
            outcome => outcome,
        }
    }

    /// Refreshes `record` under `lock`: refused at once when the provider refused the refresh
    /// token before; sent only once the folder has proved writable; the new credential stored
    /// before it is returned; a refusal remembered in the record.
    async fn refresh_locked(
        &self,
        provider: &Provider,
        lock: &RecordLock,
        mut record: Record,
    ) -> Result<Record, FreshError> {
        let refused = |source| FreshError::Refresh {
            provider: record.provider.clone(),
            source,
        };
        if let Some(reason) = &record.login_required {
            return Err(refused(FlowError::LoginRequired {
                reason: "the provider refused the refresh token earlier",
                source: Some(reason.clone().into()),
            }));
        }
        // Proves the folder is writable before the provider rotates anything.
        let target =
            AtomicFile::create(&lock.record).map_err(io("cannot write in", &lock.record))?;
        // The flow that made the credential refreshes it; built only now, when needed.
        let flow = provider.flow(&record.flow).await?;
        match flow.refresh(&record.credential).await {
            Ok(credential) => {
                record.credential = credential;
                // Stored (with any rotated refresh token) before the new access token is
                // handed out.
                lock.commit(&record, target)?;
                Ok(record)
            }
            Err(source) => {
                if source.needs_login() {
                    record.login_required = Some(source.chain());
                    if let Err(e) = lock.commit(&record, target) {
                        tracing::warn!(
                            "cannot remember that the credential needs a new login: {e}"
                        );
                    }
                }
                Err(refused(source))
            }
        }
    }
}

impl Store {
    /// Refreshes the credential now, whatever its expiry says (the provider refused
    /// `stale`'s access token, say with a 401): under the record's lock, unless someone
    /// already replaced that access token, which is then returned without a request.
    pub async fn refresh_now(
        &self,
        provider: &Provider,
        account: &str,
        stale: &Record,
    ) -> Result<Record, FreshError> {
        let lock = self.lock(provider.name(), account).await?;
        let record = lock.get()?;
        let replaced = match (record.credential.secret(), stale.credential.secret()) {
            (Some(now), Some(old)) => !now.ct_eq(old.expose()),
            _ => false,
        };
        if replaced {
            return Ok(record);
        }
        self.refresh_locked(provider, &lock, record).await
    }
}

/// A record's lock, held until dropped. Reads and changes through it see and make the record's
/// latest state: nothing else changes it meanwhile.
#[derive(Debug)]
pub struct RecordLock {
    store: Store,
    provider: String,
    account: String,
    record: PathBuf,
    _file: File,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl RecordLock {
    /// The record as it is now.
    pub fn load(&self) -> Result<Option<Record>, StoreError> {
        self.store.load(&self.provider, &self.account)
    }

    /// The record, which must exist.
    pub fn get(&self) -> Result<Record, StoreError> {
        self.store.get(&self.provider, &self.account)
    }

    /// Writes the record atomically (temp file, fsync, rename, fsync of the folder).
    pub fn save(&self, record: &Record) -> Result<(), StoreError> {
        let target =
            AtomicFile::create(&self.record).map_err(io("cannot write in", &self.record))?;
        self.commit(record, target)
    }

    fn commit(&self, record: &Record, target: AtomicFile) -> Result<(), StoreError> {
        if record.provider != self.provider || record.account != self.account {
            return Err(StoreError::Unsafe {
                path: self.record.clone(),
                reason: "the record belongs to another provider or account",
            });
        }
        let mut record = record.clone();
        record.version = RECORD_VERSION;
        record.updated_at = Utc::now();
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| StoreError::Io {
            action: "cannot encode",
            path: self.record.clone(),
            source: std::io::Error::other(e),
        })?;
        target
            .commit(&[&bytes])
            .map_err(io("cannot write", &self.record))?;
        self.remove_stale_temp_files();
        Ok(())
    }

    /// Temp files of this record left by a writer that crashed before its rename: nobody else
    /// writes the record while we hold its lock, so any that remain are stale.
    fn remove_stale_temp_files(&self) {
        let (Some(dir), Some(name)) = (self.record.parent(), self.record.file_name()) else {
            return;
        };
        let prefix = format!(".{}.", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if file.starts_with(&prefix) && file.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Deletes the record (and its lock file); `Ok(false)` when there was none.
    pub fn delete(self) -> Result<bool, StoreError> {
        let existed = match fs::remove_file(&self.record) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io("cannot delete", &self.record)(e)),
        };
        // Removed while held: a waiter that locked the old file notices it is gone and
        // locks the new one (see `acquire`).
        let _ = fs::remove_file(self.record.with_extension("lock"));
        Ok(existed)
    }
}

/// Takes the exclusive lock on `path`, polling until `deadline`. The holder's pid is written
/// into the file so that a waiter that gives up can say who holds it.
fn acquire(path: &Path, deadline: Instant, waited: Duration) -> Result<File, StoreError> {
    loop {
        let mut options = private_options();
        options.read(true).write(true).truncate(false);
        let mut file = open_private(&options, path, "cannot open")?;
        match file.try_lock() {
            Ok(()) => {
                // The lock file may have been deleted (by a logout) while we waited: a lock
                // on an unlinked file guards nothing.
                if !same_file(&file, path) {
                    continue;
                }
                let _ = file.set_len(0);
                let _ = write!(file, "process {}", std::process::id());
                return Ok(file);
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    let holder = fs::read_to_string(path)
                        .ok()
                        .map(|h| crate::text::sanitize(h.trim(), 40))
                        .filter(|h| !h.is_empty())
                        .unwrap_or_else(|| "another process".into());
                    return Err(StoreError::LockTimeout {
                        path: path.to_owned(),
                        holder,
                        waited,
                    });
                }
                std::thread::sleep(LOCK_POLL);
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", path)(e)),
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

fn refuse_symlink(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::Unsafe {
            path: path.to_owned(),
            reason: "it is a symbolic link",
        }),
        _ => Ok(()),
    }
}

/// A record's bytes (`None` when there is none): never through a symbolic link, and a record
/// readable by others is made owner-only again, with a warning.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let mut file = match open_private(&options, path, "cannot read") {
        Ok(f) => f,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    repair_private_file(&file, path).map_err(io("cannot protect", path))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io("cannot read", path))?;
    Ok(Some(bytes))
}

/// Opens a file of the store without following a symbolic link at its last component: on unix
/// `O_NOFOLLOW` makes the open itself refuse one (one system call, no check-then-use gap);
/// elsewhere it is checked first.
fn open_private(
    options: &OpenOptions,
    path: &Path,
    action: &'static str,
) -> Result<File, StoreError> {
    #[cfg(not(unix))]
    refuse_symlink(path)?;
    options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return StoreError::Unsafe {
                path: path.to_owned(),
                reason: "it is a symbolic link",
            };
        }
        io(action, path)(e)
    })
}

fn dir_error(dir: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::InvalidInput {
        StoreError::Unsafe {
            path: dir.to_owned(),
            reason: "it is a symbolic link or not a folder",
        }
    } else {
        io("cannot create", dir)(e)
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    no_follow(&mut options);
    options.create(true);
    options
}

fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let _ = options;
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

    #[tokio::test]
    async fn save_load_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert!(store.load("github", "default").unwrap().is_none());
        store.save(&record("one")).await.unwrap();
        let path = store.path("github", "default").unwrap();
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
