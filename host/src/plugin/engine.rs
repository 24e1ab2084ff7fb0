//! The engine and the linker, one per process: starting the engine (its settings, the
//! instance pool, the epoch ticker), compiling a plugin or mapping its precompiled artifact,
//! and linking it for the WIT version it was built for.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use super::bindings::{v0_1, v0_2};
use super::cache;
use super::imports::StoreState;
use super::link::OnDemandLinker;
use super::{EXPORT, PluginError, PluginSettings, WIT_VERSION, WIT_VERSIONS};
use crate::net::http::{HttpClient, HttpPolicy};

/// How often the epoch ticks: the resolution of the CPU-time deadline.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The WIT package of the contract.
const PACKAGE: &str = "integrations:auth";

/// The engine and the linker, one per process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    /// Extended as plugins load: an interface is linked when a plugin first imports it.
    linker: Mutex<OnDemandLinker>,
    engine_hash: String,
    pub(crate) plugin_http: HttpClient,
}

impl Runtime {
    pub(super) fn new(settings: &PluginSettings, http_policy: &HttpPolicy) -> Result<Self, String> {
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
    pub(super) fn load_indexed(
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
    pub(super) fn compile(
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

    pub(super) fn instantiate_pre(
        &self,
        path: &Path,
        component: &Component,
    ) -> Result<Pre, PluginError> {
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
