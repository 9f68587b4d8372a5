//! End-to-end writes through the gateway against CAP: OData V4 directly,
//! and OData V2 through `@cap-js-community/odata-v2-adapter`. The
//! destination comes from the `destinations` variable.

use btp_gateway_tests::harness::{CapService, Gateway, HttpResponse, request_with_body};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use tempfile::TempDir;

const V4: &str = "/odata/v4/orders";
const V2: &str = "/odata/v2/orders";

struct Stack {
    _cap: CapService,
    gateway: Gateway,
    _dir: TempDir,
}

impl Stack {
    fn start() -> Stack {
        let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
        // The OData V2 adapter writes absolute links with the host name
        // `localhost`, so the destination uses that name: links are
        // rewritten only when they start with the destination's URL.
        let url = cap.url().replace("127.0.0.1", "localhost");
        let destinations = serde_json::json!([{ "name": "CAP", "url": url }]).to_string();
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let gateway = Gateway::start(&[("destinations", &destinations)], dir.path())
            .unwrap_or_else(|error| panic!("{error}"));
        Stack {
            _cap: cap,
            gateway,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/odata/CAP{path}", self.gateway.url())
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.url(path)
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        request_with_body(method, &url, headers, Bytes::from(body.to_owned()))
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test(flavor = "multi_thread")]
async fn v4_create_update_delete() {
    let stack = Stack::start();
    let order = r#"{"title":"Deep","amount":"7.250","quantity":3,
        "items":[{"product":"Pen","quantity":2},{"product":"Ink","quantity":1}]}"#;

    let created = stack
        .send("POST", &format!("{V4}/Orders"), &[JSON], order)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["ID"].as_str().unwrap_or_default().to_owned();
    let location = created.header("location");
    assert!(
        location.is_empty()
            || location.starts_with(stack.gateway.url())
            || !location.starts_with("http"),
        "{location}"
    );

    let path = format!("{V4}/Orders({id})");
    let read = stack
        .send("GET", &format!("{path}?$expand=items"), &[], "")
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(
        read.json()["items"].as_array().map(Vec::len),
        Some(2),
        "deep insert"
    );
    let etag = read.json()["@odata.etag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!etag.is_empty(), "{}", read.text());

    let patched = stack
        .send(
            "PATCH",
            &path,
            &[JSON, ("if-match", &etag)],
            r#"{"title":"Patched"}"#,
        )
        .await;
    assert!(patched.status.is_success(), "{}", patched.text());

    let stale = stack
        .send(
            "PATCH",
            &path,
            &[JSON, ("if-match", &etag)],
            r#"{"title":"Stale"}"#,
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.text()
    );
    assert!(
        stale.json()["error"].is_object(),
        "CAP's error passes: {}",
        stale.text()
    );

    let deleted = stack.send("DELETE", &path, &[("if-match", "*")], "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    let gone = stack.send("GET", &path, &[], "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn v4_paging_to_the_end() {
    let stack = Stack::start();
    let mut next = stack.url(&format!("{V4}/Orders"));
    let mut amounts = Vec::new();
    for _ in 0..10 {
        let page = stack.send("GET", &next, &[], "").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let text = page.text();
        if amounts.is_empty() {
            assert!(text.contains("12.5") || text.contains("12.500"), "{text}");
        }
        let body: Value = page.json();
        amounts.extend(body["value"].as_array().into_iter().flatten().cloned());
        match body["@odata.nextLink"].as_str() {
            Some(link) if link.starts_with("http") => {
                assert!(link.starts_with(stack.gateway.url()), "{link}");
                next = link.to_owned();
            }
            Some(link) => next = format!("{}/{}", stack.url(V4), link.trim_start_matches('/')),
            None => break,
        }
    }
    assert_eq!(amounts.len(), 12);
}

fn batch_body(boundary: &str, changeset: &str, inner_post: &str) -> String {
    format!(
        "--{boundary}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         \r\n\
         GET Orders?$top=1 HTTP/1.1\r\n\
         Accept: application/json\r\n\
         \r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: multipart/mixed; boundary={changeset}\r\n\
         \r\n\
         --{changeset}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         Content-ID: 1\r\n\
         \r\n\
         POST Orders HTTP/1.1\r\n\
         Content-Type: application/json\r\n\
         \r\n\
         {inner_post}\r\n\
         --{changeset}--\r\n\
         \r\n\
         --{boundary}--\r\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn v4_batch_changesets() {
    let stack = Stack::start();
    let headers = [("content-type", "multipart/mixed; boundary=batch_v4")];

    let good = batch_body(
        "batch_v4",
        "cs_1",
        r#"{"title":"Batch","amount":"1.000","quantity":1}"#,
    );
    let response = stack
        .send("POST", &format!("{V4}/$batch"), &headers, &good)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let text = response.text();
    assert!(text.contains("HTTP/1.1 201"), "{text}");

    let bad = batch_body(
        "batch_v4",
        "cs_2",
        r#"{"title":"Bad","amount":"not a number"}"#,
    );
    let response = stack
        .send("POST", &format!("{V4}/$batch"), &headers, &bad)
        .await;
    let text = response.text();
    assert!(text.contains("HTTP/1.1 200"), "the read succeeds: {text}");
    assert!(text.contains("HTTP/1.1 400"), "the changeset fails: {text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_create_merge_delete_and_paging() {
    let stack = Stack::start();
    let created = stack
        .send(
            "POST",
            &format!("{V2}/Orders"),
            &[JSON, ("accept", "application/json")],
            r#"{"title":"V2","amount":"3.300","quantity":"2"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let uri = created.json()["d"]["__metadata"]["uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(uri.starts_with(&stack.url(V2)), "{uri}");

    let merged = stack
        .send(
            "MERGE",
            &uri,
            &[JSON, ("if-match", "*")],
            r#"{"title":"Merged"}"#,
        )
        .await;
    // The V2 adapter responds to an update with 200 and the entity.
    assert!(merged.status.is_success(), "{}", merged.text());
    let tunnelled = stack
        .send(
            "POST",
            &uri,
            &[JSON, ("if-match", "*"), ("x-http-method", "MERGE")],
            r#"{"title":"Tunnelled"}"#,
        )
        .await;
    assert!(tunnelled.status.is_success(), "{}", tunnelled.text());
    let read = stack
        .send("GET", &uri, &[("accept", "application/json")], "")
        .await;
    assert_eq!(read.json()["d"]["title"], "Tunnelled", "{}", read.text());

    let deleted = stack.send("DELETE", &uri, &[("if-match", "*")], "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());

    let mut next = stack.url(&format!("{V2}/Orders"));
    let mut count = 0;
    for _ in 0..10 {
        let page = stack
            .send("GET", &next, &[("accept", "application/json")], "")
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let body = page.json();
        count += body["d"]["results"].as_array().map_or(0, Vec::len);
        match body["d"]["__next"].as_str() {
            Some(link) => {
                assert!(link.starts_with(stack.gateway.url()), "{link}");
                next = link.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(count, 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_batch_with_changeset() {
    let stack = Stack::start();
    let headers = [("content-type", "multipart/mixed; boundary=batch_v2")];
    let body = batch_body(
        "batch_v2",
        "cs_v2",
        r#"{"title":"V2 batch","amount":"2.000","quantity":"1"}"#,
    );
    let response = stack
        .send("POST", &format!("{V2}/$batch"), &headers, &body)
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text());
    let text = response.text();
    assert!(text.contains("HTTP/1.1 201"), "{text}");
    assert!(
        !text.contains("http://localhost:"),
        "backend links remain: {text}"
    );
    assert!(text.contains(&stack.url(V2)), "{text}");
}
