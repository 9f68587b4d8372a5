//! `POST /oauth/token`, the XSUAA token endpoint, for the client-credentials
//! grant only.
//!
//! Emulated: client authentication by HTTP Basic or by `client_id` and
//! `client_secret` form fields (Basic wins when both are present), the success
//! body and the OAuth error bodies with XSUAA's status codes. Not emulated:
//! other grant types (password, JWT bearer, refresh), `scope` narrowing,
//! certificate-based client authentication, and percent-decoding of Basic
//! credentials: ids and secrets are compared exactly as sent.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::access_token::{CLIENT_CREDENTIALS_SCOPE, TokenRequest, mint_access_token};
use super::http_util::{BodyError, EmulatorResponse, json_response, read_body};
use super::router::EmulatorState;

/// Handles one request to `/oauth/token`.
pub(crate) async fn handle_token_request(
    state: &EmulatorState,
    request: Request<Incoming>,
) -> EmulatorResponse {
    state.counters.count_token_request();

    if request.method() != Method::POST {
        let mut response = oauth_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &format!(
                "Request method {} is not supported, use POST",
                request.method()
            ),
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if !is_form_urlencoded(request.headers()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }

    let basic_credentials = match basic_credentials(request.headers()) {
        Ok(credentials) => credentials,
        Err(description) => return unauthorized(description, None),
    };
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(error @ BodyError::TooLarge) => {
            return oauth_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                &error.to_string(),
            );
        }
        Err(error @ BodyError::Read(_)) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &error.to_string(),
            );
        }
    };
    let form = TokenForm::parse(&body);

    // The client is authenticated before the grant type is checked, so wrong
    // credentials give 401 even with an unsupported grant type.
    let Some((client_id, client_secret)) = basic_credentials.or_else(|| form.client_credentials())
    else {
        return unauthorized(
            "Full authentication is required to access this resource",
            None,
        );
    };
    let authenticated = state
        .config
        .client(&client_id)
        .is_some_and(|client| client.client_secret == client_secret);
    if !authenticated {
        return unauthorized("Bad credentials", Some(&client_id));
    }

    match form.grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(grant_type) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {grant_type}"),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant type",
            );
        }
    }

    let lifetime = Duration::from_secs(state.config.token_lifetime_seconds);
    let issued = mint_access_token(&TokenRequest {
        client_id: &client_id,
        zone_id: state.config.zone_id_of(&client_id),
        subaccount_id: &state.config.subaccount_id,
        identity_zone: &state.config.identity_zone,
        issuer_base_url: &state.base_url,
        lifetime,
    });
    state.tokens.insert(issued.access_token.clone(), lifetime);
    tracing::debug!(client_id, jti = issued.jti, "issued access token");

    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": state.config.token_lifetime_seconds,
            "scope": CLIENT_CREDENTIALS_SCOPE,
            "jti": issued.jti,
        }),
    );
    // RFC 6749, section 5.1: token responses must not be cached.
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Form fields of a token request that the emulator reads.
#[derive(Debug, Default)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl TokenForm {
    /// Parses the form body. A repeated field keeps its first value.
    fn parse(body: &Bytes) -> Self {
        let mut form = Self::default();
        for (key, value) in form_urlencoded::parse(body) {
            let slot = match key.as_ref() {
                "grant_type" => &mut form.grant_type,
                "client_id" => &mut form.client_id,
                "client_secret" => &mut form.client_secret,
                _ => continue,
            };
            slot.get_or_insert_with(|| value.into_owned());
        }
        form
    }

    fn client_credentials(&self) -> Option<(String, String)> {
        Some((self.client_id.clone()?, self.client_secret.clone()?))
    }
}

fn is_form_urlencoded(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| {
            media_type
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Returns the client id and secret from an `Authorization: Basic` header,
/// `Ok(None)` without such a header, or the error description for a
/// malformed one.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, &'static str> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let Some((scheme, encoded)) = value.to_str().ok().and_then(|value| value.split_once(' '))
    else {
        return Err("Invalid basic authentication token");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or("Failed to decode basic authentication token")?;
    let (client_id, client_secret) = decoded
        .split_once(':')
        .ok_or("Invalid basic authentication token")?;
    Ok(Some((client_id.to_owned(), client_secret.to_owned())))
}

/// Builds an OAuth error response and logs the rejection.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> EmulatorResponse {
    tracing::info!(%status, error, description, "token request rejected");
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// Builds a 401 response and logs the rejection with the client id, if one
/// was sent. The secret is never logged.
fn unauthorized(description: &str, client_id: Option<&str>) -> EmulatorResponse {
    tracing::info!(
        client_id,
        description,
        "token request rejected: client authentication failed"
    );
    let mut response = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({ "error": "unauthorized", "error_description": description }),
    );
    response.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"UAA/client\", error=\"unauthorized\""),
    );
    response
}
