//! The store data of one guest instance: an empty WASI context, the HTTP
//! context, the outbound hook with this request's context, the component's
//! configuration and its view of the shared cache.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cache::{KeyValueView, SharedCache};
use crate::outbound::{OutboundHooks, RequestContext};

use super::HostServices;

/// The store data of one instance, created per request.
pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OutboundHooks,
    config: Arc<WasiConfigVariables>,
    cache: Arc<SharedCache>,
    /// The caller's namespace in the cache's `user` bucket.
    cache_scope: Option<String>,
}

impl InstanceState {
    pub fn new(
        services: &HostServices,
        context: Arc<RequestContext>,
        max_outbound_requests: u32,
    ) -> Self {
        let cache_scope = context.caller.as_ref().map(|caller| {
            format!(
                "{}\n{}",
                caller.tenant.zone_id,
                caller.user.as_deref().unwrap_or("")
            )
        });
        Self {
            // No arguments, environment, preopened directories or sockets:
            // a standard library that imports `wasi:cli` links, but gets
            // nothing of the host.
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OutboundHooks::new(services.outbound.clone(), context, max_outbound_requests),
            config: services.config.clone(),
            cache: services.cache.clone(),
            cache_scope,
        }
    }

    /// Returns the view that `wasi:config/store` reads.
    pub fn config(&mut self) -> WasiConfig<'_> {
        WasiConfig::new(&self.config)
    }

    /// Returns the view that `wasi:keyvalue/store` works on.
    pub fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            cache: &self.cache,
            caller: self.cache_scope.as_deref(),
            table: &mut self.table,
        }
    }
}

impl std::fmt::Debug for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceState")
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
