//! On-premise destinations: requests go through the Connectivity service's
//! HTTP proxy to a Cloud Connector.
//!
//! Every request carries, as the SAP Cloud SDK sends them:
//! - `Proxy-Authorization: Bearer <token>`, a client credentials token of
//!   the connectivity binding for the destination's tenant, fetched on every
//!   request from its own cache (so a cached destination still gets a valid
//!   proxy token);
//! - `SAP-Connectivity-SCC-Location_ID` when the destination names a
//!   `CloudConnectorLocationId`;
//! - `SAP-Connectivity-Authentication: Bearer <caller's token>` for
//!   `PrincipalPropagation`, so the Cloud Connector can map the user.
//!
//! The proxy speaks plain HTTP: the Cloud Connector makes the TLS connection
//! to the backend, so on-premise URLs use `http://` and a virtual host.

use anyhow::Context as _;
use http::{HeaderName, HeaderValue};

use crate::auth::Caller;
use crate::config::ConnectivityCredentials;
use crate::destination::token::TokenCache;
use crate::destination::{AuthenticationType, ResolvedDestination};
use crate::outbound::HttpClient;

const LOCATION_HEADER: HeaderName = HeaderName::from_static("sap-connectivity-scc-location_id");
const USER_HEADER: HeaderName = HeaderName::from_static("sap-connectivity-authentication");

/// The connectivity binding's proxy and token cache.
#[derive(Debug)]
pub struct Connectivity {
    tokens: TokenCache,
    proxy: HttpClient,
}

impl Connectivity {
    pub fn new(credentials: &ConnectivityCredentials, client: &HttpClient) -> anyhow::Result<Self> {
        Ok(Self {
            tokens: TokenCache::new(credentials.client.clone(), client)?,
            proxy: client.through_proxy(&credentials.proxy_host, credentials.proxy_port)?,
        })
    }

    /// Returns the client that sends through the proxy.
    pub fn client(&self) -> &HttpClient {
        &self.proxy
    }

    /// Returns the headers for one request through the proxy.
    pub async fn proxy_headers(
        &self,
        destination: &ResolvedDestination,
        caller: Option<&Caller>,
    ) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
        let token = self
            .tokens
            .token(destination.tenant.as_ref())
            .await
            .context("no token for the Connectivity proxy")?;
        let mut proxy_authorization =
            HeaderValue::try_from(format!("Bearer {}", token.value.expose()))
                .context("the Connectivity token is not a valid header value")?;
        proxy_authorization.set_sensitive(true);
        let mut headers = vec![(http::header::PROXY_AUTHORIZATION, proxy_authorization)];

        if let Some(location) = &destination.config.location_id {
            let value = HeaderValue::try_from(location.as_str())
                .context("CloudConnectorLocationId is not a valid header value")?;
            headers.push((LOCATION_HEADER, value));
        }

        if destination.config.authentication == AuthenticationType::PrincipalPropagation {
            let caller = caller
                .filter(|caller| caller.user.is_some())
                .context("PrincipalPropagation needs a logged-in user")?;
            let mut value = HeaderValue::try_from(format!("Bearer {}", caller.token.expose()))
                .context("the caller's token is not a valid header value")?;
            value.set_sensitive(true);
            headers.push((USER_HEADER, value));
        }
        Ok(headers)
    }
}
