//! Accept loops of the emulator's three listeners: the HTTP endpoints, the
//! connectivity proxy and the mutual-TLS token endpoint, each an HTTP/1.1
//! server on 127.0.0.1.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::connectivity_proxy::handle_proxy_request;
use super::router::{ConnectionInfo, EmulatorState, ListenerKind, route};

/// Maximum number of connections served at once per listener. Further
/// connections wait in the listen backlog until one closes.
const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send the request headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept`, so that a persistent error such as "too many
/// open files" does not spin the accept loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// What a listener serves.
#[derive(Clone)]
pub(crate) enum Service {
    /// Token endpoint, Destination service and emulator endpoints.
    Endpoints,
    /// The connectivity proxy.
    ConnectivityProxy,
    /// The token endpoint behind mutual TLS.
    CertUrl(TlsAcceptor),
}

impl std::fmt::Debug for Service {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Service::Endpoints => "Endpoints",
            Service::ConnectivityProxy => "ConnectivityProxy",
            Service::CertUrl(_) => "CertUrl",
        };
        formatter.write_str(name)
    }
}

/// Accepts connections until shutdown is requested. Dropping the `JoinSet` at
/// the end aborts the connections still open.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    service: Service,
    state: Arc<EmulatorState>,
    mut shutdown_receiver: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            tokio::select! {
                _ = shutdown_receiver.changed() => break,
                _ = connections.join_next() => continue,
            }
        }

        let accepted = tokio::select! {
            _ = shutdown_receiver.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                tracing::warn!(%error, ?service, "BTP emulator failed to accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };

        let state = Arc::clone(&state);
        let service = service.clone();
        connections.spawn(async move {
            let served = match service {
                Service::Endpoints => serve(stream, state, ConnectionInfo::HTTP, false).await,
                Service::ConnectivityProxy => {
                    serve(stream, state, ConnectionInfo::HTTP, true).await
                }
                Service::CertUrl(acceptor) => {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    let tls_stream = match handshake {
                        Ok(Ok(tls_stream)) => tls_stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, %peer, "TLS handshake at the certurl failed");
                            return;
                        }
                        Err(_elapsed) => {
                            tracing::debug!(%peer, "TLS handshake at the certurl timed out");
                            return;
                        }
                    };
                    let client_certificate = tls_stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|certificate| certificate.as_ref().to_vec());
                    let connection = ConnectionInfo {
                        listener: ListenerKind::CertUrl,
                        client_certificate,
                    };
                    serve(tls_stream, state, connection, false).await
                }
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "BTP emulator connection ended with an error");
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection, with the proxy handler or the router.
async fn serve<Stream>(
    stream: Stream,
    state: Arc<EmulatorState>,
    connection: ConnectionInfo,
    is_proxy: bool,
) -> Result<(), hyper::Error>
where
    Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let connection = Arc::new(connection);
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        let connection = Arc::clone(&connection);
        async move {
            let response = if is_proxy {
                handle_proxy_request(&state, request).await
            } else {
                route(&state, request, &connection).await
            };
            Ok::<_, Infallible>(response)
        }
    });
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await
}
