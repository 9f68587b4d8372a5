//! Business users of the emulated XSUAA and the identity claims their tokens
//! carry.
//!
//! A configured user can log in with the password grant. Tokens for other
//! users come from [`Emulator::user_token`](super::Emulator::user_token),
//! which stands for a login through the approuter, and from the JWT bearer
//! and SAML bearer grants. Identity providers, role collections and
//! `xs.user.attributes` are not emulated.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::ConfigError;

/// `origin` claim of user tokens: the default identity provider of a
/// subaccount (SAP ID service), as XSUAA writes it.
pub(crate) const USER_ORIGIN: &str = "sap.default";

/// Namespace of the name-based UUIDs the emulator derives user ids from, so
/// that one user in one zone always gets the same ids.
const USER_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5a7e_1a3c_0000_4000_8000_0000_0000_0001);

/// User who can log in with the password grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name, the `user_name` claim.
    pub user_name: String,
    /// Password, compared byte for byte.
    pub password: String,
    /// Zone of the user: `subaccount_id` (the provider, the default) or a
    /// tenant's `zone_id`.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// `email` claim, defaulting to the user name if it contains `@` and to
    /// `<user_name>@example.com` otherwise.
    #[serde(default)]
    pub email: Option<String>,
    /// `given_name` claim, defaulting to the user name.
    #[serde(default)]
    pub given_name: Option<String>,
    /// `family_name` claim, defaulting to the user name.
    #[serde(default)]
    pub family_name: Option<String>,
    /// Scopes of the user's tokens, defaulting to `["openid"]`.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

impl UserConfig {
    /// Creates a provider user with default claims.
    pub fn new(user_name: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user_name: user_name.into(),
            password: password.into(),
            zone_id: None,
            email: None,
            given_name: None,
            family_name: None,
            scopes: None,
        }
    }

    /// Checks that the user name and password are not empty.
    pub(crate) fn validate(&self, index: usize) -> Result<(), ConfigError> {
        for (field, value) in [("user_name", &self.user_name), ("password", &self.password)] {
            if value.is_empty() {
                return Err(ConfigError::EmptyField {
                    field: format!("users[{index}].{field}"),
                });
            }
        }
        Ok(())
    }

    /// Returns the scopes of the user's tokens.
    pub(crate) fn token_scopes(&self) -> Vec<String> {
        self.scopes
            .clone()
            .unwrap_or_else(|| vec!["openid".to_owned()])
    }
}

/// Identity claims of a user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserIdentity {
    pub user_name: String,
    pub user_id: String,
    pub user_uuid: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub origin: String,
}

impl UserIdentity {
    /// Builds the identity of `user_name` in `zone_id`, taking email and names
    /// from `configured` when the user is configured.
    pub(crate) fn new(zone_id: &str, user_name: &str, configured: Option<&UserConfig>) -> Self {
        let email = configured
            .and_then(|user| user.email.clone())
            .unwrap_or_else(|| default_email(user_name));
        let name_or_default =
            |name: Option<&String>| name.cloned().unwrap_or_else(|| user_name.to_owned());
        Self {
            user_name: user_name.to_owned(),
            user_id: name_based_uuid("user_id", zone_id, user_name),
            user_uuid: name_based_uuid("user_uuid", zone_id, user_name),
            email,
            given_name: name_or_default(configured.and_then(|user| user.given_name.as_ref())),
            family_name: name_or_default(configured.and_then(|user| user.family_name.as_ref())),
            origin: USER_ORIGIN.to_owned(),
        }
    }

    /// Reads the identity back from the claims of a user token, or returns
    /// `None` for a token without `user_name` (a client token).
    pub(crate) fn from_claims(claims: &Value) -> Option<Self> {
        let text = |key: &str| claims[key].as_str().unwrap_or_default().to_owned();
        let user_name = claims["user_name"].as_str()?.to_owned();
        Some(Self {
            user_name,
            user_id: text("user_id"),
            user_uuid: text("user_uuid"),
            email: text("email"),
            given_name: text("given_name"),
            family_name: text("family_name"),
            origin: text("origin"),
        })
    }

    /// Writes the identity claims into a claims object.
    pub(crate) fn add_claims(&self, claims: &mut Value) {
        let identity = json!({
            "user_name": self.user_name,
            "user_id": self.user_id,
            "user_uuid": self.user_uuid,
            "origin": self.origin,
            "email": self.email,
            "given_name": self.given_name,
            "family_name": self.family_name,
            // XSUAA user tokens have the user id as subject.
            "sub": self.user_id,
        });
        if let (Some(target), Some(source)) = (claims.as_object_mut(), identity.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn default_email(user_name: &str) -> String {
    if user_name.contains('@') {
        user_name.to_owned()
    } else {
        format!("{user_name}@example.com")
    }
}

/// Returns a version 5 UUID of `kind`, `zone_id` and `user_name`.
fn name_based_uuid(kind: &str, zone_id: &str, user_name: &str) -> String {
    let name = format!("{kind}\n{zone_id}\n{user_name}");
    uuid::Uuid::new_v5(&USER_ID_NAMESPACE, name.as_bytes()).to_string()
}
