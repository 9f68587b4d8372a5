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
use btp_gateway::cli;
use btp_gateway::components::follow::StartError;
use btp_gateway::components::oci::RegistryClient;
use btp_gateway::components::routes::{ROUTES_VARIABLE, RouteConfig, Source};
use btp_gateway::components::validate::Validator;
use btp_gateway::components::{ComponentStore, FollowSettings, spawn_followers};
use btp_gateway::config::options::{Args, Options};
use btp_gateway::config::{Config, Env, NotUnicode, ProcessEnv};
use btp_gateway::destination::Resolver;
use btp_gateway::engine::compiled_cache::CompiledCache;
use btp_gateway::engine::{self, HostServices, Limits, WasiConfigVariables};
use btp_gateway::logging;
use btp_gateway::outbound::egress::EgressPolicy;
use btp_gateway::outbound::{Connectivity, HttpClient, Outbound};
use btp_gateway::server::{self, App, ROUTER_IDLE_TIMEOUT};

/// How often a watched folder is checked for a new component.
const FOLDER_POLL: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    // Configuration errors, in flags, variables or files, exit with code 2
    // as clap's own errors do.
    let mut args = Args::parse();
    let command = args.command.take();
    let options = match args.resolve(&ProcessEnv) {
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
    let routes = match route_configs(&options, config.routes.clone()) {
        Ok(routes) => routes,
        Err(error) => {
            eprintln!("btp-gateway: invalid configuration: {error}");
            return ExitCode::from(2);
        }
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
    if let Some(command) = command {
        return runtime.block_on(run_command(command, &options, &config));
    }
    match runtime.block_on(serve(options, config, routes)) {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        // A configured component that cannot serve is a configuration
        // error, like a malformed variable.
        Err(error) if error.downcast_ref::<StartError>().is_some() => {
            tracing::error!(error = format!("{error:#}"), "the gateway cannot start");
            eprintln!("btp-gateway: invalid configuration: {error:#}");
            ExitCode::from(2)
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

/// Returns the routes: those of `BTP_GATEWAY_ROUTES`, with `--component`
/// serving `/` when no route has that path, or the one route `/` from
/// `--component` or the bundled component.
fn route_configs(
    options: &Options,
    configured: Option<Vec<RouteConfig>>,
) -> Result<Vec<RouteConfig>, String> {
    let component = options.component.clone().map(Source::File);
    match (configured, component) {
        (None, component) => Ok(vec![RouteConfig::root(
            component.unwrap_or(Source::Bundled),
        )]),
        (Some(routes), None) => Ok(routes),
        (Some(mut routes), Some(component)) => {
            if routes.iter().any(|route| route.path == "/") {
                return Err(format!(
                    "BTP_GATEWAY_COMPONENT or --component sets the component of '/', and \
                     {ROUTES_VARIABLE} has a route for '/' too: remove one of them"
                ));
            }
            routes.push(RouteConfig::root(component));
            Ok(routes)
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

async fn serve(options: Options, config: Config, routes: Vec<RouteConfig>) -> anyhow::Result<()> {
    let limits = limits(&options);

    let (services, authenticator) = host_services(&options, &config)?;
    let resolver = &services.outbound.resolver;
    if !resolver.has_service() && resolver.local_names().is_empty() {
        tracing::warn!(
            "no Destination service binding and no `destinations` variable: every destination lookup will fail"
        );
    }

    let compiled_cache = open_compiled_cache(options.compiled_cache_dir.as_deref());
    let engine = engine::new_engine_with_cache(&limits, compiled_cache.as_ref())?;
    let validator = Validator {
        engine,
        services,
        limits,
        max_component_bytes: options.component_max_mib << 20,
    };
    let store = Arc::new(ComponentStore::new(routes, validator));
    store.load_fixed_sources().await?;
    let follow = FollowSettings {
        registry_poll: Duration::from_secs(options.registry_poll_secs),
        folder_poll: FOLDER_POLL,
        registry: RegistryClient::new(config.registry_credentials.clone())?,
    };
    spawn_followers(&store, &follow);
    for route in store.routes() {
        tracing::info!(
            route = route.config.name,
            path = route.config.path,
            source = %route.config.source,
            "route configured"
        );
    }

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
    let mut app = App::new(store, authenticator).with_access(config.route_scopes, admin);
    app.compiled_cache = compiled_cache;
    server::run(
        listener,
        Arc::new(app),
        header_read_timeout,
        shutdown_signal(),
    )
    .await
}

/// Runs a command of `btp-gateway check` or `btp-gateway call`.
async fn run_command(command: cli::Command, options: &Options, config: &Config) -> ExitCode {
    let limits = limits(options);
    let prepared = host_services(options, config).and_then(|(services, _)| {
        let compiled_cache = open_compiled_cache(options.compiled_cache_dir.as_deref());
        let engine = engine::new_engine_with_cache(&limits, compiled_cache.as_ref())?;
        Ok(Validator {
            engine,
            services,
            limits,
            max_component_bytes: options.component_max_mib << 20,
        })
    });
    match prepared {
        Ok(validator) => cli::run(command, &validator).await,
        Err(error) => {
            eprintln!("btp-gateway: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Returns the instance limits that the options set.
fn limits(options: &Options) -> Limits {
    Limits {
        max_instances: options.max_instances.max(1),
        max_memory_bytes: (options.max_memory_mib.max(1) as usize) << 20,
        request_timeout: Duration::from_secs(options.request_timeout_secs.max(1)),
        max_outbound_requests: options.max_outbound_requests,
        max_request_body_bytes: options.max_request_body_mib.max(1) << 20,
        max_response_body_bytes: options.max_response_body_mib.max(1) << 20,
    }
}

/// Builds the capabilities that instances get, and the authenticator for
/// callers when xsuaa is bound.
fn host_services(
    options: &Options,
    config: &Config,
) -> anyhow::Result<(HostServices, Option<Authenticator>)> {
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
        config.local_destinations.clone(),
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
    let mut component_config = WasiConfigVariables::new();
    component_config.insert("destination-policies", config.policies.to_json());
    let outbound = Arc::new(Outbound {
        resolver,
        client,
        connectivity,
        policies: config.policies.clone(),
    });
    let services = HostServices {
        outbound,
        config: Arc::new(component_config),
        cache: Arc::new(SharedCache::new(CacheLimits {
            max_bytes: (options.cache_max_mib.max(1) as usize) << 20,
            ..CacheLimits::default()
        })),
    };

    Ok((services, authenticator))
}

/// Opens the compiled-code cache; without one, every start compiles.
fn open_compiled_cache(directory: Option<&std::path::Path>) -> Option<CompiledCache> {
    let directory = directory?;
    match CompiledCache::open(directory) {
        Ok(cache) => {
            tracing::info!(folder = %cache.directory().display(), "compiled code is cached");
            Some(cache)
        }
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "the compiled-code cache is off: every start compiles each component"
            );
            None
        }
    }
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
