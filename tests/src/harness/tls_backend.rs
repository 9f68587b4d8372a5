//! An HTTPS backend on 127.0.0.1 for client certificate and `TrustAll`
//! tests. It responds to every request with JSON that shows the request's
//! headers and the client certificate the TLS handshake presented.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::pki::{IssuedCertificate, TestCa};

/// A running HTTPS backend.
#[derive(Debug)]
pub struct TlsBackend {
    url: String,
    task: JoinHandle<()>,
}

impl TlsBackend {
    /// Starts a backend with `server` as its certificate. With `client_ca`,
    /// the handshake requires a client certificate issued by that CA.
    pub async fn start(
        server: &IssuedCertificate,
        client_ca: Option<&TestCa>,
    ) -> anyhow::Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(CertificateDer::from(ca.certificate_der().to_vec()))?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let chain = vec![CertificateDer::from(server.certificate_der().to_vec())];
        let key = PrivateKeyDer::from_pem_slice(server.private_key_pem().as_bytes())?;
        let mut config = builder.with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("https://127.0.0.1:{}", listener.local_addr()?.port());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // Handshake failures (no or wrong client certificate)
                    // end the connection; the client sees the TLS error.
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let presented = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|certificate| {
                            base64::engine::general_purpose::STANDARD.encode(certificate.as_ref())
                        });
                    let service = service_fn(move |request| answer(request, presented.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { url, task })
    }

    /// Returns the base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: Request<Incoming>,
    presented: Option<String>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into(),
            )
        })
        .collect();
    let body = serde_json::json!({
        "path": request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/"),
        "headers": headers,
        "client_certificate": presented,
    });
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
