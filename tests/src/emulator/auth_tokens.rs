//! `authTokens` of a find-destination response: the ready-to-send credentials
//! the Destination service computes from a destination's properties.
//!
//! Emulated: `BasicAuthentication` (a `Basic` header value) and
//! `OAuth2ClientCredentials` (a fresh token from `tokenServiceURL` on every
//! lookup, or an entry with an `error` field if that request fails). Not
//! emulated: the real service's token cache, user token exchange, and
//! `tokenServiceUser`/`tokenServicePassword` for the token service.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::destination::{Authentication, Destination, HTTP_HEADER_KEY_PROPERTY};
use super::token_client::TokenClient;

/// Header name the real service puts into `http_header.key`.
const DEFAULT_HEADER_KEY: &str = "Authorization";

/// Computes the `authTokens` array for `destination`, or `None` for
/// `NoAuthentication`, whose response has no `authTokens` field.
pub(crate) async fn auth_tokens(
    destination: &Destination,
    token_client: &TokenClient,
) -> Option<Vec<Value>> {
    let header_key = destination
        .property(HTTP_HEADER_KEY_PROPERTY)
        .unwrap_or(DEFAULT_HEADER_KEY);
    // Config validation guarantees a supported Authentication and the
    // properties it needs, so the empty-string fallbacks below are never
    // used for a destination that reached this point.
    let property = |key: &str| destination.property(key).unwrap_or_default();

    match destination.authentication()? {
        Authentication::NoAuthentication => None,
        Authentication::BasicAuthentication => {
            let value = STANDARD.encode(format!("{}:{}", property("User"), property("Password")));
            Some(vec![json!({
                "type": "Basic",
                "value": value,
                "http_header": { "key": header_key, "value": format!("Basic {value}") },
            })])
        }
        Authentication::OAuth2ClientCredentials => {
            let token_url = property("tokenServiceURL");
            let fetched = token_client
                .fetch(
                    token_url,
                    property("clientId"),
                    property("clientSecret"),
                    destination.property("scope"),
                )
                .await;
            let entry = match fetched {
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
                    entry
                }
                Err(error) => {
                    tracing::warn!(
                        destination = destination.name(),
                        %error,
                        "OAuth2 token retrieval for destination failed"
                    );
                    json!({
                        "type": "",
                        "value": "",
                        "error": format!("Retrieval of OAuth2 access token failed: {error}"),
                        "expires_in": "0",
                    })
                }
            };
            Some(vec![entry])
        }
    }
}
