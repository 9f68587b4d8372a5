//! Destinations: what a name resolves to, and the resolver that looks names
//! up.
//!
//! A destination comes from the `destinations` variable or from the
//! Destination service, in that order, as in the SAP Cloud SDK. Whatever the
//! source, it ends as a [`ResolvedDestination`]: a URL, the header that
//! carries its credentials, the extras (`sap-client`, `URL.headers.*`,
//! `URL.queries.*`) to add to every request, and how to reach it (directly,
//! with its own TLS settings, or through the Connectivity proxy). Secrets
//! stay in [`Secret`]s.

mod cache;
mod key_store;
mod properties;
pub mod resolver;
pub mod service;
pub mod token;

use std::time::Duration;

use http::HeaderName;
use url::Url;

use crate::auth::Tenant;
use crate::outbound::HttpClient;
use crate::secret::Secret;
pub use resolver::Resolver;

/// The authentication types of the Destination service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticationType {
    NoAuthentication,
    BasicAuthentication,
    OAuth2ClientCredentials,
    OAuth2Password,
    OAuth2RefreshToken,
    OAuth2JWTBearer,
    OAuth2UserTokenExchange,
    OAuth2SAMLBearerAssertion,
    OAuth2TechnicalUserPropagation,
    PrincipalPropagation,
    ClientCertificateAuthentication,
    /// A type this host does not apply.
    Unsupported(String),
}

impl AuthenticationType {
    pub fn parse(name: &str) -> Self {
        match name {
            "NoAuthentication" => Self::NoAuthentication,
            "BasicAuthentication" => Self::BasicAuthentication,
            "OAuth2ClientCredentials" => Self::OAuth2ClientCredentials,
            "OAuth2Password" => Self::OAuth2Password,
            "OAuth2RefreshToken" => Self::OAuth2RefreshToken,
            "OAuth2JWTBearer" => Self::OAuth2JWTBearer,
            "OAuth2UserTokenExchange" => Self::OAuth2UserTokenExchange,
            "OAuth2SAMLBearerAssertion" => Self::OAuth2SAMLBearerAssertion,
            "OAuth2TechnicalUserPropagation" => Self::OAuth2TechnicalUserPropagation,
            "PrincipalPropagation" => Self::PrincipalPropagation,
            "ClientCertificateAuthentication" => Self::ClientCertificateAuthentication,
            other => Self::Unsupported(other.to_owned()),
        }
    }

    /// Returns whether the credentials depend on the calling user, so that
    /// the destination is cached per user.
    pub fn is_user_dependent(&self) -> bool {
        matches!(
            self,
            Self::OAuth2RefreshToken
                | Self::OAuth2JWTBearer
                | Self::OAuth2UserTokenExchange
                | Self::OAuth2SAMLBearerAssertion
                | Self::PrincipalPropagation
        )
    }
}

/// The route to a destination (`ProxyType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyType {
    Internet,
    /// Through the Connectivity service and a Cloud Connector.
    OnPremise,
    Unsupported(String),
}

/// A destination's configuration, in the Destination service's terms.
#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub url: Url,
    pub authentication: AuthenticationType,
    pub proxy_type: ProxyType,
    /// `CloudConnectorLocationId`, for on-premise destinations.
    pub location_id: Option<String>,
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
    /// `TrustAll`: accept any server certificate.
    pub trust_all: bool,
    /// `KeyStoreLocation` and `KeyStorePassword`, for client certificates.
    pub key_store_location: Option<String>,
    pub key_store_password: Option<Secret>,
    /// `forwardAuthToken`: send the caller's token as `Authorization`, as
    /// the approuter does.
    pub forward_auth_token: bool,
}

impl DestinationConfig {
    /// Creates a destination with `NoAuthentication` on the internet and no
    /// other properties.
    pub fn new(name: impl Into<String>, url: Url) -> Self {
        Self {
            name: name.into(),
            url,
            authentication: AuthenticationType::NoAuthentication,
            proxy_type: ProxyType::Internet,
            location_id: None,
            user: None,
            password: None,
            token_service_url: None,
            client_id: None,
            client_secret: None,
            sap_client: None,
            url_headers: Vec::new(),
            url_queries: Vec::new(),
            timeout: None,
            trust_all: false,
            key_store_location: None,
            key_store_password: None,
            forward_auth_token: false,
        }
    }
}

/// A destination ready to send to: configuration plus credentials.
#[derive(Debug, Clone)]
pub struct ResolvedDestination {
    pub config: DestinationConfig,
    /// The header that carries the credentials, if the type needs one.
    pub auth_header: Option<AuthHeader>,
    /// A client with the destination's own TLS settings (client
    /// certificate, `TrustAll`), when it needs one.
    pub client: Option<HttpClient>,
    /// The subscriber tenant the destination belongs to, `None` for the
    /// provider's and for local destinations.
    pub tenant: Option<Tenant>,
}

/// A header with a secret value, such as `Authorization: Bearer ...`.
#[derive(Debug, Clone)]
pub struct AuthHeader {
    pub name: HeaderName,
    pub value: Secret,
}

/// The reason a destination name could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No source has a destination with this name.
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
