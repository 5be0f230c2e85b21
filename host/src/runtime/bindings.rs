//! Host-side bindings for the `fastmcp:plugin` world, generated from `wit/`.
//!
//! Imports and exports are async: the broker may do I/O, and exports are
//! called with `call_async` so that epoch yields keep long calls cooperative.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});
