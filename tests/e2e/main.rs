//! End-to-end tests: the real server on `127.0.0.1:0`, real HTTP, real
//! wasmtime sandboxes running the example and fixture plugins.

mod harness;

mod api;
mod approvals;
mod audit;
mod authoring;
mod binary;
mod brokering;
mod browser;
mod confirmation;
mod connections;
mod crash;
mod delegated;
mod errors;
mod hardening;
mod identity;
mod mcp;
mod observability;
mod pooling;
mod ratelimit;
mod reload;
mod sandbox;
mod shared_state;
mod startup;
