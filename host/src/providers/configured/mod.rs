//! Providers made of configuration: any `[providers.NAME]` section with `authorize_url` and
//! `token_url`, or with an OpenID Connect `issuer`, is an OAuth2 provider with the native flows
//! (browser with PKCE; `device` when a device endpoint is known), alone or on top of a
//! [`crate::providers::catalog`] entry.
//!
//! With `issuer`, discovery (OpenID Connect's, else the RFC 8414 metadata of a plain OAuth2
//! server) fills every endpoint the section does not set, and the callback must carry `iss`
//! when the provider says it sends it (RFC 9207). With OpenID Connect each `id_token` is
//! validated ([`crate::oidc`]) and its claims name the account.

mod client_auth;
mod flow;
mod machine;
mod service_account;
mod settings;

use std::sync::Arc;

use crate::config::Config;
use crate::providers::catalog;
use crate::providers::provider::{Provider, ProviderBuilder, ProviderSource};

pub use flow::{ConfiguredFlow, id_token_claims};
pub use machine::ProviderTokens;
use machine::build_machine;
pub(crate) use settings::is_oauth2_section;
pub use settings::{
    DEVICE_FLOW, FlowKind, OAUTH2_FLOW, OneOrMany, ProviderSettings, SubjectTokenSource, settings,
    with_catalog,
};

/// The provider `name` from its section (with its catalog entry's defaults, which the
/// configuration merged in).
pub(crate) fn builder(
    config: &Config,
    name: &str,
    tokens: Option<Arc<dyn ProviderTokens>>,
) -> ProviderBuilder {
    let section = with_catalog(config.provider_section(name));
    let kind = section
        .value()
        .get("flow")
        .and_then(|v| serde_json::from_value::<FlowKind>(v.clone()).ok());
    let in_catalog = catalog::contains(name);
    let device = section.value().get("device_authorization_url").is_some()
        || section.value().get("issuer").is_some();
    let policy = config.http_policy();
    let cache = config.data_dir().join("cache").join("oidc");
    // A provider made for machines has no browser flow unless it names where to send one.
    let browser = !kind.is_some_and(FlowKind::unattended)
        || section.value().get("authorize_url").is_some()
        || section.value().get("issuer").is_some();
    let mut builder = Provider::builder(name, section)
        .source(if in_catalog {
            ProviderSource::Catalog
        } else {
            ProviderSource::Configured
        })
        .checker(|section| settings(section).map(drop));
    if browser {
        builder = builder.flow(OAUTH2_FLOW, {
            let policy = policy.clone();
            let cache = cache.clone();
            move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                async move { ConfiguredFlow::build(ctx.section(), policy, Some(cache), false).await }
            }
        });
    }
    if device {
        builder = builder.flow(DEVICE_FLOW, {
            let policy = policy.clone();
            let cache = cache.clone();
            move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                async move { ConfiguredFlow::build(ctx.section(), policy, Some(cache), true).await }
            }
        });
    }
    match kind {
        Some(kind) if kind.unattended() => builder
            .flow(kind.name(), move |ctx| {
                let policy = policy.clone();
                let cache = cache.clone();
                let tokens = tokens.clone();
                async move { build_machine(ctx.section(), policy, Some(cache), kind, tokens).await }
            })
            .default_flow(kind.name()),
        Some(FlowKind::Device) if device => builder.default_flow(DEVICE_FLOW),
        _ => builder.default_flow(OAUTH2_FLOW),
    }
}
