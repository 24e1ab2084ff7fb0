//! The compile cache: precompiled artifacts, and an index that finds a plugin file's artifact
//! from the file's identity, so that a cached plugin is loaded without reading or hashing its
//! `.wasm` file.
//!
//! - `key`: 32 random bytes, the cache's own secret (owner-only), made on first use. Everything
//!   below is authenticated with it (a keyed BLAKE3 MAC that also covers the file's name), so
//!   a file another user planted, or one of ours moved under another name, is never used: an
//!   artifact is native code, and the index says where a plugin may connect and where its
//!   credential goes.
//! - `<digest>-<engine>.cwasm`: the artifact of the plugin whose BLAKE3 digest is `<digest>`,
//!   compiled by an engine whose compatibility hash is `<engine>`; `<…>.cwasm.mac` beside it is
//!   the artifact's MAC, checked before wasmtime maps anything.
//! - `index/<key>`: an [`Entry`] (its MAC, a newline, JSON) for the plugin file whose identity
//!   (device, inode, size, modification and change times) hashes to `<key>`: the file's
//!   digest, the engine its artifact was built by, the artifact's own identity when its MAC was
//!   last checked, and the plugin's metadata. Identities are taken only of files whose change
//!   time is at least [`SETTLED`] old, so that a rewrite within the clock's resolution cannot
//!   go unnoticed (git's "racy" rule); any write to a file changes its change time, which no
//!   program can set. So a cached plugin loads with a few stats, two small reads and a
//!   mapping: neither the plugin file nor the artifact is read or hashed, and no guest runs
//!   for the metadata.
//!
//! The folder is used only when it is ours and closed to others, and each file only when it is
//! ours and not writable by others (checked on the open file); anything else is ignored,
//! rebuilt, and warned about once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::PluginError;

/// How old a plugin file's last change must be before the index vouches for its content.
const SETTLED: Duration = Duration::from_secs(2);

/// The largest artifact whose digest is checked without a blocking thread (~0.2 ms per MiB);
/// larger ones (interpreted-language plugins) go to a thread.
const INLINE_MAX: u64 = 16 << 20;

/// The index's format: an entry of another format (or another build of host) is ignored.
const FORMAT: &str = concat!("2 ", env!("CARGO_PKG_VERSION"));

/// What the index knows of one version of a plugin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    format: String,
    /// The file's BLAKE3 digest (hex).
    pub(crate) digest: String,
    /// The compatibility hash of the engine that built its artifact.
    pub(crate) engine: String,
    /// The artifact file's identity when its MAC was last found good and it had settled:
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

/// The most an index entry may be: its MAC and the plugin's metadata (the schema included).
const MAX_ENTRY: u64 = 1 << 20;

/// The compile cache's folder, once it has proved to be ours, with its secret.
pub(crate) struct CacheDir {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CacheDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheDir")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CacheDir {
    /// The cache in `dir` (created `0700` when missing), with its secret (made on first use);
    /// `None`, warned about once, when the folder could have been written by another user or
    /// cannot be used: plugins then load without a cache.
    pub(crate) fn open(dir: &Path) -> Option<Self> {
        // The cache folder's and the data folder's (`<data>/cache/plugins`).
        for folder in dir.ancestors().skip(1).take(2) {
            crate::util::private_fs::warn_if_open(folder);
        }
        if let Err(e) = crate::util::private_fs::ensure_private_dir(dir) {
            crate::util::private_fs::warn_once(dir, || {
                format!(
                    "the plugin cache folder {} cannot be used ({e}); plugins are compiled on every use",
                    dir.display()
                )
            });
            return None;
        }
        if let Err(why) = crate::util::private_fs::trusted_dir(dir) {
            crate::util::private_fs::warn_once(dir, || {
                format!(
                    "ignoring the plugin cache folder {}: {why}, so another user may have put files in it; plugins are compiled on every use until it is removed (rm -r '{}') and made again by host",
                    dir.display(),
                    dir.display()
                )
            });
            return None;
        }
        let key = match read_key(dir) {
            Some(key) => key,
            None => make_key(dir)?,
        };
        Some(Self {
            dir: dir.to_owned(),
            key,
        })
    }

