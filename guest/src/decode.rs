//! Streaming decompression of `gzip` and `deflate` response bodies, for
//! bodies whose links must be rewritten.

use std::io::Write as _;

use flate2::write::{GzDecoder, ZlibDecoder};

/// A decoder for one `Content-Encoding`.
#[derive(Debug)]
pub enum Decoder {
    Identity,
    Gzip(GzDecoder<Vec<u8>>),
    /// HTTP's `deflate` is the zlib format (RFC 9110, section 8.4.1.2).
    Deflate(ZlibDecoder<Vec<u8>>),
}

/// The body is not valid for its `Content-Encoding`.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError;

impl Decoder {
    /// Returns the decoder for a `Content-Encoding` value, or `None` for a
    /// coding the gateway cannot decode (the body then passes unchanged).
    pub fn for_encoding(content_encoding: Option<&str>) -> Option<Self> {
        let coding = content_encoding.unwrap_or("").trim().to_ascii_lowercase();
        match coding.as_str() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip(GzDecoder::new(Vec::new()))),
            "deflate" => Some(Self::Deflate(ZlibDecoder::new(Vec::new()))),
            _ => None,
        }
    }

    /// Returns whether the decoder changes the bytes.
    pub fn is_identity(&self) -> bool {
        matches!(self, Self::Identity)
    }

    /// Decodes the next chunk and returns what it produced.
    pub fn push(&mut self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        match self {
            Self::Identity => Ok(input.to_vec()),
            Self::Gzip(decoder) => {
                decoder.write_all(input).map_err(|_| DecodeError)?;
                Ok(std::mem::take(decoder.get_mut()))
            }
            Self::Deflate(decoder) => {
                decoder.write_all(input).map_err(|_| DecodeError)?;
                Ok(std::mem::take(decoder.get_mut()))
            }
        }
    }

    /// Ends the stream and returns the rest; a truncated stream is an error.
    pub fn finish(self) -> Result<Vec<u8>, DecodeError> {
        match self {
            Self::Identity => Ok(Vec::new()),
            Self::Gzip(decoder) => decoder.finish().map_err(|_| DecodeError),
            Self::Deflate(decoder) => decoder.finish().map_err(|_| DecodeError),
        }
    }
}

/// Decodes a whole body.
pub fn decode_all(content_encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut decoder = Decoder::for_encoding(content_encoding).ok_or(DecodeError)?;
    let mut output = decoder.push(body)?;
    output.extend(decoder.finish()?);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        assert!(encoder.write_all(bytes).is_ok());
        encoder.finish().unwrap_or_default()
    }

    #[test]
    fn gzip_in_small_chunks() {
        let text = br#"{"d":{"results":[{"Price":"12.500"}]}}"#.repeat(100);
        let compressed = gzip(&text);
        let mut decoder = Decoder::for_encoding(Some("gzip")).unwrap_or(Decoder::Identity);
        let mut output = Vec::new();
        for chunk in compressed.chunks(7) {
            output.extend(decoder.push(chunk).unwrap_or_default());
        }
        output.extend(decoder.finish().unwrap_or_default());
        assert_eq!(output, text);
    }

    #[test]
    fn deflate_is_zlib() {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        assert!(encoder.write_all(b"hello").is_ok());
        let compressed = encoder.finish().unwrap_or_default();
        assert_eq!(
            decode_all(Some("Deflate"), &compressed),
            Ok(b"hello".to_vec())
        );
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let compressed = gzip(&[b'x'; 10_000]);
        assert_eq!(
            decode_all(Some("gzip"), &compressed[..compressed.len() / 2]),
            Err(DecodeError)
        );
    }

    #[test]
    fn unknown_coding_has_no_decoder() {
        assert!(Decoder::for_encoding(Some("br")).is_none());
        assert!(Decoder::for_encoding(None).is_some_and(|decoder| decoder.is_identity()));
    }
}
