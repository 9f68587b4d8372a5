//! OAuth 2.0 client credentials tokens, cached until shortly before they
//! expire.
//!
//! Used for the host's own XSUAA token towards the Destination service and
//! for `OAuth2ClientCredentials` destinations from the `destinations`
//! variable. The cache lock is held while a token is fetched, so a burst of
//! requests makes one token request.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, header};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::outbound::HttpClient;
use crate::secret::Secret;

/// Time allowed for one token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A token is renewed this long before it expires, so that it is still
/// valid when the request that carries it arrives.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The token endpoint and the client to request tokens as.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
}

/// An access token and the time it stops being used.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub value: Secret,
    pub renew_at: Instant,
}

/// A token source with a cache of one token.
#[derive(Debug)]
pub struct TokenCache {
    credentials: ClientCredentials,
    client: HttpClient,
    cached: Mutex<Option<AccessToken>>,
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
    pub fn new(credentials: ClientCredentials, client: HttpClient) -> Self {
        Self {
            credentials,
            client,
            cached: Mutex::new(None),
        }
    }

    /// Returns a valid token, fetching a new one when the cached one is
    /// missing or about to expire.
    pub async fn token(&self) -> anyhow::Result<AccessToken> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|token| Instant::now() < token.renew_at)
        {
            return Ok(token.clone());
        }

        let token = self.fetch().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn fetch(&self) -> anyhow::Result<AccessToken> {
        let credentials = &self.credentials;
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &credentials.client_id)
            .append_pair("client_secret", credentials.client_secret.expose())
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(credentials.token_url.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Bytes::from(body))
            .context("the token URL is not a valid request URI")?;

        let token_host = credentials
            .token_url
            .host_str()
            .unwrap_or_default()
            .to_owned();
        let (status, body) = self
            .client
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
                "token endpoint {token_host} rejected the client credentials with status {status}{code}"
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
