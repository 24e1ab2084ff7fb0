//! The library inside a multi-threaded service: every public async method of `App`, `Store`,
//! `Session`, `Provider`, `GitHub`, the login driver and the flows returns a future that
//! `tokio::spawn` takes (it is `Send` for any borrow it holds), as an axum handler or a
//! worker task needs. This file compiles only if they are; the test then runs them on a
//! multi-threaded runtime.

use std::sync::Arc;
use std::time::Duration;

use host::{AuthFlow, LoginOptions, flow::AuthorizeRequest, flow::ExchangeInput};

use crate::support::HostEnv;

/// A future that can be spawned onto another thread, whatever it borrows for its own
/// lifetime: what `tokio::spawn` asks of the futures built inside `async move` blocks.
fn assert_send<T: Send>(value: T) -> T {
    value
}

/// A login "front end" that answers nothing (the flows below are never driven to a callback).
struct NoUi;

#[host::async_trait]
impl host::LoginUi for NoUi {
    fn show_url(&self, _url: &str) {}
    fn show_device_code(&self, _code: &host::flow::DeviceCode) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_public_future_can_be_spawned_on_a_multi_threaded_runtime() {
    let env = HostEnv::start().await;
    env.login_ok().await;
    let app = Arc::new(env.app());
    let d = Duration::from_secs(60);

    // App.
    let a = Arc::clone(&app);
    let token = tokio::spawn(async move { a.token("github", "default", d).await });
    let a = Arc::clone(&app);
    let session = tokio::spawn(async move { a.session("github", "default").await });
    let a = Arc::clone(&app);
    let default = tokio::spawn(async move { a.default_provider().await });
    let a = Arc::clone(&app);
    let binding = tokio::spawn(async move { a.binding("github").await });
    let a = Arc::clone(&app);
    let base = tokio::spawn(async move { a.api_base_url("github").await });
    let a = Arc::clone(&app);
    let login = tokio::spawn(async move {
        let options = LoginOptions::default();
        // Refused before anything is asked: the account name is not a file name.
        a.login("github", "../x", None, &options, &NoUi).await
    });
    assert!(token.await.unwrap().is_ok());
    let session = session.await.unwrap().expect("a session");
    assert_eq!(default.await.unwrap().unwrap(), "github");
    binding.await.unwrap().unwrap();
    base.await.unwrap().unwrap();
    assert!(login.await.unwrap().is_err());

    // Session.
    let request = http::Request::get(env.provider.url("/api/user"))
        .body(Vec::new())
        .unwrap();
    let sent = tokio::spawn(async move { session.send(request).await.map(|r| r.status()) });
    assert_eq!(sent.await.unwrap().unwrap(), 200);

    // Store.
    let store = app.store().clone();
    let s = store.clone();
    let loaded = tokio::spawn(async move { s.load("github", "default").await });
    let s = store.clone();
    let got = tokio::spawn(async move { s.get("github", "default").await });
    let s = store.clone();
    let listed = tokio::spawn(async move {
        (
            s.providers_with_records().await,
            s.accounts("github").await,
            s.records().await,
            s.check_save("github", "other").await,
        )
    });
    let s = store.clone();
    let a = Arc::clone(&app);
    let fresh = tokio::spawn(async move {
        let provider = a.provider("github").unwrap();
        let stale = s.get("github", "default").await.unwrap();
        (
            host::renewal::fresh(&s, &provider, "default", chrono::Duration::seconds(60))
                .await
                .map(drop),
            host::renewal::renew_now(&s, &provider, "default", &stale)
                .await
                .map(drop),
        )
    });
    let s = store.clone();
    let locked = tokio::spawn(async move {
        let mut lock = s.lock("github", "default").await?;
        let record = lock.get().await?;
        lock.save(&record).await
    });
    let s = store.clone();
    let saved = tokio::spawn(async move {
        let record = s.get("github", "default").await.unwrap();
        let mut copy = record.clone();
        copy.account = "copy".into();
        (
            s.save(&copy).await.map(drop),
            s.delete("github", "copy").await,
        )
    });
    assert!(loaded.await.unwrap().unwrap().is_some());
    got.await.unwrap().unwrap();
    let (providers, accounts, records, check) = listed.await.unwrap();
    assert!(providers.unwrap().contains("github"));
    assert_eq!(accounts.unwrap(), ["default"]);
    assert!(!records.unwrap().is_empty());
    check.unwrap();
    let (fresh, now) = fresh.await.unwrap();
    fresh.unwrap();
    now.unwrap();
    locked.await.unwrap().unwrap();
    let (saved, deleted) = saved.await.unwrap();
    saved.unwrap();
    assert!(deleted.unwrap());
    let other = tempfile::tempdir().unwrap();
    let target =
        host::Store::open(host::store::StoreOptions::file(&other.path().join("data"))).unwrap();
    let s = store.clone();
    let copied = tokio::spawn(async move { s.copy_to(&target, false).await });
    assert_eq!(copied.await.unwrap().unwrap().copied, 1);

    // Providers, flows and the login driver.
    let a = Arc::clone(&app);
    let flows = tokio::spawn(async move {
        let provider = a.provider("github").unwrap();
        let flow = provider.flow("oauth2").await.unwrap();
        let typed = a.github().oauth2().await.unwrap();
        let device = a.github().device().await.unwrap();
        let auth = flow
            .authorize(AuthorizeRequest::with_redirect(
                "http://127.0.0.1:9/callback",
            ))
            .await
            .unwrap();
        let refused = flow
            .exchange(
                auth.pending,
                ExchangeInput::from_query("state=wrong&code=x"),
            )
            .await;
        let stored = a.store().get("github", "default").await.unwrap();
        let refreshed = typed.refresh(&stored.credential).await.map(drop);
        let identity = flow.identify(&stored.credential).await;
        drop(device);
        (refused.is_err(), refreshed, identity)
    });
    let (refused, refreshed, identity) = flows.await.unwrap();
    assert!(refused);
    refreshed.unwrap();
    assert!(identity.is_some());
    let a = Arc::clone(&app);
    let driven = tokio::spawn(async move {
        let flow = a.provider("github").unwrap().flow("oauth2").await.unwrap();
        let mut options = LoginOptions::default();
        options.timeout = Some(Duration::from_millis(200));
        host::login(flow.as_ref(), &options, &NoUi).await
    });
    assert!(driven.await.unwrap().is_err(), "nobody came back");
    // Borrowed, not moved: the futures are `Send` as they are.
    assert_send(app.token("github", "default", d))
        .await
        .unwrap();
    assert_send(app.store().load("github", "default"))
        .await
        .unwrap();
    assert_send(app.session("github", "default")).await.unwrap();
}
