//! Pulling components published as OCI artifacts.
//!
//! An operator publishes a component (a `.wasm` file) to an OCI registry,
//! for example with `wkg oci push`, and configures a reference such as
//! `oci://ghcr.io/acme/gateway:v1`. [`RegistryClient::resolve`] returns the
//! digest of the manifest that a tag points at now, so that a caller can
//! notice when the tag moves, and [`RegistryClient::pull`] downloads the
//! component.
//!
//! # Policy
//!
//! - The registry is the operator's choice, so requests to it do not pass
//!   the egress guard that limits the addresses destinations may reach.
//! - Registries on this machine (`localhost`, 127.0.0.0/8, `[::1]`) are
//!   reached over plain HTTP, as Docker does. Every other registry, token
//!   service and redirect target is reached only over HTTPS. Certificates
//!   are verified against the system's certificate authorities, or the
//!   bundled Mozilla roots when the system has none.
//! - Content is not trusted until checked. The manifest's bytes must match
//!   the digest in a pinned reference and the registry's
//!   `Docker-Content-Digest`, and an image index entry must match its
//!   digest. The component must match the size and digest of its
//!   `application/wasm` layer. A layer larger than the caller's limit is
//!   rejected before the download. No blob download reads more than the
//!   blob's declared size, and no manifest download more than 4 MiB.
//! - Credentials are sent only to the registry's origin and to the token
//!   service its `Bearer` challenge names, never to a redirect target on
//!   another origin (registries redirect blob downloads to object storage).
//!   Tokens are cached per registry and repository until they expire.
//!   Neither credentials nor tokens appear in errors, logs or `Debug`
//!   output.
//! - Each request, redirects and body included, must finish within 60
//!   seconds, and a connection must be established within 10 seconds.

mod auth;
mod challenge;
mod client;
mod error;
mod manifest;
mod reference;
mod registry_error;
mod transport;

pub use auth::RegistryCredentials;
pub use client::{Pulled, RegistryClient};
pub use error::OciError;
pub use reference::{InvalidReference, Reference};
