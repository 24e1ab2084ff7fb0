//! The PostgreSQL backend: one row per provider and account with a version, shared by every
//! machine that points at the database.
//!
//! - The schema is created by versioned migrations the program runs itself, on first use or
//!   with `host store migrate`, under an advisory lock: processes starting together apply each
//!   migration once.
//! - A record's lock is a transaction-scoped advisory lock (`pg_advisory_xact_lock`) on a
//!   hash of its provider and account, waited for at most the lock timeout
//!   (`SET LOCAL lock_timeout`). A process that dies while holding it releases it with its
//!   connection; a writer killed before its commit changes nothing.
//! - Writes are compare-and-swap on the version read under the lock: an update that raced
//!   (someone wrote without the lock) is refused, never written over.
//! - Rows hold sealed records only (see [`super::seal`]); TLS follows the URL's `sslmode`.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row as _, Transaction};

use super::StoreError;

/// The migrations, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE host_credentials (
        provider text NOT NULL,
        account text NOT NULL,
        version bigint NOT NULL,
        key_id text NOT NULL,
        sealed bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, account)
    )",
)];

/// The advisory lock key migrations run under.
const MIGRATION_LOCK: i64 = 0x686f_7374_6d69_6772; // "hostmigr"

/// The latest schema version this program knows.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// A sealed row.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) version: i64,
    pub(crate) key_id: String,
    pub(crate) sealed: Vec<u8>,
}

/// The records in one database.
pub(crate) struct PgBackend {
    options: sqlx::postgres::PgConnectOptions,
    /// Made on first use (inside the runtime).
    pool: tokio::sync::OnceCell<PgPool>,
    /// Set once the schema is known to be current (see [`PgBackend::ready`]).
    checked: tokio::sync::OnceCell<()>,
    lock_timeout: Duration,
}

impl std::fmt::Debug for PgBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection options hold the password: only where the database is.
        f.debug_struct("PgBackend")
            .field("host", &self.options.get_host())
            .field("database", &self.options.get_database())
            .finish()
    }
}

/// The store error for a failed `action`; a failure to connect at all (network, TLS,
/// authentication, pool) says so instead, whatever was being done.
fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| {
        let unreachable = match &source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => true,
            // Class 08: connection exceptions; class 28: invalid authorization.
            sqlx::Error::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("28")),
            _ => false,
        };
        StoreError::Database {
            action: if unreachable {
                "cannot reach the store database"
            } else {
                action
            },
            source: Box::new(source),
        }
    }
}

/// How much longer than the lock timeout the client waits for any answer.
const ANSWER_GRACE: Duration = Duration::from_secs(10);

/// `call`, or a timeout error when the database has not answered within `limit`. Every call
/// goes through it: a table another session holds locked, or a network that stops passing
/// packets, would otherwise hold the command (and a provider's new tokens) forever. (The
/// advisory lock's wait is bounded on the server too, by `SET LOCAL lock_timeout` in its
/// transaction; nothing is set for the session, which a transaction-pooling PgBouncer would
/// pass on to other clients.)
async fn answered<T>(
    limit: Duration,
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(limit, call)
        .await
        .unwrap_or_else(|_| Err(no_answer(limit)))
}

/// What a call the database did not answer within `limit` fails with.
fn no_answer(limit: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {}s", limit.as_secs()),
    ))
}

impl PgBackend {
    /// How long the client waits for any answer.
    fn limit(&self) -> Duration {
        self.lock_timeout.saturating_add(ANSWER_GRACE)
    }

