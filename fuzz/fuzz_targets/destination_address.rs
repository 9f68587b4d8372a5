//! Fuzzes `DestinationAddress::parse`, which reads the reserved address a
//! guest sends its outgoing requests to. The input is parsed as an
//! `http::Uri` first, as wasmtime-wasi-http does with the guest's request.
//!
//! Invariants: only the reserved authority yields an address, its name is
//! non-empty, and its path and query is empty or starts with `/` or `?`,
//! and is the unchanged end of the URI's path and query.

#![no_main]

use btp_gateway::outbound::{DESTINATION_AUTHORITY, DestinationAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = http::Uri::try_from(data) else {
        return;
    };
    let is_reserved = uri
        .authority()
        .is_some_and(|authority| authority.as_str().eq_ignore_ascii_case(DESTINATION_AUTHORITY));

    let address = match DestinationAddress::parse(&uri) {
        Ok(Some(address)) => address,
        Ok(None) => {
            assert!(!is_reserved, "{uri}: the reserved authority yielded no address");
            return;
        }
        Err(_) => {
            assert!(is_reserved, "{uri}: an error for another authority");
            return;
        }
    };

    assert!(is_reserved, "{uri}: another authority yielded an address");
    assert!(!address.name.is_empty(), "{uri}: empty destination name");
    let rest = &address.path_and_query;
    assert!(
        rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        "{uri}: path and query {rest:?} starts with neither / nor ?"
    );
    let uri_path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    assert!(
        uri_path_and_query.ends_with(rest.as_str()),
        "{uri}: path and query {rest:?} is not the end of {uri_path_and_query:?}"
    );
});
