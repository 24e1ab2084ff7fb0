//! What one plugin call's `Store` holds, and the host functions the guest imports.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::sandbox::AllowList;
use crate::net::http::{HttpClient, HttpError};
use crate::util::text::sanitize;

/// A trap raised by the host because a limit was hit: kept typed to report it clearly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitHit {
    /// Linear memory would grow past the limit.
    #[error("the plugin tried to use more than {0} MiB of memory")]
    Memory(u64),
    /// The guest ran longer than its CPU budget.
    #[error("the plugin ran longer than its {0} ms CPU-time limit")]
    Cpu(u64),
    /// The call ran past its wall-clock limit while the guest computed (a guest whose host
    /// calls all return at once never lets the caller's timer fire).
    #[error("the plugin did not finish within {}s", .0.as_secs())]
    Wall(Duration),
}

/// The longest message the `log` import shows, in characters.
pub(crate) const LOG_MESSAGE_CAP: usize = 2000;

/// What a logged line costs the call's log budget beyond its message: its level, time and
/// plugin name.
pub(crate) const LOG_LINE_COST: usize = 64;

/// Per-call state.
pub(crate) struct StoreState {
    wasi: WasiCtx,
    http_ctx: WasiHttpCtx,
    hooks: HttpHooks,
    table: ResourceTable,
    pub(crate) limits: Limits,
    /// When the call started, and how long the guest has spent inside host functions (HTTP,
    /// WASI clocks and polls, the log): the CPU deadline counts only the rest.
    pub(crate) started: Instant,
    host_time: Duration,
    in_host_since: Option<Instant>,
    /// Host frames entered from the guest and not yet left: a host function may call into the
    /// guest (its allocator, for an answer) and that code into the host again (a libcall).
    host_depth: u32,
    pub(crate) cpu_budget: Duration,
    /// The call's wall-clock limit, checked by the epoch callback too.
    pub(crate) wall_limit: Duration,
    pub(crate) output: OutputPipe,
    /// Bytes the `log` import may still write in this call, and the messages it dropped.
    log_budget: usize,
    log_dropped: usize,
    pub(crate) plugin: String,
}

impl StoreState {
    pub(crate) fn new(
        plugin: String,
        http: HttpClient,
        allow: AllowList,
        limits: Limits,
        cpu_budget: Duration,
        wall_limit: Duration,
        max_output: usize,
    ) -> Self {
        let output = OutputPipe::new(max_output);
        // Nothing is granted: no preopened folders, no environment, no arguments, no network
        // (no socket address passes the check, no name lookup). Random and clocks stay.
        let wasi = WasiCtx::builder()
            .stdout(output.clone())
            .stderr(output.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        Self {
            wasi,
            http_ctx: WasiHttpCtx::new(),
            hooks: HttpHooks {
                http: Arc::new(PluginHttp {
                    client: http,
                    allow,
                    no_answer: std::sync::Mutex::new(None),
                }),
            },
            table: ResourceTable::new(),
            limits,
            started: Instant::now(),
            host_time: Duration::ZERO,
            in_host_since: None,
            host_depth: 0,
            cpu_budget,
            wall_limit,
            output,
            log_budget: max_output,
            log_dropped: 0,
            plugin,
        }
    }

    /// What the plugin's last request got, when it was no answer to act on (a maintenance
    /// page, a redirect, a server error, no response at all).
    pub(crate) fn no_answer(&self) -> Option<String> {
        self.hooks
            .http
            .no_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// CPU time the guest has used so far: wall time minus the time spent in host functions
    /// (a plugin waiting on HTTP or sleeping is not computing).
    pub(crate) fn guest_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time())
    }

    /// Time spent in host functions so far, the current one included.
    pub(crate) fn host_time(&self) -> Duration {
        self.host_time + self.in_host_since.map_or(Duration::ZERO, |t| t.elapsed())
    }

