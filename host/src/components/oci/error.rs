//! Errors of the registry client. Each message names the reference or the
//! registry and what to check. No message contains a credential or a token.

use crate::components::digest::Digest;

/// A failed resolve or pull.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "request to registry {registry} for {reference} failed: {detail}; \
         check the registry address and that it is reachable"
    )]
    Unreachable {
        registry: String,
        reference: String,
        detail: String,
    },

    #[error(
        "registry {registry} did not complete a request for {reference} within {seconds} \
         seconds; try again later or check the registry"
    )]
    TimedOut {
        registry: String,
        reference: String,
        seconds: u64,
    },

    #[error(
        "registry {registry} requires authentication for {reference}: set \
         BTP_GATEWAY_REGISTRY_USERNAME and BTP_GATEWAY_REGISTRY_PASSWORD"
    )]
    AuthenticationRequired { registry: String, reference: String },

    #[error(
        "registry {registry} rejected the configured credentials for {reference}: check \
         BTP_GATEWAY_REGISTRY_USERNAME and BTP_GATEWAY_REGISTRY_PASSWORD (a password or token)"
    )]
    CredentialsRejected { registry: String, reference: String },

    #[error(
        "registry {registry} denied access to {reference}: give the configured account pull \
         access to the repository"
    )]
    Denied { registry: String, reference: String },

    #[error("{reference} not found: {detail}; check the repository name and the tag or digest")]
    NotFound { reference: String, detail: String },

    #[error("registry {registry} returned {status} for {reference}{detail}")]
    UnexpectedStatus {
        registry: String,
        reference: String,
        status: http::StatusCode,
        /// The registry's error code and message, with a leading `: `, or
        /// empty.
        detail: String,
    },

    #[error(
        "registry {registry} sent an authentication challenge for {reference} that cannot be \
         used: {reason}"
    )]
    InvalidChallenge {
        registry: String,
        reference: String,
        reason: String,
    },

    #[error("fetching a registry token from {realm} for {reference} failed: {reason}")]
    Token {
        /// The token endpoint without its query.
        realm: String,
        reference: String,
        reason: String,
    },

    #[error(
        "registry {registry} redirected a request for {reference} to {location}, which is \
         {reason}"
    )]
    InvalidRedirect {
        registry: String,
        reference: String,
        /// The redirect target without its query, which may carry a
        /// signature.
        location: String,
        reason: String,
    },

    #[error(
        "registry {registry} redirected a request for {reference} more than {max} times; \
         check the registry's storage configuration"
    )]
    TooManyRedirects {
        registry: String,
        reference: String,
        max: usize,
    },

    #[error("the manifest of {reference} is invalid: {reason}")]
    InvalidManifest { reference: String, reason: String },

    #[error(
        "{reference} is an image index without a single WebAssembly entry; its entries are \
         {entries}; point the reference at one manifest or publish one for platform wasip2/wasm"
    )]
    NoMatchingIndexEntry { reference: String, entries: String },

    #[error(
        "{reference} has no `application/wasm` layer; its layers have the media types \
         {found}; publish the component with a WebAssembly tool such as `wkg oci push`"
    )]
    NoComponentLayer { reference: String, found: String },

    #[error("{reference} has {count} `application/wasm` layers; expected exactly one component")]
    SeveralComponentLayers { reference: String, count: usize },

    #[error(
        "the {content} of {reference} is {size} bytes, more than the limit of {max} bytes; raise \
         the limit or publish a smaller component"
    )]
    TooLarge {
        reference: String,
        content: &'static str,
        size: u64,
        max: u64,
    },

    #[error("the manifest of {reference} is larger than the limit of {max} bytes")]
    ManifestTooLarge { reference: String, max: u64 },

    #[error(
        "registry {registry} sent a {content} for {reference} that is not {declared} bytes long \
         as its descriptor declares"
    )]
    SizeMismatch {
        registry: String,
        reference: String,
        content: &'static str,
        declared: u64,
    },

    #[error(
        "the {content} of {reference} does not match its digest: expected {expected}, received \
         content with digest {actual}"
    )]
    DigestMismatch {
        reference: String,
        content: &'static str,
        expected: Digest,
        actual: Digest,
    },
}
