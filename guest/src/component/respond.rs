//! The client response: status and allow-listed headers from the backend,
//! links rewritten to the gateway, and non-OData errors turned into OData
//! errors.
//!
//! Bodies whose media type carries links (JSON, XML, `$batch`) are decoded
//! from `gzip` or `deflate` and rewritten, and leave without
//! `Content-Encoding` and `Content-Length`. Other bodies stream through
//! unchanged. OData errors from the backend pass unchanged too. A failure
//! after the status was sent leaves the body unfinished, so the host ends
//! the response as failed instead of as a truncated success.

use super::bindings::wasi::http::types::{
    Fields, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use super::bindings::wasi::io::streams::{OutputStream, StreamError};
use super::io::{self, READ_CHUNK, ReadError, header_text};
use super::{Backend, CORRELATION_HEADER, Exchange, Reply, send_error};
use crate::batch;
use crate::decode::{self, Decoder};
use crate::error::GatewayError;
use crate::headers::returns_response_header;
use crate::links::{self, LinkMap};
use crate::odata::{self, ODataVersion};

/// The header in which the host names the destination's URL.
pub const DESTINATION_URL_HEADER: &str = "x-destination-url";

/// The largest error body the gateway reads to check its format.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// The largest `$batch` response the gateway rewrites in memory.
const MAX_BATCH_BODY: usize = 64 * 1024 * 1024;

/// Headers whose value is a URL to rewrite.
const LINK_HEADERS: &[&str] = &["location", "content-location", "odata-entityid"];

/// The context a response needs besides its status and headers.
struct Shaped<'a> {
    exchange: &'a Exchange,
    headers: Vec<(String, Vec<u8>)>,
    links: Option<LinkMap>,
    backend_request_url: String,
}

/// Sends the backend's response, or the error that replaces it.
pub fn send(exchange: &Exchange, reply: Reply, response_out: ResponseOutparam) {
    let (status, headers) = match &reply.response {
        Backend::Streaming(response) => (response.status(), response.headers().entries()),
        Backend::Buffered {
            status, headers, ..
        } => (*status, headers.clone()),
    };
    let version =
        odata::ODataVersion::detect(&headers, &exchange.client_headers, &exchange.service_path);
    let destination_url = header_text(&headers, DESTINATION_URL_HEADER);
    let shaped = Shaped {
        exchange,
        links: destination_url
            .as_deref()
            .and_then(|base| LinkMap::new(base, &exchange.gateway_base)),
        backend_request_url: backend_request_url(destination_url.as_deref(), exchange),
        headers,
    };

    if let Some(error) = shaped.redirect_error(status) {
        return fail(exchange, &error, version, response_out);
    }
    let content_type = header_text(&shaped.headers, "content-type").unwrap_or_default();
    let media = odata::media_type(&content_type);
    let looks_like_login = (200..300).contains(&status)
        && media == "text/html"
        && !exchange.service_path.ends_with("/$value");
    if status >= 400 || looks_like_login {
        return shaped.send_checked_error(status, reply, version, response_out);
    }

    let csrf_token = reply.csrf_token.clone();
    let is_head = exchange.method == "HEAD";
    let no_body = is_head || status == 204 || status == 304;
    let encoding = header_text(&shaped.headers, "content-encoding");
    let rewriter = match (&shaped.links, no_body) {
        (Some(map), false) if media == "multipart/mixed" => Some(Body::Batch),
        (Some(map), false) => links::body_rewriter(&content_type, map).map(Body::Links),
        _ => None,
    };
    let decoder = rewriter
        .as_ref()
        .and_then(|_| Decoder::for_encoding(encoding.as_deref()));
    let (rewriter, decoder) = match (rewriter, decoder) {
        (Some(rewriter), Some(decoder)) => (Some(rewriter), Some(decoder)),
        _ => (None, None),
    };

    let changes_body = rewriter.is_some();
    let client_headers = shaped.client_headers(changes_body, is_head, csrf_token);
    let outgoing =
        OutgoingResponse::new(Fields::from_list(&client_headers).unwrap_or_else(|_| Fields::new()));
    let _ = outgoing.set_status_code(status);
    let Ok(client_body) = outgoing.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(outgoing));
    if no_body {
        let _ = OutgoingBody::finish(client_body, None);
        return;
    }
    let Ok(output) = client_body.write() else {
        return;
    };

    let completed = match (rewriter, decoder) {
        (Some(Body::Batch), Some(decoder)) => {
            shaped.copy_batch(reply.response, decoder, &content_type, &output)
        }
        (Some(Body::Links(rewriter)), Some(decoder)) => {
            copy_rewritten(reply.response, decoder, rewriter, &output)
        }
        _ => copy_unchanged(reply.response, &output),
    };
    drop(output);
    if completed {
        let _ = OutgoingBody::finish(client_body, None);
    }
}

