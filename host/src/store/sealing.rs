//! Sealing records at rest: the keys a store uses (from the environment, or its key file,
//! made when missing; read again when another process's rekey may have replaced them), and a
//! record to and from its sealed form (a database row's bytes, a file's envelope).

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::record::RECORD_VERSION;
use super::seal::{self, KeyError, KeyRing, KeySource, StoreKey};
use super::{Record, Store, StoreError, file};

/// What a sealed file record looks like.
#[derive(Serialize, Deserialize)]
struct Envelope {
    sealed: String,
    key: String,
    data: String,
}

impl Store {
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
    pub(super) fn fresh_keys(&self, create: bool) -> Result<Option<Arc<KeyRing>>, StoreError> {
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
    pub(super) fn open_sealed(
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
    pub(super) fn seal(&self, record: &Record) -> Result<(String, Vec<u8>), StoreError> {
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
    pub(super) fn decode_file(
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

    pub(super) fn encode_file(&self, record: &Record) -> Result<Vec<u8>, StoreError> {
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
}

/// Whether reading a key file failed because there is none.
fn is_missing(e: &KeyError) -> bool {
    matches!(e, KeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DEFAULT_KEY_FILE;
    use crate::store::tests::record;
    use std::fs;

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
