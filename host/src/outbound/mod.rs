//! Outbound HTTP for guests: the `wasi:http/outgoing-handler` hook.
//!
//! Policy: a guest reaches destinations by name through the reserved
//! address and nothing else. Every other request is denied with
//! `HTTP-request-denied` before any connection is made. For a destination,
//! the host resolves the name, rewrites the request to the destination's
//! URL, adds the credentials and the correlation id, and streams the
//! response back. Failures reach the guest as the `wasi:http` error codes
//! listed in `wit/world.wit`. The cause is logged here with the correlation
//! id and never passed to the guest.

mod address;
mod client;
mod forward;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::destination::{LookupError, Resolver};
pub use address::{DESTINATION_AUTHORITY, DestinationAddress};
pub use client::HttpClient;
pub use forward::CORRELATION_HEADER;

/// How long to wait for a destination's response headers when neither the
/// destination nor the guest sets a timeout.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The outbound state shared by every instance.
#[derive(Debug)]
pub struct Outbound {
    pub resolver: Resolver,
    pub client: HttpClient,
}

/// The per-instance hook, carrying the request's correlation id.
#[derive(Debug)]
pub struct OutboundHooks {
    outbound: Arc<Outbound>,
    correlation_id: HeaderValue,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl OutboundHooks {
    pub fn new(outbound: Arc<Outbound>, correlation_id: HeaderValue) -> Self {
        Self {
            outbound,
            correlation_id,
        }
    }
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_error: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let outbound = self.outbound.clone();
        let correlation_id = self.correlation_id.clone();
        Box::new(async move {
            let response = send(&outbound, request, options, &correlation_id).await?;
            let done: Box<dyn Future<Output = Result<(), Error>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, done))
        })
    }
}

async fn send(
    outbound: &Outbound,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    correlation_id: &HeaderValue,
) -> Result<http::Response<WasiBody>, Error> {
    let correlation = correlation_id.to_str().unwrap_or_default();
    let address = match DestinationAddress::parse(request.uri()) {
        Ok(Some(address)) => address,
        Ok(None) => {
            let authority = request
                .uri()
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default();
            tracing::warn!(correlation_id = correlation, %authority, "denied a guest request not addressed to a destination");
            return Err(Error::HttpRequestDenied);
        }
        Err(error) => {
            tracing::warn!(correlation_id = correlation, %error, "rejected a malformed destination address");
            return Err(Error::HttpRequestUriInvalid);
        }
    };

    let destination = outbound
        .resolver
        .resolve(&address.name)
        .await
        .map_err(|error| {
            log_lookup_error(&error, correlation);
            match error {
                LookupError::NotFound { .. } => Error::DestinationNotFound,
                LookupError::Unavailable { .. } => Error::DestinationUnavailable,
                LookupError::Unusable { .. } => Error::ConfigurationError,
            }
        })?;

    let unusable = |reason: String| {
        tracing::warn!(correlation_id = correlation, destination = %address.name, %reason, "destination cannot be used");
        Error::ConfigurationError
    };
    let target = forward::target_uri(&destination, &address.path_and_query)
        .map_err(|error| unusable(error.to_string()))?;
    forward::rewrite(&mut request, &destination, target, correlation_id).map_err(unusable)?;

    let timeout = destination
        .config
        .timeout
        .or(options.and_then(|options| options.first_byte_timeout))
        .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    let method = request.method().clone();
    let started = Instant::now();
    let response = match tokio::time::timeout(timeout, outbound.client.send(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(
                correlation_id = correlation,
                destination = %address.name,
                error = %error_chain(&error),
                "request to destination failed"
            );
            return Err(if error.is_connect() {
                Error::ConnectionRefused
            } else {
                Error::HttpProtocolError
            });
        }
        Err(_) => {
            tracing::warn!(
                correlation_id = correlation,
                destination = %address.name,
                timeout_ms = timeout.as_millis() as u64,
                "destination did not answer in time"
            );
            return Err(Error::HttpResponseTimeout);
        }
    };

    tracing::debug!(
        correlation_id = correlation,
        destination = %address.name,
        %method,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "destination answered"
    );
    Ok(response.map(|body| body.map_err(Error::Hyper).boxed_unsync()))
}

fn log_lookup_error(error: &LookupError, correlation_id: &str) {
    match error {
        LookupError::NotFound { name } => {
            tracing::info!(correlation_id, destination = %name, "destination not found");
        }
        LookupError::Unavailable { name, cause } => {
            tracing::error!(correlation_id, destination = %name, error = format!("{cause:#}"), "destination lookup failed");
        }
        LookupError::Unusable { name, reason } => {
            tracing::warn!(correlation_id, destination = %name, %reason, "destination cannot be used");
        }
    }
}

/// Formats an error with its sources, one `: ` apart.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
