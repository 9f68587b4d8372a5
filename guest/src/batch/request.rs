//! Rewriting of a client's `$batch` request before it goes to the backend.

use std::ops::Range;

use super::edit::{self, Edits, MessageEditor};
use super::error::{BatchError, quote};
use super::header::is_token_byte;
use super::message::HttpMessage;
use super::multipart::{self, Part};
use super::service_root::ServiceRoot;

/// Rewrites a `$batch` request body from a client so that the backend can
/// execute it.
///
/// The target of every inner request, in changesets too, that is an
/// absolute URL or absolute path under `service` becomes relative to the
/// service root. Relative targets stay as they are. Every other byte is
/// unchanged, except the `Content-Length` of a part whose request line
/// changed length.
///
/// # Errors
///
/// Returns an error when the body does not parse with `boundary` or a
/// target is outside the service root. Request parsing is stricter than
/// response parsing because anything the gateway misreads could reach the
/// backend unchecked. So a line that only looks like a delimiter line, a
/// part that is neither `application/http` nor a changeset, and an inner
/// message without a request line are errors too.
pub fn rewrite_request(
    body: &[u8],
    boundary: &str,
    service: &ServiceRoot,
) -> Result<Vec<u8>, BatchError> {
    let batch = multipart::parse_strict(body, boundary)?;
    edit::rewrite(body, &batch, &TargetEditor { service })
}

struct TargetEditor<'a> {
    service: &'a ServiceRoot,
}

impl MessageEditor for TargetEditor<'_> {
    fn edit(
        &self,
        body: &[u8],
        part: &Part,
        message: &HttpMessage,
        edits: &mut Edits,
    ) -> Result<(), BatchError> {
        let line_start = message.start_line.start;
        let line = body.get(message.start_line.clone()).unwrap_or_default();
        let invalid = |offset: usize, problem: String| BatchError::InvalidPart {
            part: part.number.clone(),
            offset,
            problem,
        };

        let Some(target_in_line) = request_target(line) else {
            return Err(invalid(
                line_start,
                format!(
                    "the HTTP message starts with '{}', which is not a request line such as \
                     'GET Items HTTP/1.1'",
                    quote(line)
                ),
            ));
        };
        let target_range = line_start + target_in_line.start..line_start + target_in_line.end;
        let target_bytes = body.get(target_range.clone()).unwrap_or_default();
        let Ok(target) = std::str::from_utf8(target_bytes) else {
            return Err(invalid(
                target_range.start,
                format!(
                    "the request target '{}' is not valid UTF-8",
                    quote(target_bytes)
                ),
            ));
        };

        match self.service.relative_target(target) {
            Ok(None) => {}
            Ok(Some(relative)) => edits.replace(target_range, relative.into_bytes()),
            Err(_) => {
                return Err(BatchError::TargetOutsideService {
                    part: part.number.clone(),
                    offset: target_range.start,
                    target: target.to_owned(),
                    service_root: self.service.to_string(),
                });
            }
        }
        Ok(())
    }

    fn check_other_part(&self, body: &[u8], part: &Part) -> Result<(), BatchError> {
        let content_type = part
            .headers
            .iter()
            .find(|header| header.is_named(body, "content-type"))
            .map_or_else(
                || "missing".to_owned(),
                |header| format!("'{}'", quote(header.value(body))),
            );
        Err(BatchError::InvalidPart {
            part: part.number.clone(),
            offset: part.range.start,
            problem: format!(
                "its Content-Type is {content_type}, but every part of a $batch request must be \
                 application/http or a multipart/mixed changeset"
            ),
        })
    }
}

