//! Fuzzes the guest's streaming link rewriters (`links::body_rewriter`) and
//! the single-link calls `LinkMap::rewrite` and `rewrite_location`.
//!
//! Input layout: the first byte selects the content type (even for
//! `application/json`, odd for `application/atom+xml`), the second byte is
//! the chunk size (0 counts as 1), and the rest is the body.
//!
//! Invariants: the output does not depend on how the body is split into
//! chunks. With a map whose base path never occurs in the body, the output
//! is the body byte for byte. A rewritten link starts with the gateway URL.

#![no_main]

use btp_gateway_guest::links::{self, LinkMap};
use libfuzzer_sys::fuzz_target;

/// A backend base that the seeds' links use, so that rewriting happens.
const BACKEND: &str = "https://s4.example.com/sap/x";
const GATEWAY: &str = "https://gw.example.com/odata/S4";
/// The request URL that `Location` values are resolved against.
const REQUEST_URL: &str = "https://s4.example.com/sap/x/Items";

/// A backend base that matches no link unless the decoded link contains
/// [`UNUSED_SEGMENT`]. The path matters: with an empty base path, every
/// absolute-path reference such as `/x` would match.
const UNUSED_BACKEND: &str = "https://no-such-host.invalid/no-such-base";
const UNUSED_SEGMENT: &[u8] = b"no-such-base";

fuzz_target!(|data: &[u8]| {
    let [selector, chunk_size, body @ ..] = data else {
        return;
    };
    let content_type = if selector % 2 == 0 {
        "application/json"
    } else {
        "application/atom+xml"
    };
    let chunk_size = usize::from(*chunk_size).max(1);

    let map = link_map(BACKEND);
    let whole = rewrite_body(content_type, &map, body, body.len().max(1));
    let chunked = rewrite_body(content_type, &map, body, chunk_size);
    assert!(
        whole == chunked,
        "{content_type}: output in chunks of {chunk_size} differs from the output in one chunk"
    );

    if !may_name_segment(body) {
        let unused = link_map(UNUSED_BACKEND);
        let output = rewrite_body(content_type, &unused, body, body.len().max(1));
        assert!(
            output == body,
            "{content_type}: a map that matches no link changed the body"
        );
    }

    if let Ok(text) = std::str::from_utf8(body) {
        check_single_link(&map, text);
    }
});

fn link_map(backend: &str) -> LinkMap {
    match LinkMap::new(backend, GATEWAY) {
        Some(map) => map,
        None => panic!("{backend} was rejected as backend base"),
    }
}

/// Writes `body` to a new rewriter in chunks of `chunk_size` bytes and
/// returns the output.
fn rewrite_body(content_type: &str, map: &LinkMap, body: &[u8], chunk_size: usize) -> Vec<u8> {
    let Some(mut rewriter) = links::body_rewriter(content_type, map) else {
        panic!("no rewriter for {content_type}");
    };
    let mut output = Vec::with_capacity(body.len());
    for chunk in body.chunks(chunk_size) {
        rewriter.write(chunk, &mut output);
    }
    rewriter.finish(&mut output);
    output
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

fn check_single_link(map: &LinkMap, text: &str) {
    if let Some(rewritten) = map.rewrite(text) {
        assert!(
            rewritten.starts_with(GATEWAY),
            "rewrite({text:?}) returned {rewritten:?}, outside the gateway URL"
        );
    }
    if let Some(rewritten) = map.rewrite_location(text, REQUEST_URL) {
        assert!(
            rewritten.starts_with(GATEWAY),
            "rewrite_location({text:?}) returned {rewritten:?}, outside the gateway URL"
        );
    }
}
