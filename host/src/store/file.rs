//! The file backend: one file per record under `credentials/<provider>/<account>.json`,
//! folders `0700`, files `0600`, written atomically; an exclusive file lock per record across
//! processes.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{StoreError, io};
use crate::util::names::check_name;
use crate::util::private_fs::{AtomicFile, ensure_private_dir, read_sized, repair_private_file};

/// The largest record read or written: far above any credential (a few KiB), and a bound on
/// what a file put in the store's folder can make a command read into memory.
const MAX_RECORD: u64 = 16 << 20;
/// The room a write takes before a refresh, at least (see [`FileLock::prepare`]).
const RESERVED: u64 = 16 << 10;

/// How often a waiting process tries the lock again.
const LOCK_POLL: Duration = Duration::from_millis(15);

/// The records under one folder.
#[derive(Debug, Clone)]
pub(crate) struct FileBackend {
    pub(crate) dir: PathBuf,
}

impl FileBackend {
    pub(crate) fn path(&self, provider: &str, account: &str) -> Result<PathBuf, StoreError> {
        check_name(provider)?;
        check_name(account)?;
        Ok(self.dir.join(provider).join(format!("{account}.json")))
    }

    /// A record's bytes and which file they came from, `None` when there is none. Takes no
    /// lock: records are replaced atomically.
    pub(crate) fn read(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<Option<(Vec<u8>, FileId)>, StoreError> {
        let path = self.path(provider, account)?;
        // The store's folders are its own: a symbolic link there could lead anywhere.
        refuse_symlink(&self.dir)?;
        refuse_symlink(path.parent().expect("record paths have a parent"))?;
        read_private(&path)
    }

    /// Moves a record that cannot be read aside (`*.corrupt-<time>`), never overwriting it;
    /// only if it is still the file that was read (a reader without the lock must not move a
    /// good record a writer just put in place): `None` when it changed, to read it again.
    pub(crate) fn move_aside(
        &self,
        provider: &str,
        account: &str,
        read: FileId,
    ) -> Option<StoreError> {
        let path = match self.path(provider, account) {
            Ok(p) => p,
            Err(e) => return Some(e),
        };
        if file_id(&path) != Some(read) {
            return None;
        }
        let moved_to = path.with_extension(format!(
            "json.corrupt-{}",
            Utc::now().format("%Y%m%dT%H%M%S%.f")
        ));
        Some(match fs::rename(&path, &moved_to) {
            Ok(()) => StoreError::Corrupt { path, moved_to },
            Err(e) => io("cannot move aside", &path)(e),
        })
    }

    pub(crate) fn providers(&self) -> std::collections::BTreeSet<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Default::default();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .filter(|n| !self.accounts(n).is_empty())
            .collect()
    }

    pub(crate) fn accounts(&self, provider: &str) -> Vec<String> {
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

    /// Takes the record's exclusive file lock, waiting at most `timeout`.
    pub(crate) async fn lock(
        &self,
        provider: &str,
        account: &str,
        timeout: Duration,
    ) -> Result<FileLock, StoreError> {
        let record = self.path(provider, account)?;
        let dir = record
            .parent()
            .expect("record paths have a parent")
            .to_owned();
        for d in [&self.dir, &dir] {
            ensure_private_dir(d).map_err(|e| dir_error(d, e))?;
        }
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or(now + Duration::from_secs(365 * 86_400));
        let path = record.with_extension("lock");
        // Uncontended (the usual case) the lock is taken here at once; only waiting for
        // another process moves to a blocking thread.
        let file = match try_acquire(&path)? {
            Some(file) => file,
            None => {
                tracing::debug!(
                    "waiting for the lock of `{provider}`/`{account}`: another process holds it"
                );
                tokio::task::spawn_blocking(move || acquire(&path, deadline, timeout))
                    .await
                    .map_err(|e| StoreError::Io {
                        action: "cannot lock",
                        path: dir,
                        source: std::io::Error::other(e),
                    })??
            }
        };
        Ok(FileLock {
            record,
            _file: file,
        })
    }
}

/// Which file a record was read from (device and inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(m: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId(m.dev(), m.ino())
    }

    /// Without inodes, the length stands in (weaker, but only a hint to read again).
    #[cfg(not(unix))]
    fn of(m: &fs::Metadata) -> Self {
        FileId(m.len(), 0)
    }
}

/// The file at `path` now (not following a symbolic link).
fn file_id(path: &Path) -> Option<FileId> {
    fs::symlink_metadata(path).ok().map(|m| FileId::of(&m))
}

/// A held file lock on one record.
#[derive(Debug)]
pub(crate) struct FileLock {
    pub(crate) record: PathBuf,
    _file: File,
}

impl FileLock {
    /// The temp file a write goes to, with room for the record taken: creating it and writing
    /// [`RESERVED`] bytes (or twice the record's size) proves the folder is writable and has
    /// the space, before anything irreversible happens (a refresh rotating the refresh token).
    pub(crate) fn prepare(&self) -> Result<AtomicFile, StoreError> {
        let mut file =
            AtomicFile::create(&self.record).map_err(io("cannot write in", &self.record))?;
        let current = fs::symlink_metadata(&self.record).map_or(0, |m| m.len());
        let room = current.saturating_mul(2).clamp(RESERVED, MAX_RECORD);
        file.reserve(usize::try_from(room).unwrap_or(usize::MAX))
            .map_err(io("cannot write in", &self.record))?;
        Ok(file)
    }

