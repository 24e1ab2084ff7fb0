//! Host bindings generated from `wit/` (the same files plugins are built against).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});
