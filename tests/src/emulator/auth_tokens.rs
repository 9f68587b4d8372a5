//! `authTokens` and `certificates` of a find-destination response: the
//! ready-to-send credentials the Destination service computes from a
//! destination's properties, the caller's user and its refresh token.
//!
//! Emulated per `Authentication` value:
//!
//! - `BasicAuthentication`: a `Basic` header value from `User` and `Password`.
//! - `OAuth2ClientCredentials`, `OAuth2TechnicalUserPropagation`: the client
//!   credentials grant; the latter's header key is
//!   `SAP-Connectivity-Technical-Authentication`.
//! - `OAuth2Password`: the password grant with `User` and `Password`.
//! - `OAuth2RefreshToken`: the refresh token grant with the caller's
//!   `X-refresh-token`.
//! - `OAuth2JWTBearer`, `OAuth2UserTokenExchange`: the JWT bearer grant with
//!   the caller's user token.
//! - `OAuth2SAMLBearerAssertion`: a SAML assertion for the caller's user (or
//!   `SystemUser`), exchanged with the SAML 2.0 bearer grant.
//! - `NoAuthentication`, `PrincipalPropagation`,
//!   `ClientCertificateAuthentication`: no `authTokens`.
//!
//! Every token request goes to the destination's `tokenServiceURL` on each
//! lookup. When it fails, or the caller's user or refresh token is missing,
//! the auth token has an `error` field, empty `type` and `value`, and the
//! response is still 200, as with the real service. Authentication at the
//! token service is HTTP Basic with `tokenServiceUser`/`tokenServicePassword`
//! if both are set, else with `clientId`/`clientSecret`.
//!
//! Not emulated: the real service's token cache and `tokenServiceURLType`
//! `Common`, so the URL is always used as is. The properties
//! `tokenService.body.*`, `tokenServiceURL.headers.*` and
//! `tokenServiceURL.queries.*` are ignored, and client assertions and mTLS
//! to the token service are not supported. Only this emulator's user tokens
//! are accepted, so `x_user_token.jwks` has no effect.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::access_token::VerifiedToken;
use super::destination::{Authentication, Destination, HTTP_HEADER_KEY_PROPERTY};
use super::router::EmulatorState;
use super::saml_assertion::{AssertionRequest, DEFAULT_AUTHN_CONTEXT, DEFAULT_NAME_ID_FORMAT};
use super::tenant::Zone;
use super::token_client::{ClientAuthentication, OutboundGrant, OutboundTokenRequest};
use super::users::UserIdentity;

/// Header name the real service puts into `http_header.key`.
const DEFAULT_HEADER_KEY: &str = "Authorization";

/// Header key of `OAuth2TechnicalUserPropagation` tokens, read by the
/// Connectivity proxy.
pub(crate) const TECHNICAL_AUTHENTICATION_HEADER: &str =
    "SAP-Connectivity-Technical-Authentication";

/// Properties that name certificates returned in `certificates`.
const CERTIFICATE_PROPERTIES: [&str; 3] = [
    "KeyStoreLocation",
    "TrustStoreLocation",
    "tokenService.KeyStoreLocation",
];

/// Prefix of every `error` of a failed auth token, so that callers can tell
/// token failures from other messages.
pub(crate) const TOKEN_ERROR_PREFIX: &str = "Retrieval of OAuth2 access token failed";

/// The caller's user, from `X-user-token` or from a user token in
/// `Authorization`.
#[derive(Debug, Clone)]
pub(crate) enum CallerUser {
    Present(Box<VerifiedToken>),
    /// Neither header carries a user token.
    Missing,
    /// `X-user-token` was sent but is not a valid user token of this emulator.
    Invalid(String),
}

/// What the auth token computation needs besides the destination.
#[derive(Debug)]
pub(crate) struct LookupContext<'a> {
    pub state: &'a EmulatorState,
    pub zone: Zone<'a>,
    pub user: CallerUser,
    /// The caller's `X-refresh-token`, if sent and not empty.
    pub refresh_token: Option<&'a str>,
}

