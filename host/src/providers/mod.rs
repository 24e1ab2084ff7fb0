//! Built-in providers, and the registry built from them, the plugins folder and the
//! configuration.

pub mod github;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Defaults};
use crate::credentials::RawAppCredentials;
use crate::flow::FlowError;
use crate::plugin::{HostPattern, PLUGIN_FLOW, PluginHost, WasmFlow, discover};
use crate::provider::{Provider, ProviderBuilder, ProviderSource, Registry};

/// The defaults and aliases of every built-in provider, for [`crate::config::ConfigLoader`].
pub fn builtin_defaults() -> Vec<Defaults> {
    vec![github::defaults()]
}

/// A registry with every built-in provider, configured from `config`, and no plugins.
pub fn builtin_registry(config: &Config) -> Registry {
    let mut registry = Registry::new();
    registry.register(github::provider(config));
    registry
}

/// The whole registry: built-in providers, one provider per plugin file in the plugins folder,
/// and the plugin flows the configuration binds (`[providers.X.flows.Y] plugin = "file.wasm"`).
///
/// Nothing is validated, compiled or fetched here: the plugins folder is listed, that is all.
pub fn registry(config: &Config, plugins: &Arc<PluginHost>) -> Registry {
    let plugins_dir = config.plugins_dir();
    let bind = |builder: ProviderBuilder, section: &RawAppCredentials| {
        bound_flows(section, &plugins_dir)
            .into_iter()
            .fold(builder, |b, (flow, path)| {
                plugin_flow(b, plugins, &flow, path)
            })
    };
    let mut registry = Registry::new();
    let github = github::builder(config);
    registry.register(bind(github, &config.provider_section(github::NAME)).build());
    for file in discover(&plugins_dir) {
        if registry.get(&file.name).is_ok() {
            tracing::warn!(
                "plugin {} is ignored: a built-in provider is called `{}`",
                file.path.display(),
                file.name
            );
            continue;
        }
        let section = config.provider_section(&file.name);
        let builder = Provider::builder(&file.name, section.clone())
            .source(ProviderSource::Plugin(file.path.clone()));
        let builder = plugin_flow(builder, plugins, PLUGIN_FLOW, file.path);
        registry.register(bind(builder, &section).build());
    }
    // Providers that exist only through flows bound in the configuration.
    let names: Vec<String> = config.provider_names().map(str::to_owned).collect();
    for name in names {
        let section = config.provider_section(&name);
        if registry.get(&name).is_ok() || bound_flows(&section, &plugins_dir).is_empty() {
            continue;
        }
        let builder = Provider::builder(&name, section.clone()).source(ProviderSource::Code);
        registry.register(bind(builder, &section).build());
    }
    registry
}

/// `[providers.NAME.flows.FLOW] plugin = "file.wasm"` entries, paths resolved against the
/// plugins folder.
fn bound_flows(section: &RawAppCredentials, plugins_dir: &Path) -> Vec<(String, PathBuf)> {
    let Some(flows) = section.value().get("flows").and_then(|f| f.as_object()) else {
        return Vec::new();
    };
    flows
        .iter()
        .filter_map(|(flow, v)| {
            let file = PathBuf::from(v.get("plugin")?.as_str()?);
            Some((flow.clone(), plugins_dir.join(file)))
        })
        .collect()
}

/// The hosts the configuration grants a provider's plugins (`sandbox.allowed_hosts`), if it
/// narrows them. Read when a plugin flow is first built, not at start-up.
fn granted_hosts(section: &RawAppCredentials) -> Result<Option<Vec<HostPattern>>, FlowError> {
    let name = section.provider();
    let Some(list) = section.value().pointer("/sandbox/allowed_hosts") else {
        return Ok(None);
    };
    let list = list.as_array().ok_or_else(|| {
        FlowError::Config(format!(
            "providers.{name}.sandbox.allowed_hosts must be a list of host patterns"
        ))
    })?;
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| "not a string".to_owned())
                .and_then(HostPattern::parse)
                .map_err(|e| {
                    FlowError::Config(format!("providers.{name}.sandbox.allowed_hosts: {e}"))
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn plugin_flow(
    builder: ProviderBuilder,
    plugins: &Arc<PluginHost>,
    flow: &str,
    path: PathBuf,
) -> ProviderBuilder {
    let plugins = Arc::clone(plugins);
    let flow_name = flow.to_owned();
    builder.flow(flow, move |ctx| {
        let plugins = Arc::clone(&plugins);
        let path = path.clone();
        let flow_name = flow_name.clone();
        async move {
            let granted = granted_hosts(ctx.raw_app_credentials())?;
            WasmFlow::new(&plugins, &path, &ctx, &flow_name, granted).await
        }
    })
}
