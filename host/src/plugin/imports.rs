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
use crate::http::{HttpClient, HttpError};
use crate::text::sanitize;

/// A trap raised by the host because a limit was hit: kept typed to report it clearly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitHit {
    /// Linear memory would grow past the limit.
    #[error("the plugin tried to use more than {0} MiB of memory")]
    Memory(u64),
    /// The guest ran longer than its CPU budget.
    #[error("the plugin ran longer than its {0} ms CPU-time limit")]
    Cpu(u64),
}

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
    pub(crate) cpu_budget: Duration,
    pub(crate) output: OutputPipe,
    /// Bytes the `log` import may still write in this call, and what it had to drop.
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
                }),
            },
            table: ResourceTable::new(),
            limits,
            started: Instant::now(),
            host_time: Duration::ZERO,
            in_host_since: None,
            cpu_budget,
            output,
            log_budget: max_output,
            log_dropped: 0,
            plugin,
        }
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

    /// Called on every crossing between the guest and the host.
    pub(crate) fn crossing(&mut self, hook: wasmtime::CallHook) {
        match hook {
            wasmtime::CallHook::CallingHost => self.in_host_since = Some(Instant::now()),
            wasmtime::CallHook::ReturningFromHost => {
                if let Some(since) = self.in_host_since.take() {
                    self.host_time += since.elapsed();
                }
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
                "plugin log: {} more bytes dropped (at most {} a call)",
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

/// Memory, table and instance limits of one call.
pub(crate) struct Limits {
    pub(crate) memory_bytes: usize,
    pub(crate) hit: Option<LimitHit>,
}

impl wasmtime::ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            let hit = LimitHit::Memory((self.memory_bytes >> 20) as u64);
            self.hit = Some(hit);
            return Err(wasmtime::Error::new(hit));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
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
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, SendError> {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|e| SendError::InvalidUrl(e.to_string()))?;
        self.allow.check(&url).map_err(SendError::Denied)?;
        self.client
            .send_to(url, request)
            .await
            .map_err(SendError::Http)
    }
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
            use crate::http::HttpError;
            use crate::text::sanitize;

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
                    // The log counts against the same per-call budget as stdout and stderr.
                    if message.len() > self.log_budget {
                        self.log_budget = 0;
                        self.log_dropped = self.log_dropped.saturating_add(message.len());
                        return;
                    }
                    self.log_budget -= message.len();
                    let message = sanitize(&message, 2000);
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
