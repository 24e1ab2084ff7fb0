//! What the PostgreSQL tests share: one throwaway cluster for the test binary, a database
//! per test, and homes configured to use it.

use std::sync::OnceLock;
use std::time::Duration;

use host_testkit::pg::PgCluster;

use crate::support::{HostEnv, Output};

/// One cluster for this test binary (each test has its own database in it).
pub(crate) fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(PgCluster::start)
}

/// A fresh database name.
pub(crate) fn database() -> String {
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
pub(crate) async fn keygen(env: &HostEnv) -> String {
    let out = env.output(&["store", "keygen"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.trim().to_owned()
}

/// Points `env` at database `db` with `key` in a key file of its own.
pub(crate) fn use_postgres(env: &HostEnv, db: &str, key: &str) {
    use_database(env, &cluster().url(db), key);
}

/// A home on a new database of the cluster, with a new key: (env, database, key).
pub(crate) async fn on_postgres() -> (HostEnv, String, String) {
    let env = HostEnv::start().await;
    let db = database();
    let key = keygen(&env).await;
    use_postgres(&env, &db, &key);
    (env, db, key)
}

/// Points `env` at the database `url` with `key` in a key file of its own.
pub(crate) fn use_database(env: &HostEnv, url: &str, key: &str) {
    let key_file = env.home.path().join("store.key");
    crate::support::write_key_file(&key_file, key);
    env.write_config(&format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nkey_file = \"{}\"\nlock_timeout_secs = 20\n",
        key_file.display()
    ));
}

pub(crate) async fn token(env: &HostEnv, min_valid: &str) -> Output {
    env.output(&["token", "--provider", "github", "--min-valid", min_valid])
        .await
}

pub(crate) fn rows(db: &str) -> String {
    cluster().psql(
        db,
        "SELECT provider, account, version, key_id, encode(sealed, 'hex'), encode(sealed, 'escape') FROM host_credentials ORDER BY 1, 2",
    )
}

pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn same_token(a: &host::Record, b: &host::Record) -> bool {
    a.credential.secret().map(|s| s.expose().to_owned())
        == b.credential.secret().map(|s| s.expose().to_owned())
}

/// Four machines, `per_machine` concurrent `host token` each, on one expired credential.
pub(crate) async fn fleet(machines: &[HostEnv], per_machine: usize) -> Vec<Output> {
    let mut calls = Vec::new();
    for m in machines {
        for _ in 0..per_machine {
            calls.push(token(m, "600"));
        }
    }
    futures_util::future::join_all(calls).await
}

/// Machine `a` and three more on the same database and key.
pub(crate) async fn four_machines() -> (Vec<HostEnv>, String) {
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

/// Waits until `condition` (an SQL boolean) holds in database `db`, asked every 50 ms, at
/// most a minute: an event another session's lock makes, instead of a sleep that hopes for it.
pub(crate) async fn until_sql(db: &str, condition: &str) {
    let query = format!("SELECT {condition}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let db = db.to_owned();
        let query = query.clone();
        let answer = tokio::task::spawn_blocking(move || cluster().psql(&db, &query))
            .await
            .unwrap();
        if answer.trim() == "t" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never held: {condition}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
