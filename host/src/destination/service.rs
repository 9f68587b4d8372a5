//! The Destination service's find-destination API.
//!
//! `GET {uri}/destination-configuration/v1/destinations/{name}` with the
//! host's own client credentials token returns the destination's properties
//! and, for authenticating types, `authTokens` that the service already
//! fetched or built. The service looks at the service-instance level first,
//! then at the subaccount level.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use http::{HeaderName, Method, Request, StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::token::{ClientCredentials, TokenCache};
use super::{AuthHeader, AuthenticationType, LookupError, ResolvedDestination, parse_properties};
use crate::config::DestinationServiceCredentials;
use crate::outbound::HttpClient;
use crate::secret::Secret;

/// Time allowed for one find-destination call.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one Destination service binding.
#[derive(Debug)]
pub struct DestinationService {
    service_uri: Url,
    tokens: TokenCache,
    client: HttpClient,
}

/// A destination from the service, with how long its auth token lives.
#[derive(Debug)]
pub struct ServiceDestination {
    pub destination: ResolvedDestination,
    pub token_lifetime: Option<Duration>,
}

#[derive(Deserialize)]
struct FindResponse {
    #[serde(rename = "destinationConfiguration")]
    configuration: Map<String, Value>,
    #[serde(rename = "authTokens", default)]
    auth_tokens: Vec<AuthToken>,
}

#[derive(Deserialize)]
struct AuthToken {
    #[serde(default)]
    http_header: Option<HttpHeader>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

#[derive(Deserialize)]
struct HttpHeader {
    key: String,
    value: Secret,
}

impl DestinationService {
    pub fn new(credentials: &DestinationServiceCredentials, client: HttpClient) -> Self {
        let tokens = TokenCache::new(
            ClientCredentials {
                token_url: credentials.token_url.clone(),
                client_id: credentials.client_id.clone(),
                client_secret: credentials.client_secret.clone(),
            },
            client.clone(),
        );
        Self {
            service_uri: credentials.service_uri.clone(),
            tokens,
            client,
        }
    }

    /// Finds a destination by name.
    pub async fn find(&self, name: &str) -> Result<ServiceDestination, LookupError> {
        let unavailable = |cause: anyhow::Error| LookupError::Unavailable {
            name: name.to_owned(),
            cause,
        };

        let token = self
            .tokens
            .token()
            .await
            .context("no token for the Destination service")
            .map_err(unavailable)?;
        let url = self.find_url(name).map_err(unavailable)?;
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", token.value.expose()),
            )
            .header(header::ACCEPT, "application/json")
            .body(Bytes::new())
            .context("the Destination service URI is not a valid request URI")
            .map_err(unavailable)?;

        let service_host = self.service_uri.host_str().unwrap_or_default().to_owned();
        let (status, body) = self
            .client
            .send_small(request, LOOKUP_TIMEOUT)
            .await
            .with_context(|| format!("Destination service {service_host} did not answer"))
            .map_err(unavailable)?;
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(LookupError::NotFound {
                    name: name.to_owned(),
                });
            }
            other => {
                return Err(unavailable(anyhow!(
                    "Destination service {service_host} returned {other}{}",
                    service_message(&body)
                )));
            }
        }

        let response: FindResponse = serde_json::from_slice(&body)
            .context("the Destination service response has no destinationConfiguration")
            .map_err(unavailable)?;
        destination_from_response(name, response)
    }

    fn find_url(&self, name: &str) -> anyhow::Result<Url> {
        let mut url = self.service_uri.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("the Destination service URI cannot have a path"))?
            .pop_if_empty()
            .extend(["destination-configuration", "v1", "destinations", name]);
        Ok(url)
    }
}

