//! Log output: one JSON object per line with SAP's field names on Cloud
//! Foundry, where the platform's log service parses it, and readable text
//! locally.

mod sap_json;

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

pub use sap_json::Component;
pub(crate) use sap_json::format_system_time;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON on Cloud Foundry, text elsewhere.
    Auto,
    Json,
    Text,
}

/// Installs the global subscriber. The level comes from `RUST_LOG`
/// (default `info`).
pub fn init(format: LogFormat, on_cloud_foundry: bool, component: Component) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Auto => on_cloud_foundry,
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let installed = if json {
        tracing_subscriber::registry()
            .with(filter)
            .with(sap_json::SapJsonLayer::new(component))
            .try_init()
            .is_ok()
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok()
    };
    if !installed {
        eprintln!("a log subscriber was already installed; keeping it");
    }
}
