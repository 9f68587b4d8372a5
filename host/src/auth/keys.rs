//! XSUAA's token signing keys, fetched from `token_keys` and cached.
//!
//! Keys are looked up by the token's `kid`. An unknown `kid` triggers one
//! fetch of `{xsuaa url}/token_keys`, at most once every
//! [`MIN_REFRESH_INTERVAL`], so a flood of tokens with made-up key ids cannot
//! turn into a flood of requests to XSUAA. The binding's `verificationkey`
//! is kept as the key of last resort for tokens without a known `kid`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::config::XsuaaCredentials;
use crate::outbound::HttpClient;

/// The shortest time between two fetches of the key set.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Time allowed for fetching the key set.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The cached signing keys.
pub(super) struct KeyStore {
    token_keys_url: Option<Url>,
    verification_key: Option<DecodingKey>,
    client: HttpClient,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field(
                "token_keys_url",
                &self.token_keys_url.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    pub(super) fn new(xsuaa: &XsuaaCredentials, client: HttpClient) -> Self {
        let verification_key = xsuaa
            .verification_key
            .as_deref()
            .and_then(|pem| DecodingKey::from_rsa_pem(pem.as_bytes()).ok());
        Self {
            token_keys_url: xsuaa.url.join("token_keys").ok(),
            verification_key,
            client,
            state: Mutex::new(State::default()),
        }
    }

    /// Returns the key for `kid`, fetching the key set when the id is
    /// unknown and the last fetch is not too recent.
    pub(super) async fn key(&self, kid: Option<&str>) -> anyhow::Result<DecodingKey> {
        let Some(kid) = kid else {
            return self
                .verification_key
                .clone()
                .context("the token names no key id and the binding has no verificationkey");
        };

        let mut state = self.state.lock().await;
        if let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        let may_fetch = state
            .fetched_at
            .is_none_or(|at| at.elapsed() >= MIN_REFRESH_INTERVAL);
        if may_fetch {
            state.fetched_at = Some(Instant::now());
            match self.fetch().await {
                Ok(keys) => state.keys = keys,
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "fetching XSUAA token keys failed"
                ),
            }
        }
        if let Some(key) = state.keys.get(kid) {
            return Ok(key.clone());
        }
        self.verification_key
            .clone()
            .with_context(|| format!("no signing key with id '{kid}' is known"))
    }

    async fn fetch(&self) -> anyhow::Result<HashMap<String, DecodingKey>> {
        let url = self
            .token_keys_url
            .as_ref()
            .context("the XSUAA URL cannot have a token_keys path")?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(header::ACCEPT, "application/json")
            .body(Bytes::new())?;
        let (status, body) = self.client.send_small(request, FETCH_TIMEOUT).await?;
        if status != StatusCode::OK {
            bail!("token_keys returned {status}");
        }

        let set: JwkSet =
            serde_json::from_slice(&body).context("token_keys is not a JSON Web Key Set")?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk))
            else {
                continue;
            };
            keys.insert(kid, key);
        }
        Ok(keys)
    }
}
