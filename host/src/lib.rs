//! A sandboxed auth-flow runtime: turns a person's interaction (a browser consent, a device
//! code, a pasted key) into working API credentials, and keeps them fresh.
//!
//! Log in, then keep a token fresh:
//!
//! ```no_run
//! use host::flow::DeviceCode;
//! use host::{App, LoginOptions, LoginUi, DEFAULT_MIN_VALID};
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
//!   [`Interaction`](flow::Interaction), opaque [`Pending`](flow::Pending) state, typed
//!   [`Credential`]s and one error model, [`FlowError`]. It knows none of its implementations.
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
//! The root holds the names most programs need; the rest is in its module: [`flow`] (the
//! model's values), [`login`](mod@login), [`http`], [`loopback`], [`config`], [`provider`], [`store`],
//! [`session`], [`renewal`], [`oauth2`], [`oidc`], [`catalog`], [`configured`], [`github`].
//!
//! # Features
//! - `plugins` (default): WebAssembly plugin flows (wasmtime).
//! - `cli` (default): the `host` binary (its code is the `cli` module, whose one public item
//!   is `main`).
//! - `postgres` (default): the shared credential store on PostgreSQL (sqlx).
//!
//! With `default-features = false` the library has the flow model, OAuth2, GitHub, the
//! configuration and the file store, without wasmtime, sqlx or the command-line crates.

#![deny(missing_docs)]

mod app;
pub mod config;
pub mod flow;
pub mod login;
mod net;
pub mod oauth2;
pub mod oidc;
#[cfg(feature = "plugins")]
pub mod plugin;
mod providers;
pub mod renewal;
pub mod session;
pub mod store;
mod util;

#[cfg(feature = "cli")]
pub mod cli;

pub use net::{http, loopback};
pub use providers::{catalog, configured, github};

/// Providers: what a flow factory gets, the registry, app credentials and their validation,
/// configuration sections.
pub mod provider {
    pub use crate::providers::app_credentials::{
        AppCredentials, CodeOrigins, FieldIssue, Origin, OriginLookup, ValidationError,
    };
    pub use crate::providers::provider::{
        Provider, ProviderBuilder, ProviderContext, ProviderError, ProviderSource, Registry,
    };
    pub use crate::providers::section::ProviderSection;
}

pub use app::{App, AppError, DEFAULT_MIN_VALID, builtin_defaults};
pub use config::{Config, ConfigError, ConfigLoader};
pub use flow::{AuthFlow, Credential, FlowError, OAuth2Token, async_trait};
pub use login::{LoginOptions, LoginUi, login};
pub use net::http::HttpClient;
pub use provider::{Provider, ProviderSection, Registry};
pub use session::{Session, SessionError};
pub use store::{Record, Store, StoreError};
pub use util::secret::SecretString;
