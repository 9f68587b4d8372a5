//! A response body that cannot end as a success when its guest failed.
//!
//! When a guest traps after it set its response, wasmtime drops the body's
//! channel, which reads as a normal end of the body: the client would get a
//! complete, truncated response. This wrapper keeps the end of the body back
//! until the guest's run has finished, and turns the end into an error when
//! the run failed, so hyper aborts the response instead of completing it.
//! It also ends the body with an error once it exceeds the response body
//! limit, so that no guest can stream without bound.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use wasmtime_wasi_http::Error;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The guest's body, released only after the guest succeeded.
pub struct GuardedBody {
    inner: HyperOutgoingBody,
    /// Completes with `true` when the guest's run succeeded.
    outcome: oneshot::Receiver<bool>,
    ended: bool,
    /// Bytes the body may still carry.
    remaining_bytes: u64,
    max_bytes: u64,
    correlation_id: String,
}

impl GuardedBody {
    pub fn new(
        inner: HyperOutgoingBody,
        outcome: oneshot::Receiver<bool>,
        max_bytes: u64,
        correlation_id: String,
    ) -> Self {
        Self {
            inner,
            outcome,
            ended: false,
            remaining_bytes: max_bytes,
            max_bytes,
            correlation_id,
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if !self.ended {
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let size = frame.data_ref().map_or(0, |data| data.len() as u64);
                    if size > self.remaining_bytes {
                        self.ended = true;
                        tracing::error!(
                            correlation_id = self.correlation_id,
                            max_bytes = self.max_bytes,
                            "ended a response body at the response body limit"
                        );
                        return Poll::Ready(Some(Err(Error::InternalError(Some(
                            "the response body exceeded the gateway's limit".to_owned(),
                        )))));
                    }
                    self.remaining_bytes -= size;
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => self.ended = true,
            }
        }

        // The guest's body ended: wait for how its run ended.
        match ready!(Pin::new(&mut self.outcome).poll(cx)) {
            Ok(true) => Poll::Ready(None),
            Ok(false) | Err(_) => Poll::Ready(Some(Err(Error::InternalError(Some(
                "the component failed while streaming its response".to_owned(),
            ))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        // The end is known only once the run's outcome is.
        false
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for GuardedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedBody")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
