//! Resolution of a destination name: the `destinations` variable first,
//! then the Destination service through the cache.
//!
//! As the SAP Cloud SDK does with its default "subscriber first" strategy, a
//! caller from a subscriber tenant gets the subscriber's destination when
//! one exists, else the provider's. User-based authentication types get the
//! caller's token as `X-user-token`; tokens issued to a client rather than a
//! user are never propagated.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use http::header;

use super::cache::DestinationCache;
use super::service::{DestinationService, LookupRequest};
use super::token::TokenCache;
use super::{AuthHeader, AuthenticationType, DestinationConfig, LookupError, ResolvedDestination};
use crate::auth::Caller;
use crate::config::{ClientAuthentication, DestinationServiceCredentials, OAuthClient};
use crate::metrics::METRICS;
use crate::outbound::HttpClient;
use crate::secret::Secret;

/// Resolves destination names to destinations with credentials.
#[derive(Debug)]
pub struct Resolver {
    local: HashMap<String, LocalDestination>,
    service: Option<DestinationService>,
    cache: DestinationCache,
    /// The provider's zone id: callers from it are not subscribers.
    provider_zone: Option<String>,
}

/// A destination from the `destinations` variable and, for OAuth types, its
/// token cache.
#[derive(Debug)]
struct LocalDestination {
    config: DestinationConfig,
    tokens: Option<TokenCache>,
    /// The TLS client for `TrustAll`, built once.
    client: Option<HttpClient>,
}

/// The requester a destination is resolved for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Requester<'a> {
    /// The authenticated caller, if inbound authentication is on.
    pub caller: Option<&'a Caller>,
    /// The caller's refresh token, for `OAuth2RefreshToken` destinations.
    pub refresh_token: Option<&'a Secret>,
}

impl Resolver {
    pub fn new(
        local: Vec<DestinationConfig>,
        service: Option<&DestinationServiceCredentials>,
        provider_zone: Option<String>,
        client: &HttpClient,
    ) -> anyhow::Result<Self> {
        let mut local_map = HashMap::with_capacity(local.len());
        for config in local {
            let tokens = match oauth_client(&config) {
                Some(oauth) => Some(TokenCache::new(oauth, client)?),
                None => None,
            };
            let tls_client = super::key_store::tls_client(client, &config, &[])
                .map_err(|reason| anyhow::anyhow!("destination '{}': {reason}", config.name))?;
            local_map.insert(
                config.name.clone(),
                LocalDestination {
                    config,
                    tokens,
                    client: tls_client,
                },
            );
        }
        let service = match service {
            Some(credentials) => Some(DestinationService::new(credentials, client.clone())?),
            None => None,
        };
        Ok(Self {
            local: local_map,
            service,
            cache: DestinationCache::default(),
            provider_zone,
        })
    }

    /// Resolves a name, case-sensitively, for a requester.
    pub async fn resolve(
        &self,
        name: &str,
        requester: Requester<'_>,
    ) -> Result<Arc<ResolvedDestination>, LookupError> {
        if let Some(local) = self.local.get(name) {
            return resolve_local(local).await.map(Arc::new);
        }
        let Some(service) = &self.service else {
            return Err(LookupError::NotFound {
                name: name.to_owned(),
            });
        };

        let subscriber = requester
            .caller
            .map(|caller| &caller.tenant)
            .filter(|tenant| Some(&tenant.zone_id) != self.provider_zone.as_ref());
        let key = (
            subscriber.map(|tenant| tenant.zone_id.clone()),
            name.to_owned(),
        );
        let user = requester.caller.and_then(|caller| caller.user.as_deref());
        if let Some(cached) = self.cache.get(&key, user) {
            METRICS.destination_cache_lookup(true);
            return Ok(cached);
        }

        // One lookup per tenant and name at a time; the others find the
        // result in the cache when the first one is done.
        let flight = self.cache.flight(&key);
        let _in_flight = flight.lock().await;
        if let Some(cached) = self.cache.get(&key, user) {
            METRICS.destination_cache_lookup(true);
            return Ok(cached);
        }
        METRICS.destination_cache_lookup(false);

        let user_token = requester
            .caller
            .filter(|caller| caller.user.is_some())
            .map(|caller| &caller.token);
        let tenants = subscriber.map(Some).into_iter().chain([None]);
        for tenant in tenants {
            let request = LookupRequest {
                tenant,
                user_token,
                refresh_token: requester.refresh_token,
            };
            let found = match service.find(name, request).await {
                Ok(found) => found,
                Err(LookupError::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };

            let destination = Arc::new(found.destination);
            if found.cacheable {
                let per_user = destination.config.authentication.is_user_dependent();
                let cache_user = if per_user { user } else { None };
                if !per_user || cache_user.is_some() {
                    self.cache.insert(
                        key.clone(),
                        cache_user,
                        destination.clone(),
                        found.token_lifetime,
                    );
                }
            }
            return Ok(destination);
        }
        Err(LookupError::NotFound {
            name: name.to_owned(),
        })
    }

    /// Returns whether a Destination service binding is configured.
    pub fn has_service(&self) -> bool {
        self.service.is_some()
    }

    /// Returns the names of the local destinations, for the start-up log.
    pub fn local_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.local.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

async fn resolve_local(local: &LocalDestination) -> Result<ResolvedDestination, LookupError> {
    let config = &local.config;
    let unusable = |reason: String| LookupError::Unusable {
        name: config.name.clone(),
        reason,
    };
    let auth_header = match &config.authentication {
        AuthenticationType::NoAuthentication => None,
        AuthenticationType::BasicAuthentication => Some(basic_header(config).map_err(unusable)?),
        AuthenticationType::OAuth2ClientCredentials => {
            let Some(tokens) = &local.tokens else {
                return Err(unusable(
                    "tokenServiceUrl, clientId or clientSecret is missing".to_owned(),
                ));
            };
            let token = tokens
                .token(None)
                .await
                .map_err(|cause| LookupError::Unavailable {
                    name: config.name.clone(),
                    cause,
                })?;
            Some(AuthHeader {
                name: header::AUTHORIZATION,
                value: Secret::new(format!("Bearer {}", token.value.expose())),
            })
        }
        other => {
            return Err(unusable(format!(
                "authentication type {other:?} needs the Destination service"
            )));
        }
    };
    Ok(ResolvedDestination {
        config: config.clone(),
        auth_header,
        client: local.client.clone(),
        tenant: None,
    })
}

/// Builds `Authorization: Basic ...` from a destination's User and Password.
pub(super) fn basic_header(config: &DestinationConfig) -> Result<AuthHeader, String> {
    let (Some(user), Some(password)) = (&config.user, &config.password) else {
        return Err("BasicAuthentication needs User and Password".to_owned());
    };
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose()));
    Ok(AuthHeader {
        name: header::AUTHORIZATION,
        value: Secret::new(format!("Basic {encoded}")),
    })
}

fn oauth_client(config: &DestinationConfig) -> Option<OAuthClient> {
    if config.authentication != AuthenticationType::OAuth2ClientCredentials {
        return None;
    }
    Some(OAuthClient {
        client_id: config.client_id.clone()?,
        authentication: ClientAuthentication::Secret(config.client_secret.clone()?),
        token_url: config.token_service_url.clone()?,
        uaadomain: None,
    })
}
