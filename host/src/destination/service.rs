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

use super::key_store::{self, Certificate};
use super::token::TokenCache;
use super::{
    AuthHeader, AuthenticationType, LookupError, ProxyType, ResolvedDestination, parse_properties,
};
use crate::auth::Tenant;
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

/// The parameters of a lookup besides the name: the tenant to ask as, and
/// the caller's tokens for user-based authentication types.
#[derive(Debug, Default, Clone, Copy)]
pub struct LookupRequest<'a> {
    /// The subscriber tenant, or `None` for the provider.
    pub tenant: Option<&'a Tenant>,
    /// The caller's JWT, sent as `X-user-token`.
    pub user_token: Option<&'a Secret>,
    /// A refresh token for `OAuth2RefreshToken`, sent as `X-refresh-token`.
    pub refresh_token: Option<&'a Secret>,
}

/// A destination from the service, with how long its auth token lives and
/// whether it may be cached.
#[derive(Debug)]
pub struct ServiceDestination {
    pub destination: ResolvedDestination,
    pub token_lifetime: Option<Duration>,
    pub cacheable: bool,
}

#[derive(Deserialize)]
struct FindResponse {
    #[serde(rename = "destinationConfiguration")]
    configuration: Map<String, Value>,
    #[serde(rename = "authTokens", default)]
    auth_tokens: Vec<AuthToken>,
    #[serde(default)]
    certificates: Vec<Certificate>,
}

#[derive(Deserialize)]
struct AuthToken {
    #[serde(rename = "type", default)]
    kind: String,
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
    pub fn new(
        credentials: &DestinationServiceCredentials,
        client: HttpClient,
    ) -> anyhow::Result<Self> {
        let tokens = TokenCache::new(credentials.client.clone(), &client)?;
        Ok(Self {
            service_uri: credentials.service_uri.clone(),
            tokens,
            client,
        })
    }

    /// Finds a destination by name, in the tenant `request.tenant`.
    pub async fn find(
        &self,
        name: &str,
        request: LookupRequest<'_>,
    ) -> Result<ServiceDestination, LookupError> {
        // No destination can have these names, and as path segments they
        // would address another resource of the service.
        if name.is_empty() || name == "." || name == ".." {
            return Err(LookupError::NotFound {
                name: name.to_owned(),
            });
        }

        let unavailable = |cause: anyhow::Error| LookupError::Unavailable {
            name: name.to_owned(),
            cause,
        };

        let token = self
            .tokens
            .token(request.tenant)
            .await
            .context("no token for the Destination service")
            .map_err(unavailable)?;
        let url = self.find_url(name).map_err(unavailable)?;
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(url.as_str())
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", token.value.expose()),
            )
            .header(header::ACCEPT, "application/json");
        if let Some(user_token) = request.user_token {
            builder = builder.header("x-user-token", user_token.expose());
        }
        if let Some(refresh_token) = request.refresh_token {
            builder = builder.header("x-refresh-token", refresh_token.expose());
        }
        let http_request = builder
            .body(Bytes::new())
            .context("the Destination service URI or a token is not valid in a request")
            .map_err(unavailable)?;

        let service_host = self.service_uri.host_str().unwrap_or_default().to_owned();
        let (status, body) = self
            .client
            .send_small(http_request, LOOKUP_TIMEOUT)
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

