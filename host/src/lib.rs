//! btp-gateway: a thin host that runs a sandboxed WebAssembly component per
//! request on SAP BTP Cloud Foundry.
//!
//! The host owns configuration, every secret and every capability; the
//! component owns the OData logic and reaches backends only through named
//! destinations, as `wit/world.wit` describes.
//!
//! - [`config`]: `VCAP_SERVICES`, `.env`, `default-env.json`, `destinations`.
//! - [`server`]: the HTTP front on `$PORT`.
//! - [`engine`]: compiling the component and instantiating it per request.
//! - [`outbound`]: the guest's outgoing HTTP, where destinations are applied.
//! - [`destination`]: resolving destination names, with the Destination
//!   service and token caches.
//! - [`cache`]: the bounded cache guests share through `wasi:keyvalue`.
//! - [`components`]: the component store: sources, validation, swaps and
//!   rollback per route.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod components;
pub mod config;
mod correlation;
pub mod destination;
pub mod engine;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod secret;
pub mod server;

/// The default gateway component, built from `guest/` by the build script.
pub const DEFAULT_COMPONENT: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/default-guest.wasm"));
