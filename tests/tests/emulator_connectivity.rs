//! Tests of the emulated Connectivity proxy and the service bindings over
//! real HTTP on 127.0.0.1: forwarding by virtual host and location id, the
//! propagation headers, rejected proxy authorization and unknown hosts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use btp_gateway_tests::emulator::{
    ClientConfig, Emulator, EmulatorConfig, UserTokenSpec, VirtualHostConfig,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const APP_CLIENT_ID: &str = "sb-app!t1";
const APP_CLIENT_SECRET: &str = "app-secret";
const CONNECTIVITY_CLIENT_ID: &str = "sb-connectivity!b7";
const CONNECTIVITY_CLIENT_SECRET: &str = "connectivity-secret";
const FORM: &str = "application/x-www-form-urlencoded";

/// Upper bound for any single request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A backend on 127.0.0.1 that returns the method, path, headers and body of
/// every request as JSON. Dropping it stops the server task.
struct EchoBackend {
    url: String,
    task: JoinHandle<()>,
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut headers = Map::new();
    for (name, value) in request.headers() {
        headers.insert(
            name.as_str().to_owned(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_owned();
    let method = request.method().to_string();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| String::from_utf8_lossy(&collected.to_bytes()).into_owned())
        .unwrap_or_default();
    let echoed = json!({ "method": method, "path": path, "headers": headers, "body": body });
    let mut response = Response::new(Full::new(Bytes::from(echoed.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
        .headers_mut()
        .insert("x-backend", http::HeaderValue::from_static("echo"));
    Ok(response)
}

async fn start_echo_backend() -> Result<EchoBackend> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        // The loop ends when the test drops the backend and aborts the task.
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(echo))
                    .await;
            });
        }
    });
    Ok(EchoBackend { url, task })
}

#[derive(Debug)]
struct TextResponse {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl TextResponse {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("body is not JSON: {}", self.body))
    }
}

/// Sends one request to the proxy at `proxy_addr` with an absolute-form
/// request target, the way an HTTP client configured with a proxy does.
async fn send_via_proxy(
    proxy_addr: SocketAddr,
    method: Method,
    absolute_url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<TextResponse> {
    let stream = TcpStream::connect(proxy_addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection_task = tokio::spawn(connection);

    let mut builder = Request::builder().method(method).uri(absolute_url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::from(body.to_owned())))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
        .await
        .context("proxy request timed out")??;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    connection_task.abort();
    Ok(TextResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

async fn send_json(url: &str, headers: &[(&str, &str)], body: &str) -> Result<(StatusCode, Value)> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder().method(Method::POST).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::from(body.to_owned())))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .context("request timed out")??;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes)?))
}

async fn client_token(emulator: &Emulator, client_id: &str, secret: &str) -> Result<String> {
    let authorization = format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")));
    let (status, body) = send_json(
        &emulator.token_url(),
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=client_credentials",
    )
    .await?;
    ensure!(status == StatusCode::OK, "token request failed: {body}");
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("access_token missing")
}

fn proxy_addr(emulator: &Emulator) -> Result<SocketAddr> {
    let url = emulator.connectivity_proxy_url();
    Ok(url
        .strip_prefix("http://")
        .context("proxy URL is not http://")?
        .parse()?)
}

async fn start(backend: &EchoBackend) -> Result<Emulator> {
    let config = EmulatorConfig {
        clients: vec![ClientConfig::new(APP_CLIENT_ID, APP_CLIENT_SECRET)],
        connectivity_clients: vec![ClientConfig::new(
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET,
        )],
        virtual_hosts: vec![
            VirtualHostConfig::new("s4.onprem", 44300, &backend.url).with_location_id("LOC1"),
            VirtualHostConfig::new("erp.onprem", 8000, &backend.url),
        ],
        ..EmulatorConfig::default()
    };
    Ok(Emulator::start(config).await?)
}

// -------------------------------------------------------------------- forwarding