    /// Puts `bytes` in place through `target`, then removes temp files a crashed writer left.
    pub(crate) fn commit(&self, target: AtomicFile, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.len() as u64 > MAX_RECORD {
            return Err(StoreError::Config(format!(
                "the record for {} would be larger than {} MiB; not written",
                self.record.display(),
                MAX_RECORD >> 20
            )));
        }
        target
            .commit(&[bytes])
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
        let name = name.to_string_lossy();
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            // Exactly this record's temp files: the record of the account `x.json` has
            // temp files `.x.json.json.…`, which start like those of `x.json`'s record.
            if crate::util::private_fs::is_temp_file_of(&file.to_string_lossy(), &name) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Deletes the record (and its lock file); `Ok(false)` when there was none.
    pub(crate) fn delete(self) -> Result<bool, StoreError> {
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

/// Takes the exclusive lock on `path` if it is free now (`None` when another process holds
/// it). The holder's pid is written into the file so that a waiter that gives up can say who
/// holds it: in one write over what was there, padded to a fixed width, so that the file is
/// cut only when it held something longer (truncating and growing it again on every lock
/// made the file system free and allocate its block each time).
pub(crate) fn try_acquire(path: &Path) -> Result<Option<File>, StoreError> {
    loop {
        let mut options = private_options();
        options.read(true).write(true).truncate(false);
        let (mut file, meta) = open_private(&options, path, "cannot open")?;
        match file.try_lock() {
            Ok(()) => {
                // The lock file may have been deleted (by a logout) while we waited: a lock
                // on an unlinked file guards nothing.
                if file_id(path) != Some(FileId::of(&meta)) {
                    continue;
                }
                let owner = format!("process {:<10}\n", std::process::id());
                if file.write_all(owner.as_bytes()).is_ok() && meta.len() > owner.len() as u64 {
                    let _ = file.set_len(owner.len() as u64);
                }
                return Ok(Some(file));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock", path)(e)),
        }
    }
}

/// Who holds the lock at `path`, as the holder wrote it (`process 1234`), or `another process`.
pub(crate) fn holder(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .map(|h| crate::util::text::sanitize(h.trim(), 40))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "another process".into())
}

/// Takes the lock, polling until `deadline`. Blocking.
fn acquire(path: &Path, deadline: Instant, waited: Duration) -> Result<File, StoreError> {
    loop {
        match try_acquire(path)? {
            Some(file) => return Ok(file),
            None => {
                if Instant::now() >= deadline {
                    return Err(StoreError::LockTimeout {
                        path: path.to_owned(),
                        holder: holder(path),
                        waited,
                    });
                }
                std::thread::sleep(LOCK_POLL);
            }
        }
    }
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
fn read_private(path: &Path) -> Result<Option<(Vec<u8>, FileId)>, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true);
    let (file, meta) = match open_private(&options, path, "cannot read") {
        Ok(opened) => opened,
        Err(StoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    repair_private_file(&file, &meta, path).map_err(io("cannot protect", path))?;
    if meta.len() > MAX_RECORD {
        return Err(StoreError::Unsafe {
            path: path.to_owned(),
            reason: "it is larger than any record (16 MiB)",
        });
    }
    let mut bytes = Vec::new();
    read_sized(&file, meta.len(), MAX_RECORD, &mut bytes).map_err(io("cannot read", path))?;
    // The open file's identity: what was read, whatever the path names by now.
    Ok(Some((bytes, FileId::of(&meta))))
}

/// Opens a file of the store ([`open_regular`](crate::util::private_fs::open_regular)): never
/// through a symbolic link at its last component (on unix `O_NOFOLLOW` makes the open itself
/// refuse one: no check-then-use gap; elsewhere it is checked first), and never anything but
/// a regular file. Returns the file and its metadata.
fn open_private(
    options: &OpenOptions,
    path: &Path,
    action: &'static str,
) -> Result<(File, fs::Metadata), StoreError> {
    #[cfg(not(unix))]
    refuse_symlink(path)?;
    let unsafe_file = |reason| StoreError::Unsafe {
        path: path.to_owned(),
        reason,
    };
    match crate::util::private_fs::open_regular(options, path, false) {
        Ok(opened) => Ok(opened),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(unsafe_file("it is a symbolic link"))
        }
        Err(e) if crate::util::private_fs::is_not_regular(&e) => {
            Err(unsafe_file("it is not a regular file"))
        }
        Err(e) => Err(io(action, path)(e)),
    }
}

fn dir_error(dir: &Path, e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::InvalidInput {
        StoreError::Unsafe {
            path: dir.to_owned(),
            reason: "it is a symbolic link or not a folder",
        }
    } else {
        io("cannot use the folder", dir)(e)
    }
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

    #[test]
    fn names_cannot_escape_the_store() {
        let store = FileBackend {
            dir: PathBuf::from("/tmp/x"),
        };
        for bad in ["../etc", "a/b", ".hidden", "", "x\0y"] {
            assert!(store.path("github", bad).is_err(), "{bad:?}");
        }
    }
}
