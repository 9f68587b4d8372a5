//! TLS client configurations: the trusted roots, client certificates for
//! mutual TLS (X.509 bindings and `ClientCertificateAuthentication`
//! destinations), and `TrustAll` destinations.

use std::sync::{Arc, OnceLock};

use anyhow::{Context as _, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// A client certificate chain with its private key.
#[derive(Debug)]
pub struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1
    /// or SEC1).
    pub fn from_pem(certificate_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_slice_iter(certificate_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("the certificate is not valid PEM")?;
        if chain.is_empty() {
            bail!("the certificate PEM contains no certificate");
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).context("the private key is not valid PEM")?;
        Ok(Self { chain, key })
    }

    /// Reads a PKCS#12 key store (`.p12`, `.pfx`) with its password.
    pub fn from_pkcs12(data: &[u8], password: &str) -> anyhow::Result<Self> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            data,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .context("the PKCS#12 key store cannot be opened (wrong password or not PKCS#12)")?;
        let (_, chain) = store
            .private_key_chain()
            .context("the PKCS#12 key store contains no private key with a certificate")?;
        let certificates: Vec<CertificateDer<'static>> = chain
            .certs()
            .iter()
            .map(|certificate| CertificateDer::from(certificate.as_der().to_vec()))
            .collect();
        if certificates.is_empty() {
            bail!("the PKCS#12 key store has a private key without a certificate");
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
        Ok(Self {
            chain: certificates,
            key,
        })
    }
}

/// Returns the trusted certificate authorities: the system's (which honours
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`), or the Mozilla roots bundled in the
/// binary when the system has none.
pub fn root_store() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::warn!(%error, "a system certificate could not be read");
            }
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!(
                    "no system certificate authorities found: using the bundled Mozilla roots"
                );
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(roots)
        })
        .clone()
}

/// Builds a client configuration.
pub fn client_config(
    identity: Option<ClientIdentity>,
    trust_all: bool,
) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider supports no protocol version")?;
    let builder = if trust_all {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAll(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(root_store())
    };
    let config = match identity {
        Some(identity) => builder
            .with_client_auth_cert(identity.chain, identity.key)
            .context("the client certificate and key do not match or are not supported")?,
        None => builder.with_no_client_auth(),
    };
    // hyper-rustls sets the ALPN protocols from the HTTP versions it enables.
    Ok(config)
}

/// A verifier that accepts every server certificate, for destinations with
/// `TrustAll: true`. Signatures are still checked, so the handshake proves
/// the server has the private key of the certificate it sent.
#[derive(Debug)]
struct TrustAll(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
