//! How plugins become providers and flows: `<name>.wasm` in the plugins folder is provider
//! `<name>` with the flow [`PLUGIN_FLOW`](super::PLUGIN_FLOW); `[providers.X.flows.Y] plugin =
//! "file.wasm"` adds a plugin flow to any provider. Nothing is opened or compiled here.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::sandbox::HostPattern;
use super::{PLUGIN_FLOW, PluginHost, WasmFlow};
use crate::flow::FlowError;
use crate::providers::provider::{Provider, ProviderBuilder, ProviderSource};
use crate::providers::section::ProviderSection;

/// A plugin file found in the plugins folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFile {
    /// The provider name (the file stem).
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

/// Lists the plugin files of `dir` (`<name>.wasm`, names that are valid provider names),
/// sorted. Reads the folder only: nothing is opened or compiled. A missing folder has none.
pub fn discover(dir: &Path) -> Vec<PluginFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    // The name is checked on the entry's own bytes; a path is built only for a plugin.
    let mut found: Vec<PluginFile> = entries
        .filter_map(|e| {
            let file_name = e.ok()?.file_name();
            let name = file_name.to_str()?.strip_suffix(".wasm")?;
            crate::util::names::check_name(name).ok()?;
            // Sized once (`join` would grow it).
            let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + file_name.len());
            path.push(dir);
            path.push(&file_name);
            Some(PluginFile {
                name: name.to_owned(),
                path,
            })
        })
        .collect();
    found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    found
}

/// The provider of a plugin file, with the flows its section binds.
pub(crate) fn plugin_provider(
    file: PluginFile,
    section: ProviderSection,
    plugins: &Arc<PluginHost>,
    plugins_dir: &Path,
) -> Provider {
    let builder =
        Provider::builder(file.name, section).source(ProviderSource::Plugin(file.path.clone()));
    let builder = plugin_flow(builder, plugins, PLUGIN_FLOW.into(), file.path);
    bind_plugin_flows(builder, plugins, plugins_dir).build()
}

/// Adds the plugin flows the builder's section binds (`[providers.X.flows.Y] plugin =
/// "file.wasm"`).
pub(crate) fn bind_plugin_flows(
    builder: ProviderBuilder,
    plugins: &Arc<PluginHost>,
    plugins_dir: &Path,
) -> ProviderBuilder {
    let bound = builder.section().bound_plugin_flows(plugins_dir);
    bound.into_iter().fold(builder, |b, (flow, path)| {
        plugin_flow(b, plugins, flow.into(), path)
    })
}

/// The hosts the configuration grants a provider's plugins (`sandbox.allowed_hosts`), if it
/// narrows them. Read when a plugin flow is first built, not at start-up.
fn granted_hosts(section: &ProviderSection) -> Result<Option<Vec<HostPattern>>, FlowError> {
    let Some(list) = section.sandbox_allowed_hosts().map_err(FlowError::config)? else {
        return Ok(None);
    };
    list.into_iter()
        .map(|text| {
            HostPattern::parse(text).map_err(|e| FlowError::InvalidConfig {
                message: format!("providers.{}.sandbox.allowed_hosts", section.provider()),
                source: Some(Box::new(e)),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn plugin_flow(
    builder: ProviderBuilder,
    plugins: &Arc<PluginHost>,
    flow: Cow<'static, str>,
    path: PathBuf,
) -> ProviderBuilder {
    let plugins = Arc::clone(plugins);
    let flow_name = flow.clone();
    builder.flow(flow, move |ctx| {
        let plugins = Arc::clone(&plugins);
        let path = path.clone();
        let flow_name = flow_name.clone();
        async move {
            let granted = granted_hosts(ctx.section())?;
            WasmFlow::new(&plugins, &path, &ctx, &flow_name, granted).await
        }
    })
}
