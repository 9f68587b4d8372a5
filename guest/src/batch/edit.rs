//! Rewrites as replacements of byte ranges in the original body, and the
//! walk over a batch that collects them.
//!
//! A corrected `Content-Length` is the old value changed by the number of
//! bytes added or removed. That keeps the count right when it was right, and
//! keeps a producer's own convention when it was not, for example a count
//! that leaves out a trailing line end.

use std::ops::Range;

use super::error::BatchError;
use super::header::Header;
use super::message::HttpMessage;
use super::multipart::{Multipart, Part, PartContent};

/// Collects the changes for one HTTP message of a batch.
pub(crate) trait MessageEditor {
    fn edit(
        &self,
        body: &[u8],
        part: &Part,
        message: &HttpMessage,
        edits: &mut Edits,
    ) -> Result<(), BatchError>;

    /// Checks a part that is neither an HTTP message nor a changeset. Such
    /// parts are copied unchanged unless this returns an error.
    fn check_other_part(&self, _body: &[u8], _part: &Part) -> Result<(), BatchError> {
        Ok(())
    }
}

/// Lets `editor` change each HTTP message of the parsed `batch`, corrects
/// the `Content-Length` of every part whose body changed, and returns the
/// rewritten body.
pub(crate) fn rewrite(
    body: &[u8],
    batch: &Multipart,
    editor: &impl MessageEditor,
) -> Result<Vec<u8>, BatchError> {
    let mut edits = Edits::default();
    edit_parts(body, batch, editor, &mut edits)?;
    Ok(edits.apply(body))
}

fn edit_parts(
    body: &[u8],
    multipart: &Multipart,
    editor: &impl MessageEditor,
    edits: &mut Edits,
) -> Result<(), BatchError> {
    for part in &multipart.parts {
        let mark = edits.mark();
        match &part.content {
            PartContent::Changeset(changeset) => edit_parts(body, changeset, editor, edits)?,
            PartContent::Http(message) => editor.edit(body, part, message, edits)?,
            PartContent::Other => editor.check_other_part(body, part)?,
        }
        let change = edits.change_since(mark);
        correct_content_length(body, &part.headers, change, &part.body, edits);
    }
    Ok(())
}

/// Replacements of non-overlapping ranges of the original body.
#[derive(Debug, Default)]
pub(crate) struct Edits {
    replacements: Vec<(Range<usize>, Vec<u8>)>,
}

/// The bytes that some edits add and remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LengthChange {
    added: usize,
    removed: usize,
}

impl LengthChange {
    fn is_none(self) -> bool {
        self.added == self.removed
    }

    /// Returns `length` after the change, or `None` if it would be negative.
    fn apply_to(self, length: usize) -> Option<usize> {
        length.checked_add(self.added)?.checked_sub(self.removed)
    }
}

impl Edits {
    /// Replaces `range` of the original body with `bytes`. Ranges must not
    /// overlap.
    pub fn replace(&mut self, range: Range<usize>, bytes: Vec<u8>) {
        self.replacements.push((range, bytes));
    }

    /// Returns a mark for [`Edits::change_since`].
    pub fn mark(&self) -> usize {
        self.replacements.len()
    }

    /// Returns the change in length of the edits made after `mark`.
    pub fn change_since(&self, mark: usize) -> LengthChange {
        let recent = self.replacements.get(mark..).unwrap_or_default();
        LengthChange {
            added: recent.iter().map(|(_, bytes)| bytes.len()).sum(),
            removed: recent.iter().map(|(range, _)| range.len()).sum(),
        }
    }

    /// Returns `body` with the replacements applied.
    pub fn apply(mut self, body: &[u8]) -> Vec<u8> {
        self.replacements.sort_by_key(|(range, _)| range.start);

        let mut output = Vec::with_capacity(body.len());
        let mut position = 0;
        for (range, bytes) in &self.replacements {
            debug_assert!(
                range.start >= position,
                "overlapping edits at {}",
                range.start
            );
            output.extend_from_slice(body.get(position..range.start).unwrap_or_default());
            output.extend_from_slice(bytes);
            position = position.max(range.end);
        }
        output.extend_from_slice(body.get(position..).unwrap_or_default());
        output
    }
}

/// Corrects every `Content-Length` among `headers` after `change` to the
/// body in `counted`. A value that is not a decimal number stays as it is.
pub(crate) fn correct_content_length(
    body: &[u8],
    headers: &[Header],
    change: LengthChange,
    counted: &Range<usize>,
    edits: &mut Edits,
) {
    if change.is_none() {
        return;
    }

    for header in headers
        .iter()
        .filter(|header| header.is_named(body, "content-length"))
    {
        let Some(old) = std::str::from_utf8(header.value(body))
            .ok()
            .and_then(|value| value.parse::<usize>().ok())
        else {
            continue;
        };
        let corrected = change
            .apply_to(old)
            .or_else(|| change.apply_to(counted.len()));
        if let Some(corrected) = corrected {
            edits.replace(header.value.clone(), corrected.to_string().into_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::header::parse_section;

    #[test]
    fn apply_without_edits_copies() {
        let body = b"unchanged\r\n";
        assert_eq!(Edits::default().apply(body), body);
    }

    #[test]
    fn apply_in_any_order() {
        let mut edits = Edits::default();
        edits.replace(6..9, b"X".to_vec());
        edits.replace(0..1, b"0123".to_vec());
        assert_eq!(edits.apply(b"abcdefghij"), b"0123bcdefXj");
    }

    #[test]
    fn change_counts_recent_edits() {
        let mut edits = Edits::default();
        edits.replace(0..5, Vec::new());
        let mark = edits.mark();
        edits.replace(6..7, b"abc".to_vec());
        edits.replace(8..10, b"d".to_vec());
        let change = edits.change_since(mark);
        assert_eq!(
            change,
            LengthChange {
                added: 4,
                removed: 3
            }
        );
        assert_eq!(change.apply_to(10), Some(11));
    }

    #[test]
    fn content_length_changes_by_difference() {
        let body = b"Content-Length: 185\r\ncontent-length:9\r\nContent-Length: x\r\n\r\n";
        let section = match parse_section(body, 0..body.len()) {
            Ok(section) => section,
            Err(error) => panic!("{}", error.problem),
        };
        let mut edits = Edits::default();
        let change = LengthChange {
            added: 10,
            removed: 4,
        };
        correct_content_length(body, &section.headers, change, &(0..0), &mut edits);
        let output = edits.apply(body);
        assert_eq!(
            output,
            b"Content-Length: 191\r\ncontent-length:15\r\nContent-Length: x\r\n\r\n"
        );
    }

    #[test]
    fn content_length_below_zero_uses_actual_length() {
        let body = b"Content-Length: 2\n\n";
        let section = match parse_section(body, 0..body.len()) {
            Ok(section) => section,
            Err(error) => panic!("{}", error.problem),
        };
        let mut edits = Edits::default();
        let change = LengthChange {
            added: 0,
            removed: 5,
        };
        correct_content_length(body, &section.headers, change, &(0..40), &mut edits);
        assert_eq!(edits.apply(body), b"Content-Length: 35\n\n");
    }
}
