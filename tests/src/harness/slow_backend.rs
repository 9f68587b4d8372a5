//! A backend that waits before it responds, so that a test can have
//! requests in flight at a moment it chooses, for example when it stops the
//! gateway.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running slow backend on `127.0.0.1`. It counts every request when it
/// arrives, and responds after the delay with `200` and the same body, as
/// `application/octet-stream` so that the gateway passes it through
/// unchanged. Dropping the backend stops it and closes open connections.
#[derive(Debug)]
pub struct SlowBackend {
    url: String,
    received: Arc<AtomicUsize>,
    accept_task: JoinHandle<()>,
}

impl SlowBackend {
    /// Starts the backend on a port the operating system picks.
    pub async fn start(delay: Duration, body: Bytes) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        let accept_task = tokio::spawn(super::serve::accept_loop(
            listener,
            "slow backend",
            move |request| {
                counter.fetch_add(1, Ordering::SeqCst);
                respond_later(request, delay, body.clone())
            },
        ));
        Ok(Self {
            url,
            received,
            accept_task,
        })
    }

    /// Returns the base URL, `http://127.0.0.1:PORT`, without a trailing
    /// slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns how many requests have arrived so far, including those still
    /// waiting for their response.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for SlowBackend {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Reads and discards the request body, waits for `delay`, and responds
/// with `200` and `body`.
async fn respond_later(
    request: Request<Incoming>,
    delay: Duration,
    body: Bytes,
) -> Response<Full<Bytes>> {
    // The body is read so that the connection stays usable for keep-alive.
    // Its content is not needed, so a read error is ignored.
    let _ = request.into_body().collect().await;
    tokio::time::sleep(delay).await;

    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    response
}
