//! Small HTTP helpers shared by the emulated endpoints: JSON responses and
//! request bodies read with a size limit.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

/// Response type of every emulated endpoint.
pub(crate) type EmulatorResponse = Response<Full<Bytes>>;

/// Largest request body the emulator reads. Token requests are a few hundred
/// bytes, so anything near this limit is a client bug.
pub(crate) const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024;

/// Builds a response with a JSON body and `Content-Type: application/json`.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> EmulatorResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Failure to read a request body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body is larger than {MAX_REQUEST_BODY_BYTES} bytes")]
    TooLarge,
    #[error("failed to read request body: {0}")]
    Read(String),
}

/// Reads a whole request body of at most [`MAX_REQUEST_BODY_BYTES`].
pub(crate) async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(error) => Err(BodyError::Read(error.to_string())),
    }
}
