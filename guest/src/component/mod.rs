//! The `wasi:http/incoming-handler` export and its use of the host's
//! `wasi:http/outgoing-handler`.

use crate::error::GatewayError;
use crate::headers::{default_accept, forwards_request_header, returns_response_header};
use crate::route::{DESTINATION_AUTHORITY, Route, RouteError};

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::outgoing_handler;
use bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    OutgoingResponse, ResponseOutparam, Scheme,
};
use bindings::wasi::io::streams::StreamError;

#[allow(
    unsafe_code,
    reason = "wit-bindgen generates the unsafe canonical ABI glue for imports and exports"
)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "btp-gateway:gateway/gateway",
        generate_all,
    });

    use super::Component;
    export!(Component);
}

/// The header that carries the correlation id, set by the host.
const CORRELATION_HEADER: &str = "x-correlationid";

/// Bytes moved per splice between the backend and the client body.
const SPLICE_CHUNK: u64 = 64 * 1024;

/// `output-stream.blocking-write-and-flush` accepts at most 4096 bytes a call.
const WRITE_CHUNK: usize = 4096;

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let correlation_id = correlation_id(&request);
        let is_head = matches!(request.method(), Method::Head);

        match forward(&request, is_head) {
            Ok(response) => stream_response(response, response_out, is_head),
            Err(error) => send_error(response_out, &error, &correlation_id, is_head),
        }
    }
}

/// Sends the client's request to its destination and returns the backend's
/// response, or the error to return instead.
fn forward(request: &IncomingRequest, is_head: bool) -> Result<IncomingResponse, GatewayError> {
    let method = request.method();
    if !matches!(method, Method::Get | Method::Head) {
        return Err(GatewayError::method_not_allowed(&method_name(&method)));
    }

    let path_with_query = request.path_with_query().unwrap_or_default();
    let route = Route::parse(&path_with_query).map_err(|error| match error {
        RouteError::NotUnderPrefix => GatewayError::not_a_route(&path_with_query),
        RouteError::MissingDestination => GatewayError::missing_destination(),
        RouteError::InvalidDestinationEncoding => GatewayError::invalid_destination_encoding(),
    })?;

    let headers = outbound_headers(request, &route);
    let outgoing = OutgoingRequest::new(headers);
    let method = if is_head { Method::Head } else { Method::Get };
    // These setters fail only for values the type system already excludes
    // here (a malformed authority or path), so their errors cannot occur.
    let _ = outgoing.set_method(&method);
    let _ = outgoing.set_scheme(Some(&Scheme::Http));
    let _ = outgoing.set_authority(Some(DESTINATION_AUTHORITY));
    let _ = outgoing.set_path_with_query(Some(&route.outbound_path_and_query()));

    let body = outgoing.body().map_err(|()| {
        GatewayError::backend_failed(&route.destination, "the request body was already taken")
    })?;
    let pending = outgoing_handler::handle(outgoing, None)
        .map_err(|code| map_error_code(&route.destination, &code))?;
    // A GET has no body: finishing it lets the host send the request.
    let _ = OutgoingBody::finish(body, None);

    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(map_error_code(&route.destination, &code)),
        Some(Err(())) | None => Err(GatewayError::backend_failed(
            &route.destination,
            "the response was lost",
        )),
    }
}

/// Builds the backend request's headers from the client's allow-listed ones.
fn outbound_headers(request: &IncomingRequest, route: &Route<'_>) -> Fields {
    let incoming = request.headers().entries();
    let client_accept = incoming
        .iter()
        .find(|(name, _)| name == "accept")
        .map(|(_, value)| value.as_slice());

    let mut entries: Vec<(String, Vec<u8>)> = incoming
        .iter()
        .filter(|(name, _)| forwards_request_header(name) || name == CORRELATION_HEADER)
        .cloned()
        .collect();
    if let Some(accept) = default_accept(route.service_path(), route.query(), client_accept) {
        entries.retain(|(name, _)| name != "accept");
        entries.push(("accept".to_owned(), accept.as_bytes().to_vec()));
    }

    // Every entry passed the allow-list, so none is a forbidden header and
    // the list cannot be rejected; fall back to no headers all the same.
    Fields::from_list(&entries).unwrap_or_else(|_| Fields::new())
}

