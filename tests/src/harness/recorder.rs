//! A backend that records every request it receives and responds to each
//! with `200 {"ok":true}`, for tests that check what a client sends on the
//! wire.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the recorder received it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: Method,
    /// The request target as sent: `/path?query` in origin form, or
    /// `http://host:port/path?query` in the absolute form that clients send
    /// to a proxy.
    pub target: String,
    /// Every header in the order hyper reports them, names in lowercase,
    /// repeated names as separate entries.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RecordedRequest {
    /// Returns the path and query of the target, also for an absolute-form
    /// target.
    pub fn path_and_query(&self) -> &str {
        match self.target.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |slash| &rest[slash..]),
            None => &self.target,
        }
    }

    /// Returns the query of the target without `?`, if it has one.
    pub fn query(&self) -> Option<&str> {
        self.path_and_query()
            .split_once('?')
            .map(|(_, query)| query)
    }

    /// Returns the values of a header, in order. `name` must be lowercase.
    pub fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_slice())
            .collect()
    }

    /// Returns the value of a header as text if it occurs exactly once.
    /// Invalid UTF-8 is replaced. `name` must be lowercase.
    pub fn header(&self, name: &str) -> Option<String> {
        match self.header_values(name).as_slice() {
            [value] => Some(String::from_utf8_lossy(value).into_owned()),
            _ => None,
        }
    }

    /// Returns the distinct header names, sorted.
    pub fn header_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// Shows header values as text, with bytes outside printable ASCII escaped,
/// so that assert messages stay readable.
impl fmt::Debug for RecordedRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.escape_ascii().to_string()))
            .collect();
        formatter
            .debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &headers)
            .finish()
    }
}

/// A running recording backend on `127.0.0.1`. Dropping it stops the server
/// and closes open connections.
#[derive(Debug)]
pub struct Recorder {
    url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    accept_task: JoinHandle<()>,
}

impl Recorder {
    /// Starts the recorder on a port the operating system picks.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        let accept_task = tokio::spawn(super::serve::accept_loop(
            listener,
            "recorder",
            move |request| {
                let requests = Arc::clone(&recorded);
                async move { record(&requests, request).await }
            },
        ));
        Ok(Self {
            url,
            requests,
            accept_task,
        })
    }

    /// Returns the base URL, `http://127.0.0.1:PORT`, without a trailing
    /// slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the authority, `127.0.0.1:PORT`, as clients send it in `Host`.
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Returns a copy of the requests recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().clone()
    }

    /// Returns the requests recorded so far, oldest first, and clears the list.
    pub fn take(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // A poisoned lock only means that a test thread panicked while
        // holding it, and the list is still consistent.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Records one request, reads and discards its body, and responds with
/// `200 {"ok":true}`.
async fn record(
    requests: &Mutex<Vec<RecordedRequest>>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let recorded = RecordedRequest {
        method: request.method().clone(),
        target: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(recorded);
    // The body is read so that the connection stays usable for keep-alive.
    // Its content is not needed, so a read error is ignored.
    let _ = request.into_body().collect().await;

    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"ok":true}"#)));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
