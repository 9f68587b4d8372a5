//! The allow-lists of headers that cross the gateway, one per direction.
//!
//! A header that is not listed is dropped. That keeps hop-by-hop headers,
//! cookies and the client's credentials away from the backend, and backend
//! internals (`set-cookie`, server banners) away from the client. The
//! backend's `www-authenticate` is dropped too: the destination supplies the
//! credentials, so a browser must not prompt its user for them. Values are copied as bytes, so non-ASCII values such
//! as a JSON `sap-message` with umlauts arrive unchanged.

/// Request headers passed from the client to the backend.
const REQUEST_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "isolation",
    "odata-isolation",
    "prefer",
    "odata-version",
    "odata-maxversion",
    "dataserviceversion",
    "maxdataserviceversion",
    "sap-cancel-on-close",
    "sap-contextid-accept",
    "sap-contextid",
    "sap-language",
    "x-http-method",
];

/// Response headers passed from the backend to the client.
const RESPONSE_HEADERS: &[&str] = &[
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "dataserviceversion",
    "etag",
    "expires",
    "last-modified",
    "odata-entityid",
    "odata-version",
    "preference-applied",
    "retry-after",
    "sap-contextid",
    "sap-message",
    "sap-messages",
    "sap-metadata-last-modified",
    "vary",
];

/// Returns the client's `Accept-Encoding` reduced to the codings the
/// gateway can decode when it must rewrite links: `gzip`, `deflate` and
/// `identity`. `None` when none of them is left, so the backend sends the
/// body uncompressed.
pub fn supported_accept_encoding(client_value: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(client_value);
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let coding = item.split(';').next().unwrap_or_default().trim();
            ["gzip", "deflate", "identity"]
                .iter()
                .any(|supported| coding.eq_ignore_ascii_case(supported))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join(", ").into_bytes())
}

/// Returns whether a client request header is forwarded to the backend.
/// `name` must be lowercase, as `wasi:http` field names are.
pub fn forwards_request_header(name: &str) -> bool {
    REQUEST_HEADERS.contains(&name)
}

/// Returns whether a backend response header is returned to the client.
/// `content-length` is handled separately because it must be dropped for
/// `HEAD`, where no body follows.
pub fn returns_response_header(name: &str) -> bool {
    RESPONSE_HEADERS.contains(&name)
}

/// The `Accept` header to send when the client chose no format.
///
/// The client chose a format when it sent `$format` or an `Accept` header
/// other than `*/*`. Otherwise the gateway requests JSON, which SAPUI5 and
/// the SAP Cloud SDK expect, except for `$metadata` (XML is its only format
/// in OData V2, and the CSDL XML every V4 client reads), `$value` (raw
/// media of any type) and `$batch` (whose `multipart/mixed` response a JSON
/// `Accept` would turn into a JSON batch in OData V4).
pub fn default_accept(
    service_path: &str,
    query: Option<&str>,
    client_accept: Option<&[u8]>,
) -> Option<&'static str> {
    let client_chose_accept = client_accept.is_some_and(|value| value.trim_ascii() != b"*/*");
    if client_chose_accept || query.is_some_and(has_format_option) {
        return None;
    }

    if service_path.ends_with("/$metadata") {
        Some("application/xml")
    } else if service_path.ends_with("/$value") || service_path.ends_with("/$batch") {
        None
    } else {
        Some("application/json")
    }
}

/// Returns whether the query sets the `$format` system query option, in
/// either its literal or its percent-encoded spelling.
fn has_format_option(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        name == "$format" || name.eq_ignore_ascii_case("%24format")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_not_forwarded() {
        for name in [
            "authorization",
            "cookie",
            "proxy-authorization",
            "x-csrf-token",
            "host",
        ] {
            assert!(
                !forwards_request_header(name),
                "{name} must not be forwarded"
            );
        }
    }

    #[test]
    fn odata_headers_are_forwarded() {
        for name in [
            "accept",
            "prefer",
            "odata-maxversion",
            "sap-language",
            "if-none-match",
        ] {
            assert!(forwards_request_header(name), "{name} must be forwarded");
        }
    }

    #[test]
    fn accept_encoding_keeps_decodable_codings() {
        assert_eq!(
            supported_accept_encoding(b"gzip, deflate, br, zstd"),
            Some(b"gzip, deflate".to_vec())
        );
        assert_eq!(
            supported_accept_encoding(b"GZIP;q=0.5, br"),
            Some(b"GZIP;q=0.5".to_vec())
        );
        assert_eq!(supported_accept_encoding(b"br"), None);
    }

    #[test]
    fn backend_cookies_stay_behind() {
        assert!(!returns_response_header("set-cookie"));
        assert!(!returns_response_header("server"));
        assert!(returns_response_header("sap-messages"));
        assert!(returns_response_header("etag"));
    }

    #[test]
    fn json_unless_client_chose() {
        assert_eq!(
            default_accept("/Books", None, None),
            Some("application/json")
        );
        assert_eq!(
            default_accept("/Books", None, Some(b"*/*")),
            Some("application/json")
        );
        assert_eq!(
            default_accept("/Books", None, Some(b"application/atom+xml")),
            None
        );
        assert_eq!(
            default_accept("/Books", Some("$top=1&$format=xml"), None),
            None
        );
        assert_eq!(default_accept("/Books", Some("%24format=json"), None), None);
        assert_eq!(
            default_accept("/Books", Some("$formatx=1"), Some(b" */* ")),
            Some("application/json")
        );
    }

    #[test]
    fn metadata_and_media_defaults() {
        assert_eq!(
            default_accept("/svc/$metadata", None, None),
            Some("application/xml")
        );
        assert_eq!(default_accept("/svc/Photos(1)/$value", None, None), None);
        assert_eq!(default_accept("/svc/$batch", None, None), None);
    }
}
