//! OAuth 2.0 client credentials tokens, one per tenant, cached until shortly
//! before they expire.
//!
//! Used for the host's own XSUAA tokens towards the Destination service and
//! the Connectivity proxy, and for `OAuth2ClientCredentials` destinations
//! from the `destinations` variable. Each tenant's entry has its own lock,
//! held while its token is fetched, so a burst of requests makes one token
//! request per tenant.
//!
//! A subscriber tenant's token comes from its own token endpoint: the
//! provider's token URL with the first host label replaced by the
//! subscriber's subdomain, when the binding names its `uaadomain` (as on
//! BTP). Otherwise (a local emulator on 127.0.0.1) the request goes to the
//! provider's URL with the `x-zid` header naming the tenant's zone, which
//! XSUAA also accepts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, header};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::auth::Tenant;
use crate::config::{ClientAuthentication, OAuthClient};
use crate::metrics::METRICS;
use crate::outbound::HttpClient;
use crate::outbound::tls::{ClientIdentity, client_config};
use crate::secret::Secret;

/// Time allowed for one token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A token is renewed this long before it expires, so that it is still
/// valid when the request that carries it arrives.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// An access token and the time it stops being used.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub value: Secret,
    pub renew_at: Instant,
}

/// One tenant's cached token, locked while it is renewed.
type Slot = Arc<Mutex<Option<AccessToken>>>;

/// A token source with a cache of one token per tenant.
#[derive(Debug)]
pub struct TokenCache {
    client: OAuthClient,
    http: HttpClient,
    /// Tenant zone id (`None` for the provider) to that tenant's slot.
    slots: SyncMutex<HashMap<Option<String>, Slot>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: Option<String>,
}

impl TokenCache {
    /// Creates a token source. A client with an X.509 certificate gets its
    /// own HTTP client that presents the certificate.
    pub fn new(client: OAuthClient, http: &HttpClient) -> anyhow::Result<Self> {
        let http = match &client.authentication {
            ClientAuthentication::Secret(_) => http.clone(),
            ClientAuthentication::Certificate {
                certificate_pem,
                key_pem,
            } => {
                let identity = ClientIdentity::from_pem(
                    certificate_pem.as_bytes(),
                    key_pem.expose().as_bytes(),
                )
                .with_context(|| {
                    format!(
                        "the X.509 credentials of client '{}' cannot be used",
                        client.client_id
                    )
                })?;
                http.with_tls(client_config(Some(identity), false)?)?
            }
        };
        Ok(Self {
            client,
            http,
            slots: SyncMutex::new(HashMap::new()),
        })
    }

    /// Returns a valid token for `tenant` (`None` for the provider), fetching
    /// a new one when the cached one is missing or about to expire.
    pub async fn token(&self, tenant: Option<&Tenant>) -> anyhow::Result<AccessToken> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots
                .entry(tenant.map(|t| t.zone_id.clone()))
                .or_default()
                .clone()
        };

        let mut cached = slot.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
        {
            return Ok(token.clone());
        }
        let fetched = self.fetch(tenant).await;
        METRICS.token_requested(fetched.is_ok());
        let token = fetched?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn fetch(&self, tenant: Option<&Tenant>) -> anyhow::Result<AccessToken> {
        let client = &self.client;
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &client.client_id);
            if let ClientAuthentication::Secret(secret) = &client.authentication {
                form.append_pair("client_secret", secret.expose());
            }
            form.finish()
        };

        let (token_url, zone_header) = tenant_token_url(client, tenant);
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(token_url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some(zone) = zone_header {
            request = request.header("x-zid", zone);
        }
        let request = request
            .body(Bytes::from(body))
            .context("the token URL is not a valid request URI")?;

        let token_host = token_url.host_str().unwrap_or_default().to_owned();
        let (status, body) = self
            .http
            .send_small(request, TOKEN_TIMEOUT)
            .await
            .with_context(|| format!("token request to {token_host} failed"))?;
        if !status.is_success() {
            // The OAuth error code ("unauthorized", "invalid_client") helps
            // and contains no secret. The rest of the body is not shown.
            let code = serde_json::from_slice::<OAuthError>(&body)
                .ok()
                .and_then(|error| error.error)
                .map(|code| format!(" ({code})"))
                .unwrap_or_default();
            bail!(
                "token endpoint {token_host} rejected client '{}' with status {status}{code}",
                client.client_id
            );
        }

        let response: TokenResponse = serde_json::from_slice(&body)
            .with_context(|| format!("token endpoint {token_host} returned no access_token"))?;
        let lifetime = Duration::from_secs(response.expires_in.unwrap_or(0));
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        Ok(AccessToken {
            value: response.access_token,
            renew_at: Instant::now() + lifetime - margin,
        })
    }
}

