//! The default gateway component: serves `GET` and `HEAD` on
//! `/odata/{destination}/{service path}?{query}` by sending the same path and
//! query to the named destination through the host, and streaming the
//! backend's response back.
//!
//! The component contains no secret and resolves nothing itself: it addresses
//! the destination by name at the host's reserved authority, as the world in
//! `wit/world.wit` describes, and the host adds the credentials on the way
//! out. The request logic lives in small modules that compile natively, so
//! that `cargo test` checks it without a WebAssembly runtime.

pub mod batch;
pub mod csrf;
pub mod decode;
pub mod error;
pub mod forwarded;
pub mod headers;
pub mod links;
pub mod odata;
pub mod policy;
pub mod route;

#[cfg(target_arch = "wasm32")]
mod component;
