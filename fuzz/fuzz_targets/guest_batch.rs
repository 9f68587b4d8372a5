//! Fuzzes the guest's `$batch` handling: `batch::boundary`,
//! `multipart::parse`, `rewrite_request` and `rewrite_response`.
//!
//! Input layout: the bytes up to the first LF are the batch's
//! `Content-Type` (UTF-8, one trailing CR removed), and the bytes after it
//! are the body. An input whose `Content-Type` has no usable boundary stops
//! after `boundary`.
//!
//! Invariants: `rewrite_request` is idempotent, so a rewritten request
//! rewrites to itself. `rewrite_response` with a map whose base path never
//! occurs in the body returns the body byte for byte when it succeeds.

#![no_main]

use btp_gateway_guest::batch::{self, ServiceRoot, multipart};
use btp_gateway_guest::links::LinkMap;
use libfuzzer_sys::fuzz_target;

/// The gateway serves the destination `S4`, whose URL is [`BACKEND`], under
/// `/odata/S4`, and the batch addresses the service `/sap/x/` there.
const GATEWAY_ORIGIN: &str = "https://gw.example.com";
const SERVICE_PATH: &str = "/odata/S4/sap/x/";
const BACKEND: &str = "https://s4.example.com";
const GATEWAY: &str = "https://gw.example.com/odata/S4";
/// The backend URL of the `$batch` request, which `Location` values are
/// resolved against.
const REQUEST_URL: &str = "https://s4.example.com/sap/x/$batch";

/// A backend base that matches no link unless the link contains
/// [`UNUSED_SEGMENT`]. The path matters: with an empty base path, every
/// absolute-path reference in an inner response body would match.
const UNUSED_BACKEND: &str = "https://no-such-host.invalid/no-such-base";
const UNUSED_SEGMENT: &[u8] = b"no-such-base";

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&byte| byte == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[][..]),
    };
    let content_type = content_type.strip_suffix(b"\r").unwrap_or(content_type);
    let Ok(content_type) = std::str::from_utf8(content_type) else {
        return;
    };
    let Some(boundary) = batch::boundary(content_type) else {
        return;
    };

    let _ = multipart::parse(body, &boundary);
    check_request_idempotent(body, &boundary);
    check_response(body, &boundary);
});

fn link_map(backend: &str) -> LinkMap {
    match LinkMap::new(backend, GATEWAY) {
        Some(map) => map,
        None => panic!("{backend} was rejected as backend base"),
    }
}

/// Rewrites the body as a request, then rewrites the output again, which
/// must succeed and change nothing.
fn check_request_idempotent(body: &[u8], boundary: &str) {
    let Some(service) = ServiceRoot::new(GATEWAY_ORIGIN, SERVICE_PATH) else {
        panic!("{GATEWAY_ORIGIN}{SERVICE_PATH} was rejected as service root");
    };
    let Ok(once) = batch::rewrite_request(body, boundary, &service) else {
        return;
    };
    match batch::rewrite_request(&once, boundary, &service) {
        Ok(twice) => assert!(
            twice == once,
            "rewriting the rewritten request changed it again:\n{}",
            String::from_utf8_lossy(&once)
        ),
        Err(error) => panic!(
            "rewriting the rewritten request failed: {error}\n{}",
            String::from_utf8_lossy(&once)
        ),
    }
}

/// Rewrites the body as a response with a map that matches links, which
/// must not panic, and with a map that matches none, which must change
/// nothing.
fn check_response(body: &[u8], boundary: &str) {
    let _ = batch::rewrite_response(body, boundary, &link_map(BACKEND), REQUEST_URL);

    if may_name_segment(body) {
        return;
    }
    let unused = link_map(UNUSED_BACKEND);
    if let Ok(output) = batch::rewrite_response(body, boundary, &unused, REQUEST_URL) {
        assert!(
            output == body,
            "a map that matches no link changed the response"
        );
    }
}

/// Returns whether a link decoded from `body` could contain
/// [`UNUSED_SEGMENT`]. Its bytes are letters and `-`, which JSON's simple
/// escapes and XML's predefined entities never produce, so only the raw
/// bytes, a JSON `\u` escape or an XML character reference (`&#`) can.
fn may_name_segment(body: &[u8]) -> bool {
    contains(body, UNUSED_SEGMENT) || contains(body, b"\\u") || contains(body, b"&#")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
