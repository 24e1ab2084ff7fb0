//! Providers: app credentials and configuration sections, the provider and its registry, the
//! catalog, configured providers and the built-in `github`.

pub(crate) mod app_credentials;
pub mod catalog;
pub mod configured;
pub mod github;
pub(crate) mod provider;
pub(crate) mod schema;
pub(crate) mod section;
