//! The file store's records and key against what the file system can hold: links, FIFOs,
//! a full disk, files too large, a key that no longer opens the records.

use std::path::Path;

use crate::support::{DUE, HostEnv, logged_in, mkfifo};

#[tokio::test]
async fn symlinks_in_the_store_are_refused_and_wide_permissions_repaired() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // A symlinked lock file: its target is never created.
    let env = logged_in().await;
    let target = env.home.path().join("elsewhere.txt");
    let lock_path = env.record_path("default").with_extension("lock");
    let _ = std::fs::remove_file(&lock_path);
    std::os::unix::fs::symlink(&target, &lock_path).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(!target.exists(), "the lock's target was created");

    // A symlinked credentials folder: refused, its target's permissions untouched.
    let env = HostEnv::start().await;
    let outside = env.home.path().join("outside");
    std::fs::create_dir_all(outside.join("github")).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::os::unix::fs::symlink(&outside, env.data_dir().join("credentials")).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert_eq!(mode(&outside), 0o755);

    // A record open to others in a folder open to all: used, with a warning, and repaired.
    let env = logged_in().await;
    let record = env.record_path("default");
    std::fs::set_permissions(&record, std::fs::Permissions::from_mode(0o644)).unwrap();
    let folder = record.parent().unwrap().to_owned();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("owner-only"), "{}", out.stderr);
    assert_eq!(mode(&record), 0o600);
    assert_eq!(mode(&folder), 0o700);
}

#[tokio::test]
async fn a_fifo_in_place_of_a_record_or_the_key_is_refused_not_waited_on() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // Each command is bounded: one waiting for a writer would fail the test, not hang it.
    let token = async || env.output_bounded(&["token", "--provider", "github"]).await;
    let record = env.record_path("default");
    std::fs::remove_file(&record).unwrap();
    mkfifo(&record);
    let out = token().await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
    std::fs::remove_file(&record).unwrap();

    // A record again, and its key named as a FIFO.
    env.login_ok().await;
    let key = env.home.path().join("key.fifo");
    mkfifo(&key);
    env.write_config(&format!("[store]\nkey_file = \"{}\"\n", key.display()));
    let out = token().await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
}

#[tokio::test]
async fn a_login_that_could_not_be_stored_stops_before_the_provider_issues_anything() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    // The stored record no longer opens: the store's key was replaced. It is never written
    // over, so a new login could not be stored either.
    let key = env.output(&["store", "keygen"]).await.stdout;
    let key_file = env.data_dir().join("store.key");
    crate::support::write_key_file(&key_file, &key);
    let requests = env.provider.token_requests().len();
    let out = env
        .output_bounded(&[
            "run",
            "--provider",
            "github",
            "--no-browser",
            "--timeout",
            "20",
        ])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("does not open with the key"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("/authorize"),
        "no login started: {}",
        out.stderr
    );
    assert_eq!(env.provider.token_requests().len(), requests);
}

#[tokio::test]
async fn a_full_disk_is_found_before_the_provider_is_asked_to_refresh() {
    // The store on a full file system (a small tmpfs in a mount namespace of its own): the
    // refresh would rotate the refresh token, so it must not be asked for when the record
    // cannot be written.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let asked = env.provider.token_requests().len();
    let mount = env.home.path().join("small");
    std::fs::create_dir_all(&mount).unwrap();
    let script = r#"mount -t tmpfs -o size=256k tmpfs "$MNT" && cp -a "$DATA" "$MNT/data" || exit 99
dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null
XDG_DATA_HOME="$MNT/data" exec "$HOST" token --provider github --min-valid 99999"#;
    let mut cmd = env.command("unshare", &["-Urm", "sh", "-c", script]);
    cmd.env("MNT", &mount)
        .env("DATA", env.home.path().join("data"))
        .env("HOST", env!("CARGO_BIN_EXE_host"));
    let out = HostEnv::finish_bounded(&mut cmd).await;
    assert_ne!(
        out.code,
        Some(99),
        "the test could not set up its file system: {out:?}"
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("cannot write in") && out.stderr.contains("No space left"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.provider.token_requests().len(),
        asked,
        "no refresh was asked for"
    );
}

#[tokio::test]
async fn a_file_too_large_to_be_a_record_is_refused_unread_and_left_alone() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let big = env.record_path("big");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(64 << 20).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = env
        .output_bounded(&["token", "--provider", "github", "--account", "big"])
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("larger than any record"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::metadata(&big).unwrap().len(),
        64 << 20,
        "left as it is"
    );
    let out = env.output(&["status", "--json"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("larger than any record"),
        "{}",
        out.stdout
    );
}
