//! OData V4 JSON documents of a chosen size, for the benchmark backend.
//!
//! A document is a collection of product entities in the minimal metadata
//! format that CAP and SAP Gateway send: a relative `@odata.context` and a
//! `value` array. Documents that fit in memory are built once. The largest
//! is streamed from one repeated chunk, so that the backend costs little CPU
//! and its memory stays flat while it sends.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The opening of every document, up to the first entity.
const HEAD: &str = r#"{"@odata.context":"$metadata#Products","value":["#;

/// The end of every document.
const TAIL: &str = "]}";

/// Bytes of one chunk of a streamed document.
const STREAM_CHUNK_BYTES: usize = 64 * 1024;

/// Returns one product entity as JSON.
fn product(id: u64) -> String {
    format!(
        r#"{{"ID":{id},"Name":"Product {id}","Category":"Office supplies","Price":12.5,"Currency":"EUR","Stock":130,"ModifiedAt":"2024-05-01T10:00:00Z"}}"#
    )
}

/// Builds a complete document of at least `min_bytes` bytes.
pub fn document(min_bytes: usize) -> Bytes {
    let mut text = String::from(HEAD);
    let mut id = 1;
    text.push_str(&product(id));
    while text.len() + TAIL.len() < min_bytes {
        id += 1;
        text.push(',');
        text.push_str(&product(id));
    }
    text.push_str(TAIL);
    Bytes::from(text)
}

/// A document of at least `min_bytes` bytes, sent in chunks of about
/// 64 KiB that repeat the same entities.
#[derive(Debug)]
pub struct StreamedDocument {
    head: Option<Bytes>,
    chunk: Bytes,
    chunks_left: u64,
    tail: Option<Bytes>,
    bytes_left: u64,
}

impl StreamedDocument {
    /// Creates the body of a document of at least `min_bytes` bytes.
    pub fn new(min_bytes: u64) -> Self {
        let head = Bytes::from(format!("{HEAD}{}", product(0)));
        let mut chunk = String::new();
        let mut id = 1;
        while chunk.len() < STREAM_CHUNK_BYTES {
            chunk.push(',');
            chunk.push_str(&product(id));
            id += 1;
        }
        let chunk = Bytes::from(chunk);
        let chunks = min_bytes.div_ceil(chunk.len() as u64).max(1);
        let total = head.len() as u64 + chunks * chunk.len() as u64 + TAIL.len() as u64;
        Self {
            head: Some(head),
            chunk,
            chunks_left: chunks,
            tail: Some(Bytes::from_static(TAIL.as_bytes())),
            bytes_left: total,
        }
    }

    /// Returns the length of the whole document in bytes.
    pub fn len(&self) -> u64 {
        self.bytes_left
    }

    /// Returns whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.bytes_left == 0
    }

    fn next_piece(&mut self) -> Option<Bytes> {
        if let Some(head) = self.head.take() {
            return Some(head);
        }
        if self.chunks_left > 0 {
            self.chunks_left -= 1;
            return Some(self.chunk.clone());
        }
        self.tail.take()
    }
}

impl Body for StreamedDocument {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let piece = self.next_piece();
        if let Some(piece) = &piece {
            self.bytes_left -= piece.len() as u64;
        }
        Poll::Ready(piece.map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes_left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes_left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[test]
    fn document_reaches_its_size() {
        let small = document(1000);
        assert!(small.len() >= 1000, "{}", small.len());
        assert!(small.len() < 1200, "{}", small.len());
        assert!(small.starts_with(HEAD.as_bytes()));
        assert!(small.ends_with(TAIL.as_bytes()));
    }

    #[tokio::test]
    async fn streamed_document_matches_its_length() -> anyhow::Result<()> {
        let body = StreamedDocument::new(300 * 1024);
        let announced = body.len();
        let collected = body.collect().await?.to_bytes();

        assert_eq!(collected.len() as u64, announced);
        assert!(announced >= 300 * 1024);
        let text = std::str::from_utf8(&collected)?;
        assert!(text.starts_with(HEAD));
        assert!(text.ends_with(TAIL));
        assert!(!text.contains(",,"));
        Ok(())
    }
}
