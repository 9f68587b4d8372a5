//! The `btp-gateway` command: reads the configuration, compiles the
//! component and serves HTTP until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tokio::net::TcpListener;

use btp_gateway::auth::Authenticator;
use btp_gateway::cache::{CacheLimits, SharedCache};
use btp_gateway::config::{Config, ProcessEnv};
use btp_gateway::destination::Resolver;
use btp_gateway::engine::{self, GatewayComponent, HostServices, Limits, WasiConfigVariables};
use btp_gateway::logging::{self, LogFormat};
use btp_gateway::outbound::egress::EgressPolicy;
use btp_gateway::outbound::{Connectivity, HttpClient, Outbound};
use btp_gateway::server::{self, App};

/// Runs sandboxed OData gateway components on SAP BTP Cloud Foundry.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The component to serve (a .wasm file); the bundled default gateway
    /// component when not set.
    #[arg(long, env = "BTP_GATEWAY_COMPONENT")]
    component: Option<PathBuf>,

    /// The folder with the local configuration files `.env` and
    /// `default-env.json`.
    #[arg(long, default_value = ".")]
    config_dir: PathBuf,

    /// Log line format.
    #[arg(long, env = "BTP_GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,

    /// Threads that serve requests; by default one per CPU the container
    /// may use.
    #[arg(long, env = "BTP_GATEWAY_WORKER_THREADS")]
    worker_threads: Option<usize>,

    /// Guest instances that may run at once; further requests get 503.
    #[arg(long, env = "BTP_GATEWAY_MAX_INSTANCES", default_value_t = Limits::default().max_instances)]
    max_instances: u32,

    /// Seconds one request may take, response body included; longer ones
    /// end with 504.
    #[arg(long, env = "BTP_GATEWAY_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_secs: u64,

    /// Outgoing requests one guest instance may send.
    #[arg(long, env = "BTP_GATEWAY_MAX_OUTBOUND_REQUESTS", default_value_t = Limits::default().max_outbound_requests)]
    max_outbound_requests: u32,

    /// The largest request body a client may send, in MiB.
    #[arg(long, env = "BTP_GATEWAY_MAX_REQUEST_BODY_MIB", default_value_t = Limits::default().max_request_body_bytes >> 20)]
    max_request_body_mib: u64,

    /// Maximum memory of one guest instance, in MiB.
    #[arg(long, env = "BTP_GATEWAY_MAX_MEMORY_MIB", default_value_t = (Limits::default().max_memory_bytes >> 20) as u32)]
    max_memory_mib: u32,

    /// Memory of the cache that components share across requests (CSRF
    /// tokens, `$metadata`), in MiB; the least recently used entries are
    /// evicted beyond it.
    #[arg(long, env = "BTP_GATEWAY_CACHE_MAX_MIB", default_value_t = (CacheLimits::default().max_bytes >> 20) as u32)]
    cache_max_mib: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&ProcessEnv, &args.config_dir) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("btp-gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    // A missing component file is a configuration error, like a malformed
    // variable: it stops the start with exit code 2.
    let component_bytes = match &args.component {
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

    let component = logging::Component::from_environment(
        std::env::var("VCAP_APPLICATION").ok().as_deref(),
        std::env::var("CF_INSTANCE_INDEX").ok().as_deref(),
    );
    logging::init(args.log_format, config.on_cloud_foundry, component);

    // The default follows the CPU quota of the container's cgroup, which
    // std's available_parallelism reads on Linux.
    let worker_threads = args
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
    match runtime.block_on(serve(args, config, component_bytes)) {
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

async fn serve(args: Args, config: Config, component_bytes: Vec<u8>) -> anyhow::Result<()> {
    let limits = Limits {
        max_instances: args.max_instances.max(1),
        max_memory_bytes: (args.max_memory_mib.max(1) as usize) << 20,
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
        max_outbound_requests: args.max_outbound_requests,
        max_request_body_bytes: args.max_request_body_mib.max(1) << 20,
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
            max_bytes: (args.cache_max_mib.max(1) as usize) << 20,
            ..CacheLimits::default()
        })),
    };

    let engine = engine::new_engine(&limits)?;
    let component = GatewayComponent::new(&engine, &component_bytes, services, limits)
        .with_context(|| {
            let source = args
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
    tracing::info!(
        max_instances = limits.max_instances,
        "listening on http://{address}"
    );

    let app = App::new(component, authenticator);
    server::run(listener, Arc::new(app), shutdown_signal()).await
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
