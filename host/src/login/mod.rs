//! Logging in: drives a flow's interaction to a credential, for any front end.
//!
//! [`login`] binds the loopback listener, asks the flow what the user must do, and then
//! - for a redirect, shows the URL and waits for the callback: a forged or stray request is
//!   refused (the browser is told why) and the wait goes on; `access_denied` ends it;
//! - for a device code, shows the code and polls with [`poll_device`]'s schedule;
//! - for a prompt, asks the [`LoginUi`] for answers, again after each refusal, a bounded number
//!   of times.
//!
//! What the person sees is the [`LoginUi`]'s business: the `host` CLI prints and opens a
//! browser, a desktop program might show a dialog, a test may approve the URL itself.

pub(crate) mod polling;

pub use polling::{MAX_INTERVAL, SLOW_DOWN_STEP, poll_device};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::flow::{
    AuthFlow, AuthorizeRequest, CallbackError, Credential, DeviceCode, ExchangeInput, FlowError,
    Interaction, Pending, PromptField,
};
use crate::net::loopback::{Loopback, Page};

/// How long a browser login waits for its callback unless told otherwise.
pub const DEFAULT_BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// How often [`LoginUi::waiting`] is called while waiting.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

/// What the person logging in sees and answers.
#[async_trait]
pub trait LoginUi: Send + Sync {
    /// The authorization URL to open in a browser (a redirect flow).
    fn show_url(&self, url: &str);

    /// The code to enter and where (a device flow).
    fn show_device_code(&self, code: &DeviceCode);

    /// Answers for `fields` (a prompt flow). `refused` says why the previous answers were not
    /// accepted. An error ends the login.
    async fn answer(
        &self,
        fields: &[PromptField],
        refused: Option<&str>,
    ) -> Result<Vec<(String, String)>, LoginError> {
        let _ = (fields, refused);
        Err(LoginError::Input(
            "this front end cannot answer prompts".into(),
        ))
    }

    /// Called about five times a second while waiting for the user, with the time left.
    fn waiting(&self, what: Waiting, left: Duration) {
        let _ = (what, left);
    }

    /// The wait is over, either way.
    fn done_waiting(&self) {}

    /// A request to the callback was refused (forged, stray, wrong state); the wait goes on.
    fn callback_rejected(&self, error: &CallbackError) {
        let _ = error;
    }
}

/// What a login is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Waiting {
    /// The browser's callback.
    Browser,
    /// The user to enter the device code.
    DeviceCode,
    /// The provider's token endpoint, to answer the exchange of the code the browser's
    /// callback brought.
    TokenEndpoint,
}

/// How to log in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginOptions {
    /// Scopes to ask for instead of the configured ones.
    pub scopes: Vec<String>,
    /// The loopback port for the redirect (0: any free port).
    pub port: u16,
    /// How long to wait for the user: [`DEFAULT_BROWSER_TIMEOUT`] for a browser, the code's
    /// lifetime (at most) for a device code.
    pub timeout: Option<Duration>,
    /// Answers to offer a prompt before asking again: after a refusal the UI is asked.
    pub prompt_attempts: usize,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            scopes: Vec::new(),
            port: 0,
            timeout: None,
            prompt_attempts: 3,
        }
    }
}

