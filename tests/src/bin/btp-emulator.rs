//! Serves the SAP BTP Destination service, XSUAA and Connectivity proxy
//! emulator from a JSON config file, for the local demo and for tests that
//! need a separate process.
//!
//! When the server is ready, the binary prints exactly one line to stdout,
//! `{"listening":"http://127.0.0.1:PORT","connectivity_proxy":"http://127.0.0.1:PORT","certurl":null}`,
//! so that a script can read the URLs (`certurl` is a URL only with
//! `certurl` in the config).
//! Logs go to stderr (filter with `RUST_LOG`). SIGTERM or Ctrl-C stops it.
//! The config format is documented in `btp_gateway_tests::emulator`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use btp_gateway_tests::emulator::{Emulator, EmulatorConfig, EmulatorPorts};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Emulator of the SAP BTP Destination service, XSUAA token endpoint and
/// Connectivity proxy on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "btp-emulator", version)]
struct Args {
    /// Path of the JSON config file (clients, destinations, ids).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// TCP port to listen on at 127.0.0.1 (0 lets the operating system pick one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    port: u16,

    /// TCP port of the connectivity proxy at 127.0.0.1 (0 lets the operating system pick one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    proxy_port: u16,

    /// TCP port of the mutual-TLS token endpoint at 127.0.0.1, used only with
    /// `certurl` in the config (0 lets the operating system pick one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    certurl_port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let config = EmulatorConfig::from_json_file(&args.config)?;
    let ports = EmulatorPorts {
        http: args.port,
        connectivity_proxy: args.proxy_port,
        certurl: args.certurl_port,
    };
    let emulator = Emulator::start_with_ports(config, ports).await?;

    let ready_line = serde_json::json!({
        "listening": emulator.url(),
        "connectivity_proxy": emulator.connectivity_proxy_url(),
        "certurl": emulator.certurl(),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready_line}").context("failed to write the ready line to stdout")?;
    stdout
        .flush()
        .context("failed to flush the ready line to stdout")?;
    drop(stdout);

    wait_for_stop_signal().await?;
    tracing::info!("stop signal received, shutting down");
    emulator.shutdown().await;
    Ok(())
}

/// Waits for Ctrl-C (SIGINT) or, on Unix, SIGTERM.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("failed to listen for Ctrl-C")?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("failed to listen for Ctrl-C")?;
    Ok(())
}