    /// Called on every crossing between the guest and the host. Time is the host's from a
    /// host function's entry to its return, less the guest code it calls meanwhile (the
    /// guest's allocator, given an HTTP answer) and with the host calls that code makes; the
    /// epoch callback's libcall is a host call too.
    pub(crate) fn crossing(&mut self, hook: wasmtime::CallHook) {
        use wasmtime::CallHook as H;
        match hook {
            H::CallingHost => {
                self.host_depth += 1;
                self.host_clock(true);
            }
            H::ReturningFromHost => {
                self.host_depth = self.host_depth.saturating_sub(1);
                self.host_clock(false);
            }
            // The guest called from inside a host function: its own time again, until it
            // returns there.
            H::CallingWasm if self.host_depth > 0 => self.host_clock(false),
            H::ReturningFromWasm if self.host_depth > 0 => self.host_clock(true),
            _ => {}
        }
    }

    /// Starts or stops the clock of host time.
    fn host_clock(&mut self, running: bool) {
        match (running, self.in_host_since) {
            (true, None) => self.in_host_since = Some(Instant::now()),
            (false, Some(since)) => {
                self.host_time += since.elapsed();
                self.in_host_since = None;
            }
            _ => {}
        }
    }

    /// Sends what the guest printed to the log.
    pub(crate) fn flush_output(&self, call: &str) {
        let (text, dropped) = self.output.take();
        for line in String::from_utf8_lossy(&text).lines() {
            tracing::info!(plugin = %self.plugin, call, "plugin output: {}", sanitize(line, 500));
        }
        if dropped > 0 {
            tracing::warn!(plugin = %self.plugin, call, "plugin output: {dropped} more bytes dropped");
        }
        if self.log_dropped > 0 {
            tracing::warn!(
                plugin = %self.plugin,
                call,
                "plugin log: {} more messages dropped (at most {} bytes a call)",
                self.log_dropped,
                self.output.cap()
            );
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http_ctx,
        }
    }
}

/// Memory, table and instance limits of one call: the memory limit is for all of the
/// instance's linear memories together (a component may hold several), and so is the
/// table limit for its tables.
pub(crate) struct Limits {
    pub(crate) memory_bytes: usize,
    pub(crate) hit: Option<LimitHit>,
    /// Bytes of linear memory, and table elements, the instance holds.
    memory: Total,
    tables: Total,
}

/// Table elements an instance may hold, all its tables together.
pub(crate) const TABLE_ELEMENTS: usize = 1_000_000;

/// What an instance's memories (or tables) hold together.
#[derive(Default)]
struct Total {
    used: usize,
    /// The last grow allowed, `(current, desired)`: undone if it then fails.
    last: Option<(usize, usize)>,
}

impl Total {
    /// Counts one memory (or table) growing from `current` to `desired` if the total stays
    /// within `limit`; every one is created through here, from 0.
    fn grow(&mut self, current: usize, desired: usize, limit: usize) -> bool {
        let total = (self.used - current.min(self.used)).saturating_add(desired);
        if total > limit {
            return false;
        }
        self.last = Some((current, desired));
        self.used = total;
        true
    }

    /// The grow allowed last did not happen (past the memory's own maximum, say).
    fn undo(&mut self) {
        if let Some((current, desired)) = self.last.take() {
            self.used = self.used.saturating_sub(desired) + current;
        }
    }
}

impl Limits {
    /// The limits of one call: `memory_bytes` of linear memory in all.
    pub(crate) fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            hit: None,
            memory: Total::default(),
            tables: Total::default(),
        }
    }
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if !self.memory.grow(current, desired, self.memory_bytes) {
            let hit = LimitHit::Memory((self.memory_bytes >> 20) as u64);
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.tables.grow(current, desired, TABLE_ELEMENTS))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables.undo();
        Ok(())
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        16
    }
}

/// The guest's stdout and stderr: keeps the first bytes up to a cap, counts the rest, and never
/// fails a write (a chatty plugin must not crash on a full buffer).
#[derive(Clone)]
pub(crate) struct OutputPipe {
    inner: Arc<Mutex<(Vec<u8>, usize)>>,
    cap: usize,
}

impl OutputPipe {
    fn new(cap: usize) -> Self {
        Self {
            inner: Arc::default(),
            cap,
        }
    }

    fn cap(&self) -> usize {
        self.cap
    }

