//! Header sections of batch parts and of the HTTP messages inside them
//! (field syntax of RFC 9110 section 5 and RFC 9112 section 5).

use std::ops::Range;

use super::error::quote;
use super::lines::Lines;

/// One header field, as offsets into the body. The value excludes the
/// whitespace around it, and for an obsolete folded field it spans the
/// continuation lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Range<usize>,
    pub value: Range<usize>,
}

impl Header {
    /// Returns whether the field name is `name`, compared in any case.
    pub fn is_named(&self, body: &[u8], name: &str) -> bool {
        body.get(self.name.clone())
            .is_some_and(|field_name| field_name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Returns the value bytes.
    pub fn value<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        body.get(self.value.clone()).unwrap_or_default()
    }
}

/// The header fields of one section and the offset where the content after
/// the section's empty line starts.
#[derive(Debug)]
pub(crate) struct HeaderSection {
    pub headers: Vec<Header>,
    pub content_start: usize,
}

/// A line in a header section that is not a header field.
#[derive(Debug)]
pub(crate) struct InvalidHeaderLine {
    pub offset: usize,
    pub problem: String,
}

/// Reads the header fields in `range` up to the first empty line.
///
/// A section that reaches the end of `range` without an empty line ends
/// there with no content after it. That happens when a message has no body
/// and its producer wrote only one line end before the next delimiter line,
/// because that line end belongs to the delimiter.
pub(crate) fn parse_section(
    body: &[u8],
    range: Range<usize>,
) -> Result<HeaderSection, InvalidHeaderLine> {
    let mut headers: Vec<Header> = Vec::new();
    for line in Lines::new(body, range.clone()) {
        let content = body.get(line.content.clone()).unwrap_or_default();
        if content.is_empty() {
            return Ok(HeaderSection {
                headers,
                content_start: line.end,
            });
        }

        if content.starts_with(b" ") || content.starts_with(b"\t") {
            let Some(last) = headers.last_mut() else {
                return Err(InvalidHeaderLine {
                    offset: line.content.start,
                    problem: "the first header line starts with whitespace".to_owned(),
                });
            };
            last.value.end = line.content.start + trimmed_end(content);
            continue;
        }

        headers.push(parse_field(content, line.content.start)?);
    }

    Ok(HeaderSection {
        headers,
        content_start: range.end,
    })
}

/// Returns the value of the first field called `name`, if it is UTF-8.
pub(crate) fn first_value<'b>(headers: &[Header], body: &'b [u8], name: &str) -> Option<&'b str> {
    let header = headers.iter().find(|header| header.is_named(body, name))?;
    std::str::from_utf8(header.value(body)).ok()
}

/// Returns whether `byte` may appear in a field name or method (RFC 9110
/// section 5.6.2, `tchar`).
pub(crate) fn is_token_byte(byte: &u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte)
}

fn parse_field(line: &[u8], start: usize) -> Result<Header, InvalidHeaderLine> {
    let invalid = || InvalidHeaderLine {
        offset: start,
        problem: format!(
            "the header line '{}' is not a 'Name: value' field",
            quote(line)
        ),
    };

    let colon = line
        .iter()
        .position(|&byte| byte == b':')
        .ok_or_else(invalid)?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(is_token_byte) {
        return Err(invalid());
    }

    let after_colon = &line[colon + 1..];
    let leading = after_colon
        .iter()
        .take_while(|byte| matches!(byte, b' ' | b'\t'))
        .count();
    let value_start = colon + 1 + leading;
    let value_end = (colon + 1 + trimmed_end(after_colon)).max(value_start);
    Ok(Header {
        name: start..start + colon,
        value: start + value_start..start + value_end,
    })
}

/// Returns the length of `bytes` without trailing spaces and tabs.
fn trimmed_end(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rposition(|byte| !matches!(byte, b' ' | b'\t'))
        .map_or(0, |index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &[u8], section: &HeaderSection) -> Vec<(String, String)> {
        section
            .headers
            .iter()
            .map(|header| {
                (
                    String::from_utf8_lossy(&body[header.name.clone()]).into_owned(),
                    String::from_utf8_lossy(header.value(body)).into_owned(),
                )
            })
            .collect()
    }

    fn parse(body: &[u8]) -> HeaderSection {
        match parse_section(body, 0..body.len()) {
            Ok(section) => section,
            Err(error) => panic!("{} at {}", error.problem, error.offset),
        }
    }

    #[test]
    fn section_ends_at_empty_line() {
        let body = b"content-TYPE: application/http\r\nContent-ID:1 \n\r\nGET x HTTP/1.1";
        let section = parse(body);
        assert_eq!(
            fields(body, &section),
            [
                ("content-TYPE".to_owned(), "application/http".to_owned()),
                ("Content-ID".to_owned(), "1".to_owned()),
            ]
        );
        assert_eq!(&body[section.content_start..], b"GET x HTTP/1.1");
    }

    #[test]
    fn section_without_empty_line_ends_at_range_end() {
        let body = b"Location: x\r\n";
        let section = parse(body);
        assert_eq!(section.headers.len(), 1);
        assert_eq!(section.content_start, body.len());
    }

    #[test]
    fn section_empty_value() {
        let body = b"X-Empty:   \n\n";
        let section = parse(body);
        assert_eq!(
            fields(body, &section),
            [("X-Empty".to_owned(), String::new())]
        );
    }

    #[test]
    fn section_folded_value_spans_lines() {
        let body = b"Location: a\r\n  b \r\n\r\n";
        let section = parse(body);
        assert_eq!(section.headers[0].value(body), b"a\r\n  b");
    }

    #[test]
    fn section_rejects_line_without_colon() {
        let body = b"Content-Type: application/http\nHTTP/1.1 200 OK\n\n";
        match parse_section(body, 0..body.len()) {
            Ok(_) => panic!("accepted a status line as a header"),
            Err(error) => {
                assert_eq!(error.offset, 31);
                assert!(
                    error.problem.contains("'HTTP/1.1 200 OK'"),
                    "{}",
                    error.problem
                );
            }
        }
    }

    #[test]
    fn section_rejects_invalid_name() {
        let body = b"{\"d\": 1}\n\n";
        assert!(parse_section(body, 0..body.len()).is_err());
    }

    #[test]
    fn section_rejects_leading_continuation() {
        let body = b" folded: x\n\n";
        assert!(parse_section(body, 0..body.len()).is_err());
    }

    #[test]
    fn first_value_ignores_case() {
        let body = b"content-length: 12\nContent-Length: 13\n\n";
        let section = parse(body);
        assert_eq!(
            first_value(&section.headers, body, "Content-Length"),
            Some("12")
        );
        assert_eq!(first_value(&section.headers, body, "Location"), None);
    }
}
