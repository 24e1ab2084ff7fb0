//! The shared store on a real PostgreSQL (a throwaway cluster per test, started by the test
//! kit), and sealing at rest on both backends.

use std::sync::OnceLock;
use std::time::Duration;

use host_testkit::pg::PgCluster;
use serde_json::Value;

use crate::support::{HostEnv, Output, browser_redirect};

/// One cluster for this test binary (each test has its own database in it).
fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(PgCluster::start)
}

/// A fresh database name.
fn database() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    cluster().create_db(&name);
    name
}

/// A store key, as `host store keygen` prints it.
async fn keygen(env: &HostEnv) -> String {
    let out = env.output(&["store", "keygen"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.trim().to_owned()
}

/// Points `env` at database `db` with `key` in a key file of its own.
fn use_postgres(env: &HostEnv, db: &str, key: &str) {
    use_database(env, &cluster().url(db), key);
}

/// A home on a new database of the cluster, with a new key: (env, database, key).
async fn on_postgres() -> (HostEnv, String, String) {
    let env = HostEnv::start().await;
    let db = database();
    let key = keygen(&env).await;
    use_postgres(&env, &db, &key);
    (env, db, key)
}

/// Points `env` at the database `url` with `key` in a key file of its own.
fn use_database(env: &HostEnv, url: &str, key: &str) {
    let key_file = env.home.path().join("store.key");
    crate::support::write_key_file(&key_file, key);
    env.write_config(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nkey_file = \"{}\"\nlock_timeout_secs = 20\n",
        key_file.display()
    ));
}

async fn token(env: &HostEnv, min_valid: &str) -> Output {
    env.output(&["token", "--provider", "github", "--min-valid", min_valid])
        .await
}

fn rows(db: &str) -> String {
    cluster().psql(
        db,
        "SELECT provider, account, version, key_id, encode(sealed, 'hex'), encode(sealed, 'escape') FROM host_credentials ORDER BY 1, 2",
    )
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn run_token_refresh_and_logout_on_postgres_with_nothing_readable_at_rest() {
    let (env, db, key) = on_postgres().await;
    env.provider.set_ttl(90);
    let summary = env.login_ok().await;
    assert_eq!(summary["provider"], "github");
    let first = token(&env, "0").await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let first = first.stdout.trim().to_owned();
    let second = token(&env, "600").await;
    assert_eq!(second.code, Some(0), "{second:?}");
    let second = second.stdout.trim().to_owned();
    assert_ne!(first, second);
    assert_eq!(env.provider.refresh_count(), 1);

    // Sealed: neither token, nor its hex, nor the key is in the table; nothing in the data
    // folder either (no records there).
    let table = rows(&db);
    assert!(table.contains("github|default|"), "{table}");
    for secret in [&first, &second, &key] {
        assert!(
            !table.contains(secret.as_str()),
            "a secret is readable at rest"
        );
        assert!(
            !table.contains(&hex(secret)),
            "a secret is readable at rest"
        );
    }
    assert!(!env.data_dir().join("credentials").exists());
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM host_schema_migrations"),
        "1\n",
        "migrated on first use"
    );

    let out = env.output(&["status", "--json"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("octocat"), "{out:?}");

    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.provider.revoked().contains(&second));
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM host_credentials"),
        "0\n"
    );
}

#[tokio::test]
async fn the_migration_runs_once_when_two_processes_start_together() {
    let (env, db, _) = on_postgres().await;
    let (a, b) = tokio::join!(
        env.output(&["store", "migrate"]),
        env.output(&["store", "migrate"])
    );
    assert_eq!(a.code, Some(0), "{a:?}");
    assert_eq!(b.code, Some(0), "{b:?}");
    let said = format!("{}{}", a.stderr, b.stderr);
    assert_eq!(said.matches("Applied migration 1").count(), 1, "{said}");
    assert_eq!(said.matches("schema is current").count(), 1, "{said}");
    assert_eq!(
        cluster().psql(&db, "SELECT version FROM host_schema_migrations"),
        "1\n"
    );
}

#[tokio::test]
async fn a_credential_written_by_one_machine_is_refreshed_by_another() {
    let a = HostEnv::start().await;
    let b = a.another_machine();
    let db = database();
    let key = keygen(&a).await;
    use_postgres(&a, &db, &key);
    use_postgres(&b, &db, &key);
    a.provider.set_ttl(90);
    a.login_ok().await;
    let on_a = token(&a, "0").await.stdout;
    // Machine b has no files of its own: it reads a's login from the database.
    let on_b = token(&b, "0").await;
    assert_eq!(on_b.code, Some(0), "{on_b:?}");
    assert_eq!(on_b.stdout, on_a);
    let refreshed = token(&b, "600").await;
    assert_eq!(refreshed.code, Some(0), "{refreshed:?}");
    assert_ne!(refreshed.stdout, on_a);
    assert_eq!(
        token(&a, "0").await.stdout,
        refreshed.stdout,
        "a sees b's refresh"
    );
    assert_eq!(a.provider.refresh_count(), 1);
}

