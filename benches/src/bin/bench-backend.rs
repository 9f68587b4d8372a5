//! A fast OData V4 backend for the load runs, on 127.0.0.1.
//!
//! The last path segment picks the response, whatever comes before it:
//!
//! | segment | response |
//! |---|---|
//! | `Small` | a collection of about 1 KB |
//! | `Large` | a collection of about 1 MiB |
//! | `LargeBinary` | the same bytes as `Large`, as `application/octet-stream` |
//! | `Huge` | a collection of about 100 MiB, streamed in 64 KiB chunks |
//! | `Headers` | the request's headers as a JSON object |
//! | anything else | 404 with an OData error |
//!
//! It prints `{"listening":"http://127.0.0.1:PORT"}` when ready.

use std::sync::Arc;

use btp_gateway_benches::listen::{bind_loopback, serve};
use btp_gateway_benches::odata::{StreamedDocument, document};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;

/// Sizes of the documents, in bytes.
const SMALL_BYTES: usize = 1000;
const LARGE_BYTES: usize = 1024 * 1024;
const HUGE_BYTES: u64 = 100 * 1024 * 1024;

/// The OData V4 JSON media type CAP and SAP Gateway send.
const ODATA_JSON: &str = "application/json;odata.metadata=minimal;IEEE754Compatible=true";

type Body = UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// OData backend for benchmarks, on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "bench-backend")]
struct Args {
    /// TCP port at 127.0.0.1 (0 lets the operating system pick one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// The documents built once at start.
#[derive(Debug)]
struct Documents {
    small: Bytes,
    large: Bytes,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let documents = Arc::new(Documents {
        small: document(SMALL_BYTES),
        large: document(LARGE_BYTES),
    });
    let listener = bind_loopback(args.port).await?;
    serve(listener, move |request| {
        let documents = documents.clone();
        async move { respond(&documents, &request) }
    })
    .await
}

fn respond(documents: &Documents, request: &Request<Incoming>) -> Response<Body> {
    let segment = request.uri().path().rsplit('/').next().unwrap_or_default();
    match segment {
        "Small" => odata_response(full(documents.small.clone())),
        "Large" => odata_response(full(documents.large.clone())),
        "LargeBinary" => binary_response(full(documents.large.clone())),
        "Huge" => odata_response(StreamedDocument::new(HUGE_BYTES).boxed_unsync()),
        "Headers" => headers_response(request),
        _ => {
            let error = r#"{"error":{"code":"404","message":"No such entity set"}}"#;
            let mut response = odata_response(full(Bytes::from_static(error.as_bytes())));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

fn odata_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ODATA_JSON));
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    response
}

/// Builds a response that the gateway's component passes on without
/// looking for links in it, unlike JSON.
fn binary_response(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn headers_response(request: &Request<Incoming>) -> Response<Body> {
    let headers: serde_json::Map<String, serde_json::Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), serde_json::Value::String(value))
        })
        .collect();
    let body = serde_json::Value::Object(headers).to_string();
    let mut response = Response::new(full(Bytes::from(body)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
