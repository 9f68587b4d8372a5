//! End-to-end tests of destination lookups that fail or must be repeated:
//! an expiring service token, a Destination service that returns 5xx, a
//! missing binding, and failed lookups that must not be cached.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use btp_gateway_tests::emulator::{ClientConfig, Destination, Emulator, EmulatorConfig};
use btp_gateway_tests::harness::{CapService, Gateway, get};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const CLIENT_ID: &str = "sb-gateway-failures!b1";
const CLIENT_SECRET: &str = "failures-secret-2231";

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn expiring_service_token_is_renewed() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    // A token that lives one second is renewed after half of it. Two
    // destinations make two lookups, each needing a valid service token.
    let config = EmulatorConfig {
        clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
        instance_destinations: vec![
            Destination::no_authentication("FIRST", cap.url()),
            Destination::no_authentication("SECOND", cap.url()),
        ],
        token_lifetime_seconds: 1,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET).to_string();
    let dir = temp_dir();
    let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    for name in ["FIRST", "SECOND"] {
        let url = format!("{}/odata/{name}/echo/headers", gateway.url());
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    assert_eq!(emulator.stats().token_requests, 2);
}

/// Starts a Destination service that returns 503 to every request, counting
/// them.
async fn failing_service() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .unwrap_or_else(|error| panic!("{error}"))
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        let mut response = Response::new(Full::new(Bytes::from_static(
                            br#"{"ErrorMessage":"Service temporarily unavailable"}"#,
                        )));
                        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn service_5xx_is_502_and_not_cached() {
    let emulator = Emulator::start(EmulatorConfig {
        clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let (service_url, calls) = failing_service().await;
    // The emulator issues the token; the find-destination call goes to the
    // failing service.
    let mut vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET);
    vcap["destination"][0]["credentials"]["uri"] = serde_json::Value::from(service_url);
    let vcap = vcap.to_string();
    let dir = temp_dir();
    let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    let url = format!("{}/odata/ANY/Books", gateway.url());

    for _ in 0..2 {
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            response.status,
            StatusCode::BAD_GATEWAY,
            "{}",
            response.text()
        );
        assert_eq!(response.json()["error"]["code"], "DestinationLookupFailed");
        assert!(
            !response.text().contains("temporarily"),
            "{}",
            response.text()
        );
    }

    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "a failed lookup was cached"
    );
    let log = gateway.log_after("503");
    assert!(
        log.contains("503") && log.contains("Service temporarily unavailable"),
        "{log}"
    );
    assert!(!log.contains(CLIENT_SECRET), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_binding_is_404_with_warning() {
    let dir = temp_dir();
    let gateway = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    let url = format!("{}/odata/S4/Books", gateway.url());
    let response = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(
        response.status,
        StatusCode::NOT_FOUND,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "DestinationNotFound");
    let log = gateway.log_after("no Destination service binding");
    assert!(log.contains("no Destination service binding"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_destination_is_not_cached() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = Emulator::start(EmulatorConfig {
        clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
        instance_destinations: vec![Destination::no_authentication("ECHO", cap.url())],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET).to_string();
    let dir = temp_dir();
    let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));

    for _ in 0..2 {
        let url = format!("{}/odata/NOT_YET/Books", gateway.url());
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(emulator.stats().destination_lookups, 2);
}
