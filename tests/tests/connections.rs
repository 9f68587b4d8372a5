//! End-to-end tests of the gateway's connection handling: the header read
//! timeout, which also ends idle keep-alive connections, and the shutdown on
//! SIGTERM, which lets requests in flight finish.
//!
//! Every server listens on 127.0.0.1, and every wait is bounded.

use std::time::{Duration, Instant};

use btp_gateway_tests::harness::{Gateway, SlowBackend, get};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// The header read timeout of the gateways in the timeout tests, in
/// seconds.
const SHORT_TIMEOUT_SECS: u64 = 2;
const SHORT_TIMEOUT: Duration = Duration::from_secs(SHORT_TIMEOUT_SECS);
/// How long after the timeout the gateway may take to close a connection:
/// timers and a busy test machine add delay.
const CLOSE_SLACK: Duration = Duration::from_secs(4);
/// Text of the warning that a header read timeout of 90 seconds or less
/// causes at start.
const SHORT_TIMEOUT_WARNING: &str = "idle router connections will be closed early";
/// A complete request for `/health` that keeps the connection open.
const HEALTH_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
}

/// Starts a gateway whose header read timeout is [`SHORT_TIMEOUT_SECS`].
fn start_short_timeout_gateway(dir: &std::path::Path) -> Gateway {
    let timeout = SHORT_TIMEOUT_SECS.to_string();
    Gateway::start(
        &[("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS", timeout.as_str())],
        dir,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Returns `127.0.0.1:PORT` of a gateway.
fn address_of(gateway: &Gateway) -> String {
    gateway.url().trim_start_matches("http://").to_owned()
}

/// How a raw read of a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// The peer closed the connection, or reset it.
    Closed,
    /// Nothing happened within the time limit.
    TimedOut,
}

/// Reads and discards until the connection closes or `limit` passes.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> ReadEnd {
    let deadline = tokio::time::Instant::now() + limit;
    let mut buffer = [0; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return ReadEnd::TimedOut,
            Ok(Ok(0) | Err(_)) => return ReadEnd::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// Reads one response with a `Content-Length` body, within five seconds,
/// and returns it as text. Returns what arrived so far when the connection
/// closes or the time runs out.
async fn read_response(stream: &mut TcpStream) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    while !response_complete(&received) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(count)) if count > 0 => received.extend_from_slice(&buffer[..count]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Returns whether `bytes` contains a whole response head and as many body
/// bytes as its `Content-Length` names.
fn response_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    length.is_some_and(|length| bytes.len() >= end + 4 + length)
}

// --- Header read timeout ---

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_head_closed_after_timeout() {
    let dir = temp_dir();
    let gateway = start_short_timeout_gateway(dir.path());
    let address = address_of(&gateway);

    // The clock starts before the connection exists, so the measured time
    // is never shorter than the gateway's own.
    let started = Instant::now();
    let mut slow = TcpStream::connect(&address)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let health_url = format!("{}/health", gateway.url());
    let health = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        get(&health_url, &[]).await
    });
    let end = read_until_closed(&mut slow, SHORT_TIMEOUT + CLOSE_SLACK + CLOSE_SLACK).await;
    let elapsed = started.elapsed();

    assert_eq!(
        end,
        ReadEnd::Closed,
        "the incomplete request head was still open after {elapsed:?}"
    );
    assert!(
        elapsed >= SHORT_TIMEOUT,
        "closed after {elapsed:?}, before the timeout of {SHORT_TIMEOUT:?}"
    );
    assert!(
        elapsed <= SHORT_TIMEOUT + CLOSE_SLACK,
        "closed only after {elapsed:?}, with a timeout of {SHORT_TIMEOUT:?}"
    );
    match health.await {
        Ok(Ok(response)) => assert_eq!(response.status, StatusCode::OK, "{}", response.text()),
        Ok(Err(error)) => panic!("/health failed while a head was incomplete: {error}"),
        Err(error) => panic!("the /health task failed: {error}"),
    }
}

