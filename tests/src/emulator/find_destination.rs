//! `GET /destination-configuration/v1/destinations/{name}`, the "find
//! destination" call of the Destination service REST API.
//!
//! Emulated: bearer token check, percent-decoding of the name, lookup at
//! instance level before subaccount level, the `owner` object, the
//! configuration without `Emulator.*` properties, and `authTokens`. Not
//! emulated: query options such as `$skipCredentials`, user-dependent
//! authentication (`X-user-token`), certificates, and the fragment and
//! tenant headers.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::access_token::TokenStatus;
use super::auth_tokens::auth_tokens;
use super::destination::DestinationLevel;
use super::http_util::{EmulatorResponse, json_response};
use super::router::EmulatorState;

/// Path prefix of the find-destination call, followed by the encoded name.
pub(crate) const FIND_DESTINATION_PREFIX: &str = "/destination-configuration/v1/destinations/";

/// Body the real service returns when no destination has the requested name.
const NOT_FOUND_MESSAGE: &str = "Configuration with the specified name was not found";

/// Handles one find-destination request. `encoded_name` is the path after
/// [`FIND_DESTINATION_PREFIX`], still percent-encoded.
pub(crate) async fn handle_find_destination(
    state: &EmulatorState,
    request: &Request<Incoming>,
    encoded_name: &str,
) -> EmulatorResponse {
    state.counters.count_destination_lookup();

    if request.method() != Method::GET {
        let mut response = error_message(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "Request method {} is not supported, use GET",
                request.method()
            ),
            encoded_name,
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
        return response;
    }

    if let Err(message) = check_bearer_token(state, request) {
        return error_message(StatusCode::UNAUTHORIZED, message, encoded_name);
    }

    // A raw "/" would mean a sub-resource, which the emulator does not serve,
    // so such a path finds nothing. An encoded "%2F" is part of the name.
    if encoded_name.contains('/') {
        return error_message(StatusCode::NOT_FOUND, NOT_FOUND_MESSAGE, encoded_name);
    }
    let Ok(name) = percent_decode_str(encoded_name).decode_utf8() else {
        return error_message(
            StatusCode::BAD_REQUEST,
            "Destination name is not valid UTF-8 after percent-decoding",
            encoded_name,
        );
    };

    let Some((level, destination)) = state.config.find_destination(&name) else {
        return error_message(StatusCode::NOT_FOUND, NOT_FOUND_MESSAGE, encoded_name);
    };
    tracing::debug!(name = %name, %level, "destination found");

    let instance_id = match level {
        DestinationLevel::Instance => Value::String(state.config.instance_id.clone()),
        DestinationLevel::Subaccount => Value::Null,
    };
    let mut body = json!({
        "owner": {
            "SubaccountId": state.config.subaccount_id,
            "InstanceId": instance_id,
        },
        "destinationConfiguration": destination.public_properties(),
    });
    if let Some(tokens) = auth_tokens(destination, &state.token_client).await {
        body["authTokens"] = Value::Array(tokens);
    }
    json_response(StatusCode::OK, &body)
}

/// Accepts the request if it carries a bearer token that this emulator issued
/// and that has not expired, and returns the 401 message otherwise.
fn check_bearer_token(
    state: &EmulatorState,
    request: &Request<Incoming>,
) -> Result<(), &'static str> {
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or("Missing Authorization header with a bearer token")?;
    match state.tokens.check(token) {
        TokenStatus::Valid => Ok(()),
        TokenStatus::Expired => Err("Access token has expired"),
        TokenStatus::Unknown => Err(
            "Access token is unknown: this emulator did not issue it, or it expired more than 10 minutes ago",
        ),
    }
}

/// Builds the `{"ErrorMessage": ...}` body the Destination service uses for
/// errors, and logs the rejection with the still-encoded destination name.
fn error_message(status: StatusCode, message: &str, encoded_name: &str) -> EmulatorResponse {
    tracing::info!(%status, encoded_name, message, "find-destination request rejected");
    json_response(status, &json!({ "ErrorMessage": message }))
}
