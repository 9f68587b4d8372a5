//! User tokens created directly by tests, as if the user had logged in
//! through the approuter (authorization code grant).
//!
//! The token is signed like every other token of the emulator, so the
//! emulator accepts it as a bearer token, as `X-user-token`, as the
//! assertion of the JWT bearer grant and at the connectivity proxy. The user
//! need not be configured; if a user with that name is configured in the
//! zone, its email and names are used.

use std::time::Duration;

use super::access_token::{TokenClaims, grant_type, mint_access_token};
use super::config::DEFAULT_TOKEN_LIFETIME_SECONDS;
use super::grants::user_token_audience;
use super::router::EmulatorState;
use super::users::UserIdentity;

/// What a user token created with
/// [`Emulator::user_token`](super::Emulator::user_token) contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenSpec {
    /// Zone of the token (`zid`); `None` is the provider (`subaccount_id`).
    pub zone_id: Option<String>,
    /// `user_name` claim.
    pub user_name: String,
    /// `scope` claim.
    pub scopes: Vec<String>,
    /// Client the user logged in with (`client_id`, `cid`, `azp`).
    pub client_id: String,
    /// `aud` claim. When empty, it is derived as XSUAA does: the client id
    /// and the application prefix of every scope.
    pub audience: Vec<String>,
    /// Seconds until `exp`. Zero creates an expired token.
    pub lifetime_seconds: u64,
}

impl UserTokenSpec {
    /// Creates a spec for a provider user with scope `openid`, a derived
    /// audience and the default token lifetime.
    pub fn new(user_name: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            zone_id: None,
            user_name: user_name.into(),
            scopes: vec!["openid".to_owned()],
            client_id: client_id.into(),
            audience: Vec::new(),
            lifetime_seconds: DEFAULT_TOKEN_LIFETIME_SECONDS,
        }
    }

    /// Sets the zone to a tenant's `zone_id`.
    pub fn in_zone(mut self, zone_id: impl Into<String>) -> Self {
        self.zone_id = Some(zone_id.into());
        self
    }
}

/// Signs a user token for `spec`. A zone id that names no tenant gets an
/// empty `ext_attr.zdn`.
pub(crate) fn mint_user_token(state: &EmulatorState, spec: &UserTokenSpec) -> String {
    let config = &state.config;
    let zone_id = spec.zone_id.as_deref().unwrap_or(&config.subaccount_id);
    let subdomain = config.zone(zone_id).map_or("", |zone| zone.subdomain);
    let configured = config.users.iter().find(|user| {
        user.user_name == spec.user_name
            && user.zone_id.as_deref().unwrap_or(&config.subaccount_id) == zone_id
    });
    let identity = UserIdentity::new(zone_id, &spec.user_name, configured);
    let audience = if spec.audience.is_empty() {
        user_token_audience(&spec.client_id, &spec.scopes)
    } else {
        spec.audience.clone()
    };

    mint_access_token(
        &state.signer,
        &state.base_url,
        &TokenClaims {
            client_id: &spec.client_id,
            grant_type: grant_type::AUTHORIZATION_CODE,
            zone_id,
            subdomain,
            scopes: &spec.scopes,
            audience: &audience,
            user: Some(&identity),
            lifetime: Duration::from_secs(spec.lifetime_seconds),
        },
    )
    .access_token
}