#[test]
fn short_timeout_logs_warning() {
    let dir = temp_dir();
    let gateway = start_short_timeout_gateway(dir.path());

    let log = gateway.log_after(SHORT_TIMEOUT_WARNING);

    assert!(log.contains(SHORT_TIMEOUT_WARNING), "{log}");
    assert!(
        log.contains("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_survives_short_idle() {
    let dir = temp_dir();
    let gateway = start_short_timeout_gateway(dir.path());
    let mut stream = TcpStream::connect(address_of(&gateway))
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    stream
        .write_all(HEALTH_REQUEST)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let first = read_response(&mut stream).await;
    tokio::time::sleep(SHORT_TIMEOUT / 2).await;
    let written = stream.write_all(HEALTH_REQUEST).await;
    let second = read_response(&mut stream).await;

    assert!(first.starts_with("HTTP/1.1 200"), "first response: {first}");
    assert!(written.is_ok(), "the second request failed: {written:?}");
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "second response on the same connection: {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_closed_after_timeout() {
    let dir = temp_dir();
    let gateway = start_short_timeout_gateway(dir.path());
    let mut stream = TcpStream::connect(address_of(&gateway))
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    // The clock starts before the request, so the measured time is never
    // shorter than the gateway's idle time after its response.
    let started = Instant::now();
    stream
        .write_all(HEALTH_REQUEST)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let first = read_response(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 200"), "first response: {first}");
    let end = read_until_closed(&mut stream, SHORT_TIMEOUT + CLOSE_SLACK + CLOSE_SLACK).await;
    let elapsed = started.elapsed();

    assert_eq!(
        end,
        ReadEnd::Closed,
        "the idle connection was still open after {elapsed:?}"
    );
    assert!(
        elapsed >= SHORT_TIMEOUT,
        "closed {elapsed:?} after the request, before the timeout of {SHORT_TIMEOUT:?}"
    );
    assert!(
        elapsed <= SHORT_TIMEOUT + CLOSE_SLACK,
        "closed only {elapsed:?} after the request, with a timeout of {SHORT_TIMEOUT:?}"
    );
}

#[test]
fn zero_header_read_timeout_stops_start() {
    let dir = temp_dir();

    let exit = Gateway::start_expecting_failure(
        &[("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS", "0")],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(
        exit.stderr
            .contains("BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS: invalid value '0'"),
        "{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("--header-read-timeout-secs"),
        "{}",
        exit.stderr
    );
}

// --- Rejected bodies ---

#[tokio::test(flavor = "multi_thread")]
async fn body_just_over_limit_keeps_connection() {
    // The gateway reads up to 64 KiB beyond the limit of a body it rejected,
    // so this body arrives whole and the connection stays usable.
    const LIMIT_BYTES: usize = 1024 * 1024;
    const BODY_BYTES: usize = LIMIT_BYTES + 32 * 1024;
    let dir = temp_dir();
    let gateway = Gateway::start(&[("BTP_GATEWAY_MAX_REQUEST_BODY_MIB", "1")], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    let mut stream = TcpStream::connect(address_of(&gateway))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let head = format!(
        "POST /odata/ANY/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n\
         Content-Length: {BODY_BYTES}\r\n\r\n"
    );

    let sent = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&vec![b'x'; BODY_BYTES]).await
    };
    let sent = tokio::time::timeout(Duration::from_secs(10), sent).await;
    let rejected = read_response(&mut stream).await;
    let written = stream.write_all(HEALTH_REQUEST).await;
    let health = read_response(&mut stream).await;

    assert!(
        matches!(sent, Ok(Ok(()))),
        "sending the body failed: {sent:?}"
    );
    assert!(
        rejected.starts_with("HTTP/1.1 413"),
        "response to the body over the limit: {rejected}"
    );
    assert!(rejected.contains("PayloadTooLarge"), "{rejected}");
    assert!(written.is_ok(), "the next request failed: {written:?}");
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "next response on the same connection: {health:?}"
    );
}

// --- Shutdown ---

/// Requests in flight when SIGTERM arrives.
const IN_FLIGHT: usize = 20;
/// How long the slow backend waits before it responds.
const BACKEND_DELAY: Duration = Duration::from_secs(2);
/// The size of the slow backend's response body.
const BODY_BYTES: usize = 256 * 1024;
/// The gateway's log message after it closed its listener on SIGTERM.
const LISTENER_CLOSED: &str = "shutting down: finishing in-flight requests";
/// How long the gateway may take to exit after SIGTERM. Cloud Foundry sends
/// SIGKILL ten seconds after SIGTERM.
const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// Returns a body whose bytes differ from their neighbours, so that a lost
/// or repeated chunk shows.
fn numbered_body() -> Bytes {
    (0..BODY_BYTES)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests() {
    let body = numbered_body();
    let backend = SlowBackend::start(BACKEND_DELAY, body.clone())
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let destinations = json!([{ "name": "SLOW", "url": backend.url() }]).to_string();
    let dir = temp_dir();
    let mut gateway = Gateway::start(&[("destinations", destinations.as_str())], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    let address = address_of(&gateway);
    assert!(
        !gateway.log().contains(SHORT_TIMEOUT_WARNING),
        "the default header read timeout caused the warning: {}",
        gateway.log()
    );

    let mut requests = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let url = format!("{}/odata/SLOW/anything", gateway.url());
        requests.spawn(async move { get(&url, &[]).await });
    }
    let arrival_deadline = Instant::now() + Duration::from_secs(20);
    while backend.received() < IN_FLIGHT && Instant::now() < arrival_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        backend.received(),
        IN_FLIGHT,
        "not every request reached the backend within 20 seconds"
    );

    let signalled = Instant::now();
    gateway
        .send_sigterm()
        .unwrap_or_else(|error| panic!("{error}"));

    let closed_deadline = Instant::now() + Duration::from_secs(5);
    while !gateway.log().contains(LISTENER_CLOSED) && Instant::now() < closed_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        gateway.log().contains(LISTENER_CLOSED),
        "no shutdown logged within 5 seconds of SIGTERM: {}",
        gateway.log()
    );
    // The listener is closed, so the kernel refuses the connection. A
    // listener that stayed open would accept it into its backlog and leave
    // it unanswered until the process exits.
    let attempt = TcpStream::connect(&address).await;
    assert!(
        attempt.is_err(),
        "a connection attempt after SIGTERM succeeded: {attempt:?}"
    );

    let mut completed = 0;
    while let Some(joined) = requests.join_next().await {
        let response = match joined {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => panic!("a request in flight at SIGTERM failed: {error}"),
            Err(error) => panic!("a request task failed: {error}"),
        };
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(
            response.body.len(),
            BODY_BYTES,
            "a response in flight at SIGTERM was cut short"
        );
        assert!(
            response.body == body,
            "a response in flight at SIGTERM has other bytes"
        );
        completed += 1;
    }
    assert_eq!(completed, IN_FLIGHT);

    let status = loop {
        if let Some(status) = gateway.try_wait().unwrap_or_else(|error| panic!("{error}")) {
            break Some(status);
        }
        if signalled.elapsed() > EXIT_LIMIT {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let exited_after = signalled.elapsed();
    let Some(status) = status else {
        panic!(
            "the gateway still ran {EXIT_LIMIT:?} after SIGTERM: {}",
            gateway.log()
        );
    };
    assert_eq!(status.code(), Some(0), "{status}: {}", gateway.log());
    assert!(
        exited_after <= EXIT_LIMIT,
        "exited {exited_after:?} after SIGTERM"
    );
}
