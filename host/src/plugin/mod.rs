//! Plugins: auth flows as WebAssembly components, run sandboxed by wasmtime.
//!
//! - [`discover`] lists the `.wasm` files of the plugins folder and compiles nothing; each
//!   `<name>.wasm` becomes provider `<name>` with one flow, [`PLUGIN_FLOW`]. A configuration may
//!   also bind a file to a flow of any provider (`[providers.X.flows.Y] plugin = "file.wasm"`).
//! - The first use of a plugin compiles it off the async runtime, or loads the host's own
//!   precompiled artifact from the cache folder (keyed by the file's BLAKE3 hash and the engine's
//!   compatibility hash, digest-checked before use); then `InstancePre`. Concurrent first uses
//!   compile once.
//! - Each call runs in a fresh instance with a memory limit, a CPU-time deadline (epoch
//!   interruption, not counting time the host spends on the plugin's HTTP requests), a
//!   wall-clock timeout around the whole call, and bounded tables and instances. The guest
//!   gets no files, no environment, no sockets; its stdout and stderr go to the log, bounded.
//! - HTTP goes through the host's hardened client: declared hosts only (narrowed by the
//!   configuration), https only (plain http to loopback only when allowed), addresses checked
//!   after resolution, no redirects, timeouts, a body cap. `wasi:http` requests (JavaScript's
//!   `fetch`) take the same path.
//! - Errors keep a trap, the plugin's own `flow-error` and a host failure apart, and each names
//!   the plugin file and the call.

mod bindings;
mod cache;
mod discovery;
mod engine;
mod host_spec;
mod imports;
mod link;
mod loaded;
mod runtime;
mod sandbox;
mod trap;
mod v0_1_compat;
mod wasm_flow;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::flow::FlowError;

pub use discovery::{PluginFile, discover};
pub(crate) use discovery::{bind_plugin_flows, plugin_provider};
pub use engine::LoadSource;
pub use host_spec::HostSpec;
pub use loaded::{LoadedPlugin, PluginInfo};
pub use runtime::{EngineError, PluginHost};
pub use sandbox::{HostPattern, HostPatternError};
pub use wasm_flow::WasmFlow;

/// The current WIT package version (what plugin-sdk builds).
pub const WIT_VERSION: &str = "0.2.0";
/// Every WIT package version this host loads.
pub const WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];
/// The export every plugin must provide.
pub const EXPORT: &str = "integrations:auth/auth-flow";
/// The name of the flow a discovered plugin file provides.
pub const PLUGIN_FLOW: &str = "default";

/// Host-side plugin settings, `[plugins]` in the configuration. Build one from
/// [`Default`] and set fields: more may be added.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[non_exhaustive]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// Allow plain `http://` to loopback hosts (tests, local development).
    pub allow_http_loopback: bool,
    /// Linear memory a plugin instance may use, in MiB.
    pub memory_mib: u64,
    /// CPU time a call may spend in the guest, in milliseconds.
    pub cpu_ms: u64,
    /// Wall-clock time a whole call may take (HTTP included), in seconds.
    pub call_timeout_secs: u64,
    /// Bytes of a call's stdout and stderr kept for the log (and the most the `log` import may
    /// write in one call).
    pub max_output_bytes: usize,
    /// The largest plugin file loaded, in MiB.
    pub max_file_mib: u64,
    /// How instances get their memory. `true`: from a pool of slots reserved when the engine
    /// starts and reused (a fresh instance per call costs microseconds; setting the pool up
    /// costs ~0.3 ms): for a program that makes many calls. `false`: mapped for each instance
    /// (nothing to set up; each instance pays its own mappings): for one that makes a few.
    /// Unset: pooled, except in the `host` command, which makes one or two calls a run.
    /// The isolation is the same either way: a fresh instance per call.
    pub instance_pool: Option<bool>,
    /// For profiling plugins on your own machine: the engine writes each compiled function's
    /// address and name to `/tmp/perf-<pid>.map`, where Linux `perf report` looks for them
    /// (`perf record` a run, and the plugin's functions show by name, from its name section,
    /// or by number when it was stripped, instead of as bare addresses). Off by default, and
    /// not for production: the file sits at the predictable path `perf` fixes, is created with
    /// the usual umask (other local users may read where the code is mapped), and holds the
    /// names the plugin chose, as they are (SECURITY.md, "Known gaps").
    pub perf_map: bool,
}

