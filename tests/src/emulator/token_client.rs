//! Outbound token requests that the emulated Destination service sends to
//! the `tokenServiceURL` of OAuth2 destinations: client credentials,
//! password, refresh token, JWT bearer and SAML 2.0 bearer grants.
//!
//! The emulator only sends such requests to plain `http://127.0.0.1` URLs,
//! because it runs beside tests and demos and must never reach another host.
//! Any other `tokenServiceURL` fails before a connection is opened, and the
//! failure shows up as the `error` of the auth token like any other failure.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::http_util::MAX_REQUEST_BODY_BYTES;

/// Time limit for one token request, from connect to the last body byte.
pub(crate) const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Only host that the emulator sends token requests to.
const ALLOWED_HOST: &str = "127.0.0.1";

/// Token returned by a token service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FetchedToken {
    pub access_token: String,
    pub token_type: String,
    /// `expires_in` of the token response, if it had one.
    pub expires_in: Option<u64>,
    /// `scope` of the token response, if it had one.
    pub scope: Option<String>,
    /// `refresh_token` of the token response, if it had one.
    pub refresh_token: Option<String>,
}

/// Grant of an outbound token request and its grant-specific form fields.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OutboundGrant<'a> {
    ClientCredentials,
    Password {
        username: &'a str,
        password: &'a str,
    },
    RefreshToken {
        refresh_token: &'a str,
    },
    JwtBearer {
        assertion: &'a str,
    },
    Saml2Bearer {
        assertion: &'a str,
    },
}

impl OutboundGrant<'_> {
    /// Appends `grant_type` and the grant's own fields to a form.
    fn append_to(&self, form: &mut form_urlencoded::Serializer<'_, String>) {
        use super::access_token::grant_type;
        match *self {
            OutboundGrant::ClientCredentials => {
                form.append_pair("grant_type", grant_type::CLIENT_CREDENTIALS);
            }
            OutboundGrant::Password { username, password } => {
                form.append_pair("grant_type", grant_type::PASSWORD);
                form.append_pair("username", username);
                form.append_pair("password", password);
            }
            OutboundGrant::RefreshToken { refresh_token } => {
                form.append_pair("grant_type", grant_type::REFRESH_TOKEN);
                form.append_pair("refresh_token", refresh_token);
            }
            OutboundGrant::JwtBearer { assertion } => {
                form.append_pair("grant_type", grant_type::JWT_BEARER);
                form.append_pair("assertion", assertion);
            }
            OutboundGrant::Saml2Bearer { assertion } => {
                form.append_pair("grant_type", grant_type::SAML2_BEARER);
                form.append_pair("assertion", assertion);
            }
        }
    }
}

/// How the emulator authenticates at the token service.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClientAuthentication<'a> {
    /// HTTP Basic with client id (or token service user) and secret.
    Basic { user: &'a str, password: &'a str },
    /// Only a `client_id` form field, for token services that trust the
    /// grant itself.
    ClientIdOnly { client_id: &'a str },
}

/// One outbound token request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboundTokenRequest<'a> {
    pub token_url: &'a str,
    pub authentication: ClientAuthentication<'a>,
    pub grant: OutboundGrant<'a>,
    /// The `scope` form field, if set.
    pub scope: Option<&'a str>,
}

/// Failed token request. The messages end up in the `error` field of the
/// find-destination response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenFetchError {
    #[error("tokenServiceURL {url:?} is not a valid URL")]
    InvalidUrl { url: String },
    #[error(
        "tokenServiceURL {url:?} is not allowed: the emulator only requests tokens from http://127.0.0.1"
    )]
    HostNotAllowed { url: String },
    #[error("request to {url} failed: {message}")]
    Request { url: String, message: String },
    #[error("request to {url} timed out after {} seconds", TOKEN_REQUEST_TIMEOUT.as_secs())]
    TimedOut { url: String },
    #[error("token service {url} returned HTTP {status}{description}")]
    Status {
        url: String,
        status: StatusCode,
        /// `": "` and the response's `error_description`, or empty.
        description: String,
    },
    #[error("token service {url} returned an invalid token response: {message}")]
    InvalidResponse { url: String, message: String },
}

