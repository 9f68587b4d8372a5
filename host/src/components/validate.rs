//! Validation of a candidate component before it may serve.
//!
//! Policy: a candidate serves only after every step passes, in this order:
//! it is no larger than the size limit, its digest matches the route's
//! pinned digest when one is set, it compiles as a WebAssembly component,
//! it imports nothing beyond the host's world and exports the HTTP
//! handler, and it answers a smoke request, `GET /` without credentials
//! and without outbound requests, with a status below 500 and a complete
//! body within [`SMOKE_TIMEOUT`]. A candidate that fails is rejected and
//! the route keeps its active version.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use http_body_util::BodyExt as _;
use wasmtime::Engine;

use super::digest::Digest;
use super::routes::RouteConfig;
use crate::engine::{GatewayComponent, GuestError, HostServices, Limits, LoadError};
use crate::outbound::RequestContext;

/// The time the smoke request may take, body included.
pub const SMOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A validated component, ready to serve.
#[derive(Debug)]
pub struct Version {
    pub digest: Digest,
    /// The source of the bytes, for example `upload` or an OCI reference
    /// with the manifest digest.
    pub origin: String,
    /// The size of the component file in bytes.
    pub size: u64,
    /// When the component passed validation.
    pub loaded_at: SystemTime,
    pub component: GatewayComponent,
}

/// The reason a candidate was rejected.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(
        "the component is {size} bytes, more than the limit of {max} bytes: make it smaller or \
         raise BTP_GATEWAY_COMPONENT_MAX_MIB"
    )]
    TooLarge { size: u64, max: u64 },
    #[error(
        "the component's digest is {actual}, but {expected} is pinned: publish the pinned \
         component, or change the pin (the route's `digest`, or `--digest` of `check`)"
    )]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("the smoke request `GET /` failed: {0}")]
    Smoke(String),
}

impl Rejection {
    /// Returns a stable code for the admin API's error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too-large",
            Self::DigestMismatch { .. } => "digest-mismatch",
            Self::Load(LoadError::Invalid(_)) => "invalid-component",
            Self::Load(LoadError::WrongWorld(_)) => "wrong-world",
            Self::Load(LoadError::Host(_)) => "host-error",
            Self::Smoke(_) => "smoke-request-failed",
        }
    }
}

/// Validates candidates for every route of one host.
#[derive(Debug, Clone)]
pub struct Validator {
    pub engine: Engine,
    pub services: HostServices,
    pub limits: Limits,
    /// The largest component file accepted, in bytes.
    pub max_component_bytes: u64,
}

impl Validator {
    /// Runs every check on `bytes` for `route` and returns the version that
    /// may serve.
    pub async fn validate(
        &self,
        route: &RouteConfig,
        bytes: Arc<[u8]>,
        origin: String,
    ) -> Result<Version, Rejection> {
        let size = bytes.len() as u64;
        if size > self.max_component_bytes {
            return Err(Rejection::TooLarge {
                size,
                max: self.max_component_bytes,
            });
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = route.digest
            && expected != digest
        {
            return Err(Rejection::DigestMismatch {
                expected,
                actual: digest,
            });
        }

        // Compiling takes up to seconds of CPU: it runs on a blocking
        // thread so that requests keep being served meanwhile.
        let (engine, services, limits) = (self.engine.clone(), self.services.clone(), self.limits);
        let compiled = tokio::task::spawn_blocking(move || {
            GatewayComponent::new(&engine, &bytes, services, limits)
        })
        .await
        .map_err(|error| Rejection::Smoke(format!("the compilation task failed: {error}")))??;

        smoke_test(&compiled, digest, limits).await?;
        Ok(Version {
            digest,
            origin,
            size,
            loaded_at: SystemTime::now(),
            component: compiled,
        })
    }
}

/// Sends `GET /` to a fresh instance and reads the whole response.
async fn smoke_test(
    component: &GatewayComponent,
    digest: Digest,
    limits: Limits,
) -> Result<(), Rejection> {
    let limits = Limits {
        request_timeout: SMOKE_TIMEOUT.min(limits.request_timeout),
        max_outbound_requests: 0,
        ..limits
    };
    let correlation = format!("smoke-test-{}", digest.short());
    let context = Arc::new(RequestContext {
        correlation_id: HeaderValue::from_str(&correlation)
            .unwrap_or_else(|_| HeaderValue::from_static("smoke-test")),
        caller: None,
        refresh_token: None,
    });
    let request = http::Request::get("/")
        .header(http::header::HOST, "localhost")
        .body(bytes::Bytes::new())
        .map_err(|error| Rejection::Smoke(error.to_string()))?;

    // The candidate shares the instance pool with the serving versions: a
    // full pool delays the smoke request instead of failing it.
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let response = loop {
        match component
            .handle_buffered(request.clone(), context.clone(), limits)
            .await
        {
            Err(GuestError::Busy(_)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => {
                return Err(Rejection::Smoke(format!(
                    "{:#}",
                    anyhow::Error::from(error)
                )));
            }
            Ok(response) => break response,
        }
    };
    let status = response.status();
    let body = tokio::time::timeout(limits.request_timeout, response.into_body().collect()).await;
    match body {
        Err(_) => Err(Rejection::Smoke(format!(
            "the response body did not end within {} seconds",
            limits.request_timeout.as_secs()
        ))),
        Ok(Err(error)) => Err(Rejection::Smoke(format!(
            "the response body failed: {error}"
        ))),
        Ok(Ok(_)) if status.is_server_error() => Err(Rejection::Smoke(format!(
            "the component answered {status}, expected a status below 500"
        ))),
        Ok(Ok(_)) => Ok(()),
    }
}
