//! The HTTP front: accepts connections, gives every request a correlation
//! id, serves `/health` itself and hands everything else to a fresh guest
//! instance.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::auth::{AuthError, Authenticator};
use crate::correlation::correlation_id;
use crate::engine::{GatewayComponent, GuestError};
use crate::outbound::{CORRELATION_HEADER, RequestContext};
use crate::secret::Secret;

/// How long in-flight requests may take to finish after a shutdown signal.
/// Cloud Foundry sends SIGKILL ten seconds after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Request headers that never reach the guest: the caller's credentials stay
/// in the host.
const HEADERS_KEPT_FROM_GUEST: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    REFRESH_TOKEN_HEADER,
];

/// The header in which a caller passes a refresh token for
/// `OAuth2RefreshToken` destinations.
const REFRESH_TOKEN_HEADER: header::HeaderName = header::HeaderName::from_static("x-refresh-token");

/// The state shared by all connections.
#[derive(Debug)]
pub struct App {
    pub component: GatewayComponent,
    /// Validates callers when an xsuaa binding exists.
    pub authenticator: Option<Authenticator>,
    /// Set once shutdown began: readiness then reports 503.
    pub shutting_down: std::sync::atomic::AtomicBool,
}

impl App {
    pub fn new(component: GatewayComponent, authenticator: Option<Authenticator>) -> Self {
        Self {
            component,
            authenticator,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Serves `listener` until `shutdown` completes, then lets in-flight
/// requests finish within the grace period.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually out of file descriptors: wait rather than spin.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                });
                // Keep-alive connections stay open without an idle timeout,
                // longer than the Cloud Foundry router's 90 seconds.
                let connection = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => {
                app.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
                break;
            }
        }
    }

    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = SHUTDOWN_GRACE.as_secs(),
            "in-flight requests did not finish within the grace period"
        );
    }
    Ok(())
}

impl App {
    async fn handle(&self, mut request: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let correlation = correlation_id(request.headers());
        let correlation_text = correlation.to_str().unwrap_or_default().to_owned();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.as_str().to_owned());
        let request_id = request
            .headers()
            .get("x-vcap-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        let span = tracing::info_span!(
            "request",
            correlation_id = %correlation_text,
            request_id = %request_id,
            tenant_id = tracing::field::Empty,
        );

        let mut response = async {
            // Health endpoints respond without authentication and without
            // touching a backend. Liveness reports that the process serves.
            // Readiness also reports that it takes new work.
            if path == "/health" || path == "/health/liveness" {
                return json_response(StatusCode::OK, br#"{"status":"UP"}"#.to_vec());
            }
            if path == "/health/readiness" {
                return if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        br#"{"status":"DOWN"}"#.to_vec(),
                    )
                } else {
                    json_response(StatusCode::OK, br#"{"status":"UP"}"#.to_vec())
                };
            }

            let max_body = self.component.limits().max_request_body_bytes;
            let declared_length = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            if declared_length.is_some_and(|length| length > max_body) {
                return payload_too_large(max_body, &correlation_text);
            }

            let caller = match &self.authenticator {
                Some(authenticator) => match authenticator.authenticate(request.headers()).await {
                    Ok(caller) => {
                        tracing::Span::current()
                            .record("tenant_id", caller.tenant.zone_id.as_str());
                        Some(caller)
                    }
                    Err(error) => return unauthorized(&error, &correlation_text),
                },
                None => None,
            };
            let refresh_token = request
                .headers()
                .get(REFRESH_TOKEN_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(Secret::new);

            let scheme = forwarded_scheme(&request);
            let headers = request.headers_mut();
            for name in HEADERS_KEPT_FROM_GUEST {
                headers.remove(name);
            }
            headers.insert(CORRELATION_HEADER, correlation.clone());

            let context = Arc::new(RequestContext {
                correlation_id: correlation.clone(),
                caller,
                refresh_token,
            });
            match self.component.handle(request, scheme, context).await {
                Ok(response) => response,
                Err(error) => error_response(&error, &correlation_text),
            }
        }
        .instrument(span.clone())
        .await;

        response
            .headers_mut()
            .insert(CORRELATION_HEADER, correlation);
        let _entered = span.enter();
        // One request log per request, with the field names of SAP's
        // request logs; the size is -1 when the body streams.
        let size = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i64>().ok())
            .unwrap_or(-1);
        tracing::info!(
            "type" = "request",
            method = %method,
            request = %target,
            response_status = response.status().as_u16(),
            response_time_ms = started.elapsed().as_millis() as u64,
            response_size_b = size,
            "request"
        );
        response
    }
}

/// Returns the scheme the client used. The Cloud Foundry router terminates
/// TLS and reports the original scheme in `x-forwarded-proto`.
fn forwarded_scheme(request: &Request<Incoming>) -> Scheme {
    match request
        .headers()
        .get("x-forwarded-proto")
        .map(HeaderValue::as_bytes)
    {
        Some(b"https") => Scheme::Https,
        _ => Scheme::Http,
    }
}

/// Maps a failed guest run to the client's response, and logs the cause
/// once, with the correlation id from the span.
fn error_response(error: &GuestError, correlation_id: &str) -> Response<HyperOutgoingBody> {
    let (status, code, message) = match error {
        // No slot is free: ask the client to retry instead of queueing.
        GuestError::Busy(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "the gateway is at its limit of concurrent requests: retry shortly",
        ),
        // The request ran out of time, in the guest or waiting on a backend.
        GuestError::Timeout(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            "the request took longer than the gateway's request timeout",
        ),
        // A trap or a missing response is a fault of the component.
        GuestError::Failed(_) | GuestError::ErrorCode(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "ComponentFailed",
            "the gateway component failed before it answered; the gateway log has the cause under this correlation id",
        ),
    };
    match error {
        GuestError::Busy(_) => tracing::warn!(%error, "rejected a request"),
        GuestError::Timeout(_) => tracing::warn!(%error, "ended a request at its deadline"),
        GuestError::Failed(cause) => {
            tracing::error!(error = format!("{cause:#}"), "the component failed");
        }
        GuestError::ErrorCode(code) => {
            tracing::error!(
                ?code,
                "the component answered with an error code instead of a response"
            );
        }
    }

    let body = serde_json::json!({
        "error": { "code": code, "message": message, "innererror": { "correlation_id": correlation_id } }
    });
    let mut response = json_response(status, body.to_string().into_bytes());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Returns 401 to a caller without a valid token, as XSUAA-protected apps
/// do, and logs why at `info` (a missing token is routine).
fn unauthorized(error: &AuthError, correlation_id: &str) -> Response<HyperOutgoingBody> {
    tracing::info!(%error, "rejected an unauthenticated request");
    let body = serde_json::json!({
        "error": {
            "code": "Unauthorized",
            "message": "this gateway requires an XSUAA access token for this application: send it as Authorization: Bearer <token>",
            "innererror": { "correlation_id": correlation_id }
        }
    });
    let mut response = json_response(StatusCode::UNAUTHORIZED, body.to_string().into_bytes());
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Returns 413 to a request whose declared body is over the limit, before
/// any of it is read.
fn payload_too_large(max_bytes: u64, correlation_id: &str) -> Response<HyperOutgoingBody> {
    tracing::info!(max_bytes, "rejected a request body over the limit");
    let body = serde_json::json!({
        "error": {
            "code": "PayloadTooLarge",
            "message": format!("the request body is larger than the gateway's limit of {max_bytes} bytes"),
            "innererror": { "correlation_id": correlation_id }
        }
    });
    json_response(StatusCode::PAYLOAD_TOO_LARGE, body.to_string().into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
