//! One request through a fresh guest instance, as the host serves it: the
//! per-request sandbox cost that the Criterion benchmark and
//! `sandbox-probe` measure.
//!
//! The component gets the host's real services with no destinations, and
//! the request needs no outbound call, so the measured time is the
//! instance's creation from the pooling allocator, the guest's handling,
//! the response body and the instance's teardown.

use std::sync::Arc;

use anyhow::Context as _;
use btp_gateway::cache::{CacheLimits, SharedCache};
use btp_gateway::config::DestinationPolicies;
use btp_gateway::destination::Resolver;
use btp_gateway::engine::compiled_cache::CompiledCache;
use btp_gateway::engine::{
    GatewayComponent, HostServices, Limits, WasiConfigVariables, new_engine_with_cache,
};
use btp_gateway::outbound::egress::EgressPolicy;
use btp_gateway::outbound::{HttpClient, Outbound, RequestContext};
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt as _;

/// A compiled component and the request it is measured with.
#[derive(Debug)]
pub struct Sandbox {
    component: GatewayComponent,
    limits: Limits,
    context: Arc<RequestContext>,
    request: http::Request<Bytes>,
}

impl Sandbox {
    /// Compiles `component` (or loads it from `compiled_cache`) with the
    /// pooling allocator sized by `limits`, to serve `GET path`.
    pub fn new(
        component: &[u8],
        limits: Limits,
        compiled_cache: Option<&CompiledCache>,
        path: &str,
    ) -> anyhow::Result<Self> {
        let engine = new_engine_with_cache(&limits, compiled_cache)?;
        let component = GatewayComponent::new(&engine, component, host_services()?, limits)?;
        let request = http::Request::get(path)
            .header(http::header::HOST, "localhost")
            .body(Bytes::new())
            .context("invalid request path")?;
        let context = Arc::new(RequestContext {
            correlation_id: HeaderValue::from_static("benchmark"),
            caller: None,
            refresh_token: None,
        });
        Ok(Self {
            component,
            limits,
            context,
            request,
        })
    }

    /// Runs the request in a fresh instance, reads the whole response body
    /// and returns its length. Needs a tokio runtime, because the host
    /// runs the instance in a task.
    ///
    /// # Errors
    ///
    /// When the guest fails or responds with a status of 500 or above,
    /// which would make the measurement meaningless.
    pub async fn handle_one(&self) -> anyhow::Result<usize> {
        let response = self
            .component
            .handle_buffered(self.request.clone(), self.context.clone(), self.limits)
            .await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("the response body failed")?
            .to_bytes();
        anyhow::ensure!(
            !status.is_server_error(),
            "the component answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(body.len())
    }
}

/// Returns the host's services with no destinations and no Destination
/// service, as in a gateway without bindings.
fn host_services() -> anyhow::Result<HostServices> {
    let client = HttpClient::new(EgressPolicy { allow_local: false })?;
    let resolver = Resolver::new(Vec::new(), None, None, &client)?;
    let outbound = Outbound {
        resolver,
        client,
        connectivity: None,
        policies: DestinationPolicies::default(),
    };
    Ok(HostServices {
        outbound: Arc::new(outbound),
        config: Arc::new(WasiConfigVariables::new()),
        cache: Arc::new(SharedCache::new(CacheLimits::default())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn default_guest_answers_root() -> anyhow::Result<()> {
        let limits = Limits {
            max_instances: 2,
            ..Limits::default()
        };
        let sandbox = Sandbox::new(btp_gateway::DEFAULT_COMPONENT, limits, None, "/")?;

        let first = sandbox.handle_one().await?;
        let second = sandbox.handle_one().await?;

        assert!(first > 0, "the default guest sent an empty body for GET /");
        assert_eq!(first, second);
        Ok(())
    }
}
