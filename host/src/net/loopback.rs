//! The loopback redirect listener (RFC 8252 §7.3).
//!
//! Binds `127.0.0.1` only (an ephemeral port unless told), or the loopback address, port and
//! path of a fixed redirect URI ([`Loopback::bind_redirect`]), and hands every `GET /callback`
//! (or that path) to the caller, who decides (by asking the flow) whether it is the real one. Everything else
//! gets an error page and does not end the wait: a wrong method or path, an oversized request
//! (hyper refuses it), a connection that never finishes its request (dropped after a few
//! seconds, without holding up other connections). Pages never echo a parameter unescaped and
//! never redirect. The listener closes when dropped.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// How long a connection may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head accepted (hyper's minimum buffer).
const MAX_REQUEST: usize = 8192;
/// Connections open at once; beyond that, the oldest that has sent nothing is closed.
const MAX_CONNECTIONS: usize = 32;

/// A callback request, waiting for the page to answer it with.
#[derive(Debug)]
pub struct Callback {
    /// The raw query string.
    pub query: String,
    reply: oneshot::Sender<Page>,
}

impl Callback {
    /// Answers the browser with `page`.
    pub fn reply(self, page: Page) {
        let _ = self.reply.send(page);
    }
}

/// What the browser is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// The login worked: "you can close this tab".
    Success,
    /// This request was not the expected callback; the wait goes on.
    Rejected(String),
    /// The login failed.
    Failed(String),
}

/// The running listener.
#[derive(Debug)]
pub struct Loopback {
    addr: SocketAddr,
    /// The redirect URI it answers, as sent to the provider.
    redirect_uri: String,
    callbacks: mpsc::Receiver<Callback>,
    task: tokio::task::JoinHandle<()>,
    /// One clone per open connection: the count says how many are still being answered.
    connections: Arc<()>,
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Loopback {
    /// Binds `127.0.0.1:port` (0 for an ephemeral port) and starts serving `/callback`.
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        Ok(Self::serve(
            listener,
            addr,
            "/callback",
            format!("http://{addr}/callback"),
        ))
    }

    /// Binds where a fixed redirect URI points (see [`redirect_target`]) and starts serving its
    /// path; the provider is sent the URI as given.
    pub async fn bind_redirect(uri: &url::Url) -> Result<Self, RedirectError> {
        let (addr, path) = redirect_target(uri)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RedirectError::Listen { addr, source })?;
        Ok(Self::serve(listener, addr, &path, uri.to_string()))
    }

    fn serve(listener: TcpListener, addr: SocketAddr, path: &str, redirect_uri: String) -> Self {
        let (tx, callbacks) = mpsc::channel(8);
        let connections = Arc::new(());
        let path: Arc<str> = Arc::from(path);
        let task = tokio::spawn(serve(listener, path, tx, Arc::clone(&connections)));
        Self {
            addr,
            redirect_uri,
            callbacks,
            task,
            connections,
        }
    }

    /// Stops accepting, then gives the pages already answered up to a second to reach the
    /// browser before closing.
    pub async fn shutdown(mut self) {
        self.callbacks.close();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while Arc::strong_count(&self.connections) > 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The redirect URI it answers: `http://127.0.0.1:PORT/callback`, or the fixed one.
    pub fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    /// The port bound.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next callback request.
    pub async fn next(&mut self) -> Option<Callback> {
        self.callbacks.recv().await
    }
}

/// Why a fixed redirect URI cannot be listened on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// It does not point at this machine's loopback interface over plain `http`.
    #[error(
        "the redirect URI {uri} {problem}: a login here receives the provider's redirect on \
         this machine, at a loopback http URI such as http://127.0.0.1:8765/callback \
         (registered with the provider)"
    )]
    NotLoopback {
        /// The URI, sanitized.
        uri: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Its address could not be bound (the port is taken, or needs privileges).
    #[error("cannot listen on {addr}, where the redirect URI points")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The loopback address and path a fixed redirect URI points at: an `http` URI whose host is
/// `127.0.0.1`, `[::1]` or `localhost` (listened on at `127.0.0.1`), on its port (80 when it
/// names none), without user information or a fragment. Its query, if any, comes back with
/// the callback and is ignored.
pub fn redirect_target(uri: &url::Url) -> Result<(SocketAddr, String), RedirectError> {
    let refuse = |problem| RedirectError::NotLoopback {
        uri: shown(uri),
        problem,
    };
    if uri.scheme() != "http" {
        return Err(refuse(if uri.scheme() == "https" {
            "is https (nothing here holds a certificate for the loopback address)"
        } else {
            "is not an http URI"
        }));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        return Err(refuse("holds user information"));
    }
    if uri.fragment().is_some() {
        return Err(refuse("has a fragment (RFC 6749 forbids one)"));
    }
    let ip = match uri.host() {
        Some(url::Host::Ipv4(ip)) if ip == Ipv4Addr::LOCALHOST => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) if ip == Ipv6Addr::LOCALHOST => IpAddr::V6(ip),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
        _ => return Err(refuse("does not point at this machine's loopback address")),
    };
    let port = uri.port_or_known_default().unwrap_or(80);
    Ok((SocketAddr::new(ip, port), uri.path().to_owned()))
}

