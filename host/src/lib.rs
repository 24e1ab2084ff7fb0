//! A sandboxed auth-flow runtime: turns a person's interaction (a browser consent, a device
//! code, a pasted key) into working API credentials, and keeps them fresh.
//!
//! - [`flow`]: the [`AuthFlow`](flow::AuthFlow) trait every flow implements, and its values;
//! - [`provider`]: providers with lazily built, cached flows, and the [`Registry`](provider::Registry);
//! - [`credentials`]: schema-validated app credentials and the [`SecretString`](credentials::SecretString);
//! - [`oauth2`]: the native [`OAuth2Flow`](oauth2::OAuth2Flow);
//! - [`providers`]: built-in providers (`github`);
//! - [`config`]: layered configuration;
//! - [`http`]: the hardened HTTP client all provider traffic goes through.

pub mod config;
pub mod credentials;
pub mod device;
pub mod flow;
pub mod http;
pub mod loopback;
pub mod oauth2;
pub mod plugin;
pub mod provider;
pub mod providers;
pub mod store;
