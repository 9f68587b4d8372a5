//! Writes: the CSRF choreography around `POST`, `PUT`, `PATCH`, `MERGE`,
//! `DELETE` and `$batch`.
//!
//! The client's own `x-csrf-token` is never forwarded. The gateway keeps the
//! backend session (token and cookies) per destination in the caller's
//! `user` cache bucket and fetches a token when it has none. On `403` with
//! `x-csrf-token: Required` it fetches once more and retries once. The
//! gateway's callers authenticate with a bearer token, which a browser does
//! not send on its own, so the gateway needs no CSRF check of its own.

use super::io::{self, BackendRequest, ReadError};
use super::{Backend, Exchange, Reply, map_error_code, store};
use crate::batch;
use crate::csrf::{self, FetchMethod, Session};
use crate::error::GatewayError;

use super::bindings::wasi::http::types::{IncomingRequest, IncomingResponse};

/// The largest request body the component reads; the host's own limit is
/// usually lower.
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

/// Reads the client's body into memory, so that a write can be retried.
pub fn read_client_body(request: IncomingRequest) -> Result<Vec<u8>, GatewayError> {
    let body = request
        .consume()
        .map_err(|()| GatewayError::request_body_failed("the body was already taken"))?;
    io::read_body(body, MAX_REQUEST_BODY).map_err(|error| match error {
        ReadError::TooLarge => GatewayError::request_body_failed("it is larger than 64 MiB"),
        ReadError::Failed => GatewayError::request_body_failed(
            "the stream failed or exceeded the gateway's request body limit",
        ),
    })
}

/// Sends a write with a CSRF token, fetching and retrying as needed.
pub fn send_write(
    exchange: &Exchange,
    body: Vec<u8>,
    is_batch: bool,
) -> Result<Reply, GatewayError> {
    let body = if is_batch {
        prepare_batch(exchange, body)?
    } else {
        body
    };

    let key = csrf::session_key(&exchange.destination);
    let mut session = load_session(&key);
    if session.needs_fetch() {
        fetch_token(exchange, &mut session)?;
    }

    let mut response = send_with_session(exchange, &body, &session)?;
    let csrf_header = response_header(&response, "x-csrf-token");
    if csrf::token_required(response.status(), csrf_header.as_deref()) {
        // The session expired or the token belonged to another one: fetch a
        // new token with fresh cookies and retry once.
        drop(response);
        session = Session::default();
        fetch_token(exchange, &mut session)?;
        if session.token.is_none() {
            return Err(GatewayError::csrf_token_failed(&exchange.destination));
        }
        response = send_with_session(exchange, &body, &session)?;
    }

    session.store_cookies(
        response_header_values(&response, "set-cookie")
            .iter()
            .map(Vec::as_slice),
    );
    store::set(store::USER, &key, &session.to_bytes());
    Ok(Reply {
        response: Backend::Streaming(response),
        csrf_token: None,
    })
}

/// Returns the session's token for a client that asked for one with
/// `x-csrf-token: Fetch`, fetching it when the cache has none. `None` when
/// the backend sends no token.
pub fn session_token(exchange: &Exchange) -> Result<Option<String>, GatewayError> {
    let key = csrf::session_key(&exchange.destination);
    let mut session = load_session(&key);
    if session.needs_fetch() {
        fetch_token(exchange, &mut session)?;
        store::set(store::USER, &key, &session.to_bytes());
    }
    Ok(session.token)
}

fn load_session(key: &str) -> Session {
    store::get(store::USER, key)
        .and_then(|bytes| Session::from_bytes(&bytes))
        .unwrap_or_default()
}

/// Rewrites the inner requests of a `$batch` and checks a read-only
/// destination's rule that a `$batch` contains no changeset.
fn prepare_batch(exchange: &Exchange, body: Vec<u8>) -> Result<Vec<u8>, GatewayError> {
    let content_type =
        io::header_text(&exchange.client_headers, "content-type").unwrap_or_default();
    let Some(boundary) = batch::boundary(&content_type) else {
        return Err(GatewayError::invalid_batch(
            &exchange.destination,
            "the Content-Type is not multipart/mixed with a boundary",
        ));
    };
    let service_root = batch_service_root(exchange).ok_or_else(|| {
        GatewayError::invalid_batch(
            &exchange.destination,
            "the gateway's own URL could not be determined from the Host header",
        )
    })?;
    let rewritten = batch::rewrite_request(&body, &boundary, &service_root)
        .map_err(|error| GatewayError::invalid_batch(&exchange.destination, &error.to_string()))?;
    if exchange.policy.read_only && crate::policy::batch_has_changeset(&rewritten) {
        return Err(GatewayError::read_only_batch(&exchange.destination));
    }
    Ok(rewritten)
}

