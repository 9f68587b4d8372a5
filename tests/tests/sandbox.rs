//! End-to-end tests of the sandbox: a component that computes forever,
//! allocates without end, traps in the middle of its response, sends too
//! many requests or tries to reach a host directly. In every case the
//! client gets a clear error and the gateway keeps serving. A component
//! also never finds the memory contents of an earlier instance.

use std::time::{Duration, Instant};

use btp_gateway_tests::emulator::{ClientConfig, Destination, Emulator, EmulatorConfig};
use btp_gateway_tests::harness::{CapService, Gateway, get, test_guest};
use http::StatusCode;

const CLIENT_ID: &str = "sb-gateway-sandbox!b1";
const CLIENT_SECRET: &str = "sandbox-secret-6612";

/// A gateway serving the misbehaving test component, with a two-second
/// request timeout and a budget of two outgoing requests.
struct Sandbox {
    cap: CapService,
    _emulator: Emulator,
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    async fn start() -> Sandbox {
        let component =
            test_guest("test-guest-misbehave").unwrap_or_else(|error| panic!("{error}"));
        let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
        let emulator = Emulator::start(EmulatorConfig {
            clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
            instance_destinations: vec![Destination::no_authentication("ECHO", cap.url())],
            ..EmulatorConfig::default()
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET).to_string();
        let component = component.display().to_string();
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let gateway = Gateway::start(
            &[
                ("VCAP_SERVICES", &vcap),
                ("BTP_GATEWAY_COMPONENT", &component),
                ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", "2"),
                ("BTP_GATEWAY_MAX_OUTBOUND_REQUESTS", "2"),
                ("BTP_GATEWAY_MAX_MEMORY_MIB", "32"),
                ("BTP_GATEWAY_MAX_REQUEST_BODY_MIB", "1"),
            ],
            dir.path(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        Sandbox {
            cap,
            _emulator: emulator,
            gateway,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    async fn health_is_up(&self) {
        let health = get(&self.url("/health"), &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(health.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_loop_ends_with_504() {
    let sandbox = Sandbox::start().await;
    let started = Instant::now();
    let looping = tokio::spawn({
        let url = sandbox.url("/loop");
        async move { get(&url, &[]).await }
    });

    // The gateway serves others while the guest spins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    sandbox.health_is_up().await;

    let response = looping
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        response.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "Timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_exhaustion_ends_with_500() {
    let sandbox = Sandbox::start().await;
    let response = get(&sandbox.url("/allocate"), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "ComponentFailed");
    sandbox.health_is_up().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_see_no_residue() {
    let sandbox = Sandbox::start().await;
    // Requests one after the other reuse the same pool slot, whose pages
    // the pooling allocator keeps resident and resets between instances.
    for request in 1..=20 {
        let response = get(&sandbox.url("/residue"), &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status, StatusCode::OK, "request {request}");
        assert_eq!(
            response.text(),
            "static 0 grown 0",
            "request {request} found bytes of an earlier instance"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_after_headers_is_no_success() {
    let sandbox = Sandbox::start().await;
    let result = get(&sandbox.url("/trap-after-headers"), &[]).await;

    // The status line is already out, so the failure shows as a body that
    // does not end properly. It must never read as a complete response.
    assert!(
        result.is_err(),
        "a trapped response arrived complete: {:?}",
        result.map(|r| r.text())
    );
    let log = sandbox.gateway.log_after("failed while streaming");
    assert!(log.contains("failed while streaming its response"), "{log}");
    sandbox.health_is_up().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_budget_is_enforced() {
    let sandbox = Sandbox::start().await;
    let response = get(&sandbox.url("/outbound/3"), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let results: Vec<String> = response.text().lines().map(str::to_owned).collect();

    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0], "status 200");
    assert_eq!(results[1], "status 200");
    assert_eq!(results[2], "error ErrorCode::HttpRequestDenied");
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_egress_is_denied() {
    let sandbox = Sandbox::start().await;
    let port = sandbox
        .cap
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let response = get(&sandbox.url(&format!("/egress/{port}")), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(response.text(), "error ErrorCode::HttpRequestDenied");
    let log = sandbox.gateway.log_after("not addressed to a destination");
    assert!(log.contains("not addressed to a destination"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_body_is_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let sandbox = Sandbox::start().await;
    // The request declares a body over the limit and sends none: the
    // gateway responds from the declaration. A client that sent the whole
    // body could see the connection reset instead, because the gateway
    // does not read a body it has rejected.
    let address = sandbox
        .gateway
        .url()
        .trim_start_matches("http://")
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let head = format!(
        "POST /outbound/0 HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    stream
        .write_all(head.as_bytes())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut reply = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut reply))
        .await
        .unwrap_or_else(|_| panic!("no reply within 10 seconds"))
        .unwrap_or_else(|error| panic!("{error}"));
    let reply = String::from_utf8_lossy(&reply[..read]).into_owned();

    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("PayloadTooLarge"), "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn local_addresses_refused_when_not_allowed() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let port = cap.url().rsplit(':').next().unwrap_or_default().to_owned();
    let destinations = serde_json::json!([
        { "name": "LITERAL", "url": cap.url() },
        { "name": "BY_NAME", "url": format!("http://localhost:{port}") },
    ])
    .to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let gateway = Gateway::start(
        &[
            ("destinations", &destinations),
            ("BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES", "false"),
        ],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));

    for name in ["LITERAL", "BY_NAME"] {
        let url = format!("{}/odata/{name}/echo/headers", gateway.url());
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            response.status,
            StatusCode::BAD_GATEWAY,
            "{name}: {}",
            response.text()
        );
        let message = response.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains("address is refused"), "{name}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_pool_answers_503_with_retry_after() {
    let backend = btp_gateway_tests::harness::SlowBackend::start(
        Duration::from_secs(2),
        bytes::Bytes::from_static(b"{}"),
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    let destinations = serde_json::json!([{ "name": "SLOW", "url": backend.url() }]).to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let gateway = Gateway::start(
        &[
            ("destinations", &destinations),
            ("BTP_GATEWAY_MAX_INSTANCES", "1"),
        ],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let url = format!("{}/odata/SLOW/x", gateway.url());

    let first_url = url.clone();
    let first = tokio::spawn(async move { get(&first_url, &[]).await });
    let deadline = Instant::now() + Duration::from_secs(10);
    while backend.received() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first request never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(
        second.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        second.text()
    );
    assert_eq!(second.header("retry-after"), "1");
    assert_eq!(second.json()["error"]["code"], "Busy");
    let first = first
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        first.status,
        StatusCode::OK,
        "the running request is not disturbed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_when_pool_cannot_reserve() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let destinations = serde_json::json!([{ "name": "ECHO", "url": cap.url() }]).to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    // 4 GiB of address space: enough for the process and instances created
    // on demand, but not for the pool's 64 slots of 128 MiB.
    let gateway = Gateway::start_with_address_space_limit(
        &[("destinations", &destinations)],
        dir.path(),
        4 * 1024 * 1024,
    )
    .unwrap_or_else(|error| panic!("{error}"));

    let response = get(&format!("{}/odata/ECHO/echo/headers", gateway.url()), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let log = gateway.log();
    assert!(
        log.contains("the pooling allocator could not reserve its memory"),
        "{log}"
    );
}
