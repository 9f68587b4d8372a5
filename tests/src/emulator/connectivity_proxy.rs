//! The HTTP proxy of the Connectivity service, through which applications
//! reach on-premise systems behind the Cloud Connector, with the Cloud
//! Connector itself reduced to a table of virtual hosts.
//!
//! A request arrives in absolute form (`GET http://s4.onprem:44300/path
//! HTTP/1.1`) and must carry `Proxy-Authorization: Bearer <token>` with a
//! token this emulator issued to a client in `connectivity_clients` (or in
//! `clients` when that list is empty); otherwise the proxy returns 407. It
//! reads:
//!
//! - `SAP-Connectivity-SCC-Location_ID`: the Cloud Connector location id,
//!   empty by default;
//! - `SAP-Connectivity-Authentication: Bearer <user token>`: principal
//!   propagation; without it, a user token in `Proxy-Authorization` carries
//!   the principal (the non-trusted mode of the connectivity proxy);
//! - `SAP-Connectivity-Technical-Authentication: Bearer <token>`: technical
//!   user propagation.
//!
//! It forwards the request to the mapped `target` with the path and query
//! unchanged and `Host` set to the target, removes `Proxy-Authorization`,
//! every `SAP-Connectivity-*` header and hop-by-hop headers, and adds
//! `x-emulator-scc-location-id`, `x-emulator-principal` (the `user_name` of
//! the propagated user) and `x-emulator-technical-user` (the `client_id` of
//! the technical token), so that a backend can show what the Cloud Connector
//! would have done. Headers named `x-emulator-*` from the client are
//! removed first. An unknown location or virtual host gives 503, and an
//! invalid propagation token 401, each with a plain-text message.
//!
//! Not emulated: `CONNECT` and HTTPS targets (the real proxy takes plain
//! HTTP and the Cloud Connector opens TLS to the backend), the SOCKS5, RFC
//! and LDAP ports, the Cloud Connector's path restrictions, principal
//! mapping to certificates, and streaming: request and response bodies are
//! read whole, up to 16 MiB each.
//!
//! Sources: the SAP BTP Connectivity documentation (`SAP-docs/btp-connectivity`,
//! files `using-the-connectivity-proxy-f3c1ef4.md` and
//! `oauth-technical-user-propagation-authentication-8634e21.md`), and the
//! proxy headers that `@sap-cloud-sdk/connectivity` builds
//! (`packages/connectivity/src/scp-cf/connectivity-service.ts`).

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::access_token::VerifiedToken;
use super::http_util::EmulatorResponse;
use super::router::EmulatorState;
use super::stats::Counter;
use super::virtual_host::VirtualHostConfig;

/// Header with the Cloud Connector location id.
pub const LOCATION_ID_HEADER: &str = "sap-connectivity-scc-location_id";
/// Header with the user token for principal propagation.
pub const PRINCIPAL_HEADER: &str = "sap-connectivity-authentication";
/// Header with the token for technical user propagation.
pub const TECHNICAL_USER_HEADER: &str = "sap-connectivity-technical-authentication";

/// Header the backend receives with the location id (possibly empty).
pub const EMULATOR_LOCATION_HEADER: &str = "x-emulator-scc-location-id";
/// Header the backend receives with the propagated user's `user_name`.
pub const EMULATOR_PRINCIPAL_HEADER: &str = "x-emulator-principal";
/// Header the backend receives with the technical token's `client_id`.
pub const EMULATOR_TECHNICAL_USER_HEADER: &str = "x-emulator-technical-user";

/// Largest request or response body the proxy forwards.
const MAX_PROXY_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Time limit for one forwarded exchange, from connect to the last body byte.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);