/// A redirect URI as messages show it: without user information, sanitized.
pub(crate) fn shown(uri: &url::Url) -> String {
    let mut uri = uri.clone();
    let _ = uri.set_username("");
    let _ = uri.set_password(None);
    crate::util::text::sanitize(uri.as_str(), 300)
}

/// An open connection: how to close it, and whether it has sent a request yet.
struct Open {
    task: tokio::task::AbortHandle,
    requested: Arc<std::sync::atomic::AtomicBool>,
}

async fn serve(
    listener: TcpListener,
    path: Arc<str>,
    tx: mpsc::Sender<Callback>,
    connections: Arc<()>,
) {
    use std::sync::atomic::Ordering;
    let mut open: std::collections::VecDeque<Open> = std::collections::VecDeque::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        open.retain(|c| !c.task.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            // Idle connections (nothing sent yet) must not hold up the real callback: the
            // oldest idle one makes room. When every slot serves a request, the newcomer waits
            // its turn by being refused now (the browser retries the page).
            match open
                .iter()
                .position(|c| !c.requested.load(Ordering::SeqCst))
            {
                Some(i) => {
                    if let Some(c) = open.remove(i) {
                        c.task.abort();
                    }
                }
                None => continue,
            }
        }
        let tx = tx.clone();
        let path = Arc::clone(&path);
        let alive = Arc::clone(&connections);
        let requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&requested);
        let task = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                seen.store(true, Ordering::SeqCst);
                handle(req, Arc::clone(&path), tx.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_REQUEST)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            drop(alive);
        });
        open.push_back(Open {
            task: task.abort_handle(),
            requested,
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    path: Arc<str>,
    tx: mpsc::Sender<Callback>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != &*path {
        return Ok(page(
            StatusCode::NOT_FOUND,
            &Page::Rejected("This is not the login callback.".into()),
        ));
    }
    if req.method() != Method::GET {
        return Ok(page(
            StatusCode::METHOD_NOT_ALLOWED,
            &Page::Rejected("Only GET is accepted here.".into()),
        ));
    }
    let (reply, answer) = oneshot::channel();
    let query = req.uri().query().unwrap_or_default().to_owned();
    if tx.send(Callback { query, reply }).await.is_err() {
        return Ok(page(
            StatusCode::GONE,
            &Page::Failed("The login is no longer waiting.".into()),
        ));
    }
    let shown = answer
        .await
        .unwrap_or(Page::Failed("The login is no longer waiting.".into()));
    let status = match shown {
        Page::Success => StatusCode::OK,
        Page::Rejected(_) | Page::Failed(_) => StatusCode::BAD_REQUEST,
    };
    Ok(page(status, &shown))
}

fn page(status: StatusCode, page: &Page) -> Response<Full<Bytes>> {
    let (title, text) = match page {
        Page::Success => (
            "Logged in",
            "You are logged in. You can close this tab and return to the terminal.",
        ),
        Page::Rejected(why) => ("Not accepted", why.as_str()),
        Page::Failed(why) => ("Login failed", why.as_str()),
    };
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{}</p></body></html>",
        escape(text)
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        "text/html; charset=utf-8".parse().expect("static"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        "no-store".parse().expect("static"),
    );
    headers.insert("referrer-policy", "no-referrer".parse().expect("static"));
    headers.insert(
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'"
            .parse()
            .expect("static"),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Result<(SocketAddr, String), String> {
        redirect_target(&url::Url::parse(uri).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_fixed_redirect_uri_is_listened_for_only_on_the_loopback_interface() {
        let ok = |uri: &str, addr: &str, path: &str| {
            assert_eq!(
                target(uri).unwrap(),
                (addr.parse().unwrap(), path.to_owned()),
                "{uri}"
            );
        };
        ok(
            "http://127.0.0.1:8765/callback",
            "127.0.0.1:8765",
            "/callback",
        );
        ok("http://[::1]:9000/a/b", "[::1]:9000", "/a/b");
        ok("http://LocalHost:1234/cb?x=1", "127.0.0.1:1234", "/cb");
        ok("http://127.0.0.1/cb", "127.0.0.1:80", "/cb");
        for (uri, problem) in [
            ("https://127.0.0.1:8765/cb", "is https"),
            ("ftp://127.0.0.1/cb", "not an http URI"),
            ("http://127.0.0.2:8765/cb", "loopback address"),
            ("http://0.0.0.0:8765/cb", "loopback address"),
            ("http://app.example.com/cb", "loopback address"),
            ("http://localhost.example.com/cb", "loopback address"),
            ("http://user:pw@127.0.0.1:8765/cb", "user information"),
            ("http://127.0.0.1:8765/cb#top", "fragment"),
        ] {
            let err = target(uri).unwrap_err();
            assert!(err.contains(problem), "{uri}: {err}");
            assert!(!err.contains("pw@"), "{uri}: {err}");
        }
    }
}
