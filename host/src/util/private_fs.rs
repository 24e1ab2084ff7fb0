//! Owner-only folders and atomic owner-only writes: the one way this crate writes a file that
//! must survive a crash (credential records, the plugin compile cache, installed plugins).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Opens `path` with `options`, never blocking on a FIFO's open (`O_NONBLOCK`, which a
/// regular file ignores) and, unless `follow`, never through a symbolic link at its last
/// component (`O_NOFOLLOW`: the open itself refuses one, with `ELOOP`). Anything but a
/// regular file is refused ([`is_not_regular`]): a FIFO or a device where a record or a key
/// belongs would otherwise hang every command reading it. Returns the file and the open
/// file's metadata.
pub(crate) fn open_regular(
    options: &fs::OpenOptions,
    path: &Path,
    follow: bool,
) -> io::Result<(File, fs::Metadata)> {
    let mut options = options.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
        options.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    let _ = follow;
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_REGULAR));
    }
    Ok((file, meta))
}

const NOT_REGULAR: &str = "it is not a regular file";

/// Why [`read_secret`] refused a file.
#[derive(Debug)]
pub(crate) enum SecretFileError {
    /// It cannot be opened or read (or it is not a regular file).
    Io(io::Error),
    /// Group or others may read or write it.
    Exposed,
    /// Another user owns it (their uid).
    NotOurs(u32),
}

/// Reads a secret file (a key, a service account) that must be the user's own and
/// owner-only, checked on the open file, into a buffer sized up front and zeroized when
/// dropped (no copy of the secret is left behind by a growing buffer); at most `max` bytes.
pub(crate) fn read_secret(
    path: &Path,
    max: u64,
) -> Result<zeroize::Zeroizing<Vec<u8>>, SecretFileError> {
    // The file itself, not the path looked up again: what is checked is what is read.
    let (file, meta) =
        open_regular(fs::OpenOptions::new().read(true), path, true).map_err(SecretFileError::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(SecretFileError::Exposed);
        }
        if meta.uid() != euid() {
            return Err(SecretFileError::NotOurs(meta.uid()));
        }
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    read_sized(&file, meta.len(), max, &mut bytes).map_err(SecretFileError::Io)?;
    Ok(bytes)
}

/// Whether `e` is [`open_regular`] refusing something that is not a regular file.
pub(crate) fn is_not_regular(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput
        && e.get_ref()
            .is_some_and(|inner| inner.to_string() == NOT_REGULAR)
}

/// The rest of `file` (opened by [`open_regular`], whose metadata gave `len`), at most `max`
/// bytes, into `buf`. The buffer is sized from `len` up front; unlike `File::read_to_end` this
/// asks the system for neither the file's size nor its position again.
pub(crate) fn read_sized(file: &File, len: u64, max: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
    let expected = usize::try_from(len.min(max)).unwrap_or(usize::MAX);
    buf.try_reserve(expected.saturating_add(1))
        .map_err(io::Error::other)?;
    // `Read for Take<&File>`: the reading loop without `File`'s size probe.
    io::Read::read_to_end(&mut io::Read::take(file, max), buf)
}

/// Makes sure `dir` is an owner-only folder of ours: created `0700` (parents as needed) when
/// missing; refused (`InvalidInput`) when it is a symbolic link or not a folder, so nothing
/// outside is touched; made `0700` again, with a warning, when others may read it.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a symbolic link or not a folder",
        )),
        Ok(m) => repair(dir, &m, 0o700),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut builder = fs::DirBuilder::new();
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            match builder.create(dir) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => ensure_private_dir(dir),
                other => other,
            }
        }
        Err(e) => Err(e),
    }
}

/// Makes an open file of ours owner-only again (`0600`), with a warning, when others may read
/// or write it; an error when it cannot be (the file is not ours, a read-only mount).
pub(crate) fn repair_private_file(file: &File, meta: &fs::Metadata, path: &Path) -> io::Result<()> {
    if let Some(mode) = open_to_others(meta) {
        file.set_permissions(owner_only(0o600))
            .map_err(|e| not_repaired(mode, e))?;
        warn_repaired(path, mode, 0o600);
    }
    Ok(())
}

