//! `POST /oauth/token`, the XSUAA token endpoint: request checks, client
//! authentication, zone selection and dispatch to the grants.
//!
//! Emulated: client authentication by HTTP Basic or by `client_id` and
//! `client_secret` form fields (Basic wins when both are present), and on
//! the mutual-TLS listener by the client's certificate. The `x-zid` header
//! requests a token for another identity zone (a subscriber tenant). The
//! grants are `client_credentials`, `password`, `refresh_token`,
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` and
//! `urn:ietf:params:oauth:grant-type:saml2-bearer` (see [`grants`](super::grants)).
//! Errors have the OAuth body `{"error", "error_description"}` with XSUAA's
//! status codes. Not emulated: `scope` narrowing, per-client grant types and
//! authorities, `login_hint`, `token_format=opaque`, tenant selection by
//! subdomain in the host name, and percent-decoding of Basic credentials:
//! ids and secrets are compared exactly as sent.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, PRAGMA, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, StatusCode};
use hyper::body::Incoming;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::json;

use super::access_token::grant_type;
use super::config::ClientConfig;
use super::grants::{GrantContext, OAuthError, SelectedZone, TokenResponse};
use super::http_util::{BodyError, EmulatorResponse, json_response, read_body};
use super::router::{ConnectionInfo, EmulatorState};
use super::stats::Counter;

/// Header with which XSUAA clients select the identity zone of the token.
pub(crate) const ZONE_ID_HEADER: &str = "x-zid";

/// Handles one request to `/oauth/token`.
pub(crate) async fn handle_token_request(
    state: &EmulatorState,
    request: Request<Incoming>,
    connection: &ConnectionInfo,
) -> EmulatorResponse {
    state.counters.count_token_request();
    if connection.is_certurl() {
        state.counters.count(Counter::CertUrlTokenRequests);
    }

    if request.method() != Method::POST {
        let mut response = oauth_error(&OAuthError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "Request method {} is not supported, use POST",
                request.method()
            ),
        ));
        response
            .headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if !is_form_urlencoded(request.headers()) {
        return oauth_error(&OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }

    let basic_credentials = match basic_credentials(request.headers()) {
        Ok(credentials) => credentials,
        Err(description) => return unauthorized(description, None),
    };
    let requested_zone = request
        .headers()
        .get(ZONE_ID_HEADER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(error @ BodyError::TooLarge) => {
            return oauth_error(&OAuthError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                error.to_string(),
            ));
        }
        Err(error @ BodyError::Read(_)) => {
            return oauth_error(&OAuthError::invalid_request(error.to_string()));
        }
    };
    let form = TokenForm::parse(&body);

    // The client is authenticated before the grant type is checked, so wrong
    // credentials give 401 even with an unsupported grant type.
    let client = match authenticate_client(state, connection, basic_credentials, &form) {
        Ok(client) => client,
        Err((description, client_id)) => return unauthorized(&description, client_id.as_deref()),
    };

    let zone = match select_zone(state, client, requested_zone.as_deref()) {
        Ok(zone) => zone,
        Err(description) => return unauthorized(&description, Some(&client.client_id)),
    };

    let context = GrantContext {
        state,
        client,
        zone,
        form: &form,
    };
    let result = match form.field("grant_type") {
        Some(grant_type::CLIENT_CREDENTIALS) => {
            state.counters.count(Counter::ClientCredentialsGrants);
            context.client_credentials()
        }
        Some(grant_type::PASSWORD) => {
            state.counters.count(Counter::PasswordGrants);
            context.password()
        }
        Some(grant_type::REFRESH_TOKEN) => {
            state.counters.count(Counter::RefreshTokenGrants);
            context.refresh_token()
        }
        Some(grant_type::JWT_BEARER) => {
            state.counters.count(Counter::JwtBearerGrants);
            context.jwt_bearer()
        }
        Some(grant_type::SAML2_BEARER) => {
            state.counters.count(Counter::Saml2BearerGrants);
            context.saml2_bearer()
        }
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {other}"),
        )),
        None => Err(OAuthError::invalid_request("Missing grant type")),
    };
    match result {
        Ok(token) => token_response(&token),
        Err(error) => oauth_error(&error),
    }
}

/// Form fields of a token request. A repeated field keeps its first value.
#[derive(Debug, Default)]
pub(crate) struct TokenForm {
    fields: HashMap<String, String>,
}

impl TokenForm {
    fn parse(body: &Bytes) -> Self {
        let mut fields = HashMap::new();
        for (key, value) in form_urlencoded::parse(body) {
            fields
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self { fields }
    }

    /// Returns a field's value, if the form has it.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Authenticates the client: by certificate on the mutual-TLS listener, by
/// secret otherwise. Returns the 401 description and the client id, if one
/// was sent, on failure.
fn authenticate_client<'a>(
    state: &'a EmulatorState,
    connection: &ConnectionInfo,
    basic_credentials: Option<(String, String)>,
    form: &TokenForm,
) -> Result<&'a ClientConfig, (String, Option<String>)> {
    if connection.is_certurl() {
        let client_id = basic_credentials
            .map(|(client_id, _)| client_id)
            .or_else(|| form.field("client_id").map(str::to_owned))
            .ok_or_else(|| {
                (
                    "The client_id form field is required with certificate authentication"
                        .to_owned(),
                    None,
                )
            })?;
        let Some(presented) = &connection.client_certificate else {
            return Err((
                "A client certificate is required at this endpoint".to_owned(),
                Some(client_id),
            ));
        };
        let matches = state.config.client(&client_id).filter(|client| {
            client
                .certificate_pem
                .as_deref()
                .and_then(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
                .is_some_and(|configured| configured.as_ref() == presented.as_slice())
        });
        return matches.ok_or((
            "Bad credentials: the client certificate does not belong to this client".to_owned(),
            Some(client_id),
        ));
    }

    let form_credentials = || {
        Some((
            form.field("client_id")?.to_owned(),
            form.field("client_secret")?.to_owned(),
        ))
    };
    let Some((client_id, client_secret)) = basic_credentials.or_else(form_credentials) else {
        return Err((
            "Full authentication is required to access this resource".to_owned(),
            None,
        ));
    };
    state
        .config
        .client(&client_id)
        .filter(|client| client.secret_matches(&client_secret))
        .ok_or(("Bad credentials".to_owned(), Some(client_id)))
}

/// Picks the zone of the new token: the `x-zid` header if sent, else the
/// client's own zone. An `x-zid` must name the provider or a tenant.
///
/// NOTE: the 401 for an unknown `x-zid` is the emulator's choice. The status
/// XSUAA sends for a zone that does not exist was not verified.
fn select_zone(
    state: &EmulatorState,
    client: &ClientConfig,
    requested_zone: Option<&str>,
) -> Result<SelectedZone, String> {
    let config = &state.config;
    match requested_zone.filter(|zone_id| !zone_id.is_empty()) {
        Some(zone_id) => config
            .zone(zone_id)
            .map(|zone| SelectedZone::from_zone(&zone))
            .ok_or_else(|| format!("Identity zone {zone_id:?} from the x-zid header is not known")),
        None => {
            let zone_id = config.zone_id_of(&client.client_id);
            // A client zone that names no tenant keeps the provider's subdomain.
            let subdomain = config
                .zone(zone_id)
                .map_or(config.identity_zone.as_str(), |zone| zone.subdomain);
            Ok(SelectedZone {
                zone_id: zone_id.to_owned(),
                subdomain: subdomain.to_owned(),
            })
        }
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

/// Builds the 200 response of a granted token.
fn token_response(token: &TokenResponse) -> EmulatorResponse {
    let mut body = json!({
        "access_token": token.access_token,
        "token_type": "bearer",
        "expires_in": token.expires_in,
        "scope": token.scopes.join(" "),
        "jti": token.jti,
    });
    if let Some(refresh_token) = &token.refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    let mut response = json_response(StatusCode::OK, &body);
    // RFC 6749, section 5.1: token responses must not be cached.
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Builds an OAuth error response and logs the rejection.
fn oauth_error(error: &OAuthError) -> EmulatorResponse {
    tracing::info!(
        status = %error.status,
        error = error.error,
        description = error.description,
        "token request rejected"
    );
    json_response(
        error.status,
        &json!({ "error": error.error, "error_description": error.description }),
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