impl Default for PluginSettings {
    fn default() -> Self {
        Self {
            allow_http_loopback: false,
            memory_mib: 256,
            cpu_ms: 1000,
            call_timeout_secs: 60,
            max_output_bytes: 64 * 1024,
            max_file_mib: 128,
            instance_pool: None,
            perf_map: false,
        }
    }
}

impl PluginSettings {
    fn call_timeout(&self) -> Duration {
        Duration::from_secs(self.call_timeout_secs)
    }
}

/// Why a plugin cannot be loaded or called. Every message names the plugin file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file cannot be read or written.
    #[error("plugin {}: cannot read or write it", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO, a device, a folder), or larger than allowed.
    #[error("plugin {}: {reason}", .path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A plugin of that name is installed already.
    #[error("{} is installed already", .path.display())]
    AlreadyInstalled {
        /// The installed file.
        path: PathBuf,
    },
    /// Not WebAssembly at all.
    #[error("plugin {}: not a WebAssembly file", .path.display())]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// A core module, not a component.
    #[error("plugin {}: a core WebAssembly module, not a component; build it for wasm32-wasip2 (or wrap it with `wasm-tools component new`)", .path.display())]
    CoreModule {
        /// The file.
        path: PathBuf,
    },
    /// The component does not compile.
    #[error("plugin {}: invalid component: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Built for another version of the WIT contract.
    #[error("plugin {}: built for {package}@{found}, but this host loads {package}@{expected}; rebuild it against a version it loads", .path.display())]
    WrongVersion {
        /// The file.
        path: PathBuf,
        /// The WIT package.
        package: String,
        /// The version it targets.
        found: String,
        /// The versions the host loads.
        expected: String,
    },
    /// The component does not export `auth-flow`.
    #[error("plugin {}: does not export `{export}` at a version this host loads ({versions}; it exports: {found})", .path.display(), export = EXPORT, versions = WIT_VERSIONS.join(", "))]
    MissingExport {
        /// The file.
        path: PathBuf,
        /// What it exports.
        found: String,
    },
    /// The component imports something the host does not provide.
    #[error("plugin {}: imports {} that this host does not provide", .path.display(), .imports.join(", "))]
    UnsupportedImports {
        /// The file.
        path: PathBuf,
        /// The imports.
        imports: Vec<String>,
    },
    /// Its metadata is unusable.
    #[error("plugin {}: bad metadata: {reason}", .path.display())]
    BadMetadata {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The guest trapped: a panic, an out-of-bounds access, a stack overflow, or a limit.
    #[error("plugin {} trapped in `{call}`: {reason}", .path.display())]
    Trap {
        /// The file.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// What happened.
        reason: String,
    },
    /// The call took longer than the wall-clock limit.
    #[error("plugin {}: `{call}` did not finish within {}s", .path.display(), .limit.as_secs())]
    Timeout {
        /// The file.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The plugin reported an error of its own.
    #[error("plugin {} failed in `{call}`: {message}", .path.display())]
    Failed {
        /// The file.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// Its message (sanitized).
        message: String,
    },
    /// The plugin failed on what its provider sent, and that was no answer to act on (a
    /// maintenance page, a redirect, a server error, no response): the host saw it pass.
    #[error("plugin {} got no answer from its provider in `{call}`: {heard}", .path.display())]
    NoAnswer {
        /// The file.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// What the provider sent, as the host saw it (status, content type).
        heard: String,
        /// The plugin's own error.
        #[source]
        source: crate::flow::BoxError,
    },
    /// The host failed while serving the plugin.
    #[error("host failure running plugin {} (`{call}`)", .path.display())]
    Host {
        /// The file.
        path: PathBuf,
        /// The call.
        call: &'static str,
        /// Why.
        #[source]
        source: crate::flow::BoxError,
    },
}

impl PluginError {
    /// The plugin error in `error`'s cause chain, if there is one.
    pub fn find(error: &FlowError) -> Option<&PluginError> {
        error.find_cause::<PluginError>()
    }
}

impl From<PluginError> for FlowError {
    fn from(e: PluginError) -> Self {
        FlowError::Failed(Box::new(e))
    }
}