    fn take(&self) -> (Vec<u8>, usize) {
        std::mem::take(&mut *self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for OutputPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for OutputPipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for OutputPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(inner.0.len()).min(buf.len());
        inner.0.extend_from_slice(&buf[..room]);
        inner.1 += buf.len() - room;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The plugin's HTTP: the allow-list, then the hardened client.
pub(crate) struct PluginHttp {
    client: HttpClient,
    allow: AllowList,
    /// What the last request got when it was no answer to act on (see [`no_answer`]); `None`
    /// when it got one, or nothing was sent.
    no_answer: std::sync::Mutex<Option<String>>,
}

/// What a response is, when it is no answer a flow could act on: a redirect, a server error,
/// or a body that is neither JSON nor a form (a maintenance page, a captive portal, a proxy's
/// error page). The same things a native flow calls "no answer"
/// ([`FlowError::NoAnswer`](crate::flow::FlowError::NoAnswer)).
fn no_answer(response: &http::Response<Vec<u8>>) -> Option<String> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::util::text::sanitize(v, 60));
    let described = |what: &str| {
        Some(match &content_type {
            Some(ct) => format!("HTTP {status} ({ct}){what}"),
            None => format!("HTTP {status}{what}"),
        })
    };
    if (300..400).contains(&status) {
        return described(", a redirect");
    }
    if status >= 500 {
        return described("");
    }
    let body = response.body();
    let form = content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if body.is_empty() || form || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return None;
    }
    described(", not JSON")
}

/// Why a plugin request was not sent or not answered.
pub(crate) enum SendError {
    Denied(String),
    InvalidUrl(String),
    Http(HttpError),
}

impl PluginHttp {
    /// Checks and sends one request.
    pub(crate) async fn send(
        &self,
        mut request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, SendError> {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|e| SendError::InvalidUrl(e.to_string()))?;
        self.allow.check(&url).map_err(SendError::Denied)?;
        connection_headers_removed(request.headers_mut(), &url)?;
        let outcome = self
            .client
            .send_to(url, request)
            .await
            .map_err(SendError::Http);
        let heard = match &outcome {
            Ok(response) => no_answer(response),
            Err(SendError::Http(e))
                if e.is_transient() || matches!(e, HttpError::TooLarge { .. }) =>
            {
                Some(format!("no answer ({e})"))
            }
            Err(_) => None,
        };
        *self.no_answer.lock().unwrap_or_else(|e| e.into_inner()) = heard;
        outcome
    }
}

/// Headers that belong to the connection, not to the request, which the client sets itself
/// (RFC 9110 §7.6.1; what `wasi:http` forbids, and the body's framing).
const CONNECTION_HEADERS: [&str; 12] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "content-length",
    "expect",
];

/// Removes what a plugin may not say about the connection: the framing, hop-by-hop and proxy
/// headers are dropped (the client sets its own), and a `Host` other than the URL's is
/// refused: it would ask a server shared by several names (a proxy, a CDN) for a host the
/// allow-list never saw.
fn connection_headers_removed(
    headers: &mut http::HeaderMap,
    url: &url::Url,
) -> Result<(), SendError> {
    // A request has a few headers: each is looked up in the list, not the list in the map.
    let dropped: Vec<http::HeaderName> = headers
        .keys()
        .filter(|k| CONNECTION_HEADERS.contains(&k.as_str()))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
    if let Some(host) = headers.remove(http::header::HOST) {
        // The same host and port as the URL's, however written (`wasi:http` sends the
        // authority as the guest gave it: an explicit default port, an IP in another form).
        let same = host
            .to_str()
            .ok()
            .filter(|h| !h.contains(['/', '?', '#', '@']))
            .and_then(|h| url::Url::parse(&format!("{}://{h}/", url.scheme())).ok())
            .is_some_and(|h| {
                h.host() == url.host() && h.port_or_known_default() == url.port_or_known_default()
            });
        if !same {
            return Err(SendError::Denied(
                "the Host header must be the URL's host (it is set from the URL)".into(),
            ));
        }
    }
    Ok(())
}

