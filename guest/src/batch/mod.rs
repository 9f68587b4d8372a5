//! OData `$batch` bodies in the `multipart/mixed` format of OData V2 and V4
//! (RFC 2046 section 5.1): the gateway rewrites the request targets in a
//! client's batch and the links in the backend's batch response.
//!
//! Only the bytes that must change are changed. The parser records offsets
//! into the original body, a rewrite is a list of replacements at those
//! offsets, and every other byte is copied unchanged: line ends, transport
//! padding, preamble, epilogue, part headers, `Content-ID`s, status lines and
//! the changeset structure. A `Content-Length` that counts a changed body is
//! changed by the number of bytes added or removed.
//!
//! - Requests ([`rewrite_request`]): an inner request target that addresses
//!   the gateway's service root becomes a path relative to that root, which
//!   means the same resource at the backend. A target outside the service
//!   root is an error, so that a batch cannot reach another service.
//! - Responses ([`rewrite_response`]): `Location` and `Content-Location`
//!   values and the bodies of inner responses go through the link map of
//!   [`crate::links`]. On an error the caller returns the backend's body
//!   unchanged.
//!
//! The parser rejects what it could misread: a missing close delimiter, a
//! header line that is not a `Name: value` field, a part with two
//! `Content-Type` fields, an `application/http` part without an HTTP
//! message, and a changeset inside a changeset. It accepts what producers
//! differ in: CRLF or bare LF line ends (mixed in one body), transport
//! padding after a delimiter, and a message that ends without an empty line
//! before the next delimiter line. Requests are parsed more strictly,
//! because a part that the backend reads differently could carry an
//! unchecked target. There a line that starts like a delimiter without
//! being one, and a part that is neither `application/http` nor a
//! changeset, are errors as well.

mod content_type;
mod edit;
mod error;
mod header;
mod lines;
mod message;
pub mod multipart;
mod request;
mod response;
mod service_root;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod test_support;

pub use content_type::boundary;
pub use error::{BatchError, PartNumber};
pub use header::Header;
pub use message::HttpMessage;
pub use request::rewrite_request;
pub use response::rewrite_response;
pub use service_root::ServiceRoot;