/// Computes the `authTokens` array for `destination`, or `None` for types
/// whose response has no `authTokens` field.
pub(crate) async fn auth_tokens(
    destination: &Destination,
    context: &LookupContext<'_>,
) -> Option<Vec<Value>> {
    let authentication = destination.authentication()?;
    let default_key = if authentication == Authentication::OAuth2TechnicalUserPropagation {
        TECHNICAL_AUTHENTICATION_HEADER
    } else {
        DEFAULT_HEADER_KEY
    };
    let header_key = destination
        .property(HTTP_HEADER_KEY_PROPERTY)
        .unwrap_or(default_key);
    // Config validation guarantees the properties each type needs, so the
    // empty-string fallbacks below are never used for a destination that
    // reached this point.
    let property = |key: &str| destination.property(key).unwrap_or_default();

    let entry = match authentication {
        Authentication::NoAuthentication
        | Authentication::PrincipalPropagation
        | Authentication::ClientCertificateAuthentication => return None,
        Authentication::BasicAuthentication => {
            let value = STANDARD.encode(format!("{}:{}", property("User"), property("Password")));
            json!({
                "type": "Basic",
                "value": value,
                "http_header": { "key": header_key, "value": format!("Basic {value}") },
            })
        }
        Authentication::OAuth2ClientCredentials
        | Authentication::OAuth2TechnicalUserPropagation => {
            fetch_entry(
                destination,
                context,
                OutboundGrant::ClientCredentials,
                header_key,
            )
            .await
        }
        Authentication::OAuth2Password => {
            let grant = OutboundGrant::Password {
                username: property("User"),
                password: property("Password"),
            };
            fetch_entry(destination, context, grant, header_key).await
        }
        Authentication::OAuth2RefreshToken => match context.refresh_token {
            Some(refresh_token) => {
                let grant = OutboundGrant::RefreshToken { refresh_token };
                fetch_entry(destination, context, grant, header_key).await
            }
            None => error_entry(
                destination,
                "no refresh token: send it in the X-refresh-token header",
            ),
        },
        // NOTE: the real service may use another grant for
        // OAuth2UserTokenExchange at non-XSUAA token services; the emulator
        // always uses the JWT bearer grant, which XSUAA accepts for both.
        Authentication::OAuth2JWTBearer | Authentication::OAuth2UserTokenExchange => {
            match &context.user {
                CallerUser::Present(user_token) => {
                    let grant = OutboundGrant::JwtBearer {
                        assertion: &user_token.encoded,
                    };
                    fetch_entry(destination, context, grant, header_key).await
                }
                CallerUser::Missing => error_entry(destination, MISSING_USER_MESSAGE),
                CallerUser::Invalid(reason) => error_entry(destination, reason),
            }
        }
        Authentication::OAuth2SAMLBearerAssertion => {
            saml_bearer_entry(destination, context, header_key).await
        }
    };
    Some(vec![entry])
}

/// Message of the auth token error when a user-based type has no user.
const MISSING_USER_MESSAGE: &str = "no user to propagate: send the user's JWT in the \
     X-user-token header, or call the service with a user token in Authorization";

/// Builds the `certificates` array from the certificate properties of the
/// destination that name a certificate of the zone, or `None` if none do.
pub(crate) fn certificates(destination: &Destination, zone: &Zone<'_>) -> Option<Vec<Value>> {
    let entries: Vec<Value> = CERTIFICATE_PROPERTIES
        .iter()
        .filter_map(|key| destination.property(key))
        .filter_map(|name| zone.certificate(name))
        .map(|certificate| {
            json!({
                "Name": certificate.name,
                "Type": "CERTIFICATE",
                "Content": certificate.content_base64,
            })
        })
        .collect();
    (!entries.is_empty()).then_some(entries)
}

