//! The accept loop the test backends share: one task per connection, a
//! bounded number of connections, and a header read timeout.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Time a client has to send the request headers before the connection is
/// closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once. Further connections wait in the listen
/// backlog until one closes.
const MAX_CONNECTIONS: usize = 64;

/// Accepts connections until the task is aborted, and serves each request
/// with `handler`. Aborting drops the `JoinSet`, which aborts the
/// connections still open. `label` names the backend in log lines.
pub(crate) async fn accept_loop<H, F, B>(listener: TcpListener, label: &'static str, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            connections.join_next().await;
            continue;
        }

        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "{label} failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handler = handler.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, "{label} connection ended with an error");
            }
        });
    }
}
