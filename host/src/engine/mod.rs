//! The WebAssembly engine: compiling the component once, and one fresh
//! instance per request from the pre-instantiated component.
//!
//! Instances come from wasmtime's pooling allocator with copy-on-write
//! memory images, so an instance costs microseconds. The pool is sized for a
//! Cloud Foundry container: `max_instances` slots of `max_memory_bytes`
//! each, instead of wasmtime's default reservation of several terabytes of
//! address space. Where even that reservation fails, the host falls back to
//! on-demand allocation with a warning.

pub mod compiled_cache;
mod guarded_body;
mod state;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::body::Incoming;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::cache::SharedCache;
use crate::metrics::METRICS;
use crate::outbound::{Outbound, RequestContext};
pub use state::InstanceState;
pub use wasmtime_wasi_config::WasiConfigVariables;

/// How often the engine's epoch advances. A guest that runs longer than its
/// deadline is interrupted within one tick.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The bytes at the start of each linear memory and table that a slot keeps
/// resident between instances. Pages beyond them go back to the kernel
/// after each instance, so this bounds the memory that idle slots keep.
const KEEP_RESIDENT_BYTES: usize = 1024 * 1024;

/// Resource limits of each instance and of the pool.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Instances that can run at once.
    pub max_instances: u32,
    /// The largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
    /// The time one request may take, response body included.
    pub request_timeout: Duration,
    /// Outgoing requests one instance may send.
    pub max_outbound_requests: u32,
    /// The largest request body a client may send.
    pub max_request_body_bytes: u64,
    /// The largest response body a guest may send to a client.
    pub max_response_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instances: 64,
            max_memory_bytes: 128 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            max_outbound_requests: 16,
            max_request_body_bytes: 16 * 1024 * 1024,
            max_response_body_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// The reason a request got no response from the guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Every instance slot is in use.
    #[error("all {0} instance slots are busy")]
    Busy(u32),
    /// The request took longer than its deadline.
    #[error("the request took longer than {} seconds", .0.as_secs())]
    Timeout(Duration),
    /// The guest trapped, or returned without setting a response.
    #[error("the component failed before it answered")]
    Failed(#[source] anyhow::Error),
    /// The guest returned an error code instead of a response.
    #[error("the component answered with error code {0:?}")]
    ErrorCode(ErrorCode),
}

/// The reason a component cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are no WebAssembly component, or it does not compile.
    #[error("the file is not a valid WebAssembly component: {0:#}")]
    Invalid(#[source] anyhow::Error),
    /// The component needs an import that the host does not provide, or
    /// does not export the HTTP handler.
    #[error("the component does not fit the host's world `btp-gateway:gateway/gateway`: {0:#}")]
    WrongWorld(#[source] anyhow::Error),
    /// Linking the host's own interfaces failed.
    #[error("linking the host's interfaces failed: {0:#}")]
    Host(#[source] anyhow::Error),
}

/// The capabilities the host lends every instance: outbound HTTP, the component's
/// configuration (`wasi:config/store`) and the shared cache
/// (`wasi:keyvalue/store`).
#[derive(Clone)]
pub struct HostServices {
    pub outbound: Arc<Outbound>,
    pub config: Arc<WasiConfigVariables>,
    pub cache: Arc<SharedCache>,
}

impl std::fmt::Debug for HostServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostServices")
            .field("outbound", &self.outbound)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A compiled component, ready to instantiate per request.
pub struct GatewayComponent {
    pre: ProxyPre<InstanceState>,
    services: HostServices,
    limits: Limits,
}

impl std::fmt::Debug for GatewayComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayComponent")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Creates the engine with the pooling allocator sized by `limits`.
pub fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    new_engine_with_cache(limits, None)
}

/// Creates the engine, with compiled code cached in `compiled_cache` when
/// one is given.
pub fn new_engine_with_cache(
    limits: &Limits,
    compiled_cache: Option<&compiled_cache::CompiledCache>,
) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    if let Some(cache) = compiled_cache {
        config.cache(Some(cache.wasmtime_cache()));
    }
    config.wasm_component_model(true);
    // Epoch interruption bounds the time a guest computes without calling
    // the host; it costs a counter check at function entries and loops.
    config.epoch_interruption(true);
    // Each slot reserves exactly its memory limit plus a small guard, which
    // keeps the pool's address space in the low gigabytes.
    config.memory_reservation(limits.max_memory_bytes as u64);
    config.memory_guard_size(64 * 1024);
    config.memory_reservation_for_growth(0);

    let slots = limits.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        // A component built by the Rust toolchain contains a few core
        // instances, memories and tables (the program and its adapters).
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 4)
        .total_stacks(slots)
        .max_memory_size(limits.max_memory_bytes)
        // A slot that is reused keeps the first pages of its memories and
        // tables mapped, and they are reset with memset instead of madvise.
        // The next instance then takes no page faults on them. With
        // PAGEMAP_SCAN (Linux 6.7 and later), only pages that the previous
        // instance touched are reset.
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    let engine = match Engine::new(&config) {
        Ok(engine) => engine,
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "the pooling allocator could not reserve its memory: using on-demand allocation, \
                 which makes each instance slower to create"
            );
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
                .map_err(anyhow::Error::from)
                .context("creating the WebAssembly engine failed")?
        }
    };
    start_epoch_ticker(&engine);
    Ok(engine)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread that ends
