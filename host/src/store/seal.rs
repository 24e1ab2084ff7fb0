//! Records sealed at rest: AES-256-GCM (`ring`, the crypto the TLS stack already uses) under a
//! 32-byte key, a fresh random 96-bit nonce per write, and the provider and account bound as
//! associated data, so a record moved under another name does not open.
//!
//! The key is standard base64 (what `host store keygen` prints), from `HOST_STORE_KEY` or the
//! file `[store] key_file`; the file store creates `store.key` (`0600`) beside the records
//! when neither is given. Each sealed record names its key by a short id (a hash of the key,
//! not the key): `host store rekey` re-seals under a new key, keeping the old one as
//! `<key file>.previous` until every record is moved.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// The environment variable holding the key.
pub const KEY_ENV: &str = "HOST_STORE_KEY";

/// The algorithm name written with sealed records.
pub(crate) const ALGORITHM: &str = "aes-256-gcm";

/// How much of a key file is read: a key is 44 characters of base64 and a newline.
const MAX_KEY_FILE: u64 = 4096;

/// Where the store's key came from (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// The environment variable `HOST_STORE_KEY`.
    Env,
    /// The environment variable `HOST_STORE_PREVIOUS_KEY`.
    PreviousEnv,
    /// A key file.
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "environment variable {KEY_ENV}"),
            KeySource::PreviousEnv => write!(f, "environment variable {PREVIOUS_KEY_ENV}"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// Why a key cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 32 bytes of standard base64.
    #[error(
        "the store key from {source_of} is not 32 bytes of standard base64 (make one with `host store keygen`)"
    )]
    Malformed {
        /// Where it came from.
        source_of: KeySource,
    },
    /// The key file cannot be read or created.
    #[error("cannot read or create the store key file {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by others.
    #[error("the store key file {} is readable by others; make it private (chmod 600)", .path.display())]
    Exposed {
        /// The file.
        path: PathBuf,
    },
    /// The key file belongs to another user, who could have planted a key they know (every
    /// record sealed under it would then be theirs to read).
    #[error("the store key file {} belongs to another user (uid {owner}); only a key file of your own is used (remove it, or make it yours with chown if you made it)", .path.display())]
    NotOurs {
        /// The file.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
    },
    /// No key is configured where one is required.
    #[error("{0}")]
    Missing(String),
    /// The system's random source failed.
    #[error("the system's random source failed")]
    Random,
}

/// A 32-byte store key (zeroed when dropped; `Debug` shows its id and source only).
#[derive(Clone)]
pub struct StoreKey {
    bytes: Zeroizing<[u8; 32]>,
    id: String,
    source: KeySource,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKey")
            .field("id", &self.id)
            .field("source", &self.source)
            .finish()
    }
}

impl StoreKey {
    /// A new random key.
    pub fn generate(source: KeySource) -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| KeyError::Random)?;
        Ok(Self::from_bytes(bytes, source))
    }

    fn from_bytes(bytes: Zeroizing<[u8; 32]>, source: KeySource) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes.as_ref());
        let id = digest.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { bytes, id, source }
    }

    /// Parses standard base64 (surrounding whitespace ignored).
    pub fn parse(text: &str, source: KeySource) -> Result<Self, KeyError> {
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| KeyError::Malformed {
                    source_of: source.clone(),
                })?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Malformed {
                source_of: source.clone(),
            })?;
        Ok(Self::from_bytes(Zeroizing::new(bytes), source))
    }

    /// Reads a key file (which must be private).
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        use crate::util::private_fs::{SecretFileError, read_secret};
        // A key file is a line of base64: what is past the first few KiB is not read.
        let bytes = read_secret(path, MAX_KEY_FILE).map_err(|e| match e {
            SecretFileError::Io(source) => KeyError::Io {
                path: path.to_owned(),
                source,
            },
            SecretFileError::Exposed => KeyError::Exposed {
                path: path.to_owned(),
            },
            SecretFileError::NotOurs(owner) => KeyError::NotOurs {
                path: path.to_owned(),
                owner,
            },
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Malformed {
            source_of: KeySource::File(path.to_owned()),
        })?;
        Self::parse(text, KeySource::File(path.to_owned()))
    }

    /// Writes the key to `path` (`0600`, atomically), replacing what is there. A missing
    /// folder is created `0700`; an existing one is left as it is (it may be `$HOME` or
    /// `/etc/host`).
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        create_missing_dir(path).map_err(io)?;
        let text = Zeroizing::new(format!("{}\n", self.to_base64().as_str()));
        crate::util::private_fs::write_atomic(path, &[text.as_bytes()]).map_err(io)
    }

    /// Writes the key to `path` only if no file is there (`0600`): `Ok(false)` when another
    /// process made one first, which the caller then reads. Two processes making the store's
    /// first key at once end up with the same one.
    pub fn write_new(&self, path: &Path) -> Result<bool, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        create_missing_dir(path).map_err(io)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".store.key.")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io)?;
        let text = Zeroizing::new(format!("{}\n", self.to_base64().as_str()));
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        // A hard link fails when the name exists: whoever links first wins, nobody replaces.
        match std::fs::hard_link(tmp.path(), path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    /// The key as standard base64 (what `host store keygen` prints).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.bytes.as_ref()))
    }

    /// A short id naming the key (a hash prefix; it reveals nothing usable).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, self.bytes.as_ref()).expect("a 32-byte AES-256 key"),
        )
    }

    /// Seals `plain` for `provider`/`account`: nonce followed by ciphertext and tag.
    pub fn seal(&self, provider: &str, account: &str, plain: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Random)?;
        let mut out = nonce.to_vec();
        let mut body = plain.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(provider, account)),
                &mut body,
            )
            .map_err(|_| KeyError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`StoreKey::seal`] made for the same `provider`/`account`; `None` when the
    /// key, the names or the bytes differ.
    pub fn open(&self, provider: &str, account: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = self
            .aead()
            .open_in_place(
                nonce,
                Aad::from(associated_data(provider, account)),
                &mut body,
            )
            .ok()?
            .len();
        body.truncate(plain);
        Some(body)
    }
}