    /// The MAC of `parts` for the cache file `name` (what it authenticates includes the name:
    /// a file of ours moved under another name does not check).
    fn mac(&self, kind: &str, name: &str, parts: &[&[u8]]) -> blake3::Hash {
        let mut hasher = self.framed(kind, name);
        for part in parts {
            hasher.update(part);
        }
        hasher.finalize()
    }

    /// The keyed hasher every MAC of the cache starts from: the format, the kind of file and
    /// its name, then the content.
    fn framed(&self, kind: &str, name: &str) -> blake3::Hasher {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(b"host-cache-v2\0");
        hasher.update(kind.as_bytes());
        hasher.update(b"\0");
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher
    }

    /// The index entry `key`, if there is one of this format, ours and authentic.
    pub(crate) fn read_entry(&self, key: &str) -> Option<Entry> {
        let path = self.dir.join("index").join(key);
        let bytes = read_own(&path, MAX_ENTRY)?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (mac, json) = text.split_once('\n')?;
        let expected = self.mac("index", key, &[json.as_bytes()]);
        if blake3::Hash::from_hex(mac).ok() != Some(expected) {
            crate::util::private_fs::warn_once(&path, || {
                format!(
                    "ignoring the plugin cache entry {}: it was not written by this user's host (its MAC does not check); it is rebuilt",
                    path.display()
                )
            });
            return None;
        }
        serde_json::from_str::<Entry>(json)
            .ok()
            .filter(|e| e.format == FORMAT)
    }

    /// Writes `entry` as the index entry `key`, with its MAC. A failure only costs the next
    /// load a read of the plugin file.
    pub(crate) fn remember(&self, key: &str, entry: &Entry) {
        let dir = self.dir.join("index");
        let written = serde_json::to_vec(entry)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                let mac = self.mac("index", key, &[&json]).to_hex();
                crate::util::private_fs::ensure_private_dir(&dir)?;
                crate::util::private_fs::write_atomic(
                    &dir.join(key),
                    &[mac.as_bytes(), b"\n", &json],
                )
            });
        if let Err(e) = written {
            tracing::debug!("cannot write the plugin cache index: {e}");
        }
    }

    /// Where the artifact of the plugin with `digest` compiled by engine `engine` is kept.
    pub(crate) fn artifact_path(&self, digest: &str, engine: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{engine}.cwasm"))
    }

    /// The artifact `entry` names, if it was built by `engine`, is ours, and is authentic:
    /// unchanged since its MAC was checked (same identity), or checked now (when small enough
    /// to do it here; the entry then records its identity).
    pub(crate) fn indexed_artifact(
        &self,
        entry: &mut Entry,
        engine: &str,
    ) -> Result<Artifact, NotIndexed> {
        if entry.engine != engine {
            return Err(NotIndexed::Unknown);
        }
        let path = self.artifact_path(&entry.digest, engine);
        let artifact = Artifact::open(path).ok_or(NotIndexed::Unknown)?;
        let meta = artifact.file.metadata().map_err(|_| NotIndexed::Unknown)?;
        let id = identity(&meta);
        if id.is_some() && id == entry.artifact {
            return Ok(artifact);
        }
        if meta.len() > INLINE_MAX {
            return Err(NotIndexed::Unknown);
        }
        if !self.authentic(&artifact) {
            return Err(NotIndexed::Refused);
        }
        entry.artifact = id;
        Ok(artifact)
    }

    /// The artifact at `path`, if it is there, ours and authentic.
    pub(crate) fn checked_artifact(&self, path: &Path) -> Option<Artifact> {
        let artifact = Artifact::open(path.to_owned())?;
        self.authentic(&artifact).then_some(artifact)
    }

    /// Whether the open `artifact` carries its MAC (kept beside it). A mismatch is logged.
    fn authentic(&self, artifact: &Artifact) -> bool {
        let Some(expected) = read_own(&mac_path(&artifact.path), 64) else {
            return false;
        };
        // The artifact's bytes, mapped (an artifact can be tens of MiB) from the file that was
        // opened and checked, not the name again.
        let mut hasher = self.framed("artifact", &file_name(&artifact.path));
        if hasher.update_mmap(artifact.open_path()).is_err() {
            return false;
        }
        if hasher.finalize().as_bytes()[..] != expected[..] {
            crate::util::private_fs::warn_once(&artifact.path, || {
                format!(
                    "ignoring the cached plugin artifact {}: corrupt, or not written by this user's host (its MAC does not check); recompiling",
                    artifact.path.display()
                )
            });
            return false;
        }
        true
    }

    /// Writes a compiled component's artifact and its MAC.
    pub(crate) fn write_artifact(
        &self,
        artifact: &Path,
        component: &wasmtime::component::Component,
    ) -> Result<(), String> {
        let payload = component.serialize().map_err(|e| e.to_string())?;
        let mac = self.mac("artifact", &file_name(artifact), &[&payload]);
        // The MAC first: an artifact without its MAC, or with another's, is recompiled.
        crate::util::private_fs::write_atomic(&mac_path(artifact), &[mac.as_bytes()])
            .map_err(|e| e.to_string())?;
        crate::util::private_fs::write_atomic(artifact, &[&payload]).map_err(|e| e.to_string())
    }
}

