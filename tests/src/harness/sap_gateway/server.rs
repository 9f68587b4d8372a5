//! The HTTP/1.1 server: one task per connection, a bounded number of
//! connections, and recording of every request before it is handled.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::net::TcpListener;

use super::reply::xml_error;
use super::{Counters, RecordedRequest, RecordedRequestWithBody, State, lock, routes};

/// Largest request body the backend reads. Larger bodies get 413.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

/// Part of each request body that is recorded.
const RECORDED_BODY_LIMIT: usize = 1024 * 1024;

/// Binds a listener on `127.0.0.1` with a port the operating system picks.
pub(super) async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Accepts connections until the task is aborted.
pub(super) async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    crate::harness::serve::accept_loop(listener, "SAP Gateway backend", move |request| {
        let state = Arc::clone(&state);
        async move { handle(&state, request).await }
    })
    .await;
}

/// Reads the body, records the request and hands it to the router.
async fn handle(state: &State, request: Request<Incoming>) -> Response<BoxBody<Bytes, Infallible>> {
    let (parts, body) = request.into_parts();
    let recorded = RecordedRequest {
        method: parts.method.clone(),
        target: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
    };
    Counters::increment(&state.counters.requests);

    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            record(state, recorded, Bytes::new());
            tracing::debug!(%error, "SAP Gateway backend could not read a request body");
            let reply = xml_error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "/IWFND/CM_BEC/026",
                &format!("The request body could not be read or exceeds {MAX_REQUEST_BODY} bytes"),
            );
            return reply.into_response();
        }
    };
    record(state, recorded, body.clone());

    routes::dispatch(state, Request::from_parts(parts, body))
}

fn record(state: &State, request: RecordedRequest, body: Bytes) {
    let body_len = body.len();
    let body = body.slice(..body_len.min(RECORDED_BODY_LIMIT));
    lock(&state.requests).push(RecordedRequestWithBody {
        request,
        body,
        body_len,
    });
}
