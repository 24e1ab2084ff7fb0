//! Changes to the whole store: re-sealing every record under a new key ([`Store::rekey`])
//! and copying every record into another store ([`Store::copy_to`]), with what each did.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[cfg(feature = "postgres")]
use super::Backend;
use super::seal::{self, KeyRing, KeySource, StoreKey};
use super::{Record, Store, StoreError, file};

impl Store {
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