/// Returns where the target is in a request line `METHOD SP target SP
/// HTTP-version`, or `None` when `line` is not a request line.
fn request_target(line: &[u8]) -> Option<Range<usize>> {
    let first_space = line.iter().position(|&byte| byte == b' ')?;
    let last_space = line.iter().rposition(|&byte| byte == b' ')?;
    let method = &line[..first_space];
    let version = &line[last_space + 1..];
    let target = first_space + 1..last_space;

    let valid = !method.is_empty()
        && method.iter().all(is_token_byte)
        && version.starts_with(b"HTTP/")
        && !target.is_empty()
        && !line[target.clone()].iter().any(u8::is_ascii_whitespace);
    valid.then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::PartNumber;
    use crate::batch::test_support::{to_crlf, to_lf};

    const ROOT: &str = "/odata/S4/sap/opu/odata/sap/API_X/";
    const GATEWAY: &str = "https://gw.example.com";

    /// An OData V2 batch in the form SAPUI5 sends. `{get}`, `{post}` and
    /// `{delete}` stand for the targets of the requests.
    const V2_REQUEST: &str = "\
--batch_7d1a-40e2
Content-Type: application/http
Content-Transfer-Encoding: binary

GET {get} HTTP/1.1
sap-cancel-on-close: true
Accept: application/json


--batch_7d1a-40e2
Content-Type: multipart/mixed; boundary=changeset_5b3c-9e1f

--changeset_5b3c-9e1f
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST {post} HTTP/1.1
Content-Type: application/json
Content-Length: 19

{\"Name\":\"New item\"}
--changeset_5b3c-9e1f
content-type: application/http
content-transfer-encoding: binary
content-id: 2

PATCH $1 HTTP/1.1
Content-Type: application/json

{\"Name\":\"Renamed\"}
--changeset_5b3c-9e1f
CONTENT-TYPE: APPLICATION/HTTP
CONTENT-TRANSFER-ENCODING: BINARY

DELETE {delete} HTTP/1.1


--changeset_5b3c-9e1f--

--batch_7d1a-40e2--
";

    /// An OData V4 batch with a `Content-ID` reference inside a changeset.
    const V4_REQUEST: &str = "\
--batch_36522ad7-fc75-4b56-8c71-56071383e77b
Content-Type: application/http
Content-Transfer-Encoding: binary

GET {get} HTTP/1.1
Accept: application/json;odata.metadata=minimal
OData-Version: 4.0


--batch_36522ad7-fc75-4b56-8c71-56071383e77b
Content-Type: multipart/mixed;boundary=changeset_77162fcd-b8da-41ac-a9f8-9357efbbd
Content-Length: 9999

--changeset_77162fcd-b8da-41ac-a9f8-9357efbbd
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST {post} HTTP/1.1
OData-Version: 4.0
Content-Type: application/json

{\"Name\":\"New item\"}
--changeset_77162fcd-b8da-41ac-a9f8-9357efbbd
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

PATCH $1/to_Sub('A') HTTP/1.1
OData-Version: 4.0
Content-Type: application/json

{\"Text\":\"Changed\"}
--changeset_77162fcd-b8da-41ac-a9f8-9357efbbd
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 3

DELETE {delete} HTTP/1.1


--changeset_77162fcd-b8da-41ac-a9f8-9357efbbd--
--batch_36522ad7-fc75-4b56-8c71-56071383e77b--
";

    fn service() -> ServiceRoot {
        match ServiceRoot::new(GATEWAY, ROOT) {
            Some(service) => service,
            None => panic!("the test service root is invalid"),
        }
    }

    fn fill(template: &str, get: &str, post: &str, delete: &str) -> String {
        template
            .replace("{get}", get)
            .replace("{post}", post)
            .replace("{delete}", delete)
    }

    fn rewrite_ok(body: &[u8], boundary: &str) -> Vec<u8> {
        match rewrite_request(body, boundary, &service()) {
            Ok(output) => output,
            Err(error) => panic!("{error}"),
        }
    }

    fn rewrite_error(body: &[u8], boundary: &str) -> BatchError {
        match rewrite_request(body, boundary, &service()) {
            Ok(output) => panic!("accepted: {}", String::from_utf8_lossy(&output)),
            Err(error) => error,
        }
    }

    fn assert_same_text(actual: &[u8], expected: &[u8]) {
        assert_eq!(
            String::from_utf8_lossy(actual),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn v2_request_targets_become_relative() {
        let input = fill(
            V2_REQUEST,
            &format!("{GATEWAY}{ROOT}Items?$top=2&$skip=0"),
            &format!("{ROOT}Items"),
            &format!("{GATEWAY}{ROOT}Items('3')"),
        );
        let expected = fill(V2_REQUEST, "Items?$top=2&$skip=0", "Items", "Items('3')");
        for convert in [to_lf as fn(&[u8]) -> Vec<u8>, to_crlf] {
            let output = rewrite_ok(&convert(input.as_bytes()), "batch_7d1a-40e2");
            assert_same_text(&output, &convert(expected.as_bytes()));
        }
    }

    #[test]
    fn v4_request_targets_become_relative() {
        let input = fill(
            V4_REQUEST,
            &format!("{ROOT}People?$filter=Name%20eq%20'a'"),
            &format!("https://GW.example.com:443{ROOT}People"),
            "People('x')",
        );
        let expected_template = fill(
            V4_REQUEST,
            "People?$filter=Name%20eq%20'a'",
            "People",
            "People('x')",
        );
        // The changeset part's Content-Length shrinks by the removed bytes.
        let removed = format!("https://GW.example.com:443{ROOT}").len();
        let expected = expected_template.replace(
            "Content-Length: 9999",
            &format!("Content-Length: {}", 9999 - removed),
        );
        for convert in [to_lf as fn(&[u8]) -> Vec<u8>, to_crlf] {
            let output = rewrite_ok(
                &convert(input.as_bytes()),
                "batch_36522ad7-fc75-4b56-8c71-56071383e77b",
            );
            assert_same_text(&output, &convert(expected.as_bytes()));
        }
    }

    #[test]
    fn relative_request_is_unchanged() {
        let input = fill(V2_REQUEST, "Items", "Items", "$2");
        for body in [to_lf(input.as_bytes()), to_crlf(input.as_bytes())] {
            assert_eq!(rewrite_ok(&body, "batch_7d1a-40e2"), body);
        }
    }

    /// Returns a one-part batch whose part has an exact `Content-Length`.
    fn batch_with_part_length(target: &str, line_end: &str) -> String {
        let message =
            format!("GET {target} HTTP/1.1{line_end}Accept: application/json{line_end}{line_end}");
        format!(
            "--b{line_end}Content-Type: application/http{line_end}Content-Length: {}{line_end}\
             {line_end}{message}{line_end}--b--{line_end}",
            message.len()
        )
    }

    #[test]
    fn part_content_length_follows_request_line() {
        for line_end in ["\n", "\r\n"] {
            let input = batch_with_part_length(&format!("{GATEWAY}{ROOT}Items('1')"), line_end);
            let expected = batch_with_part_length("Items('1')", line_end);
            assert_same_text(&rewrite_ok(input.as_bytes(), "b"), expected.as_bytes());
        }
    }

    #[test]
    fn mixed_line_ends_stay() {
        let input = format!(
            "--b\r\nContent-Type: application/http\n\r\nGET {ROOT}Items HTTP/1.1\r\n\n\r\n--b--\n"
        );
        let expected =
            "--b\r\nContent-Type: application/http\n\r\nGET Items HTTP/1.1\r\n\n\r\n--b--\n";
        assert_same_text(&rewrite_ok(input.as_bytes(), "b"), expected.as_bytes());
    }

    #[test]
    fn target_outside_service_is_error() {
        let input = fill(
            V2_REQUEST,
            "Items",
            "Items",
            "https://gw.example.com/odata/S5/Items('3')",
        );
        let error = rewrite_error(input.as_bytes(), "batch_7d1a-40e2");
        let offset = input
            .find("https://gw.example.com/odata/S5")
            .unwrap_or_default();
        assert_eq!(
            error,
            BatchError::TargetOutsideService {
                part: PartNumber::default().child(2).child(3),
                offset,
                target: "https://gw.example.com/odata/S5/Items('3')".to_owned(),
                service_root: format!("{GATEWAY}{ROOT}"),
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("'https://gw.example.com/odata/S5/Items('3')'"),
            "{message}"
        );
        assert!(
            message.contains(&format!("service root {GATEWAY}{ROOT}")),
            "{message}"
        );
        assert!(
            message.contains("part 3 of the changeset in part 2"),
            "{message}"
        );
    }

    #[test]
    fn backend_and_climbing_targets_are_errors() {
        for target in [
            "/sap/opu/odata/sap/API_X/Items",
            "https://s4.example.com/Items",
            "../API_Y/Items",
        ] {
            let input = fill(V2_REQUEST, target, "Items", "Items");
            let error = rewrite_error(input.as_bytes(), "batch_7d1a-40e2");
            assert!(
                matches!(error, BatchError::TargetOutsideService { .. }),
                "{target}: {error}"
            );
        }
    }

    #[test]
    fn unknown_boundary_is_error() {
        let input = fill(V2_REQUEST, "Items", "Items", "Items");
        let error = rewrite_error(input.as_bytes(), "batch_other");
        assert!(
            matches!(error, BatchError::BoundaryNotFound { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn missing_close_delimiter_is_error() {
        let input = fill(V2_REQUEST, "Items", "Items", "Items");
        let truncated = input.replace("--batch_7d1a-40e2--\n", "");
        let error = rewrite_error(truncated.as_bytes(), "batch_7d1a-40e2");
        assert!(
            matches!(error, BatchError::MissingCloseDelimiter { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains("part 2, which starts at byte offset"),
            "{error}"
        );
    }

    #[test]
    fn status_line_in_request_is_error() {
        let input = "--b\nContent-Type: application/http\n\nHTTP/1.1 200 OK\n\n--b--\n";
        let error = rewrite_error(input.as_bytes(), "b");
        let message = error.to_string();
        assert!(
            message.starts_with("part 1 is invalid at byte offset 36"),
            "{message}"
        );
        assert!(
            message.contains("'HTTP/1.1 200 OK', which is not a request line"),
            "{message}"
        );
    }

    #[test]
    fn non_utf8_target_is_error() {
        let input = b"--b\nContent-Type: application/http\n\nGET It\xffems HTTP/1.1\n\n--b--\n";
        let error = rewrite_error(input, "b");
        assert!(error.to_string().contains("is not valid UTF-8"), "{error}");
    }

    #[test]
    fn other_part_types_are_errors() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"--b\nContent-Type: text/plain\n\nGET /x HTTP/1.1\n--b--\n",
                "is 'text/plain'",
            ),
            (
                b"--b\nContent-ID: 1\n\nGET /x HTTP/1.1\n--b--\n",
                "is missing",
            ),
            (
                b"--b\nContent-Type: application/http, text/plain\n\nGET /x HTTP/1.1\n--b--\n",
                "is 'application/http, text/plain'",
            ),
        ];
        for (input, expected) in cases {
            let message = rewrite_error(input, "b").to_string();
            assert!(
                message.starts_with("part 1 is invalid at byte offset 4"),
                "{message}"
            );
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn near_delimiter_in_request_is_error() {
        // The second delimiter line ends with a stray CR, so the GET to
        // another host would hide in the body of the first part.
        let input = "--b\r\nContent-Type: application/http\r\n\r\nPOST Items HTTP/1.1\r\n\r\n\
             --b\r\r\nContent-Type: application/http\r\n\r\nGET https://s4.example.com/x HTTP/1.1\r\n\
             \r\n--b--\r\n";
        let error = rewrite_error(input.as_bytes(), "b");
        assert!(
            matches!(error, BatchError::AmbiguousDelimiter { offset: 62, .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("not a valid delimiter line"),
            "{error}"
        );
    }

    #[test]
    fn request_target_finds_target() {
        assert_eq!(request_target(b"GET Items HTTP/1.1"), Some(4..9));
        assert_eq!(request_target(b"GET Items"), None);
        assert_eq!(request_target(b"GET  HTTP/1.1"), None);
        assert_eq!(request_target(b"GET a b HTTP/1.1"), None);
        assert_eq!(request_target(b"G(T Items HTTP/1.1"), None);
    }
}
