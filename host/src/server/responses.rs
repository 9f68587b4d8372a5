//! The responses the host itself sends instead of the component's: errors
//! of a guest run, authentication and scope failures, 413, and plain JSON.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::auth::AuthError;
use crate::engine::GuestError;

/// How many bytes beyond the body limit the gateway reads and discards of a
/// body it rejected with 413, and for how long at most.
const REJECTED_BODY_EXTRA_BYTES: u64 = 64 * 1024;
const REJECTED_BODY_READ_TIME: Duration = Duration::from_secs(5);

/// Maps a failed guest run to the client's response, and logs the cause
/// once, with the correlation id from the span.
pub(super) fn error_response(
    error: &GuestError,
    correlation_id: &str,
) -> Response<HyperOutgoingBody> {
    let (status, code, message) = match error {
        // No slot is free: ask the client to retry instead of queueing.
        GuestError::Busy(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "the gateway is at its limit of concurrent requests: retry shortly",
        ),
        // The request ran out of time, in the guest or waiting on a backend.
        GuestError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            "the request took longer than the gateway's request timeout",
        ),
        // A trap or a missing response is a fault of the component.
        GuestError::Failed(_) | GuestError::ErrorCode(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ComponentFailed",
            "the gateway component failed before it answered; the gateway log has the cause under this correlation id",
        ),
    };
    match error {
        GuestError::Busy(_) => tracing::warn!(%error, "rejected a request"),
        GuestError::Timeout(_) => tracing::warn!(%error, "ended a request at its deadline"),
        GuestError::Failed(cause) => {
            tracing::error!(error = format!("{cause:#}"), "the component failed");
        }
        GuestError::ErrorCode(code) => {
            tracing::error!(
                ?code,
                "the component answered with an error code instead of a response"
            );
        }
    }

    let body = serde_json::json!({
        "error": { "code": code, "message": message, "innererror": { "correlation_id": correlation_id } }
    });
    let mut response = json_response(status, body.to_string().into_bytes());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Returns an error in the gateway's JSON error format.
pub(super) fn error_json(
    status: StatusCode,
    code: &str,
    message: &str,
    correlation_id: &str,
) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({
        "error": {
            "code": code,
            "message": message,
            "innererror": { "correlation_id": correlation_id }
        }
    });
    json_response(status, body.to_string().into_bytes())
}

/// Returns 403 to an authenticated caller that lacks a scope.
pub(super) fn forbidden(message: &str, correlation_id: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({
        "error": {
            "code": "Forbidden",
            "message": message,
            "innererror": { "correlation_id": correlation_id }
        }
    });
    json_response(StatusCode::FORBIDDEN, body.to_string().into_bytes())
}

/// Returns 401 to a caller without a valid token, as XSUAA-protected apps
/// do, and logs why at `info` (a missing token is routine).
pub(super) fn unauthorized(error: &AuthError, correlation_id: &str) -> Response<HyperOutgoingBody> {
    tracing::info!(%error, "rejected an unauthenticated request");
    unauthorized_with(
        "this gateway requires an XSUAA access token for this application: send it as \
         Authorization: Bearer <token>",
        correlation_id,
    )
}

/// Returns 401 to a caller of an operator endpoint without valid
/// credentials.
pub(super) fn admin_unauthorized(correlation_id: &str) -> Response<HyperOutgoingBody> {
    tracing::info!("rejected an unauthenticated request to an operator endpoint");
    unauthorized_with(
        "this endpoint needs Authorization: Bearer with an XSUAA token that has the scope \
         $XSAPPNAME.Admin, or with the value of BTP_GATEWAY_ADMIN_TOKEN",
        correlation_id,
    )
}

fn unauthorized_with(message: &str, correlation_id: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({
        "error": {
            "code": "Unauthorized",
            "message": message,
            "innererror": { "correlation_id": correlation_id }
        }
    });
    let mut response = json_response(StatusCode::UNAUTHORIZED, body.to_string().into_bytes());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Returns 413 to a request whose declared body is over the limit, before
/// any of it is read.
pub(super) fn payload_too_large(
    max_bytes: u64,
    correlation_id: &str,
) -> Response<HyperOutgoingBody> {
    tracing::info!(max_bytes, "rejected a request body over the limit");
    let body = serde_json::json!({
        "error": {
            "code": "PayloadTooLarge",
            "message": format!("the request body is larger than the gateway's limit of {max_bytes} bytes"),
            "innererror": { "correlation_id": correlation_id }
        }
    });
    json_response(StatusCode::PAYLOAD_TOO_LARGE, body.to_string().into_bytes())
}

/// Reads and discards the body of a request rejected with 413, in the
/// background while hyper sends the response, up to
/// [`REJECTED_BODY_EXTRA_BYTES`] beyond the limit and for at most
/// [`REJECTED_BODY_READ_TIME`].
///
/// hyper closes a connection whose request body is left unread as soon as
/// the response is written. The kernel then sends a reset for the bytes
/// that still arrive, and a client that is still sending often receives the
/// reset instead of the 413. Reading on lets a body slightly over the limit
/// arrive whole, and keeps the connection open long enough for a client
/// with a larger body to read the response.
pub(super) fn discard_rejected_body(mut body: Incoming, max_bytes: u64) {
    let budget = max_bytes.saturating_add(REJECTED_BODY_EXTRA_BYTES);
    tokio::spawn(async move {
        let discard = async {
            let mut discarded: u64 = 0;
            while discarded <= budget {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        let length = frame.data_ref().map_or(0, Bytes::len);
                        discarded = discarded.saturating_add(length as u64);
                    }
                    Some(Err(_)) | None => return discarded,
                }
            }
            discarded
        };
        match tokio::time::timeout(REJECTED_BODY_READ_TIME, discard).await {
            Ok(discarded) => tracing::debug!(discarded, "discarded a rejected request body"),
            Err(_) => tracing::debug!(
                seconds = REJECTED_BODY_READ_TIME.as_secs(),
                "stopped discarding a rejected request body at the time limit"
            ),
        }
    });
}

pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
