//! The shared store on a real PostgreSQL (a throwaway cluster, started by the test kit): many
//! processes and machines, one refresh, nothing lost when a process, a connection or the
//! database goes away.

use std::time::Duration;

use host_testkit::pg::PgCluster;

use crate::pg_support::*;
use crate::support::HostEnv;

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
    let (machines, db) = four_machines().await;
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
    // Killed once a waiter is seen waiting for the lock it holds.
    let killer = async {
        until_sql(
            &db,
            "count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await;
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
    until_sql(
        &db,
        "count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
         WHERE c.relname = 'host_credentials' AND l.mode = 'AccessExclusiveLock' AND l.granted \
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
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