/// Builds an assertion for the caller's user (or the destination's
/// `SystemUser`) and exchanges it with the SAML 2.0 bearer grant.
async fn saml_bearer_entry(
    destination: &Destination,
    context: &LookupContext<'_>,
    header_key: &str,
) -> Value {
    let user = match (destination.property("SystemUser"), &context.user) {
        (Some(system_user), _) if !system_user.is_empty() => {
            let configured = context
                .state
                .config
                .users
                .iter()
                .find(|user| user.user_name == system_user);
            UserIdentity::new(context.zone.zone_id, system_user, configured)
        }
        (_, CallerUser::Present(token)) => match &token.user {
            Some(user) => user.clone(),
            None => return error_entry(destination, MISSING_USER_MESSAGE),
        },
        (_, CallerUser::Missing) => return error_entry(destination, MISSING_USER_MESSAGE),
        (_, CallerUser::Invalid(reason)) => return error_entry(destination, reason),
    };

    let property = |key: &str| destination.property(key).unwrap_or_default();
    let assertion = context.state.saml_assertions.build(&AssertionRequest {
        user: &user,
        name_id_format: destination
            .property("nameIdFormat")
            .unwrap_or(DEFAULT_NAME_ID_FORMAT),
        audience: property("audience"),
        recipient: property("tokenServiceURL"),
        issuer: destination
            .property("assertionIssuer")
            .unwrap_or(&context.state.base_url),
        authn_context_class_ref: destination
            .property("authnContextClassRef")
            .unwrap_or(DEFAULT_AUTHN_CONTEXT),
    });
    fetch_entry(
        destination,
        context,
        OutboundGrant::Saml2Bearer {
            assertion: &assertion,
        },
        header_key,
    )
    .await
}

/// Requests a token from the destination's token service and builds the
/// auth token entry, or an error entry if the request fails.
async fn fetch_entry(
    destination: &Destination,
    context: &LookupContext<'_>,
    grant: OutboundGrant<'_>,
    header_key: &str,
) -> Value {
    let property = |key: &str| destination.property(key).unwrap_or_default();
    let token_service_user = destination.property("tokenServiceUser");
    let token_service_password = destination.property("tokenServicePassword");
    let authentication = match (token_service_user, token_service_password) {
        (Some(user), Some(password)) => ClientAuthentication::Basic { user, password },
        _ if destination.authentication() == Some(Authentication::OAuth2SAMLBearerAssertion) => {
            match token_service_password {
                Some(password) => ClientAuthentication::Basic {
                    user: property("clientKey"),
                    password,
                },
                None => ClientAuthentication::ClientIdOnly {
                    client_id: property("clientKey"),
                },
            }
        }
        _ => ClientAuthentication::Basic {
            user: property("clientId"),
            password: property("clientSecret"),
        },
    };

    let fetched = context
        .state
        .token_client
        .fetch(&OutboundTokenRequest {
            token_url: property("tokenServiceURL"),
            authentication,
            grant,
            scope: destination.property("scope"),
        })
        .await;
    match fetched {
        Ok(token) => {
            let mut entry = json!({
                "type": token.token_type,
                "value": token.access_token,
                "http_header": {
                    "key": header_key,
                    "value": format!("Bearer {}", token.access_token),
                },
            });
            // The real service sends expires_in as a string.
            if let Some(expires_in) = token.expires_in {
                entry["expires_in"] = Value::String(expires_in.to_string());
            }
            if let Some(scope) = token.scope {
                entry["scope"] = Value::String(scope);
            }
            if let Some(refresh_token) = token.refresh_token {
                entry["refresh_token"] = Value::String(refresh_token);
            }
            entry
        }
        Err(error) => error_entry(destination, &error.to_string()),
    }
}

/// Builds the auth token of a failed retrieval and logs the failure.
fn error_entry(destination: &Destination, reason: &str) -> Value {
    tracing::warn!(
        destination = destination.name(),
        reason,
        "auth token retrieval for destination failed"
    );
    json!({
        "type": "",
        "value": "",
        "error": format!("{TOKEN_ERROR_PREFIX}: {reason}"),
        "expires_in": "0",
    })
}
