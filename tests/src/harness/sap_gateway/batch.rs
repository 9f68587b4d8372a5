//! `POST $batch`: parses a `multipart/mixed` body with CRLF or LF line
//! endings, runs its requests against the items, and responds with a
//! `multipart/mixed` body whose parts mirror the request.
//!
//! Request targets may be relative to the service root (`Items('1')`),
//! absolute paths (`/sap/opu/odata/sap/ZGW_TEST_SRV/Items('1')`) or
//! absolute URLs. A changeset runs on a copy of the items: when one of its
//! requests fails, the copy is dropped and the changeset gets a single
//! response with that request's error, as SAP Gateway responds.
//!
//! NOTE: `$1`-style references to the `Content-ID` of an earlier request in
//! the same changeset are not resolved.

use http::header::{ACCEPT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use uuid::Uuid;

use super::SAP_TEST_SERVICE_PATH;
use super::items::ItemStore;
use super::reply::{Reply, xml_error};
use super::resources::{self, ServiceRequest};

/// Runs a `$batch` request. `service_root` is the absolute URL of the
/// service with a trailing slash.
pub(super) fn handle(
    items: &mut ItemStore,
    service_root: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    let Some(boundary) = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(multipart_boundary)
    else {
        return invalid_batch("the Content-Type must be multipart/mixed with a boundary");
    };
    let Ok(body) = std::str::from_utf8(body) else {
        return invalid_batch("the batch body is not valid UTF-8");
    };
    let parts = match split_multipart(body, &boundary) {
        Ok(parts) => parts,
        Err(message) => return invalid_batch(&message),
    };

    let response_boundary = new_boundary('0');
    let mut response = String::new();
    for part in parts {
        let rendered = match run_part(items, service_root, part) {
            Ok(rendered) => rendered,
            Err(message) => return invalid_batch(&message),
        };
        response.push_str(&format!("--{response_boundary}\r\n"));
        response.push_str(&rendered);
    }
    response.push_str(&format!("--{response_boundary}--\r\n"));

    Reply::with_body(
        StatusCode::ACCEPTED,
        &format!("multipart/mixed; boundary={response_boundary}"),
        response,
    )
    .header_static("dataserviceversion", "2.0")
}

/// Runs one top-level part, a single request or a changeset, and renders its
/// response part without the leading delimiter.
fn run_part(items: &mut ItemStore, service_root: &str, part: &str) -> Result<String, String> {
    let (mime_headers, content) = split_head(part);
    let content_type = header_value(&mime_headers, "content-type").unwrap_or_default();
    if let Some(changeset_boundary) = multipart_boundary(&content_type) {
        return run_changeset(items, service_root, content, &changeset_boundary);
    }

    let request = parse_http_request(content)?;
    let reply = if request.method == Method::GET {
        run_request(items, service_root, &request)
    } else {
        xml_error(
            StatusCode::BAD_REQUEST,
            "/IWBEP/CM_MGW_RT/010",
            "Change requests must be sent in a changeset",
        )
    };
    Ok(application_http_part(&reply, &mime_headers))
}

/// Runs a changeset on a copy of the items and keeps the copy only when
/// every request succeeds.
fn run_changeset(
    items: &mut ItemStore,
    service_root: &str,
    content: &str,
    boundary: &str,
) -> Result<String, String> {
    let mut copy = items.clone();
    let mut replies = Vec::new();
    for part in split_multipart(content, boundary)? {
        let (mime_headers, content) = split_head(part);
        let request = parse_http_request(content)?;
        let reply = run_request(&mut copy, service_root, &request);
        if reply.status.is_client_error() || reply.status.is_server_error() {
            return Ok(application_http_part(&reply, &mime_headers));
        }
        replies.push((reply, mime_headers));
    }
    *items = copy;

    let changeset_boundary = new_boundary('1');
    let mut rendered = String::new();
    for (reply, mime_headers) in &replies {
        rendered.push_str(&format!("--{changeset_boundary}\r\n"));
        rendered.push_str(&application_http_part(reply, mime_headers));
    }
    rendered.push_str(&format!("--{changeset_boundary}--\r\n"));
    Ok(format!(
        "Content-Type: multipart/mixed; boundary={changeset_boundary}\r\nContent-Length: {}\r\n\r\n{rendered}\r\n",
        rendered.len()
    ))
}

/// A request inside a batch part.
#[derive(Debug)]
struct BatchRequest {
    method: Method,
    target: String,
    headers: HeaderMap,
    body: String,
}

fn run_request(items: &mut ItemStore, service_root: &str, request: &BatchRequest) -> Reply {
    let Some((path, query)) = resolve_target(&request.target) else {
        return xml_error(
            StatusCode::NOT_FOUND,
            "/IWBEP/CM_MGW_RT/020",
            &format!("Request target '{}' is outside the service", request.target),
        );
    };
    let resource = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    resources::handle(
        items,
        service_root,
        &ServiceRequest {
            method: request.method.clone(),
            resource: &resource,
            query,
            headers: &request.headers,
            body: request.body.as_bytes(),
        },
    )
}

/// Returns the path below the service root and the query of a request
/// target in any of the three accepted forms.
fn resolve_target(target: &str) -> Option<(&str, Option<&str>)> {
    let path = match target.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/')?..],
        None => target,
    };
    let path = match path.strip_prefix('/') {
        Some(_) => path.strip_prefix(SAP_TEST_SERVICE_PATH)?,
        None => path,
    };
    Some(match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    })
}

