//! A loaded plugin ([`LoadedPlugin`]): compiled and linked, ready to instantiate, with what its
//! metadata says, checked ([`PluginInfo`]), and a fresh store with every limit set for each
//! call.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::v0_2;
use super::cache;
use super::engine::{EPOCH_TICK, LoadSource, Pre, Runtime};
use super::host_spec::HostSpec;
use super::imports::{LimitHit, Limits, StoreState};
use super::sandbox::AllowList;
use super::trap::trap;
use super::{PluginError, PluginSettings, WIT_VERSION};

/// What a plugin says about itself (its metadata, checked).
#[derive(Debug, Clone, Default)]
pub struct PluginInfo {
    /// A human name.
    pub display_name: String,
    /// Its version.
    pub version: String,
    /// The hosts it may reach.
    pub allowed_hosts: Vec<HostSpec>,
    /// The JSON schema of its app credentials.
    pub schema: serde_json::Value,
    /// The WIT version it was built for.
    pub wit_version: &'static str,
    /// How its credential goes on API requests, as declared (texts may name fields).
    pub binding: Option<crate::flow::binding::Binding>,
    /// The API's base URL, as declared (may be `{field}`).
    pub api_base_url: Option<String>,
}

/// A compiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub(crate) path: PathBuf,
    pub(crate) runtime: Arc<Runtime>,
    pub(super) component: Component,
    pub(crate) pre: Pre,
    pub(super) source: LoadSource,
    pub(super) info: PluginInfo,
    /// The validator of [`PluginInfo::schema`], built on the first check of app credentials
    /// and kept for every provider using this plugin (`None`: not a valid schema).
    pub(super) app_validator: OnceLock<Result<jsonschema::Validator, String>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl LoadedPlugin {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its checked metadata.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// A provider's app credentials checked against the plugin's schema: the validated value.
    pub fn check_app_credentials(
        &self,
        section: &crate::providers::section::ProviderSection,
    ) -> Result<serde_json::Value, crate::providers::app_credentials::ValidationError> {
        let validator = self
            .app_validator
            .get_or_init(|| crate::providers::schema::schema_validator(&self.info.schema));
        // The fault is the plugin's: the message names its file.
        let validator = validator.as_ref().map_err(|e| {
            format!(
                "cannot be checked: the plugin {} declares an app-credentials schema that is not a valid JSON schema ({e}); its author must fix the plugin",
                self.path.display()
            )
        });
        section.validate_with(&self.info.schema, validator)
    }

    /// Whether it was compiled or taken from the cache.
    pub fn source(&self) -> LoadSource {
        self.source
    }

    /// Its imports and exports, by name.
    pub fn interface_names(&self) -> (Vec<String>, Vec<String>) {
        let ty = self.component.component_type();
        let engine = &self.runtime.engine;
        (
            ty.imports(engine).map(|(n, _)| n.to_owned()).collect(),
            ty.exports(engine).map(|(n, _)| n.to_owned()).collect(),
        )
    }

    /// A fresh store for one call, with every limit set.
    pub(crate) fn store(&self, settings: &PluginSettings, allow: AllowList) -> Store<StoreState> {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let limits = Limits::new((settings.memory_mib << 20) as usize);
        let cpu = Duration::from_millis(settings.cpu_ms);
        let state = StoreState::new(
            name,
            self.runtime.plugin_http.clone(),
            allow,
            limits,
            cpu,
            settings.call_timeout(),
            settings.max_output_bytes,
        );
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        store.call_hook(|mut ctx, hook| {
            ctx.data_mut().crossing(hook);
            Ok(())
        });
        store.set_epoch_deadline(1);
        // Both limits are checked here, in the guest's own time: the caller's timer fires only
        // when the guest waits on something, and a guest whose host calls all return at once
        // (a loop of log calls) never does.
        store.epoch_deadline_callback(|ctx| {
            let state = ctx.data();
            let elapsed = state.started.elapsed();
            if elapsed >= state.wall_limit {
                return Err(wasmtime::Error::new(LimitHit::Wall(state.wall_limit)));
            }
            let used = state.guest_time();
            if used >= state.cpu_budget {
                return Err(wasmtime::Error::new(LimitHit::Cpu(
                    state.cpu_budget.as_millis() as u64,
                )));
            }
            let left = (state.cpu_budget - used).min(state.wall_limit - elapsed);
            Ok(UpdateDeadline::Continue(
                (left.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64,
            ))
        });
        store
    }

    /// Runs the plugin's `metadata` call.
    pub(super) async fn call_metadata(
        &self,
        settings: &PluginSettings,
    ) -> Result<cache::RawMetadata, PluginError> {
        let mut store = self.store(settings, AllowList::default());
        let call = async {
            match &self.pre {
                Pre::V0_2(pre) => {
                    let plugin = pre.instantiate_async(&mut store).await?;
                    plugin
                        .integrations_auth_auth_flow()
                        .call_metadata(&mut store)
                        .await
                }
                Pre::V0_1(pre) => {
                    let plugin = pre.instantiate_async(&mut store).await?;
                    plugin
                        .integrations_auth_auth_flow()
                        .call_metadata(&mut store)
                        .await
                        .map(super::v0_1_compat::metadata)
                }
            }
        };
        let meta = match tokio::time::timeout(settings.call_timeout(), call).await {
            Err(_) => {
                return Err(PluginError::Timeout {
                    path: self.path.clone(),
                    call: "metadata",
                    limit: settings.call_timeout(),
                });
            }
            Ok(Err(e)) => return Err(trap(&self.path, "metadata", e, store.data())),
            Ok(Ok(m)) => m,
        };
        store.data().flush_output("metadata");
        use cache::RawBinding as R;
        use v0_2::integrations::auth::types::Binding as B;
        Ok(cache::RawMetadata {
            display_name: meta.display_name,
            version: meta.version,
            allowed_hosts: meta.allowed_hosts,
            app_credentials_schema: meta.app_credentials_schema,
            binding: meta.binding.map(|b| match b {
                B::Bearer => R::Bearer,
                B::Basic => R::Basic,
                B::Header(h) => R::Header {
                    name: h.name,
                    prefix: h.prefix,
                },
                B::Query(q) => R::Query(q),
            }),
            api_base_url: meta.api_base_url,
        })
    }

    /// Checks what the plugin's metadata says (a JSON schema, host patterns) and keeps it
    /// sanitized.
    pub(super) fn info_from(&self, meta: cache::RawMetadata) -> Result<PluginInfo, PluginError> {
        let bad = |reason: String| PluginError::BadMetadata {
            path: self.path.clone(),
            reason,
        };
        let schema: serde_json::Value = serde_json::from_str(&meta.app_credentials_schema)
            .map_err(|e| bad(format!("the app-credentials schema is not JSON: {e}")))?;
        // The schema itself is checked when its validator is built (`check_app_credentials`).
        let allowed_hosts = meta
            .allowed_hosts
            .iter()
            .map(|h| HostSpec::parse(h).map_err(|e| bad(format!("allowed host {e}"))))
            .collect::<Result<_, _>>()?;
        use cache::RawBinding as R;
        let binding = meta.binding.map(|b| match b {
            R::Bearer => {
                crate::flow::binding::Binding::Scheme(crate::flow::binding::Scheme::Bearer)
            }
            R::Basic => crate::flow::binding::Binding::Scheme(crate::flow::binding::Scheme::Basic),
            R::Header { name, prefix } => crate::flow::binding::Binding::Header {
                header: crate::util::text::sanitize(&name, 100),
                prefix: crate::util::text::sanitize(&prefix, 100),
            },
            R::Query(q) => crate::flow::binding::Binding::Query {
                query: crate::util::text::sanitize(&q, 100),
            },
        });
        Ok(PluginInfo {
            display_name: crate::util::text::sanitize(&meta.display_name, 100),
            version: crate::util::text::sanitize(&meta.version, 40),
            allowed_hosts,
            schema,
            wit_version: match self.pre {
                Pre::V0_1(_) => "0.1.0",
                Pre::V0_2(_) => WIT_VERSION,
            },
            binding,
            api_base_url: meta
                .api_base_url
                .map(|u| crate::util::text::sanitize(&u, 500)),
        })
    }
}