#[tokio::test]
async fn proxy_forwards_with_propagation_headers() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let proxy_token = client_token(
        &emulator,
        CONNECTIVITY_CLIENT_ID,
        CONNECTIVITY_CLIENT_SECRET,
    )
    .await?;
    let technical_token = client_token(&emulator, APP_CLIENT_ID, APP_CLIENT_SECRET).await?;
    let user_token = emulator.user_token(&UserTokenSpec::new("alice", APP_CLIENT_ID));
    let proxy_authorization = format!("Bearer {proxy_token}");
    let principal = format!("Bearer {user_token}");
    let technical = format!("Bearer {technical_token}");

    let response = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::POST,
        "http://S4.onprem:44300/sap/opu/odata/sap/API_X/A_Item?$top=1&sap-client=100",
        &[
            ("proxy-authorization", &proxy_authorization),
            ("SAP-Connectivity-SCC-Location_ID", "LOC1"),
            ("SAP-Connectivity-Authentication", &principal),
            ("SAP-Connectivity-Technical-Authentication", &technical),
            ("x-emulator-principal", "spoofed"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
        ],
        r#"{"a":1}"#,
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(
        response
            .headers
            .get("x-backend")
            .map(|value| value.as_bytes()),
        Some(&b"echo"[..])
    );
    let echoed = response.json()?;
    assert_eq!(echoed["method"], "POST");
    assert_eq!(
        echoed["path"],
        "/sap/opu/odata/sap/API_X/A_Item?$top=1&sap-client=100"
    );
    assert_eq!(echoed["body"], r#"{"a":1}"#);
    let headers = &echoed["headers"];
    assert_eq!(headers["x-emulator-scc-location-id"], "LOC1");
    assert_eq!(headers["x-emulator-principal"], "alice");
    assert_eq!(headers["x-emulator-technical-user"], APP_CLIENT_ID);
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["host"], backend.url.trim_start_matches("http://"));
    for removed in [
        "proxy-authorization",
        "sap-connectivity-scc-location_id",
        "sap-connectivity-authentication",
        "sap-connectivity-technical-authentication",
    ] {
        assert!(
            headers.get(removed).is_none(),
            "{removed} reached the backend"
        );
    }
    let stats = emulator.stats();
    assert_eq!(stats.proxy_requests, 1);
    assert_eq!(stats.proxy_forwarded, 1);
    Ok(())
}

#[tokio::test]
async fn proxy_without_location_uses_default_connector() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let proxy_authorization = format!(
        "Bearer {}",
        client_token(
            &emulator,
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET
        )
        .await?
    );

    let response = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::GET,
        "http://erp.onprem:8000/health",
        &[("proxy-authorization", &proxy_authorization)],
        "",
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    let echoed = response.json()?;
    assert_eq!(echoed["path"], "/health");
    assert_eq!(echoed["headers"]["x-emulator-scc-location-id"], "");
    assert!(echoed["headers"].get("x-emulator-principal").is_none());
    assert!(echoed["headers"].get("x-emulator-technical-user").is_none());
    Ok(())
}

#[tokio::test]
async fn proxy_reads_principal_from_user_proxy_token() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    // A user token of the connectivity client, as the JWT bearer grant gives it.
    let user_proxy_token = emulator.user_token(&UserTokenSpec::new("bob", CONNECTIVITY_CLIENT_ID));
    let proxy_authorization = format!("Bearer {user_proxy_token}");

    let response = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::GET,
        "http://erp.onprem:8000/",
        &[("proxy-authorization", &proxy_authorization)],
        "",
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.json()?["headers"]["x-emulator-principal"], "bob");
    Ok(())
}

// --------------------------------------------------------------------- rejections

#[tokio::test]
async fn proxy_requires_valid_proxy_authorization() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let app_token = client_token(&emulator, APP_CLIENT_ID, APP_CLIENT_SECRET).await?;
    let expired = emulator.user_token(&UserTokenSpec {
        lifetime_seconds: 0,
        ..UserTokenSpec::new("bob", CONNECTIVITY_CLIENT_ID)
    });
    let cases = [
        ("missing", None, "Proxy authentication required"),
        (
            "not a token",
            Some("Bearer abc".to_owned()),
            "not issued by this emulator",
        ),
        ("basic scheme", Some("Basic YTpi".to_owned()), "Bearer"),
        ("expired", Some(format!("Bearer {expired}")), "expired"),
        (
            "other client",
            Some(format!("Bearer {app_token}")),
            APP_CLIENT_ID,
        ),
    ];

    for (case, proxy_authorization, fragment) in cases {
        let headers: Vec<(&str, &str)> = proxy_authorization
            .as_deref()
            .map(|value| vec![("proxy-authorization", value)])
            .unwrap_or_default();
        let response = send_via_proxy(
            proxy_addr(&emulator)?,
            Method::GET,
            "http://erp.onprem:8000/",
            &headers,
            "",
        )
        .await?;
        assert_eq!(
            response.status,
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "{case}"
        );
        assert!(
            response.headers.contains_key("proxy-authenticate"),
            "{case}"
        );
        assert!(
            response.body.contains(fragment),
            "{case}: {}",
            response.body
        );
    }
    assert_eq!(emulator.stats().proxy_forwarded, 0);
    Ok(())
}

