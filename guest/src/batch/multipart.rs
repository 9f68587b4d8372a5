//! A `multipart/mixed` parser that records offsets instead of copying.
//!
//! RFC 2046 section 5.1.1 defines the syntax. A delimiter line is `--` and
//! the boundary at the start of a line, followed by optional transport
//! padding (spaces and tabs). The close delimiter has `--` after the
//! boundary. The line end before a delimiter line belongs to the delimiter,
//! not to the part before it. Line ends may be CRLF or bare LF.
//!
//! Every range is an offset into the whole body, so that a rewrite can copy
//! the bytes it leaves alone and an error can name the byte offset.

use std::ops::Range;

use super::content_type::{self, has_media_type};
use super::error::{BatchError, PartNumber};
use super::header::{self, Header};
use super::lines::{Line, Lines};
use super::message::{self, HttpMessage};

/// A parsed `multipart/mixed` body: a batch or one of its changesets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub boundary: String,
    /// The bytes before the first delimiter line, without the line end that
    /// belongs to the delimiter.
    pub preamble: Range<usize>,
    pub parts: Vec<Part>,
    /// The bytes after the close delimiter and its transport padding.
    pub epilogue: Range<usize>,
}

/// One body part between two delimiter lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: PartNumber,
    /// The whole part: header section, empty line and body.
    pub range: Range<usize>,
    pub headers: Vec<Header>,
    /// The part body after the header section's empty line.
    pub body: Range<usize>,
    pub content: PartContent,
}

/// The content of a part, chosen by its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartContent {
    /// A `multipart/mixed` changeset.
    Changeset(Multipart),
    /// An `application/http` request or response.
    Http(HttpMessage),
    /// Any other content, which a rewrite copies unchanged.
    Other,
}

impl Multipart {
    /// Returns the HTTP messages of all parts, changesets included, in
    /// body order.
    pub fn messages(&self) -> Vec<&HttpMessage> {
        let mut messages = Vec::new();
        for part in &self.parts {
            match &part.content {
                PartContent::Changeset(changeset) => messages.extend(changeset.messages()),
                PartContent::Http(message) => messages.push(message),
                PartContent::Other => {}
            }
        }
        messages
    }

    /// Returns the changesets among the parts.
    pub fn changesets(&self) -> Vec<&Multipart> {
        self.parts
            .iter()
            .filter_map(|part| match &part.content {
                PartContent::Changeset(changeset) => Some(changeset),
                _ => None,
            })
            .collect()
    }
}

/// Parses a batch body whose `Content-Type` has this boundary.
pub fn parse(body: &[u8], boundary: &str) -> Result<Multipart, BatchError> {
    let parser = Parser {
        body,
        strict: false,
    };
    parser.parse_range(0..body.len(), boundary, &PartNumber::default())
}

