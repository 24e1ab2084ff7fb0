//! Host bindings generated from the package's `wit/` folder, a copy of the repository's `wit/` (the
//! contract plugins are built against; a test keeps the copies identical).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "wit",
    imports: { default: async },
    exports: { default: async },
});
