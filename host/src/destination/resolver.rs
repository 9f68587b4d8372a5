//! Resolution of a destination name: the `destinations` variable first,
//! then the Destination service through the cache.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use http::header;

use super::cache::DestinationCache;
use super::service::DestinationService;
use super::token::{ClientCredentials, TokenCache};
use super::{AuthHeader, AuthenticationType, DestinationConfig, LookupError, ResolvedDestination};
use crate::config::DestinationServiceCredentials;
use crate::outbound::HttpClient;
use crate::secret::Secret;

/// Resolves destination names to destinations with credentials.
#[derive(Debug)]
pub struct Resolver {
    local: HashMap<String, LocalDestination>,
    service: Option<DestinationService>,
    cache: DestinationCache,
}

/// A destination from the `destinations` variable and, for OAuth types, its
/// token cache.
#[derive(Debug)]
struct LocalDestination {
    config: DestinationConfig,
    tokens: Option<TokenCache>,
}

impl Resolver {
    pub fn new(
        local: Vec<DestinationConfig>,
        service: Option<&DestinationServiceCredentials>,
        client: &HttpClient,
    ) -> Self {
        let local = local
            .into_iter()
            .map(|config| {
                let tokens = oauth_credentials(&config)
                    .map(|credentials| TokenCache::new(credentials, client.clone()));
                (config.name.clone(), LocalDestination { config, tokens })
            })
            .collect();
        Self {
            local,
            service: service
                .map(|credentials| DestinationService::new(credentials, client.clone())),
            cache: DestinationCache::default(),
        }
    }

    /// Resolves a name, case-sensitively.
    pub async fn resolve(&self, name: &str) -> Result<Arc<ResolvedDestination>, LookupError> {
        if let Some(local) = self.local.get(name) {
            return resolve_local(local).await.map(Arc::new);
        }

        let Some(service) = &self.service else {
            return Err(LookupError::NotFound {
                name: name.to_owned(),
            });
        };
        if let Some(cached) = self.cache.get(name) {
            return Ok(cached);
        }
        let found = service.find(name).await?;
        let destination = Arc::new(found.destination);
        self.cache
            .insert(name, destination.clone(), found.token_lifetime);
        Ok(destination)
    }

    /// Returns whether a Destination service binding is configured.
    pub fn has_service(&self) -> bool {
        self.service.is_some()
    }

    /// The names of the local destinations, for the start-up log.
    pub fn local_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.local.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

async fn resolve_local(local: &LocalDestination) -> Result<ResolvedDestination, LookupError> {
    let config = &local.config;
    let auth_header = match &config.authentication {
        AuthenticationType::NoAuthentication => None,
        AuthenticationType::BasicAuthentication => Some(basic_header(config).map_err(
            |reason| LookupError::Unusable {
                name: config.name.clone(),
                reason,
            },
        )?),
        AuthenticationType::OAuth2ClientCredentials => {
            let Some(tokens) = &local.tokens else {
                return Err(LookupError::Unusable {
                    name: config.name.clone(),
                    reason: "tokenServiceUrl, clientId or clientSecret is missing".to_owned(),
                });
            };
            let token = tokens
                .token()
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
        AuthenticationType::Unsupported(kind) => {
            return Err(LookupError::Unusable {
                name: config.name.clone(),
                reason: format!("authentication type '{kind}' is not supported yet"),
            });
        }
    };
    Ok(ResolvedDestination {
        config: config.clone(),
        auth_header,
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

fn oauth_credentials(config: &DestinationConfig) -> Option<ClientCredentials> {
    if config.authentication != AuthenticationType::OAuth2ClientCredentials {
        return None;
    }
    Some(ClientCredentials {
        token_url: config.token_service_url.clone()?,
        client_id: config.client_id.clone()?,
        client_secret: config.client_secret.clone()?,
    })
}