/// [`repair_private_file`] for a folder (`wanted`: its owner-only mode).
fn repair(dir: &Path, meta: &fs::Metadata, wanted: u32) -> io::Result<()> {
    if let Some(mode) = open_to_others(meta) {
        fs::set_permissions(dir, owner_only(wanted)).map_err(|e| not_repaired(mode, e))?;
        warn_repaired(dir, mode, wanted);
    }
    Ok(())
}

/// A file or folder open to others that could not be made owner-only: not to be used.
fn not_repaired(mode: u32, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("it is open to others (mode {mode:o}) and cannot be made owner-only: {e}"),
    )
}

/// The mode bits, when group or others have any permission.
fn open_to_others(meta: &fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

fn owner_only(mode: u32) -> fs::Permissions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::Permissions::from_mode(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        unreachable!("permissions are repaired on unix only")
    }
}

fn warn_repaired(path: &Path, mode: u32, wanted: u32) {
    tracing::warn!(
        "{} was open to others (mode {mode:o}); made it owner-only ({wanted:o})",
        path.display()
    );
}

/// Why a file or folder `host` reads back as its own cannot be trusted: another user could
/// have written it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Untrusted {
    /// It belongs to another user.
    Owner(u32),
    /// Group or others may write it.
    Writable(u32),
    /// A symbolic link, or not the kind of file expected.
    NotPlain,
    /// It is not there.
    Missing,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::Owner(uid) => write!(f, "it belongs to another user (uid {uid})"),
            Untrusted::Writable(mode) => {
                write!(f, "other users may write it (mode {mode:o})")
            }
            Untrusted::NotPlain => {
                f.write_str("it is a symbolic link or not a plain file or folder")
            }
            Untrusted::Missing => f.write_str("it is not there"),
        }
    }
}

/// The effective user id of this process.
#[cfg(unix)]
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

/// Whether what `meta` describes may be trusted as written by this user: owned by the
/// effective user and not writable by group or others. Elsewhere than on Unix, always.
pub(crate) fn trusted(meta: &fs::Metadata) -> Result<(), Untrusted> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.file_type().is_symlink() {
            return Err(Untrusted::NotPlain);
        }
        if meta.uid() != euid() {
            return Err(Untrusted::Owner(meta.uid()));
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Untrusted::Writable(mode & 0o777));
        }
    }
    let _ = meta;
    Ok(())
}

/// A folder `host` keeps files in that it reads back as its own (a cache): usable only when it
/// is a real folder (not a link), ours, and not writable by others. Otherwise another user may
/// have planted what is in it: the caller ignores it, and the refusal is warned about once.
pub(crate) fn trusted_dir(dir: &Path) -> Result<(), Untrusted> {
    let meta = fs::symlink_metadata(dir).map_err(|_| Untrusted::Missing)?;
    if !meta.is_dir() {
        return Err(Untrusted::NotPlain);
    }
    trusted(&meta)
}

/// Warns about `path` once per process (the same file or folder is often met on every
/// load): `what` says what was ignored and why, and the fix.
pub(crate) fn warn_once(path: &Path, what: impl FnOnce() -> String) {
    static WARNED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.iter().any(|p| p == path) {
        return;
    }
    warned.push(path.to_owned());
    tracing::warn!("{}", what());
}

/// Warns (once) that the file `path`, which `host` wrote and reads back as its own, is
/// ignored because another user could have written it.
pub(crate) fn warn_untrusted(path: &Path, why: &Untrusted) {
    warn_once(path, || {
        format!(
            "ignoring {}: {why}, so another user may have written it; it is made again",
            path.display()
        )
    });
}

/// The bytes (at most `max`) and metadata of a file `host` wrote and reads back as its own
/// (a cache entry, an artifact's MAC, a cached document), when it is a regular file (never
/// through a link, never blocking on a FIFO) owned by this user and not writable by others,
/// checked on the open file; `None` otherwise, warned about once when it is not ours.
pub(crate) fn read_own(path: &Path, max: u64) -> Option<(Vec<u8>, fs::Metadata)> {
    let (file, meta) = open_regular(fs::OpenOptions::new().read(true), path, false).ok()?;
    if let Err(why) = trusted(&meta) {
        warn_untrusted(path, &why);
        return None;
    }
    let mut bytes = Vec::new();
    read_sized(&file, meta.len(), max, &mut bytes).ok()?;
    Some((bytes, meta))
}

