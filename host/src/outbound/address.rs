//! The reserved address by which a guest names a destination:
//! `http://destination.invalid/{percent-encoded name}/{path}?{query}`.
//!
//! `.invalid` is a reserved top-level domain (RFC 2606), so the address can
//! never reach a real host by mistake. The name travels in the first path
//! segment because destination names are case-sensitive and may contain
//! characters that host names cannot carry.

use http::Uri;
use percent_encoding::percent_decode_str;

/// The authority reserved for destinations.
pub const DESTINATION_AUTHORITY: &str = "destination.invalid";

/// A request addressed to a destination.
#[derive(Debug, PartialEq, Eq)]
pub struct DestinationAddress {
    /// The decoded destination name.
    pub name: String,
    /// The path and query to request relative to the destination URL, byte
    /// for byte as the guest sent them: empty, or starting with `/` or `?`.
    pub path_and_query: String,
}

/// The reason a reserved address is malformed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the destination address has no destination name in its first path segment")]
    MissingName,
    #[error("the destination name is not valid percent-encoded UTF-8")]
    InvalidName,
}

impl DestinationAddress {
    /// Returns the destination address in `uri`, `Ok(None)` when the URI
    /// has another authority.
    pub fn parse(uri: &Uri) -> Result<Option<Self>, AddressError> {
        let is_reserved = uri.authority().is_some_and(|authority| {
            authority
                .as_str()
                .eq_ignore_ascii_case(DESTINATION_AUTHORITY)
        });
        if !is_reserved {
            return Ok(None);
        }

        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let rest = path_and_query.strip_prefix('/').unwrap_or(path_and_query);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (segment, remainder) = rest.split_at(end);
        if segment.is_empty() {
            return Err(AddressError::MissingName);
        }
        let name = percent_decode_str(segment)
            .decode_utf8()
            .map_err(|_| AddressError::InvalidName)?
            .into_owned();

        let path_and_query = remainder.to_owned();
        Ok(Some(Self {
            name,
            path_and_query,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Result<Option<DestinationAddress>, AddressError> {
        let uri: Uri = uri.parse().unwrap_or_else(|error| panic!("{uri}: {error}"));
        DestinationAddress::parse(&uri)
    }

    #[test]
    fn splits_name_and_keeps_rest() {
        let address = parse("http://destination.invalid/My%20Dest/Books('A%2FB''1')?$top=1");
        assert_eq!(
            address,
            Ok(Some(DestinationAddress {
                name: "My Dest".to_owned(),
                path_and_query: "/Books('A%2FB''1')?$top=1".to_owned(),
            }))
        );
    }

    #[test]
    fn root_and_query_only() {
        let root = parse("http://destination.invalid/Dest").ok().flatten();
        assert_eq!(root.map(|a| a.path_and_query).as_deref(), Some(""));
        let slash = parse("http://destination.invalid/Dest/").ok().flatten();
        assert_eq!(slash.map(|a| a.path_and_query).as_deref(), Some("/"));
        let query = parse("http://destination.invalid/Dest?x=1").ok().flatten();
        assert_eq!(query.map(|a| a.path_and_query).as_deref(), Some("?x=1"));
    }

    #[test]
    fn other_authorities_are_not_destinations() {
        assert_eq!(parse("http://example.invalid/Dest/x"), Ok(None));
        assert_eq!(parse("http://destination.invalid.example/Dest/x"), Ok(None));
        assert_eq!(parse("http://destination.invalid:8080/Dest/x"), Ok(None));
    }

    #[test]
    fn malformed_names() {
        assert_eq!(
            parse("http://destination.invalid/"),
            Err(AddressError::MissingName)
        );
        assert_eq!(
            parse("http://destination.invalid//x"),
            Err(AddressError::MissingName)
        );
        assert_eq!(
            parse("http://destination.invalid/%C3%28/x"),
            Err(AddressError::InvalidName)
        );
    }
}
