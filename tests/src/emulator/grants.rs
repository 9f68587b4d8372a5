//! The grants of the emulated XSUAA token endpoint, after the client has
//! been authenticated and the zone chosen.
//!
//! | grant | input | token |
//! | --- | --- | --- |
//! | `client_credentials` | nothing | client token in the chosen zone, scope `uaa.resource` |
//! | `password` | `username`, `password` of a user configured in the chosen zone | user token and refresh token |
//! | `urn:ietf:params:oauth:grant-type:jwt-bearer` | `assertion`: an unexpired user token this emulator signed | user token of the same user and zone for the requesting client, and a refresh token |
//! | `refresh_token` | `refresh_token` this emulator issued to the requesting client | new user token; the refresh token stays valid |
//! | `urn:ietf:params:oauth:grant-type:saml2-bearer` | `assertion`: a SAML assertion this emulator built, unused | user token in the chosen zone with the `NameID` as `user_name` |
//!
//! Errors follow UAA: 401 `unauthorized` "Bad credentials" for a wrong user
//! or password, 401 `invalid_token` for an assertion or refresh token that is
//! not valid, and 400 `invalid_request` for a missing field. The jwt-bearer
//! and refresh token grants keep the zone of their input, so a valid `x-zid`
//! has no effect on them.

use std::time::Duration;

use http::StatusCode;

use super::access_token::{
    CLIENT_CREDENTIALS_SCOPE, TokenClaims, grant_type, mint_access_token, verify_access_token,
};
use super::config::ClientConfig;
use super::router::EmulatorState;
use super::tenant::Zone;
use super::token_endpoint::TokenForm;
use super::users::UserIdentity;

/// The zone a new token is issued in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SelectedZone {
    pub zone_id: String,
    pub subdomain: String,
}

impl SelectedZone {
    pub(crate) fn from_zone(zone: &Zone<'_>) -> Self {
        Self {
            zone_id: zone.zone_id.to_owned(),
            subdomain: zone.subdomain.to_owned(),
        }
    }
}

/// A granted token, before it is written as JSON.
#[derive(Debug)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub scopes: Vec<String>,
    pub jti: String,
    pub refresh_token: Option<String>,
}

/// A rejected grant: status, OAuth `error` code and description.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }
}

/// One authenticated token request.
#[derive(Debug)]
pub(crate) struct GrantContext<'a> {
    pub state: &'a EmulatorState,
    pub client: &'a ClientConfig,
    pub zone: SelectedZone,
    pub form: &'a TokenForm,
}

