//! The running emulator: its listeners on 127.0.0.1 and the handle tests
//! use to read URLs, create user tokens and build service bindings.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::access_token::TOKEN_PATH;
use super::config::{ConfigError, EmulatorConfig};
use super::listener::{Service, accept_loop};
use super::refresh_tokens::RefreshTokens;
use super::router::EmulatorState;
use super::saml_assertion::{
    AssertionRequest, DEFAULT_AUTHN_CONTEXT, DEFAULT_NAME_ID_FORMAT, SamlAssertions,
};
use super::signing_key::{SigningKeyError, TokenSigner};
use super::stats::{Counters, EmulatorStats};
use super::token_client::TokenClient;
use super::user_token::{UserTokenSpec, mint_user_token};
use super::users::UserIdentity;
use super::vcap::{self, BindingUrls};

/// Failure to start the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listening socket could not be bound.
    #[error("failed to bind the emulator to {addr}: {error}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// Underlying I/O error, part of the message rather than a `source`.
        error: std::io::Error,
    },
    /// The token signing key could not be created.
    #[error(transparent)]
    SigningKey(#[from] SigningKeyError),
}

/// Ports of the emulator's listeners on 127.0.0.1. Port 0 lets the
/// operating system pick one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmulatorPorts {
    /// Token endpoint, Destination service and emulator endpoints.
    pub http: u16,
    /// The connectivity proxy.
    pub connectivity_proxy: u16,
    /// The mutual-TLS token endpoint, started only with `certurl` configured.
    pub certurl: u16,
}

