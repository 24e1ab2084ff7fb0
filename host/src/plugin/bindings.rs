//! Host bindings, one module per WIT version the host loads, generated from the package's
//! `wit/` folder (a copy of the repository's `wit/`; a test keeps the copies identical):
//! `v0_2` from `wit/auth.wit`, `v0_1` from `wit/v0.1.0/auth.wit`. The host works in 0.2.0
//! values; a 0.1.0 plugin's are converted at the boundary (`v0_1_compat`).

/// `integrations:auth@0.2.0`, the current contract.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "wit",
        imports: { default: async },
        exports: { default: async },
    });
}

/// `integrations:auth@0.1.0`, still loaded unchanged.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "wit/v0.1.0",
        imports: { default: async },
        exports: { default: async },
    });
}