/// Hop-by-hop headers (RFC 9110, section 7.6.1) and `Proxy-*` headers,
/// which are never forwarded in either direction.
const HOP_BY_HOP_HEADERS: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Handles one request to the connectivity proxy.
pub(crate) async fn handle_proxy_request(
    state: &EmulatorState,
    request: Request<Incoming>,
) -> EmulatorResponse {
    state.counters.count(Counter::ProxyRequests);

    if request.method() == Method::CONNECT {
        return plain_text(
            StatusCode::METHOD_NOT_ALLOWED,
            "CONNECT is not supported by the HTTP proxy of the Connectivity service; \
             send plain HTTP requests in absolute form, the Cloud Connector opens TLS to the backend",
        );
    }

    let proxy_token = match check_proxy_authorization(state, request.headers()) {
        Ok(token) => token,
        Err(message) => {
            tracing::info!(message, "connectivity proxy request rejected");
            let mut response = plain_text(StatusCode::PROXY_AUTHENTICATION_REQUIRED, &message);
            response.headers_mut().insert(
                http::header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"connectivity-proxy\""),
            );
            return response;
        }
    };

    let uri = request.uri().clone();
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return plain_text(
            StatusCode::BAD_REQUEST,
            "The connectivity proxy needs a request in absolute form with an http:// URL, \
             for example GET http://virtual-host:port/path HTTP/1.1",
        );
    }
    let host = uri.host().unwrap_or_default();
    let port = uri.port_u16().unwrap_or(80);
    let location_id = header_text(request.headers(), LOCATION_ID_HEADER).unwrap_or_default();

    let mapping = match find_mapping(&state.config.virtual_hosts, host, port, location_id) {
        Ok(mapping) => mapping,
        Err(message) => {
            tracing::info!(host, port, location_id, "connectivity proxy has no mapping");
            return plain_text(StatusCode::SERVICE_UNAVAILABLE, &message);
        }
    };

    let principal = match propagated_principal(state, request.headers(), &proxy_token) {
        Ok(principal) => principal,
        Err(message) => return plain_text(StatusCode::UNAUTHORIZED, &message),
    };
    let technical_user = match header_text(request.headers(), TECHNICAL_USER_HEADER) {
        None => None,
        Some(value) => match verify_bearer(state, value) {
            Ok(token) => Some(token.client_id),
            Err(reason) => {
                let message = format!("{TECHNICAL_USER_HEADER} is invalid: {reason}");
                return plain_text(StatusCode::UNAUTHORIZED, &message);
            }
        },
    };

    let forwarded = Forwarded {
        location_id: location_id.to_owned(),
        principal,
        technical_user,
    };
    match forward(state, request, mapping, &forwarded).await {
        Ok(response) => {
            state.counters.count(Counter::ProxyForwarded);
            response
        }
        Err((status, message)) => {
            tracing::warn!(
                target = mapping.target,
                message,
                "connectivity proxy forward failed"
            );
            plain_text(status, &message)
        }
    }
}

/// Facts the emulated Cloud Connector passes to the backend in headers.
#[derive(Debug)]
struct Forwarded {
    location_id: String,
    principal: Option<String>,
    technical_user: Option<String>,
}

/// Checks `Proxy-Authorization` and returns its verified token.
fn check_proxy_authorization(
    state: &EmulatorState,
    headers: &HeaderMap,
) -> Result<VerifiedToken, String> {
    let value = header_text(headers, "proxy-authorization").ok_or_else(|| {
        "Proxy authentication required: send Proxy-Authorization: Bearer <token of the \
         Connectivity service binding>"
            .to_owned()
    })?;
    let token = verify_bearer(state, value)
        .map_err(|reason| format!("Proxy-Authorization is invalid: {reason}"))?;

    let config = &state.config;
    let allowed = if config.connectivity_clients.is_empty() {
        config
            .clients
            .iter()
            .any(|client| client.client_id == token.client_id)
    } else {
        config
            .connectivity_clients
            .iter()
            .any(|client| client.client_id == token.client_id)
    };
    if !allowed {
        return Err(format!(
            "Proxy-Authorization holds a token of client {:?}, which is not a client of the \
             Connectivity service binding",
            token.client_id
        ));
    }
    Ok(token)
}

/// Returns the propagated user: from `SAP-Connectivity-Authentication` if
/// sent, else from a user token in `Proxy-Authorization`.
fn propagated_principal(
    state: &EmulatorState,
    headers: &HeaderMap,
    proxy_token: &VerifiedToken,
) -> Result<Option<String>, String> {
    let Some(value) = header_text(headers, PRINCIPAL_HEADER) else {
        return Ok(proxy_token.user.as_ref().map(|user| user.user_name.clone()));
    };
    let token = verify_bearer(state, value)
        .map_err(|reason| format!("{PRINCIPAL_HEADER} is invalid: {reason}"))?;
    token
        .user
        .map(|user| Some(user.user_name))
        .ok_or_else(|| format!("{PRINCIPAL_HEADER} holds a client token, not a user token"))
}

