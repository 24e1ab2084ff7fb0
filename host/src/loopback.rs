//! The loopback redirect listener (RFC 8252 §7.3).
//!
//! Binds `127.0.0.1` only (an ephemeral port unless told), and hands every `GET /callback` to
//! the caller, who decides (by asking the flow) whether it is the real one. Everything else
//! gets an error page and does not end the wait: a wrong method or path, an oversized request
//! (hyper refuses it), a connection that never finishes its request (dropped after a few
//! seconds, without holding up other connections). Pages never echo a parameter unescaped and
//! never redirect. The listener closes when dropped.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
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
    /// Binds `127.0.0.1:port` (0 for an ephemeral port) and starts serving.
    pub async fn bind(port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let (tx, callbacks) = mpsc::channel(8);
        let connections = Arc::new(());
        let task = tokio::spawn(serve(listener, tx, Arc::clone(&connections)));
        Ok(Self {
            addr,
            callbacks,
            task,
            connections,
        })
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

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://{}/callback", self.addr)
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

/// An open connection: how to close it, and whether it has sent a request yet.
struct Open {
    task: tokio::task::AbortHandle,
    requested: Arc<std::sync::atomic::AtomicBool>,
}

async fn serve(listener: TcpListener, tx: mpsc::Sender<Callback>, connections: Arc<()>) {
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
        let alive = Arc::clone(&connections);
        let requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = Arc::clone(&requested);
        let task = tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                seen.store(true, Ordering::SeqCst);
                handle(req, tx.clone())
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
    tx: mpsc::Sender<Callback>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/callback" {
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
