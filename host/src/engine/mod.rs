//! The WebAssembly engine: compiling the component once, and one fresh
//! instance per request from the pre-instantiated component.
//!
//! Instances come from wasmtime's pooling allocator with copy-on-write
//! memory images, so an instance costs microseconds. The pool is sized for a
//! Cloud Foundry container: `max_instances` slots of `max_memory_bytes`
//! each, instead of wasmtime's default reservation of several terabytes of
//! address space. Where even that reservation fails, the host falls back to
//! on-demand allocation with a warning.

mod state;

use std::sync::Arc;

use anyhow::Context as _;
use hyper::body::Incoming;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::outbound::{Outbound, RequestContext};
pub use state::InstanceState;

/// Resource limits of the instance pool.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Instances that can run at once.
    pub max_instances: u32,
    /// The largest linear memory one instance may grow to.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instances: 64,
            max_memory_bytes: 128 * 1024 * 1024,
        }
    }
}

/// The reason a request got no response from the guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Every instance slot is in use.
    #[error("all {0} instance slots are busy")]
    Busy(u32),
    /// The guest trapped, or returned without setting a response.
    #[error("the component failed before it answered")]
    Failed(#[source] anyhow::Error),
    /// The guest returned an error code instead of a response.
    #[error("the component answered with error code {0:?}")]
    ErrorCode(ErrorCode),
}

/// A compiled component, ready to instantiate per request.
pub struct GatewayComponent {
    pre: ProxyPre<InstanceState>,
    outbound: Arc<Outbound>,
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
    let mut config = Config::new();
    config.wasm_component_model(true);
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
        .max_memory_size(limits.max_memory_bytes);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));

    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "the pooling allocator could not reserve its memory: using on-demand allocation, \
                 which makes each instance slower to create"
            );
            config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
            Engine::new(&config)
                .map_err(anyhow::Error::from)
                .context("creating the WebAssembly engine failed")
        }
    }
}

impl GatewayComponent {
    /// Compiles a component and links it against the host's world.
    pub fn new(
        engine: &Engine,
        bytes: &[u8],
        outbound: Arc<Outbound>,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        let component = Component::new(engine, bytes)
            .map_err(anyhow::Error::from)
            .context("the file is not a valid WebAssembly component")?;

        let mut linker = Linker::<InstanceState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI failed")?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http failed")?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .context("the component imports something the host does not provide")?;
        let pre = ProxyPre::new(pre)
            .map_err(anyhow::Error::from)
            .context("the component does not export wasi:http/incoming-handler")?;

        Ok(Self {
            pre,
            outbound,
            limits,
        })
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
        let correlation_id = context.correlation_id.clone();
        let state = InstanceState::new(self.outbound.clone(), context);
        let mut store = Store::new(self.pre.engine(), state);
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
        let slots = self.limits.max_instances;
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await.map_err(|error| {
                let error = anyhow::Error::from(error);
                if is_pool_exhausted(&error) {
                    GuestError::Busy(slots)
                } else {
                    GuestError::Failed(error)
                }
            })?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
                .map_err(|error| GuestError::Failed(error.into()))
        });

        match receiver.await {
            Ok(Ok(response)) => {
                // The guest may still be streaming the body. A trap from
                // here on ends the body with an error, which hyper turns into
                // an aborted response; log why.
                let correlation = correlation_id.to_str().unwrap_or_default().to_owned();
                tokio::spawn(async move {
                    if let Ok(Err(error)) = task.await {
                        tracing::error!(
                            correlation_id = correlation,
                            error = format!("{error:#}"),
                            "the component failed while streaming its response"
                        );
                    }
                });
                Ok(response)
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

    fn component(limits: Limits) -> GatewayComponent {
        let client = HttpClient::new().unwrap_or_else(|error| panic!("{error}"));
        let outbound = Arc::new(Outbound {
            resolver: Resolver::new(Vec::new(), None, None, &client)
                .unwrap_or_else(|error| panic!("{error}")),
            client,
            connectivity: None,
        });
        let engine = new_engine(&limits).unwrap_or_else(|error| panic!("{error}"));
        GatewayComponent::new(&engine, crate::DEFAULT_COMPONENT, outbound, limits)
            .unwrap_or_else(|error| panic!("{error:#}"))
    }

    #[tokio::test]
    async fn full_pool_is_recognised() {
        let limits = Limits {
            max_instances: 1,
            max_memory_bytes: 64 << 20,
        };
        let component = component(limits);
        let engine = component.pre.engine();
        let context = Arc::new(RequestContext {
            correlation_id: HeaderValue::from_static("test"),
            caller: None,
            refresh_token: None,
        });
        let state = || InstanceState::new(component.outbound.clone(), context.clone());

        let mut first = Store::new(engine, state());
        let _held = component
            .pre
            .instantiate_async(&mut first)
            .await
            .unwrap_or_else(|error| panic!("{error:#}"));
        let mut second = Store::new(engine, state());
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
        let client = HttpClient::new().unwrap_or_else(|error| panic!("{error}"));
        let outbound = Arc::new(Outbound {
            resolver: Resolver::new(Vec::new(), None, None, &client)
                .unwrap_or_else(|error| panic!("{error}")),
            client,
            connectivity: None,
        });
        let engine = new_engine(&limits).unwrap_or_else(|error| panic!("{error}"));
        let error = GatewayComponent::new(&engine, b"not wasm", outbound, limits).err();
        let message = error.map(|error| format!("{error:#}")).unwrap_or_default();
        assert!(
            message.contains("not a valid WebAssembly component"),
            "{message}"
        );
    }
}