/// Creates the folder of `path` (`0700`) when it does not exist; never changes one that does.
fn create_missing_dir(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if dir.exists() {
        return Ok(());
    }
    crate::util::private_fs::ensure_private_dir(dir)
}

/// The environment variable holding the previous key while records move to a new one (with
/// the key in `HOST_STORE_KEY`).
pub const PREVIOUS_KEY_ENV: &str = "HOST_STORE_PREVIOUS_KEY";

/// What binds a sealed record to its place.
fn associated_data(provider: &str, account: &str) -> Vec<u8> {
    format!("host-credential-v1\0{provider}\0{account}").into_bytes()
}

/// The keys a store opens records with: the current one, and the previous one while a rekey
/// is under way.
#[derive(Debug)]
pub struct KeyRing {
    /// New records are sealed with this one.
    pub current: StoreKey,
    /// Records sealed before the last rekey still open with this one.
    pub previous: Option<StoreKey>,
}

impl KeyRing {
    /// The key with this id.
    pub fn by_id(&self, id: &str) -> Option<&StoreKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// The file that keeps the previous key during a rekey.
pub fn previous_key_file(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().unwrap_or_default().to_os_string();
    name.push(".previous");
    key_file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_in_their_place_with_their_key() {
        let key = StoreKey::generate(KeySource::Env).unwrap();
        let sealed = key.seal("github", "default", b"secret-token").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(
            key.open("github", "default", &sealed).unwrap().as_slice(),
            b"secret-token"
        );
        assert!(key.open("github", "other", &sealed).is_none());
        assert!(key.open("gitlab", "default", &sealed).is_none());
        let other = StoreKey::generate(KeySource::Env).unwrap();
        assert!(other.open("github", "default", &sealed).is_none());
        // Shorter than a nonce, or a nonce and nothing: nothing opens, nothing panics.
        assert!(key.open("github", "default", &sealed[..5]).is_none());
        assert!(
            key.open("github", "default", &sealed[..NONCE_LEN])
                .is_none()
        );
        assert!(key.open("github", "default", &[]).is_none());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(key.open("github", "default", &flipped).is_none());
        let again = StoreKey::parse(&key.to_base64(), KeySource::Env).unwrap();
        assert_eq!(again.id(), key.id());
        assert!(StoreKey::parse("c2hvcnQ=", KeySource::Env).is_err());
        assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
    }

    #[test]
    fn keys_are_named_by_id_and_read_only_from_a_private_file_of_ours() {
        let key = StoreKey::generate(KeySource::Env).unwrap();
        let shown = format!("{key:?}");
        assert!(
            shown.contains("StoreKey") && shown.contains(key.id()),
            "{shown}"
        );
        assert_eq!(key.id().len(), 12);
        let other = StoreKey::generate(KeySource::Env).unwrap();
        assert_ne!(key.id(), other.id());
        let ring = KeyRing {
            current: key.clone(),
            previous: Some(other.clone()),
        };
        assert_eq!(ring.by_id(key.id()).unwrap().id(), key.id());
        assert_eq!(ring.by_id(other.id()).unwrap().id(), other.id());
        assert!(ring.by_id("nope").is_none());
        assert_eq!(
            previous_key_file(Path::new("/k/store.key")),
            Path::new("/k/store.key.previous")
        );
        // A key file: written into a folder made for it (owner-only), read back; refused when
        // others may read it, or when another user's. A bare file name needs no folder.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/store.key");
        assert!(create_missing_dir(Path::new("store.key")).is_ok());
        key.write(&path).unwrap();
        assert_eq!(StoreKey::read(&path).unwrap().id(), key.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let folder = std::fs::metadata(dir.path().join("new")).unwrap();
            assert_eq!(folder.permissions().mode() & 0o777, 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                StoreKey::read(&path),
                Err(KeyError::Exposed { .. })
            ));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            if crate::util::private_fs::euid() == 0 {
                std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
                assert!(matches!(
                    StoreKey::read(&path),
                    Err(KeyError::NotOurs { owner: 65534, .. })
                ));
            }
        }
        std::fs::write(&path, "not base64\n").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::chown(&path, Some(crate::util::private_fs::euid()), None).ok();
        }
        assert!(matches!(
            StoreKey::read(&path),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn the_first_key_wins_and_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.key");
        let a = StoreKey::generate(KeySource::File(path.clone())).unwrap();
        let b = StoreKey::generate(KeySource::File(path.clone())).unwrap();
        assert!(a.write_new(&path).unwrap());
        assert!(
            !b.write_new(&path).unwrap(),
            "the second writer learns it lost"
        );
        assert_eq!(StoreKey::read(&path).unwrap().id(), a.id());
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temp files are left");
        // Only "someone else made it first" reads as losing the race: any other failure (here
        // a name too long for the file system) is an error, not a key to read back.
        let too_long = dir.path().join("k".repeat(300));
        assert!(matches!(a.write_new(&too_long), Err(KeyError::Io { .. })));
    }
}
