//! Real components for end-to-end tests, each on 127.0.0.1 with a port the
//! operating system picks: the CAP test service, the gateway host process,
//! and a small HTTP client.
//!
//! Every process is killed when its handle is dropped, also when a test
//! panics.

mod cap;
mod client;
mod gateway;
mod paths;
mod recorder;
pub mod registry;
mod sap_gateway;
mod serve;
mod slow_backend;
mod tls_backend;

pub use cap::{CAP_PASSWORD, CAP_USER, CapService};
pub use client::{HttpResponse, get, request, request_with_body};
pub use gateway::{Gateway, GatewayExit, gateway_binary};
pub use paths::{test_guest, versioned_guest, workspace_root};
pub use recorder::{RecordedRequest, Recorder};
pub use sap_gateway::{
    RecordedRequestWithBody, SAP_TEST_SERVICE_PATH, SapGateway, SapGatewayStats,
};
pub use slow_backend::SlowBackend;
pub use tls_backend::TlsBackend;

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads a child's output stream on a thread, keeps every line, and sends
/// the first line that `ready` accepts.
pub(crate) fn watch_output(
    stream: impl Read + Send + 'static,
    ready: impl Fn(&str) -> Option<String> + Send + 'static,
) -> (Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (sender, receiver) = mpsc::channel();
    let log_writer = log.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(value) = ready(&line) {
                let _ = sender.send(value);
                sent = true;
            }
            let mut log = log_writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, receiver)
}

/// Waits for a child's ready value, or fails with its output so far.
pub(crate) fn wait_ready(
    child: &mut Child,
    receiver: &mpsc::Receiver<String>,
    log: &Arc<Mutex<String>>,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    match receiver.recv_timeout(timeout) {
        Ok(value) => Ok(value),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let output = log.lock().map(|log| log.clone()).unwrap_or_default();
            anyhow::bail!("{what} did not become ready within {timeout:?}; its output:\n{output}")
        }
    }
}