impl GrantContext<'_> {
    /// Issues a client token in the chosen zone.
    pub(crate) fn client_credentials(&self) -> Result<TokenResponse, OAuthError> {
        let scopes = vec![CLIENT_CREDENTIALS_SCOPE.to_owned()];
        Ok(self.issue(
            &self.zone,
            grant_type::CLIENT_CREDENTIALS,
            scopes,
            None,
            false,
        ))
    }

    /// Issues a user token for a configured user of the chosen zone.
    pub(crate) fn password(&self) -> Result<TokenResponse, OAuthError> {
        let username = self.required_field("username")?;
        let password = self.required_field("password")?;
        let config = &self.state.config;
        let user = config
            .users
            .iter()
            .find(|user| {
                user.user_name == username
                    && user.zone_id.as_deref().unwrap_or(&config.subaccount_id) == self.zone.zone_id
            })
            .filter(|user| user.password == password)
            .ok_or_else(|| {
                OAuthError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials")
            })?;

        let identity = UserIdentity::new(&self.zone.zone_id, &user.user_name, Some(user));
        Ok(self.issue(
            &self.zone,
            grant_type::PASSWORD,
            user.token_scopes(),
            Some(&identity),
            true,
        ))
    }

    /// Exchanges a user token of this emulator for one of the requesting
    /// client, keeping user, zone and scopes.
    pub(crate) fn jwt_bearer(&self) -> Result<TokenResponse, OAuthError> {
        let assertion = self.required_field("assertion")?;
        let verified = verify_access_token(&self.state.signer, &self.state.base_url, assertion)
            .map_err(|rejection| {
                OAuthError::invalid_token(format!("Invalid assertion: {rejection}"))
            })?;
        let user = verified.user.ok_or_else(|| {
            OAuthError::invalid_token("Invalid assertion: it is a client token, not a user token")
        })?;
        let zone = self.zone_of(&verified.zone_id);
        Ok(self.issue(
            &zone,
            grant_type::JWT_BEARER,
            verified.scopes,
            Some(&user),
            true,
        ))
    }

    /// Issues a new user token for a refresh token of the requesting client.
    pub(crate) fn refresh_token(&self) -> Result<TokenResponse, OAuthError> {
        let refresh_token = self.required_field("refresh_token")?;
        let grant = self
            .state
            .refresh_tokens
            .redeem(refresh_token, &self.client.client_id)
            .map_err(|error| OAuthError::invalid_token(error.to_string()))?;
        let zone = self.zone_of(&grant.zone_id);
        let mut response = self.issue(
            &zone,
            grant_type::REFRESH_TOKEN,
            grant.scopes,
            Some(&grant.user),
            false,
        );
        response.refresh_token = Some(refresh_token.to_owned());
        Ok(response)
    }

    /// Exchanges a SAML assertion this emulator built for a user token in
    /// the chosen zone.
    pub(crate) fn saml2_bearer(&self) -> Result<TokenResponse, OAuthError> {
        let assertion = self.required_field("assertion")?;
        let asserted = self
            .state
            .saml_assertions
            .redeem(assertion)
            .map_err(|error| {
                OAuthError::invalid_token(format!("Invalid SAML assertion: {error}"))
            })?;
        let identity = UserIdentity {
            user_name: asserted.name_id,
            ..asserted.identity
        };
        let scopes = vec!["openid".to_owned()];
        Ok(self.issue(
            &self.zone,
            grant_type::SAML2_BEARER,
            scopes,
            Some(&identity),
            false,
        ))
    }

    fn required_field(&self, name: &str) -> Result<&str, OAuthError> {
        self.form
            .field(name)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| OAuthError::invalid_request(format!("Missing parameter: {name}")))
    }

    /// Returns the zone with this id, keeping the provider's subdomain for a
    /// zone id that names no tenant.
    fn zone_of(&self, zone_id: &str) -> SelectedZone {
        let config = &self.state.config;
        SelectedZone {
            zone_id: zone_id.to_owned(),
            subdomain: config.zone(zone_id).map_or_else(
                || config.identity_zone.clone(),
                |zone| zone.subdomain.to_owned(),
            ),
        }
    }

    /// Signs a token for the requesting client and, if asked, issues a
    /// refresh token with it.
    fn issue(
        &self,
        zone: &SelectedZone,
        grant: &str,
        scopes: Vec<String>,
        user: Option<&UserIdentity>,
        with_refresh_token: bool,
    ) -> TokenResponse {
        let client_id = self.client.client_id.as_str();
        let audience = match user {
            Some(_) => user_token_audience(client_id, &scopes),
            None => Vec::new(),
        };
        let lifetime_seconds = self.state.config.token_lifetime_seconds;
        let issued = mint_access_token(
            &self.state.signer,
            &self.state.base_url,
            &TokenClaims {
                client_id,
                grant_type: grant,
                zone_id: &zone.zone_id,
                subdomain: &zone.subdomain,
                scopes: &scopes,
                audience: &audience,
                user,
                lifetime: Duration::from_secs(lifetime_seconds),
            },
        );
        let refresh_token = match user {
            Some(user) if with_refresh_token => Some(self.state.refresh_tokens.issue(
                client_id,
                &zone.zone_id,
                user,
                &scopes,
            )),
            _ => None,
        };
        tracing::debug!(client_id, grant, jti = issued.jti, "issued access token");
        TokenResponse {
            access_token: issued.access_token,
            expires_in: lifetime_seconds,
            scopes,
            jti: issued.jti,
            refresh_token,
        }
    }
}

/// Returns the `aud` of a user token as XSUAA derives it: the client id and
/// the application prefix (before the first dot) of every scope.
pub(crate) fn user_token_audience(client_id: &str, scopes: &[String]) -> Vec<String> {
    let mut audience = vec![client_id.to_owned()];
    for scope in scopes {
        let prefix = scope
            .split_once('.')
            .map_or(scope.as_str(), |(prefix, _)| prefix);
        if !audience.iter().any(|existing| existing == prefix) {
            audience.push(prefix.to_owned());
        }
    }
    audience
}
