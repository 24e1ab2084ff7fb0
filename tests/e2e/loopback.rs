//! The loopback listener survives hostile requests without ending the wait.

use std::time::Duration;

use host::{Loopback, Page};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn raw_request(port: u16, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn hostile_requests_get_error_pages_and_the_real_callback_still_arrives() {
    let mut listener = Loopback::bind(0).await.unwrap();
    let port = listener.port();
    assert!(listener.redirect_uri().starts_with("http://127.0.0.1:"));

    // A connection that never finishes its request must not block anyone.
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    idle.write_all(b"GET /callback?code=").await.unwrap();

    let wrong_method = raw_request(
        port,
        b"POST /callback?code=x&state=y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(wrong_method.starts_with("HTTP/1.1 405"), "{wrong_method}");
    let wrong_path = raw_request(port, b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(wrong_path.starts_with("HTTP/1.1 404"), "{wrong_path}");
    let huge = format!(
        "GET /callback?code={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(20_000)
    );
    let oversized = raw_request(port, huge.as_bytes()).await;
    assert!(!oversized.contains("200 OK"), "{oversized}");
    let garbage = raw_request(port, b"\x16\x03\x01 not http at all\r\n\r\n").await;
    assert!(!garbage.contains("200 OK"), "{garbage}");

    // None of those reached the caller; a real callback does, and its page escapes text.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}?code=c&state=s", listener.redirect_uri());
    let request =
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() });
    let callback = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(callback.query, "code=c&state=s");
    callback.reply(Page::Rejected("<script>alert(1)</script>".into()));
    let page = request.await.unwrap();
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>"),
        "{page}"
    );
    drop(idle);
}

#[tokio::test]
async fn a_hundred_idle_connections_do_not_hold_up_the_real_callback() {
    let mut listener = Loopback::bind(0).await.unwrap();
    let port = listener.port();
    // Connections that send half a request and then nothing: each would hold a slot until
    // its 5 s header timeout; 100 of them used to delay the callback by 15 s.
    let mut idle = Vec::new();
    for _ in 0..100 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET /callback?code=").await.unwrap();
        idle.push(s);
    }
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}?code=c&state=s", listener.redirect_uri());
    let request = tokio::spawn(async move { client.get(url).send().await.unwrap().status() });
    // Well before the first header timeout (5 s) could have freed a slot.
    let callback = tokio::time::timeout(Duration::from_secs(4), listener.next())
        .await
        .expect("the real callback arrives while the idle connections are still open")
        .unwrap();
    callback.reply(Page::Success);
    assert_eq!(request.await.unwrap(), 200);
    drop(idle);
}
