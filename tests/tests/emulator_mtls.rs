//! Tests of the mutual-TLS token endpoint (`certurl`) and the test PKI over
//! real TLS on 127.0.0.1: a good client certificate, a missing one, one of
//! another CA and one of another client, and the key store files.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use btp_gateway_tests::emulator::{
    Authentication, CertUrlConfig, CertificateConfig, ClientConfig, Destination, Emulator,
    EmulatorConfig,
};
use btp_gateway_tests::pki::{IssuedCertificate, TestCa};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const X509_CLIENT_ID: &str = "sb-x509-app!t9";
const SECRET_CLIENT_ID: &str = "sb-secret-app!t1";
const SECRET: &str = "secret";
const FORM: &str = "application/x-www-form-urlencoded";

/// Upper bound for any single request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The CA, the certificates and the emulator of one test.
struct Setup {
    ca: TestCa,
    client: IssuedCertificate,
    emulator: Emulator,
}

async fn setup() -> Result<Setup> {
    let ca = TestCa::new("btp-emulator test CA")?;
    let server = ca.server_certificate("127.0.0.1")?;
    let client = ca.client_certificate(X509_CLIENT_ID)?;
    let config = EmulatorConfig {
        clients: vec![
            ClientConfig::with_certificate(X509_CLIENT_ID, client.certificate_pem()),
            ClientConfig::new(SECRET_CLIENT_ID, SECRET),
        ],
        certurl: Some(CertUrlConfig {
            server_certificate_pem: server.chain_pem(),
            server_private_key_pem: server.private_key_pem().to_owned(),
            client_ca_pem: ca.certificate_pem().to_owned(),
        }),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    Ok(Setup {
        ca,
        client,
        emulator,
    })
}

#[derive(Debug)]
struct JsonResponse {
    status: StatusCode,
    body: Value,
}

/// Sends a POST over TLS to `base_url` (an `https://127.0.0.1:PORT` URL),
/// trusting `ca_pem` and presenting `client_certificate` if given.
async fn post_tls(
    base_url: &str,
    path: &str,
    ca_pem: &str,
    client_certificate: Option<&IssuedCertificate>,
    body: &str,
) -> Result<JsonResponse> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(certificate?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match client_certificate {
        Some(certificate) => {
            let chain = CertificateDer::pem_slice_iter(certificate.chain_pem().as_bytes())
                .collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_slice(certificate.private_key_pem().as_bytes())?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };

    let authority = base_url
        .strip_prefix("https://")
        .context("certurl is not https://")?;
    let stream = TcpStream::connect(authority).await?;
    let server_name = ServerName::try_from("127.0.0.1")?.to_owned();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(server_name, stream)
        .await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    let connection_task = tokio::spawn(connection);

    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", authority)
        .header("content-type", FORM)
        .body(Full::new(Bytes::from(body.to_owned())))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
        .await
        .context("request timed out")??;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    connection_task.abort();
    let body = serde_json::from_slice(&bytes)
        .with_context(|| format!("body is not JSON: {}", String::from_utf8_lossy(&bytes)))?;
    Ok(JsonResponse { status, body })
}

fn certurl(setup: &Setup) -> Result<&str> {
    setup.emulator.certurl().context("certurl missing")
}

fn token_form(client_id: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .finish()
}

// -------------------------------------------------------------------- certurl

#[tokio::test]
async fn certurl_issues_token_for_client_certificate() -> Result<()> {
    let setup = setup().await?;

    let response = post_tls(
        certurl(&setup)?,
        "/oauth/token",
        setup.ca.certificate_pem(),
        Some(&setup.client),
        &token_form(X509_CLIENT_ID),
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let token = response.body["access_token"]
        .as_str()
        .context("access_token missing")?;
    let claims_part = token.split('.').nth(1).context("not a JWT")?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims_part)?)?;
    assert_eq!(claims["client_id"], X509_CLIENT_ID);
    assert_eq!(claims["grant_type"], "client_credentials");
    // The token is a normal token of this emulator.
    assert_eq!(
        claims["iss"],
        format!("{}/oauth/token", setup.emulator.url())
    );
    let stats = setup.emulator.stats();
    assert_eq!(stats.certurl_token_requests, 1);
    assert_eq!(stats.token_requests, 1);
    Ok(())
}

#[tokio::test]
async fn certurl_without_client_certificate_is_401() -> Result<()> {
    let setup = setup().await?;

    let response = post_tls(
        certurl(&setup)?,
        "/oauth/token",
        setup.ca.certificate_pem(),
        None,
        &token_form(X509_CLIENT_ID),
    )
    .await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["error"], "unauthorized");
    let description = response.body["error_description"]
        .as_str()
        .context("error_description missing")?;
    assert!(
        description.contains("client certificate is required"),
        "{description}"
    );
    Ok(())
}