/// Turns a find-destination response into a destination with the header to
/// send, following the SAP Cloud SDK: the first auth token without an
/// `error` wins, and its `http_header` names the header.
fn destination_from_response(
    name: &str,
    response: FindResponse,
) -> Result<ServiceDestination, LookupError> {
    let unusable = |reason: String| LookupError::Unusable {
        name: name.to_owned(),
        reason,
    };
    let config = parse_properties(&response.configuration).map_err(unusable)?;

    if config.proxy_type != "Internet" {
        return Err(unusable(format!(
            "ProxyType '{}' is not supported yet",
            config.proxy_type
        )));
    }

    let usable = response
        .auth_tokens
        .iter()
        .find(|token| token.error.is_none() && token.http_header.is_some());
    let (auth_header, token_lifetime) = match (&config.authentication, usable) {
        (AuthenticationType::NoAuthentication, _) => (None, None),
        (AuthenticationType::Unsupported(kind), _) => {
            return Err(unusable(format!(
                "authentication type '{kind}' is not supported yet"
            )));
        }
        (_, Some(token)) => {
            let header = token
                .http_header
                .as_ref()
                .map(to_auth_header)
                .transpose()
                .map_err(unusable)?;
            (header, token.expires_in.as_ref().and_then(parse_seconds))
        }
        (AuthenticationType::BasicAuthentication, None) if response.auth_tokens.is_empty() => (
            Some(super::resolver::basic_header(&config).map_err(unusable)?),
            None,
        ),
        (_, None) => {
            let messages: Vec<&str> = response
                .auth_tokens
                .iter()
                .filter_map(|token| token.error.as_deref())
                .collect();
            let reason = if messages.is_empty() {
                "the Destination service returned no auth token".to_owned()
            } else {
                format!(
                    "the Destination service could not get an auth token: {}",
                    messages.join("; ")
                )
            };
            return Err(unusable(reason));
        }
    };

    Ok(ServiceDestination {
        destination: ResolvedDestination {
            config,
            auth_header,
        },
        token_lifetime,
    })
}

fn to_auth_header(header: &HttpHeader) -> Result<AuthHeader, String> {
    let name = HeaderName::try_from(header.key.as_str())
        .map_err(|_| format!("the auth token names an invalid header '{}'", header.key))?;
    Ok(AuthHeader {
        name,
        value: header.value.clone(),
    })
}

/// `expires_in` comes as a string of seconds, sometimes as a number.
fn parse_seconds(value: &Value) -> Option<Duration> {
    match value {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_u64(),
        _ => None,
    }
    .map(Duration::from_secs)
}

/// Returns the service's `ErrorMessage`, which names the problem but no secret.
fn service_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| {
            value
                .get("ErrorMessage")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .map(|message| format!(": {message}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(value: Value) -> FindResponse {
        match serde_json::from_value(value) {
            Ok(response) => response,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn first_usable_token_and_header_key() {
        let found = destination_from_response(
            "d",
            response(serde_json::json!({
                "destinationConfiguration": {
                    "Name": "d", "URL": "https://x", "Authentication": "OAuth2ClientCredentials"
                },
                "authTokens": [
                    { "type": "", "value": "", "error": "failed", "expires_in": "0" },
                    { "type": "bearer", "value": "t", "expires_in": "3600",
                      "http_header": { "key": "X-Custom-Auth", "value": "Bearer t" } }
                ]
            })),
        );
        let Ok(found) = found else {
            panic!("{found:?}")
        };
        let header = found
            .destination
            .auth_header
            .map(|h| (h.name.to_string(), h.value.expose().to_owned()));
        assert_eq!(
            header,
            Some(("x-custom-auth".to_owned(), "Bearer t".to_owned()))
        );
        assert_eq!(found.token_lifetime, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn all_tokens_failed_quotes_the_service() {
        let found = destination_from_response(
            "d",
            response(serde_json::json!({
                "destinationConfiguration": {
                    "Name": "d", "URL": "https://x", "Authentication": "OAuth2ClientCredentials"
                },
                "authTokens": [{ "type": "", "value": "", "error": "Retrieval of OAuth2 access token failed" }]
            })),
        );
        let message = found.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("'d'") && message.contains("Retrieval of OAuth2 access token failed"),
            "{message}"
        );
    }

    #[test]
    fn unsupported_type_is_unusable() {
        let found = destination_from_response(
            "d",
            response(serde_json::json!({
                "destinationConfiguration": { "Name": "d", "URL": "https://x", "Authentication": "PrincipalPropagation" }
            })),
        );
        assert!(matches!(found, Err(LookupError::Unusable { .. })));
    }

    #[test]
    fn find_url_encodes_name() {
        let credentials = DestinationServiceCredentials {
            binding_name: "b".to_owned(),
            client_id: "c".to_owned(),
            client_secret: Secret::new("s"),
            token_url: Url::parse("http://127.0.0.1:1/oauth/token")
                .unwrap_or_else(|e| panic!("{e}")),
            service_uri: Url::parse("http://127.0.0.1:2/").unwrap_or_else(|e| panic!("{e}")),
        };
        let client = HttpClient::new().unwrap_or_else(|e| panic!("{e}"));
        let service = DestinationService::new(&credentials, client);
        let url = service
            .find_url("My Dest/ä?")
            .map(|u| u.to_string())
            .unwrap_or_default();
        assert_eq!(
            url,
            "http://127.0.0.1:2/destination-configuration/v1/destinations/My%20Dest%2F%C3%A4%3F"
        );
    }
}
