//! Parsing of gateway paths of the form `/odata/{destination}/{service path}?{query}`.
//!
//! The destination segment is percent-decoded once, to name the destination
//! in messages and to re-encode it for the host's reserved address. The
//! service path and query are kept as the exact bytes the client sent: OData
//! keys such as `Books('A%2FB''1')` must reach the backend unchanged, so
//! nothing here decodes or normalises them.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The path prefix under which the gateway serves OData services.
pub const ODATA_PREFIX: &str = "/odata/";

/// The authority the host reserves for destinations.
pub const DESTINATION_AUTHORITY: &str = "destination.invalid";

/// Characters that must be percent-encoded in one RFC 3986 path segment.
/// Everything but unreserved characters and sub-delimiters is encoded, and
/// `%` too, so that the host's single decode returns the name unchanged.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// A client request path split into the destination and what to send it.
#[derive(Debug, PartialEq, Eq)]
pub struct Route<'a> {
    /// The decoded destination name, case preserved.
    pub destination: String,
    /// The path and query to request from the destination, exactly as the
    /// client sent them: empty, or starting with `/` or `?`.
    pub service_path_and_query: &'a str,
}

/// The reason a path is not a gateway route.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The path does not start with `/odata/`.
    NotUnderPrefix,
    /// `/odata/` is not followed by a destination name.
    MissingDestination,
    /// The destination segment has a malformed `%` escape or does not
    /// decode to UTF-8 text.
    InvalidDestinationEncoding,
}

impl<'a> Route<'a> {
    /// Parses a path with optional query, as found in the request line.
    pub fn parse(path_with_query: &'a str) -> Result<Self, RouteError> {
        let rest = path_with_query
            .strip_prefix(ODATA_PREFIX)
            .ok_or(RouteError::NotUnderPrefix)?;

        // The destination segment ends at the next `/`, or at the query when
        // the client addressed the destination root (`/odata/Dest?x=1`).
        let segment_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (segment, remainder) = rest.split_at(segment_end);
        if segment.is_empty() {
            return Err(RouteError::MissingDestination);
        }

        if !is_strictly_percent_encoded(segment) {
            return Err(RouteError::InvalidDestinationEncoding);
        }
        let destination = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| RouteError::InvalidDestinationEncoding)?
            .into_owned();
        if destination.is_empty() {
            return Err(RouteError::MissingDestination);
        }

        let service_path_and_query = remainder;
        Ok(Route {
            destination,
            service_path_and_query,
        })
    }

    /// Returns the path and query of the request to the host's reserved
    /// destination address: the encoded name as the first segment, then the
    /// service path.
    pub fn outbound_path_and_query(&self) -> String {
        let name = utf8_percent_encode(&self.destination, PATH_SEGMENT);
        format!("/{name}{}", self.service_path_and_query)
    }

    /// Returns the destination name as one percent-encoded path segment.
    pub fn encoded_destination(&self) -> String {
        utf8_percent_encode(&self.destination, PATH_SEGMENT).to_string()
    }

    /// Returns the service path without the query, to recognise `$metadata`.
    pub fn service_path(&self) -> &str {
        let end = self
            .service_path_and_query
            .find('?')
            .unwrap_or(self.service_path_and_query.len());
        &self.service_path_and_query[..end]
    }

    /// Returns the raw query string without the leading `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.service_path_and_query
            .split_once('?')
            .map(|(_, query)| query)
    }
}

/// Returns whether every `%` starts a two-digit hex escape. The decoder
/// would pass a lone `%` through, which hides a client's encoding mistake.
fn is_strictly_percent_encoded(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let escape = bytes.get(index + 1..index + 3);
            if !escape.is_some_and(|digits| digits.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            index += 3;
        } else {
            index += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(path: &str) -> Route<'_> {
        match Route::parse(path) {
            Ok(route) => route,
            Err(error) => panic!("{path} did not parse: {error:?}"),
        }
    }

    #[test]
    fn keeps_encoded_key_bytes() {
        let route = parse("/odata/CAP/odata/v4/catalog/Books('A%2FB''1')?$select=ID");
        assert_eq!(route.destination, "CAP");
        assert_eq!(
            route.service_path_and_query,
            "/odata/v4/catalog/Books('A%2FB''1')?$select=ID"
        );
        assert_eq!(route.service_path(), "/odata/v4/catalog/Books('A%2FB''1')");
        assert_eq!(route.query(), Some("$select=ID"));
    }

    #[test]
    fn keeps_doubled_quotes_encoded() {
        let path = "/odata/d/Books?$filter=title%20eq%20%27O%27%27Brien%27";
        let route = parse(path);
        assert_eq!(
            route.service_path_and_query,
            "/Books?$filter=title%20eq%20%27O%27%27Brien%27"
        );
        assert_eq!(
            route.outbound_path_and_query(),
            "/d/Books?$filter=title%20eq%20%27O%27%27Brien%27"
        );
    }

    #[test]
    fn decodes_destination_name_once() {
        let route = parse("/odata/My%20Dest%2Fv2%25/Books");
        assert_eq!(route.destination, "My Dest/v2%");
        assert_eq!(route.outbound_path_and_query(), "/My%20Dest%2Fv2%25/Books");
    }

    #[test]
    fn keeps_destination_case_and_unicode() {
        let route = parse("/odata/S4_Hana%C3%84/x");
        assert_eq!(route.destination, "S4_HanaÄ");
        assert_eq!(route.outbound_path_and_query(), "/S4_Hana%C3%84/x");
    }

    #[test]
    fn destination_root_keeps_its_form() {
        assert_eq!(parse("/odata/Dest").service_path_and_query, "");
        assert_eq!(parse("/odata/Dest").outbound_path_and_query(), "/Dest");
        assert_eq!(parse("/odata/Dest/").service_path_and_query, "/");
        assert_eq!(parse("/odata/Dest/").outbound_path_and_query(), "/Dest/");
    }

    #[test]
    fn destination_root_with_query() {
        let route = parse("/odata/Dest?sap-language=DE");
        assert_eq!(route.service_path_and_query, "?sap-language=DE");
        assert_eq!(route.outbound_path_and_query(), "/Dest?sap-language=DE");
        assert_eq!(route.service_path(), "");
    }

    #[test]
    fn rejects_other_paths() {
        assert_eq!(Route::parse("/"), Err(RouteError::NotUnderPrefix));
        assert_eq!(Route::parse("/odata"), Err(RouteError::NotUnderPrefix));
        assert_eq!(Route::parse("/other/x"), Err(RouteError::NotUnderPrefix));
    }

    #[test]
    fn rejects_missing_destination() {
        assert_eq!(Route::parse("/odata/"), Err(RouteError::MissingDestination));
        assert_eq!(
            Route::parse("/odata//Books"),
            Err(RouteError::MissingDestination)
        );
        assert_eq!(
            Route::parse("/odata/?x=1"),
            Err(RouteError::MissingDestination)
        );
    }

    #[test]
    fn rejects_malformed_escapes() {
        for path in ["/odata/%ZZ/x", "/odata/%/x", "/odata/a%2/x", "/odata/%G1"] {
            assert_eq!(
                Route::parse(path),
                Err(RouteError::InvalidDestinationEncoding),
                "{path}"
            );
        }
        assert!(Route::parse("/odata/a%2Fb/x").is_ok());
    }

    #[test]
    fn rejects_invalid_utf8_name() {
        assert_eq!(
            Route::parse("/odata/%FF%FE/Books"),
            Err(RouteError::InvalidDestinationEncoding)
        );
    }
}
