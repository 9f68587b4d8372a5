//! The mutual-TLS token endpoint, XSUAA's `certurl`: configuration and the
//! rustls server setup.
//!
//! XSUAA bindings with `credential-type` `x509` authenticate the client by
//! its TLS certificate at `certurl` instead of by a secret. The emulator
//! serves `POST /oauth/token` and `GET /token_keys` on a TLS listener on
//! 127.0.0.1 with the configured server certificate, and requests from every
//! client a certificate that chains to the configured client CA. A connection
//! without a client certificate completes the handshake, so that the token
//! endpoint can answer with a clear 401. TLS 1.2 and 1.3 with the ring
//! provider; HTTP/1.1 only. Revocation checks are not emulated.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

use super::config::ConfigError;

/// Certificates of the mutual-TLS listener, all as PEM text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertUrlConfig {
    /// Server certificate for 127.0.0.1, followed by any intermediates.
    pub server_certificate_pem: String,
    /// Private key of the server certificate (PKCS#8, PKCS#1 or SEC1).
    pub server_private_key_pem: String,
    /// CA certificates that client certificates must chain to.
    pub client_ca_pem: String,
}

impl CertUrlConfig {
    /// Checks that every PEM field parses, by building the TLS setup once.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        self.tls_acceptor().map(|_| ())
    }

    /// Builds the rustls acceptor: the server certificate, and a client
    /// verifier that checks presented certificates against the client CA
    /// but also admits clients without one.
    pub(crate) fn tls_acceptor(&self) -> Result<TlsAcceptor, ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::InvalidField {
            field: format!("certurl.{field}"),
            reason,
        };

        let server_chain = CertificateDer::pem_slice_iter(self.server_certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| invalid("server_certificate_pem", error.to_string()))?;
        if server_chain.is_empty() {
            return Err(invalid(
                "server_certificate_pem",
                "it contains no CERTIFICATE block".to_owned(),
            ));
        }
        let server_key = PrivateKeyDer::from_pem_slice(self.server_private_key_pem.as_bytes())
            .map_err(|error| invalid("server_private_key_pem", error.to_string()))?;

        let mut client_roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(self.client_ca_pem.as_bytes()) {
            let certificate =
                certificate.map_err(|error| invalid("client_ca_pem", error.to_string()))?;
            client_roots
                .add(certificate)
                .map_err(|error| invalid("client_ca_pem", error.to_string()))?;
        }
        if client_roots.is_empty() {
            return Err(invalid(
                "client_ca_pem",
                "it contains no CERTIFICATE block".to_owned(),
            ));
        }

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(client_roots),
            Arc::clone(&provider),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|error| invalid("client_ca_pem", error.to_string()))?;
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| invalid("server_certificate_pem", error.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(server_chain, server_key)
            .map_err(|error| invalid("server_private_key_pem", error.to_string()))?;
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(server_config)))
    }
}