/// A cached artifact, opened (never through a link) and found to be ours: what is checked
/// and mapped is this open file, whatever happens to its name meanwhile.
pub(crate) struct Artifact {
    file: File,
    path: PathBuf,
}

impl Artifact {
    /// Opens `path` if it is a regular file of ours (an untrusted one is warned about).
    fn open(path: PathBuf) -> Option<Self> {
        let (file, meta) = crate::util::private_fs::open_regular(
            std::fs::OpenOptions::new().read(true),
            &path,
            false,
        )
        .ok()?;
        if let Err(why) = crate::util::private_fs::trusted(&meta) {
            crate::util::private_fs::warn_untrusted(&path, &why);
            return None;
        }
        Some(Self { file, path })
    }

    /// A path that opens this very file: on Linux its descriptor's (`/proc/self/fd/N`), so
    /// that a file put in its place after the checks is never the one mapped; elsewhere the
    /// path it was opened by.
    pub(crate) fn open_path(&self) -> PathBuf {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
            if fd.exists() {
                return fd;
            }
        }
        self.path.clone()
    }

    /// The path it was opened by.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Its identity, for the index.
    pub(crate) fn identity(&self) -> Option<String> {
        identity(&self.file.metadata().ok()?)
    }
}

/// The bytes of the cache file `path` (at most `max`), when it is ours
/// ([`crate::util::private_fs::read_own`]).
fn read_own(path: &Path, max: u64) -> Option<Vec<u8>> {
    crate::util::private_fs::read_own(path, max).map(|(bytes, _)| bytes)
}

/// The cache's secret in `dir/key`, when it is there, ours, readable by us alone and 32 bytes.
fn read_key(dir: &Path) -> Option<Zeroizing<[u8; 32]>> {
    let (bytes, meta) = crate::util::private_fs::read_own(&dir.join("key"), 64)?;
    let bytes = Zeroizing::new(bytes);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return None;
        }
    }
    let _ = meta;
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(Zeroizing::new(key))
}

/// Why the index gave no artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotIndexed {
    /// None for this engine, or too large to check here.
    Unknown,
    /// It was checked and refused, not authentic or not accepted by the engine (logged):
    /// reading the plugin file would lead to the same one.
    Refused,
}

/// Where an artifact's MAC is kept: beside it, so the artifact itself is exactly what
/// wasmtime maps.
fn mac_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".mac");
    PathBuf::from(name)
}

/// A cache file's name, as its MAC covers it.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Makes the cache's secret (replacing an unusable one) and reads it back: two processes
/// making it at once end up with the one written last, and the other's first artifacts are
/// compiled again.
fn make_key(dir: &Path) -> Option<Zeroizing<[u8; 32]>> {
    use ring::rand::SecureRandom;
    let mut key = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new().fill(key.as_mut()).ok()?;
    if let Err(e) = crate::util::private_fs::write_atomic(&dir.join("key"), &[key.as_ref()]) {
        tracing::debug!("cannot write the plugin cache's key: {e}");
        return None;
    }
    read_key(dir)
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
