//! Sealing at rest on both backends: keys, rekeys and copies between the file store and
//! PostgreSQL, none of which ever loses a record or leaves one under a key kept nowhere.

use serde_json::Value;

use crate::pg_support::*;
use crate::support::{HostEnv, browser_redirect};

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
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
    let previous = host::store::seal::previous_key_file(&key_file);
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
    until_sql(
        &db,
        "count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
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
    let refreshed =
        host::renewal::fresh(store, &provider, "default", chrono::Duration::seconds(600))
            .await
            .unwrap();
    assert!(!same_token(&before, &refreshed), "it refreshed");
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
    std::fs::remove_file(host::store::seal::previous_key_file(&key_file)).unwrap();
    let out = token(&env, "0").await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env
        .output(&["token", "--provider", "github", "--account", "second"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn rekey_then_token_works_on_both_backends() {
    // The file store: its own key file, replaced.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let out = env.output(&["store", "rekey"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Sealed 1 record"), "{out:?}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), old_key);
    assert_eq!(
        std::fs::read_to_string(host::store::seal::previous_key_file(&key_file)).unwrap(),
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
    std::fs::remove_file(host::store::seal::previous_key_file(&key_file)).unwrap();
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
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
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
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
    std::fs::remove_file(host::store::seal::previous_key_file(&key_file)).unwrap();
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
async fn a_rekey_to_a_new_key_file_keeps_the_old_key_beside_it_until_every_record_moved() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let token_before = token(&env, "0").await.stdout;
    let key_file = env.data_dir().join(host::store::DEFAULT_KEY_FILE);
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
        std::fs::read_to_string(host::store::seal::previous_key_file(&new_file)).unwrap(),
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
    let old = std::fs::read_to_string(env.data_dir().join(host::store::DEFAULT_KEY_FILE)).unwrap();
    let old = old.trim();
    let new_file = env.home.path().join("k2.key");
    let new = keygen(&env).await;
    crate::support::write_key_file(&new_file, &new);
    let kept = host::store::seal::previous_key_file(&new_file);
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
    crate::support::write_key_file(&host::store::seal::previous_key_file(&other_file), &new);
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
