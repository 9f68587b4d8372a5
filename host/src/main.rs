//! The `btp-gateway` command: reads the configuration, compiles the
//! component and serves HTTP until SIGTERM or Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;

use btp_gateway::auth::Authenticator;
use btp_gateway::auth::admin::AdminAccess;
use btp_gateway::cache::{CacheLimits, SharedCache};
use btp_gateway::config::options::{Args, Options};
use btp_gateway::config::{Config, Env, NotUnicode, ProcessEnv};
use btp_gateway::destination::Resolver;
use btp_gateway::engine::{self, GatewayComponent, HostServices, Limits, WasiConfigVariables};
use btp_gateway::logging;
use btp_gateway::outbound::egress::EgressPolicy;
use btp_gateway::outbound::{Connectivity, HttpClient, Outbound};
use btp_gateway::server::{self, App, ROUTER_IDLE_TIMEOUT};

fn main() -> ExitCode {
    // Configuration errors, in flags, variables or files, exit with code 2
    // as clap's own errors do.
    let options = match Args::parse().resolve(&ProcessEnv) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("btp-gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(&ProcessEnv, &options.config_dir) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("btp-gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // A missing component file is a configuration error, like a malformed
    // variable: it stops the start with exit code 2.
    let component_bytes = match &options.component {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                eprintln!(
                    "btp-gateway: cannot read the component {}: {error}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => btp_gateway::DEFAULT_COMPONENT.to_vec(),
    };

    let component = match log_settings(&ProcessEnv) {
        Ok(component) => component,
        Err(error) => {
            eprintln!("btp-gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    logging::init(options.log_format, config.on_cloud_foundry, component);

    // The default follows the CPU quota of the container's cgroup, which
    // std's available_parallelism reads on Linux.
    let worker_threads = options
        .worker_threads
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(2)
        .max(1);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "starting the async runtime failed");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(options, config, component_bytes)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "the gateway stopped with an error"
            );
            ExitCode::FAILURE
        }
    }
}

/// Returns the application and instance that JSON log lines name, from
/// the process environment.
///
/// It also checks `RUST_LOG`, which tracing-subscriber reads itself and
/// would read as unset, logging at `info`, when the value is not UTF-8.
fn log_settings(env: &dyn Env) -> Result<logging::Component, NotUnicode> {
    env.var("RUST_LOG")?;
    Ok(logging::Component::from_environment(
        env.var("VCAP_APPLICATION")?.as_deref(),
        env.var("CF_INSTANCE_INDEX")?.as_deref(),
    ))
}

async fn serve(options: Options, config: Config, component_bytes: Vec<u8>) -> anyhow::Result<()> {
    let limits = Limits {
        max_instances: options.max_instances.max(1),
        max_memory_bytes: (options.max_memory_mib.max(1) as usize) << 20,
        request_timeout: Duration::from_secs(options.request_timeout_secs.max(1)),
        max_outbound_requests: options.max_outbound_requests,
        max_request_body_bytes: options.max_request_body_mib.max(1) << 20,
        max_response_body_bytes: options.max_response_body_mib.max(1) << 20,
    };

    let client = HttpClient::new(EgressPolicy {
        allow_local: config.allow_local_addresses,
    })?;
    if config.allow_local_addresses && config.on_cloud_foundry {
        tracing::warn!(
            "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES is on: destinations may reach loopback and metadata addresses"
        );
    }
    let provider_zone = config
        .xsuaa
        .as_ref()
        .and_then(|xsuaa| xsuaa.tenant_id.clone());
    let resolver = Resolver::new(
        config.local_destinations,
        config.destination_service.as_ref(),
        provider_zone,
        &client,
    )?;
    let connectivity = match &config.connectivity {
        Some(credentials) => Some(Connectivity::new(credentials, &client)?),
        None => None,
    };
    let authenticator = config
        .xsuaa
        .clone()
        .map(|xsuaa| Authenticator::new(xsuaa, client.clone()));
    tracing::info!(
        sources = config.sources.join(", "),
        destination_service = config
            .destination_service
            .as_ref()
            .map(|c| c.binding_name.as_str())
            .unwrap_or("none"),
        local_destinations = resolver.local_names().join(", "),
        "configuration loaded"
    );
    if !resolver.has_service() && resolver.local_names().is_empty() {
        tracing::warn!(
            "no Destination service binding and no `destinations` variable: every destination lookup will fail"
        );
    }
    let mut component_config = WasiConfigVariables::new();
    component_config.insert("destination-policies", config.policies.to_json());
    let outbound = Arc::new(Outbound {
        resolver,
        client,
        connectivity,
        policies: config.policies,
    });
    let services = HostServices {
        outbound,
        config: Arc::new(component_config),
        cache: Arc::new(SharedCache::new(CacheLimits {
            max_bytes: (options.cache_max_mib.max(1) as usize) << 20,
            ..CacheLimits::default()
        })),
    };

    let engine = engine::new_engine(&limits)?;
    let component = GatewayComponent::new(&engine, &component_bytes, services, limits)
        .with_context(|| {
            let source = options
                .component
                .as_ref()
                .map_or("the bundled component".to_owned(), |p| {
                    p.display().to_string()
                });
            format!("cannot load {source}")
        })?;

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let header_read_timeout = Duration::from_secs(options.header_read_timeout_secs);
    if header_read_timeout <= ROUTER_IDLE_TIMEOUT {
        tracing::warn!(
            header_read_timeout_secs = options.header_read_timeout_secs,
            "the header read timeout also ends idle keep-alive connections, and it is not above \
             the {} seconds for which the Cloud Foundry router keeps them: idle router \
             connections will be closed early; set BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS above {}",
            ROUTER_IDLE_TIMEOUT.as_secs(),
            ROUTER_IDLE_TIMEOUT.as_secs()
        );
    }
    tracing::info!(
        max_instances = limits.max_instances,
        header_read_timeout_secs = options.header_read_timeout_secs,
        "listening on http://{address}"
    );

    let admin = AdminAccess {
        scope: config
            .xsuaa
            .as_ref()
            .map(|xsuaa| format!("{}.Admin", xsuaa.xsappname)),
        token: config.admin_token,
    };
    let app = App::new(component, authenticator).with_access(config.route_scopes, admin);
    server::run(
        listener,
        Arc::new(app),
        header_read_timeout,
        shutdown_signal(),
    )
    .await
}

/// Completes on SIGTERM (Cloud Foundry stopping the app) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the gateway");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown signal received");
}