/// The rewriting that a body with links needs.
enum Body {
    Links(Box<dyn links::BodyRewriter>),
    Batch,
}

impl Shaped<'_> {
    /// Returns the error for a redirect that leaves the destination: such a
    /// redirect usually points at an identity provider's login page.
    fn redirect_error(&self, status: u16) -> Option<GatewayError> {
        if !(300..400).contains(&status) || status == 304 {
            return None;
        }
        let location = header_text(&self.headers, "location")?;
        let stays = self
            .links
            .as_ref()
            .and_then(|map| map.rewrite_location(&location, &self.backend_request_url))
            .is_some();
        (!stays).then(|| GatewayError::redirected_away(&self.exchange.destination, status))
    }

    /// Passes an OData error unchanged and replaces anything else (an HTML
    /// login page, plain text, an empty body) with an OData error.
    fn send_checked_error(
        &self,
        status: u16,
        reply: Reply,
        version: ODataVersion,
        response_out: ResponseOutparam,
    ) {
        let exchange = self.exchange;
        let content_type = header_text(&self.headers, "content-type").unwrap_or_default();
        let encoding = header_text(&self.headers, "content-encoding");
        let raw = match reply.response {
            Backend::Streaming(response) => io::read_response_body(&response, MAX_ERROR_BODY),
            Backend::Buffered { body, .. } => Ok(body),
        };
        let body = match raw {
            Ok(raw) => decode::decode_all(encoding.as_deref(), &raw).unwrap_or(raw),
            Err(ReadError::TooLarge) => {
                let error = GatewayError::non_odata_upstream(
                    &exchange.destination,
                    status,
                    "with an error body larger than 1 MiB",
                );
                return fail(exchange, &error, version, response_out);
            }
            Err(ReadError::Failed) => {
                let error = GatewayError::backend_failed(
                    &exchange.destination,
                    "its error response broke off",
                );
                return fail(exchange, &error, version, response_out);
            }
        };

        if status >= 400 && odata::is_odata_error(&content_type, &body) {
            let mut headers = self.client_headers(true, false, None);
            headers.push((
                "content-length".to_owned(),
                body.len().to_string().into_bytes(),
            ));
            return send_bytes(
                status,
                &headers,
                &body,
                exchange.method == "HEAD",
                response_out,
            );
        }
        let description = odata::describe_body(&content_type, &body);
        let error = GatewayError::non_odata_upstream(&exchange.destination, status, &description);
        fail(exchange, &error, version, response_out);
    }

    /// Builds the client's headers from the backend's allow-listed ones.
    fn client_headers(
        &self,
        changes_body: bool,
        is_head: bool,
        csrf_token: Option<String>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
        for (name, value) in &self.headers {
            let keep = returns_response_header(name)
                || LINK_HEADERS.contains(&name.as_str())
                || (name == "content-length" && !is_head);
            let dropped_by_rewrite =
                changes_body && (name == "content-length" || name == "content-encoding");
            if !keep || dropped_by_rewrite {
                continue;
            }
            if LINK_HEADERS.contains(&name.as_str()) {
                headers.push((name.clone(), self.rewrite_link_header(value)));
            } else {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers.push((
            CORRELATION_HEADER.to_owned(),
            self.exchange.correlation_id.as_bytes().to_vec(),
        ));
        if let Some(token) = csrf_token {
            headers.push(("x-csrf-token".to_owned(), token.into_bytes()));
        }
        headers
    }

    fn rewrite_link_header(&self, value: &[u8]) -> Vec<u8> {
        let rewritten = std::str::from_utf8(value).ok().and_then(|text| {
            self.links
                .as_ref()?
                .rewrite_location(text, &self.backend_request_url)
        });
        rewritten.map_or_else(|| value.to_vec(), String::into_bytes)
    }

    /// Reads a `$batch` response whole, rewrites the links in its parts and
    /// writes it. A body the parser cannot read is sent as it came.
    fn copy_batch(
        &self,
        response: Backend,
        decoder: Decoder,
        content_type: &str,
        output: &OutputStream,
    ) -> bool {
        let raw = match response {
            Backend::Streaming(response) => match io::read_response_body(&response, MAX_BATCH_BODY)
            {
                Ok(raw) => raw,
                Err(_) => return false,
            },
            Backend::Buffered { body, .. } => body,
        };
        let Ok(body) = decode_whole(decoder, &raw) else {
            return false;
        };
        let rewritten = match (&self.links, batch::boundary(content_type)) {
            (Some(map), Some(boundary)) => {
                batch::rewrite_response(&body, &boundary, map, &self.backend_request_url).ok()
            }
            _ => None,
        };
        io::write_all(output, rewritten.as_deref().unwrap_or(&body)).is_ok()
    }
}

fn decode_whole(mut decoder: Decoder, raw: &[u8]) -> Result<Vec<u8>, decode::DecodeError> {
    let mut body = decoder.push(raw)?;
    body.extend(decoder.finish()?);
    Ok(body)
}

/// Streams a body through the decoder and the link rewriter.
fn copy_rewritten(
    response: Backend,
    mut decoder: Decoder,
    mut rewriter: Box<dyn links::BodyRewriter>,
    output: &OutputStream,
) -> bool {
    let mut rewritten = Vec::new();
    let mut pass = |chunk: &[u8], decoder: &mut Decoder, rewritten: &mut Vec<u8>| -> bool {
        let Ok(plain) = decoder.push(chunk) else {
            return false;
        };
        rewritten.clear();
        rewriter.write(&plain, rewritten);
        io::write_all(output, rewritten).is_ok()
    };

    match response {
        Backend::Buffered { body, .. } => {
            if !pass(&body, &mut decoder, &mut rewritten) {
                return false;
            }
        }
        Backend::Streaming(response) => {
            let Ok(body) = response.consume() else {
                return false;
            };
            let Ok(input) = body.stream() else {
                return false;
            };
            loop {
                match input.blocking_read(READ_CHUNK) {
                    Ok(chunk) => {
                        if !pass(&chunk, &mut decoder, &mut rewritten) {
                            return false;
                        }
                    }
                    Err(StreamError::Closed) => break,
                    Err(StreamError::LastOperationFailed(_)) => return false,
                }
            }
        }
    }

    let Ok(tail) = decoder.finish() else {
        return false;
    };
    rewritten.clear();
    rewriter.write(&tail, &mut rewritten);
    rewriter.finish(&mut rewritten);
    io::write_all(output, &rewritten).is_ok()
}

/// Copies a body as it is.
fn copy_unchanged(response: Backend, output: &OutputStream) -> bool {
    match response {
        Backend::Buffered { body, .. } => io::write_all(output, &body).is_ok(),
        Backend::Streaming(response) => {
            let Ok(body) = response.consume() else {
                return false;
            };
            let Ok(input) = body.stream() else {
                return false;
            };
            loop {
                match output.blocking_splice(&input, READ_CHUNK) {
                    Ok(_) => {}
                    Err(StreamError::Closed) => return true,
                    Err(StreamError::LastOperationFailed(_)) => return false,
                }
            }
        }
    }
}

/// Returns the absolute URL the host sent the request to: the destination
/// URL joined with the service path by exactly one `/`, as the host joins
/// them.
fn backend_request_url(destination_url: Option<&str>, exchange: &Exchange) -> String {
    let base = destination_url.unwrap_or("http://destination.invalid");
    let path = &exchange.service_path_and_query;
    if path.is_empty() || path.starts_with('?') {
        format!("{base}/{path}")
    } else {
        format!("{base}{path}")
    }
}

fn fail(
    exchange: &Exchange,
    error: &GatewayError,
    version: ODataVersion,
    response_out: ResponseOutparam,
) {
    send_error(
        response_out,
        error,
        &exchange.correlation_id,
        version,
        exchange.method == "HEAD",
    );
}

fn send_bytes(
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    is_head: bool,
    response_out: ResponseOutparam,
) {
    let response =
        OutgoingResponse::new(Fields::from_list(headers).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(status);
    let Ok(client_body) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));
    if !is_head {
        let Ok(output) = client_body.write() else {
            return;
        };
        if io::write_all(&output, body).is_err() {
            return;
        }
        drop(output);
    }
    let _ = OutgoingBody::finish(client_body, None);
}
