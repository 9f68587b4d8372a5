//! A minimal HTTP/1.1 client for tests, built on hyper-util.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A response with its whole body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// Returns the body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON, and panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }

    /// Returns a header's value as text, or an empty string.
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default()
    }
}

/// Sends a GET with optional headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<HttpResponse> {
    request(Method::GET, url, headers).await
}

/// Sends a request without a body and reads the whole response, within 30
/// seconds.
pub async fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<HttpResponse> {
    request_with_body(method, url, headers, Bytes::new()).await
}

/// Sends a request with a body and reads the whole response, within 30
/// seconds.
pub async fn request_with_body(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> anyhow::Result<HttpResponse> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(body))?;

    let exchange = async {
        let response = client.request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(HttpResponse {
            status,
            headers,
            body,
        })
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no response from {url} within 30 seconds"))?
}