/// Four machines, `per_machine` concurrent `host token` each, on one expired credential.
async fn fleet(machines: &[HostEnv], per_machine: usize) -> Vec<Output> {
    let mut calls = Vec::new();
    for m in machines {
        for _ in 0..per_machine {
            calls.push(token(m, "600"));
        }
    }
    futures_util::future::join_all(calls).await
}

/// Machine `a` and three more on the same database and key.
async fn four_machines() -> (Vec<HostEnv>, String) {
    let a = HostEnv::start().await;
    let db = database();
    let key = keygen(&a).await;
    let mut machines = vec![a];
    for _ in 0..3 {
        machines.push(machines[0].another_machine());
    }
    for m in &machines {
        use_postgres(m, &db, &key);
    }
    (machines, db)
}

#[tokio::test]
async fn one_refresh_for_a_fleet_of_100_processes_on_four_machines() {
    let (machines, _db) = four_machines().await;
    let p = &machines[0].provider;
    p.set_ttl(90);
    machines[0].login_ok().await;
    // The refreshed token lives long enough for every process.
    p.set_ttl(3600);
    // Slow refreshes keep the race window open.
    p.set_refresh_delay(Duration::from_millis(300));
    let outs = fleet(&machines, 25).await;
    let printed = &outs[0].stdout;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(&out.stdout, printed, "every process prints the same token");
    }
    assert_eq!(p.refresh_count(), 1, "exactly one refresh request");
    assert_eq!(
        p.live_refresh_tokens(),
        1,
        "no refresh token was used twice (reuse detection never fired)"
    );
}

#[tokio::test]
async fn a_process_killed_while_holding_the_lock_releases_it() {
    let (machines, _db) = four_machines().await;
    let p = &machines[0].provider;
    p.set_ttl(90);
    machines[0].login_ok().await;
    p.set_ttl(3600);
    // One process takes the lock, then hangs before sending anything.
    let mut holder = machines[1]
        .host(&["token", "--provider", "github", "--min-valid", "600"])
        .env("HOST_TEST_FAULT", "hang-holding-lock")
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(holder.stderr.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut line),
    )
    .await
    .expect("the holder takes the lock")
    .unwrap();
    assert!(line.contains("holding the lock"), "{line}");
    let waiting = fleet(&machines, 5);
    let killer = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        holder.start_kill().unwrap();
    };
    let (outs, ()) = tokio::join!(waiting, killer);
    let printed = &outs[0].stdout;
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
        assert_eq!(&out.stdout, printed);
    }
    assert_eq!(p.refresh_count(), 1, "one refresh, after the holder died");
}

#[tokio::test]
async fn a_writer_killed_before_its_commit_loses_nothing() {
    let (env, db, _) = on_postgres().await;
    env.provider.set_ttl(90);
    env.login_ok().await;
    let before = token(&env, "0").await.stdout;
    let version = cluster().psql(&db, "SELECT version FROM host_credentials");
    let crashed = env
        .host(&["token", "--provider", "github", "--min-valid", "600"])
        .env("HOST_TEST_FAULT", "abort-before-commit")
        .output()
        .await
        .unwrap();
    assert!(!crashed.status.success(), "the injected crash kills it");
    assert_eq!(
        cluster().psql(&db, "SELECT version FROM host_credentials"),
        version,
        "the write was rolled back"
    );
    let after = token(&env, "0").await;
    assert_eq!(after.code, Some(0), "{after:?}");
    assert_eq!(after.stdout, before, "the old record is still read");
}

