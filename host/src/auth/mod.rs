//! Inbound authentication: who is calling, and for which tenant.
//!
//! Policy: when an xsuaa binding exists, every request but the health check
//! must carry `Authorization: Bearer <JWT>` issued by that XSUAA for this
//! application, and the host rejects anything else with 401. The validated
//! token is kept in the host as the caller's identity: it selects the tenant
//! for destination lookups and is the user token that user-based
//! destinations propagate. It never reaches the guest. Without an xsuaa
//! binding, no caller is authenticated and every lookup runs as the provider
//! tenant without a user.

pub mod admin;
mod jwt;
mod keys;
pub mod scopes;

use std::sync::Arc;

use http::HeaderMap;

use crate::config::XsuaaCredentials;
use crate::outbound::HttpClient;
use crate::secret::Secret;
pub use jwt::{Claims, TokenError};
use keys::KeyStore;

/// A BTP tenant (an XSUAA identity zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    /// The zone id (`zid`).
    pub zone_id: String,
    /// The subaccount subdomain (`ext_attr.zdn`), which names the tenant's
    /// XSUAA token endpoint.
    pub subdomain: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Tenant,
    /// The user's identifying key, for tokens issued to a user rather than
    /// a client; user-dependent destinations are cached under it.
    pub user: Option<String>,
    /// The caller's token, for user propagation.
    pub token: Secret,
    /// The scopes the token grants, for route scopes and admin access.
    pub scopes: Vec<String>,
}

/// Validates callers' tokens against the bound XSUAA.
#[derive(Debug)]
pub struct Authenticator {
    xsuaa: XsuaaCredentials,
    keys: KeyStore,
}

/// The reason a request was not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the request has no bearer token in its Authorization header")]
    Missing,
    #[error("the bearer token is invalid: {0}")]
    Invalid(#[from] TokenError),
}

impl Authenticator {
    pub fn new(xsuaa: XsuaaCredentials, client: HttpClient) -> Self {
        let keys = KeyStore::new(&xsuaa, client);
        Self { xsuaa, keys }
    }

    /// Authenticates a request by its `Authorization` header.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, AuthError> {
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or(AuthError::Missing)?;

        let claims = jwt::validate(token, &self.xsuaa, &self.keys).await?;
        Ok(Arc::new(Caller {
            tenant: Tenant {
                zone_id: claims.zone_id.clone(),
                subdomain: claims.subdomain.clone(),
            },
            user: claims.user_name.as_ref().and(claims.user_key.clone()),
            token: Secret::new(token),
            scopes: claims.scopes,
        }))
    }
}

/// Returns the token of a `Bearer` authorization value (the scheme is
/// case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
