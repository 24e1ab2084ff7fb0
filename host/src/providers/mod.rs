//! Built-in providers, and the registry built from them, the plugins folder and the
//! configuration.

pub mod github;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, Defaults};
use crate::flow::FlowError;
use crate::plugin::{HostPattern, PLUGIN_FLOW, PluginHost, WasmFlow, discover};
use crate::provider::{ProviderBuilder, ProviderSource, Registry};

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
    let mut registry = Registry::new();
    let github = with_bound_flows(github::builder(config), config, plugins, github::NAME);
    registry.register(github.build());
    let plugins_dir = config.plugins_dir();
    for file in discover(&plugins_dir) {
        if registry.get(&file.name).is_ok() {
            tracing::warn!(
                "plugin {} is ignored: a built-in provider is called `{}`",
                file.path.display(),
                file.name
            );
            continue;
        }
        let builder =
            crate::provider::Provider::builder(&file.name, config.provider_section(&file.name))
                .source(ProviderSource::Plugin(file.path.clone()));
        let builder = plugin_flow(builder, config, plugins, &file.name, PLUGIN_FLOW, file.path);
        registry.register(with_bound_flows(builder, config, plugins, &file.name).build());
    }
    // Providers that exist only through flows bound in the configuration.
    let names: Vec<String> = config.provider_names().map(str::to_owned).collect();
    for name in names {
        if registry.get(&name).is_ok() || bound_flows(config, &name).is_empty() {
            continue;
        }
        let builder = crate::provider::Provider::builder(&name, config.provider_section(&name))
            .source(ProviderSource::Code);
        registry.register(with_bound_flows(builder, config, plugins, &name).build());
    }
    registry
}

/// `[providers.NAME.flows.FLOW] plugin = "file.wasm"` entries, paths resolved against the
/// plugins folder.
fn bound_flows(config: &Config, name: &str) -> Vec<(String, PathBuf)> {
    let section = config.provider_section(name);
    let Some(flows) = section.value().get("flows").and_then(|f| f.as_object()) else {
        return Vec::new();
    };
    flows
        .iter()
        .filter_map(|(flow, v)| {
            let file = PathBuf::from(v.get("plugin")?.as_str()?);
            let path = if file.is_absolute() {
                file
            } else {
                config.plugins_dir().join(file)
            };
            Some((flow.clone(), path))
        })
        .collect()
}

fn with_bound_flows(
    mut builder: ProviderBuilder,
    config: &Config,
    plugins: &Arc<PluginHost>,
    name: &str,
) -> ProviderBuilder {
    for (flow, path) in bound_flows(config, name) {
        builder = plugin_flow(builder, config, plugins, name, &flow, path);
    }
    builder
}

/// The hosts the configuration grants a provider's plugins (`sandbox.allowed_hosts`), if it
/// narrows them.
fn granted_hosts(config: &Config, name: &str) -> Result<Option<Vec<HostPattern>>, FlowError> {
    let section = config.provider_section(name);
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
    config: &Config,
    plugins: &Arc<PluginHost>,
    name: &str,
    flow: &str,
    path: PathBuf,
) -> ProviderBuilder {
    let plugins = Arc::clone(plugins);
    let granted = granted_hosts(config, name);
    let flow_name = flow.to_owned();
    builder.flow(flow, move |ctx| {
        let plugins = Arc::clone(&plugins);
        let path = path.clone();
        let granted = match &granted {
            Ok(g) => Ok(g.clone()),
            Err(e) => Err(FlowError::Config(e.to_string())),
        };
        let flow_name = flow_name.clone();
        async move { WasmFlow::new(&plugins, &path, &ctx, &flow_name, granted?).await }
    })
}