#[tokio::test]
async fn a_version_conflict_is_never_written_over_and_a_save_retries() {
    let (env, db, _) = on_postgres().await;
    env.login_ok().await;
    let app = env.app();
    let store = app.store();
    let mut lock = store.lock("github", "default").await.unwrap();
    let record = lock.get().await.unwrap();
    // A writer that does not take the lock changes the row meanwhile.
    cluster().psql(&db, "UPDATE host_credentials SET version = version + 1");
    let bumped = cluster().psql(
        &db,
        "SELECT version, encode(sealed, 'hex') FROM host_credentials",
    );
    let err = lock.save(&record).await.expect_err("refused");
    assert!(matches!(err, host::StoreError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("nothing was overwritten"), "{err}");
    assert_eq!(
        cluster().psql(
            &db,
            "SELECT version, encode(sealed, 'hex') FROM host_credentials"
        ),
        bumped,
        "the other write stands"
    );
    // A save (a login) reads again and writes on top of what it read.
    let old = store
        .save(&record)
        .await
        .unwrap()
        .expect("it replaced a record");
    assert_eq!(old.account, "default");
    let version: i64 = cluster()
        .psql(&db, "SELECT version FROM host_credentials")
        .trim()
        .parse()
        .unwrap();
    let was: i64 = bumped.split('|').next().unwrap().parse().unwrap();
    assert_eq!(version, was + 1);
}

#[tokio::test]
async fn a_row_at_the_last_version_is_still_written_after_a_refresh() {
    let (env, db, _) = on_postgres().await;
    env.provider.set_ttl(90);
    env.login_ok().await;
    let before = token(&env, "0").await.stdout;
    cluster().psql(
        &db,
        "UPDATE host_credentials SET version = 9223372036854775807",
    );
    let refreshed = token(&env, "600").await;
    assert_eq!(refreshed.code, Some(0), "{refreshed:?}");
    assert_ne!(refreshed.stdout, before, "a new token");
    assert_eq!(env.provider.refresh_count(), 1);
    assert_eq!(
        cluster()
            .psql(&db, "SELECT version FROM host_credentials")
            .trim(),
        "1",
        "the version wrapped"
    );
    // What was written is what the next process reads, without asking again.
    let again = token(&env, "0").await;
    assert_eq!(again.stdout, refreshed.stdout);
    assert_eq!(env.provider.refresh_count(), 1);
}

/// Logs in on `env` (a provider rotating refresh tokens), then runs `host token` with a
/// refresh due that the provider takes 1.5 s to answer, beside `outage`; asserts the new
/// tokens were stored (the next process prints them, and the stored refresh token is the live
/// one: a refresh works). Returns what `outage` returned.
async fn refresh_through<T>(env: &HostEnv, outage: impl std::future::Future<Output = T>) -> T {
    env.provider.set_ttl(90);
    env.provider.set_rotate(true);
    env.login_ok().await;
    let before = token(env, "0").await.stdout;
    // The outage happens while the provider holds the refresh (its refresh token used up,
    // the new tokens issued): ordered by that event, not by a sleep.
    let mut hold = env.provider.hold_refreshes();
    let during = async {
        hold.arrived().await;
        let outage = outage.await;
        hold.release();
        outage
    };
    let (out, outage) = tokio::join!(token(env, "600"), during);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_ne!(out.stdout, before);
    drop(hold);
    assert_eq!(token(env, "0").await.stdout, out.stdout);
    let again = token(env, "600").await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(env.provider.refresh_count(), 2);
    outage
}

#[tokio::test]
async fn a_connection_lost_during_a_refresh_keeps_the_new_tokens() {
    let (env, db, _) = on_postgres().await;
    // The database sessions, the one holding the record's lock included, end while the
    // provider answers.
    let terminated = refresh_through(&env, async {
        cluster().psql(
            &db,
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
            ),
        )
    })
    .await;
    assert_ne!(terminated.trim(), "0", "the process's sessions ended");
}

#[tokio::test]
async fn a_database_restarted_during_a_refresh_keeps_the_new_tokens() {
    // A cluster of its own: the others' tests must not see it go down.
    let own = PgCluster::start();
    own.create_db("restart");
    let env = HostEnv::start().await;
    let key = keygen(&env).await;
    use_database(&env, &own.url("restart"), &key);
    refresh_through(&env, async {
        own.stop();
        tokio::time::sleep(Duration::from_millis(2000)).await;
        own.start_again();
    })
    .await;
}

#[tokio::test]
async fn a_table_locked_by_another_session_is_waited_on_for_a_bounded_time() {
    let (env, db, _) = on_postgres().await;
    env.login_ok().await;
    // Another session holds the whole table for 20 s (a migration, a careless administrator).
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            cluster().psql(
                &db,
                "BEGIN; LOCK TABLE host_credentials IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(20); COMMIT;",
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = env
        .output_with(
            &["token", "--provider", "github", "--min-valid", "0"],
            &[("HOST_STORE__LOCK_TIMEOUT_SECS", "1")],
        )
        .await;
    // Before the table is free again: the read gave up after the lock timeout and the grace
    // any answer gets (1 + 10 s).
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot reach the store database")
            && out.stderr.contains("no answer within 11s"),
        "{out:?}"
    );
    assert!(!holder.is_finished(), "the table was still locked");
    holder.join().unwrap();
}

