//! Blocking helpers over `wasi:http` streams: sending a request to a
//! destination, reading a body into memory with a limit, and writing bytes
//! to a client body.

use super::bindings::wasi::http::outgoing_handler;
use super::bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use super::bindings::wasi::io::streams::{OutputStream, StreamError};
use crate::route::DESTINATION_AUTHORITY;

/// `output-stream.blocking-write-and-flush` accepts at most 4096 bytes a call.
const WRITE_CHUNK: usize = 4096;

/// Bytes requested per read from an input stream.
pub const READ_CHUNK: u64 = 64 * 1024;

/// A request to a destination, addressed by the host's reserved authority.
#[derive(Debug)]
pub struct BackendRequest<'a> {
    pub method: &'a str,
    /// `/{encoded destination}{service path}?{query}`.
    pub path_and_query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<&'a [u8]>,
}

/// The reason a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The body is longer than the limit.
    TooLarge,
    /// The stream failed.
    Failed,
}

/// Sends a request through the host and waits for the response head.
pub fn send(request: &BackendRequest<'_>) -> Result<IncomingResponse, ErrorCode> {
    let mut headers = request.headers.clone();
    if let Some(body) = request.body {
        headers.retain(|(name, _)| name != "content-length");
        headers.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    // The entries passed the allow-lists, so none is forbidden; a rejected
    // list would only drop headers, never credentials, which the host adds.
    let fields = Fields::from_list(&headers).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingRequest::new(fields);
    // These setters fail only for malformed values, which the gateway does
    // not build: the method is a token and the path starts with `/`.
    let _ = outgoing.set_method(&method(request.method));
    let _ = outgoing.set_scheme(Some(&Scheme::Http));
    let _ = outgoing.set_authority(Some(DESTINATION_AUTHORITY));
    let _ = outgoing.set_path_with_query(Some(&request.path_and_query));

    let body = outgoing
        .body()
        .map_err(|()| ErrorCode::InternalError(Some("request body taken twice".to_owned())))?;
    let pending = outgoing_handler::handle(outgoing, None)?;
    if let Some(bytes) = request.body {
        let stream = body
            .write()
            .map_err(|()| ErrorCode::InternalError(Some("request body stream taken".to_owned())))?;
        write_all(&stream, bytes).map_err(|()| {
            ErrorCode::InternalError(Some("writing the request body failed".to_owned()))
        })?;
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);

    pending.subscribe().block();
    match pending.get() {
        Some(Ok(result)) => result,
        Some(Err(())) | None => Err(ErrorCode::InternalError(Some(
            "the response was lost".to_owned(),
        ))),
    }
}

/// Reads a whole body, failing when it exceeds `limit` bytes.
pub fn read_body(body: IncomingBody, limit: usize) -> Result<Vec<u8>, ReadError> {
    let stream = body.stream().map_err(|()| ReadError::Failed)?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > limit {
                    return Err(ReadError::TooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(_)) => return Err(ReadError::Failed),
        }
    }
    drop(stream);
    let _ = IncomingBody::finish(body);
    Ok(bytes)
}

/// Reads a response body whole; see [`read_body`].
pub fn read_response_body(response: &IncomingResponse, limit: usize) -> Result<Vec<u8>, ReadError> {
    let body = response.consume().map_err(|()| ReadError::Failed)?;
    read_body(body, limit)
}

/// Writes all bytes to a stream in the chunks the stream accepts.
pub fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), ()> {
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(|_| ())?;
    }
    Ok(())
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    }
}

/// Returns the first value of a header, as bytes.
pub fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_slice())
}

/// Returns the first value of a header as text, if it is UTF-8.
pub fn header_text(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    header(headers, name).and_then(|value| String::from_utf8(value.to_vec()).ok())
}