/// Returns the token URL for a tenant, and the zone to send in `x-zid` when
/// the URL cannot name the tenant.
fn tenant_token_url<'a>(
    client: &OAuthClient,
    tenant: Option<&'a Tenant>,
) -> (Url, Option<&'a str>) {
    let Some(tenant) = tenant else {
        return (client.token_url.clone(), None);
    };
    // Only a host name has a subdomain to replace; an IP address (a local
    // emulator) gets the zone in the header instead.
    let domain = match client.token_url.host() {
        Some(url::Host::Domain(domain)) => Some(domain),
        _ => None,
    };
    let by_subdomain = client
        .uaadomain
        .as_ref()
        .zip(tenant.subdomain.as_ref())
        .zip(domain)
        .and_then(|((_, subdomain), host)| {
            let (_, rest) = host.split_once('.')?;
            let mut url = client.token_url.clone();
            url.set_host(Some(&format!("{subdomain}.{rest}"))).ok()?;
            Some(url)
        });
    match by_subdomain {
        Some(url) => (url, None),
        None => (client.token_url.clone(), Some(tenant.zone_id.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(token_url: &str, uaadomain: Option<&str>) -> OAuthClient {
        OAuthClient {
            client_id: "c".to_owned(),
            authentication: ClientAuthentication::Secret(Secret::new("s")),
            token_url: Url::parse(token_url).unwrap_or_else(|error| panic!("{error}")),
            uaadomain: uaadomain.map(str::to_owned),
        }
    }

    fn tenant(subdomain: Option<&str>) -> Tenant {
        Tenant {
            zone_id: "zone-2".to_owned(),
            subdomain: subdomain.map(str::to_owned),
        }
    }

    #[test]
    fn subscriber_by_subdomain_on_btp() {
        let client = client(
            "https://provider.authentication.example/oauth/token",
            Some("authentication.example"),
        );
        let subscriber = tenant(Some("customer-a"));
        let (url, zone) = tenant_token_url(&client, Some(&subscriber));
        assert_eq!(
            url.as_str(),
            "https://customer-a.authentication.example/oauth/token"
        );
        assert_eq!(zone, None);
    }

    #[test]
    fn subscriber_by_zone_header_locally() {
        let client = client("http://127.0.0.1:4010/oauth/token", None);
        let subscriber = tenant(Some("customer-a"));
        let (url, zone) = tenant_token_url(&client, Some(&subscriber));
        assert_eq!(url.as_str(), "http://127.0.0.1:4010/oauth/token");
        assert_eq!(zone, Some("zone-2"));
    }

    #[test]
    fn ip_address_host_uses_zone_header() {
        let client = client("http://127.0.0.1:4010/oauth/token", Some("127.0.0.1:4010"));
        let subscriber = tenant(Some("customer-a"));
        let (url, zone) = tenant_token_url(&client, Some(&subscriber));
        assert_eq!(url.as_str(), "http://127.0.0.1:4010/oauth/token");
        assert_eq!(zone, Some("zone-2"));
    }

    #[test]
    fn provider_uses_binding_url() {
        let client = client(
            "https://provider.authentication.example/oauth/token",
            Some("authentication.example"),
        );
        let (url, zone) = tenant_token_url(&client, None);
        assert_eq!(
            url.as_str(),
            "https://provider.authentication.example/oauth/token"
        );
        assert_eq!(zone, None);
    }
}