/// Warns once when the folder `dir` (the data folder, a cache folder) is writable by other
/// users (and not sticky), or is another user's, with the fix: they could replace what `host`
/// keeps there. What `host` reads back from it is checked file by file all the same.
pub(crate) fn warn_if_open(dir: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = fs::symlink_metadata(dir) {
        use std::os::unix::fs::MetadataExt;
        let mode = meta.mode() & 0o7777;
        // A sticky folder (`/tmp`) lets nobody replace another's entries.
        let sticky = mode & 0o1000 != 0;
        if meta.is_dir() && !sticky && (mode & 0o022 != 0 || meta.uid() != euid()) {
            let whose = if meta.uid() != euid() {
                format!("belongs to another user (uid {})", meta.uid())
            } else {
                format!("is writable by other users (mode {:o})", mode & 0o777)
            };
            warn_once(dir, || {
                format!(
                    "the folder {} {whose}: they can put files where host keeps its own (such files are ignored); make it yours and private: chown $(id -u) '{}' && chmod 700 '{}'",
                    dir.display(),
                    dir.display(),
                    dir.display()
                )
            });
        }
    }
    let _ = dir;
}

/// Environment variable that makes [`AtomicFile::commit`] abort the process between writing
/// the temp file and renaming it, so tests can show that a crash there loses nothing. Only
/// debug builds read it.
#[cfg(debug_assertions)]
pub(crate) const FAULT_ENV: &str = "HOST_TEST_FAULT";

/// A file being replaced atomically: a `0600` temp file in the same folder, created first (so
/// a caller knows the folder is writable before doing anything it cannot undo), then written,
/// fsynced, renamed over the target, and the folder fsynced. A crash at any point leaves the
/// previous file (or none) intact; a dropped, uncommitted one leaves nothing.
pub(crate) struct AtomicFile {
    target: std::path::PathBuf,
    tmp: tempfile::NamedTempFile,
    /// Bytes [`reserve`](Self::reserve) wrote, which `commit` writes over.
    reserved: bool,
}

impl AtomicFile {
    /// Creates the temp file beside `target`, whose folder must exist.
    pub(crate) fn create(target: &Path) -> io::Result<Self> {
        let dir = target
            .parent()
            .ok_or_else(|| io::Error::other("the path has no folder"))?;
        let prefix = format!(
            ".{}.",
            target.file_name().unwrap_or_default().to_string_lossy()
        );
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(TEMP_RANDOM)
            .suffix(".tmp")
            .tempfile_in(dir)?;
        Ok(Self {
            target: target.to_owned(),
            tmp,
            reserved: false,
        })
    }

