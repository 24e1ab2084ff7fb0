//! A record's lock: [`RecordLock`], through which a record is read and changed while no one
//! else changes it, and what it holds in each backend.

#[cfg(feature = "postgres")]
use super::postgres;
use super::{Record, Store, StoreError, file};

#[derive(Debug)]
pub(super) enum Held {
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
    pub(super) store: Store,
    pub(super) provider: String,
    pub(super) account: String,
    pub(super) held: Held,
    pub(super) _gate: tokio::sync::OwnedMutexGuard<()>,
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
