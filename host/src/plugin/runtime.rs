//! The engine, the linker, the compile cache, and loading a plugin file.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::OnceCell;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Store, UpdateDeadline};

use super::bindings::{v0_1, v0_2};
use super::cache;
use super::imports::{LimitHit, Limits, StoreState};
use super::link::OnDemandLinker;
use super::sandbox::{AllowList, HostPattern, HostPatternError};
use super::{EXPORT, PluginError, PluginSettings, WIT_VERSION, WIT_VERSIONS};
use crate::net::http::{HttpClient, HttpPolicy};

/// How often the epoch ticks: the resolution of the CPU-time deadline.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The WIT package of the contract.
const PACKAGE: &str = "integrations:auth";

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

/// The engine and the linker, one per process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    /// Extended as plugins load: an interface is linked when a plugin first imports it.
    linker: Mutex<OnDemandLinker>,
    engine_hash: String,
    pub(crate) plugin_http: HttpClient,
}

impl Runtime {
    fn new(settings: &PluginSettings, http_policy: &HttpPolicy) -> Result<Self, String> {
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .max_wasm_stack(512 * 1024)
            .async_stack_size(2 * 1024 * 1024)
            // `.eh_frame` for the system's unwinder, which only a native profiler or debugger
            // walks (wasmtime's own traps and backtraces do without): registered with libgcc on
            // each load of an artifact otherwise (`host plugin inspect`: 8.54 -> 8.44 M
            // instructions, callgrind; the slack artifact 34 KB smaller).
            .native_unwind_info(settings.perf_map);
        if settings.perf_map {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // The pooling allocator makes a fresh instance per call cheap (slots reserved once,
        // reused); its limits are sized for interpreted-language components too (a
        // componentize-py plugin has tens of MiB of code and large tables). Where the address
        // space cannot be reserved, fall back to on-demand allocation. A program making a few
        // calls skips the pool (`instance_pool = false`): setting it up costs more than it saves.
        let engine = if settings.instance_pool.unwrap_or(true) {
            let mut pooled = config.clone();
            pooled.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool(
                settings,
            )));
            Engine::new(&pooled).or_else(|e| {
                tracing::debug!("cannot start the engine with an instance pool ({e:#}); trying on-demand allocation");
                Engine::new(&config)
            })
        } else {
            Engine::new(&config)
        }
        .map_err(|e| {
            let perf_map = if settings.perf_map {
                " with plugins.perf_map on (it writes /tmp/perf-<pid>.map)"
            } else {
                ""
            };
            format!("cannot start the WebAssembly engine{perf_map}: {e:#}")
        })?;
        // Interfaces are linked as plugins need them (`link.rs`); the context grants nothing,
        // so every WASI call that would reach outside is denied at run time.
        let linker = Mutex::new(OnDemandLinker::new(&engine));

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("host-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| e.to_string())?;

        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_hash = format!("{:016x}", hasher.finish());

        let mut policy = http_policy.clone();
        policy.public_addresses_only = true;
        policy.allow_loopback = settings.allow_http_loopback;
        let plugin_http = HttpClient::new(policy).map_err(|e| e.to_string())?;
        Ok(Self {
            engine,
            linker,
            engine_hash,
            plugin_http,
        })
    }

    /// The artifact the index `entry` names, checked if need be and mapped; a map the engine
    /// refuses is [`cache::NotIndexed::Refused`] too.
    fn load_indexed(
        &self,
        cache: &cache::CacheDir,
        entry: &mut cache::Entry,
    ) -> Result<Component, cache::NotIndexed> {
        let artifact = cache.indexed_artifact(entry, &self.engine_hash)?;
        self.map_artifact(&artifact)
            .ok_or(cache::NotIndexed::Refused)
    }

    /// Maps the plugin's precompiled artifact from the cache (unless `look_in_cache` is false:
    /// it was just refused), or compiles the file (and caches the artifact). Blocking.
    /// Returns what the cache index should know of the file.
    fn compile(
        &self,
        path: &Path,
        prepared: cache::Prepared,
        cache: Option<&cache::CacheDir>,
        look_in_cache: bool,
    ) -> Result<(Component, LoadSource, cache::Entry), PluginError> {
        let mut entry = cache::Entry::new(prepared.digest, &self.engine_hash);
        let artifact = cache.map(|cache| cache.artifact_path(&entry.digest, &self.engine_hash));
        if let (Some(cache), Some(artifact)) = (cache, &artifact)
            && look_in_cache
            && let Some(checked) = cache.checked_artifact(artifact)
            && let Some(component) = self.map_artifact(&checked)
        {
            tracing::debug!(plugin = %path.display(), "loaded the precompiled plugin from the cache");
            entry.artifact = checked.identity();
            return Ok((component, LoadSource::Cache, entry));
        }
        tracing::debug!(plugin = %path.display(), "compiling the plugin");
        let component =
            Component::new(&self.engine, &prepared.bytes).map_err(|e| PluginError::Invalid {
                path: path.to_owned(),
                reason: format!("{e:#}"),
            })?;
        if let (Some(cache), Some(artifact)) = (cache, &artifact)
            && let Err(e) = cache.write_artifact(artifact, &component)
        {
            tracing::warn!(plugin = %path.display(), "cannot cache the compiled plugin: {e}");
        }
        Ok((component, LoadSource::Compiled, entry))
    }

