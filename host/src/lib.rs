//! A sandboxed auth-flow runtime: turns a person's interaction (a browser consent, a device
//! code, a pasted key) into working API credentials, and keeps them fresh.
//!
//! Log in, then keep a token fresh:
//!
//! ```no_run
//! use host::{App, DeviceCode, LoginOptions, LoginUi, DEFAULT_MIN_VALID};
//!
//! /// What the person sees: here, lines on stderr.
//! struct Terminal;
//!
//! impl LoginUi for Terminal {
//!     fn show_url(&self, url: &str) {
//!         eprintln!("Open this URL to log in:\n{url}");
//!     }
//!     fn show_device_code(&self, code: &DeviceCode) {
//!         eprintln!("Enter {} at {}", code.user_code, code.verification_uri);
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Configuration from ~/.config/host/host.toml and HOST_* / GITHUB_CLIENT_ID variables.
//! let app = App::load_default()?;
//! let login = app.login("github", "default", None, &LoginOptions::default(), &Terminal).await?;
//! println!("logged in as {:?}", login.identity);
//!
//! // Later, in any process: a token valid for at least a minute, refreshed when due.
//! let record = app.token("github", "default", DEFAULT_MIN_VALID).await?;
//! let token = record.credential.secret().expect("an OAuth2 token");
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! `examples/login.rs` is this program in full; the end-to-end tests run it against a test
//! provider.
//!
//! # The pieces
//! - The flow model: [`AuthFlow`] (`authorize` → `exchange` → `refresh`) with its
//!   [`Interaction`], opaque [`Pending`] state, typed [`Credential`]s and one error model,
//!   [`FlowError`]. It knows none of its implementations.
//! - [`oauth2`]: the native [`OAuth2Flow`](oauth2::OAuth2Flow) and
//!   [`DeviceFlow`](oauth2::DeviceFlow), with direct access to a configured `oauth2` client;
//!   [`github`]: the built-in provider.
//! - [`Provider`]s own schema-validated app credentials and named flows, built lazily and
//!   cached; a [`Registry`] holds them; [`App`] puts configuration, providers and the
//!   [`Store`] together.
//! - [`login()`] drives any flow's interaction for any front end ([`LoginUi`]);
//!   [`renewal::fresh`] renews with one request however many processes ask (a refresh,
//!   or an unattended grant run again); the [`Store`] only persists, seals and locks.
//! - `plugin` (feature `plugins`, on by default): flows as sandboxed WebAssembly components.
//!
//! # Features
//! - `plugins` (default): WebAssembly plugin flows (wasmtime).
//! - `cli` (default): the `host` binary.
//! - `postgres` (default): the shared credential store on PostgreSQL (sqlx).
//!
//! With `default-features = false` the library has the flow model, OAuth2, GitHub, the
//! configuration and the file store, without wasmtime, sqlx or the command-line crates.

#![deny(missing_docs)]

mod app;
mod config;
mod flow;
mod login;
mod net;
pub mod oauth2;
pub mod oidc;
#[cfg(feature = "plugins")]
pub mod plugin;
mod providers;
pub mod renewal;
mod session;
mod store;
mod util;

pub use providers::{catalog, configured, github};

pub use app::{App, AppError, DEFAULT_MIN_VALID, builtin_defaults};
pub use config::{
    Alias, Config, ConfigError, ConfigLoader, Defaults, ENV_PREFIX, FIELD_PREFIX, Setting,
};
pub use flow::binding::{Applied, Binding, Scheme};
pub use flow::{
    AuthFlow, Authorization, AuthorizeRequest, BoxError, CallbackError, Credential, DeviceCode,
    ExchangeInput, FlowError, Interaction, MAX_PENDING_BYTES, OAuth2Token, Pending, PromptField,
    TokenExtras, async_trait,
};
pub use login::polling::{MAX_INTERVAL, SLOW_DOWN_STEP, poll_device};
pub use login::{DEFAULT_BROWSER_TIMEOUT, LoginError, LoginOptions, LoginUi, Waiting, login};
pub use net::http::{HttpClient, HttpError, HttpPolicy};
pub use net::loopback::{Callback, Loopback, Page, RedirectError, redirect_target};
pub use providers::app_credentials::{
    AppCredentials, CodeOrigins, FieldIssue, Origin, OriginLookup, ValidationError,
};
pub use providers::provider::{
    Provider, ProviderBuilder, ProviderContext, ProviderError, ProviderSource, Registry,
};
pub use providers::section::ProviderSection;
pub use session::{Session, SessionError};
pub use store::{
    BackendKind, CopyReport, DEFAULT_ACCOUNT, DEFAULT_KEY_FILE, DEFAULT_LOCK_TIMEOUT, Record,
    RecordLock, RekeyReport, Store, StoreError, StoreOptions, seal,
};
pub use util::names::{BadName, check_name, env_name_problem};
pub use util::secret::SecretString;
pub use util::text::{error_chain, is_unsafe_char, terminal_text};
