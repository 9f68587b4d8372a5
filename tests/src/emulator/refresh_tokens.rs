//! Refresh tokens that the emulated XSUAA hands out with user tokens from the
//! password and JWT bearer grants, and the registry the refresh token grant
//! checks them against.
//!
//! As with XSUAA, a refresh token is an opaque string ending in `-r`, bound
//! to the client that received it, and stays the same when it is used.
//! Revocation and the refresh token's own scopes are not emulated.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::users::UserIdentity;

/// Lifetime of a refresh token. XSUAA's default is 30 days.
const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Upper bound for stored refresh tokens. When it is reached, the oldest
/// half is dropped, so a long-running demo cannot grow the map without end.
const MAX_REFRESH_TOKENS: usize = 10_000;

/// What a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub zone_id: String,
    pub user: UserIdentity,
    pub scopes: Vec<String>,
    issued_at: Instant,
    expires_at: Instant,
}

/// Why a refresh token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RefreshTokenError {
    #[error("Invalid refresh token: this emulator did not issue it")]
    Unknown,
    #[error("Invalid refresh token (expired)")]
    Expired,
    #[error("Invalid refresh token: it was issued to another client")]
    OtherClient,
}

/// Registry of issued refresh tokens.
#[derive(Debug, Default)]
pub(crate) struct RefreshTokens {
    grants: Mutex<HashMap<String, RefreshGrant>>,
}

impl RefreshTokens {
    /// Issues a refresh token for `user` and `client_id` in `zone_id`.
    pub(crate) fn issue(
        &self,
        client_id: &str,
        zone_id: &str,
        user: &UserIdentity,
        scopes: &[String],
    ) -> String {
        let token = format!("{}-r", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let grant = RefreshGrant {
            client_id: client_id.to_owned(),
            zone_id: zone_id.to_owned(),
            user: user.clone(),
            scopes: scopes.to_vec(),
            issued_at: now,
            expires_at: now + REFRESH_TOKEN_LIFETIME,
        };
        // A poisoned lock only means that another request panicked while
        // holding it. The map is still consistent, so keep using it.
        let mut grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        grants.retain(|_, grant| grant.expires_at > now);
        if grants.len() >= MAX_REFRESH_TOKENS {
            let mut issue_times: Vec<Instant> =
                grants.values().map(|grant| grant.issued_at).collect();
            issue_times.sort_unstable();
            let cutoff = issue_times[issue_times.len() / 2];
            grants.retain(|_, grant| grant.issued_at > cutoff);
        }
        grants.insert(token.clone(), grant);
        token
    }

    /// Returns the grant of `token` if it was issued to `client_id` and has
    /// not expired.
    pub(crate) fn redeem(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<RefreshGrant, RefreshTokenError> {
        let grants = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        let grant = grants.get(token).ok_or(RefreshTokenError::Unknown)?;
        if Instant::now() >= grant.expires_at {
            return Err(RefreshTokenError::Expired);
        }
        if grant.client_id != client_id {
            return Err(RefreshTokenError::OtherClient);
        }
        Ok(grant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_token_is_bound_to_its_client() {
        let tokens = RefreshTokens::default();
        let user = UserIdentity::new("zone", "alice", None);
        let token = tokens.issue("client-a", "zone", &user, &[]);

        assert!(token.ends_with("-r"));
        assert!(tokens.redeem(&token, "client-a").is_ok());
        assert_eq!(
            tokens.redeem(&token, "client-b").err(),
            Some(RefreshTokenError::OtherClient)
        );
        assert_eq!(
            tokens.redeem("unknown-r", "client-a").err(),
            Some(RefreshTokenError::Unknown)
        );
    }
}
