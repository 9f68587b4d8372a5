//! Errors found while reading or rewriting a `$batch` body. Each message
//! names the problem, the part and the byte offset in plain words, so that
//! the gateway can put it into an OData error or a log line.

use std::fmt;

/// The position of a part in a batch, counted from 1: `[3]` is the third
/// part of the batch, and `[3, 2]` is the second part of the changeset that
/// is the third part of the batch. The empty position is the batch itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartNumber(Vec<usize>);

impl PartNumber {
    /// Returns the position of the part `number` (from 1) inside this one.
    pub(crate) fn child(&self, number: usize) -> Self {
        let mut numbers = self.0.clone();
        numbers.push(number);
        Self(numbers)
    }

    /// Returns the part numbers from the outermost part inwards.
    pub fn numbers(&self) -> &[usize] {
        &self.0
    }

    /// Describes the multipart body at this position: the batch, or the
    /// changeset that is this part.
    fn describe_container(&self) -> String {
        if self.0.is_empty() {
            "the batch body".to_owned()
        } else {
            format!("the changeset in {self}")
        }
    }
}

impl fmt::Display for PartNumber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.split_last() {
            None => formatter.write_str("the batch"),
            Some((last, [])) => write!(formatter, "part {last}"),
            Some((last, outer)) => {
                write!(
                    formatter,
                    "part {last} of the changeset in {}",
                    Self(outer.to_vec())
                )
            }
        }
    }
}

/// A `$batch` body that cannot be read or must not be forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// No line of the body is a delimiter line of the boundary.
    BoundaryNotFound {
        within: PartNumber,
        boundary: String,
    },
    /// The body ends before the close delimiter.
    MissingCloseDelimiter {
        within: PartNumber,
        boundary: String,
        /// The offset where the body ends.
        end: usize,
        /// The part that was still open and the offset where it starts.
        open_part: Option<(PartNumber, usize)>,
    },
    /// A delimiter line follows the close delimiter, so parts would hide in
    /// the epilogue.
    DelimiterAfterClose {
        within: PartNumber,
        boundary: String,
        offset: usize,
    },
    /// A line starts with `--` and the boundary but is not a delimiter
    /// line. Only request parsing reports it, because a server with a laxer
    /// parser could read the line as a delimiter.
    AmbiguousDelimiter {
        within: PartNumber,
        boundary: String,
        offset: usize,
    },
    /// A part that cannot be read: a malformed header line, a missing HTTP
    /// message, an invalid request or status line, or a forbidden nesting.
    InvalidPart {
        part: PartNumber,
        offset: usize,
        problem: String,
    },
    /// An inner request addresses a resource outside the service root.
    TargetOutsideService {
        part: PartNumber,
        offset: usize,
        target: String,
        service_root: String,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BoundaryNotFound { within, boundary } => write!(
                formatter,
                "{} contains no delimiter line '--{}': the boundary of the Content-Type \
                 header does not match the body",
                within.describe_container(),
                quote(boundary.as_bytes()),
            ),
            Self::MissingCloseDelimiter {
                within,
                boundary,
                end,
                open_part,
            } => {
                write!(
                    formatter,
                    "{} ends at byte offset {end} without the close delimiter '--{}--'",
                    within.describe_container(),
                    quote(boundary.as_bytes()),
                )?;
                match open_part {
                    Some((part, start)) => write!(
                        formatter,
                        ", so {part}, which starts at byte offset {start}, is truncated"
                    ),
                    None => Ok(()),
                }
            }
            Self::DelimiterAfterClose {
                within,
                boundary,
                offset,
            } => write!(
                formatter,
                "{} contains the delimiter line '--{}' at byte offset {offset}, after its \
                 close delimiter",
                within.describe_container(),
                quote(boundary.as_bytes()),
            ),
            Self::AmbiguousDelimiter {
                within,
                boundary,
                offset,
            } => write!(
                formatter,
                "{} contains a line at byte offset {offset} that starts with '--{}' but is not \
                 a valid delimiter line, and a server could read it as one: remove the stray \
                 characters after the boundary",
                within.describe_container(),
                quote(boundary.as_bytes()),
            ),
            Self::InvalidPart {
                part,
                offset,
                problem,
            } => write!(
                formatter,
                "{part} is invalid at byte offset {offset}: {problem}"
            ),
            Self::TargetOutsideService {
                part,
                offset,
                target,
                service_root,
            } => write!(
                formatter,
                "the request target '{}' of {part} (byte offset {offset}) is outside the \
                 service root {service_root}: a request in a $batch may address only \
                 resources of its own service, so use a path relative to the service root",
                quote(target.as_bytes()),
            ),
        }
    }
}

impl std::error::Error for BatchError {}

/// Returns client or backend text for a message: invalid UTF-8 replaced,
/// control characters escaped, and at most 200 characters.
pub(crate) fn quote(text: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(text);
    let mut quoted = String::new();
    for (index, character) in text.chars().enumerate() {
        if index == MAX_CHARS {
            quoted.push_str("...");
            break;
        }
        if character.is_control() {
            quoted.extend(character.escape_default());
        } else {
            quoted.push(character);
        }
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_number_names_nesting() {
        let changeset = PartNumber::default().child(3);
        assert_eq!(changeset.to_string(), "part 3");
        assert_eq!(
            changeset.child(2).to_string(),
            "part 2 of the changeset in part 3"
        );
        assert_eq!(changeset.child(2).numbers(), [3, 2]);
    }

    #[test]
    fn missing_close_names_part_and_offset() {
        let error = BatchError::MissingCloseDelimiter {
            within: PartNumber::default(),
            boundary: "batch_1".to_owned(),
            end: 120,
            open_part: Some((PartNumber::default().child(2), 64)),
        };
        assert_eq!(
            error.to_string(),
            "the batch body ends at byte offset 120 without the close delimiter \
             '--batch_1--', so part 2, which starts at byte offset 64, is truncated"
        );
    }

    #[test]
    fn boundary_not_found_names_changeset() {
        let error = BatchError::BoundaryNotFound {
            within: PartNumber::default().child(4),
            boundary: "cs".to_owned(),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("the changeset in part 4 contains no delimiter line '--cs'"),
            "{message}"
        );
    }

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote(b"a\r\nb"), "a\\r\\nb");
        assert_eq!(quote(b"\xffx"), "\u{fffd}x");
        let long = quote("x".repeat(300).as_bytes());
        assert_eq!(long.len(), 203);
    }
}