/// Returns the gateway's service root of the `$batch`, for recognising
/// inner request URLs that point at the gateway.
fn batch_service_root(exchange: &Exchange) -> Option<batch::ServiceRoot> {
    let batch_path = &exchange.service_path;
    let root = batch_path
        .trim_end_matches('/')
        .strip_suffix("$batch")
        .unwrap_or(batch_path);
    let (origin, base_path) = split_origin(&exchange.gateway_base);
    batch::ServiceRoot::new(origin, &format!("{base_path}{root}"))
}

fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |position| position + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => url.split_at(after_scheme + slash),
        None => (url, ""),
    }
}

fn send_with_session(
    exchange: &Exchange,
    body: &[u8],
    session: &Session,
) -> Result<IncomingResponse, GatewayError> {
    let mut request = exchange.forwarded_request(Some(body));
    if let Some(token) = &session.token {
        request
            .headers
            .push(("x-csrf-token".to_owned(), token.clone().into_bytes()));
    }
    if let Some(cookies) = session.cookie_header() {
        request
            .headers
            .push(("cookie".to_owned(), cookies.into_bytes()));
    }
    io::send(&request).map_err(|code| map_error_code(&exchange.destination, &code))
}

/// Fetches a token into `session`, trying the requests of
/// [`csrf::fetch_attempts`] until one returns a token. A token counts even
/// from an error response, as SAP Gateway sends one with a `404`. When no
/// attempt returns one, the session records that the backend sends none,
/// and writes go without a token, as the SAP Cloud SDK proceeds then.
fn fetch_token(exchange: &Exchange, session: &mut Session) -> Result<(), GatewayError> {
    let root = csrf::service_root(&exchange.service_path);
    let mut head_refused = false;
    for (method, path) in csrf::fetch_attempts(&root) {
        if method == FetchMethod::Head && head_refused {
            continue;
        }
        let request = BackendRequest {
            method: match method {
                FetchMethod::Head => "HEAD",
                FetchMethod::Get => "GET",
            },
            path_and_query: format!("{}{path}", exchange.address_prefix),
            headers: fetch_headers(exchange),
            body: None,
        };
        let response =
            io::send(&request).map_err(|code| map_error_code(&exchange.destination, &code))?;
        session.store_cookies(
            response_header_values(&response, "set-cookie")
                .iter()
                .map(Vec::as_slice),
        );
        let token = response_header(&response, "x-csrf-token")
            .and_then(|value| String::from_utf8(value).ok())
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty() && !value.eq_ignore_ascii_case("required"));
        head_refused |= method == FetchMethod::Head && response.status() == 405;
        if let Some(token) = token {
            session.token = Some(token);
            session.token_not_sent = false;
            return Ok(());
        }
    }
    session.token_not_sent = true;
    Ok(())
}

/// Builds the headers of a token fetch: the client's language and the correlation
/// id, JSON accepted so a service document stays small, and no body.
fn fetch_headers(exchange: &Exchange) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = exchange
        .backend_headers()
        .into_iter()
        .filter(|(name, _)| {
            matches!(
                name.as_str(),
                "accept-language" | "sap-language" | "x-correlationid"
            )
        })
        .collect();
    headers.push(("x-csrf-token".to_owned(), b"Fetch".to_vec()));
    headers.push(("accept".to_owned(), b"application/json".to_vec()));
    headers
}

fn response_header(response: &IncomingResponse, name: &str) -> Option<Vec<u8>> {
    response.headers().get(name).into_iter().next()
}

fn response_header_values(response: &IncomingResponse, name: &str) -> Vec<Vec<u8>> {
    response.headers().get(name)
}