#[tokio::test]
async fn rows_named_with_escapes_or_paths_are_never_listed_or_printed() {
    let (env, db, _) = on_postgres().await;
    env.login_ok().await;
    cluster().psql(
        &db,
        "INSERT INTO host_credentials (provider, account, version, key_id, sealed) SELECT E'evil\\x1b[31mRED\\x1b]0;TITLE\\x07', E'acc\\x1b[2J', version, key_id, sealed FROM host_credentials; \
         INSERT INTO host_credentials (provider, account, version, key_id, sealed) SELECT provider, 'x/../y', version, key_id, sealed FROM host_credentials WHERE account = 'default'",
    );
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM host_credentials"),
        "3\n"
    );
    for args in [&["status"][..], &["providers"], &["status", "--json"]] {
        let out = env.output(args).await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        for text in [&out.stdout, &out.stderr] {
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains("x/../y"),
                "{args:?}: {text:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_row_copied_under_another_name_does_not_open_and_wrong_keys_are_named() {
    let (env, db, key) = on_postgres().await;
    env.login_ok().await;
    cluster().psql(
        &db,
        "INSERT INTO host_credentials (provider, account, version, key_id, sealed) SELECT provider, 'other', version, key_id, sealed FROM host_credentials",
    );
    let out = env
        .output(&["token", "--provider", "github", "--account", "other"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("moved from another provider or account")
            && out.stderr.contains("left as it is"),
        "{}",
        out.stderr
    );
    assert_eq!(
        cluster().psql(&db, "SELECT count(*) FROM host_credentials"),
        "2\n",
        "left untouched"
    );
    // Another key, from the environment: the error names the source, never a key.
    let other = keygen(&env).await;
    let out = env
        .host(&["token", "--provider", "github"])
        .env("HOST_STORE_KEY", &other)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("environment variable HOST_STORE_KEY") && stderr.contains("another key"),
        "{stderr}"
    );
    assert!(!stderr.contains(&other) && !stderr.contains(&key));
    // No key at all: the postgres store says how to make one.
    env.write_config(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n",
        cluster().url(&db)
    ));
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("host store keygen"), "{}", out.stderr);
}

#[tokio::test]
async fn two_rekeys_at_once_never_seal_records_under_a_key_kept_nowhere() {
    let env = HostEnv::start().await;
    let accounts = ["default", "a1", "a2", "a3", "a4", "a5"];
    let mut tokens = Vec::new();
    for account in accounts {
        let (out, _) = env
            .login(&["--account", account, "--timeout", "20"], async |url| {
                vec![crate::support::browser_redirect(&url).await]
            })
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        let out = env
            .output(&["token", "--provider", "github", "--account", account])
            .await;
        tokens.push(out.stdout);
    }
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    let previous = host::seal::previous_key_file(&key_file);
    let all_open = async || {
        for (account, token) in accounts.iter().zip(&tokens) {
            let out = env
                .output(&["token", "--provider", "github", "--account", account])
                .await;
            assert_eq!(&out.stdout, token, "{account}: {out:?}");
        }
    };

    // While a rekey holds its lock, another is refused and changes nothing.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(env.data_dir().join("rekey.lock"))
        .unwrap();
    lock.lock().unwrap();
    let key = std::fs::read_to_string(&key_file).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("another `host store rekey` is running"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    assert!(!previous.exists());
    drop(lock);
    // So is one holding the key file's lock (a store of another data folder sharing the key
    // file).
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(env.data_dir().join("store.key.lock"))
        .unwrap();
    lock.lock().unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("store.key.lock"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    drop(lock);

    // Two at once, however they fall: every record opens afterwards, with the key on disk.
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            env.output(&["store", "rekey"]),
            env.output(&["store", "rekey"])
        );
        for out in [&a, &b] {
            assert!(
                out.code == Some(0) || out.stderr.contains("another `host store rekey` is running"),
                "{out:?}"
            );
        }
        assert!(a.code == Some(0) || b.code == Some(0), "{a:?} {b:?}");
        // Every record under the current key: the kept one may go.
        let out = env.output(&["store", "rekey"]).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        std::fs::remove_file(&previous).unwrap();
        all_open().await;
    }
}