#[tokio::test]
async fn proxy_answers_503_for_unknown_host_or_location() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let proxy_authorization = format!(
        "Bearer {}",
        client_token(
            &emulator,
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET
        )
        .await?
    );
    let cases = [
        (
            "unknown host",
            "http://unknown.onprem:44300/",
            "LOC1",
            "unknown.onprem:44300",
        ),
        (
            "wrong port",
            "http://s4.onprem:44301/",
            "LOC1",
            "s4.onprem:44301",
        ),
        (
            "unknown location",
            "http://s4.onprem:44300/",
            "LOC2",
            "LOC2",
        ),
        (
            "host of other location",
            "http://s4.onprem:44300/",
            "",
            "s4.onprem:44300",
        ),
    ];

    for (case, url, location_id, fragment) in cases {
        let response = send_via_proxy(
            proxy_addr(&emulator)?,
            Method::GET,
            url,
            &[
                ("proxy-authorization", &proxy_authorization),
                ("SAP-Connectivity-SCC-Location_ID", location_id),
            ],
            "",
        )
        .await?;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
        let content_type = response
            .headers
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/plain"),
            "{case}: {content_type}"
        );
        assert!(
            response.body.contains("Cloud Connector"),
            "{case}: {}",
            response.body
        );
        assert!(
            response.body.contains(fragment),
            "{case}: {}",
            response.body
        );
    }
    Ok(())
}

#[tokio::test]
async fn proxy_rejects_invalid_principal_token() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let proxy_token = client_token(
        &emulator,
        CONNECTIVITY_CLIENT_ID,
        CONNECTIVITY_CLIENT_SECRET,
    )
    .await?;
    let proxy_authorization = format!("Bearer {proxy_token}");
    let client_principal = format!("Bearer {proxy_token}");

    for (case, principal) in [
        ("garbage", "Bearer x.y.z"),
        ("client token", client_principal.as_str()),
    ] {
        let response = send_via_proxy(
            proxy_addr(&emulator)?,
            Method::GET,
            "http://erp.onprem:8000/",
            &[
                ("proxy-authorization", &proxy_authorization),
                ("SAP-Connectivity-Authentication", principal),
            ],
            "",
        )
        .await?;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case}");
        assert!(
            response.body.contains("sap-connectivity-authentication"),
            "{case}: {}",
            response.body
        );
    }
    Ok(())
}

#[tokio::test]
async fn proxy_reports_unreachable_backend() -> Result<()> {
    // Bind and release a port so that nothing listens on it.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = EmulatorConfig {
        connectivity_clients: vec![ClientConfig::new(
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET,
        )],
        virtual_hosts: vec![VirtualHostConfig::new(
            "down.onprem",
            80,
            format!("http://127.0.0.1:{closed_port}"),
        )],
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;
    let proxy_authorization = format!(
        "Bearer {}",
        client_token(
            &emulator,
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET
        )
        .await?
    );

    let response = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::GET,
        "http://down.onprem/",
        &[("proxy-authorization", &proxy_authorization)],
        "",
    )
    .await?;

    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        response.body
    );
    Ok(())
}

