//! Refreshes, logins and logouts against each other and against a failing provider: one
//! refresh for all, nothing lost, nothing left live; races ordered by events, not sleeps.

use std::time::Duration;

use host_testkit::Scripted;
use serde_json::json;

use crate::support::{DUE, HostEnv, logged_in};

/// Reads `child`'s stderr (its debug log) until a line containing `what`, then hands the
/// reader back, for the rest; fails the test after a minute.
async fn until_logged(
    child: &mut tokio::process::Child,
    what: &str,
) -> tokio::io::BufReader<tokio::process::ChildStderr> {
    use tokio::io::AsyncBufReadExt;
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut line = String::new();
            if stderr.read_line(&mut line).await.unwrap() == 0 {
                return false;
            }
            seen.push_str(&line);
            if line.contains(what) {
                return true;
            }
        }
    })
    .await;
    assert!(matches!(found, Ok(true)), "never logged {what:?}: {seen}");
    stderr
}

#[tokio::test]
async fn a_refresh_in_flight_finishes_before_a_logout_which_revokes_its_tokens() {
    // The README's order: "a refresh in flight finishes first and its tokens are the ones
    // revoked". Forced by events: the provider holds the refresh once it has looked up the
    // refresh token and issued new ones; the logout is started and seen waiting for the
    // record's lock; only then is the refresh let through.
    let env = logged_in().await;
    let mut hold = env.provider.hold_refreshes();
    let token = env.host(DUE).spawn().unwrap();
    let issued = hold.arrived().await;
    let mut logout = env
        .host(&["logout", "--provider", "github"])
        .env("HOST_LOG", "host=debug")
        .spawn()
        .unwrap();
    let rest = until_logged(&mut logout, "waiting for the lock").await;
    assert!(
        env.provider.revoked().is_empty(),
        "the logout revoked nothing while the refresh held the record"
    );
    hold.release();
    let token = token.wait_with_output().await.unwrap();
    assert!(token.status.success(), "{token:?}");
    assert_eq!(
        String::from_utf8_lossy(&token.stdout).trim(),
        issued,
        "the refresh finished and handed out its token"
    );
    let status = logout.wait().await.unwrap();
    drop(rest);
    assert!(status.success());
    // What the refresh stored is what was revoked: its access token and its refresh token.
    let revoked = env.provider.revoked();
    assert!(revoked.contains(&issued), "{revoked:?}");
    assert_eq!(
        env.provider.live_refresh_tokens(),
        0,
        "a refresh token survived the logout unrevoked"
    );
    assert!(
        !env.record_path("default").exists(),
        "the refresh wrote the record back after the logout"
    );
    assert!(
        !env.record_path("default").with_extension("lock").exists(),
        "the logout leaves no lock file behind"
    );
}

#[tokio::test]
async fn an_older_refresh_never_replaces_a_newer_login() {
    // The login is started while the refresh holds the record (seen waiting for its lock
    // before it asks the provider anything); the refresh is let through; the login's
    // credential is what stays.
    use tokio::io::AsyncBufReadExt;
    let env = logged_in().await;
    let mut hold = env.provider.hold_refreshes();
    let token = env.host(DUE).spawn().unwrap();
    let refreshed = hold.arrived().await;
    let mut login = env
        .host(&[
            "run",
            "--provider",
            "github",
            "--no-browser",
            "--timeout",
            "30",
        ])
        .env("HOST_LOG", "host=debug")
        .spawn()
        .unwrap();
    let mut stderr = until_logged(&mut login, "waiting for the lock").await;
    hold.release();
    let token = token.wait_with_output().await.unwrap();
    assert!(token.status.success(), "{token:?}");
    // The login goes on: its URL, the test browser, the callback.
    let url = loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).await.unwrap(), 0, "no URL");
        if line.starts_with("http") {
            break line.trim().to_owned();
        }
    };
    let callback = crate::support::browser_redirect(&url).await;
    assert_eq!(crate::support::land_on(&callback).await, 200);
    assert!(login.wait().await.unwrap().success());
    let out = env.output(&["token", "--provider", "github"]).await;
    let stored = out.stdout.trim();
    assert_ne!(
        stored, refreshed,
        "the older refresh's token replaced the login"
    );
    let grants: Vec<String> = env
        .provider
        .token_requests()
        .iter()
        .filter_map(|r| r.form.get("grant_type").cloned())
        .collect();
    assert_eq!(
        grants.last().map(String::as_str),
        Some("authorization_code"),
        "the login's exchange came after the refresh: {grants:?}"
    );
    assert!(stored.starts_with("at-"), "{out:?}");
    // The refresh's tokens were the login's predecessor: revoked when the login replaced them.
    assert!(env.provider.revoked().contains(&refreshed));
}

