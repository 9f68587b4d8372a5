//! Fuzzes the guest's `Route::parse` and the accessors of its result.
//!
//! Invariants: the service path and the query put back together give the
//! service path and query, and the outbound path keeps it unchanged after
//! the encoded name. The guest receives only valid request paths (an
//! `http::uri::PathAndQuery`). For those, the outbound address also parses
//! as an `http::Uri`, and the host's `DestinationAddress::parse` returns the
//! same destination name and service path and query. So the name survives
//! the guest's percent-encoding and the host's single decode.

#![no_main]

use btp_gateway::outbound::{DESTINATION_AUTHORITY, DestinationAddress};
use btp_gateway_guest::route::Route;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    check_route(path);

    // The guest receives the path as hyper parsed it, which is a valid
    // path and query without a fragment.
    if let Ok(request_path) = http::uri::PathAndQuery::try_from(path) {
        if let Some(route) = check_route(request_path.as_str()) {
            check_host_reads_route(&route);
        }
    }
});

/// Parses `path` and checks the route's accessors against each other.
fn check_route(path: &str) -> Option<Route<'_>> {
    let route = Route::parse(path).ok()?;
    let service_path_and_query = route.service_path_and_query;
    assert!(!route.destination.is_empty(), "{path:?}: empty destination");
    assert!(
        service_path_and_query.is_empty()
            || service_path_and_query.starts_with('/')
            || service_path_and_query.starts_with('?'),
        "{path:?}: service path and query {service_path_and_query:?} starts with neither / nor ?"
    );

    let service_path = route.service_path();
    assert!(!service_path.contains('?'), "{path:?}: service path has a '?'");
    let rejoined = match route.query() {
        Some(query) => format!("{service_path}?{query}"),
        None => service_path.to_owned(),
    };
    assert_eq!(rejoined, service_path_and_query, "{path:?}: path and query split");

    let outbound = route.outbound_path_and_query();
    assert!(
        outbound.starts_with('/') && outbound.ends_with(service_path_and_query),
        "{path:?}: outbound path {outbound:?} does not end in the service path and query"
    );
    Some(route)
}

/// Checks that the host reads the address the guest sends for `route` as
/// the same destination and service path.
fn check_host_reads_route(route: &Route<'_>) {
    let outbound = route.outbound_path_and_query();
    let address = format!("http://{DESTINATION_AUTHORITY}{outbound}");
    let uri = match http::Uri::try_from(address.as_str()) {
        Ok(uri) => uri,
        Err(error) => panic!("outbound address {address:?} is not a valid URI: {error}"),
    };
    assert_eq!(
        uri.path_and_query().map(|pq| pq.as_str()),
        Some(outbound.as_str()),
        "the URI changed the outbound path"
    );

    match DestinationAddress::parse(&uri) {
        Ok(Some(parsed)) => {
            assert_eq!(parsed.name, route.destination, "{address:?}: name changed");
            assert_eq!(
                parsed.path_and_query, route.service_path_and_query,
                "{address:?}: service path and query changed"
            );
        }
        other => panic!("{address:?}: the host did not read a destination: {other:?}"),
    }
}