    /// A store operation bounded by [`PgBackend::limit`] as a whole (the schema check, a
    /// migration).
    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.limit();
        tokio::time::timeout(limit, operation)
            .await
            .unwrap_or_else(|_| Err(db("cannot reach the store database")(no_answer(limit))))
    }

    /// A backend on `url` (connections are made on first use).
    pub(crate) fn new(url: &str, lock_timeout: Duration) -> Result<Self, StoreError> {
        let not_postgres = || {
            StoreError::Config(
                "the store's database URL is not a PostgreSQL connection URL (postgres://USER@HOST/DB?sslmode=…)"
                    .into(),
            )
        };
        // The driver takes any scheme (`mysql://…` would be tried as PostgreSQL on 5432).
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("postgres" | "postgresql")) {
            return Err(not_postgres());
        }
        let options: sqlx::postgres::PgConnectOptions = url.parse().map_err(|_| not_postgres())?;
        // The TLS files the URL names are read only when connecting, and then a missing one is
        // "No such file or directory" without its name: checked here, named (a path, never a
        // secret).
        if let Ok(parsed) = url::Url::parse(url) {
            for (name, value) in parsed.query_pairs() {
                if !matches!(name.as_ref(), "sslrootcert" | "sslcert" | "sslkey")
                    || value == "system"
                {
                    continue;
                }
                let path = std::path::Path::new(value.as_ref());
                // A regular file first: opening a FIFO would wait for a writer.
                if !(path.is_file() && std::fs::File::open(path).is_ok()) {
                    return Err(StoreError::Config(format!(
                        "[store] url: {name} names {}, which is not a readable file",
                        crate::util::text::sanitize(&value, 200)
                    )));
                }
            }
        }
        Ok(Self {
            options,
            pool: tokio::sync::OnceCell::new(),
            checked: tokio::sync::OnceCell::new(),
            lock_timeout,
        })
    }

    /// The pool (made on first use, inside the runtime; connections open when needed).
    async fn pool(&self) -> &PgPool {
        self.pool
            .get_or_init(|| async {
                PgPoolOptions::new()
                    .max_connections(4)
                    .min_connections(0)
                    .acquire_timeout(self.lock_timeout.max(Duration::from_secs(5)))
                    .connect_lazy_with(self.options.clone())
            })
            .await
    }

    /// `e`, or when it is the pool giving up on connecting (sqlx retries a refused connection
    /// until its timeout and then keeps no cause), why: one direct connection attempt's
    /// error.
    async fn explained(&self, e: StoreError) -> StoreError {
        let timed_out = matches!(
            &e,
            StoreError::Database { source, .. }
                if matches!(source.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolTimedOut))
        );
        if !timed_out {
            return e;
        }
        use sqlx::Connection as _;
        let probe = sqlx::PgConnection::connect_with(&self.options);
        match tokio::time::timeout(Duration::from_secs(5), probe).await {
            Ok(Err(cause)) => StoreError::Database {
                action: "cannot reach the store database",
                source: Box::new(cause),
            },
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                e
            }
            Err(_) => e,
        }
    }

    /// The pool once the schema is known to be current: checked (and migrated) once per
    /// process, before the first write. Reads do not wait for it: they go straight to the
    /// table, which is one round trip less for every `host token` of a fleet.
    async fn ready(&self) -> Result<&PgPool, StoreError> {
        match self.bounded(self.ready_unexplained()).await {
            Ok(pool) => Ok(pool),
            Err(e) => Err(self.explained(e).await),
        }
    }

    async fn ready_unexplained(&self) -> Result<&PgPool, StoreError> {
        let pool = self.pool().await;
        self.checked
            .get_or_try_init(|| async {
                let current: Result<Option<i32>, sqlx::Error> =
                    sqlx::query_scalar("SELECT max(version) FROM host_schema_migrations")
                        .fetch_one(pool)
                        .await;
                match current {
                    Ok(Some(v)) if v == SCHEMA_VERSION => Ok(()),
                    Ok(Some(v)) if v > SCHEMA_VERSION => Err(StoreError::Config(format!(
                        "the database's store schema (version {v}) is newer than this program knows ({SCHEMA_VERSION}); upgrade host"
                    ))),
                    Ok(_) => migrate(pool, self.lock_timeout).await.map(drop),
                    Err(e) if undefined_table(&e) => migrate(pool, self.lock_timeout).await.map(drop),
                    Err(e) => Err(db("cannot reach the store database")(e)),
                }
            })
            .await?;
        Ok(pool)
    }

    /// Runs a read; when the table does not exist yet (a new database), creates the schema
    /// and runs it again.
    ///
    /// `read` takes the pool by value (a handle, cheap to clone) and returns a `Send` future:
    /// an async closure over a borrowed pool (`AsyncFn(&PgPool)`) makes a future that is not
    /// `Send` for every lifetime, so no caller's future could be spawned.
    async fn reading<T, F>(
        &self,
        action: &'static str,
        read: impl Fn(PgPool) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, sqlx::Error>> + Send,
    {
        let pool = self.pool().await.clone();
        let outcome = match answered(self.limit(), read(pool)).await {
            Err(e) if undefined_table(&e) => {
                let pool = self.ready().await?.clone();
                answered(self.limit(), read(pool)).await.map_err(db(action))
            }
            other => other.map_err(db(action)),
        };
        match outcome {
            Err(e) => Err(self.explained(e).await),
            ok => ok,
        }
    }

    /// Applies the migrations the database lacks, under an advisory lock; returns the versions
    /// applied (none when it was current).
    pub(crate) async fn migrate(&self) -> Result<Vec<i32>, StoreError> {
        self.bounded(migrate(self.pool().await, self.lock_timeout))
            .await
    }

    async fn bounded_wait(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> Result<(), StoreError> {
        self.bounded(bounded_wait(tx, self.lock_timeout)).await
    }

    fn lock_error(&self, e: sqlx::Error, what: &str) -> StoreError {
        lock_error(e, what, self.lock_timeout)
    }

    /// The row of `provider`/`account`.
    pub(crate) async fn read(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<Option<Row>, StoreError> {
        self.reading("cannot read the stored credential", |pool| async move {
            read_row(&pool, provider, account).await
        })
        .await
    }

    /// Providers with rows.
    pub(crate) async fn providers(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let names: Vec<String> = self
            .reading("cannot list the stored providers", |pool| async move {
                sqlx::query_scalar("SELECT DISTINCT provider FROM host_credentials")
                    .fetch_all(&pool)
                    .await
            })
            .await?;
        Ok(names.into_iter().filter(|n| valid(n)).collect())
    }

    /// Every (provider, account), sorted, in one query.
    pub(crate) async fn records(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> = self
            .reading("cannot list the stored credentials", |pool| async move {
                sqlx::query_as("SELECT provider, account FROM host_credentials ORDER BY 1, 2")
                    .fetch_all(&pool)
                    .await
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter(|(p, a)| valid(p) && valid(a))
            .collect())
    }

    /// A provider's accounts, sorted.
    pub(crate) async fn accounts(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        self.reading("cannot list the stored accounts", |pool| async move {
            sqlx::query_scalar(
                "SELECT account FROM host_credentials WHERE provider = $1 ORDER BY account",
            )
            .bind(provider)
            .fetch_all(&pool)
            .await
        })
        .await
        .map(|accounts: Vec<String>| accounts.into_iter().filter(|a| valid(a)).collect())
    }

    /// Takes the record's advisory lock in a new transaction.
    pub(crate) async fn lock(&self, provider: &str, account: &str) -> Result<PgLock, StoreError> {
        let pool = self.ready().await?;
        let mut tx = match answered(self.limit(), pool.begin()).await {
            Ok(tx) => tx,
            Err(e) => {
                return Err(self
                    .explained(db("cannot reach the store database")(e))
                    .await);
            }
        };
        self.bounded_wait(&mut tx).await?;
        let locking = sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))")
            .bind(format!("{provider}/{account}"))
            .execute(&mut *tx);
        answered(self.limit(), locking).await.map_err(|e| {
            self.lock_error(
                e,
                &format!("the credential of provider `{provider}`, account `{account}`"),
            )
        })?;
        Ok(PgLock {
            tx,
            limit: self.limit(),
            read: None,
            provider: provider.to_owned(),
            account: account.to_owned(),
        })
    }
}

/// The advisory lock a rekey holds on the database for as long as it runs.
const REKEY_LOCK: i64 = 0x686f_7374_7265_6b79; // "hostreky"

/// A rekey's hold on the database: another rekey of it is refused until this is dropped
/// (its transaction, and so the lock, ends with it).
pub(crate) struct PgRekeyLock {
    _tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl PgBackend {
    /// Takes the database's rekey lock, or says another rekey holds it.
    pub(crate) async fn rekey_lock(&self) -> Result<PgRekeyLock, StoreError> {
        let pool = self.ready().await?;
        let mut tx = answered(self.limit(), pool.begin())
            .await
            .map_err(db("cannot reach the store database"))?;
        let taking = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_xact_lock($1)")
            .bind(REKEY_LOCK)
            .fetch_one(&mut *tx);
        let taken = answered(self.limit(), taking)
            .await
            .map_err(db("cannot take the rekey lock"))?;
        if !taken {
            return Err(StoreError::Config(
                "another `host store rekey` is running on this database; let it finish, then run this one again if it names records it left".into(),
            ));
        }
        Ok(PgRekeyLock { _tx: tx })
    }
}

/// Applies the migrations the database lacks, under an advisory lock.
async fn migrate(pool: &PgPool, lock_timeout: Duration) -> Result<Vec<i32>, StoreError> {
    let mut tx = pool
        .begin()
        .await
        .map_err(db("cannot reach the store database"))?;
    bounded_wait(&mut tx, lock_timeout).await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(|e| lock_error(e, "the store's migration", lock_timeout))?;

    sqlx::query(
        "CREATE TABLE IF NOT EXISTS host_schema_migrations (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *tx)
    .await
    .map_err(db("cannot create the migrations table"))?;
    let done: Vec<i32> = sqlx::query_scalar("SELECT version FROM host_schema_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(db("cannot read the migrations table"))?;
    if let Some(newer) = done.iter().copied().filter(|v| *v > SCHEMA_VERSION).max() {
        return Err(StoreError::Config(format!(
            "the database's store schema (version {newer}) is newer than this program knows ({SCHEMA_VERSION}); upgrade host"
        )));
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .map_err(db("cannot apply a migration"))?;
        sqlx::query("INSERT INTO host_schema_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(db("cannot record a migration"))?;
        applied.push(*version);
    }
    tx.commit()
        .await
        .map_err(db("cannot commit the migrations"))?;
    Ok(applied)
}

async fn bounded_wait(
    tx: &mut Transaction<'static, Postgres>,
    lock_timeout: Duration,
) -> Result<(), StoreError> {
    // SET takes no parameters; the value is a number made here.
    let ms = lock_timeout.as_millis().clamp(1, i32::MAX as u128);
    sqlx::query(&format!("SET LOCAL lock_timeout = {ms}"))
        .execute(&mut **tx)
        .await
        .map_err(db("cannot set the lock timeout"))?;
    Ok(())
}

fn lock_error(e: sqlx::Error, what: &str, waited: Duration) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("55P03") => StoreError::Busy {
            what: what.to_owned(),
            waited,
        },
        _ => db("cannot lock")(e),
    }
}

/// Whether the error says the table does not exist (`42P01`): a database not migrated yet.
fn undefined_table(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01"))
}

async fn read_row<'e, E>(
    executor: E,
    provider: &str,
    account: &str,
) -> Result<Option<Row>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let row = sqlx::query(
        "SELECT version, key_id, sealed FROM host_credentials WHERE provider = $1 AND account = $2",
    )
    .bind(provider)
    .bind(account)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| Row {
        version: r.get(0),
        key_id: r.get(1),
        sealed: r.get(2),
    }))
}