#[tokio::test]
async fn a_stopped_lock_holder_makes_others_give_up_and_names_it() {
    let env = logged_in().await;
    let current = env.output(&["token", "--provider", "github"]).await.stdout;
    let mut holder = env.hold_record_lock("default");
    use std::io::Write;
    holder.set_len(0).unwrap();
    write!(holder, "process 4242").unwrap();
    let wait = [("HOST_STORE__LOCK_TIMEOUT_SECS", "1")];
    // The token is still valid: it is handed out, with a warning naming the holder, as when
    // a refresh fails for a passing reason.
    let out = env.output_with(DUE, &wait).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, current);
    assert!(
        out.stderr.contains("using the current token")
            && out.stderr.contains("locked by process 4242")
            && out.stderr.contains("within 1s"),
        "{out:?}"
    );
    // An expired one cannot be: the waiter gives up and names the holder.
    drop(holder);
    env.provider.set_ttl(1);
    env.login_ok().await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut holder = env.hold_record_lock("default");
    holder.set_len(0).unwrap();
    write!(holder, "process 4242").unwrap();
    let out = env.output_with(DUE, &wait).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("locked by process 4242") && out.stderr.contains("within 1s"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(env.provider.refresh_count(), 0);
}

#[tokio::test]
async fn a_refused_refresh_token_is_not_sent_again() {
    let env = logged_in().await;
    env.provider.revoke_all();
    for _ in 0..2 {
        let out = env.output(DUE).await;
        assert_eq!(out.code, Some(4), "{out:?}");
        assert_eq!(
            out.stderr.matches("log in again").count(),
            1,
            "said once: {}",
            out.stderr
        );
    }
    assert_eq!(
        env.provider.refresh_count(),
        1,
        "the dead token went out again"
    );
    // A new login clears the mark.
    env.login_ok().await;
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn a_provider_outage_inside_the_skew_hands_out_the_current_token() {
    let env = logged_in().await;
    let current = env.output(&["token", "--provider", "github"]).await;
    env.provider.script([Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "1".into())],
        body: vec![],
    }]);
    let out = env.output(DUE).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, current.stdout);
    assert!(
        out.stderr.contains("using the current token"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("retry after 1s").count(),
        1,
        "said once: {}",
        out.stderr
    );
}