/// Parses a batch body like [`parse`], and also rejects a line that starts
/// with `--` and the boundary but is not a delimiter line, such as a
/// delimiter followed by a stray CR. A server with a laxer parser could read
/// such a line as a delimiter and find a part that the gateway never saw.
pub(crate) fn parse_strict(body: &[u8], boundary: &str) -> Result<Multipart, BatchError> {
    let parser = Parser { body, strict: true };
    parser.parse_range(0..body.len(), boundary, &PartNumber::default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimiter {
    Open,
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Parser<'a> {
    body: &'a [u8],
    /// Whether lines that only look like delimiters are errors.
    strict: bool,
}

impl Parser<'_> {
    /// Parses the multipart body in `range`. `within` is the part that
    /// contains it, or the empty position for the batch itself.
    fn parse_range(
        self,
        range: Range<usize>,
        boundary: &str,
        within: &PartNumber,
    ) -> Result<Multipart, BatchError> {
        let mut lines = Lines::new(self.body, range.clone());

        let mut preamble_end = range.start;
        let (mut delimiter, mut delimiter_line) = loop {
            let Some(line) = lines.next() else {
                return Err(BatchError::BoundaryNotFound {
                    within: within.clone(),
                    boundary: boundary.to_owned(),
                });
            };
            if let Some(delimiter) = self.delimiter(&line, boundary, within)? {
                break (delimiter, line);
            }
            preamble_end = line.content.end;
        };

        let mut parts = Vec::new();
        while delimiter == Delimiter::Open {
            let number = within.child(parts.len() + 1);
            let start = delimiter_line.end;

            // The part ends before the line end of its last line, which
            // belongs to the next delimiter.
            let mut end = start;
            let next = loop {
                let Some(line) = lines.next() else {
                    return Err(BatchError::MissingCloseDelimiter {
                        within: within.clone(),
                        boundary: boundary.to_owned(),
                        end: range.end,
                        open_part: Some((number, start)),
                    });
                };
                if let Some(delimiter) = self.delimiter(&line, boundary, within)? {
                    break (delimiter, line);
                }
                end = line.content.end;
            };

            parts.push(self.parse_part(start..end, number, within)?);
            (delimiter, delimiter_line) = next;
        }

        for line in lines {
            if self.delimiter(&line, boundary, within)?.is_some() {
                return Err(BatchError::DelimiterAfterClose {
                    within: within.clone(),
                    boundary: boundary.to_owned(),
                    offset: line.content.start,
                });
            }
        }

        Ok(Multipart {
            boundary: boundary.to_owned(),
            preamble: range.start..preamble_end,
            parts,
            epilogue: delimiter_line.content.end..range.end,
        })
    }

    /// Returns which delimiter `line` is, if it is one. In strict mode, a
    /// line that starts like a delimiter without being one is an error.
    fn delimiter(
        self,
        line: &Line,
        boundary: &str,
        within: &PartNumber,
    ) -> Result<Option<Delimiter>, BatchError> {
        let content = self.body.get(line.content.clone()).unwrap_or_default();
        let Some(after_boundary) = content
            .strip_prefix(b"--")
            .and_then(|rest| rest.strip_prefix(boundary.as_bytes()))
        else {
            return Ok(None);
        };

        let (delimiter, padding) = match after_boundary.strip_prefix(b"--") {
            Some(padding) => (Delimiter::Close, padding),
            None => (Delimiter::Open, after_boundary),
        };
        if padding.iter().all(|byte| matches!(byte, b' ' | b'\t')) {
            return Ok(Some(delimiter));
        }
        if self.strict {
            return Err(BatchError::AmbiguousDelimiter {
                within: within.clone(),
                boundary: boundary.to_owned(),
                offset: line.content.start,
            });
        }
        Ok(None)
    }

    fn parse_part(
        self,
        range: Range<usize>,
        number: PartNumber,
        within: &PartNumber,
    ) -> Result<Part, BatchError> {
        let invalid = |offset: usize, problem: String| BatchError::InvalidPart {
            part: number.clone(),
            offset,
            problem,
        };

        let section = header::parse_section(self.body, range.clone())
            .map_err(|error| invalid(error.offset, error.problem))?;
        let content_range = section.content_start..range.end;

        // Two Content-Type fields could make the gateway and the server
        // disagree about what the part contains.
        let content_types = section
            .headers
            .iter()
            .filter(|header| header.is_named(self.body, "content-type"))
            .count();
        if content_types > 1 {
            return Err(invalid(
                range.start,
                format!("it has {content_types} Content-Type header fields"),
            ));
        }

        let content = match header::first_value(&section.headers, self.body, "content-type") {
            Some(value) if has_media_type(value, "multipart/mixed") => PartContent::Changeset(
                self.parse_changeset(content_range.clone(), value, &number, within)?,
            ),
            Some(value) if has_media_type(value, "application/http") => PartContent::Http(
                message::parse(self.body, content_range.clone())
                    .map_err(|error| invalid(error.offset, error.problem))?,
            ),
            _ => PartContent::Other,
        };

        Ok(Part {
            number,
            range,
            headers: section.headers,
            body: content_range,
            content,
        })
    }

    /// Parses a changeset. OData allows changesets only at the top level of
    /// a batch, so a changeset inside a changeset is an error.
    fn parse_changeset(
        self,
        range: Range<usize>,
        content_type: &str,
        number: &PartNumber,
        within: &PartNumber,
    ) -> Result<Multipart, BatchError> {
        let invalid = |problem: &str| BatchError::InvalidPart {
            part: number.clone(),
            offset: range.start,
            problem: problem.to_owned(),
        };

        if !within.numbers().is_empty() {
            return Err(invalid(
                "it is a multipart/mixed part inside a changeset, which OData does not allow",
            ));
        }
        let Some(boundary) = content_type::boundary(content_type) else {
            return Err(invalid(
                "its Content-Type is multipart/mixed without a boundary parameter",
            ));
        };
        self.parse_range(range.clone(), &boundary, number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_support::{to_crlf, to_lf};

    const V2_RESPONSE: &str = "\
--batch_1
Content-Type: multipart/mixed; boundary=changeset_1

--changeset_1
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 201 Created
Location: https://s4.example.com/sap/opu/odata/sap/API_X/Items('1')
Content-Type: application/json
Content-Length: 13

{\"d\":{\"a\":1}}
--changeset_1
Content-Type: application/http

HTTP/1.1 204 No Content


--changeset_1--

--batch_1
content-type: APPLICATION/HTTP

HTTP/1.1 200 OK
Content-Type: text/plain

Frederic Fall
--batch_1--
";

    fn parse_ok(body: &[u8], boundary: &str) -> Multipart {
        match parse(body, boundary) {
            Ok(multipart) => multipart,
            Err(error) => panic!("{error}"),
        }
    }

    fn parse_error(body: &[u8], boundary: &str) -> BatchError {
        match parse(body, boundary) {
            Ok(multipart) => panic!("parsed an invalid body: {multipart:?}"),
            Err(error) => error,
        }
    }

    fn text(body: &[u8], range: &Range<usize>) -> String {
        String::from_utf8_lossy(&body[range.clone()]).into_owned()
    }

    #[test]
    fn parse_response_with_changeset() {
        for body in [
            to_lf(V2_RESPONSE.as_bytes()),
            to_crlf(V2_RESPONSE.as_bytes()),
        ] {
            let batch = parse_ok(&body, "batch_1");
            assert_eq!(batch.parts.len(), 2);
            assert_eq!(batch.changesets().len(), 1);
            assert_eq!(batch.changesets()[0].parts.len(), 2);

            let start_lines: Vec<String> = batch
                .messages()
                .iter()
                .map(|message| text(&body, &message.start_line))
                .collect();
            assert_eq!(
                start_lines,
                [
                    "HTTP/1.1 201 Created",
                    "HTTP/1.1 204 No Content",
                    "HTTP/1.1 200 OK"
                ]
            );

            let messages = batch.messages();
            assert_eq!(text(&body, &messages[0].body), "{\"d\":{\"a\":1}}");
            assert_eq!(text(&body, &messages[1].body), "");
            assert_eq!(text(&body, &messages[2].body), "Frederic Fall");
        }
    }

    #[test]
    fn parse_numbers_nested_parts() {
        let body = V2_RESPONSE.as_bytes();
        let batch = parse_ok(body, "batch_1");
        let changeset = batch.changesets()[0];
        assert_eq!(batch.parts[1].number.numbers(), [2]);
        assert_eq!(changeset.parts[1].number.numbers(), [1, 2]);
    }

    #[test]
    fn parse_keeps_preamble_and_epilogue() {
        let body = b"This is a preamble.\r\n--b\r\nX-A: 1\r\n\r\nbody\r\n--b-- \t\r\nepilogue\r\n";
        let batch = parse_ok(body, "b");
        assert_eq!(text(body, &batch.preamble), "This is a preamble.");
        assert_eq!(text(body, &batch.epilogue), "\r\nepilogue\r\n");
        assert_eq!(text(body, &batch.parts[0].body), "body");
        assert!(matches!(batch.parts[0].content, PartContent::Other));
    }

    #[test]
    fn parse_accepts_transport_padding() {
        let body = b"--b \t\nX-A: 1\n\none\n--b\t\nX-A: 2\n\ntwo\n--b--";
        let batch = parse_ok(body, "b");
        assert_eq!(batch.parts.len(), 2);
        assert_eq!(text(body, &batch.parts[1].body), "two");
        assert!(batch.epilogue.is_empty());
    }

    #[test]
    fn parse_ignores_boundary_prefix_lines() {
        let body = b"--b\nX-A: 1\n\n--bx\n --b\n--b-x\n--b\n--b--\n";
        let batch = parse_ok(body, "b");
        assert_eq!(batch.parts.len(), 2);
        assert_eq!(text(body, &batch.parts[0].body), "--bx\n --b\n--b-x");
    }

    #[test]
    fn parse_keeps_body_blank_lines() {
        // The last line end before the delimiter belongs to the delimiter,
        // the one before it to the body.
        let body = b"--b\r\nX-A: 1\r\n\r\nline\r\n\r\n--b--";
        let batch = parse_ok(body, "b");
        assert_eq!(text(body, &batch.parts[0].body), "line\r\n");
    }

    #[test]
    fn parse_empty_batch() {
        let batch = parse_ok(b"--b--\r\n", "b");
        assert!(batch.parts.is_empty());
    }

    #[test]
    fn parse_unknown_boundary() {
        let error = parse_error(V2_RESPONSE.as_bytes(), "batch_2");
        assert!(
            matches!(error, BatchError::BoundaryNotFound { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("'--batch_2'"), "{error}");
    }

    #[test]
    fn parse_missing_close_delimiter() {
        let body = V2_RESPONSE
            .trim_end()
            .strip_suffix("--batch_1--")
            .unwrap_or_default();
        let error = parse_error(body.as_bytes(), "batch_1");
        let part_two_start = V2_RESPONSE.rfind("--batch_1\n").unwrap_or_default() + 10;
        assert_eq!(
            error,
            BatchError::MissingCloseDelimiter {
                within: PartNumber::default(),
                boundary: "batch_1".to_owned(),
                end: body.len(),
                open_part: Some((PartNumber::default().child(2), part_two_start)),
            }
        );
    }

    #[test]
    fn parse_missing_changeset_close_delimiter() {
        let body = V2_RESPONSE.replace("--changeset_1--", "");
        let error = parse_error(body.as_bytes(), "batch_1");
        let message = error.to_string();
        assert!(
            message.starts_with("the changeset in part 1 ends at byte offset"),
            "{message}"
        );
        assert!(
            message.contains("part 2 of the changeset in part 1"),
            "{message}"
        );
    }

    #[test]
    fn parse_truncated_http_part() {
        let body = b"--b\r\nContent-Type: application/http\r\n\r\n--b--\r\n";
        let error = parse_error(body, "b");
        let message = error.to_string();
        assert!(
            message.starts_with("part 1 is invalid at byte offset 37"),
            "{message}"
        );
        assert!(message.contains("contains no HTTP message"), "{message}");
    }

    #[test]
    fn parse_rejects_invalid_part_header() {
        let body = b"--b\nContent-Type: application/http\nHTTP/1.1 200 OK\n\n--b--";
        let error = parse_error(body, "b");
        assert!(
            matches!(error, BatchError::InvalidPart { offset: 35, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn parse_rejects_delimiter_after_close() {
        let body = b"--b\nX-A: 1\n\n--b--\n--b\nX-A: 2\n\n--b--\n";
        let error = parse_error(body, "b");
        assert_eq!(
            error,
            BatchError::DelimiterAfterClose {
                within: PartNumber::default(),
                boundary: "b".to_owned(),
                offset: 18,
            }
        );
    }

    #[test]
    fn parse_rejects_nested_changeset() {
        let body = "\
--b
Content-Type: multipart/mixed; boundary=c1

--c1
Content-Type: multipart/mixed; boundary=c2

--c2--
--c1--
--b--
";
        let error = parse_error(body.as_bytes(), "b");
        let message = error.to_string();
        assert!(
            message.starts_with("part 1 of the changeset in part 1"),
            "{message}"
        );
        assert!(message.contains("inside a changeset"), "{message}");
    }

    #[test]
    fn parse_rejects_changeset_without_boundary() {
        let body = b"--b\nContent-Type: multipart/mixed\n\n--b--\n";
        let error = parse_error(body, "b");
        assert!(
            error.to_string().contains("without a boundary parameter"),
            "{error}"
        );
    }

    #[test]
    fn parse_changeset_unknown_boundary() {
        let body = b"--b\nContent-Type: multipart/mixed; boundary=c\n\n--x\n--b--\n";
        let error = parse_error(body, "b");
        assert_eq!(
            error,
            BatchError::BoundaryNotFound {
                within: PartNumber::default().child(1),
                boundary: "c".to_owned(),
            }
        );
    }

    #[test]
    fn parse_rejects_two_content_types() {
        let body = b"--b\nContent-Type: text/plain\ncontent-type: application/http\n\nGET x HTTP/1.1\n--b--\n";
        let error = parse_error(body, "b");
        assert!(
            error.to_string().contains("2 Content-Type header fields"),
            "{error}"
        );
    }

    #[test]
    fn strict_parse_rejects_near_delimiters() {
        let lines: [&[u8]; 4] = [b"--b\r", b"--bx", b"--b\x0b", b"--b--\r"];
        for near_delimiter in lines {
            let mut body = b"--b\r\nX-A: 1\r\n\r\n".to_vec();
            body.extend_from_slice(near_delimiter);
            body.extend_from_slice(b"\r\nX-B: 2\r\n--b--\r\n");

            assert!(parse(&body, "b").is_ok(), "{near_delimiter:?}");
            match parse_strict(&body, "b") {
                Ok(_) => panic!("strict parse accepted {near_delimiter:?}"),
                Err(error) => assert_eq!(
                    error,
                    BatchError::AmbiguousDelimiter {
                        within: PartNumber::default(),
                        boundary: "b".to_owned(),
                        offset: 15,
                    }
                ),
            }
        }
    }

    #[test]
    fn strict_parse_accepts_padding() {
        let body = b"--b \t\r\nX-A: 1\r\n\r\n- --b is text\r\n--b--\t\r\n";
        match parse_strict(body, "b") {
            Ok(batch) => assert_eq!(batch.parts.len(), 1),
            Err(error) => panic!("{error}"),
        }
    }
}
