//! HTTP exchanges with a registry: the scheme policy, redirects, the
//! `Authorization` header's origin, timeouts and body size limits.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::{Origin, Url};

use super::reference::is_loopback_host;
use crate::outbound::tls;
use crate::secret::Secret;

/// How long to wait for a TCP connection before the attempt fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one exchange may take, redirects and the whole body included.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle pooled connections are closed after this time, a little before
/// common servers and load balancers close them.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(80);

/// Redirects followed in one exchange. Registries redirect blob downloads
/// once, to object storage.
pub(super) const MAX_REDIRECTS: usize = 5;

/// The largest error body read, for the registry's error code and message.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// One request to send.
pub(super) struct Exchange<'a> {
    pub method: Method,
    pub url: Url,
    pub accept: Option<&'static str>,
    /// The `Authorization` header value and the only origin it is sent to.
    pub authorization: Option<(&'a Secret, Origin)>,
    /// The largest successful response body accepted, in bytes.
    pub body_limit: u64,
}

/// A response with its whole body.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The URL that produced this response, after redirects.
    pub url: Url,
    /// The body, or an empty body for an error response larger than
    /// `ERROR_BODY_LIMIT`.
    pub body: Bytes,
}

/// The reason an exchange failed.
#[derive(Debug)]
pub(super) enum TransportError {
    /// Connecting, TLS, or reading the response failed.
    Failed(String),
    TimedOut,
    TooManyRedirects,
    /// A URL that is not allowed, with the URL redacted by [`redact`] and
    /// the reason.
    Disallowed(String, &'static str),
    /// A successful response body above the exchange's `body_limit`.
    BodyTooLarge,
}

/// A pooled HTTP/1.1 client for `http` and `https` URLs.
#[derive(Clone, Debug)]
pub(super) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl Transport {
    /// Creates a client that trusts the system's certificate authorities,
    /// or the bundled Mozilla roots when the system has none.
    pub fn new() -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(None, false)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(https);
        Ok(Self { client })
    }

    /// Sends the request, follows up to [`MAX_REDIRECTS`] redirects and
    /// reads the body, all within [`REQUEST_TIMEOUT`].
    pub async fn exchange(&self, exchange: Exchange<'_>) -> Result<Reply, TransportError> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.follow_redirects(exchange))
            .await
            .map_err(|_| TransportError::TimedOut)?
    }

    async fn follow_redirects(&self, exchange: Exchange<'_>) -> Result<Reply, TransportError> {
        let mut url = exchange.url;
        for _ in 0..=MAX_REDIRECTS {
            check_allowed(&url)?;
            let authorization = exchange
                .authorization
                .as_ref()
                .filter(|(_, origin)| *origin == url.origin())
                .map(|(value, _)| *value);
            let response = self
                .send(
                    exchange.method.clone(),
                    &url,
                    exchange.accept,
                    authorization,
                )
                .await?;

            let status = response.status();
            if status.is_redirection()
                && let Some(location) = response.headers().get(header::LOCATION)
            {
                url = redirect_target(&url, location)?;
                continue;
            }

            let headers = response.headers().clone();
            let body = if status.is_success() {
                read_body(response.into_body(), exchange.body_limit).await?
            } else {
                // An oversized error body only loses the registry's error
                // message, so it is dropped rather than failing.
                match read_body(response.into_body(), ERROR_BODY_LIMIT).await {
                    Err(TransportError::BodyTooLarge) => Bytes::new(),
                    other => other?,
                }
            };
            return Ok(Reply {
                status,
                headers,
                url,
                body,
            });
        }
        Err(TransportError::TooManyRedirects)
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        accept: Option<&str>,
        authorization: Option<&Secret>,
    ) -> Result<hyper::Response<Incoming>, TransportError> {
        let uri: Uri = url
            .as_str()
            .parse()
            .map_err(|_| TransportError::Disallowed(redact(url), "not a valid HTTP URL"))?;
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        if let Some(authorization) = authorization {
            let mut value = HeaderValue::from_str(authorization.expose()).map_err(|_| {
                TransportError::Failed("the authorization value is not a valid header".to_owned())
            })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = request
            .body(Empty::new())
            .map_err(|error| TransportError::Failed(error.to_string()))?;
        self.client
            .request(request)
            .await
            .map_err(|error| TransportError::Failed(error_chain(&error)))
    }
}

/// Checks the scheme policy: `https` everywhere, plain `http` only to this
/// machine, and no credentials in the URL.
pub(super) fn check_allowed(url: &Url) -> Result<(), TransportError> {
    let disallowed = |reason| Err(TransportError::Disallowed(redact(url), reason));
    if !url.username().is_empty() || url.password().is_some() {
        return disallowed("a URL with credentials");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => disallowed("plain HTTP to a host other than this machine"),
        _ => disallowed("neither an http nor an https URL"),
    }
}

fn redirect_target(current: &Url, location: &HeaderValue) -> Result<Url, TransportError> {
    let text = String::from_utf8_lossy(location.as_bytes());
    current.join(&text).map_err(|_| {
        // The query may carry a signature, so it stays out of the message.
        let without_query = text.split(['?', '#']).next().unwrap_or_default().to_owned();
        TransportError::Disallowed(without_query, "not a valid URL")
    })
}

async fn read_body(mut body: Incoming, limit: u64) -> Result<Bytes, TransportError> {
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| TransportError::Failed(error_chain(&error)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let length = u64::try_from(collected.len() + data.len()).unwrap_or(u64::MAX);
        if length > limit {
            return Err(TransportError::BodyTooLarge);
        }
        collected.extend_from_slice(&data);
    }
    Ok(Bytes::from(collected))
}

/// Returns the URL without credentials, query and fragment, for messages:
/// object storage signs its redirect URLs in the query.
pub(super) fn redact(url: &Url) -> String {
    let mut redacted = url.clone();
    redacted.set_query(None);
    redacted.set_fragment(None);
    // Only URLs that cannot have credentials (such as `data:`) reject these.
    let _ = redacted.set_username("");
    let _ = redacted.set_password(None);
    redacted.to_string()
}

/// Joins an error's message with its sources', because hyper's own message
/// ("client error (Connect)") hides the cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        match Url::parse(text) {
            Ok(url) => url,
            Err(error) => panic!("{text}: {error}"),
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let allowed = [
            "https://ghcr.io/v2/",
            "https://10.0.0.1/v2/",
            "http://localhost:5000/v2/",
            "http://127.0.0.1:5000/v2/",
            "http://[::1]:5000/v2/",
        ];
        for text in allowed {
            assert!(check_allowed(&url(text)).is_ok(), "{text}");
        }
        let rejected = [
            "http://ghcr.io/v2/",
            "http://10.0.0.1/v2/",
            "ftp://127.0.0.1/v2/",
            "https://user:pw@ghcr.io/v2/",
        ];
        for text in rejected {
            assert!(check_allowed(&url(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn redaction_drops_query_and_credentials() {
        let redacted = redact(&url(
            "https://user:pw@storage.example/blob/1?X-Amz-Signature=abc#part",
        ));
        assert_eq!(redacted, "https://storage.example/blob/1");
    }

    #[test]
    fn relative_redirect_is_resolved() -> Result<(), http::header::InvalidHeaderValue> {
        let current = url("http://127.0.0.1:5000/v2/a/blobs/sha256:1");
        let location = HeaderValue::from_str("/storage/1?sig=x")?;
        match redirect_target(&current, &location) {
            Ok(target) => assert_eq!(target.as_str(), "http://127.0.0.1:5000/storage/1?sig=x"),
            Err(error) => panic!("{error:?}"),
        }
        Ok(())
    }
}