/// Token response fields the emulator reads.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// HTTP client for token requests. It speaks plain HTTP only, which is all
/// that a loopback token service needs.
#[derive(Debug, Clone)]
pub(crate) struct TokenClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for TokenClient {
    fn default() -> Self {
        let client = Client::builder(TokioExecutor::new()).build_http();
        Self { client }
    }
}

impl TokenClient {
    /// Sends one token request and returns the token of a 200 response.
    pub(crate) async fn fetch(
        &self,
        request: &OutboundTokenRequest<'_>,
    ) -> Result<FetchedToken, TokenFetchError> {
        let token_url = request.token_url;
        let uri = check_token_url(token_url)?;

        let form_body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            request.grant.append_to(&mut form);
            if let ClientAuthentication::ClientIdOnly { client_id } = request.authentication {
                form.append_pair("client_id", client_id);
            }
            if let Some(scope) = request.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        if let ClientAuthentication::Basic { user, password } = request.authentication {
            let basic = STANDARD.encode(format!("{user}:{password}"));
            builder = builder.header(AUTHORIZATION, format!("Basic {basic}"));
        }
        let request = builder
            .body(Full::new(Bytes::from(form_body)))
            .map_err(|error| TokenFetchError::Request {
                url: token_url.to_owned(),
                message: error.to_string(),
            })?;

        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|error| {
                    TokenFetchError::Request {
                        url: token_url.to_owned(),
                        message: error.to_string(),
                    }
                })?;
                let status = response.status();
                let body = Limited::new(response.into_body(), MAX_REQUEST_BODY_BYTES)
                    .collect()
                    .await
                    .map_err(|error| TokenFetchError::Request {
                        url: token_url.to_owned(),
                        message: format!("failed to read response body: {error}"),
                    })?
                    .to_bytes();
                Ok((status, body))
            };
        let (status, body) = tokio::time::timeout(TOKEN_REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_elapsed| TokenFetchError::TimedOut {
                url: token_url.to_owned(),
            })??;

        if status != StatusCode::OK {
            let description = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|error| error["error_description"].as_str().map(str::to_owned))
                .map(|description| format!(": {description}"))
                .unwrap_or_default();
            return Err(TokenFetchError::Status {
                url: token_url.to_owned(),
                status,
                description,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|error| TokenFetchError::InvalidResponse {
                url: token_url.to_owned(),
                message: error.to_string(),
            })?;
        Ok(FetchedToken {
            access_token: parsed.access_token,
            token_type: parsed.token_type.unwrap_or_else(|| "bearer".to_owned()),
            expires_in: parsed.expires_in,
            scope: parsed.scope,
            refresh_token: parsed.refresh_token,
        })
    }
}

/// Parses `token_url` and checks that it is a plain-HTTP URL on 127.0.0.1.
/// Host names, even `localhost`, are rejected so that no name is resolved.
fn check_token_url(token_url: &str) -> Result<Uri, TokenFetchError> {
    let uri: Uri = token_url.parse().map_err(|_| TokenFetchError::InvalidUrl {
        url: token_url.to_owned(),
    })?;
    let allowed = uri.scheme_str() == Some("http") && uri.host() == Some(ALLOWED_HOST);
    if !allowed {
        return Err(TokenFetchError::HostNotAllowed {
            url: token_url.to_owned(),
        });
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_url_on_loopback_ip_is_allowed() {
        assert!(check_token_url("http://127.0.0.1:8080/oauth/token").is_ok());
    }

    // These checks only parse strings, so no request leaves the process.
    #[test]
    fn token_url_guard_rejects_other_urls() {
        for url in [
            "https://127.0.0.1:8443/oauth/token",
            "http://localhost:8080/oauth/token",
            "http://127.0.0.2/oauth/token",
            "/oauth/token",
        ] {
            assert!(
                matches!(
                    check_token_url(url),
                    Err(TokenFetchError::HostNotAllowed { .. })
                ),
                "{url} should be rejected"
            );
        }
        assert!(matches!(
            check_token_url("not a url"),
            Err(TokenFetchError::InvalidUrl { .. })
        ));
    }
}