/// when the engine is dropped.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("epoch-ticker".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = spawned {
        // Without the ticker no deadline would ever fire; the per-request
        // timer still ends requests that wait on the host.
        tracing::error!(%error, "starting the epoch thread failed: guests that compute endlessly are not interrupted");
    }
}

impl GatewayComponent {
    /// Compiles a component, or loads its compiled code from the engine's
    /// cache, and links it against the host's world.
    pub fn new(
        engine: &Engine,
        bytes: &[u8],
        services: HostServices,
        limits: Limits,
    ) -> Result<Self, LoadError> {
        let component =
            Component::new(engine, bytes).map_err(|error| LoadError::Invalid(error.into()))?;

        let linker = host_linker(engine).map_err(LoadError::Host)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("it imports something the host does not provide")
            .map_err(LoadError::WrongWorld)?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("it does not export wasi:http/incoming-handler@0.2")
            .map_err(LoadError::WrongWorld)?;

        METRICS.set_instance_slots(limits.max_instances);
        Ok(Self {
            pre,
            services,
            limits,
        })
    }

    /// Returns the bytes held in the cache components share.
    pub fn cache_bytes(&self) -> usize {
        self.services.cache.bytes()
    }

    /// Returns the limits each instance runs with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one request in a fresh instance and returns the guest's
    /// response as soon as the guest sets it. The body keeps streaming in a
    /// task.
    pub async fn handle(
        &self,
        request: hyper::Request<Incoming>,
        scheme: Scheme,
        context: Arc<RequestContext>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestError> {
        let request = limit_body(request, self.limits.max_request_body_bytes);
        self.run(request, scheme, context, self.limits).await
    }

    /// Runs one request whose body is already in memory, as the smoke
    /// request and the command line do, with `limits` in place of the
    /// component's own.
    pub async fn handle_buffered(
        &self,
        request: hyper::Request<bytes::Bytes>,
        context: Arc<RequestContext>,
        limits: Limits,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestError> {
        use http_body_util::BodyExt as _;
        let request = request.map(|body| {
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        });
        self.run(request, Scheme::Http, context, limits).await
    }

    async fn run(
        &self,
        request: hyper::Request<GuestRequestBody>,
        scheme: Scheme,
        context: Arc<RequestContext>,
        limits: Limits,
    ) -> Result<hyper::Response<HyperOutgoingBody>, GuestError> {
        let correlation_id = context.correlation_id.clone();
        let state = InstanceState::new(&self.services, context, limits.max_outbound_requests);
        let mut store = Store::new(self.pre.engine(), state);
        let ticks = limits.request_timeout.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
        store.epoch_deadline_trap();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(scheme, request)
            .map_err(|error| GuestError::Failed(error.into()))?;
        let outparam = store
            .data_mut()
            .http()
            .new_response_outparam(sender)
            .map_err(|error| GuestError::Failed(error.into()))?;

        let pre = self.pre.clone();
        // The instance counts as in use until its run ends, response body
        // included.
        let in_use = METRICS.instance_started();
        let run = async move {
            let _in_use = in_use;
            let proxy = pre.instantiate_async(&mut store).await.map_err(|error| {
                let error = anyhow::Error::from(error);
                if is_pool_exhausted(&error) {
                    METRICS.busy_rejected();
                    GuestError::Busy(limits.max_instances)
                } else {
                    GuestError::Failed(error)
                }
            })?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map_err(|error| classify_trap(error.into(), limits.request_timeout))
        };
        // The epoch deadline stops a guest that computes; this timer also
        // stops one that waits on the host, such as on a slow backend.
        // Dropping the future drops the store and frees the instance.
        let task = tokio::spawn(async move {
            match tokio::time::timeout(limits.request_timeout, run).await {
                Ok(result) => result,
                Err(_) => Err(GuestError::Timeout(limits.request_timeout)),
            }
        });

        match receiver.await {
            Ok(Ok(response)) => {
                // The guest may still be streaming the body. The body ends
                // only when the run succeeded; a failure from here on ends it
                // with an error, which hyper turns into an aborted response.
                let (outcome_sender, outcome) = tokio::sync::oneshot::channel();
                let correlation = correlation_id.to_str().unwrap_or_default().to_owned();
                let correlation_for_body = correlation.clone();
                tokio::spawn(async move {
                    let succeeded = match task.await {
                        Ok(Ok(())) => true,
                        Ok(Err(error)) => {
                            tracing::error!(
                                correlation_id = correlation,
                                error = format!("{error:#}"),
                                "the component failed while streaming its response"
                            );
                            false
                        }
                        Err(join_error) => {
                            tracing::error!(correlation_id = correlation, error = %join_error, "the component's task ended abnormally");
                            false
                        }
                    };
                    let _ = outcome_sender.send(succeeded);
                });
                Ok(response.map(|body| {
                    http_body_util::BodyExt::boxed_unsync(guarded_body::GuardedBody::new(
                        body,
                        outcome,
                        limits.max_response_body_bytes,
                        correlation_for_body,
                    ))
                }))
            }
            Ok(Err(code)) => Err(GuestError::ErrorCode(code)),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(GuestError::Failed(anyhow::anyhow!(
                    "the component returned without setting a response"
                ))),
                Ok(Err(error)) => Err(error),
                Err(join_error) => Err(GuestError::Failed(join_error.into())),
            },
        }
    }
}

/// Returns a linker with every interface of the host's world.
fn host_linker(engine: &Engine) -> anyhow::Result<Linker<InstanceState>> {
    let mut linker = Linker::<InstanceState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI failed")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http failed")?;
    wasmtime_wasi_config::add_to_linker(&mut linker, InstanceState::config)
        .map_err(anyhow::Error::from)
        .context("linking wasi:config failed")?;
    crate::cache::add_to_linker(&mut linker, InstanceState::key_value)
        .map_err(anyhow::Error::from)
        .context("linking wasi:keyvalue failed")?;
    Ok(linker)
}

