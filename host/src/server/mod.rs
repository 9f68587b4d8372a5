//! The HTTP front: accepts connections, gives every request a correlation
//! id, serves `/health` itself and hands everything else to a fresh guest
//! instance.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::auth::Authenticator;
use crate::auth::admin::{AdminAccess, AdminDenied};
use crate::auth::scopes::RouteScopes;
use crate::components::ComponentStore;
use crate::components::routes::segment_prefix;
use crate::correlation::correlation_id;
use crate::engine::compiled_cache::CompiledCache;
use crate::metrics::{METRICS, Readings};
use crate::outbound::{CORRELATION_HEADER, RequestContext};
use crate::secret::Secret;
use responses::{
    admin_unauthorized, discard_rejected_body, error_json, error_response, forbidden,
    json_response, payload_too_large, unauthorized,
};

mod admin;
mod responses;

pub use admin::ADMIN_PREFIX;

/// How long in-flight requests may take to finish after a shutdown signal.
/// Cloud Foundry sends SIGKILL ten seconds after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// How long the Cloud Foundry router keeps an idle keep-alive connection to
/// an app before it closes it, as Cloud Foundry's "Gorouter back-end
/// keep-alive connections" page states. The gateway must keep idle
/// connections open longer, or the router may send a request on a
/// connection that the gateway is closing.
pub const ROUTER_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

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
    /// The routes and their components.
    pub components: Arc<ComponentStore>,
    /// The compiled-code cache, when one is open, for its metrics.
    pub compiled_cache: Option<CompiledCache>,
    /// Validates callers when an xsuaa binding exists.
    pub authenticator: Option<Authenticator>,
    /// Scopes that routes require of authenticated callers.
    pub route_scopes: RouteScopes,
    /// The callers admitted to `/metrics` and the admin API.
    pub admin: AdminAccess,
    /// Set once shutdown began: readiness then reports 503.
    pub shutting_down: std::sync::atomic::AtomicBool,
}