/// Starts the client response with the backend's status and headers, then
/// copies the body. A failure after the status was sent drops the body
/// without finishing it, so the host ends the response as failed instead of
/// as a truncated success.
fn stream_response(response: IncomingResponse, response_out: ResponseOutparam, is_head: bool) {
    let headers: Vec<(String, Vec<u8>)> = response
        .headers()
        .entries()
        .into_iter()
        .filter(|(name, _)| returns_response_header(name) || (name == "content-length" && !is_head))
        .collect();
    let outgoing =
        OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = outgoing.set_status_code(response.status());

    let Ok(client_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(outgoing));
    if is_head {
        let _ = OutgoingBody::finish(client_body, None);
        return;
    }

    let Ok(backend_body) = response.consume() else {
        return;
    };
    let (Ok(input), Ok(output)) = (backend_body.stream(), client_body.write()) else {
        return;
    };
    loop {
        match output.blocking_splice(&input, SPLICE_CHUNK) {
            Ok(_) => {}
            Err(StreamError::Closed) => break,
            // The backend or the client connection failed mid-body: leave
            // the client body unfinished so the failure is visible.
            Err(StreamError::LastOperationFailed(_)) => return,
        }
    }
    drop(input);
    drop(output);
    let _ = OutgoingBody::finish(client_body, None);
}

/// Sends a gateway error as the JSON response.
fn send_error(
    response_out: ResponseOutparam,
    error: &GatewayError,
    correlation_id: &str,
    is_head: bool,
) {
    let body = error.to_json(correlation_id);
    let mut headers = vec![
        (
            "content-type".to_owned(),
            b"application/json;charset=utf-8".to_vec(),
        ),
        (
            CORRELATION_HEADER.to_owned(),
            correlation_id.as_bytes().to_vec(),
        ),
    ];
    if error.status == 405 {
        headers.push(("allow".to_owned(), b"GET, HEAD".to_vec()));
    }

    let response =
        OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(error.status);
    let Ok(body_handle) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));

    if !is_head {
        let Ok(stream) = body_handle.write() else {
            return;
        };
        for chunk in body.chunks(WRITE_CHUNK) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body_handle, None);
}

/// Maps an outbound error code to the gateway error the client receives. The
/// destination codes follow the table in `wit/world.wit`.
fn map_error_code(destination: &str, code: &ErrorCode) -> GatewayError {
    match code {
        ErrorCode::DestinationNotFound => GatewayError::destination_not_found(destination),
        ErrorCode::DestinationUnavailable => GatewayError::destination_unavailable(destination),
        ErrorCode::ConfigurationError => GatewayError::destination_misconfigured(destination),
        ErrorCode::HttpRequestDenied => GatewayError::outbound_denied(destination),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => GatewayError::backend_timeout(destination),
        ErrorCode::ConnectionRefused => {
            GatewayError::backend_failed(destination, "the connection was refused")
        }
        ErrorCode::TlsCertificateError | ErrorCode::TlsProtocolError => {
            GatewayError::backend_failed(destination, "the TLS handshake failed")
        }
        ErrorCode::DestinationIpProhibited => GatewayError::backend_failed(
            destination,
            "its address is refused: loopback, link-local and metadata addresses are not allowed",
        ),
        ErrorCode::DnsError(_) => {
            GatewayError::backend_failed(destination, "its host name could not be resolved")
        }
        _ => GatewayError::backend_failed(destination, "the connection failed"),
    }
}

/// Returns the host's correlation id, or a new one when the component runs
/// under a host that sets none (for example `wasmtime serve`).
fn correlation_id(request: &IncomingRequest) -> String {
    let from_host = request
        .headers()
        .get(CORRELATION_HEADER)
        .into_iter()
        .find_map(|value| String::from_utf8(value).ok());
    from_host.unwrap_or_else(|| {
        let bytes = bindings::wasi::random::random::get_random_bytes(16);
        format_uuid(&bytes)
    })
}

/// Formats 16 random bytes as a version 4 UUID.
fn format_uuid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.iter_mut()
        .zip(bytes)
        .for_each(|(slot, byte)| *slot = *byte);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other.clone(),
    }
}