    /// Takes `bytes` of room in the file system for the content to come, by writing that many
    /// zeros (which `commit` writes over and cuts to the content's length): a full disk fails
    /// here, not after.
    pub(crate) fn reserve(&mut self, bytes: usize) -> io::Result<()> {
        // Zero-initialized, so it takes no room in the program (and reading it maps the
        // kernel's zero page): the usual reservation is one write.
        static ZEROS: [u8; 16 << 10] = [0; 16 << 10];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(ZEROS.len());
            self.tmp.write_all(&ZEROS[..n])?;
            left -= n;
        }
        self.reserved = true;
        Ok(())
    }

    /// Writes `parts` (concatenated) and puts the file in place.
    pub(crate) fn commit(mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut written = 0u64;
        if self.reserved {
            // Over the reserved zeros from the start (positioned writes: no seek), then cut.
            for part in parts {
                write_all_at(self.tmp.as_file(), part, written)?;
                written += part.len() as u64;
            }
            self.tmp.as_file().set_len(written)?;
        } else {
            for part in parts {
                self.tmp.write_all(part)?;
            }
        }
        self.tmp.as_file().sync_all()?;
        #[cfg(debug_assertions)]
        if std::env::var(FAULT_ENV).as_deref() == Ok("abort-before-rename") {
            // Simulates a crash: the temp file is written, the rename never happens.
            let _ = self.tmp.keep();
            std::process::abort();
        }
        self.tmp.persist(&self.target).map_err(|e| e.error)?;
        if let Some(dir) = self.target.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Writes all of `buf` at `offset` of `file`.
#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

/// Writes all of `buf` at `offset` of `file`.
#[cfg(not(unix))]
fn write_all_at(mut file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
    file.write_all(buf)
}

/// How many random characters a temp file's name has.
const TEMP_RANDOM: usize = 6;

/// Whether `file` is the name of an [`AtomicFile`]'s temp file for `target`: exactly
/// `.<target>.<6 letters or digits>.tmp`, so that another file's temp file (`.x.json.json.…`
/// for `x.json.json` beside `x.json`) never matches.
pub(crate) fn is_temp_file_of(file: &str, target: &str) -> bool {
    file.strip_prefix('.')
        .and_then(|f| f.strip_prefix(target))
        .and_then(|f| f.strip_prefix('.'))
        .and_then(|f| f.strip_suffix(".tmp"))
        .is_some_and(|r| r.len() == TEMP_RANDOM && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Writes `parts` (concatenated) to `path` atomically, `0600` (see [`AtomicFile`]).
pub(crate) fn write_atomic(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    AtomicFile::create(path)?.commit(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_are_told_apart_by_their_whole_name() {
        let dir = tempfile::tempdir().unwrap();
        let temp_name = |target: &str| {
            let pending = AtomicFile::create(&dir.path().join(target)).unwrap();
            let name = pending.tmp.path().file_name().unwrap().to_str().unwrap();
            name.to_owned()
        };
        let name = temp_name("x.json");
        assert!(is_temp_file_of(&name, "x.json"), "{name}");
        assert!(!is_temp_file_of(&name, "x"), "{name}");
        // The temp file of the record `x.json.json` is not one of `x.json`'s.
        let name = temp_name("x.json.json");
        assert!(!is_temp_file_of(&name, "x.json"), "{name}");
        assert!(is_temp_file_of(&name, "x.json.json"), "{name}");
    }

    #[test]
    fn a_reserved_file_holds_exactly_what_was_committed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("record.json");
        for (room, content) in [(16 << 10, &b"short"[..]), (3, &b"longer than the room"[..])] {
            let mut file = AtomicFile::create(&target).unwrap();
            file.reserve(room).unwrap();
            assert_eq!(file.tmp.as_file().metadata().unwrap().len(), room as u64);
            file.commit(&[content, b"!"]).unwrap();
            assert_eq!(fs::read(&target).unwrap(), [content, b"!"].concat());
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_open_to_others_that_cannot_be_repaired_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let wide = dir.path().join("wide");
        fs::create_dir(&wide).unwrap();
        fs::set_permissions(&wide, fs::Permissions::from_mode(0o777)).unwrap();
        let meta = fs::metadata(&wide).unwrap();
        // Gone before its mode could be set: as a folder of another user's or on a read-only
        // mount, the repair fails, and says so instead of claiming it.
        fs::remove_dir(&wide).unwrap();
        let err = repair(&wide, &meta, 0o700).unwrap_err();
        assert!(
            err.to_string()
                .contains("open to others (mode 777) and cannot be made owner-only"),
            "{err}"
        );
    }

    #[test]
    fn writes_owner_only_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/b");
        ensure_private_dir(&folder).unwrap();
        let file = folder.join("x.json");
        AtomicFile::create(&file)
            .unwrap()
            .commit(&[b"one"])
            .unwrap();
        AtomicFile::create(&file)
            .unwrap()
            .commit(&[b"tw", b"o"])
            .unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(&folder), 0o700);
        }
        // No temp file is left behind, committed or not.
        drop(AtomicFile::create(&file).unwrap());
        assert_eq!(fs::read_dir(&folder).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_folders_are_refused_and_wide_ones_repaired() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let err = ensure_private_dir(&link).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&outside), 0o755, "the link's target is untouched");
        let wide = dir.path().join("wide");
        fs::create_dir(&wide).unwrap();
        fs::set_permissions(&wide, fs::Permissions::from_mode(0o777)).unwrap();
        ensure_private_dir(&wide).unwrap();
        assert_eq!(mode(&wide), 0o700);
    }
}
