//! Shared state of a running emulator and the dispatch of requests to the
//! emulated endpoints.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use super::access_token::{
    TOKEN_KEYS_PATH, TOKEN_PATH, TokenRejection, VerifiedToken, verify_access_token,
};
use super::config::EmulatorConfig;
use super::destination_read::{handle_read, is_read_path};
use super::find_destination::{FIND_DESTINATION_PREFIX, handle_find_destination};
use super::http_util::{EmulatorResponse, json_response};
use super::refresh_tokens::RefreshTokens;
use super::saml_assertion::SamlAssertions;
use super::signing_key::TokenSigner;
use super::stats::{Counter, Counters};
use super::token_client::TokenClient;
use super::token_endpoint::handle_token_request;

/// Path of the emulator-only counters endpoint.
pub(crate) const STATS_PATH: &str = "/_emulator/stats";

/// State shared by all connections of one emulator.
#[derive(Debug)]
pub(crate) struct EmulatorState {
    /// Validated configuration with `${EMULATOR_URL}` already replaced.
    pub config: EmulatorConfig,
    /// Base URL such as `http://127.0.0.1:40123`, without a trailing slash.
    pub base_url: String,
    pub signer: TokenSigner,
    pub refresh_tokens: RefreshTokens,
    pub saml_assertions: SamlAssertions,
    pub counters: Counters,
    pub token_client: TokenClient,
    /// HTTP client of the connectivity proxy, which only reaches the
    /// validated 127.0.0.1 targets of `virtual_hosts`.
    pub forward_client: Client<HttpConnector, Full<Bytes>>,
}

impl EmulatorState {
    /// Verifies a bearer token against this emulator's key and issuer.
    pub(crate) fn verify_token(&self, token: &str) -> Result<VerifiedToken, TokenRejection> {
        verify_access_token(&self.signer, &self.base_url, token)
    }
}

/// Listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    /// The plain HTTP listener at [`EmulatorState::base_url`].
    Http,
    /// The mutual-TLS listener for the token endpoint (`certurl`).
    CertUrl,
}

/// Facts about the connection of a request.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionInfo {
    pub listener: ListenerKind,
    /// DER of the client's end-entity certificate, on the mutual-TLS
    /// listener when the client sent one.
    pub client_certificate: Option<Vec<u8>>,
}

impl ConnectionInfo {
    /// A connection to the plain HTTP listener.
    pub(crate) const HTTP: ConnectionInfo = ConnectionInfo {
        listener: ListenerKind::Http,
        client_certificate: None,
    };

    pub(crate) fn is_certurl(&self) -> bool {
        self.listener == ListenerKind::CertUrl
    }
}

/// Routes one request to its endpoint by path. The query string is ignored
/// except by the endpoints that read it. The mutual-TLS listener serves only
/// the token endpoint and the key set.
pub(crate) async fn route(
    state: &EmulatorState,
    request: Request<Incoming>,
    connection: &ConnectionInfo,
) -> EmulatorResponse {
    let path = request.uri().path().to_owned();
    tracing::debug!(method = %request.method(), path, listener = ?connection.listener, "request");

    if path == TOKEN_PATH {
        return handle_token_request(state, request, connection).await;
    }
    if path == TOKEN_KEYS_PATH {
        return handle_token_keys(state, &request);
    }
    if !connection.is_certurl() {
        if let Some(encoded_name) = path.strip_prefix(FIND_DESTINATION_PREFIX) {
            return handle_find_destination(state, &request, encoded_name).await;
        }
        if is_read_path(&path) {
            return handle_read(state, &request, &path);
        }
        if path == STATS_PATH {
            let stats = state.counters.snapshot();
            return json_response(StatusCode::OK, &json!(stats));
        }
    }
    json_response(
        StatusCode::NOT_FOUND,
        &json!({
            "error": "not_found",
            "error_description": format!("The emulator has no endpoint at {path}"),
        }),
    )
}

/// Serves `GET /token_keys`: the JSON Web Key Set with the emulator's key.
fn handle_token_keys(state: &EmulatorState, request: &Request<Incoming>) -> EmulatorResponse {
    state.counters.count(Counter::TokenKeyRequests);
    if request.method() != Method::GET {
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({
                "error": "method_not_allowed",
                "error_description": format!("Request method {} is not supported, use GET", request.method()),
            }),
        );
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
        return response;
    }
    json_response(StatusCode::OK, &state.signer.token_keys())
}
