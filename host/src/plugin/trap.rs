//! What a plugin call's wasmtime error means: a limit hit, a trap of the guest's, or a failure
//! of the host, as the [`PluginError`] that says so.

use std::path::Path;

use super::PluginError;
use super::imports::{LimitHit, StoreState};

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