    /// Maps a cached artifact whose MAC was checked ([`cache::CacheDir::indexed_artifact`],
    /// [`cache::CacheDir::checked_artifact`]); `None` (logged) when the engine refuses it. Its
    /// code pages come from the page cache.
    fn map_artifact(&self, artifact: &cache::Artifact) -> Option<Component> {
        // SAFETY: `deserialize_file` trusts its input to be an artifact this engine produced and
        // the file not to change while mapped. The file is the one opened and checked (through
        // its descriptor on Linux): ours, not writable by others, in the host's own 0700 cache
        // folder, written by `write_artifact` via temp file and rename (a rewrite replaces the
        // file, never changes a mapped one), and carrying a MAC under the cache's secret, so
        // neither a truncated or corrupted file nor one another user planted gets here;
        // wasmtime also checks the engine's version and settings.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(&self.engine, artifact.open_path()) };
        match component {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(artifact = %artifact.path().display(), "unusable cached plugin artifact ({e}); recompiling");
                None
            }
        }
    }

    fn instantiate_pre(&self, path: &Path, component: &Component) -> Result<Pre, PluginError> {
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        // Our own package at a version this host does not load: say so with the versions.
        for name in exports.iter().chain(&imports) {
            if let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/'))
                && let Some((_, version)) = rest.split_once('@')
                && !WIT_VERSIONS.contains(&version)
            {
                return Err(PluginError::WrongVersion {
                    path: path.to_owned(),
                    package: PACKAGE.into(),
                    found: version.into(),
                    expected: WIT_VERSIONS.join(" or "),
                });
            }
        }
        let version = WIT_VERSIONS
            .iter()
            .find(|v| exports.contains(&format!("{EXPORT}@{v}")))
            .copied();
        let Some(version) = version else {
            let found = if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            };
            return Err(PluginError::MissingExport {
                path: path.to_owned(),
                found,
            });
        };
        let linked = {
            let mut linker = self.linker.lock().unwrap_or_else(|e| e.into_inner());
            linker
                .for_imports(imports.iter().map(String::as_str), version)
                .and_then(|linker| linker.instantiate_pre(component))
        };
        let pre = linked.map_err(|e| {
            let text = format!("{e:#}");
            let missing: Vec<String> = imports
                .iter()
                .filter(|i| text.contains(i.as_str()))
                .cloned()
                .collect();
            if missing.is_empty() {
                PluginError::Invalid {
                    path: path.to_owned(),
                    reason: text,
                }
            } else {
                PluginError::UnsupportedImports {
                    path: path.to_owned(),
                    imports: missing,
                }
            }
        })?;
        let missing = |e: wasmtime::Error| PluginError::MissingExport {
            path: path.to_owned(),
            found: format!("{e:#}"),
        };
        Ok(if version == WIT_VERSION {
            Pre::V0_2(v0_2::PluginPre::new(pre).map_err(missing)?)
        } else {
            Pre::V0_1(v0_1::PluginPre::new(pre).map_err(missing)?)
        })
    }
}

/// A plugin ready to instantiate, by the WIT version it was built for.
pub(crate) enum Pre {
    /// `integrations:auth@0.1.0`.
    V0_1(v0_1::PluginPre<StoreState>),
    /// `integrations:auth@0.2.0`.
    V0_2(v0_2::PluginPre<StoreState>),
}

/// How much of a memory or table slot stays resident between instances.
const KEEP_RESIDENT: usize = 4 << 20;

/// The instance pool: enough slots for concurrent calls of several plugins, each slot as
/// large as one plugin instance may grow.
fn pool(settings: &PluginSettings) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(64)
        .total_core_instances(512)
        .total_memories(128)
        .total_tables(256)
        .total_stacks(64)
        .max_memories_per_module(2)
        .max_tables_per_module(4)
        .table_elements(200_000)
        .max_memory_size((settings.memory_mib << 20) as usize)
        .max_unused_warm_slots(16)
        // A slot is reset for its next instance by rewriting only the pages the last one
        // touched (found with Linux's PAGEMAP_SCAN, kernel 6.7 and later; elsewhere the first
        // KEEP_RESIDENT bytes are rewritten) instead of handing the pages back to the kernel
        // and faulting them in again: the next instance still starts from the module's initial
        // memory. Plugin refresh in process (benches/refresh.rs): 98 -> 51 us with the scan,
        // 65 us without it.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// Where a loaded plugin came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Compiled from the `.wasm` file.
    Compiled,
    /// A precompiled artifact from the cache, found by the plugin file's digest (the file was
    /// read and hashed).
    Cache,
    /// A precompiled artifact the cache index named for the plugin file's identity: neither
    /// the file nor the artifact was read, and the metadata came from the index.
    Indexed,
}

