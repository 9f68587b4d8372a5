//! Rewriting of a backend's `$batch` response before it goes to the client:
//! the links in the inner responses change from the backend's URL to the
//! gateway's.

use super::edit::{self, Edits, MessageEditor};
use super::error::{BatchError, quote};
use super::header;
use super::message::HttpMessage;
use super::multipart::{self, Part};
use crate::links::{self, BodyRewriter, LinkMap};

/// Rewrites the links in a `$batch` response body from the backend.
///
/// In every inner response, changesets included, the `Location`,
/// `Content-Location` and `OData-EntityId` values go through [`LinkMap::rewrite_location`] with
/// `request_url`, the backend URL of the `$batch` request, and the body goes
/// through the [`links::body_rewriter`] for its `Content-Type`. A body with
/// a `Content-Encoding` other than `identity` stays as it is. The
/// `Content-Length` of a changed body is corrected, both in the inner
/// response and in the part headers. Every other byte is unchanged.
///
/// # Errors
///
/// Returns an error when the body does not parse with `boundary` (no close
/// delimiter, a truncated part) or an inner message does not start with a
/// status line. The caller then returns the backend's body unchanged.
pub fn rewrite_response(
    body: &[u8],
    boundary: &str,
    map: &LinkMap,
    request_url: &str,
) -> Result<Vec<u8>, BatchError> {
    rewrite_response_with(body, boundary, &MapLinks { map, request_url })
}

/// The link rewriting that a response rewrite applies.
pub(crate) trait LinkRewriting {
    fn rewrite_location(&self, value: &str) -> Option<String>;
    fn body_rewriter(&self, content_type: &str) -> Option<Box<dyn BodyRewriter>>;
}

struct MapLinks<'a> {
    map: &'a LinkMap,
    request_url: &'a str,
}

impl LinkRewriting for MapLinks<'_> {
    fn rewrite_location(&self, value: &str) -> Option<String> {
        self.map.rewrite_location(value, self.request_url)
    }

    fn body_rewriter(&self, content_type: &str) -> Option<Box<dyn BodyRewriter>> {
        links::body_rewriter(content_type, self.map)
    }
}

/// Rewrites a batch response with any [`LinkRewriting`].
pub(crate) fn rewrite_response_with(
    body: &[u8],
    boundary: &str,
    links: &impl LinkRewriting,
) -> Result<Vec<u8>, BatchError> {
    let batch = multipart::parse(body, boundary)?;
    edit::rewrite(body, &batch, &LinkEditor { links })
}

struct LinkEditor<'a, L> {
    links: &'a L,
}

impl<L: LinkRewriting> MessageEditor for LinkEditor<'_, L> {
    fn edit(
        &self,
        body: &[u8],
        part: &Part,
        message: &HttpMessage,
        edits: &mut Edits,
    ) -> Result<(), BatchError> {
        let status_line = body.get(message.start_line.clone()).unwrap_or_default();
        if !is_status_line(status_line) {
            return Err(BatchError::InvalidPart {
                part: part.number.clone(),
                offset: message.start_line.start,
                problem: format!(
                    "the HTTP message starts with '{}', which is not a status line such as \
                     'HTTP/1.1 200 OK'",
                    quote(status_line)
                ),
            });
        }

        self.rewrite_locations(body, message, edits);
        self.rewrite_body(body, message, edits);
        Ok(())
    }
}

impl<L: LinkRewriting> LinkEditor<'_, L> {
    fn rewrite_locations(&self, body: &[u8], message: &HttpMessage, edits: &mut Edits) {
        let location_headers = message.headers.iter().filter(|header| {
            header.is_named(body, "location")
                || header.is_named(body, "content-location")
                || header.is_named(body, "odata-entityid")
        });
        for header in location_headers {
            let Ok(value) = std::str::from_utf8(header.value(body)) else {
                continue;
            };
            if let Some(rewritten) = self.links.rewrite_location(value)
                && rewritten != value
            {
                edits.replace(header.value.clone(), rewritten.into_bytes());
            }
        }
    }

    fn rewrite_body(&self, body: &[u8], message: &HttpMessage, edits: &mut Edits) {
        // Links inside compressed bytes cannot be rewritten.
        let encoding = header::first_value(&message.headers, body, "content-encoding");
        if encoding.is_some_and(|coding| !coding.eq_ignore_ascii_case("identity")) {
            return;
        }
        let Some(content_type) = header::first_value(&message.headers, body, "content-type") else {
            return;
        };
        let Some(mut rewriter) = self.links.body_rewriter(content_type) else {
            return;
        };

        let original = body.get(message.body.clone()).unwrap_or_default();
        let mut rewritten = Vec::with_capacity(original.len());
        rewriter.write(original, &mut rewritten);
        rewriter.finish(&mut rewritten);
        if rewritten == original {
            return;
        }

        let mark = edits.mark();
        edits.replace(message.body.clone(), rewritten);
        let change = edits.change_since(mark);
        edit::correct_content_length(body, &message.headers, change, &message.body, edits);
    }
}

