//! Rewriting of absolute backend links to the gateway's public URL.
//!
//! A backend writes absolute links to itself into headers and bodies. The
//! gateway rewrites those under the destination's URL to the same path under
//! its own URL for that destination, so that a client that follows a link
//! stays on the gateway. Relative references are left alone: a client
//! resolves them against the gateway URL, whose path mirrors the backend's.
//!
//! - [`LinkMap`] decides whether one link addresses the destination and
//!   builds the gateway URL for it.
//! - [`body_rewriter`] returns a streaming rewriter for JSON and XML bodies,
//!   which changes only the values that the OData formats define as links
//!   and copies every other byte unchanged.

mod json;
mod json_text;
mod map;
pub mod uri;
mod xml;
mod xml_text;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod property_tests;

pub use json::JsonRewriter;
pub use map::LinkMap;
pub use xml::XmlRewriter;

/// A streaming rewriter for one response body.
pub trait BodyRewriter {
    /// Consumes the next chunk and appends the output to `out`.
    fn write(&mut self, input: &[u8], out: &mut Vec<u8>);
    /// Appends what is still buffered at the end of the body.
    fn finish(&mut self, out: &mut Vec<u8>);
}

/// Returns the rewriter for a body of this `Content-Type`, or `None` when
/// the media type carries no links (the body then passes untouched).
///
/// JSON media types are `application/json` and any `+json` type. XML media
/// types are `application/xml`, `text/xml` and any `+xml` type, such as
/// `application/atom+xml` and `application/atomsvc+xml`. Parameters such as
/// `odata.metadata=minimal` are ignored, and case does not matter.
pub fn body_rewriter(content_type: &str, map: &LinkMap) -> Option<Box<dyn BodyRewriter>> {
    match classify_media_type(content_type)? {
        BodyFormat::Json => Some(Box::new(JsonRewriter::new(map.clone()))),
        BodyFormat::Xml => Some(Box::new(XmlRewriter::new(map.clone()))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFormat {
    Json,
    Xml,
}

fn classify_media_type(content_type: &str) -> Option<BodyFormat> {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;

    if subtype == "json" && kind == "application" || subtype.ends_with("+json") {
        Some(BodyFormat::Json)
    } else if subtype == "xml" && matches!(kind, "application" | "text")
        || subtype.ends_with("+xml")
    {
        Some(BodyFormat::Xml)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types() {
        for content_type in [
            "application/json",
            "application/json;odata.metadata=minimal;charset=utf-8",
            "Application/JSON; odata=verbose",
            "application/problem+json",
            " application/json ",
        ] {
            assert_eq!(
                classify_media_type(content_type),
                Some(BodyFormat::Json),
                "{content_type}"
            );
        }
    }

    #[test]
    fn xml_media_types() {
        for content_type in [
            "application/xml",
            "application/atom+xml;type=feed;charset=utf-8",
            "application/atomsvc+xml",
            "text/xml; charset=utf-8",
            "TEXT/XML",
            "application/soap+xml",
        ] {
            assert_eq!(
                classify_media_type(content_type),
                Some(BodyFormat::Xml),
                "{content_type}"
            );
        }
    }

    #[test]
    fn other_media_types() {
        for content_type in [
            "text/html",
            "text/plain; charset=utf-8",
            "application/octet-stream",
            "multipart/mixed; boundary=batch_1",
            "text/json",
            "application/jsonx",
            "json",
            "",
        ] {
            assert_eq!(classify_media_type(content_type), None, "{content_type}");
        }
    }

    #[test]
    fn body_rewriter_for_each_format() {
        let Some(map) = LinkMap::new(
            "https://s4.example.com/svc",
            "https://gw.example.com/odata/S4",
        ) else {
            panic!("backend base was rejected");
        };
        let cases = [
            (
                "application/json",
                r#"{"@odata.id":"https://s4.example.com/svc/A"}"#,
                r#"{"@odata.id":"https://gw.example.com/odata/S4/A"}"#,
            ),
            (
                "application/atom+xml",
                r#"<link href="https://s4.example.com/svc/A"/>"#,
                r#"<link href="https://gw.example.com/odata/S4/A"/>"#,
            ),
        ];
        for (content_type, body, expected) in cases {
            let Some(mut rewriter) = body_rewriter(content_type, &map) else {
                panic!("no rewriter for {content_type}");
            };
            let mut out = Vec::new();
            rewriter.write(body.as_bytes(), &mut out);
            rewriter.finish(&mut out);
            assert_eq!(String::from_utf8_lossy(&out), expected, "{content_type}");
        }
        assert!(body_rewriter("text/plain", &map).is_none());
    }
}
