//! Access to the gateway's own operator endpoints, such as `/metrics`.
//!
//! Policy: they are never open. A caller is admitted with a valid XSUAA
//! token that has the scope `$XSAPPNAME.Admin` (when xsuaa is bound), or
//! with `Authorization: Bearer` and the value of `BTP_GATEWAY_ADMIN_TOKEN`
//! (when that is set, typically for local runs). With neither configured,
//! every request is refused with 403.

use http::HeaderMap;

use super::{Authenticator, bearer_token};
use crate::secret::Secret;

/// The environment variable with the local admin token.
pub const ADMIN_TOKEN_VARIABLE: &str = "BTP_GATEWAY_ADMIN_TOKEN";

/// The shortest admin token accepted, so that it cannot be guessed.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 24;

/// The ways a caller is admitted to operator endpoints.
#[derive(Debug, Default)]
pub struct AdminAccess {
    /// The XSUAA scope that admits a caller, with `$XSAPPNAME` replaced.
    pub scope: Option<String>,
    /// The static token that admits a caller.
    pub token: Option<Secret>,
}

/// The reason a caller was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminDenied {
    /// Neither an admin scope nor a token is configured.
    NotConfigured,
    /// No credentials, or invalid ones: 401.
    Unauthenticated,
    /// A valid token without the admin scope: 403.
    MissingScope,
}

impl AdminAccess {
    /// Checks a request's `Authorization` header.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        authenticator: Option<&Authenticator>,
    ) -> Result<(), AdminDenied> {
        if self.scope.is_none() && self.token.is_none() {
            return Err(AdminDenied::NotConfigured);
        }
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or(AdminDenied::Unauthenticated)?;

        if let Some(token) = &self.token
            && constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
        {
            return Ok(());
        }
        let (Some(scope), Some(authenticator)) = (&self.scope, authenticator) else {
            return Err(AdminDenied::Unauthenticated);
        };
        let caller = authenticator
            .authenticate(headers)
            .await
            .map_err(|_| AdminDenied::Unauthenticated)?;
        if caller.scopes.iter().any(|granted| granted == scope) {
            Ok(())
        } else {
            Err(AdminDenied::MissingScope)
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal how
/// many leading bytes of a guess were right.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = authorization.parse() {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        headers
    }

    #[tokio::test]
    async fn token_admits_only_exact_value() {
        let access = AdminAccess {
            scope: None,
            token: Some(Secret::new("0123456789abcdef01234567")),
        };
        assert_eq!(
            access
                .admit(&headers("Bearer 0123456789abcdef01234567"), None)
                .await,
            Ok(())
        );
        assert_eq!(
            access
                .admit(&headers("Bearer 0123456789abcdef01234568"), None)
                .await,
            Err(AdminDenied::Unauthenticated)
        );
        assert_eq!(
            access.admit(&HeaderMap::new(), None).await,
            Err(AdminDenied::Unauthenticated)
        );
    }

    #[tokio::test]
    async fn unconfigured_access_is_refused() {
        let access = AdminAccess::default();
        assert_eq!(
            access.admit(&headers("Bearer anything"), None).await,
            Err(AdminDenied::NotConfigured)
        );
    }

    #[test]
    fn comparison_checks_every_byte() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