#[tokio::test]
async fn a_rekey_of_the_shared_store_is_refused_while_another_machine_runs_one() {
    let (env, db, _) = on_postgres().await;
    env.login_ok().await;
    let key_id = cluster().psql(&db, "SELECT key_id FROM host_credentials");
    // Another machine's rekey holds the database's rekey lock for a while (the key
    // 0x686f_7374_7265_6b79, "hostreky").
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            cluster().psql(
                &db,
                "SELECT pg_advisory_lock(7525360446332038009); SELECT pg_sleep(4);",
            )
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("another `host store rekey` is running on this database"),
        "{}",
        out.stderr
    );
    assert_eq!(
        cluster().psql(&db, "SELECT key_id FROM host_credentials"),
        key_id,
        "nothing moved"
    );
    holder.join().unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn a_process_that_read_the_keys_before_a_rekey_reads_and_writes_after_it() {
    let env = HostEnv::start().await;
    env.provider.set_ttl(90);
    env.login_ok().await;
    // A library process reads the store (and its keys) first.
    let app = env.app();
    let store = app.store();
    let before = store.get("github", "default").await.unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // A record it writes without reading anything first is sealed under the new key, not the
    // one it read before the rekey.
    let mut second = before.clone();
    second.account = "second".into();
    store.save(&second).await.unwrap();
    // The record is now sealed under a key it has not read: it reads the keys again.
    let after = store.get("github", "default").await.unwrap();
    assert!(same_token(&before, &after));
    // What it writes now is sealed under the current key: once the kept key is removed,
    // every process still opens it.
    let provider = app.provider("github").unwrap();
    let refreshed = store
        .fresh(&provider, "default", chrono::Duration::seconds(600))
        .await
        .unwrap();
    assert!(!same_token(&before, &refreshed), "it refreshed");
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    std::fs::remove_file(host::seal::previous_key_file(&key_file)).unwrap();
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env
        .output(&["token", "--provider", "github", "--account", "second"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

fn same_token(a: &host::Record, b: &host::Record) -> bool {
    a.credential.secret().map(|s| s.expose().to_owned())
        == b.credential.secret().map(|s| s.expose().to_owned())
}

#[tokio::test]
async fn rekey_then_token_works_on_both_backends() {
    // The file store: its own key file, replaced.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Sealed 1 record"), "{out:?}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    assert_eq!(
        std::fs::read_to_string(host::seal::previous_key_file(&key_file)).unwrap(),
        old_key,
        "the old key is kept until the user removes it"
    );
    assert_eq!(token(&env, "0").await.stdout, token_before);
    // A second rekey never writes over the kept key: it resumes the first (no new key);
    // once the kept key is removed, a rekey makes a new one.
    let current = std::fs::read_to_string(&key_file).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Resumed the earlier rekey"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), current);
    std::fs::remove_file(host::seal::previous_key_file(&key_file)).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("under the new key"), "{out:?}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), current);
    assert_eq!(token(&env, "0").await.stdout, token_before);

    // The postgres store with a key file named in the configuration.
    let (env, db, _) = on_postgres().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let key_id = cluster().psql(&db, "SELECT key_id FROM host_credentials");
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_ne!(
        cluster().psql(&db, "SELECT key_id FROM host_credentials"),
        key_id
    );
    let out = token(&env, "0").await;
    assert_eq!(out.stdout, token_before, "{out:?}");
}

#[tokio::test]
async fn records_copy_to_postgres_and_back() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let before = token(&env, "0").await.stdout;
    let db = database();
    let out = env
        .output(&[
            "store",
            "copy",
            "--to",
            "postgres",
            "--url",
            &cluster().url(&db),
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Copied 1 record"), "{out:?}");
    // Switch the machine to the database (same key: the file store's key file).
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    env.write_config(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\nkey_file = \"{}\"\n",
        cluster().url(&db),
        key_file.display()
    ));
    std::fs::remove_dir_all(env.data_dir().join("credentials")).unwrap();
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, before);
    // And back.
    let out = env.output(&["store", "copy", "--to", "file"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Copied 1 record"), "{out:?}");
    let stored: Value = env.stored("github", "default").await.unwrap();
    assert_eq!(
        stored["credential"]["access_token"].as_str().unwrap(),
        before.trim()
    );
    // The database's credential is refreshed (rotated); copying the now stale file store over
    // it keeps the database's, says so, and writes over it only with --replace.
    let fresh = env
        .output(&["token", "--provider", "github", "--min-valid", "999999"])
        .await
        .stdout;
    assert_ne!(fresh, before);
    let file_store = [("HOST_STORE__BACKEND", "file")];
    let out = env
        .output_with(&["store", "copy", "--to", "postgres"], &file_store)
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Copied 0 records")
            && out
                .stderr
                .contains("kept: provider `github`, account `default`")
            && out.stderr.contains("--replace"),
        "{out:?}"
    );
    assert_eq!(
        token(&env, "0").await.stdout,
        fresh,
        "the database's is kept"
    );
    let out = env
        .output_with(
            &["store", "copy", "--to", "postgres", "--replace"],
            &file_store,
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Copied 1 record"), "{out:?}");
    assert_eq!(
        token(&env, "0").await.stdout,
        before,
        "written over when asked"
    );
}

#[tokio::test]
async fn no_token_bytes_in_the_file_store_either() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token = token(&env, "0").await.stdout.trim().to_owned();
    let mut files = vec![env.data_dir()];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&token), "{} holds the token", path.display());
            seen += 1;
        }
    }
    assert!(seen >= 2, "the record and the key file were looked at");
}

