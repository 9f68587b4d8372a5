//! Pooled HTTP clients: the default one for requests to destinations, token
//! requests and Destination service lookups, clients with their own TLS
//! settings (client certificates, `TrustAll`), and clients that send through
//! the Connectivity service's on-premise proxy.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use wasmtime_wasi_http::WasiBody;

use super::egress::{EgressPolicy, GuardedConnector};
use super::tls;

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
    inner: Inner,
    policy: EgressPolicy,
}

#[derive(Clone, Debug)]
enum Inner {
    Direct(Client<HttpsConnector<GuardedConnector>, WasiBody>),
    Proxied(Client<ProxyConnector, WasiBody>),
}

impl HttpClient {
    /// Creates a client that trusts the system's certificate authorities
    /// and connects only where `policy` allows.
    pub fn new(policy: EgressPolicy) -> anyhow::Result<Self> {
        Self::build(tls::client_config(None, false)?, policy)
    }

    /// Creates a client with the same address policy and its own TLS
    /// configuration.
    pub fn with_tls(&self, config: rustls::ClientConfig) -> anyhow::Result<Self> {
        Self::build(config, self.policy)
    }

    fn build(config: rustls::ClientConfig, policy: EgressPolicy) -> anyhow::Result<Self> {
        let connector = GuardedConnector::new(policy, configure_http);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(Self {
            inner: Inner::Direct(builder().build(https)),
            policy,
        })
    }

    /// Creates a client that sends every request in absolute form to an
    /// HTTP proxy, as the Connectivity service's on-premise proxy expects.
    /// The proxy's address comes from the connectivity binding, so the
    /// address policy does not apply to it.
    pub fn through_proxy(&self, host: &str, port: u16) -> anyhow::Result<Self> {
        let proxy: Uri = format!("http://{host}:{port}")
            .parse()
            .with_context(|| format!("'{host}:{port}' is not a valid proxy address"))?;
        let mut http = HttpConnector::new();
        configure_http(&mut http);
        let connector = ProxyConnector { proxy, http };
        Ok(Self {
            inner: Inner::Proxied(builder().build(connector)),
            policy: self.policy,
        })
    }

    /// Sends a request and returns the response with its body streaming.
    pub async fn send(
        &self,
        request: Request<WasiBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        match &self.inner {
            Inner::Direct(client) => client.request(request).await,
            Inner::Proxied(client) => client.request(request).await,
        }
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

fn configure_http<R>(http: &mut HttpConnector<R>) {
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
}

fn builder() -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(POOL_IDLE_TIMEOUT);
    builder
}

/// Connects every request to the proxy and marks the connection as proxied,
/// so the client writes the request target in absolute form.
#[derive(Clone, Debug)]
struct ProxyConnector {
    proxy: Uri,
    http: HttpConnector,
}

impl tower_service::Service<Uri> for ProxyConnector {
    type Response = ProxiedStream;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, _target: Uri) -> Self::Future {
        let connecting = self.http.call(self.proxy.clone());
        Box::pin(async move { Ok(ProxiedStream(connecting.await?)) })
    }
}

/// A TCP connection to the proxy.
#[derive(Debug)]
struct ProxiedStream(TokioIo<TcpStream>);

impl Connection for ProxiedStream {
    fn connected(&self) -> Connected {
        self.0.connected().proxy(true)
    }
}

impl hyper::rt::Read for ProxiedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ProxiedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
