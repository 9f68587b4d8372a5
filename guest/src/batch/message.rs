//! The HTTP message inside an `application/http` part: a request line or
//! status line, header fields, an empty line and the body (RFC 9112
//! section 2.1). Which kind of start line is valid is for the caller to
//! check.

use std::ops::Range;

use super::header::{self, Header, InvalidHeaderLine};
use super::lines::Lines;

/// An HTTP message, as offsets into the batch body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpMessage {
    /// The request line or status line without its line end.
    pub start_line: Range<usize>,
    pub headers: Vec<Header>,
    /// The message body: everything after the empty line up to the line end
    /// that belongs to the next delimiter.
    pub body: Range<usize>,
}

/// Reads the HTTP message that fills `range`. Empty lines before the start
/// line are skipped, as RFC 9112 section 2.2 recommends for servers.
pub(crate) fn parse(body: &[u8], range: Range<usize>) -> Result<HttpMessage, InvalidHeaderLine> {
    let start_line = Lines::new(body, range.clone()).find(|line| !line.content.is_empty());
    let Some(start_line) = start_line else {
        return Err(InvalidHeaderLine {
            offset: range.start,
            problem: "the part declares Content-Type application/http but contains no HTTP \
                      message"
                .to_owned(),
        });
    };

    let section = header::parse_section(body, start_line.end..range.end)?;
    Ok(HttpMessage {
        start_line: start_line.content,
        headers: section.headers,
        body: section.content_start..range.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(body: &[u8]) -> HttpMessage {
        match parse(body, 0..body.len()) {
            Ok(message) => message,
            Err(error) => panic!("{} at {}", error.problem, error.offset),
        }
    }

    #[test]
    fn message_splits_start_line_headers_body() {
        let body = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nFrederic Fall\r\n";
        let message = parse_all(body);
        assert_eq!(&body[message.start_line.clone()], b"HTTP/1.1 200 OK");
        assert_eq!(message.headers.len(), 1);
        assert_eq!(&body[message.body.clone()], b"Frederic Fall\r\n");
    }

    #[test]
    fn message_without_headers_or_body() {
        let body = b"HTTP/1.1 204 No Content\n\n";
        let message = parse_all(body);
        assert!(message.headers.is_empty());
        assert!(message.body.is_empty());
        assert_eq!(message.body.start, body.len());
    }

    #[test]
    fn message_without_empty_line() {
        let body = b"DELETE Items('1') HTTP/1.1\n";
        let message = parse_all(body);
        assert_eq!(
            &body[message.start_line.clone()],
            b"DELETE Items('1') HTTP/1.1"
        );
        assert!(message.body.is_empty());
    }

    #[test]
    fn message_skips_leading_empty_lines() {
        let body = b"\r\nGET Items HTTP/1.1\r\n\r\n";
        let message = parse_all(body);
        assert_eq!(&body[message.start_line.clone()], b"GET Items HTTP/1.1");
    }

    #[test]
    fn message_missing_is_error() {
        let body = b"\r\n\r\n";
        match parse(body, 0..body.len()) {
            Ok(_) => panic!("accepted a part without a message"),
            Err(error) => assert!(error.problem.contains("contains no HTTP message")),
        }
    }
}
