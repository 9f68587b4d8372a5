//! Outbound client-credentials token request that the emulated Destination
//! service sends to the `tokenServiceURL` of an `OAuth2ClientCredentials`
//! destination.
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
    #[error("token service {url} returned HTTP {status}")]
    Status { url: String, status: StatusCode },
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
    /// Requests a client-credentials token from `token_url`, authenticating
    /// with HTTP Basic. `scope`, if set, is sent as the `scope` form field.
    pub(crate) async fn fetch(
        &self,
        token_url: &str,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Result<FetchedToken, TokenFetchError> {
        let uri = check_token_url(token_url)?;

        let form_body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let basic = STANDARD.encode(format!("{client_id}:{client_secret}"));
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, format!("Basic {basic}"))
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
            return Err(TokenFetchError::Status {
                url: token_url.to_owned(),
                status,
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
