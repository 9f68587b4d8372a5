//! Log output: one JSON object per line on Cloud Foundry, where the
//! platform's log service parses it, and readable text locally.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

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
pub fn init(format: LogFormat, on_cloud_foundry: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Auto => on_cloud_foundry,
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // TODO: use SAP's field names (msg, written_at, correlation_id at top level) in JSON lines.
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        eprintln!("a log subscriber was already installed; keeping it");
    }
}
