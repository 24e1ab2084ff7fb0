//! The compile cache: precompiled artifacts with their digests, and an index that finds a plugin
//! file's artifact from the file's identity, so that a cached plugin is loaded without reading
//! or hashing its `.wasm` file.
//!
//! - `<digest>-<engine>.cwasm`: the artifact of the plugin whose BLAKE3 digest is `<digest>`,
//!   compiled by an engine whose compatibility hash is `<engine>`; `<…>.cwasm.b3` beside it is
//!   the artifact's own digest, checked before wasmtime maps it.
//! - `index/<key>`: an [`Entry`] (JSON) for the plugin file whose identity (device, inode,
//!   size, modification and change times) hashes to `<key>`: the file's digest, the engine
//!   its artifact was built by, the artifact's own identity when its digest was last checked,
//!   and the plugin's metadata. Identities are taken only of files whose change time is at
//!   least [`SETTLED`] old, so that a rewrite within the clock's resolution cannot go
//!   unnoticed (git's "racy" rule); any write to a file changes its change time, which no
//!   program can set. So a cached plugin loads with two stats, one small read and a mapping:
//!   neither the plugin file nor the artifact is read or hashed, and no guest runs for the
//!   metadata.
//!

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PluginError;

/// How old a plugin file's last change must be before the index vouches for its content.
const SETTLED: Duration = Duration::from_secs(2);

/// The largest artifact whose digest is checked without a blocking thread (~0.2 ms per MiB);
/// larger ones (interpreted-language plugins) go to a thread.
const INLINE_MAX: u64 = 16 << 20;

/// The index's format: an entry of another format (or another build of host) is ignored.
const FORMAT: &str = concat!("1 ", env!("CARGO_PKG_VERSION"));

/// What the index knows of one version of a plugin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    format: String,
    /// The file's BLAKE3 digest (hex).
    pub(crate) digest: String,
    /// The compatibility hash of the engine that built its artifact.
    pub(crate) engine: String,
    /// The artifact file's identity when its digest was last found intact and it had settled:
    /// while the identity stays the same, the file is the one checked.
    pub(crate) artifact: Option<String>,
    /// The plugin's metadata, as its `metadata` call returned it (checked again on each load).
    pub(crate) metadata: Option<RawMetadata>,
}

impl Entry {
    /// An entry for a file with this digest, built by this engine.
    pub(crate) fn new(digest: String, engine: &str) -> Self {
        Self {
            format: FORMAT.to_owned(),
            digest,
            engine: engine.to_owned(),
            artifact: None,
            metadata: None,
        }
    }
}

/// A plugin's metadata as its `metadata` call returned it (WIT `plugin-metadata`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RawMetadata {
    pub(crate) display_name: String,
    pub(crate) version: String,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) app_credentials_schema: String,
    pub(crate) binding: Option<RawBinding>,
    pub(crate) api_base_url: Option<String>,
}

/// WIT `binding`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawBinding {
    Bearer,
    Basic,
    Header { name: String, prefix: String },
    Query(String),
}

/// Checks the plugin file before anything else looks at it: a regular file (opening a FIFO
/// would block), not larger than `max`. Its metadata also gives its [`identity`].
pub(crate) fn check(path: &Path, max: u64) -> Result<std::fs::Metadata, PluginError> {
    let meta = std::fs::metadata(path).map_err(|source| PluginError::Io {
        path: path.to_owned(),
        source,
    })?;
    check_file(path, &meta, max)?;
    Ok(meta)
}

/// The index entry `key`, if there is one of this format.
pub(crate) fn read_entry(cache: &Path, key: &str) -> Option<Entry> {
    let bytes = std::fs::read(cache.join("index").join(key)).ok()?;
    serde_json::from_slice::<Entry>(&bytes)
        .ok()
        .filter(|e| e.format == FORMAT)
}

/// Why the index gave no artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotIndexed {
    /// None for this engine, or too large to check here.
    Unknown,
    /// It was checked and refused, corrupt or not accepted by the engine (logged): reading the
    /// plugin file would lead to the same one.
    Refused,
}

/// The artifact `entry` names, if it was built by `engine` and is intact: unchanged since its
/// digest was checked (same identity), or checked now (when small enough to do it here; the
/// entry then records its identity).
pub(crate) fn indexed_artifact(
    cache: &Path,
    entry: &mut Entry,
    engine: &str,
) -> Result<PathBuf, NotIndexed> {
    if entry.engine != engine {
        return Err(NotIndexed::Unknown);
    }
    let artifact = artifact_path(cache, &entry.digest, engine);
    let meta = std::fs::metadata(&artifact).map_err(|_| NotIndexed::Unknown)?;
    let id = identity(&meta);
    if id.is_some() && id == entry.artifact {
        return Ok(artifact);
    }
    if meta.len() > INLINE_MAX {
        return Err(NotIndexed::Unknown);
    }
    if !artifact_intact(&artifact) {
        return Err(NotIndexed::Refused);
    }
    entry.artifact = id;
    Ok(artifact)
}

/// The identity of a file that has settled (see [`identity`]), for an artifact just checked.
pub(crate) fn settled_identity(file: &Path) -> Option<String> {
    identity(&std::fs::metadata(file).ok()?)
}

