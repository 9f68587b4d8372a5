//! The accept loop of the benchmark servers: HTTP/1.1 with keep-alive, one
//! task per connection, on 127.0.0.1 only.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context as _;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Binds 127.0.0.1:`port` (0 lets the operating system pick one) and prints
/// the ready line `{"listening":"http://127.0.0.1:PORT"}` to stdout.
pub async fn bind_loopback(port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr()?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{{\"listening\":\"http://{bound}\"}}")
        .context("failed to write the ready line to stdout")?;
    stdout.flush().context("failed to flush stdout")?;
    Ok(listener)
}

/// Serves every connection of `listener` with `handler` until the process
/// ends. A failed connection is logged at debug level, because load
/// generators close connections abruptly when their run ends.
pub async fn serve<H, F, B>(listener: TcpListener, handler: H) -> anyhow::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Running out of file descriptors is the usual cause; a
                // pause lets connections close.
                tracing::warn!(%error, "failed to accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let served = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}
