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
pub mod egress;
mod forward;
mod onpremise;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::auth::Caller;
use crate::config::DestinationPolicies;
use crate::destination::resolver::Requester;
use crate::destination::{LookupError, ProxyType, Resolver};
use crate::secret::Secret;
pub use address::{DESTINATION_AUTHORITY, DestinationAddress};
pub use client::HttpClient;
pub use forward::CORRELATION_HEADER;
pub use onpremise::Connectivity;

/// How long to wait for a destination's response headers when neither the
/// destination nor the guest sets a timeout.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// The outbound state shared by every instance.
#[derive(Debug)]
pub struct Outbound {
    pub resolver: Resolver,
    pub client: HttpClient,
    /// The Connectivity service, for on-premise destinations.
    pub connectivity: Option<Connectivity>,
    /// Per-destination policies, checked before a destination is resolved.
    pub policies: DestinationPolicies,
}

/// The response header in which the host sends the component the URL of the
/// destination that responded: scheme, host, port and path, without
/// credentials or query. The component needs it to rewrite the backend's
/// absolute links. A header of this name from the backend is replaced.
pub const DESTINATION_URL_HEADER: &str = "x-destination-url";

/// The host's data about the request a guest instance serves.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub correlation_id: HeaderValue,
    /// The authenticated caller, when inbound authentication is on.
    pub caller: Option<Arc<Caller>>,
    /// The caller's `x-refresh-token`, for `OAuth2RefreshToken`.
    pub refresh_token: Option<Secret>,
}