/// Returns whether `line` is a status line `HTTP/x.y SP 3DIGIT [SP reason]`.
/// The reason phrase may be missing, as in `HTTP/1.1 200`.
fn is_status_line(line: &[u8]) -> bool {
    let Some(after_version) = line.strip_prefix(b"HTTP/") else {
        return false;
    };
    let Some(space) = after_version.iter().position(|&byte| byte == b' ') else {
        return false;
    };
    let status = &after_version[space + 1..];
    let code_is_digits = status
        .get(..3)
        .is_some_and(|code| code.iter().all(u8::is_ascii_digit));
    code_is_digits && matches!(status.get(3), None | Some(b' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::multipart::{Multipart, PartContent};
    use crate::batch::test_support::{to_crlf, to_lf};

    const BACKEND: &str = "https://s4.example.com/sap/opu/odata/sap/API_X/";
    const GATEWAY: &str = "https://gw.example.com/odata/S4/sap/opu/odata/sap/API_X/";
    const REQUEST_URL: &str = "https://s4.example.com/sap/opu/odata/sap/API_X/$batch";

    /// Rewrites `https://s4.example.com/` to the gateway in `Location`
    /// values and in JSON bodies, so that the response rewrite can be
    /// tested on its own.
    struct PrefixLinks;

    struct PrefixBody {
        buffer: Vec<u8>,
    }

    fn replace_prefix(text: &str) -> String {
        text.replace(
            "https://s4.example.com/",
            "https://gw.example.com/odata/S4/",
        )
    }

    impl LinkRewriting for PrefixLinks {
        fn rewrite_location(&self, value: &str) -> Option<String> {
            value
                .starts_with("https://s4.example.com/")
                .then(|| replace_prefix(value))
        }

        fn body_rewriter(&self, content_type: &str) -> Option<Box<dyn BodyRewriter>> {
            content_type
                .starts_with("application/json")
                .then(|| Box::new(PrefixBody { buffer: Vec::new() }) as Box<dyn BodyRewriter>)
        }
    }

    impl BodyRewriter for PrefixBody {
        fn write(&mut self, input: &[u8], _out: &mut Vec<u8>) {
            self.buffer.extend_from_slice(input);
        }

        fn finish(&mut self, out: &mut Vec<u8>) {
            let text = String::from_utf8_lossy(&self.buffer);
            out.extend_from_slice(replace_prefix(&text).as_bytes());
        }
    }

    /// Returns a response whose links start with `base` and whose
    /// `Content-Length` values are all exact.
    fn response(base: &str, line_end: &str) -> String {
        let le = line_end;
        let json =
            format!("{{\"d\":{{\"__metadata\":{{\"uri\":\"{base}Items('1')\"}},\"ID\":\"1\"}}}}");
        let created = format!(
            "HTTP/1.1 201 Created{le}Location: {base}Items('1'){le}\
             Content-Type: application/json{le}Content-Length: {}{le}{le}{json}",
            json.len()
        );
        let created_part = format!(
            "Content-Type: application/http{le}Content-Length: {}{le}\
             Content-Transfer-Encoding: binary{le}Content-ID: 1{le}{le}{created}",
            created.len()
        );
        let no_content =
            format!("HTTP/1.1 204 No Content{le}content-location: {base}Items('2'){le}{le}");
        let changeset = format!(
            "--changeset_1{le}{created_part}{le}--changeset_1{le}\
             Content-Type: application/http{le}{le}{no_content}{le}--changeset_1--{le}"
        );
        let text =
            format!("HTTP/1.1 200 OK{le}Content-Type: text/plain{le}{le}{base} stays in text");
        format!(
            "--batch_1{le}Content-Type: multipart/mixed; boundary=changeset_1{le}\
             Content-Length: {}{le}{le}{changeset}{le}\
             --batch_1{le}Content-Type: application/http{le}{le}{text}{le}--batch_1--{le}",
            changeset.len()
        )
    }

    fn rewrite_with_prefix(body: &[u8], boundary: &str) -> Vec<u8> {
        match rewrite_response_with(body, boundary, &PrefixLinks) {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    fn assert_same_text(actual: &[u8], expected: &[u8]) {
        assert_eq!(
            String::from_utf8_lossy(actual),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn links_and_lengths_are_rewritten() {
        for line_end in ["\n", "\r\n"] {
            let input = response(BACKEND, line_end);
            let expected = response(GATEWAY, line_end).replace(
                &format!("{GATEWAY} stays in text"),
                &format!("{BACKEND} stays in text"),
            );
            let output = rewrite_with_prefix(input.as_bytes(), "batch_1");
            assert_same_text(&output, expected.as_bytes());
        }
    }

    #[test]
    fn unmatched_links_leave_body_unchanged() {
        let input = response("https://other.example.com/", "\r\n");
        let output = rewrite_with_prefix(input.as_bytes(), "batch_1");
        assert_eq!(output, input.as_bytes());
    }

    #[test]
    fn compressed_body_is_not_rewritten() {
        let input = format!(
            "--b\nContent-Type: application/http\n\nHTTP/1.1 200 OK\n\
             Content-Type: application/json\nContent-Encoding: gzip\n\n\"{BACKEND}\"\n--b--\n"
        );
        let output = rewrite_with_prefix(input.as_bytes(), "b");
        assert_eq!(output, input.as_bytes());
    }

    #[test]
    fn identity_encoded_body_is_rewritten() {
        let input = format!(
            "--b\nContent-Type: application/http\n\nHTTP/1.1 200\n\
             Content-Type: application/json\nContent-Encoding: identity\n\n\"{BACKEND}\"\n--b--\n"
        );
        let output = rewrite_with_prefix(input.as_bytes(), "b");
        assert_same_text(&output, input.replace(BACKEND, GATEWAY).as_bytes());
    }

    #[test]
    fn request_line_in_response_is_error() {
        let input = b"--b\nContent-Type: application/http\n\nGET Items HTTP/1.1\n\n--b--\n";
        match rewrite_response_with(input, "b", &PrefixLinks) {
            Ok(_) => panic!("accepted a request in a response"),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.starts_with("part 1 is invalid at byte offset 36"),
                    "{message}"
                );
                assert!(message.contains("not a status line"), "{message}");
            }
        }
    }

    #[test]
    fn status_line_forms() {
        assert!(is_status_line(b"HTTP/1.1 200 OK"));
        assert!(is_status_line(b"HTTP/1.1 200"));
        assert!(is_status_line(b"HTTP/1.1 204 No response."));
        assert!(!is_status_line(b"HTTP/1.1 20"));
        assert!(!is_status_line(b"HTTP/1.1 2000"));
        assert!(!is_status_line(b"HTTP/1.1"));
        assert!(!is_status_line(b"GET / HTTP/1.1"));
    }

    // The tests below use the real link map of `crate::links`.

    fn link_map() -> LinkMap {
        match LinkMap::new("https://s4.example.com", "https://gw.example.com/odata/S4") {
            Some(map) => map,
            None => panic!("the test link map is invalid"),
        }
    }

    fn rewrite_with_map(body: &[u8], boundary: &str) -> Vec<u8> {
        match rewrite_response(body, boundary, &link_map(), REQUEST_URL) {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    /// Asserts that every `Content-Length` in the batch counts its body.
    fn assert_lengths_exact(body: &[u8], batch: &Multipart) {
        for part in &batch.parts {
            if let Some(length) = header::first_value(&part.headers, body, "content-length") {
                assert_eq!(length, part.body.len().to_string(), "{}", part.number);
            }
            match &part.content {
                PartContent::Changeset(changeset) => assert_lengths_exact(body, changeset),
                PartContent::Http(message) => {
                    if let Some(length) =
                        header::first_value(&message.headers, body, "content-length")
                    {
                        assert_eq!(length, message.body.len().to_string(), "{}", part.number);
                    }
                }
                PartContent::Other => {}
            }
        }
    }

    #[test]
    fn link_map_rewrites_response() {
        for line_end in ["\n", "\r\n"] {
            let input = response(BACKEND, line_end);
            let output = rewrite_with_map(input.as_bytes(), "batch_1");
            let text = String::from_utf8_lossy(&output).into_owned();

            assert!(
                text.contains(&format!("Location: {GATEWAY}Items('1')")),
                "{text}"
            );
            assert!(
                text.contains(&format!("content-location: {GATEWAY}Items('2')")),
                "{text}"
            );
            assert!(text.contains(&format!("\"{GATEWAY}Items('1')\"")), "{text}");
            assert!(!text.contains(&format!("\"{BACKEND}")), "{text}");

            let batch = match multipart::parse(&output, "batch_1") {
                Ok(batch) => batch,
                Err(error) => panic!("the rewritten body does not parse: {error}"),
            };
            assert_lengths_exact(&output, &batch);
        }
    }

    #[test]
    fn link_map_unmatched_is_unchanged() {
        let input = to_crlf(response("https://other.example.com/", "\n").as_bytes());
        assert_eq!(rewrite_with_map(&input, "batch_1"), input);
        let input = to_lf(&input);
        assert_eq!(rewrite_with_map(&input, "batch_1"), input);
    }
}