/// The host functions a plugin imports (`http`, `log`), the same code for every WIT version:
/// the versions' types have the same shapes.
macro_rules! plugin_imports {
    ($version:ident) => {
        mod $version {
            use std::sync::Arc;

            use super::super::bindings::$version::integrations::auth::{
                http as http_wit, log as log_wit, types,
            };
            use super::{SendError, StoreState};
            use crate::net::http::HttpError;
            use crate::util::text::sanitize;

            impl types::Host for StoreState {}

            impl http_wit::Host for StoreState {
                async fn send(
                    &mut self,
                    req: http_wit::Request,
                ) -> Result<http_wit::Response, http_wit::HttpError> {
                    use http_wit::{HttpError as E, Method};
                    let method = match req.method {
                        Method::Get => http::Method::GET,
                        Method::Post => http::Method::POST,
                        Method::Put => http::Method::PUT,
                        Method::Patch => http::Method::PATCH,
                        Method::Delete => http::Method::DELETE,
                        Method::Head => http::Method::HEAD,
                    };
                    let mut builder = http::Request::builder().method(method).uri(&req.url);
                    for (name, value) in &req.headers {
                        builder = builder.header(name, value);
                    }
                    let request = builder
                        .body(req.body)
                        .map_err(|e| E::InvalidUrl(sanitize(&e.to_string(), 200)))?;
                    let http = Arc::clone(&self.hooks.http);
                    match http.send(request).await {
                        Ok(response) => {
                            let headers = response
                                .headers()
                                .iter()
                                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                                .collect();
                            Ok(http_wit::Response {
                                status: response.status().as_u16(),
                                headers,
                                body: response.into_body(),
                            })
                        }
                        Err(SendError::Denied(why)) => {
                            tracing::warn!(plugin = %self.plugin, "denied a plugin request: {why}");
                            Err(E::Denied(why))
                        }
                        Err(SendError::InvalidUrl(why)) => Err(E::InvalidUrl(why)),
                        Err(SendError::Http(HttpError::Timeout { .. })) => Err(E::Timeout),
                        Err(SendError::Http(HttpError::TooLarge { limit, .. })) => {
                            Err(E::TooLarge(limit as u64))
                        }
                        Err(SendError::Http(HttpError::InsecureUrl { host })) => {
                            Err(E::Denied(format!("plain http to {host}")))
                        }
                        Err(SendError::Http(e @ HttpError::NotPublic { .. })) => {
                            tracing::warn!(plugin = %self.plugin, "denied a plugin request: {e}");
                            Err(E::Denied(e.to_string()))
                        }
                        Err(SendError::Http(e)) => Err(E::Connect(e.to_string())),
                    }
                }
            }

            impl log_wit::Host for StoreState {
                async fn log(&mut self, level: log_wit::Level, message: String) {
                    use log_wit::Level;
                    // The log has a per-call budget of its own, as large as stdout's and
                    // stderr's; each line costs what it shows, its prefix included (empty
                    // messages would otherwise flood the log for free).
                    let message = sanitize(&message, $crate::plugin::imports::LOG_MESSAGE_CAP);
                    let cost = message.len() + $crate::plugin::imports::LOG_LINE_COST;
                    if cost > self.log_budget {
                        self.log_budget = 0;
                        self.log_dropped = self.log_dropped.saturating_add(1);
                        return;
                    }
                    self.log_budget -= cost;
                    let plugin = &self.plugin;
                    match level {
                        // At debug, marked: release builds of the command leave the trace
                        // level out (the `cli` feature), and a plugin's author debugging with
                        // the installed `host` must still see these (`-v`).
                        Level::Trace => tracing::debug!(%plugin, level = %"trace", "{message}"),
                        Level::Debug => tracing::debug!(%plugin, "{message}"),
                        Level::Info => tracing::info!(%plugin, "{message}"),
                        Level::Warn => tracing::warn!(%plugin, "{message}"),
                        Level::Error => tracing::error!(%plugin, "{message}"),
                    }
                }
            }
        }
    };
}

plugin_imports!(v0_1);
plugin_imports!(v0_2);

/// `wasi:http` hooks: outgoing requests (JavaScript's `fetch`) take the same path as the
/// `http` import.
pub(crate) struct HttpHooks {
    http: Arc<PluginHttp>,
}

