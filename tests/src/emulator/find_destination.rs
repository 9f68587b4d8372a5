//! `GET /destination-configuration/v1/destinations/{name}`, the "find
//! destination" call of the Destination service REST API.
//!
//! Emulated: the bearer token check, whose `zid` selects the tenant (a
//! subscriber token finds only that subscriber's destinations, every other
//! token the provider's); percent-decoding of the name; lookup at instance
//! level before subaccount level; the `owner` object; the configuration
//! without `Emulator.*` properties; `authTokens` (see [`auth_tokens`](super::auth_tokens)),
//! with the user from `X-user-token` or, when that header is missing or
//! empty, from a user token in `Authorization`, and the refresh token from
//! `X-refresh-token`; `certificates`; and `$skipTokenRetrieval=true`, which
//! omits `authTokens`. Falling back from a subscriber to the provider is the
//! caller's job, as in the SAP Cloud SDK. Not emulated: `$skipCredentials`,
//! destination fragments (`X-fragment-name`), `X-tenant`, and chains.
//!
//! Sources: the "Find Destination" response structure and the OAuth JWT
//! bearer pages of the SAP BTP Connectivity documentation
//! (`SAP-docs/btp-connectivity`, files `find-destination-response-structure-83a3f3b.md`
//! and `exchanging-user-jwts-via-oauth2jwtbearer-destinations-39d4265.md`),
//! and the headers `@sap-cloud-sdk/connectivity` sends
//! (`packages/connectivity/src/scp-cf/destination/destination-service.ts`).

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::access_token::{TokenRejection, VerifiedToken};
use super::auth_tokens::{CallerUser, LookupContext, auth_tokens, certificates};
use super::destination::DestinationLevel;
use super::http_util::{EmulatorResponse, json_response};
use super::router::EmulatorState;
use super::tenant::Zone;

/// Header with the user token for user-based authentication types.
pub(crate) const USER_TOKEN_HEADER: &str = "x-user-token";

/// Header with the refresh token for `OAuth2RefreshToken` destinations.
pub(crate) const REFRESH_TOKEN_HEADER: &str = "x-refresh-token";

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

    let caller = match check_bearer_token(state, request) {
        Ok(caller) => caller,
        Err(message) => return error_message(StatusCode::UNAUTHORIZED, &message, encoded_name),
    };
    let zone = state.config.zone_or_provider(&caller.zone_id);

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

    let Some((level, destination)) = zone.find_destination(&name) else {
        return error_message(StatusCode::NOT_FOUND, NOT_FOUND_MESSAGE, encoded_name);
    };
    tracing::debug!(name = %name, %level, zone_id = zone.zone_id, "destination found");

    let mut body = json!({
        "owner": owner(state, &zone, level),
        "destinationConfiguration": destination.public_properties(),
    });
    if !skips_token_retrieval(request) {
        let context = LookupContext {
            state,
            zone,
            user: caller_user(state, request, &caller),
            refresh_token: header_text(request, REFRESH_TOKEN_HEADER),
        };
        if let Some(tokens) = auth_tokens(destination, &context).await {
            body["authTokens"] = Value::Array(tokens);
        }
    }
    if let Some(certificates) = certificates(destination, &zone) {
        body["certificates"] = Value::Array(certificates);
    }
    json_response(StatusCode::OK, &body)
}

/// Builds the `owner` object: the zone's subaccount and, for instance
/// destinations, the service instance.
pub(crate) fn owner(state: &EmulatorState, zone: &Zone<'_>, level: DestinationLevel) -> Value {
    let instance_id = match level {
        DestinationLevel::Instance => Value::String(state.config.instance_id.clone()),
        DestinationLevel::Subaccount => Value::Null,
    };
    json!({ "SubaccountId": zone.zone_id, "InstanceId": instance_id })
}

/// Returns the caller's user: from `X-user-token` if sent and not empty,
/// else from the bearer token if that is a user token.
fn caller_user(
    state: &EmulatorState,
    request: &Request<Incoming>,
    caller: &VerifiedToken,
) -> CallerUser {
    match header_text(request, USER_TOKEN_HEADER) {
        Some(user_token) => match state.verify_token(user_token) {
            Ok(verified) if verified.user.is_some() => CallerUser::Present(Box::new(verified)),
            Ok(_) => CallerUser::Invalid(
                "the X-user-token header holds a client token, not a user token".to_owned(),
            ),
            Err(rejection) => CallerUser::Invalid(format!("X-user-token is invalid: {rejection}")),
        },
        None if caller.user.is_some() => CallerUser::Present(Box::new(caller.clone())),
        None => CallerUser::Missing,
    }
}

/// Returns a header's value as trimmed text, or `None` if it is missing,
/// empty or not visible ASCII.
pub(crate) fn header_text<'a>(request: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// Returns whether the query has `$skipTokenRetrieval=true`.
fn skips_token_retrieval(request: &Request<Incoming>) -> bool {
    request.uri().query().is_some_and(|query| {
        form_urlencoded::parse(query.as_bytes())
            .any(|(key, value)| key == "$skipTokenRetrieval" && value == "true")
    })
}

/// Accepts the request if it carries a bearer token that this emulator
/// issued and that has not expired, and returns the 401 message otherwise.
pub(crate) fn check_bearer_token(
    state: &EmulatorState,
    request: &Request<Incoming>,
) -> Result<VerifiedToken, String> {
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| "Missing Authorization header with a bearer token".to_owned())?;
    state
        .verify_token(token)
        .map_err(|rejection| match rejection {
            TokenRejection::Expired => "Access token has expired".to_owned(),
            other => other.to_string(),
        })
}

/// Builds the `{"ErrorMessage": ...}` body the Destination service uses for
/// errors, and logs the rejection with the still-encoded destination name.
pub(crate) fn error_message(
    status: StatusCode,
    message: &str,
    encoded_name: &str,
) -> EmulatorResponse {
    tracing::info!(%status, encoded_name, message, "find-destination request rejected");
    json_response(status, &json!({ "ErrorMessage": message }))
}