/// A record's advisory lock: an open transaction. Dropped without a write, it rolls back.
#[derive(Debug)]
pub(crate) struct PgLock {
    tx: Transaction<'static, Postgres>,
    /// How long to wait for any answer.
    limit: Duration,
    /// What was read under the lock: `Some(None)` when there was no row.
    read: Option<Option<i64>>,
    provider: String,
    account: String,
}

impl PgLock {
    /// The row as it is now (and the version a write must find).
    pub(crate) async fn read(&mut self) -> Result<Option<Row>, StoreError> {
        let row = answered(
            self.limit,
            read_row(&mut *self.tx, &self.provider, &self.account),
        )
        .await
        .map_err(db("cannot read the stored credential"))?;
        self.read = Some(row.as_ref().map(|r| r.version));
        Ok(row)
    }

    /// Proves the row can be written (privileges, not a read-only replica) with an update
    /// that changes nothing, inside the lock's transaction.
    pub(crate) async fn check_writable(&mut self) -> Result<(), StoreError> {
        let update = sqlx::query(
            "UPDATE host_credentials SET version = version WHERE provider = $1 AND account = $2",
        )
        .bind(&self.provider)
        .bind(&self.account)
        .execute(&mut *self.tx);
        answered(self.limit, update)
            .await
            .map_err(db("cannot write the stored credential"))?;
        Ok(())
    }

