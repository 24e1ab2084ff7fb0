//! The plugin host ([`PluginHost`]): what plugins share in one process (the engine, started
//! on first use, the compile cache, the plugins loaded), loading a plugin file once however
//! many ask, and installing one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::OnceCell;

use super::cache;
use super::engine::{LoadSource, Runtime};
use super::loaded::{LoadedPlugin, PluginInfo};
use super::{PluginError, PluginSettings};
use crate::net::http::HttpPolicy;

/// Everything plugins share in one process: created on first use, so a process that uses no
/// plugin pays nothing (no engine, no linker, no ticker thread).
pub struct PluginHost {
    settings: PluginSettings,
    http_policy: HttpPolicy,
    cache_dir: Option<PathBuf>,
    /// The cache in `cache_dir`, opened (and proved ours) on first use.
    cache: OnceLock<Option<Arc<cache::CacheDir>>>,
    runtime: OnceLock<Result<Arc<Runtime>, EngineError>>,
    loaded: Mutex<HashMap<PathBuf, Arc<OnceCell<Arc<LoadedPlugin>>>>>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field("settings", &self.settings)
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

impl PluginHost {
    /// A host with these settings; `cache_dir` holds precompiled artifacts (none: no cache).
    pub fn new(
        settings: PluginSettings,
        http_policy: HttpPolicy,
        cache_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            settings,
            http_policy,
            cache_dir,
            cache: OnceLock::new(),
            runtime: OnceLock::new(),
            loaded: Mutex::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    /// Whether the engine has been created (a plugin was used).
    pub fn is_started(&self) -> bool {
        self.runtime.get().is_some()
    }

    /// Creates the engine now (normally done on first use): for callers that want start-up
    /// cost out of a later, latency-sensitive path.
    pub fn warm_up(&self) -> Result<(), EngineError> {
        self.runtime().map(drop)
    }

    /// The compile cache, when there is one that can be trusted.
    fn cache(&self) -> Option<Arc<cache::CacheDir>> {
        self.cache
            .get_or_init(|| {
                let dir = self.cache_dir.as_deref()?;
                cache::CacheDir::open(dir).map(Arc::new)
            })
            .clone()
    }

    pub(crate) fn runtime(&self) -> Result<Arc<Runtime>, EngineError> {
        self.runtime
            .get_or_init(|| {
                let started = std::time::Instant::now();
                let runtime = Runtime::new(&self.settings, &self.http_policy)
                    .map(Arc::new)
                    .map_err(EngineError);
                tracing::debug!("plugin engine started in {:?}", started.elapsed());
                runtime
            })
            .clone()
    }

    /// Loads (compiles, or takes from the cache) a plugin file and reads its metadata, once per
    /// file however many callers ask at the same time.
    pub async fn load(&self, path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(loaded.entry(path.to_owned()).or_default())
        };
        let plugin = cell.get_or_try_init(|| self.load_now(path)).await?;
        Ok(Arc::clone(plugin))
    }

    async fn load_now(&self, path: &Path) -> Result<Arc<LoadedPlugin>, PluginError> {
        let started = std::time::Instant::now();
        let host_error = |e: Box<dyn std::error::Error + Send + Sync>| PluginError::Host {
            path: path.to_owned(),
            call: "load",
            source: e,
        };
        let max = self.settings.max_file_mib.saturating_mul(1 << 20);
        let meta = cache::check(path, max)?;
        let runtime = self.runtime().map_err(|e| host_error(Box::new(e)))?;
        // This version of the file in the cache index (two stats, a small file, a mapping): its
        // artifact is mapped here and now, as starting a thread would cost more than the work.
        // Anything else (reading and hashing the file, checking a large artifact, compiling)
        // runs on a blocking thread.
        let cache = self.cache();
        let index = cache.clone().zip(cache::identity(&meta));
        let known = index
            .as_ref()
            .and_then(|(cache, key)| cache.read_entry(key));
        let mut entry = known.clone();
        let indexed = match (&index, entry.as_mut()) {
            (Some((cache, _)), Some(entry)) => runtime.load_indexed(cache, entry),
            _ => Err(cache::NotIndexed::Unknown),
        };
        let (component, source) = match indexed {
            Ok(component) => {
                tracing::debug!(plugin = %path.display(), "loaded the precompiled plugin from the cache (indexed)");
                (component, LoadSource::Indexed)
            }
            Err(why) => {
                // An artifact refused just now is not looked at again: it is recompiled.
                let look_in_cache = why != cache::NotIndexed::Refused;
                let path_owned = path.to_owned();
                let rt = Arc::clone(&runtime);
                let (component, source, found) = tokio::task::spawn_blocking(move || {
                    let prepared = cache::prepare(&path_owned, max)?;
                    rt.compile(&path_owned, prepared, cache.as_deref(), look_in_cache)
                })
                .await
                .map_err(|e| host_error(Box::new(e)))??;
                entry = Some(found);
                (component, source)
            }
        };
        let compiled = started.elapsed();
        let pre = runtime.instantiate_pre(path, &component)?;
        let linked = started.elapsed();
        let mut plugin = LoadedPlugin {
            path: path.to_owned(),
            runtime,
            component,
            pre,
            source,
            info: PluginInfo::default(),
            app_validator: OnceLock::new(),
        };
        let raw = match entry.as_ref().and_then(|e| e.metadata.clone()) {
            Some(raw) => raw,
            None => plugin.call_metadata(&self.settings).await?,
        };
        plugin.info = plugin.info_from(raw.clone())?;

        // The index learns what this load found out (nothing is written when it knew it all).
        if let (Some((cache, key)), Some(mut entry)) = (index, entry) {
            entry.metadata = Some(raw);
            if known.as_ref() != Some(&entry) {
                cache.remember(&key, &entry);
            }
        }
        tracing::debug!(
            plugin = %path.display(),
            source = ?plugin.source,
            "plugin loaded in {:?} (load {:?}, link {:?}, metadata {:?})",
            started.elapsed(),
            compiled,
            linked - compiled,
            started.elapsed() - linked
        );
        Ok(Arc::new(plugin))
    }
}

impl PluginHost {
    /// Checks the plugin `file` (version, exports, imports, metadata), precompiles it into the
    /// cache, and copies it atomically into `plugins_dir` as `<name>.wasm`, which then is
    /// provider `name`. An installed plugin of that name is replaced only with `replace`.
    pub async fn install(
        &self,
        file: &Path,
        plugins_dir: &Path,
        name: &str,
        replace: bool,
    ) -> Result<(Arc<LoadedPlugin>, PathBuf), PluginError> {
        crate::util::names::check_name(name).map_err(|e| PluginError::Host {
            path: file.to_owned(),
            call: "install",
            source: Box::new(e),
        })?;
        // Loading checks the component and precompiles it into the cache, which the installed
        // copy (same bytes) then hits.
        let plugin = self.load(file).await?;
        let target = plugins_dir.join(format!("{name}.wasm"));
        if target.exists() && !replace {
            return Err(PluginError::AlreadyInstalled { path: target });
        }
        let io = |source| PluginError::Io {
            path: target.clone(),
            source,
        };
        let bytes = std::fs::read(file).map_err(|source| PluginError::Io {
            path: file.to_owned(),
            source,
        })?;
        std::fs::create_dir_all(plugins_dir).map_err(io)?;
        crate::util::private_fs::write_atomic(&target, &[&bytes]).map_err(io)?;
        Ok((plugin, target))
    }
}

/// The plugin engine could not be started (a bad setting, a platform without support).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot start the plugin engine: {0}")]
pub struct EngineError(String);
