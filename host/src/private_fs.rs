//! Owner-only folders and atomic owner-only writes: the one way this crate writes a file that
//! must survive a crash (credential records, the plugin compile cache, installed plugins).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Creates a folder (and its parents) and makes it `0700`.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Environment variable that makes [`write_atomic`] abort the process between writing the temp
/// file and renaming it, so tests can show that a crash there loses nothing. Only debug builds
/// read it.
#[cfg(debug_assertions)]
pub(crate) const FAULT_ENV: &str = "HOST_TEST_FAULT";

/// Writes `parts` (concatenated) to `path` atomically, `0600`: a temp file in the same folder,
/// written, fsynced, renamed over `path`, then the folder fsynced. A crash at any point leaves
/// the previous file (or none) intact. The folder must exist.
pub(crate) fn write_atomic(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no folder"))?;
    let prefix = format!(
        ".{}.",
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    // The temp file is created 0600 in the same folder, so the rename is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)?;
    for part in parts {
        tmp.write_all(part)?;
    }
    tmp.as_file().sync_all()?;
    #[cfg(debug_assertions)]
    if std::env::var(FAULT_ENV).as_deref() == Ok("abort-before-rename") {
        // Simulates a crash: the temp file is written, the rename never happens.
        let _ = tmp.keep();
        std::process::abort();
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_owner_only_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/b");
        create_private_dir(&folder).unwrap();
        let file = folder.join("x.json");
        write_atomic(&file, &[b"one"]).unwrap();
        write_atomic(&file, &[b"tw", b"o"]).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&file), 0o600);
            assert_eq!(mode(&folder), 0o700);
        }
        // No temp file is left behind.
        assert_eq!(fs::read_dir(&folder).unwrap().count(), 1);
    }
}
