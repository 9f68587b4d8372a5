//! The native reverse proxy of the benchmarks: the gateway's forwarding
//! and Basic credentials without WebAssembly, on 127.0.0.1.
//!
//! It prints `{"listening":"http://127.0.0.1:PORT"}` when ready.

use btp_gateway_benches::listen::{bind_loopback, serve};
use btp_gateway_benches::proxy::{Destination, NativeProxy};
use clap::Parser;

/// Native reverse proxy for benchmarks, on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "native-proxy")]
struct Args {
    /// TCP port at 127.0.0.1 (0 lets the operating system pick one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Destination name, served at `/odata/{name}/`.
    #[arg(long)]
    name: String,
    /// Destination URL; only `http://` URLs are supported.
    #[arg(long)]
    url: String,
    /// User of the destination's Basic authentication.
    #[arg(long)]
    user: String,
    /// Password of the destination's Basic authentication.
    #[arg(long)]
    password: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let destination = Destination::basic(&args.name, &args.url, &args.user, &args.password)?;
    let proxy = NativeProxy::new(destination);
    let listener = bind_loopback(args.port).await?;
    serve(listener, move |request| {
        let proxy = proxy.clone();
        async move { proxy.forward(request).await }
    })
    .await
}
