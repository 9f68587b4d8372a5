//! Access tokens issued by the emulated XSUAA: JWT-shaped strings and the
//! registry the emulator checks them against.
//!
//! The tokens look like XSUAA tokens (header, claims and signature in base64url),
//! but the signature is random bytes, so no key verifies them. The emulator
//! accepts a bearer token only if it issued the token and the token has not
//! expired.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

/// Scope granted in every issued token. The emulator has no per-client
/// authorities, so it grants only this UAA default scope.
pub(crate) const CLIENT_CREDENTIALS_SCOPE: &str = "uaa.resource";

/// Facts about one token request that end up in the token's claims.
#[derive(Debug)]
pub(crate) struct TokenRequest<'a> {
    pub client_id: &'a str,
    pub zone_id: &'a str,
    pub subaccount_id: &'a str,
    pub identity_zone: &'a str,
    /// Emulator base URL, used for `iss` and the `jku` header.
    pub issuer_base_url: &'a str,
    pub lifetime: Duration,
}

/// Newly issued access token.
#[derive(Debug)]
pub(crate) struct IssuedToken {
    pub access_token: String,
    pub jti: String,
}

/// Creates a JWT-shaped access token with the claims XSUAA puts into a
/// client-credentials token.
pub(crate) fn mint_access_token(request: &TokenRequest<'_>) -> IssuedToken {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs());
    let expires_at = issued_at.saturating_add(request.lifetime.as_secs());

    let header = json!({
        "alg": "RS256",
        "jku": format!("{}/token_keys", request.issuer_base_url),
        "kid": "btp-emulator",
        "typ": "JWT",
    });
    let claims = json!({
        "jti": jti,
        "ext_attr": {
            "enhancer": "XSUAA",
            "subaccountid": request.subaccount_id,
            "zdn": request.identity_zone,
        },
        "sub": request.client_id,
        "authorities": [CLIENT_CREDENTIALS_SCOPE],
        "scope": [CLIENT_CREDENTIALS_SCOPE],
        "client_id": request.client_id,
        "cid": request.client_id,
        "azp": request.client_id,
        "grant_type": "client_credentials",
        "iat": issued_at,
        "exp": expires_at,
        "iss": format!("{}/oauth/token", request.issuer_base_url),
        "zid": request.zone_id,
        "aud": [],
    });

    // Two v4 UUIDs give 244 random bits. A real RS256 signature is longer,
    // but nothing verifies this one, so its length does not matter.
    let mut signature = Vec::with_capacity(32);
    signature.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    signature.extend_from_slice(uuid::Uuid::new_v4().as_bytes());

    let access_token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature),
    );
    IssuedToken { access_token, jti }
}

/// Result of checking a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    Valid,
    /// Issued here but past its lifetime.
    Expired,
    /// Never issued here, or expired and already removed.
    Unknown,
}

/// Tokens issued by this emulator with the instant each one expires.
#[derive(Debug, Default)]
pub(crate) struct IssuedTokens {
    expiry_by_token: Mutex<HashMap<String, Instant>>,
}

/// How long an expired token stays in the registry, so that a request with it
/// gets the clearer "expired" message instead of "unknown".
const EXPIRED_TOKEN_RETENTION: Duration = Duration::from_secs(600);

impl IssuedTokens {
    /// Records a token valid for `lifetime` from now, and drops tokens that
    /// expired more than [`EXPIRED_TOKEN_RETENTION`] ago so that the registry
    /// does not grow without bound.
    pub(crate) fn insert(&self, token: String, lifetime: Duration) {
        let now = Instant::now();
        // A poisoned lock only means that another request panicked while
        // holding it. The map is still consistent, so keep using it.
        let mut expiry_by_token = self
            .expiry_by_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        expiry_by_token.retain(|_, expires_at| {
            now.saturating_duration_since(*expires_at) < EXPIRED_TOKEN_RETENTION
        });
        expiry_by_token.insert(token, now + lifetime);
    }

    /// Checks whether `token` was issued here and is still valid.
    pub(crate) fn check(&self, token: &str) -> TokenStatus {
        let expiry_by_token = self
            .expiry_by_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match expiry_by_token.get(token) {
            None => TokenStatus::Unknown,
            Some(expires_at) if Instant::now() < *expires_at => TokenStatus::Valid,
            Some(_) => TokenStatus::Expired,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_lifetime_token_is_expired() {
        let tokens = IssuedTokens::default();
        tokens.insert("a".to_owned(), Duration::ZERO);
        assert_eq!(tokens.check("a"), TokenStatus::Expired);
    }

    #[test]
    fn registry_checks_known_and_unknown_tokens() {
        let tokens = IssuedTokens::default();
        tokens.insert("a".to_owned(), Duration::from_secs(60));
        assert_eq!(tokens.check("a"), TokenStatus::Valid);
        assert_eq!(tokens.check("b"), TokenStatus::Unknown);
    }
}
