//! Registry authentication: the `Bearer` token flow of the Docker and OCI
//! registries, `Basic` credentials, and the cache of `Authorization` values
//! per registry and scope.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

use super::challenge::{Challenge, parse_challenges};
use super::transport::{Exchange, Transport, TransportError, check_allowed, redact};
use crate::secret::Secret;

/// Token lifetime when the token response has no `expires_in`, as the
/// Docker token specification defines.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The largest token response read.
const TOKEN_BODY_LIMIT: u64 = 1024 * 1024;

/// The account used to pull from a registry: a user name with its password,
/// or with an access token in place of the password.
#[derive(Clone, Debug)]
pub struct RegistryCredentials {
    pub username: String,
    pub password: Secret,
}

impl RegistryCredentials {
    fn basic_authorization(&self) -> Secret {
        let pair = format!("{}:{}", self.username, self.password.expose());
        Secret::new(format!("Basic {}", BASE64.encode(pair)))
    }
}

/// An `Authorization` value to retry with, and whether it carries the
/// configured credentials, so that a 401 after the retry can be reported
/// as rejected credentials rather than missing ones.
pub(super) struct Authorization {
    pub value: Secret,
    pub with_credentials: bool,
}

/// The reason no `Authorization` value could be obtained.
#[derive(Debug)]
pub(super) enum AuthError {
    /// The registry needs credentials and none are configured.
    Required,
    /// The registry or its token service rejected the credentials.
    Rejected,
    InvalidChallenge(String),
    /// The token request failed; the realm is redacted.
    Token {
        realm: String,
        reason: String,
    },
}

/// The credentials for one registry client and the `Authorization` values
/// obtained with them.
pub(super) struct Authenticator {
    credentials: Option<RegistryCredentials>,
    cache: Mutex<HashMap<CacheKey, CachedAuthorization>>,
}

#[derive(Hash, PartialEq, Eq)]
struct CacheKey {
    registry: String,
    scope: String,
}

struct CachedAuthorization {
    value: Secret,
    with_credentials: bool,
    /// `None` for Basic credentials, which do not expire.
    expires_at: Option<Instant>,
}

impl Authenticator {
    pub fn new(credentials: Option<RegistryCredentials>) -> Self {
        Self {
            credentials,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Returns the cached `Authorization` for the registry and scope, unless
    /// it expired.
    pub fn cached(&self, registry: &str, scope: &str) -> Option<Authorization> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let key = CacheKey::new(registry, scope);
        let expired = cache
            .get(&key)?
            .expires_at
            .is_some_and(|expires_at| expires_at <= Instant::now());
        if expired {
            cache.remove(&key);
            return None;
        }
        cache.get(&key).map(|cached| Authorization {
            value: cached.value.clone(),
            with_credentials: cached.with_credentials,
        })
    }

    /// Drops the cached `Authorization`, after the registry rejected it.
    pub fn forget(&self, registry: &str, scope: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.remove(&CacheKey::new(registry, scope));
    }

    /// Returns an `Authorization` for the challenges of a 401 response: a
    /// token fetched for a `Bearer` challenge, or the credentials for a
    /// `Basic` one. Caches it for the registry and scope.
    pub async fn authorize(
        &self,
        transport: &Transport,
        response_headers: &HeaderMap,
        registry: &str,
        scope: &str,
    ) -> Result<Authorization, AuthError> {
        let challenges: Vec<Challenge> = response_headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(parse_challenges)
            .collect();

        let (value, expires_at) = if let Some(bearer) = find(&challenges, "bearer") {
            let (token, lifetime) = self.fetch_token(transport, bearer, scope).await?;
            (
                Secret::new(format!("Bearer {}", token.expose())),
                Some(Instant::now() + lifetime),
            )
        } else if find(&challenges, "basic").is_some() {
            let credentials = self.credentials.as_ref().ok_or(AuthError::Required)?;
            (credentials.basic_authorization(), None)
        } else {
            let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
            return Err(AuthError::InvalidChallenge(if schemes.is_empty() {
                "the 401 response has no WWW-Authenticate challenge".to_owned()
            } else {
                format!(
                    "only Bearer and Basic are supported, the registry offers {}",
                    schemes.join(", ")
                )
            }));
        };

        let with_credentials = self.credentials.is_some();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            CacheKey::new(registry, scope),
            CachedAuthorization {
                value: value.clone(),
                with_credentials,
                expires_at,
            },
        );
        Ok(Authorization {
            value,
            with_credentials,
        })
    }