#[tokio::test]
async fn revocation_says_what_happened_and_fails_loudly() {
    // GitHub without the app's secret: the message says what revocation needs.
    let env = HostEnv::start().await;
    env.login_ok().await;
    let out = env
        .host(&["logout", "--provider", "github"])
        .env_remove("GITHUB_CLIENT_SECRET")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("needs the app's client secret"), "{stderr}");

    // GitHub's deletion API answering 503 with Retry-After is asked again.
    let env = HostEnv::start().await;
    env.login_ok().await;
    env.provider.script([Scripted::Raw {
        status: 503,
        content_type: None,
        headers: vec![("retry-after", "1".into())],
        body: vec![],
    }]);
    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Revoked"), "{}", out.stderr);
    assert_eq!(env.provider.revoked().len(), 1);

    // A configured revocation_url is used for GitHub too: refresh token first.
    let env = logged_in().await;
    let out = env.output(&["logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(env.provider.revoked().len(), 2, "refresh and access token");
    assert_eq!(env.provider.live_refresh_tokens(), 0);

    // A failed revocation prints one line even with -q, and the exit status says it; the
    // refresh token's failure does not keep the access token from being revoked.
    let env = logged_in().await;
    let access_token = env.stored("github", "default").await.unwrap()["credential"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    env.provider.script([Scripted::Json(500, json!({}))]);
    let out = env.output(&["-q", "logout", "--provider", "github"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    assert_eq!(env.provider.revoked(), vec![access_token]);
    assert!(out.stderr.contains("could not revoke"), "{}", out.stderr);
    assert!(!env.record_path("default").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_racing_processes_never_lose_a_logout_or_leave_a_live_grant() {
    let env = logged_in().await;
    for round in 0..5 {
        env.login_ok().await;
        let mut tasks = Vec::new();
        for i in 0..50 {
            let env = &env;
            tasks.push(async move {
                let kind = match i % 10 {
                    0 => "logout",
                    1 | 2 => "run",
                    _ => "token",
                };
                let out = match kind {
                    "logout" => env.output(&["logout", "--provider", "github"]).await,
                    "run" => {
                        env.login(&["--timeout", "30"], async |url| {
                            vec![crate::support::browser_redirect(&url).await]
                        })
                        .await
                        .0
                    }
                    _ => env.output(DUE).await,
                };
                (kind, out)
            });
        }
        let mut ok = std::collections::BTreeMap::new();
        for (kind, out) in futures_util::future::join_all(tasks).await {
            // Every login works; a token or a logout may find the credential logged out
            // under it (4: nothing to refresh or revoke); nothing fails (1).
            let expected: &[i32] = if kind == "run" { &[0] } else { &[0, 4] };
            assert!(
                out.code.is_some_and(|c| expected.contains(&c)),
                "round {round}: {kind}: {out:?}"
            );
            assert!(
                !out.stderr.contains("panicked") && !out.stderr.contains("corrupt"),
                "round {round}: {out:?}"
            );
            if out.code == Some(0) {
                *ok.entry(kind).or_insert(0) += 1;
            }
        }
        // Every login works whatever else happens; the others depend on the interleaving.
        assert_eq!(ok.get("run"), Some(&10), "round {round}: {ok:?}");
        let _ = env.output(&["logout", "--provider", "github"]).await;
        assert!(
            !env.record_path("default").exists(),
            "round {round}: a record survived the last logout"
        );
        assert_eq!(
            env.provider.live_refresh_tokens(),
            0,
            "round {round}: a grant survived unrevoked"
        );
    }
}

#[tokio::test]
async fn a_new_login_revokes_the_one_it_replaces_unless_they_share_a_token() {
    // Different tokens: the replaced login's tokens are revoked, the new ones are not.
    let env = logged_in().await;
    let old = env.stored("github", "default").await.unwrap();
    env.login_ok().await;
    let new = env.stored("github", "default").await.unwrap();
    let revoked = env.provider.revoked();
    for field in ["access_token", "refresh_token"] {
        let old = old["credential"][field].as_str().unwrap().to_owned();
        let new = new["credential"][field].as_str().unwrap().to_owned();
        assert_ne!(old, new);
        assert!(revoked.contains(&old), "{field} of the old login revoked");
        assert!(!revoked.contains(&new), "{field} of the new login kept");
    }

    // A provider answering each authorization with the same tokens: revoking the old login
    // would end the new one, so nothing is revoked and the stored token still works.
    let env = logged_in().await;
    let same = Scripted::Json(
        200,
        json!({
            "access_token": "gho_same_access",
            "refresh_token": "ghr_same_refresh",
            "token_type": "bearer",
            "expires_in": 28800,
        }),
    );
    env.provider.script([same.clone()]);
    env.login_ok().await;
    let before = env.provider.revoked();
    assert_eq!(before.len(), 2, "the first login's tokens: {before:?}");
    env.provider.script([same]);
    env.login_ok().await;
    assert_eq!(env.provider.revoked(), before, "nothing more revoked");
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim(), "gho_same_access");
}
