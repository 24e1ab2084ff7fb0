//! The library as a Rust user meets it: the example program, error causes, the package layout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::support::{HostEnv, browser_redirect, closed_port, read_url};

/// `examples/login.rs`, built by `cargo test` next to the test binaries.
fn login_example() -> PathBuf {
    example("login")
}

/// An example program of the host package, built by `cargo test` next to the test binaries.
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    let example = dir.join("examples").join(name);
    assert!(
        example.is_file(),
        "{} is missing: run the tests with `cargo test -p host` (which builds the examples)",
        example.display()
    );
    example
}

#[tokio::test]
async fn the_login_example_logs_in_and_prints_a_token_the_cli_shares() {
    let env = HostEnv::start().await;
    let mut child = env
        .command(login_example().to_str().unwrap(), &["github"])
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let (url, _) = read_url(&mut stderr).await;
    // The test browser approves; the example's listener gets the callback.
    let callback = browser_redirect(&url).await;
    assert_eq!(crate::support::land_on(&callback).await, 200);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let token = stdout.trim();
    assert!(token.starts_with("at-"), "{stdout:?}");
    // The example and the CLI share configuration and store.
    let out = env.output(&["token", "--provider", "github"]).await;
    assert_eq!(out.stdout.trim(), token, "{out:?}");
    assert_eq!(
        env.provider.token_requests().len(),
        1,
        "one exchange, no refresh"
    );
}

/// The typed chain (down to the OS error) is checked in
/// `token_endpoint::an_unreachable_endpoint_fails_fast_and_cleanly`; here, what a user reads.
#[tokio::test]
async fn a_connection_failure_keeps_its_causes_down_to_the_os_error() {
    let (port, _held) = closed_port();
    // Through the binary: the message carries the whole chain.
    let env = HostEnv::start().await;
    let out = env
        .host(&["run", "--provider", "github", "--flow", "device"])
        .env(
            "HOST_PROVIDERS__GITHUB__DEVICE_AUTHORIZATION_URL",
            format!("http://127.0.0.1:{port}/device/code"),
        )
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot start the login")
            && stderr.contains("cannot reach 127.0.0.1")
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
}

#[test]
fn the_wit_travels_in_each_package_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (truth, copies) in [
        // The current contract (0.2.0), in each package that builds against it.
        (
            "wit/auth.wit",
            &["host/wit/auth.wit", "plugin-sdk/wit/auth.wit"][..],
        ),
        // The frozen 0.1.0 contract the host still loads.
        ("wit/v0.1.0/auth.wit", &["host/wit/v0.1.0/auth.wit"][..]),
    ] {
        let expected = std::fs::read(root.join(truth)).unwrap();
        for copy in copies {
            let bytes = std::fs::read(root.join(copy))
                .unwrap_or_else(|e| panic!("{copy}: {e}; copy {truth} there"));
            assert!(
                bytes == expected,
                "{copy} differs from {truth}, the one source of truth: copy it again"
            );
        }
    }
}

#[tokio::test]
async fn typed_flows_are_cached_and_hand_out_a_configured_oauth2_client() {
    use oauth2::TokenResponse as _;
    let env = HostEnv::start().await;
    env.login_ok().await;
    let app = env.app();
    // The same flow on every access, typed.
    let github = app.github();
    let flow = github.oauth2().await.unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &flow,
        &github.oauth2().await.unwrap()
    ));
    let by_name: std::sync::Arc<host::github::GitHubFlow> = app
        .provider("github")
        .unwrap()
        .flow_as("oauth2")
        .await
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&flow, &by_name));

    // Its configured `oauth2` client (endpoints, client authentication) sends through the
    // hardened HTTP client: here, a refresh the library did not drive.
    let record = app.store().get("github", "default").await.unwrap();
    let refresh = record
        .credential
        .as_oauth2()
        .unwrap()
        .refresh_token
        .clone()
        .unwrap();
    let token = flow
        .oauth2()
        .client()
        .exchange_refresh_token(&oauth2::RefreshToken::new(refresh.expose().to_owned()))
        .request_async(flow.oauth2().http_client())
        .await
        .unwrap();
    assert!(token.access_token().secret().starts_with("at-"));
    let request = env.provider.token_requests().pop().unwrap();
    assert_eq!(request.form["grant_type"], "refresh_token");
    assert_eq!(request.form["client_id"], host_testkit::CLIENT_ID);
}