impl App {
    pub fn new(components: Arc<ComponentStore>, authenticator: Option<Authenticator>) -> Self {
        Self {
            components,
            compiled_cache: None,
            authenticator,
            route_scopes: RouteScopes::default(),
            admin: AdminAccess::default(),
            shutting_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Sets the route scopes and the access to operator endpoints.
    pub fn with_access(mut self, route_scopes: RouteScopes, admin: AdminAccess) -> Self {
        self.route_scopes = route_scopes;
        self.admin = admin;
        self
    }

    /// Serves `/metrics` to an admitted caller.
    async fn metrics(
        &self,
        request: &Request<Incoming>,
        correlation_id: &str,
    ) -> Response<HyperOutgoingBody> {
        if let Err(response) = self
            .admit_operator(request, "/metrics", correlation_id)
            .await
        {
            return response;
        }
        let readings = Readings {
            cache_bytes: self.components.cache_bytes(),
            compiled_cache_hits: self.compiled_cache.as_ref().map_or(0, CompiledCache::hits),
            compiled_cache_misses: self
                .compiled_cache
                .as_ref()
                .map_or(0, CompiledCache::misses),
        };
        let text = METRICS.render(readings);
        let mut response = json_response(StatusCode::OK, text.into_bytes());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    /// Checks the caller of an operator endpoint, and returns the 401 or
    /// 403 response for one that is not admitted.
    async fn admit_operator(
        &self,
        request: &Request<Incoming>,
        endpoint: &str,
        correlation_id: &str,
    ) -> Result<(), Response<HyperOutgoingBody>> {
        let denied = match self
            .admin
            .admit(request.headers(), self.authenticator.as_ref())
            .await
        {
            Ok(()) => return Ok(()),
            Err(denied) => denied,
        };
        Err(match denied {
            AdminDenied::Unauthenticated => admin_unauthorized(correlation_id),
            AdminDenied::MissingScope => forbidden(
                &format!(
                    "{endpoint} needs the scope $XSAPPNAME.Admin: assign a role collection \
                     with it to the user or client"
                ),
                correlation_id,
            ),
            AdminDenied::NotConfigured => forbidden(
                &format!(
                    "{endpoint} is not enabled: bind xsuaa (callers then need the scope \
                     $XSAPPNAME.Admin) or set BTP_GATEWAY_ADMIN_TOKEN"
                ),
                correlation_id,
            ),
        })
    }

    /// Returns `/health`: the process serves, and each route's active
    /// component.
    fn health(&self) -> Response<HyperOutgoingBody> {
        let components: Vec<serde_json::Value> = self
            .components
            .routes()
            .into_iter()
            .map(|route| {
                let status = route.status();
                serde_json::json!({
                    "route": status.name,
                    "path": status.path,
                    "source": status.source,
                    "digest": status.active.as_ref().map(|active| active.digest),
                    "origin": status.active.as_ref().map(|active| active.origin.clone()),
                    "activatedAt": status.active.as_ref().and_then(|active| active.activated_at.clone()),
                })
            })
            .collect();
        let body = serde_json::json!({ "status": "UP", "components": components });
        json_response(StatusCode::OK, body.to_string().into_bytes())
    }
}

/// Serves `listener` until `shutdown` completes, then lets in-flight
/// requests finish within the grace period. A connection that takes longer
/// than `header_read_timeout` to send a request head, or that stays idle
/// that long between requests, is closed.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    // hyper 1 starts the header read timeout whenever it waits for a
    // request head, so the timeout also closes a keep-alive connection that
    // is idle between requests (hyper 1.13, `Conn::poll_read_head`). The
    // Cloud Foundry router keeps idle connections for up to
    // `ROUTER_IDLE_TIMEOUT`, so the timeout must be longer than that, and
    // the caller warns when it is not. hyper enforces no timeout without a
    // timer.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);

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
                // hyper writes a response's head and body in separate
                // writes. With Nagle's algorithm on, the second write waits
                // for the client's delayed ACK, about 40 ms on Linux, on
                // every response of a keep-alive connection.
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %error, "setting TCP_NODELAY failed");
                }
                let app = app.clone();
                let service = service_fn(move |request| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(app.handle(request).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
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
            if path == "/health" {
                return self.health();
            }
            if path == "/health/liveness" {
                return json_response(StatusCode::OK, br#"{"status":"UP"}"#.to_vec());
            }
            if path == "/metrics" {
                return self.metrics(&request, &correlation_text).await;
            }
            if segment_prefix(&path, ADMIN_PREFIX) {
                return self.admin(request, &correlation_text).await;
            }
            if path == "/health/readiness" {
                // Not ready while shutting down, or while a route still
                // waits for its first component.
                return if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
                    || !self.components.all_active()
                {
                    json_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        br#"{"status":"DOWN"}"#.to_vec(),
                    )
                } else {
                    json_response(StatusCode::OK, br#"{"status":"UP"}"#.to_vec())
                };
            }

            let max_body = self.components.limits().max_request_body_bytes;
            let declared_length = request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            if declared_length.is_some_and(|length| length > max_body) {
                discard_rejected_body(request.into_body(), max_body);
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
            if let (Some(caller), Some(required)) =
                (&caller, self.route_scopes.required(&path, method.as_str()))
                && !required.iter().any(|scope| caller.scopes.contains(scope))
            {
                tracing::info!(
                    required = required.join(" "),
                    "rejected a caller without the route's scope"
                );
                return forbidden(
                    &format!(
                        "{method} {path} needs one of the scopes {}: assign a role collection \
                         with it to the user or client",
                        required.join(", ")
                    ),
                    &correlation_text,
                );
            }
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

            let Some(route) = self.components.route_for(&path) else {
                return error_json(
                    StatusCode::NOT_FOUND,
                    "NoRoute",
                    &format!("no route serves {path}: BTP_GATEWAY_ROUTES lists the routes"),
                    &correlation_text,
                );
            };
            // The request keeps this version to its end, even when the
            // route swaps meanwhile.
            let Some(version) = route.active() else {
                let mut response = error_json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ComponentNotLoaded",
                    &format!(
                        "the route '{}' has no component yet: the gateway log shows why its \
                         source ({}) did not load",
                        route.config.name, route.config.source
                    ),
                    &correlation_text,
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            };
            mount(&mut request, &route.config.path);

            let context = Arc::new(RequestContext {
                correlation_id: correlation.clone(),
                caller,
                refresh_token,
            });
            match version.component.handle(request, scheme, context).await {
                Ok(response) => response,
                Err(error) => error_response(&error, &correlation_text),
            }
        }
        .instrument(span.clone())
        .await;

        response
            .headers_mut()
            .insert(CORRELATION_HEADER, correlation);
        METRICS.record_response(response.status().as_u16(), started.elapsed());
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

/// Removes a route's prefix from the request path and appends it to
/// `x-forwarded-prefix`, so the component sees the path below its route
/// and builds public links with the prefix.
fn mount(request: &mut Request<Incoming>, prefix: &str) {
    if prefix == "/" {
        return;
    }
    let uri = request.uri();
    let rest = uri.path()[prefix.len()..].to_owned();
    let rest = if rest.starts_with('/') {
        rest
    } else {
        format!("/{rest}")
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest,
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(mounted) = http::Uri::from_parts(parts) {
        *request.uri_mut() = mounted;
    }

    let headers = request.headers_mut();
    let outer = headers
        .get("x-forwarded-prefix")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(|value| value.trim().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&format!("{outer}{prefix}")) {
        headers.insert("x-forwarded-prefix", value);
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