    /// Requests a token from the challenge's realm with `service` and
    /// `scope`, sending the credentials when configured. Returns the token
    /// and its lifetime.
    async fn fetch_token(
        &self,
        transport: &Transport,
        challenge: &Challenge,
        default_scope: &str,
    ) -> Result<(Secret, Duration), AuthError> {
        let realm = challenge.param("realm").ok_or_else(|| {
            AuthError::InvalidChallenge("the Bearer challenge has no realm".to_owned())
        })?;
        let mut url = Url::parse(realm).map_err(|_| {
            AuthError::InvalidChallenge(format!("the Bearer realm {realm:?} is not a URL"))
        })?;
        let token_error = |url: &Url, reason: String| AuthError::Token {
            realm: redact(url),
            reason,
        };
        if let Err(TransportError::Disallowed(_, reason)) = check_allowed(&url) {
            return Err(token_error(&url, format!("the realm is {reason}")));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = challenge.param("service") {
                query.append_pair("service", service);
            }
            query.append_pair("scope", challenge.param("scope").unwrap_or(default_scope));
        }

        let basic = self
            .credentials
            .as_ref()
            .map(RegistryCredentials::basic_authorization);
        let origin = url.origin();
        let reply = transport
            .exchange(Exchange {
                method: Method::GET,
                url: url.clone(),
                accept: Some("application/json"),
                authorization: basic.as_ref().map(|value| (value, origin)),
                body_limit: TOKEN_BODY_LIMIT,
            })
            .await
            .map_err(|error| token_error(&url, describe(error)))?;

        match reply.status {
            status if status.is_success() => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if basic.is_some() => {
                return Err(AuthError::Rejected);
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(AuthError::Required),
            status => {
                return Err(token_error(
                    &url,
                    format!("the token service returned {status}"),
                ));
            }
        }
        parse_token_response(&reply.body).map_err(|reason| token_error(&url, reason))
    }
}

impl CacheKey {
    fn new(registry: &str, scope: &str) -> Self {
        Self {
            registry: registry.to_owned(),
            scope: scope.to_owned(),
        }
    }
}

fn find<'a>(challenges: &'a [Challenge], scheme: &str) -> Option<&'a Challenge> {
    challenges
        .iter()
        .find(|challenge| challenge.scheme == scheme)
}

fn describe(error: TransportError) -> String {
    match error {
        TransportError::Failed(detail) => detail,
        TransportError::TimedOut => "the token service did not respond in time".to_owned(),
        TransportError::TooManyRedirects => "too many redirects".to_owned(),
        TransportError::Disallowed(url, reason) => {
            format!("redirected to {url}, which is {reason}")
        }
        TransportError::BodyTooLarge => "the token response is too large".to_owned(),
    }
}

/// Reads `token` or `access_token` and `expires_in` (seconds) from a token
/// response.
fn parse_token_response(body: &[u8]) -> Result<(Secret, Duration), String> {
    #[derive(serde::Deserialize)]
    struct TokenResponse {
        token: Option<Secret>,
        access_token: Option<Secret>,
        expires_in: Option<u64>,
    }
    let response: TokenResponse = serde_json::from_slice(body)
        .map_err(|error| format!("the token response is not valid JSON: {error}"))?;
    let token = response
        .token
        .or(response.access_token)
        .filter(|token| !token.is_empty())
        .ok_or("the token response has neither `token` nor `access_token`")?;
    let lifetime = response
        .expires_in
        .filter(|seconds| *seconds > 0)
        .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
    Ok((token, lifetime))
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.cache.lock().map_or(0, |cache| cache.len());
        f.debug_struct("Authenticator")
            .field(
                "username",
                &self.credentials.as_ref().map(|c| c.username.as_str()),
            )
            .field("cached_authorizations", &cached)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_or_access_token() -> Result<(), String> {
        let (token, lifetime) = parse_token_response(br#"{"token":"t1","expires_in":300}"#)?;
        assert_eq!(token.expose(), "t1");
        assert_eq!(lifetime, Duration::from_secs(300));

        let (token, lifetime) = parse_token_response(br#"{"access_token":"t2"}"#)?;
        assert_eq!(token.expose(), "t2");
        assert_eq!(lifetime, DEFAULT_TOKEN_LIFETIME);
        Ok(())
    }

    #[test]
    fn token_response_without_token() {
        for body in [
            &br#"{"expires_in":300}"#[..],
            br#"{"token":""}"#,
            b"not json",
        ] {
            assert!(parse_token_response(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn basic_authorization_encodes_pair() {
        let credentials = RegistryCredentials {
            username: "robot".to_owned(),
            password: Secret::new("hunter2"),
        };
        assert_eq!(
            credentials.basic_authorization().expose(),
            "Basic cm9ib3Q6aHVudGVyMg=="
        );
    }

    #[test]
    fn debug_hides_password() {
        let authenticator = Authenticator::new(Some(RegistryCredentials {
            username: "robot".to_owned(),
            password: Secret::new("hunter2"),
        }));
        let debug = format!("{authenticator:?}");
        assert!(debug.contains("robot"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn cache_expires_tokens() {
        let authenticator = Authenticator::new(None);
        let mut cache = authenticator
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            CacheKey::new("r", "s"),
            CachedAuthorization {
                value: Secret::new("Bearer old"),
                with_credentials: false,
                expires_at: Some(Instant::now()),
            },
        );
        cache.insert(
            CacheKey::new("r", "t"),
            CachedAuthorization {
                value: Secret::new("Bearer fresh"),
                with_credentials: false,
                expires_at: Some(Instant::now() + Duration::from_secs(60)),
            },
        );
        drop(cache);
        assert!(authenticator.cached("r", "s").is_none());
        assert!(authenticator.cached("r", "t").is_some());
        assert!(authenticator.cached("other", "t").is_none());
    }
}
