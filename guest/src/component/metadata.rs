//! `$metadata` through the shared cache.
//!
//! A service's metadata document is large and rarely changes, so the
//! gateway keeps the last one per destination, service path, `sap-client`
//! and language in the `shared` cache bucket, and revalidates it with the
//! backend through `If-None-Match`. The backend receives every request
//! with the caller's own credentials, so a caller without access gets the
//! backend's error, never the cached copy. A document without an
//! `ETag` is not cached, because it could not be revalidated.

use serde_json::{Value, json};

use super::io::{self, ReadError, header_text};
use super::respond::DESTINATION_URL_HEADER;
use super::{Backend, Exchange, map_error_code, store};
use crate::error::GatewayError;

/// The largest metadata document the gateway reads into memory.
const MAX_METADATA_BYTES: usize = 64 * 1024 * 1024;

/// Returns whether the request is a plain `$metadata` read the cache can
/// serve. A client with its own `If-None-Match` manages its own cache.
pub fn is_metadata_read(exchange: &Exchange) -> bool {
    exchange.method == "GET"
        && exchange.service_path.ends_with("/$metadata")
        && header_text(&exchange.client_headers, "if-none-match").is_none()
}

/// A cached document: the backend's headers and body, unchanged.
struct Cached {
    etag: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Cached {
    /// Encodes as one JSON line with the headers, then the body bytes.
    fn encode(&self) -> Vec<u8> {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), String::from_utf8_lossy(value).into_owned()))
            .collect();
        let mut bytes = json!({ "etag": self.etag, "headers": headers })
            .to_string()
            .into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(&self.body);
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let newline = bytes.iter().position(|byte| *byte == b'\n')?;
        let head: Value = serde_json::from_slice(&bytes[..newline]).ok()?;
        let etag = head.get("etag")?.as_str()?.to_owned();
        let headers = head
            .get("headers")?
            .as_array()?
            .iter()
            .filter_map(|pair| {
                let name = pair.get(0)?.as_str()?;
                let value = pair.get(1)?.as_str()?;
                Some((name.to_owned(), value.as_bytes().to_vec()))
            })
            .collect();
        Some(Self {
            etag,
            headers,
            body: bytes[newline + 1..].to_vec(),
        })
    }
}

/// Returns the document from the cache when the backend confirms it, or
/// the backend's response.
pub fn read(exchange: &Exchange) -> Result<Backend, GatewayError> {
    let key = cache_key(exchange);
    let cached = store::get(store::SHARED, &key).and_then(|bytes| Cached::decode(&bytes));

    let mut request = exchange.forwarded_request(None);
    if let Some(cached) = &cached {
        request
            .headers
            .push(("if-none-match".to_owned(), cached.etag.clone().into_bytes()));
    }
    let response =
        io::send(&request).map_err(|code| map_error_code(&exchange.destination, &code))?;

    let status = response.status();
    if status == 304
        && let Some(cached) = cached
    {
        // The links are rewritten against the destination URL of this
        // response, which may have changed since the document was cached.
        let mut headers = cached.headers;
        let current_url = response.headers().get(DESTINATION_URL_HEADER);
        if let Some(url) = current_url.into_iter().next() {
            headers.retain(|(name, _)| name != DESTINATION_URL_HEADER);
            headers.push((DESTINATION_URL_HEADER.to_owned(), url));
        }
        return Ok(Backend::Buffered {
            status: 200,
            headers,
            body: cached.body,
        });
    }

    let headers = response.headers().entries();
    let etag = header_text(&headers, "etag");
    let (200, Some(etag)) = (status, etag) else {
        return Ok(Backend::Streaming(response));
    };
    let body = io::read_response_body(&response, MAX_METADATA_BYTES).map_err(|error| {
        let detail = match error {
            ReadError::TooLarge => "its $metadata document is larger than 64 MiB",
            ReadError::Failed => "the $metadata response broke off",
        };
        GatewayError::backend_failed(&exchange.destination, detail)
    })?;
    drop(response);

    let document = Cached {
        etag,
        headers,
        body,
    };
    store::set(store::SHARED, &key, &document.encode());
    Ok(Backend::Buffered {
        status: 200,
        headers: document.headers,
        body: document.body,
    })
}

/// Returns the cache key: destination, service path, `sap-client` and
/// language, since SAP Gateway localises labels and the client selects the
/// system's client.
fn cache_key(exchange: &Exchange) -> String {
    let query = exchange
        .service_path_and_query
        .split_once('?')
        .map_or("", |(_, query)| query);
    let parameter = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
            .to_owned()
    };
    let language = match parameter("sap-language") {
        language if !language.is_empty() => language,
        _ => header_text(&exchange.client_headers, "sap-language")
            .or_else(|| header_text(&exchange.client_headers, "accept-language"))
            .unwrap_or_default(),
    };
    format!(
        "metadata\n{}\n{}\n{}\n{language}",
        exchange.destination,
        exchange.service_path,
        parameter("sap-client")
    )
}