#[tokio::test]
async fn a_rekey_stopped_by_a_held_record_is_resumed_and_loses_nothing() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let (out, _) = env
        .login(
            &["--json", "--timeout", "20", "--account", "work"],
            async |url| vec![browser_redirect(&url).await],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let tokens = async || {
        let mut both = Vec::new();
        for account in ["default", "work"] {
            let out = env
                .output(&[
                    "token",
                    "--provider",
                    "github",
                    "--account",
                    account,
                    "--min-valid",
                    "0",
                ])
                .await;
            assert_eq!(out.code, Some(0), "{account}: {out:?}");
            both.push(out.stdout);
        }
        both
    };
    let before = tokens().await;
    // A stopped process holds the `work` record's lock: the rekey reseals `default`, names
    // `work`, and fails; both still open (the previous key is kept).
    let holder = env.hold_record_lock("work");
    let out = env
        .output_with(
            &["store", "rekey"],
            &[("HOST_STORE__LOCK_TIMEOUT_SECS", "1")],
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Sealed 1 record")
            && out.stderr.contains("account `work`")
            && out.stderr.contains("do not remove it"),
        "{out:?}"
    );
    drop(holder);
    assert_eq!(tokens().await, before);
    // Run again, it resumes: `work` is resealed under the current key, and then the kept key
    // can go.
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Resumed the earlier rekey"), "{out:?}");
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    std::fs::remove_file(host::seal::previous_key_file(&key_file)).unwrap();
    assert_eq!(tokens().await, before);
}

#[tokio::test]
async fn a_rekey_that_meets_an_unopenable_record_loses_nothing() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let before = token(&env, "0").await.stdout;
    // A record that does not open: the github record copied under another account.
    let from = env.record_path("default");
    let to = from.with_file_name("other.json");
    std::fs::copy(&from, &to).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Sealed 1 record")
            && out
                .stderr
                .contains("not resealed: provider `github`, account `other`")
            && out.stderr.contains("do not remove it")
            && out.stderr.contains("run `host store rekey` again"),
        "{}",
        out.stderr
    );
    // The resealed record opens with the new key, the other is left as it was.
    assert_eq!(token(&env, "0").await.stdout, before);
    assert!(to.exists());
    // A new login never writes over a record this machine cannot open: it stops before the
    // provider is asked for anything. A logout deletes it, saying it could not revoke.
    let requests = env.provider.token_requests().len();
    let out = env
        .output(&[
            "run",
            "--provider",
            "github",
            "--account",
            "other",
            "--no-browser",
            "--timeout",
            "20",
        ])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("does not open"), "{}", out.stderr);
    assert_eq!(env.provider.token_requests().len(), requests);
    let out = env
        .output(&["logout", "--provider", "github", "--account", "other"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("without revoking"), "{}", out.stderr);
    assert!(!to.exists());
}

#[tokio::test]
async fn store_settings_never_print_the_database_password() {
    let mut options = host::StoreOptions::file(std::path::Path::new("/tmp/x"));
    options.backend = host::BackendKind::Postgres(
        "postgres://host:hunter2@db.internal/host?sslmode=require".into(),
    );
    let store = host::Store::open(options).unwrap();
    let shown = format!("{store:?} {:?}", store.options());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("db.internal"), "{shown}");
}