/// Writes `entry` as the index entry `key`. A failure only costs the next load a read of the
/// plugin file.
pub(crate) fn remember(cache: &Path, key: &str, entry: &Entry) {
    let dir = cache.join("index");
    let written = serde_json::to_vec(entry)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            crate::private_fs::ensure_private_dir(&dir)?;
            crate::private_fs::write_atomic(&dir.join(key), &[&bytes])
        });
    if let Err(e) = written {
        tracing::debug!("cannot write the plugin cache index: {e}");
    }
}

/// A plugin file read for loading: its bytes and digest.
pub(crate) struct Prepared {
    /// The plugin file's bytes.
    pub(crate) bytes: Vec<u8>,
    /// Their BLAKE3 digest (hex).
    pub(crate) digest: String,
}

/// Reads the plugin file (already [`check`]ed; a component) and hashes it. Blocking.
pub(crate) fn prepare(path: &Path, max: u64) -> Result<Prepared, PluginError> {
    let bytes = read_plugin_file(path, max)?;
    check_header(path, &bytes)?;
    Ok(Prepared {
        digest: blake3::hash(&bytes).to_hex().to_string(),
        bytes,
    })
}

/// A hash of a file's identity (device, inode, size, modification and change times), if its
/// last change is at least [`SETTLED`] old: the key of a plugin file's index entry, and what an
/// entry records of its artifact.
#[cfg(unix)]
pub(crate) fn identity(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let changed = std::time::UNIX_EPOCH
        + Duration::new(
            u64::try_from(meta.ctime()).ok()?,
            u32::try_from(meta.ctime_nsec()).ok()?,
        );
    let age = std::time::SystemTime::now().duration_since(changed).ok()?;
    if age < SETTLED {
        return None;
    }
    let identity = format!(
        "{} {} {} {}.{} {}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    Some(blake3::hash(identity.as_bytes()).to_hex()[..32].to_owned())
}

/// Elsewhere no change time to rely on: the file is read and hashed every time.
#[cfg(not(unix))]
pub(crate) fn identity(_meta: &std::fs::Metadata) -> Option<String> {
    None
}

/// Where the artifact of the plugin with `digest` compiled by engine `engine` is kept.
pub(crate) fn artifact_path(cache: &Path, digest: &str, engine: &str) -> PathBuf {
    cache.join(format!("{digest}-{engine}.cwasm"))
}

/// Whether `artifact` is there with the digest recorded beside it. A mismatch is logged.
pub(crate) fn artifact_intact(artifact: &Path) -> bool {
    let Ok(expected) = std::fs::read(digest_path(artifact)) else {
        return false;
    };
    let Some(actual) = blake3::Hasher::new()
        .update_mmap(artifact)
        .ok()
        .map(|h| h.finalize())
    else {
        return false;
    };
    if actual.as_bytes()[..] != expected[..] {
        tracing::warn!(artifact = %artifact.display(), "corrupt cached plugin artifact; recompiling");
        return false;
    }
    true
}

/// Writes a compiled component's artifact and its digest.
pub(crate) fn write_artifact(
    artifact: &Path,
    component: &wasmtime::component::Component,
) -> Result<(), String> {
    let dir = artifact.parent().ok_or("no cache folder")?;
    crate::private_fs::ensure_private_dir(dir).map_err(|e| e.to_string())?;
    let payload = component.serialize().map_err(|e| e.to_string())?;
    let digest = blake3::hash(&payload);
    // The digest first: an artifact without its digest, or with another's, is recompiled.
    crate::private_fs::write_atomic(&digest_path(artifact), &[digest.as_bytes()])
        .map_err(|e| e.to_string())?;
    crate::private_fs::write_atomic(artifact, &[&payload]).map_err(|e| e.to_string())
}

/// Where an artifact's BLAKE3 digest is kept: beside it, so the artifact itself is exactly
/// what wasmtime maps.
fn digest_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".b3");
    PathBuf::from(name)
}

fn check_file(path: &Path, meta: &std::fs::Metadata, max: u64) -> Result<(), PluginError> {
    let bad = |reason: String| PluginError::BadFile {
        path: path.to_owned(),
        reason,
    };
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(bad(too_large(max)));
    }
    Ok(())
}

fn too_large(max: u64) -> String {
    format!("larger than {} MiB (plugins.max_file_mib)", max >> 20)
}

/// Reads a plugin file the caller has [`check`]ed: a regular file of at most `max` bytes
/// (checked again on the open file, and while reading, in case it changed in between).
fn read_plugin_file(path: &Path, max: u64) -> Result<Vec<u8>, PluginError> {
    use std::io::Read;
    let io = |source| PluginError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_file(path, &meta, max)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > max {
        return Err(PluginError::BadFile {
            path: path.to_owned(),
            reason: too_large(max),
        });
    }
    Ok(bytes)
}

fn check_header(path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PluginError::NotWasm {
            path: path.to_owned(),
        });
    }
    // Bytes 4..8: version and layer. Core modules are layer 0, components layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(PluginError::CoreModule {
            path: path.to_owned(),
        });
    }
    Ok(())
}