/// Turns an epoch interruption into a timeout; other traps stay failures.
fn classify_trap(error: anyhow::Error, timeout: Duration) -> GuestError {
    let interrupted = error
        .chain()
        .any(|cause| cause.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt));
    if interrupted {
        GuestError::Timeout(timeout)
    } else {
        GuestError::Failed(error)
    }
}

/// The request body type that guests read.
type GuestRequestBody =
    http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, wasmtime_wasi_http::Error>;

/// Caps the request body the guest can read. A longer body ends with
/// `HTTP-request-body-size` for the guest.
fn limit_body(
    request: hyper::Request<Incoming>,
    max_bytes: u64,
) -> hyper::Request<GuestRequestBody> {
    use http_body_util::BodyExt as _;
    let limit = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    request.map(|body| {
        http_body_util::Limited::new(body, limit)
            .map_err(move |error| match error.downcast::<hyper::Error>() {
                Ok(hyper_error) => wasmtime_wasi_http::Error::Hyper(*hyper_error),
                Err(_) => wasmtime_wasi_http::Error::HttpRequestBodySize(Some(max_bytes)),
            })
            .boxed_unsync()
    })
}

/// Returns whether instantiation failed because every pool slot is taken.
fn is_pool_exhausted(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
            .is_some()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::Resolver;
    use crate::outbound::HttpClient;
    use http::HeaderValue;

    fn services() -> HostServices {
        let client = HttpClient::new(crate::outbound::egress::EgressPolicy { allow_local: true })
            .unwrap_or_else(|error| panic!("{error}"));
        let outbound = Arc::new(Outbound {
            resolver: Resolver::new(Vec::new(), None, None, &client)
                .unwrap_or_else(|error| panic!("{error}")),
            client,
            connectivity: None,
            policies: crate::config::DestinationPolicies::default(),
        });
        HostServices {
            outbound,
            config: Arc::new(WasiConfigVariables::new()),
            cache: Arc::new(SharedCache::new(crate::cache::CacheLimits::default())),
        }
    }

    fn component(limits: Limits) -> GatewayComponent {
        let engine = new_engine(&limits).unwrap_or_else(|error| panic!("{error}"));
        GatewayComponent::new(&engine, crate::DEFAULT_COMPONENT, services(), limits)
            .unwrap_or_else(|error| panic!("{error:#}"))
    }

    #[tokio::test]
    async fn full_pool_is_recognised() {
        let limits = Limits {
            max_instances: 1,
            max_memory_bytes: 64 << 20,
            ..Limits::default()
        };
        let component = component(limits);
        let engine = component.pre.engine();
        let context = Arc::new(RequestContext {
            correlation_id: HeaderValue::from_static("test"),
            caller: None,
            refresh_token: None,
        });
        let state = || InstanceState::new(&component.services, context.clone(), 1);

        let mut first = Store::new(engine, state());
        first.set_epoch_deadline(1_000_000);
        let _first_instance = component
            .pre
            .instantiate_async(&mut first)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        let mut second = Store::new(engine, state());
        second.set_epoch_deadline(1_000_000);
        let error = component
            .pre
            .instantiate_async(&mut second)
            .await
            .err()
            .map(anyhow::Error::from);

        let error = error.unwrap_or_else(|| panic!("a second instance fit into a pool of one"));
        assert!(is_pool_exhausted(&error), "{error:#}");
    }

    #[test]
    fn rejects_bytes_that_are_no_component() {
        let limits = Limits::default();
        let engine = new_engine(&limits).unwrap_or_else(|error| panic!("{error}"));
        let error = GatewayComponent::new(&engine, b"not wasm", services(), limits).err();
        let message = error.map(|error| format!("{error:#}")).unwrap_or_default();
        assert!(
            message.contains("not a valid WebAssembly component"),
            "{message}"
        );
    }
}
