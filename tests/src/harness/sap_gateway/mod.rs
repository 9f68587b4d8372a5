//! A backend on 127.0.0.1 that behaves like SAP Gateway (ABAP) where the CAP
//! test service does not, for the gateway's OData V2 tests.
//!
//! Services under `/sap/opu/odata/sap/`:
//!
//! - `ZGW_TEST_SRV/`: the `Items` entity set with 12 seeded items in the
//!   V2 JSON verbose format. A read without `$top` returns pages of 5 with
//!   an absolute `__next`. The service also has `$metadata`, `$batch` and
//!   `Large?$top=N`, which streams N entries of about 1.1 KB each. Its
//!   error resources are `Fail` (400 with an XML error body),
//!   `CloudConnector` (503 plain text) and `EmptyBadGateway` (502 without
//!   a body).
//! - `ZGW_BIG_SRV/`: only a generated `$metadata` document of about 8 MB.
//! - `ZGW_LOGIN_SRV/`: an HTML logon page with status 200 for every request,
//!   as an identity provider's redirect chain ends for a client without
//!   credentials.
//! - `ZGW_REDIRECT_SRV/`: a 302 to `http://127.0.0.1:1/saml2/idp/sso`, a
//!   port that nothing listens on.
//!
//! The policy that tests rely on:
//!
//! - Every `HEAD` request gets 405.
//! - A `GET` of a service root without the trailing slash gets a 301 to
//!   the absolute URL with the slash.
//! - A `GET` with `x-csrf-token: Fetch` gets a token bound to an
//!   `SAP_SESSIONID_GW1_100` session cookie, also when the response is an
//!   error. Every other method needs that token and the session cookie, or
//!   it gets 403 with `x-csrf-token: Required`.
//! - Writes to a single item need `If-Match` with its current ETag (or
//!   `*`), except `DELETE`, which checks `If-Match` only when it is sent.
//!   `POST` with `X-HTTP-Method` is handled as the method that header names.
//! - A `$batch` changeset that contains a failing request fails as a whole
//!   with one error response, and none of its changes remain.
//!
//! NOTE: Responses are JSON whatever the `Accept` header requests, except the service
//! document and `$metadata`. Real SAP Gateway sends Atom XML unless the
//! client asks for JSON.

mod batch;
mod csrf;
mod items;
mod large;
mod metadata;
mod reply;
mod resources;
mod routes;
mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::RecordedRequest;

/// Path of the OData service the tests write to, with a trailing slash.
pub const SAP_TEST_SERVICE_PATH: &str = "/sap/opu/odata/sap/ZGW_TEST_SRV/";

/// A request as the SAP Gateway-like backend received it, with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequestWithBody {
    pub request: RecordedRequest,
    /// The first MiB of the body.
    pub body: Bytes,
    /// Length of the whole body in bytes.
    pub body_len: usize,
}

impl RecordedRequestWithBody {
    /// Returns the recorded part of the body as text. Invalid UTF-8 is
    /// replaced.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Snapshot of the backend's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SapGatewayStats {
    /// Requests of every kind, including rejected ones.
    pub requests: u64,
    /// `GET` requests with `x-csrf-token: Fetch` that got a token, whatever
    /// the status of the response.
    pub csrf_fetches: u64,
    /// Writes rejected with 403 because the token or the session cookie was
    /// missing or invalid.
    pub csrf_rejections: u64,
    /// `$metadata` responses with status 200 and the whole document.
    pub metadata_full_responses: u64,
    /// `$metadata` responses with status 304 for a matching `If-None-Match`.
    pub metadata_not_modified: u64,
    /// `$batch` requests that passed the CSRF check.
    pub batch_requests: u64,
}

/// Live counters shared by all connections.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    csrf_fetches: AtomicU64,
    csrf_rejections: AtomicU64,
    metadata_full_responses: AtomicU64,
    metadata_not_modified: AtomicU64,
    batch_requests: AtomicU64,
}

impl Counters {
    fn increment(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> SapGatewayStats {
        SapGatewayStats {
            requests: self.requests.load(Ordering::Relaxed),
            csrf_fetches: self.csrf_fetches.load(Ordering::Relaxed),
            csrf_rejections: self.csrf_rejections.load(Ordering::Relaxed),
            metadata_full_responses: self.metadata_full_responses.load(Ordering::Relaxed),
            metadata_not_modified: self.metadata_not_modified.load(Ordering::Relaxed),
            batch_requests: self.batch_requests.load(Ordering::Relaxed),
        }
    }
}

/// State shared by the handle and every connection.
#[derive(Debug)]
struct State {
    /// `http://127.0.0.1:PORT`, the origin of every absolute link.
    origin: String,
    requests: Mutex<Vec<RecordedRequestWithBody>>,
    counters: Counters,
    csrf: Mutex<csrf::CsrfSessions>,
    items: Mutex<items::ItemStore>,
    metadata: metadata::MetadataDocuments,
}

impl State {
    fn new(origin: String) -> Self {
        let metadata = metadata::MetadataDocuments::new(&origin);
        Self {
            origin,
            requests: Mutex::default(),
            counters: Counters::default(),
            csrf: Mutex::default(),
            items: Mutex::new(items::ItemStore::seeded()),
            metadata,
        }
    }

    /// Returns the absolute URL of the test service root, with a trailing
    /// slash.
    fn service_root(&self) -> String {
        format!("{}{SAP_TEST_SERVICE_PATH}", self.origin)
    }
}

/// Locks a mutex. A poisoned lock only means that a task panicked while
/// holding it, and every value behind these locks stays consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running SAP Gateway-like backend on `127.0.0.1`. Dropping it stops the
/// server and closes open connections.
#[derive(Debug)]
pub struct SapGateway {
    state: Arc<State>,
    accept_task: JoinHandle<()>,
}

impl SapGateway {
    /// Starts the backend on a port the operating system picks.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = server::bind().await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State::new(origin));
        let accept_task = tokio::spawn(server::accept_loop(listener, Arc::clone(&state)));
        Ok(Self { state, accept_task })
    }

    /// Returns the base URL, `http://127.0.0.1:PORT`, without a trailing
    /// slash.
    pub fn url(&self) -> &str {
        &self.state.origin
    }

    /// Returns the URL of `ZGW_TEST_SRV`, with a trailing slash.
    pub fn service_url(&self) -> String {
        self.state.service_root()
    }

    /// Returns a copy of the requests recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests)
            .iter()
            .map(|recorded| recorded.request.clone())
            .collect()
    }

    /// Returns a copy of the requests recorded so far with their bodies,
    /// oldest first.
    pub fn requests_with_bodies(&self) -> Vec<RecordedRequestWithBody> {
        lock(&self.state.requests).clone()
    }

    /// Returns the counters.
    pub fn stats(&self) -> SapGatewayStats {
        self.state.counters.snapshot()
    }

    /// Invalidates every CSRF token and session, as a session timeout on SAP
    /// Gateway does. The next write gets 403 with `x-csrf-token: Required`.
    pub fn expire_csrf_tokens(&self) {
        lock(&self.state.csrf).clear();
    }
}

impl Drop for SapGateway {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}
