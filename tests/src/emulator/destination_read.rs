//! The v1 read APIs of the Destination service, which return stored
//! configurations without computing auth tokens:
//!
//! - `GET /destination-configuration/v1/instanceDestinations[/{name}]`
//! - `GET /destination-configuration/v1/subaccountDestinations[/{name}]`
//! - `GET /destination-configuration/v1/instanceCertificates[/{name}]`
//! - `GET /destination-configuration/v1/subaccountCertificates[/{name}]`
//!
//! Without a name they return a JSON array, with a name the single object
//! or 404 `{"ErrorMessage": ...}`. A destination is its flat property object
//! (without `Emulator.*` properties), a certificate is `{"Name", "Type":
//! "CERTIFICATE", "Content"}`. The bearer token's `zid` selects the tenant
//! as in find-destination. The emulator keeps one certificate list per zone,
//! so both certificate paths return the same certificates. Not emulated:
//! the create, update and delete calls, `$filter` and paging.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::config::CertificateConfig;
use super::destination::DestinationLevel;
use super::find_destination::{check_bearer_token, error_message};
use super::http_util::{EmulatorResponse, json_response};
use super::router::EmulatorState;
use super::stats::Counter;

/// Common prefix of the Destination service v1 paths.
pub(crate) const V1_PREFIX: &str = "/destination-configuration/v1/";

/// Collection a read request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Collection {
    Destinations(DestinationLevel),
    Certificates,
}

/// Returns the collection and the still-encoded name (if any) of a read API
/// path, or `None` if the path is not one of them.
fn parse_path(path: &str) -> Option<(Collection, Option<&str>)> {
    let rest = path.strip_prefix(V1_PREFIX)?;
    let (collection_name, name) = match rest.split_once('/') {
        Some((collection_name, name)) => (collection_name, Some(name)),
        None => (rest, None),
    };
    let collection = match collection_name {
        "instanceDestinations" => Collection::Destinations(DestinationLevel::Instance),
        "subaccountDestinations" => Collection::Destinations(DestinationLevel::Subaccount),
        "instanceCertificates" | "subaccountCertificates" => Collection::Certificates,
        _ => return None,
    };
    Some((collection, name))
}

/// Returns whether `path` is one of the read APIs.
pub(crate) fn is_read_path(path: &str) -> bool {
    parse_path(path).is_some()
}

/// Handles one read API request.
pub(crate) fn handle_read(
    state: &EmulatorState,
    request: &Request<Incoming>,
    path: &str,
) -> EmulatorResponse {
    let Some((collection, encoded_name)) = parse_path(path) else {
        return error_message(StatusCode::NOT_FOUND, "Unknown path", path);
    };
    state.counters.count(match collection {
        Collection::Destinations(_) => Counter::DestinationReads,
        Collection::Certificates => Counter::CertificateReads,
    });

    if request.method() != Method::GET {
        let mut response = error_message(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "Request method {} is not supported by the emulator, use GET",
                request.method()
            ),
            path,
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
        return response;
    }
    let caller = match check_bearer_token(state, request) {
        Ok(caller) => caller,
        Err(message) => return error_message(StatusCode::UNAUTHORIZED, &message, path),
    };
    let zone = state.config.zone_or_provider(&caller.zone_id);

    let name = match encoded_name.filter(|name| !name.is_empty()) {
        None => None,
        Some(encoded) if encoded.contains('/') => {
            return not_found(collection, path);
        }
        Some(encoded) => match percent_decode_str(encoded).decode_utf8() {
            Ok(name) => Some(name.into_owned()),
            Err(_) => {
                return error_message(
                    StatusCode::BAD_REQUEST,
                    "Name is not valid UTF-8 after percent-decoding",
                    path,
                );
            }
        },
    };

    match (collection, name) {
        (Collection::Destinations(level), None) => {
            let destinations: Vec<Value> = zone
                .destinations(level)
                .iter()
                .map(|destination| json!(destination.public_properties()))
                .collect();
            json_response(StatusCode::OK, &Value::Array(destinations))
        }
        (Collection::Destinations(level), Some(name)) => zone
            .destinations(level)
            .iter()
            .find(|destination| destination.name() == name)
            .map_or_else(
                || not_found(collection, path),
                |destination| {
                    json_response(StatusCode::OK, &json!(destination.public_properties()))
                },
            ),
        (Collection::Certificates, None) => {
            let certificates: Vec<Value> = zone.certificates.iter().map(certificate_json).collect();
            json_response(StatusCode::OK, &Value::Array(certificates))
        }
        (Collection::Certificates, Some(name)) => zone.certificate(&name).map_or_else(
            || not_found(collection, path),
            |certificate| json_response(StatusCode::OK, &certificate_json(certificate)),
        ),
    }
}

/// Returns a certificate in the shape of the read API.
fn certificate_json(certificate: &CertificateConfig) -> Value {
    json!({
        "Name": certificate.name,
        "Type": "CERTIFICATE",
        "Content": certificate.content_base64,
    })
}

fn not_found(collection: Collection, path: &str) -> EmulatorResponse {
    let message = match collection {
        Collection::Destinations(_) => "Configuration with the specified name was not found",
        Collection::Certificates => "Certificate with the specified name was not found",
    };
    error_message(StatusCode::NOT_FOUND, message, path)
}