#[tokio::test]
async fn certurl_rejects_certificate_of_other_client() -> Result<()> {
    let setup = setup().await?;
    let other = setup.ca.client_certificate("someone-else")?;

    for client_id in [X509_CLIENT_ID, SECRET_CLIENT_ID, "unknown-client"] {
        let response = post_tls(
            certurl(&setup)?,
            "/oauth/token",
            setup.ca.certificate_pem(),
            Some(&other),
            &token_form(client_id),
        )
        .await?;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{client_id}");
        let description = response.body["error_description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.starts_with("Bad credentials"),
            "{client_id}: {description}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn certurl_rejects_certificate_of_unknown_ca() -> Result<()> {
    let setup = setup().await?;
    let foreign_ca = TestCa::new("foreign CA")?;
    let foreign_client = foreign_ca.client_certificate(X509_CLIENT_ID)?;

    let result = post_tls(
        certurl(&setup)?,
        "/oauth/token",
        setup.ca.certificate_pem(),
        Some(&foreign_client),
        &token_form(X509_CLIENT_ID),
    )
    .await;

    // The server aborts the handshake, which the client sees when it first
    // reads, so any failure on the way counts.
    assert!(result.is_err(), "request succeeded: {result:?}");
    assert_eq!(setup.emulator.stats().certurl_token_requests, 0);
    Ok(())
}

#[tokio::test]
async fn certurl_serves_only_token_endpoints() -> Result<()> {
    let setup = setup().await?;

    let response = post_tls(
        certurl(&setup)?,
        "/destination-configuration/v1/destinations/x",
        setup.ca.certificate_pem(),
        Some(&setup.client),
        "",
    )
    .await?;

    assert_eq!(response.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn secret_client_still_uses_plain_endpoint() -> Result<()> {
    let setup = setup().await?;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let basic =
        |id: &str, secret: &str| format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));

    for (client_id, secret, expected) in [
        (SECRET_CLIENT_ID, SECRET, StatusCode::OK),
        // A certificate-only client has no secret, so no secret matches.
        (X509_CLIENT_ID, "", StatusCode::UNAUTHORIZED),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(setup.emulator.token_url())
            .header("content-type", FORM)
            .header("authorization", basic(client_id, secret))
            .body(Full::new(Bytes::from("grant_type=client_credentials")))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
            .await
            .context("request timed out")??;
        assert_eq!(response.status(), expected, "{client_id}");
    }
    Ok(())
}

// --------------------------------------------------------------- bindings and files

#[tokio::test]
async fn x509_destination_binding_has_certificate() -> Result<()> {
    let setup = setup().await?;

    let binding = setup
        .emulator
        .destination_binding_x509(
            X509_CLIENT_ID,
            setup.client.certificate_pem(),
            setup.client.private_key_pem(),
        )
        .context("x509 binding missing")?;

    let credentials = &binding["credentials"];
    assert_eq!(credentials["credential-type"], "x509");
    assert_eq!(credentials["clientid"], X509_CLIENT_ID);
    assert_eq!(credentials["certurl"], certurl(&setup)?);
    assert_eq!(credentials["certificate"], setup.client.certificate_pem());
    assert_eq!(credentials["key"], setup.client.private_key_pem());
    assert_eq!(credentials["uri"], setup.emulator.url());
    assert_eq!(credentials["url"], setup.emulator.url());
    assert!(credentials.get("clientsecret").is_none());

    let plain = Emulator::start(EmulatorConfig::default()).await?;
    assert!(plain.certurl().is_none());
    assert!(plain.destination_binding_x509("a", "b", "c").is_none());
    Ok(())
}

#[tokio::test]
async fn pki_files_serve_client_certificate_destination() -> Result<()> {
    let ca = TestCa::new("files CA")?;
    let client = ca.client_certificate("backend-client")?;
    let directory = tempfile::tempdir()?;
    let pem_files = client.write_pem_files(directory.path(), "backend-client")?;
    let p12_path = directory.path().join("backend-client.p12");
    client.write_pkcs12(&p12_path, "backend-client", "changeit")?;

    let written_certificate = std::fs::read_to_string(&pem_files.certificate)?;
    assert_eq!(written_certificate, client.chain_pem());
    let written_key = std::fs::read_to_string(&pem_files.private_key)?;
    assert!(
        written_key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{written_key}"
    );
    let p12 = std::fs::read(&p12_path)?;
    ensure!(!p12.is_empty(), "PKCS#12 file is empty");

    let config = EmulatorConfig {
        clients: vec![ClientConfig::new(SECRET_CLIENT_ID, SECRET)],
        certificates: vec![CertificateConfig::from_bytes("backend-client.p12", &p12)],
        subaccount_destinations: vec![
            Destination::new(
                "mtls-backend",
                "https://127.0.0.1:4443",
                Authentication::ClientCertificateAuthentication,
            )
            .with_property("KeyStoreLocation", "backend-client.p12")
            .with_property("KeyStorePassword", "changeit"),
        ],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    let client_http: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let token_request = Request::builder()
        .method(Method::POST)
        .uri(emulator.token_url())
        .header("content-type", FORM)
        .header(
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("{SECRET_CLIENT_ID}:{SECRET}"))
            ),
        )
        .body(Full::new(Bytes::from("grant_type=client_credentials")))?;
    let token_body: Value = serde_json::from_slice(
        &client_http
            .request(token_request)
            .await?
            .into_body()
            .collect()
            .await?
            .to_bytes(),
    )?;
    let token = token_body["access_token"]
        .as_str()
        .context("access_token missing")?;
    let lookup = Request::builder()
        .uri(format!(
            "{}/destination-configuration/v1/destinations/mtls-backend",
            emulator.url()
        ))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))?;
    let body: Value = serde_json::from_slice(
        &client_http
            .request(lookup)
            .await?
            .into_body()
            .collect()
            .await?
            .to_bytes(),
    )?;

    let content = body["certificates"][0]["Content"]
        .as_str()
        .context("certificate content missing")?;
    assert_eq!(STANDARD.decode(content)?, p12);
    assert_eq!(body["certificates"][0]["Name"], "backend-client.p12");
    assert_eq!(body["certificates"][0]["Type"], "CERTIFICATE");
    Ok(())
}