/// The per-instance hook, carrying the request's context and the budget of
/// outgoing requests the instance has left.
#[derive(Debug)]
pub struct OutboundHooks {
    outbound: Arc<Outbound>,
    context: Arc<RequestContext>,
    remaining_requests: u32,
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl OutboundHooks {
    pub fn new(outbound: Arc<Outbound>, context: Arc<RequestContext>, max_requests: u32) -> Self {
        Self {
            outbound,
            context,
            remaining_requests: max_requests,
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
        let context = self.context.clone();
        let within_budget = self.remaining_requests > 0;
        self.remaining_requests = self.remaining_requests.saturating_sub(1);
        Box::new(async move {
            if !within_budget {
                tracing::warn!(
                    correlation_id = context.correlation_id.to_str().unwrap_or_default(),
                    "denied an outgoing request: the instance used up its budget of outgoing requests"
                );
                return Err(Error::HttpRequestDenied);
            }
            let response = send(&outbound, request, options, &context).await?;
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
    context: &RequestContext,
) -> Result<http::Response<WasiBody>, Error> {
    let correlation_id = &context.correlation_id;
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

    let path = address
        .path_and_query
        .split_once('?')
        .map_or(address.path_and_query.as_str(), |(path, _)| path);
    let tunnelled_method = request
        .headers()
        .get("x-http-method")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    if let Err(violation) = outbound.policies.check(
        &address.name,
        request.method(),
        tunnelled_method.as_deref(),
        path,
    ) {
        tracing::warn!(correlation_id = correlation, %violation, "denied a guest request by the destination's policy");
        return Err(Error::HttpRequestDenied);
    }

    let requester = Requester {
        caller: context.caller.as_deref(),
        refresh_token: context.refresh_token.as_ref(),
    };
    let destination = outbound
        .resolver
        .resolve(&address.name, requester)
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

    if destination.config.forward_auth_token {
        let caller = context.caller.as_deref().ok_or_else(|| {
            unusable(
                "forwardAuthToken needs inbound authentication: bind an xsuaa instance so that \
                 callers send a token"
                    .to_owned(),
            )
        })?;
        let mut value = HeaderValue::try_from(format!("Bearer {}", caller.token.expose()))
            .map_err(|_| unusable("the caller's token is not a valid header value".to_owned()))?;
        value.set_sensitive(true);
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, value);
    }

    let client = match &destination.config.proxy_type {
        ProxyType::OnPremise => {
            if destination.config.url.scheme() != "http" {
                return Err(unusable(
                    "on-premise destinations are reached through the Cloud Connector over \
                     http:// and its virtual host: change the URL's scheme"
                        .to_owned(),
                ));
            }
            let connectivity = outbound.connectivity.as_ref().ok_or_else(|| {
                unusable(
                    "ProxyType OnPremise needs a binding to the Connectivity service".to_owned(),
                )
            })?;
            let headers = connectivity
                .proxy_headers(&destination, context.caller.as_deref())
                .await
                .map_err(|error| {
                    tracing::error!(
                        correlation_id = correlation,
                        destination = %address.name,
                        error = format!("{error:#}"),
                        "preparing the request for the Connectivity proxy failed"
                    );
                    Error::DestinationUnavailable
                })?;
            request.headers_mut().extend(headers);
            connectivity.client()
        }
        _ => destination.client.as_ref().unwrap_or(&outbound.client),
    };

    let timeout = destination
        .config
        .timeout
        .or(options.and_then(|options| options.first_byte_timeout))
        .unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
    let method = request.method().clone();
    let started = Instant::now();
    let response = match tokio::time::timeout(timeout, client.send(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            tracing::warn!(
                correlation_id = correlation,
                destination = %address.name,
                error = %error_chain(&error),
                "request to destination failed"
            );
            return Err(if error.is_connect() {
                connect_error_code(&error)
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
    let mut response = response.map(|body| body.map_err(Error::Hyper).boxed_unsync());
    let headers = response.headers_mut();
    headers.remove(DESTINATION_URL_HEADER);
    if let Ok(value) = HeaderValue::try_from(public_url(&destination.config.url)) {
        headers.insert(DESTINATION_URL_HEADER, value);
    }
    Ok(response)
}

/// Returns the destination URL without user info, query and fragment, and
/// without a trailing `/`.
fn public_url(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let port = url
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    format!("{}://{host}{port}{path}", url.scheme())
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

/// Maps a failed connection to the `wasi:http` code that names its cause,
/// so the guest can tell a refused connection from a TLS or DNS failure.
fn connect_error_code(error: &hyper_util::client::legacy::Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    // A refused address shows up inside the resolver's "dns error", so the
    // whole chain is searched before the error counts as a DNS failure.
    let mut saw_dns_error = false;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(tls) = rustls_error(io) {
                return match tls {
                    rustls::Error::InvalidCertificate(_) => Error::TlsCertificateError,
                    _ => Error::TlsProtocolError,
                };
            }
            match io.kind() {
                std::io::ErrorKind::TimedOut => return Error::ConnectionTimeout,
                std::io::ErrorKind::ConnectionRefused => return Error::ConnectionRefused,
                std::io::ErrorKind::PermissionDenied => return Error::DestinationIpProhibited,
                _ => {}
            }
        }
        saw_dns_error |= cause.to_string().contains("dns error");
        source = cause.source();
    }
    if saw_dns_error {
        Error::DnsError {
            rcode: None,
            info_code: None,
        }
    } else {
        Error::ConnectionRefused
    }
}

/// Finds a TLS error inside I/O errors, which hyper-rustls nests two deep.
fn rustls_error(io: &std::io::Error) -> Option<&rustls::Error> {
    let mut current = io;
    loop {
        let inner = current.get_ref()?;
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = inner.downcast_ref::<std::io::Error>()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_drops_credentials_and_query() {
        let parse = |text: &str| url::Url::parse(text).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            public_url(&parse(
                "https://user:pw@s4.example.com:8443/base/?apikey=1#x"
            )),
            "https://s4.example.com:8443/base"
        );
        assert_eq!(public_url(&parse("http://[::1]:80/")), "http://[::1]");
    }

    #[test]
    fn finds_nested_tls_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let outer = std::io::Error::other(inner);
        assert!(matches!(
            rustls_error(&outer),
            Some(rustls::Error::InvalidCertificate(_))
        ));
    }
}