    /// Writes the row if it is still the version read, then commits (releasing the lock).
    /// [`StoreError::Conflict`] when someone wrote it meanwhile: nothing is written.
    pub(crate) async fn write(mut self, key_id: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let expected = match self.read {
            Some(v) => v,
            None => self.read().await?.map(|r| r.version),
        };
        let written = match expected {
            Some(version) => sqlx::query(
                // The version wraps at bigint's end instead of making the write fail (after a
                // refresh, with the provider's new refresh token in hand): the row is locked,
                // so only 2^63 writes between one read and its write could fool the comparison.
                "UPDATE host_credentials SET version = CASE WHEN version = 9223372036854775807 THEN 1 ELSE version + 1 END,
                     key_id = $3, sealed = $4, updated_at = now()
                 WHERE provider = $1 AND account = $2 AND version = $5",
            )
            .bind(&self.provider)
            .bind(&self.account)
            .bind(key_id)
            .bind(sealed)
            .bind(version),
            None => sqlx::query(
                "INSERT INTO host_credentials (provider, account, version, key_id, sealed)
                 VALUES ($1, $2, 1, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(&self.provider)
            .bind(&self.account)
            .bind(key_id)
            .bind(sealed),
        }
        .execute(&mut *self.tx);
        let written = answered(self.limit, written)
            .await
            .map_err(db("cannot write the stored credential"))?;
        if written.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                provider: self.provider.clone(),
                account: self.account.clone(),
            });
        }
        #[cfg(debug_assertions)]
        if std::env::var(crate::util::private_fs::FAULT_ENV).as_deref() == Ok("abort-before-commit")
        {
            // Simulates a crash between sending the write and committing it.
            std::process::abort();
        }
        answered(self.limit, self.tx.commit())
            .await
            .map_err(db("cannot commit the stored credential"))
    }

    /// Deletes the row and commits; `Ok(false)` when there was none.
    pub(crate) async fn delete(mut self) -> Result<bool, StoreError> {
        let deleting =
            sqlx::query("DELETE FROM host_credentials WHERE provider = $1 AND account = $2")
                .bind(&self.provider)
                .bind(&self.account)
                .execute(&mut *self.tx);
        let done = answered(self.limit, deleting)
            .await
            .map_err(db("cannot delete the stored credential"))?;
        answered(self.limit, self.tx.commit())
            .await
            .map_err(db("cannot commit the deletion"))?;
        Ok(done.rows_affected() > 0)
    }
}

/// Whether a provider or account name read from the database is one this program writes
/// ([`crate::util::names::check_name`]). Rows named otherwise (written by hand, or by someone with
/// write access to the table: `x/../y`, escape sequences) are left out of every listing, as
/// the file store leaves out files so named; their names are never printed.
fn valid(name: &str) -> bool {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let ok = crate::util::names::check_name(name).is_ok();
    // Said once per process, however many listings meet such rows.
    if !ok && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            "rows of the credentials table with names this program does not write are ignored"
        );
    }
    ok
}