/// Parses the `application/http` content of a part.
fn parse_http_request(content: &str) -> Result<BatchRequest, String> {
    let content = content.trim_start_matches(['\r', '\n']);
    let (request_line, rest) = content.split_once('\n').unwrap_or((content, ""));
    let mut words = request_line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!("invalid request line '{request_line}'"));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("invalid method in request line '{request_line}'"))?;

    let (header_lines, body) = split_head(rest);
    let mut headers = HeaderMap::new();
    for (name, value) in header_lines {
        // Parts are never compressed, so the inner Accept-Encoding is ignored.
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return Err(format!("invalid header name '{name}' in a batch part"));
        };
        if name == ACCEPT_ENCODING {
            continue;
        }
        let Ok(value) = HeaderValue::from_str(&value) else {
            return Err(format!("invalid value of header '{name}' in a batch part"));
        };
        headers.append(name, value);
    }
    Ok(BatchRequest {
        method,
        target: target.to_owned(),
        headers,
        body: body.to_owned(),
    })
}

/// Renders a reply as an `application/http` part, echoing the part's
/// `Content-ID`.
fn application_http_part(reply: &Reply, mime_headers: &[(String, String)]) -> String {
    let mut message = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status.as_u16(),
        reply.status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &reply.headers {
        let name = match name.as_str() {
            "content-type" => "Content-Type",
            other => other,
        };
        message.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    message.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
    message.push_str(&String::from_utf8_lossy(&reply.body));

    let mut part = String::from("Content-Type: application/http\r\n");
    part.push_str(&format!("Content-Length: {}\r\n", message.len()));
    part.push_str("content-transfer-encoding: binary\r\n");
    if let Some(content_id) = header_value(mime_headers, "content-id") {
        part.push_str(&format!("Content-ID: {content_id}\r\n"));
    }
    part.push_str("\r\n");
    part.push_str(&message);
    part.push_str("\r\n");
    part
}

/// Returns the `boundary` parameter of a `multipart/mixed` media type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut parameters = content_type.split(';');
    let media_type = parameters.next()?.trim();
    if !media_type.eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    parameters
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|boundary| !boundary.is_empty())
}

/// Splits a multipart body into its parts. The line ending before each
/// delimiter belongs to the delimiter, and the preamble and epilogue are
/// ignored.
fn split_multipart<'a>(body: &'a str, boundary: &str) -> Result<Vec<&'a str>, String> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut part_start = None;
    let mut position = 0;
    for line in body.split_inclusive('\n') {
        let text = line.trim_end();
        if text == open || text == close {
            if let Some(start) = part_start {
                parts.push(strip_line_ending(&body[start..position]));
            }
            if text == close {
                return Ok(parts);
            }
            part_start = Some(position + line.len());
        }
        position += line.len();
    }
    Err(format!(
        "the multipart body has no closing delimiter '{close}'"
    ))
}

fn strip_line_ending(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

/// Splits text at the first empty line into header fields, with lowercase
/// names, and the rest.
fn split_head(text: &str) -> (Vec<(String, String)>, &str) {
    let mut headers = Vec::new();
    let mut position = 0;
    for line in text.split_inclusive('\n') {
        position += line.len();
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return (headers, &text[position..]);
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, "")
}

fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
}

/// Creates a boundary in the style of SAP Gateway: 32 uppercase hex digits
/// followed by `0` for a batch or `1` for a changeset.
fn new_boundary(suffix: char) -> String {
    format!("{}{suffix}", Uuid::new_v4().simple()).to_ascii_uppercase()
}

fn invalid_batch(message: &str) -> Reply {
    xml_error(StatusCode::BAD_REQUEST, "/IWBEP/CM_MGW_RT/010", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_multipart_with_lf_and_crlf() {
        let crlf = "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\n";
        assert_eq!(
            split_multipart(crlf, "b"),
            Ok(vec!["A: 1\r\n\r\none", "\r\ntwo"])
        );
        let lf = crlf.replace("\r\n", "\n");
        assert_eq!(split_multipart(&lf, "b"), Ok(vec!["A: 1\n\none", "\ntwo"]));
        assert!(split_multipart("--b\r\nx\r\n", "b").is_err());
    }

    #[test]
    fn resolve_target_forms() {
        assert_eq!(
            resolve_target("Items?$top=1"),
            Some(("Items", Some("$top=1")))
        );
        assert_eq!(
            resolve_target("/sap/opu/odata/sap/ZGW_TEST_SRV/Items('1')"),
            Some(("Items('1')", None))
        );
        assert_eq!(
            resolve_target("http://127.0.0.1:9/sap/opu/odata/sap/ZGW_TEST_SRV/Items"),
            Some(("Items", None))
        );
        assert_eq!(resolve_target("/other/Items"), None);
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            multipart_boundary("multipart/mixed; boundary=\"batch_1\""),
            Some("batch_1".to_owned())
        );
        assert_eq!(multipart_boundary("application/json"), None);
    }
}
