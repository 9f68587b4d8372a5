//! A native reverse proxy that forwards as the gateway does, without
//! WebAssembly: the lower bound of the gateway's cost per request.
//!
//! `/odata/{name}/{path}?{query}` goes to the destination's URL with
//! `{path}?{query}` joined to the URL's own path. The caller's
//! `Authorization` and `Cookie` are dropped and the destination's Basic
//! credentials are added, as for a `BasicAuthentication` destination.
//! Hop-by-hop headers (RFC 9110, section 7.6.1) are removed in both
//! directions. Bodies stream through unbuffered. Nothing else of the
//! gateway's work is done: no link rewriting, no OData error mapping and no
//! CSRF handling.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The body of every response the proxy sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// The path prefix under which destinations are served.
const ODATA_PREFIX: &str = "/odata/";

/// Hop-by-hop headers, which describe one connection and are never
/// forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The one destination the proxy serves.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The name in `/odata/{name}/`, case-sensitive.
    pub name: String,
    /// The `http://` URL the destination points to.
    pub url: Uri,
    /// The `Authorization` header sent to the destination.
    pub authorization: HeaderValue,
}

impl Destination {
    /// Creates a `BasicAuthentication` destination.
    ///
    /// # Errors
    ///
    /// When `url` is not an absolute `http://` URL.
    pub fn basic(name: &str, url: &str, user: &str, password: &str) -> anyhow::Result<Self> {
        let url: Uri = url.parse()?;
        anyhow::ensure!(
            url.scheme_str() == Some("http") && url.authority().is_some(),
            "the destination URL '{url}' is not an absolute http:// URL"
        );
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let authorization = HeaderValue::try_from(format!("Basic {credentials}"))?;
        Ok(Self {
            name: name.to_owned(),
            url,
            authorization,
        })
    }

    /// Returns the backend URI for a client's path and query, or `None` when
    /// the path names another destination or none.
    pub fn backend_uri(&self, path_and_query: &str) -> Option<Uri> {
        let rest = path_and_query.strip_prefix(ODATA_PREFIX)?;
        let name_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (name, service_path) = rest.split_at(name_end);
        if name != self.name {
            return None;
        }
        let base_path = self.url.path().trim_end_matches('/');
        let authority = self.url.authority()?;
        format!("http://{authority}{base_path}{service_path}")
            .parse()
            .ok()
    }
}

/// The proxy: the destination and a keep-alive connection pool to it.
#[derive(Debug, Clone)]
pub struct NativeProxy {
    destination: Destination,
    client: Client<HttpConnector, Incoming>,
}

impl NativeProxy {
    /// Creates a proxy for `destination`.
    pub fn new(destination: Destination) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            destination,
            client,
        }
    }

    /// Forwards one request and returns the backend's response, or a 404 or
    /// 502 of its own.
    pub async fn forward(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        let Some(uri) = self.destination.backend_uri(path_and_query) else {
            return plain_response(StatusCode::NOT_FOUND, "no such destination");
        };

        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        remove_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        parts.headers.remove(header::COOKIE);
        parts.headers.insert(
            header::AUTHORIZATION,
            self.destination.authorization.clone(),
        );

        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed_unsync())
            }
            Err(error) => {
                tracing::warn!(%error, "the backend request failed");
                plain_response(StatusCode::BAD_GATEWAY, "the backend request failed")
            }
        }
    }
}

/// Removes the hop-by-hop headers and those that `Connection` names.
/// `Transfer-Encoding` goes too: hyper frames each side's body itself.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

fn plain_response(status: StatusCode, message: &'static str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from_static(message.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination() -> anyhow::Result<Destination> {
        Destination::basic(
            "BENCH",
            "http://127.0.0.1:9/odata/v4/bench/",
            "user",
            "secret",
        )
    }

    #[test]
    fn maps_service_path_and_query() -> anyhow::Result<()> {
        let uri = destination()?.backend_uri("/odata/BENCH/Products('A%2FB')?$top=2");
        assert_eq!(
            uri.map(|uri| uri.to_string()),
            Some("http://127.0.0.1:9/odata/v4/bench/Products('A%2FB')?$top=2".to_owned())
        );
        Ok(())
    }

    #[test]
    fn maps_bare_destination_to_its_url() -> anyhow::Result<()> {
        let uri = destination()?.backend_uri("/odata/BENCH");
        assert_eq!(
            uri.map(|uri| uri.to_string()),
            Some("http://127.0.0.1:9/odata/v4/bench".to_owned())
        );
        Ok(())
    }

    #[test]
    fn rejects_other_destination() -> anyhow::Result<()> {
        let destination = destination()?;
        assert_eq!(destination.backend_uri("/odata/OTHER/Products"), None);
        assert_eq!(destination.backend_uri("/odata/BENCHX/Products"), None);
        assert_eq!(destination.backend_uri("/BENCH/Products"), None);
        Ok(())
    }

    #[test]
    fn basic_credentials_are_encoded() -> anyhow::Result<()> {
        let destination = destination()?;
        assert_eq!(destination.authorization, "Basic dXNlcjpzZWNyZXQ=");
        Ok(())
    }

    #[test]
    fn removes_hop_by_hop_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));

        remove_hop_by_hop(&mut headers);

        assert!(headers.get("x-private").is_none());
        assert!(headers.get(header::CONNECTION).is_none());
        assert!(headers.get(header::TE).is_none());
        assert_eq!(
            headers.get(header::ACCEPT).map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
    }

    #[test]
    fn rejects_https_url() {
        let result = Destination::basic("BENCH", "https://127.0.0.1:9/", "user", "secret");
        assert!(result.is_err());
    }
}
