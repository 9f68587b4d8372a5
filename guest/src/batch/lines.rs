//! Line splitting for batch bodies, which may end lines with CRLF or with a
//! bare LF, mixed in one body.

use std::ops::Range;

/// One line of a body, as offsets into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// The line without its line end.
    pub content: Range<usize>,
    /// The offset after the line end, where the next line starts.
    pub end: usize,
}

/// An iterator over the lines of one range of a body.
///
/// A line ends at LF, and a CR before that LF belongs to the line end. The
/// last line may have no line end, and then a CR at the very end of the
/// range counts as its line end.
#[derive(Debug)]
pub(crate) struct Lines<'a> {
    body: &'a [u8],
    position: usize,
    end: usize,
}

impl<'a> Lines<'a> {
    pub fn new(body: &'a [u8], range: Range<usize>) -> Self {
        Self {
            body,
            position: range.start,
            end: range.end.min(body.len()),
        }
    }
}

impl Iterator for Lines<'_> {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        let start = self.position;
        let rest = self.body.get(start..self.end)?;
        if rest.is_empty() {
            return None;
        }

        let (before_cr, end) = match rest.iter().position(|&byte| byte == b'\n') {
            Some(index) => (start + index, start + index + 1),
            None => (self.end, self.end),
        };
        let content_end = if before_cr > start && self.body.get(before_cr - 1) == Some(&b'\r') {
            before_cr - 1
        } else {
            before_cr
        };

        self.position = end;
        Some(Line {
            content: start..content_end,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(body: &[u8]) -> Vec<&[u8]> {
        Lines::new(body, 0..body.len())
            .map(|line| &body[line.content])
            .collect()
    }

    #[test]
    fn lines_mixed_line_ends() {
        let body = b"a\r\nb\nc\r\n\nd";
        assert_eq!(contents(body), [&b"a"[..], b"b", b"c", b"", b"d"]);
    }

    #[test]
    fn lines_end_offsets_follow_line_ends() {
        let body = b"ab\r\ncd\nef";
        let ends: Vec<usize> = Lines::new(body, 0..body.len())
            .map(|line| line.end)
            .collect();
        assert_eq!(ends, [4, 7, 9]);
    }

    #[test]
    fn lines_final_line_end_adds_no_line() {
        assert_eq!(contents(b"a\n"), [&b"a"[..]]);
        assert!(contents(b"").is_empty());
    }

    #[test]
    fn lines_lone_cr_stays_in_content() {
        assert_eq!(contents(b"a\rb\n"), [&b"a\rb"[..]]);
    }

    #[test]
    fn lines_trailing_cr_at_end_is_line_end() {
        assert_eq!(contents(b"a\nb\r"), [&b"a"[..], b"b"]);
    }

    #[test]
    fn lines_stay_inside_range() {
        let body = b"xx\nab\ncd\nyy";
        let lines: Vec<Line> = Lines::new(body, 3..8).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(&body[lines[1].content.clone()], b"cd");
        assert_eq!(lines[1].end, 8);
    }
}
