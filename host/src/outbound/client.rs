//! The one pooled HTTP client the host sends everything with: requests to
//! destinations, token requests and Destination service lookups.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::WasiBody;

/// How long to wait for a TCP connection before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections are closed after this time. Backends and the
/// Cloud Foundry router close idle connections after about 90 seconds, so
/// the pool gives them up a little earlier to avoid reusing a closed one.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(80);

/// The largest body read by [`HttpClient::send_small`]: token and
/// Destination service responses are a few kilobytes.
const SMALL_BODY_LIMIT: usize = 1024 * 1024;

/// A pooled HTTP/1.1 client for `http` and `https` URLs.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, WasiBody>,
}

impl HttpClient {
    /// Creates a client that trusts the system's certificate authorities,
    /// or the Mozilla roots bundled in the binary when the system has none
    /// (as in minimal containers).
    pub fn new() -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);

        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(builder) => builder,
            Err(error) => {
                tracing::warn!(%error, "no system certificate authorities found: using the bundled Mozilla roots");
                hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
            }
        };
        let https = builder.https_or_http().enable_http1().wrap_connector(http);

        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(https);
        Ok(Self { inner })
    }

    /// Sends a request and returns the response with its body streaming.
    pub async fn send(
        &self,
        request: Request<WasiBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.inner.request(request).await
    }

    /// Sends a request with a small body and reads the whole response body,
    /// within `timeout`.
    pub async fn send_small(
        &self,
        request: Request<Bytes>,
        timeout: Duration,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let request = request.map(|body| {
            Full::new(body)
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync()
        });
        let exchange = async {
            let response = self.send(request).await.context("the request failed")?;
            let status = response.status();
            let body = Limited::new(response.into_body(), SMALL_BODY_LIMIT)
                .collect()
                .await
                .map_err(|error| anyhow::anyhow!("reading the response body failed: {error}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .with_context(|| format!("no response within {} seconds", timeout.as_secs()))?
    }
}
