//! Shared state of a running emulator and the dispatch of requests to the
//! emulated endpoints.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::access_token::IssuedTokens;
use super::config::EmulatorConfig;
use super::find_destination::{FIND_DESTINATION_PREFIX, handle_find_destination};
use super::http_util::{EmulatorResponse, json_response};
use super::stats::Counters;
use super::token_client::TokenClient;
use super::token_endpoint::handle_token_request;

/// Path of the XSUAA token endpoint.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";

/// Path of the emulator-only counters endpoint.
pub(crate) const STATS_PATH: &str = "/_emulator/stats";

/// State shared by all connections of one emulator.
#[derive(Debug)]
pub(crate) struct EmulatorState {
    /// Validated configuration with `${EMULATOR_URL}` already replaced.
    pub config: EmulatorConfig,
    /// Base URL such as `http://127.0.0.1:40123`, without a trailing slash.
    pub base_url: String,
    pub tokens: IssuedTokens,
    pub counters: Counters,
    pub token_client: TokenClient,
}

/// Routes one request to its endpoint by path. The query string is ignored.
pub(crate) async fn route(state: &EmulatorState, request: Request<Incoming>) -> EmulatorResponse {
    let path = request.uri().path().to_owned();
    tracing::debug!(method = %request.method(), path, "request");

    if path == TOKEN_PATH {
        return handle_token_request(state, request).await;
    }
    if let Some(encoded_name) = path.strip_prefix(FIND_DESTINATION_PREFIX) {
        return handle_find_destination(state, &request, encoded_name).await;
    }
    if path == STATS_PATH {
        let stats = state.counters.snapshot();
        let body = json!({
            "token_requests": stats.token_requests,
            "destination_lookups": stats.destination_lookups,
        });
        return json_response(StatusCode::OK, &body);
    }
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "error": "not_found",
            "error_description": format!("The emulator has no endpoint at {path}"),
        }),
    )
}
