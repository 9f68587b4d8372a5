//! Destinations: what a name resolves to, and the resolver that looks names
//! up.
//!
//! A destination comes from the `destinations` variable or from the
//! Destination service, in that order, as in the SAP Cloud SDK. Whatever the
//! source, it ends as a [`ResolvedDestination`]: a URL, the header that
//! carries its credentials, and the extras (`sap-client`, `URL.headers.*`,
//! `URL.queries.*`) to add to every request. Secrets stay in [`Secret`]s.

mod cache;
mod properties;
mod resolver;
pub mod service;
pub mod token;

use std::time::Duration;

use http::HeaderName;
use url::Url;

use crate::secret::Secret;
pub use resolver::Resolver;

/// The authentication types the host can apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticationType {
    NoAuthentication,
    BasicAuthentication,
    OAuth2ClientCredentials,
    /// A type of the Destination service that this host does not apply yet.
    Unsupported(String),
}

/// A destination's configuration, in the Destination service's terms.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub url: Url,
    pub authentication: AuthenticationType,
    /// `ProxyType`; only `Internet` is applied so far.
    pub proxy_type: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token_service_url: Option<Url>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// `sap-client`, sent as a query parameter on every request.
    pub sap_client: Option<String>,
    /// `URL.headers.<name>` properties.
    pub url_headers: Vec<(String, String)>,
    /// `URL.queries.<name>` properties.
    pub url_queries: Vec<(String, String)>,
    /// How long to wait for the response headers, when set.
    pub timeout: Option<Duration>,
}

/// A destination ready to send to: configuration plus credentials.
#[derive(Debug, Clone)]
pub struct ResolvedDestination {
    pub config: DestinationConfig,
    /// The header that carries the credentials, if the type needs one.
    pub auth_header: Option<AuthHeader>,
}

/// A header with a secret value, such as `Authorization: Bearer ...`.
#[derive(Debug, Clone)]
pub struct AuthHeader {
    pub name: HeaderName,
    pub value: Secret,
}

/// Why a destination name could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No source knows the name.
    #[error("destination '{name}' was not found")]
    NotFound { name: String },
    /// A source failed: the Destination service or a token endpoint was
    /// unreachable, slow, or rejected the host's credentials.
    #[error("destination '{name}' could not be looked up")]
    Unavailable {
        name: String,
        #[source]
        cause: anyhow::Error,
    },
    /// The destination exists but cannot be used as configured.
    #[error("destination '{name}' cannot be used: {reason}")]
    Unusable { name: String, reason: String },
}

pub(crate) use properties::parse_properties;