        let response = parse_find_response(&body).map_err(unavailable)?;
        let mut found =
            destination_from_response(name, response, request.user_token.is_some(), &self.client)?;
        found.destination.tenant = request.tenant.cloned();
        Ok(found)
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

/// Parses a find-destination response. Errors give the position only: the
/// body may hold credentials, and serde's messages quote values.
fn parse_find_response(body: &[u8]) -> anyhow::Result<FindResponse> {
    let value: Value = serde_json::from_slice(body).map_err(|error| {
        anyhow!(
            "the Destination service response is not JSON ({})",
            crate::config::describe_json_error(&error)
        )
    })?;
    if !value.is_object() {
        return Err(anyhow!(
            "the Destination service response is not a JSON object"
        ));
    }
    serde_json::from_value(value).map_err(|_| {
        anyhow!(
            "the Destination service response is not a find-destination result: it needs an \
             object destinationConfiguration and, if present, lists authTokens and certificates"
        )
    })
}

/// Turns a find-destination response into a destination with the header to
/// send, following the SAP Cloud SDK: the first auth token without an
/// `error` wins, and its `http_header` names the header.
fn destination_from_response(
    name: &str,
    response: FindResponse,
    has_user: bool,
    client: &HttpClient,
) -> Result<ServiceDestination, LookupError> {
    let unusable = |reason: String| LookupError::Unusable {
        name: name.to_owned(),
        reason,
    };
    let config = parse_properties(&response.configuration).map_err(unusable)?;

    if let ProxyType::Unsupported(kind) = &config.proxy_type {
        return Err(unusable(format!(
            "ProxyType '{kind}' is not supported: use Internet or OnPremise"
        )));
    }

    let needs_on_premise = matches!(
        config.authentication,
        AuthenticationType::PrincipalPropagation
            | AuthenticationType::OAuth2TechnicalUserPropagation
    );
    if needs_on_premise && config.proxy_type != ProxyType::OnPremise {
        return Err(unusable(format!(
            "{:?} works only with ProxyType OnPremise",
            config.authentication
        )));
    }

    let usable = response
        .auth_tokens
        .iter()
        .find(|token| token.error.is_none() && token.http_header.is_some());
    let (auth_header, token_lifetime) = match (&config.authentication, usable) {
        (
            AuthenticationType::NoAuthentication
            | AuthenticationType::ClientCertificateAuthentication,
            _,
        ) => (None, None),
        (AuthenticationType::PrincipalPropagation, _) => {
            if !has_user {
                return Err(unusable(
                    "PrincipalPropagation needs a logged-in user: call the gateway with a user's \
                     XSUAA token"
                        .to_owned(),
                ));
            }
            (None, None)
        }
        (AuthenticationType::Unsupported(kind), _) => {
            return Err(unusable(format!(
                "authentication type '{kind}' is not supported"
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

    let client =
        key_store::tls_client(client, &config, &response.certificates).map_err(unusable)?;
    // A SAML assertion is meant for one use: it is never cached.
    let cacheable = !usable.is_some_and(|token| token.kind.eq_ignore_ascii_case("SAML2.0"));
    Ok(ServiceDestination {
        destination: ResolvedDestination {
            config,
            auth_header,
            client,
            tenant: None,
        },
        token_lifetime,
        cacheable,
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

    fn test_client() -> HttpClient {
        HttpClient::new(crate::outbound::egress::EgressPolicy { allow_local: true })
            .unwrap_or_else(|error| panic!("{error}"))
    }

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
            false,
            &test_client(),
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
            false,
            &test_client(),
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
                "destinationConfiguration": { "Name": "d", "URL": "https://x", "Authentication": "SAMLAssertion" }
            })),
            true,
            &test_client(),
        );
        assert!(matches!(found, Err(LookupError::Unusable { .. })));
    }

    #[test]
    fn principal_propagation_needs_user() {
        let value = serde_json::json!({
            "destinationConfiguration": {
                "Name": "d", "URL": "http://onprem:1", "ProxyType": "OnPremise",
                "Authentication": "PrincipalPropagation"
            }
        });
        let without =
            destination_from_response("d", response(value.clone()), false, &test_client());
        let message = without.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("needs a logged-in user"), "{message}");
        assert!(destination_from_response("d", response(value), true, &test_client()).is_ok());
    }

    #[test]
    fn saml_assertions_are_not_cacheable() {
        let found = destination_from_response(
            "d",
            response(serde_json::json!({
                "destinationConfiguration": {
                    "Name": "d", "URL": "https://x", "Authentication": "OAuth2SAMLBearerAssertion"
                },
                "authTokens": [{ "type": "SAML2.0", "value": "PHNhbWw+",
                                 "http_header": { "key": "Authorization", "value": "SAML2.0 PHNhbWw+" } }]
            })),
            true,
            &test_client(),
        );
        assert!(matches!(
            found,
            Ok(ServiceDestination {
                cacheable: false,
                ..
            })
        ));
    }

    #[test]
    fn find_response_shapes() {
        assert!(parse_find_response(br#"[{"Name":"LIST","URL":"http://x"}]"#).is_err());
        let leaky = parse_find_response(br#"{"destinationConfiguration":"s3cr3t-value"}"#);
        let message = leaky.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!message.contains("s3cr3t-value"), "{message}");
        assert!(
            parse_find_response(br#"{"destinationConfiguration":{"Name":"d","URL":"http://x"}}"#)
                .is_ok()
        );
    }

    #[test]
    fn find_url_encodes_name() {
        let credentials = DestinationServiceCredentials {
            binding_name: "b".to_owned(),
            client: crate::config::OAuthClient {
                client_id: "c".to_owned(),
                authentication: crate::config::ClientAuthentication::Secret(Secret::new("s")),
                token_url: Url::parse("http://127.0.0.1:1/oauth/token")
                    .unwrap_or_else(|e| panic!("{e}")),
                uaadomain: None,
            },
            service_uri: Url::parse("http://127.0.0.1:2/").unwrap_or_else(|e| panic!("{e}")),
        };
        let client = HttpClient::new(crate::outbound::egress::EgressPolicy { allow_local: true })
            .unwrap_or_else(|e| panic!("{e}"));
        let service =
            DestinationService::new(&credentials, client).unwrap_or_else(|e| panic!("{e}"));
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