type WasiBody = wasmtime_wasi_http::WasiBody;
type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> Box<
        dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
            + Send,
    > {
        use http_body_util::BodyExt;
        use wasmtime_wasi_http::Error as E;
        let http = Arc::clone(&self.http);
        let max = http.client.policy().max_body;
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = http_body_util::Limited::new(body, max)
                .collect()
                .await
                .map_err(|_| E::HttpRequestBodySize(Some(max as u64)))?
                .to_bytes();
            let request = http::Request::from_parts(parts, body.to_vec());
            let response = http.send(request).await.map_err(|e| match e {
                SendError::Denied(why) => {
                    tracing::warn!("denied a plugin wasi:http request: {why}");
                    E::HttpRequestDenied
                }
                SendError::InvalidUrl(_) => E::HttpRequestUriInvalid,
                SendError::Http(HttpError::Timeout { .. }) => E::ConnectionTimeout,
                SendError::Http(HttpError::TooLarge { limit, .. }) => {
                    E::HttpResponseBodySize(Some(limit as u64))
                }
                SendError::Http(HttpError::InsecureUrl { .. }) => E::HttpRequestDenied,
                SendError::Http(e @ HttpError::NotPublic { .. }) => {
                    tracing::warn!("denied a plugin wasi:http request: {e}");
                    E::HttpRequestDenied
                }
                SendError::Http(e) => E::InternalError(Some(e.to_string())),
            })?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Full::new(bytes::Bytes::from(body))
                .map_err(|never| match never {})
                .boxed_unsync();
            let done: IoFuture = Box::new(async { Ok(()) });
            Ok((http::Response::from_parts(parts, body), done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn the_memory_and_table_limits_are_for_the_whole_instance() {
        const MIB: usize = 1 << 20;
        let mut limits = Limits::new(100 * MIB);
        // Two memories of 60 MiB: the second is one too many, whatever each alone would be.
        assert!(limits.memory_growing(0, 60 * MIB, None).unwrap());
        assert!(limits.memory_growing(0, 60 * MIB, None).is_err());
        assert_eq!(limits.hit, Some(LimitHit::Memory(100)));
        // The first may still grow within what is left, and a second fit beside it.
        assert!(limits.memory_growing(60 * MIB, 90 * MIB, None).unwrap());
        assert!(limits.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(limits.memory_growing(10 * MIB, 11 * MIB, None).is_err());
        // A grow allowed here that then fails (past the memory's own maximum) is undone.
        let mut limits = Limits::new(100 * MIB);
        assert!(limits.memory_growing(0, 10 * MIB, None).unwrap());
        assert!(limits.memory_growing(10 * MIB, 90 * MIB, None).unwrap());
        limits
            .memory_grow_failed(wasmtime::Error::msg("past its maximum"))
            .unwrap();
        assert!(limits.memory_growing(0, 80 * MIB, None).unwrap());

        let mut limits = Limits::new(100 * MIB);
        assert!(limits.table_growing(0, 600_000, None).unwrap());
        assert!(!limits.table_growing(0, 600_000, None).unwrap());
        assert!(limits.table_growing(600_000, 1_000_000, None).unwrap());
        assert!(!limits.table_growing(0, 1, None).unwrap());
    }

    #[test]
    fn a_plugin_cannot_speak_for_the_connection_or_another_host() {
        let url = url::Url::parse("https://api.example.com:8443/token").unwrap();
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json"),
            ("connection", "close, x-foo"),
            ("upgrade", "h2c"),
            ("content-length", "3"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic eA=="),
            ("host", "API.example.com:8443"),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        assert!(connection_headers_removed(&mut headers, &url).is_ok());
        assert_eq!(
            headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["content-type"]
        );
        for same in ["api.example.com:8443", "API.EXAMPLE.COM:8443"] {
            headers.insert("host", same.parse().unwrap());
            assert!(
                connection_headers_removed(&mut headers, &url).is_ok(),
                "{same}"
            );
        }
        let default_port = url::Url::parse("https://127.0.0.1/token").unwrap();
        for same in ["127.0.0.1:443", "127.1", "127.0.0.1"] {
            headers.insert("host", same.parse().unwrap());
            assert!(
                connection_headers_removed(&mut headers, &default_port).is_ok(),
                "{same}"
            );
        }
        for other in [
            "internal-admin.example",
            "api.example.com",
            "api.example.com:8443@evil.example",
            "api.example.com:8443/x",
        ] {
            headers.insert("host", other.parse().unwrap());
            assert!(
                matches!(
                    connection_headers_removed(&mut headers, &url),
                    Err(SendError::Denied(_))
                ),
                "{other}"
            );
        }
    }
}