/// Handle to a running emulator. Dropping it stops the listeners as
/// [`Emulator::shutdown`] does, but without waiting.
#[derive(Debug)]
pub struct Emulator {
    state: Arc<EmulatorState>,
    local_addr: SocketAddr,
    connectivity_proxy_url: String,
    certurl: Option<String>,
    shutdown_sender: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Validates `config` and starts the emulator on `127.0.0.1` at ports the
    /// operating system picks.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        Self::start_with_ports(config, EmulatorPorts::default()).await
    }

    /// Validates `config` and starts the emulator with its HTTP endpoints on
    /// `127.0.0.1:port` and the other listeners at ports the operating system
    /// picks. Port 0 lets the operating system pick that one too.
    pub async fn start_on_port(config: EmulatorConfig, port: u16) -> Result<Self, EmulatorError> {
        let ports = EmulatorPorts {
            http: port,
            ..EmulatorPorts::default()
        };
        Self::start_with_ports(config, ports).await
    }

    /// Validates `config`, generates the signing key and starts every
    /// listener on `127.0.0.1` at the given ports.
    pub async fn start_with_ports(
        config: EmulatorConfig,
        ports: EmulatorPorts,
    ) -> Result<Self, EmulatorError> {
        config.validate()?;
        let certurl_acceptor = config
            .certurl
            .as_ref()
            .map(|certurl| certurl.tls_acceptor())
            .transpose()?;

        let (listener, local_addr) = bind(ports.http).await?;
        let (proxy_listener, proxy_addr) = bind(ports.connectivity_proxy).await?;
        let certurl_listener = match &certurl_acceptor {
            Some(_) => Some(bind(ports.certurl).await?),
            None => None,
        };
        let base_url = format!("http://{local_addr}");

        // Key generation is CPU-bound and slow in unoptimised builds, so it
        // must not block the runtime's worker threads.
        let signer = tokio::task::spawn_blocking(TokenSigner::generate)
            .await
            .map_err(|error| {
                SigningKeyError::new(format!("key generation task failed: {error}"))
            })??;

        let state = Arc::new(EmulatorState {
            config: config.with_emulator_url(&base_url),
            base_url,
            signer,
            refresh_tokens: RefreshTokens::default(),
            saml_assertions: SamlAssertions::default(),
            counters: Counters::default(),
            token_client: TokenClient::default(),
            forward_client: Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>(),
        });

        let (shutdown_sender, shutdown_receiver) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(accept_loop(
                listener,
                Service::Endpoints,
                Arc::clone(&state),
                shutdown_receiver.clone(),
            )),
            tokio::spawn(accept_loop(
                proxy_listener,
                Service::ConnectivityProxy,
                Arc::clone(&state),
                shutdown_receiver.clone(),
            )),
        ];
        let mut certurl = None;
        if let (Some(acceptor), Some((certurl_listener, certurl_addr))) =
            (certurl_acceptor, certurl_listener)
        {
            tasks.push(tokio::spawn(accept_loop(
                certurl_listener,
                Service::CertUrl(acceptor),
                Arc::clone(&state),
                shutdown_receiver,
            )));
            certurl = Some(format!("https://{certurl_addr}"));
        }

        let connectivity_proxy_url = format!("http://{proxy_addr}");
        tracing::info!(
            url = %state.base_url,
            connectivity_proxy = connectivity_proxy_url,
            certurl,
            "BTP emulator started"
        );
        Ok(Self {
            state,
            local_addr,
            connectivity_proxy_url,
            certurl,
            shutdown_sender,
            tasks,
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

    /// Returns the URL of the connectivity proxy, for example
    /// `http://127.0.0.1:40124`.
    pub fn connectivity_proxy_url(&self) -> &str {
        &self.connectivity_proxy_url
    }

    /// Returns the base URL of the mutual-TLS token endpoint, for example
    /// `https://127.0.0.1:40125`, or `None` without `certurl` in the config.
    pub fn certurl(&self) -> Option<&str> {
        self.certurl.as_deref()
    }

    /// Returns the bound socket address of the HTTP endpoints.
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

    /// Returns the public key that verifies the emulator's tokens, as PEM.
    pub fn verification_key(&self) -> &str {
        self.state.signer.public_key_pem()
    }

    /// Returns the key id (`kid`) of the emulator's tokens.
    pub fn key_id(&self) -> &str {
        self.state.signer.key_id()
    }

    /// Creates a signed user token as if the user had logged in through the
    /// approuter. See [`UserTokenSpec`].
    pub fn user_token(&self, spec: &UserTokenSpec) -> String {
        mint_user_token(&self.state, spec)
    }

    /// Builds a SAML assertion for a provider user, as the Destination
    /// service does for `OAuth2SAMLBearerAssertion`, and returns it
    /// base64url-encoded for the `assertion` field of the SAML 2.0 bearer
    /// grant. Only this emulator accepts it, and only once.
    pub fn saml_assertion(&self, user_name: &str, audience: &str) -> String {
        let config = &self.state.config;
        let configured = config
            .users
            .iter()
            .find(|user| user.user_name == user_name && user.zone_id.is_none());
        let user = UserIdentity::new(&config.subaccount_id, user_name, configured);
        let token_url = self.token_url();
        self.state.saml_assertions.build(&AssertionRequest {
            user: &user,
            name_id_format: DEFAULT_NAME_ID_FORMAT,
            audience,
            recipient: &token_url,
            issuer: &self.state.base_url,
            authn_context_class_ref: DEFAULT_AUTHN_CONTEXT,
        })
    }

    /// Builds a `VCAP_SERVICES` value with one `destination` binding that
    /// points at this emulator and authenticates with the given client.
    /// The client need not be configured, so tests can build a binding with
    /// wrong credentials.
    pub fn vcap_services(&self, client_id: &str, client_secret: &str) -> Value {
        Self::vcap_services_with(&[self.destination_binding(client_id, client_secret)])
    }

    /// Composes `VCAP_SERVICES` from binding entries such as
    /// [`Emulator::destination_binding`], grouped by their `label`.
    pub fn vcap_services_with(bindings: &[Value]) -> Value {
        vcap::compose(bindings)
    }

    /// Builds one `destination` binding entry with a client secret.
    pub fn destination_binding(&self, client_id: &str, client_secret: &str) -> Value {
        vcap::destination_binding(
            &self.binding_urls(),
            &self.state.config,
            client_id,
            vcap::Credential::Secret(client_secret),
        )
    }

    /// Builds one `destination` binding entry with `credential-type` `x509`:
    /// the client authenticates with `certificate_pem` and `key_pem` at the
    /// binding's `certurl`. Returns `None` when no `certurl` is configured.
    pub fn destination_binding_x509(
        &self,
        client_id: &str,
        certificate_pem: &str,
        key_pem: &str,
    ) -> Option<Value> {
        self.certurl.as_ref()?;
        Some(vcap::destination_binding(
            &self.binding_urls(),
            &self.state.config,
            client_id,
            vcap::Credential::X509 {
                certificate_pem,
                key_pem,
            },
        ))
    }

    /// Builds one `xsuaa` binding entry (plan `application`) for an
    /// application with the given `xsappname`.
    pub fn xsuaa_binding(&self, client_id: &str, client_secret: &str, xsappname: &str) -> Value {
        vcap::xsuaa_binding(
            &self.binding_urls(),
            &self.state.config,
            client_id,
            client_secret,
            xsappname,
        )
    }

    /// Builds one `connectivity` binding entry whose proxy is this
    /// emulator's connectivity proxy.
    pub fn connectivity_binding(&self, client_id: &str, client_secret: &str) -> Value {
        vcap::connectivity_binding(
            &self.binding_urls(),
            &self.state.config,
            client_id,
            client_secret,
        )
    }

    fn binding_urls(&self) -> BindingUrls<'_> {
        BindingUrls {
            emulator_url: &self.state.base_url,
            certurl: self.certurl.as_deref(),
            connectivity_proxy_port: self.connectivity_proxy_port(),
            verification_key: self.state.signer.public_key_pem(),
        }
    }

    fn connectivity_proxy_port(&self) -> u16 {
        self.connectivity_proxy_url
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_default()
    }

    /// Stops accepting connections, closes the open ones and waits until the
    /// listener tasks have ended.
    pub async fn shutdown(mut self) {
        // Sending fails only when every accept loop has already ended.
        let _ = self.shutdown_sender.send(true);
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await {
                tracing::error!(%error, "BTP emulator listener task failed");
            }
        }
        tracing::info!(url = %self.state.base_url, "BTP emulator stopped");
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown_sender.send(true);
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

/// Binds a listener on `127.0.0.1:port`.
async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), EmulatorError> {
    let requested = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let bind_error = |error| EmulatorError::Bind {
        addr: requested,
        error,
    };
    let listener = TcpListener::bind(requested).await.map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local_addr))
}