impl LoginOptions {
    /// Asks for these scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Listens on this loopback port (0, the default: a free one). A flow with a fixed
    /// redirect URI ([`AuthFlow::redirect_uri`]) is listened for
    /// on the port it names; another port asked for here is refused.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Waits at most this long for the user.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Why a login failed. Nothing is stored after a failed login.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The loopback listener could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Listen {
        /// The port asked for.
        port: u16,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The flow's fixed redirect URI cannot be listened on.
    #[error(transparent)]
    Redirect(#[from] crate::net::loopback::RedirectError),
    /// A port was asked for that the flow's fixed redirect URI does not name.
    #[error("asked to listen on port {asked}, but the redirect URI {uri} names port {port}")]
    RedirectPort {
        /// The port asked for.
        asked: u16,
        /// The redirect URI, sanitized.
        uri: String,
        /// Its port.
        port: u16,
    },
    /// The flow could not start the login.
    #[error("cannot start the login")]
    Start(#[source] FlowError),
    /// The user or the provider refused.
    #[error("the login was refused")]
    Refused(#[source] FlowError),
    /// The user did not finish in time.
    #[error("{}", match .waiting {
        Waiting::Browser => format!("no login callback arrived within {}s; nothing was stored", .limit.as_secs()),
        Waiting::DeviceCode => format!("the code was not entered within {}s; nothing was stored", .limit.as_secs()),
        Waiting::TokenEndpoint => format!("the login callback arrived, but the provider's token endpoint did not answer the code's exchange within {}s; nothing was stored", .limit.as_secs()),
    })]
    TimedOut {
        /// What was waited for.
        waiting: Waiting,
        /// How long.
        limit: Duration,
    },
    /// The prompt's answers were refused (the last time).
    #[error("what was entered was not accepted: {0}")]
    NotAccepted(String),
    /// The front end could not provide answers.
    #[error("{0}")]
    Input(String),
    /// The flow failed.
    #[error("the login failed")]
    Failed(#[source] FlowError),
}

/// Logs in through `flow`: shows what the interaction needs through `ui` (a URL, a device
/// code, prompts), waits for or polls the answer, and returns the credential.
pub async fn login(
    flow: &dyn AuthFlow,
    options: &LoginOptions,
    ui: &dyn LoginUi,
) -> Result<Credential, LoginError> {
    // An unattended flow needs nobody: its grant is the whole login.
    if flow.unattended() {
        return flow.obtain().await.map_err(LoginError::Failed);
    }
    // A flow with a fixed redirect URI (the provider accepts only the registered one) is
    // listened for where that points; any other on 127.0.0.1, on the port asked for or a free one.
    let mut listener = match flow.redirect_uri() {
        Some(uri) => {
            let (addr, _) = crate::net::loopback::redirect_target(&uri)?;
            if options.port != 0 && options.port != addr.port() {
                return Err(LoginError::RedirectPort {
                    asked: options.port,
                    uri: crate::net::loopback::shown(&uri),
                    port: addr.port(),
                });
            }
            Loopback::bind_redirect(&uri).await?
        }
        None => Loopback::bind(options.port)
            .await
            .map_err(|source| LoginError::Listen {
                port: options.port,
                source,
            })?,
    };
    let request =
        AuthorizeRequest::with_redirect(listener.redirect_uri()).scopes(options.scopes.clone());
    let auth = flow.authorize(request).await.map_err(LoginError::Start)?;
    match auth.interaction {
        Interaction::Redirect { url } => {
            ui.show_url(&url);
            let limit = options.timeout.unwrap_or(DEFAULT_BROWSER_TIMEOUT);
            // Set while a callback's code is being exchanged: a limit reached then is the
            // token endpoint's silence, not the browser's.
            let exchanging = AtomicBool::new(false);
            let wait = wait_for_callback(&mut listener, flow, auth.pending, ui, &exchanging);
            let waiting = || {
                if exchanging.load(Ordering::Relaxed) {
                    Waiting::TokenEndpoint
                } else {
                    Waiting::Browser
                }
            };
            let outcome = with_progress(ui, waiting, limit, wait).await;
            listener.shutdown().await;
            outcome
        }
        Interaction::DeviceCode(code) => {
            listener.shutdown().await;
            ui.show_device_code(&code);
            let lifetime = Duration::from_secs(code.expires_in);
            let limit = options.timeout.map_or(lifetime, |t| t.min(lifetime));
            let deadline = deadline_after(limit);
            let interval = Duration::from_secs(code.interval);
            let poll = poll_device(flow, auth.pending, interval, deadline);
            let waiting = || Waiting::DeviceCode;
            match with_progress(ui, waiting, limit, async { Ok(poll.await) }).await? {
                Ok(credential) => Ok(credential),
                // Our own deadline passed; before it, the provider said the code expired.
                Err(FlowError::Expired) if Instant::now() >= deadline => {
                    Err(LoginError::TimedOut {
                        waiting: Waiting::DeviceCode,
                        limit,
                    })
                }
                Err(e @ FlowError::Denied { .. }) => Err(LoginError::Refused(e)),
                Err(e) => Err(LoginError::Failed(e)),
            }
        }
        Interaction::Prompt { fields } => {
            listener.shutdown().await;
            prompt(flow, &fields, auth.pending, options.prompt_attempts, ui).await
        }
    }
}

/// `limit` from now; a limit too large for the clock means "practically never" (30 years), not
/// an overflow.
fn deadline_after(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Runs `work`, telling the UI how long is left, until it ends or `limit` passes; `waiting`
/// says what it is waiting for at each moment.
async fn with_progress<T>(
    ui: &dyn LoginUi,
    waiting: impl Fn() -> Waiting,
    limit: Duration,
    work: impl Future<Output = Result<T, LoginError>>,
) -> Result<T, LoginError> {
    let deadline = deadline_after(limit);
    let mut tick = tokio::time::interval(PROGRESS_TICK);
    tokio::pin!(work);
    let outcome = loop {
        tokio::select! {
            outcome = &mut work => break outcome,
            _ = tokio::time::sleep_until(deadline) => {
                break Err(LoginError::TimedOut { waiting: waiting(), limit });
            }
            _ = tick.tick() => ui.waiting(waiting(), deadline.saturating_duration_since(Instant::now())),
        }
    };
    ui.done_waiting();
    outcome
}

async fn wait_for_callback(
    listener: &mut Loopback,
    flow: &dyn AuthFlow,
    pending: Pending,
    ui: &dyn LoginUi,
    exchanging: &AtomicBool,
) -> Result<Credential, LoginError> {
    loop {
        let Some(callback) = listener.next().await else {
            return Err(LoginError::Failed(FlowError::Internal {
                message: "the callback listener stopped",
                source: None,
            }));
        };
        let input = ExchangeInput::from_query(&callback.query);
        exchanging.store(true, Ordering::Relaxed);
        let exchanged = flow.exchange(pending.clone(), input).await;
        exchanging.store(false, Ordering::Relaxed);
        match exchanged {
            Ok(credential) => {
                callback.reply(Page::Success);
                return Ok(credential);
            }
            Err(FlowError::Rejected(e)) => {
                // Not our callback (a forged or stray request): say so, keep waiting.
                tracing::warn!("ignored a request to the callback: {e}");
                callback.reply(Page::Rejected(format!(
                    "This request was not accepted: {e}."
                )));
                ui.callback_rejected(&e);
            }
            Err(e @ FlowError::Denied { .. }) => {
                callback.reply(Page::Failed(
                    "Access was denied. You can close this tab.".into(),
                ));
                return Err(LoginError::Refused(e));
            }
            Err(e) => {
                callback.reply(Page::Failed(
                    "The login failed; the terminal says why.".into(),
                ));
                return Err(LoginError::Failed(e));
            }
        }
    }
}

async fn prompt(
    flow: &dyn AuthFlow,
    fields: &[PromptField],
    pending: Pending,
    attempts: usize,
    ui: &dyn LoginUi,
) -> Result<Credential, LoginError> {
    let mut refused: Option<String> = None;
    for attempt in 1..=attempts.max(1) {
        let answers = ui.answer(fields, refused.as_deref()).await?;
        match flow
            .exchange(pending.clone(), ExchangeInput::new(answers))
            .await
        {
            Ok(credential) => return Ok(credential),
            Err(FlowError::Rejected(CallbackError::Rejected(why))) if attempt < attempts => {
                refused = Some(why);
            }
            Err(FlowError::Rejected(CallbackError::Rejected(why))) => {
                return Err(LoginError::NotAccepted(why));
            }
            Err(e @ FlowError::Denied { .. }) => return Err(LoginError::Refused(e)),
            Err(e) => return Err(LoginError::Failed(e)),
        }
    }
    unreachable!("the last attempt returns")
}
