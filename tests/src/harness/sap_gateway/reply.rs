//! Fixed-size responses and the error bodies SAP Gateway sends.

use std::convert::Infallible;
use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

pub(super) const JSON: &str = "application/json";
pub(super) const XML: &str = "application/xml;charset=utf-8";
pub(super) const TEXT: &str = "text/plain;charset=utf-8";

/// A response with its whole body, also used for the parts of a `$batch`
/// response.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

impl Reply {
    /// Creates a reply without headers and body.
    pub(super) fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// Creates a reply with a body and its `Content-Type`.
    pub(super) fn with_body(
        status: StatusCode,
        content_type: &str,
        body: impl Into<Bytes>,
    ) -> Self {
        Self::empty(status)
            .header(CONTENT_TYPE, content_type)
            .body(body)
    }

    /// Creates a V2 JSON reply from serialized JSON.
    pub(super) fn json(status: StatusCode, body: String) -> Self {
        Self::with_body(status, JSON, body).header_static("dataserviceversion", "2.0")
    }

    /// Adds a header. A value that is not a valid header value is left out
    /// and logged, because every value here comes from the backend itself.
    pub(super) fn header(mut self, name: HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                self.headers.append(name, value);
            }
            Err(error) => tracing::warn!(%error, %name, value, "invalid header value left out"),
        }
        self
    }

    /// Adds a header with a name known at compile time.
    pub(super) fn header_static(self, name: &'static str, value: &str) -> Self {
        self.header(HeaderName::from_static(name), value)
    }

    /// Adds a header whose value is raw bytes, such as UTF-8 text.
    pub(super) fn header_bytes(mut self, name: &'static str, value: &[u8]) -> Self {
        match HeaderValue::from_bytes(value) {
            Ok(value) => {
                self.headers.append(HeaderName::from_static(name), value);
            }
            Err(error) => tracing::warn!(%error, name, "invalid header value left out"),
        }
        self
    }

    fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Compresses the body with gzip and sets `Content-Encoding: gzip`.
    pub(super) fn gzip(self) -> Self {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        // Writing to a Vec only fails when memory runs out.
        let compressed = match encoder
            .write_all(&self.body)
            .and_then(|()| encoder.finish())
        {
            Ok(compressed) => compressed,
            Err(error) => {
                tracing::warn!(%error, "gzip compression failed, sending the body uncompressed");
                return self;
            }
        };
        self.header(CONTENT_ENCODING, "gzip")
            .header_static("vary", "Accept-Encoding")
            .body(compressed)
    }

    /// Converts the reply into a response with a fixed-size body.
    pub(super) fn into_response(self) -> Response<BoxBody<Bytes, Infallible>> {
        let mut response = Response::new(Full::new(self.body).boxed());
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

/// Builds an error in the XML format of SAP Gateway, with `innererror`
/// details as the ABAP runtime adds them.
pub(super) fn xml_error(status: StatusCode, code: &str, message: &str) -> Reply {
    let code = escape_xml(code);
    let message = escape_xml(message);
    let body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<error xmlns="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">"#,
            "<code>{code}</code>",
            r#"<message xml:lang="en">{message}</message>"#,
            "<innererror>",
            "<application><component_id/><service_namespace>/SAP/</service_namespace>",
            "<service_id>ZGW_TEST_SRV</service_id><service_version>0001</service_version>",
            "</application>",
            "<transactionid>5E1F2A3B4C5D6E7F8091A2B3C4D5E6F7</transactionid>",
            "<timestamp>20230101000000.0000000</timestamp>",
            "<Error_Resolution><SAP_Transaction>Run transaction /IWFND/ERROR_LOG on SAP ",
            "Gateway hub system and search for entries with the timestamp above for more ",
            "details</SAP_Transaction></Error_Resolution>",
            "<errordetails><errordetail><code>{code}</code><message>{message}</message>",
            "<propertyref/><severity>error</severity><target/></errordetail></errordetails>",
            "</innererror></error>"
        ),
        code = code,
        message = message,
    );
    Reply::with_body(status, XML, body)
}

/// Escapes text for XML element content and attribute values.
pub(super) fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}