/// One entry of a plugin's allowed hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSpec {
    /// A fixed pattern.
    Pattern(HostPattern),
    /// `{field}`: the host and port of the URL in this app-credentials field.
    Field(String),
}

impl HostSpec {
    fn parse(text: &str) -> Result<Self, HostPatternError> {
        match text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
        {
            Some(field)
                if !field.is_empty()
                    && field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                Ok(HostSpec::Field(field.to_owned()))
            }
            Some(_) => Err(HostPatternError {
                pattern: crate::util::text::sanitize(text, 100),
                problem: "not a field name",
            }),
            None => HostPattern::parse(text).map(HostSpec::Pattern),
        }
    }

    /// The pattern for these (validated) app credentials; `Err` says which field is wrong.
    pub(crate) fn resolve(&self, app: &serde_json::Value) -> Result<HostPattern, String> {
        match self {
            HostSpec::Pattern(p) => Ok(p.clone()),
            HostSpec::Field(field) => {
                let text = app
                    .get(field)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("`{field}` is not set"))?;
                let url = url::Url::parse(text).map_err(|_| format!("`{field}` is not a URL"))?;
                let host = url
                    .host_str()
                    .ok_or_else(|| format!("`{field}` has no host"))?;
                let port = url
                    .port_or_known_default()
                    .ok_or_else(|| format!("`{field}` has no port"))?;
                let host = if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]")
                } else {
                    host.to_owned()
                };
                HostPattern::parse(&format!("{host}:{port}")).map_err(|e| e.to_string())
            }
        }
    }
}

impl std::fmt::Display for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostSpec::Pattern(p) => p.fmt(f),
            HostSpec::Field(field) => write!(f, "{{{field}}}"),
        }
    }
}

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
    component: Component,
    pub(crate) pre: Pre,
    source: LoadSource,
    info: PluginInfo,
    /// The validator of [`PluginInfo::schema`], built on the first check of app credentials
    /// and kept for every provider using this plugin (`None`: not a valid schema).
    app_validator: OnceLock<Result<jsonschema::Validator, String>>,
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
    async fn call_metadata(
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
    fn info_from(&self, meta: cache::RawMetadata) -> Result<PluginInfo, PluginError> {
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

/// Turns a wasmtime error into the right layer: a limit, a trap, or a host failure.
pub(crate) fn trap(
    path: &Path,
    call: &'static str,
    e: wasmtime::Error,
    state: &StoreState,
) -> PluginError {
    let path = path.to_owned();
    if let Some(LimitHit::Wall(limit)) = e.downcast_ref::<LimitHit>() {
        return PluginError::Timeout {
            path,
            call,
            limit: *limit,
        };
    }
    if let Some(hit) = e.downcast_ref::<LimitHit>().copied().or(state.limits.hit) {
        return PluginError::Trap {
            path,
            call,
            reason: hit.to_string(),
        };
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return PluginError::Trap {
            path,
            call,
            reason: format!("the plugin exited (status {}) instead of returning", exit.0),
        };
    }
    if let Some(t) = e.downcast_ref::<wasmtime::Trap>() {
        let reason = match t {
            wasmtime::Trap::StackOverflow => "stack overflow (runaway recursion?)".to_owned(),
            wasmtime::Trap::UnreachableCodeReached => "the plugin panicked (unreachable code)".to_owned(),
            wasmtime::Trap::Interrupt => "interrupted".to_owned(),
            wasmtime::Trap::MemoryOutOfBounds => {
                "out-of-bounds memory access (deep recursion overflowing the guest's shadow stack looks like this too)".to_owned()
            }
            other => other.to_string(),
        };
        return PluginError::Trap { path, call, reason };
    }
    // Stopped while the guest ran (what it passed could not be taken: a string that is not
    // UTF-8, a pointer out of bounds, more than the host calls may carry): the plugin's
    // doing. The backtrace's names are the plugin's own, newlines and all: logged line by
    // line, sanitized, and only at debug.
    if let Some(backtrace) = e.downcast_ref::<wasmtime::WasmBacktrace>() {
        for line in backtrace.to_string().lines() {
            tracing::debug!(plugin = %path.display(), call, "{}", crate::util::text::sanitize(line, 300));
        }
        return PluginError::Trap {
            path,
            call,
            reason: crate::util::text::sanitize(&e.root_cause().to_string(), 300),
        };
    }
    PluginError::Host {
        path,
        call,
        source: e.into_boxed_dyn_error(),
    }
}