#[tokio::test]
async fn tls_follows_the_urls_sslmode() {
    let tls = tokio::task::spawn_blocking(PgCluster::start_tls)
        .await
        .unwrap();
    tls.create_db("tls");
    let env = HostEnv::start().await;
    let key = keygen(&env).await;
    let configure = |url: &str| use_database(&env, url, &key);
    // Verified against the cluster's CA: the whole login works over TLS.
    configure(&tls.tcp_url("tls", "verify-full", Some(&tls.ca_cert())));
    env.login_ok().await;
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        tls.psql("tls", "SELECT count(*) FROM host_credentials"),
        "1\n"
    );
    let log = tls.server_log();
    assert!(
        log.lines()
            .any(|l| l.contains("database=tls") && l.contains("SSL enabled")),
        "the store's connections used TLS: {log}"
    );
    // A CA file that is not there is named before anything connects.
    configure(&tls.tcp_url(
        "tls",
        "verify-full",
        Some(std::path::Path::new("/nonexistent/ca.pem")),
    ));
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("sslrootcert names /nonexistent/ca.pem, which is not a readable file"),
        "{out:?}"
    );
    // verify-full without the CA: the system's roots do not know it; refused, for that.
    configure(&tls.tcp_url("tls", "verify-full", None));
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot reach the store database")
            && out.stderr.to_lowercase().contains("unknown")
            && out.stderr.to_lowercase().contains("issuer"),
        "refused for its certificate: {}",
        out.stderr
    );
    // Without TLS: the server refuses plain TCP.
    configure(&tls.tcp_url("tls", "disable", None));
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot reach the store database"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn an_unreachable_database_is_reported_with_its_cause() {
    let env = HostEnv::start().await;
    let key = keygen(&env).await;
    let (port, _held) = crate::support::closed_port();
    use_database(
        &env,
        &format!("postgres://host@127.0.0.1:{port}/host?sslmode=disable"),
        &key,
    );
    // The pool gives up after 5 s (its shortest wait) rather than the 20 s lock timeout.
    let config = std::fs::read_to_string(env.home.path().join("config/host/host.toml")).unwrap();
    env.write_config(&config.replace("lock_timeout_secs = 20", "lock_timeout_secs = 1"));
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    // The connection's own error, not only the pool's "timed out".
    assert!(
        out.stderr.contains("cannot reach the store database") && out.stderr.contains("refused"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_malformed_database_url_is_named_never_echoed() {
    let env = HostEnv::start().await;
    env.write_config(
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://host:hunter2@[db\"\nkey_file = \"/nonexistent\"\n",
    );
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("invalid [store] settings")
            && out
                .stderr
                .contains("database URL is not a PostgreSQL connection URL"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // An empty key file setting is named as such, not read as a missing file.
    let out = env
        .output_with(
            &["token", "--provider", "github"],
            &[("HOST_STORE__KEY_FILE", "")],
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("[store] key_file is empty"), "{out:?}");
    // Another database's URL is not tried as PostgreSQL.
    env.write_config(
        "[store]\nbackend = \"postgres\"\nurl = \"mysql://host:hunter2@127.0.0.1/db\"\nkey_file = \"/nonexistent\"\n",
    );
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("database URL is not a PostgreSQL connection URL"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test]
async fn migrate_refuses_a_schema_newer_than_it_knows() {
    let (env, db, _) = on_postgres().await;
    let out = env.output(&["store", "migrate"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    cluster().psql(
        &db,
        "INSERT INTO host_schema_migrations (version) VALUES (999)",
    );
    let out = env.output(&["store", "migrate"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("(version 999) is newer than this program knows"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_read_of_a_new_database_creates_its_schema() {
    let (env, db, _) = on_postgres().await;
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(4), "nothing stored yet: {out:?}");
    assert!(
        out.stderr.contains("host run --provider github"),
        "{}",
        out.stderr
    );
    assert_eq!(
        cluster().psql(&db, "SELECT version FROM host_schema_migrations"),
        "1\n"
    );
}

#[tokio::test]
async fn a_rekey_to_a_new_key_file_keeps_the_old_key_beside_it_until_every_record_moved() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let key_file = env.data_dir().join(host::DEFAULT_KEY_FILE);
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let new_file = env.home.path().join("new.key");
    crate::support::write_key_file(&new_file, &keygen(&env).await);
    let out = env
        .output(&[
            "store",
            "rekey",
            "--new-key-file",
            new_file.to_str().unwrap(),
        ])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Sealed 1 record") && out.stderr.contains("key_file"),
        "{out:?}"
    );
    // The key file in use is left alone; the old key is kept beside the new one.
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    assert_eq!(
        std::fs::read_to_string(host::seal::previous_key_file(&new_file)).unwrap(),
        old_key
    );
    // Pointed at the new key, the records open.
    env.write_config(&format!("[store]\nkey_file = \"{}\"\n", new_file.display()));
    assert_eq!(token(&env, "0").await.stdout, token_before);
    // While the previous key is kept, another new key is refused (it could be the only key
    // some record opens with); a plain rekey finishes the first.
    let other = env.home.path().join("other.key");
    std::fs::write(&other, format!("{}\n", keygen(&env).await)).unwrap();
    let out = env
        .output(&["store", "rekey", "--new-key-file", other.to_str().unwrap()])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("without --new-key-file"), "{out:?}");
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Resumed the earlier rekey"), "{out:?}");
    assert_eq!(token(&env, "0").await.stdout, token_before);

    // A key held only in HOST_STORE_KEY has no file to replace: rekey says to give one.
    let key = keygen(&env).await;
    let out = env
        .output_with(&["store", "rekey"], &[("HOST_STORE_KEY", key.as_str())])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("HOST_STORE_KEY") && out.stderr.contains("--new-key-file"),
        "{out:?}"
    );
    assert!(!out.stderr.contains(&key), "{out:?}");
}

#[tokio::test]
async fn a_key_kept_by_an_unfinished_rekey_is_never_written_over() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let old = std::fs::read_to_string(env.data_dir().join(host::DEFAULT_KEY_FILE)).unwrap();
    let old = old.trim();
    let new_file = env.home.path().join("k2.key");
    let new = keygen(&env).await;
    crate::support::write_key_file(&new_file, &new);
    let kept = host::seal::previous_key_file(&new_file);
    let rekey = [
        "store",
        "rekey",
        "--new-key-file",
        new_file.to_str().unwrap(),
    ];
    // The key in HOST_STORE_KEY; a stopped process holds the record: the rekey keeps the old
    // key beside the new file and leaves the record for later.
    let holder = env.hold_record_lock("default");
    let out = env
        .output_with(
            &rekey,
            &[
                ("HOST_STORE_KEY", old),
                ("HOST_STORE__LOCK_TIMEOUT_SECS", "1"),
            ],
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HOST_STORE_PREVIOUS_KEY"), "{out:?}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), old);
    drop(holder);
    // Switched to the new key and asked again: refused, the kept key untouched.
    let out = env
        .output_with(&rekey, &[("HOST_STORE_KEY", new.as_str())])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap().trim(), old);
    // Another new key while that one is kept: refused too.
    let other_file = env.home.path().join("k3.key");
    crate::support::write_key_file(&other_file, &keygen(&env).await);
    crate::support::write_key_file(&host::seal::previous_key_file(&other_file), &new);
    let out = env
        .output_with(
            &[
                "store",
                "rekey",
                "--new-key-file",
                other_file.to_str().unwrap(),
            ],
            &[("HOST_STORE_KEY", old)],
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("earlier rekey"), "{out:?}");
    // Finished as the message says: the new key current, the kept one previous.
    let both = [
        ("HOST_STORE_KEY", new.as_str()),
        ("HOST_STORE_PREVIOUS_KEY", old),
    ];
    let out = env.output_with(&["store", "rekey"], &both).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env
        .output_with(
            &["token", "--provider", "github"],
            &[("HOST_STORE_KEY", new.as_str())],
        )
        .await;
    assert_eq!(out.stdout, token_before, "{out:?}");
}

#[tokio::test]
async fn a_copy_names_a_record_it_cannot_have_and_copies_the_rest() {
    let (env, _db, _key) = on_postgres().await;
    env.login_ok().await;
    let (out, _) = env
        .login(
            &["--account", "work", "--json", "--timeout", "20"],
            async |url| vec![crate::support::browser_redirect(&url).await],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    // A stopped process holds the destination's `default` record.
    std::fs::create_dir_all(env.record_path("default").parent().unwrap()).unwrap();
    let holder = env.hold_record_lock("default");
    let out = env
        .output_with(
            &["store", "copy", "--to", "file"],
            &[("HOST_STORE__LOCK_TIMEOUT_SECS", "1")],
        )
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("Copied 1 record")
            && out
                .stderr
                .contains("not copied: provider `github`, account `default`"),
        "{out:?}"
    );
    assert!(env.record_path("work").is_file(), "the rest was copied");
    assert!(!env.record_path("default").exists());
    drop(holder);
}

#[tokio::test]
async fn a_database_error_before_a_login_is_said_as_it_is() {
    let (env, db, _key) = on_postgres().await;
    env.login_ok().await;
    // Someone drops the table under the store (the migrations table still says current).
    cluster().psql(&db, "DROP TABLE host_credentials");
    let out = env.run_briefly(&[], "github").await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("host_credentials") && !out.stderr.contains("transaction is aborted"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("/authorize?"), "{}", out.stderr);
}