/// Finds the mapping for `host:port` at `location_id`, or returns the Cloud
/// Connector style message for a location or host without one.
///
/// NOTE: both cases give 503 here. A real Cloud Connector may deny a host it
/// has no mapping for with another status; that was not verified.
fn find_mapping<'a>(
    mappings: &'a [VirtualHostConfig],
    host: &str,
    port: u16,
    location_id: &str,
) -> Result<&'a VirtualHostConfig, String> {
    if !mappings
        .iter()
        .any(|mapping| mapping.location_id == location_id)
    {
        let location = if location_id.is_empty() {
            "without location ID".to_owned()
        } else {
            format!("with location ID '{location_id}'")
        };
        return Err(format!(
            "There is no SAP Cloud Connector (SCC) {location} connected to your subaccount"
        ));
    }
    mappings
        .iter()
        .find(|mapping| mapping.matches(host, port, location_id))
        .ok_or_else(|| {
            format!(
                "The SAP Cloud Connector (SCC) with location ID '{location_id}' has no mapping \
                 for the virtual host {host}:{port}; check its access control"
            )
        })
}

/// Sends the request to the mapped backend and returns its response.
async fn forward(
    state: &EmulatorState,
    request: Request<Incoming>,
    mapping: &VirtualHostConfig,
    forwarded: &Forwarded,
) -> Result<EmulatorResponse, (StatusCode, String)> {
    let (parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let target_authority = mapping.target_authority();
    let target_uri: Uri = format!("http://{target_authority}{path_and_query}")
        .parse()
        .map_err(|error| {
            (
                StatusCode::BAD_REQUEST,
                format!("The request path cannot be forwarded: {error}"),
            )
        })?;

    let body = Limited::new(body, MAX_PROXY_BODY_BYTES)
        .collect()
        .await
        .map_err(|error| {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Failed to read the request body (at most {MAX_PROXY_BODY_BYTES} bytes): {error}"),
            )
        })?
        .to_bytes();

    let mut builder = Request::builder().method(parts.method).uri(target_uri);
    if let Some(headers) = builder.headers_mut() {
        copy_forwardable_headers(&parts.headers, headers, true);
        if let Ok(host) = HeaderValue::from_str(&target_authority) {
            headers.insert(HOST, host);
        }
        let mut add = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        add(EMULATOR_LOCATION_HEADER, &forwarded.location_id);
        if let Some(principal) = &forwarded.principal {
            add(EMULATOR_PRINCIPAL_HEADER, principal);
        }
        if let Some(technical_user) = &forwarded.technical_user {
            add(EMULATOR_TECHNICAL_USER_HEADER, technical_user);
        }
    }
    let outbound = builder.body(Full::new(body)).map_err(|error| {
        (
            StatusCode::BAD_REQUEST,
            format!("The request cannot be forwarded: {error}"),
        )
    })?;

    let exchange = async {
        let response = state
            .forward_client
            .request(outbound)
            .await
            .map_err(|error| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("The backend {} is not reachable: {error}", mapping.target),
                )
            })?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_PROXY_BODY_BYTES)
            .collect()
            .await
            .map_err(|error| {
                (
                    StatusCode::BAD_GATEWAY,
                    format!("Failed to read the backend response: {error}"),
                )
            })?
            .to_bytes();
        Ok::<_, (StatusCode, String)>((parts, body))
    };
    let (backend_parts, backend_body) = tokio::time::timeout(FORWARD_TIMEOUT, exchange)
        .await
        .map_err(|_elapsed| {
            (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "The backend {} did not answer within {} seconds",
                    mapping.target,
                    FORWARD_TIMEOUT.as_secs()
                ),
            )
        })??;

    let mut response = Response::new(Full::new(backend_body));
    *response.status_mut() = backend_parts.status;
    copy_forwardable_headers(&backend_parts.headers, response.headers_mut(), false);
    Ok(response)
}

/// Copies headers except hop-by-hop ones, `Host`, framing headers (hyper
/// sets them for the collected body) and, towards the backend, every
/// `SAP-Connectivity-*` and `x-emulator-*` header.
fn copy_forwardable_headers(source: &HeaderMap, target: &mut HeaderMap, towards_backend: bool) {
    for (name, value) in source {
        let name_text = name.as_str();
        let dropped = HOP_BY_HOP_HEADERS.contains(&name_text)
            || name == HOST
            || name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
            || (towards_backend
                && (name_text.starts_with("sap-connectivity-")
                    || name_text.starts_with("x-emulator-")));
        if !dropped {
            target.append(name.clone(), value.clone());
        }
    }
}

/// Verifies `Bearer <token>` and returns the token, or the reason it is not
/// accepted.
fn verify_bearer(state: &EmulatorState, value: &str) -> Result<VerifiedToken, String> {
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| "expected \"Bearer <token>\"".to_owned())?;
    state
        .verify_token(token)
        .map_err(|rejection| rejection.to_string())
}

/// Returns a header's value as trimmed text, or `None` if it is missing or
/// empty.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Builds a plain-text response, as the proxy and the Cloud Connector send.
fn plain_text(status: StatusCode, message: &str) -> EmulatorResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
