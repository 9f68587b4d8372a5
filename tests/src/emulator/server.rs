//! The running emulator: a hyper HTTP/1.1 server on 127.0.0.1 and its handle.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::access_token::IssuedTokens;
use super::config::{ConfigError, EmulatorConfig};
use super::router::{EmulatorState, TOKEN_PATH, route};
use super::stats::{Counters, EmulatorStats};
use super::token_client::TokenClient;
use super::vcap::vcap_services;

/// Maximum number of connections served at once. Further connections wait in
/// the listen backlog until one closes.
const MAX_CONNECTIONS: usize = 256;

/// Time a client has to send the request headers before the connection is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept`, so that a persistent error such as "too many
/// open files" does not spin the accept loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Failure to start the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listening socket could not be bound.
    #[error("failed to bind the emulator to {addr}: {error}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// Underlying I/O error, part of the message rather than a `source`.
        error: std::io::Error,
    },
}

/// Handle to a running emulator. Dropping it stops the server as
/// [`Emulator::shutdown`] does, but without waiting.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<EmulatorState>,
    local_addr: SocketAddr,
    shutdown_sender: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Validates `config` and starts the emulator on `127.0.0.1` at a port the
    /// operating system picks.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        Self::start_on_port(config, 0).await
    }

    /// Validates `config` and starts the emulator on `127.0.0.1:port`. Port 0
    /// lets the operating system pick one.
    pub async fn start_on_port(config: EmulatorConfig, port: u16) -> Result<Self, EmulatorError> {
        config.validate()?;

        let requested = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let bind_error = |error| EmulatorError::Bind {
            addr: requested,
            error,
        };
        let listener = TcpListener::bind(requested).await.map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let base_url = format!("http://{local_addr}");

        let state = Arc::new(EmulatorState {
            config: config.with_emulator_url(&base_url),
            base_url,
            tokens: IssuedTokens::default(),
            counters: Counters::default(),
            token_client: TokenClient::default(),
        });
        let (shutdown_sender, shutdown_receiver) = watch::channel(false);
        let accept_task =
            tokio::spawn(accept_loop(listener, Arc::clone(&state), shutdown_receiver));
        tracing::info!(url = %state.base_url, "BTP emulator started");

        Ok(Self {
            state,
            local_addr,
            shutdown_sender,
            accept_task: Some(accept_task),
        })
    }

    /// Returns the base URL, for example `http://127.0.0.1:40123`, without a
    /// trailing slash. It is both the Destination service URL and the XSUAA URL.
    pub fn url(&self) -> &str {
        &self.state.base_url
    }

    /// Returns the URL of the token endpoint, [`Emulator::url`] plus `/oauth/token`.
    pub fn token_url(&self) -> String {
        format!("{}{TOKEN_PATH}", self.state.base_url)
    }

    /// Returns the bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Returns the configuration in effect, with `${EMULATOR_URL}` replaced.
    pub fn config(&self) -> &EmulatorConfig {
        &self.state.config
    }

    /// Returns the current request counters.
    pub fn stats(&self) -> EmulatorStats {
        self.state.counters.snapshot()
    }

    /// Builds a `VCAP_SERVICES` value with one `destination` binding that
    /// points at this emulator and authenticates with the given client.
    /// The client need not be configured, so tests can build a binding with
    /// wrong credentials.
    pub fn vcap_services(&self, client_id: &str, client_secret: &str) -> serde_json::Value {
        vcap_services(self.url(), &self.state.config, client_id, client_secret)
    }

    /// Stops accepting connections, closes the open ones and waits until the
    /// server task has ended.
    pub async fn shutdown(mut self) {
        // Sending fails only when the accept loop has already ended.
        let _ = self.shutdown_sender.send(true);
        if let Some(task) = self.accept_task.take()
            && let Err(error) = task.await
        {
            tracing::error!(%error, "BTP emulator server task failed");
        }
        tracing::info!(url = %self.state.base_url, "BTP emulator stopped");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown_sender.send(true);
        if let Some(task) = self.accept_task.take() {
            task.abort();
        }
    }
}

/// Accepts connections until shutdown is requested. Dropping the `JoinSet` at
/// the end aborts the connections still open.
async fn accept_loop(
    listener: TcpListener,
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
                tracing::warn!(%error, "BTP emulator failed to accept a connection");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };

        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(route(&state, request).await) }
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "BTP emulator connection ended with an error");
            }
        });
    }
}