#[tokio::test]
async fn proxy_rejects_origin_form_and_connect() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;
    let proxy_authorization = format!(
        "Bearer {}",
        client_token(
            &emulator,
            CONNECTIVITY_CLIENT_ID,
            CONNECTIVITY_CLIENT_SECRET
        )
        .await?
    );

    let origin_form = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::GET,
        "/just/a/path",
        &[
            ("proxy-authorization", &proxy_authorization),
            ("host", "erp.onprem:8000"),
        ],
        "",
    )
    .await?;
    assert_eq!(origin_form.status, StatusCode::BAD_REQUEST);

    let connect = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::CONNECT,
        "erp.onprem:8000",
        &[("proxy-authorization", &proxy_authorization)],
        "",
    )
    .await?;
    assert_eq!(connect.status, StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

// ---------------------------------------------------------------------- bindings

#[tokio::test]
async fn connectivity_binding_points_at_proxy() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;

    let binding = emulator.connectivity_binding(CONNECTIVITY_CLIENT_ID, CONNECTIVITY_CLIENT_SECRET);

    assert_eq!(binding["label"], "connectivity");
    let credentials = &binding["credentials"];
    assert_eq!(credentials["clientid"], CONNECTIVITY_CLIENT_ID);
    assert_eq!(credentials["clientsecret"], CONNECTIVITY_CLIENT_SECRET);
    assert_eq!(credentials["url"], emulator.url());
    assert_eq!(credentials["token_service_url"], emulator.url());
    assert_eq!(credentials["onpremise_proxy_host"], "127.0.0.1");
    let port = proxy_addr(&emulator)?.port().to_string();
    for key in [
        "onpremise_proxy_http_port",
        "onpremise_proxy_port",
        "onpremise_socks5_proxy_port",
        "onpremise_proxy_ldap_port",
        "onpremise_proxy_rfc_port",
    ] {
        assert_eq!(credentials[key], port.as_str(), "{key}");
    }

    // The binding's credentials open the proxy.
    let token_url = format!(
        "{}/oauth/token",
        credentials["token_service_url"]
            .as_str()
            .context("token_service_url missing")?
    );
    let authorization = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{CONNECTIVITY_CLIENT_ID}:{CONNECTIVITY_CLIENT_SECRET}"
        ))
    );
    let (status, body) = send_json(
        &token_url,
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=client_credentials",
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    let proxy_authorization = format!("Bearer {}", body["access_token"].as_str().context("token")?);
    let response = send_via_proxy(
        proxy_addr(&emulator)?,
        Method::GET,
        "http://erp.onprem:8000/",
        &[("proxy-authorization", &proxy_authorization)],
        "",
    )
    .await?;
    assert_eq!(response.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn xsuaa_binding_and_composition() -> Result<()> {
    let backend = start_echo_backend().await?;
    let emulator = start(&backend).await?;

    let xsuaa = emulator.xsuaa_binding(APP_CLIENT_ID, APP_CLIENT_SECRET, "app!t1");
    let vcap = Emulator::vcap_services_with(&[
        xsuaa.clone(),
        emulator.destination_binding(APP_CLIENT_ID, APP_CLIENT_SECRET),
        emulator.connectivity_binding(CONNECTIVITY_CLIENT_ID, CONNECTIVITY_CLIENT_SECRET),
    ]);

    assert_eq!(xsuaa["label"], "xsuaa");
    assert_eq!(xsuaa["plan"], "application");
    let credentials = &xsuaa["credentials"];
    assert_eq!(credentials["clientid"], APP_CLIENT_ID);
    assert_eq!(credentials["clientsecret"], APP_CLIENT_SECRET);
    assert_eq!(credentials["url"], emulator.url());
    assert_eq!(credentials["xsappname"], "app!t1");
    assert_eq!(credentials["identityzone"], "btp-emulator");
    assert_eq!(credentials["tenantid"], emulator.config().subaccount_id);
    assert_eq!(credentials["tenantmode"], "dedicated");
    assert_eq!(credentials["verificationkey"], emulator.verification_key());
    assert!(credentials["uaadomain"].is_string());

    let mut labels: Vec<&String> = vcap.as_object().context("not an object")?.keys().collect();
    labels.sort();
    assert_eq!(labels, ["connectivity", "destination", "xsuaa"]);
    for label in ["connectivity", "destination", "xsuaa"] {
        assert_eq!(vcap[label].as_array().map(Vec::len), Some(1), "{label}");
    }
    assert_eq!(
        vcap["destination"][0]["credentials"]["verificationkey"],
        emulator.verification_key()
    );
    Ok(())
}
