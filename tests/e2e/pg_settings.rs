//! The PostgreSQL store's settings and its database's failures: TLS as the URL says, errors
//! that name the cause and never the password, the schema made or refused.

use host_testkit::pg::PgCluster;

use crate::pg_support::*;
use crate::support::HostEnv;

#[tokio::test]
async fn store_settings_never_print_the_database_password() {
    let mut options = host::store::StoreOptions::file(std::path::Path::new("/tmp/x"));
    options.backend = host::store::BackendKind::Postgres(
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
