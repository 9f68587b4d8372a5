//! End-to-end tests of OData V2 behaviour against a backend that acts as SAP
//! Gateway does: CSRF tokens bound to session cookies, `HEAD` refused, a
//! trailing-slash redirect, absolute links, `$batch`, a cached `$metadata`,
//! an HTML login page, XML and plain-text errors, and gzip bodies.

use btp_gateway_tests::harness::{
    Gateway, HttpResponse, SAP_TEST_SERVICE_PATH, SapGateway, request, request_with_body,
};
use bytes::Bytes;
use http::{Method, StatusCode};
use tempfile::TempDir;

const DESTINATION: &str = "SAP_GW";

struct Stack {
    backend: SapGateway,
    gateway: Gateway,
    _dir: TempDir,
}

impl Stack {
    async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    async fn start_with(extra: &[(&str, &str)]) -> Stack {
        let backend = SapGateway::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let destinations = serde_json::json!([
            { "name": DESTINATION, "url": backend.url() },
            { "name": "SAP_GW_READ_ONLY", "url": backend.url() },
        ])
        .to_string();
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut env = vec![("destinations", destinations.as_str())];
        env.extend_from_slice(extra);
        let gateway = Gateway::start(&env, dir.path()).unwrap_or_else(|error| panic!("{error}"));
        Stack {
            backend,
            gateway,
            _dir: dir,
        }
    }

    /// Returns the gateway URL of a path in the test service.
    fn url(&self, resource: &str) -> String {
        format!(
            "{}/odata/{DESTINATION}{SAP_TEST_SERVICE_PATH}{resource}",
            self.gateway.url()
        )
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> HttpResponse {
        request_with_body(method, url, headers, Bytes::from(body.to_owned()))
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    async fn get(&self, url: &str, headers: &[(&str, &str)]) -> HttpResponse {
        request(Method::GET, url, headers)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }
}

fn error_message(response: &HttpResponse) -> String {
    let body = response.json();
    let message = &body["error"]["message"];
    message
        .as_str()
        .or_else(|| message["value"].as_str())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn write_fetches_csrf_token_with_cookies() {
    let stack = Stack::start().await;
    let body = r#"{"ID":"100","Name":"New","Price":"1.50","Quantity":"1"}"#;

    let created = stack
        .send(
            Method::POST,
            &stack.url("Items"),
            &[("content-type", "application/json")],
            body,
        )
        .await;

    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(stack.backend.stats().csrf_fetches, 1);
    let requests = stack.backend.requests();
    let write = requests
        .iter()
        .rfind(|request| request.method == Method::POST)
        .unwrap_or_else(|| panic!("no POST reached the backend"));
    assert!(write.header("x-csrf-token").is_some());
    let cookie = write.header("cookie").unwrap_or_default();
    assert!(cookie.contains("SAP_SESSIONID_GW1_100="), "{cookie}");
    let location = created.header("location");
    assert!(
        location.starts_with(&stack.url("Items(")),
        "Location not rewritten: {location}"
    );
    assert!(
        created.text().contains(&stack.url("Items(")),
        "{}",
        created.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn head_refused_and_redirect_fall_back() {
    let stack = Stack::start().await;

    let response = stack
        .send(Method::DELETE, &stack.url("Items('3')"), &[], "")
        .await;

    assert_eq!(
        response.status,
        StatusCode::NO_CONTENT,
        "{}",
        response.text()
    );
    let fetches: Vec<(Method, String)> = stack
        .backend
        .requests()
        .iter()
        .filter(|request| request.header("x-csrf-token").as_deref() == Some("Fetch"))
        .map(|request| (request.method.clone(), request.path_and_query().to_owned()))
        .collect();
    assert_eq!(fetches[0].0, Method::HEAD, "{fetches:?}");
    assert_eq!(fetches[1].0, Method::GET, "{fetches:?}");
    assert_eq!(fetches[1].1, SAP_TEST_SERVICE_PATH, "{fetches:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_token_is_fetched_once_more() {
    let stack = Stack::start().await;
    let update = r#"{"Name":"Renamed"}"#;
    let first = stack
        .send(
            Method::from_bytes(b"MERGE").unwrap_or(Method::PATCH),
            &stack.url("Items('1')"),
            &[("content-type", "application/json"), ("if-match", "*")],
            update,
        )
        .await;
    assert_eq!(first.status, StatusCode::NO_CONTENT, "{}", first.text());
    assert_eq!(stack.backend.stats().csrf_fetches, 1);

    let second = stack
        .send(
            Method::PATCH,
            &stack.url("Items('1')"),
            &[("content-type", "application/json"), ("if-match", "*")],
            update,
        )
        .await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.text());
    assert_eq!(stack.backend.stats().csrf_fetches, 1, "the token is cached");

    stack.backend.expire_csrf_tokens();
    let third = stack
        .send(
            Method::POST,
            &stack.url("Items('1')"),
            &[
                ("content-type", "application/json"),
                ("if-match", "*"),
                ("x-http-method", "MERGE"),
            ],
            update,
        )
        .await;
    assert_eq!(third.status, StatusCode::NO_CONTENT, "{}", third.text());
    assert_eq!(stack.backend.stats().csrf_fetches, 2);
    assert_eq!(stack.backend.stats().csrf_rejections, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn ui5_token_flow_works() {
    let stack = Stack::start().await;
    let fetched = stack
        .get(&stack.url(""), &[("x-csrf-token", "Fetch")])
        .await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text());
    let token = fetched.header("x-csrf-token");
    assert!(!token.is_empty());
    assert!(fetched.headers.get("set-cookie").is_none());

    let head = request(Method::HEAD, &stack.url(""), &[("x-csrf-token", "Fetch")])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        head.status,
        StatusCode::OK,
        "HEAD works though the backend refuses it"
    );
    assert_eq!(head.header("x-csrf-token"), token);
    assert!(head.body.is_empty());

    let created = stack
        .send(
            Method::POST,
            &stack.url("Items"),
            &[
                ("content-type", "application/json"),
                ("x-csrf-token", &token),
            ],
            r#"{"ID":"200","Name":"UI5","Price":"2.00","Quantity":"3"}"#,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(stack.backend.stats().csrf_fetches, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_etag_gives_412_unchanged() {
    let stack = Stack::start().await;
    let response = stack
        .send(
            Method::PUT,
            &stack.url("Items('2')"),
            &[
                ("content-type", "application/json"),
                ("if-match", "W/\"datetime'2000-01-01T00%3A00%3A00'\""),
            ],
            r#"{"Name":"Stale"}"#,
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        response.text()
    );
    let text = response.text();
    assert!(text.contains("<error"), "the XML error is passed: {text}");
}

/// A component mounted at a route prefix writes links under that prefix,
/// so a client that follows them stays on the route.
#[tokio::test(flavor = "multi_thread")]
async fn mounted_route_links_keep_prefix() {
    let routes = r#"[{"path": "/tenant-a", "component": "bundled"}]"#;
    let stack = Stack::start_with(&[("BTP_GATEWAY_ROUTES", routes)]).await;
    let mounted = format!(
        "{}/tenant-a/odata/{DESTINATION}{SAP_TEST_SERVICE_PATH}",
        stack.gateway.url()
    );

    let page = stack.get(&format!("{mounted}Items"), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let body = page.json();
    let first = &body["d"]["results"][0]["__metadata"]["uri"];
    assert!(
        first
            .as_str()
            .is_some_and(|uri| uri.starts_with(&format!("{mounted}Items("))),
        "{first}"
    );
    let next = body["d"]["__next"].as_str().unwrap_or_default();
    assert!(next.starts_with(&mounted), "{next}");
    let second = stack.get(next, &[]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text());

    let unmounted = stack.get(&stack.url("Items"), &[]).await;
    assert_eq!(
        unmounted.status,
        StatusCode::NOT_FOUND,
        "no route serves /odata"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paging_follows_rewritten_next_links() {
    let stack = Stack::start().await;
    let mut url = stack.url("Items");
    let mut ids = Vec::new();
    for _ in 0..10 {
        let page = stack.get(&url, &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let body = page.json();
        for item in body["d"]["results"].as_array().into_iter().flatten() {
            ids.push(item["ID"].as_str().unwrap_or_default().to_owned());
            let uri = item["__metadata"]["uri"].as_str().unwrap_or_default();
            assert!(uri.starts_with(&stack.url("Items(")), "{uri}");
        }
        match body["d"]["__next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(stack.gateway.url()), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), 12, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_are_not_reformatted() {
    let stack = Stack::start().await;
    let response = stack.get(&stack.url("Items?$top=1"), &[]).await;
    let text = response.text();
    assert!(text.contains(r#""Price":"12.500""#), "{text}");
    assert!(text.contains(r#""Quantity":"9007199254740993""#), "{text}");
    assert!(text.contains(r#""\/Date(1672531200000)\/""#), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_body_is_decoded_and_rewritten() {
    let stack = Stack::start().await;
    let response = stack
        .get(&stack.url("Items"), &[("accept-encoding", "gzip")])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.headers.get("content-encoding").is_none());
    let text = response.text();
    assert!(text.contains(&stack.url("Items(")), "{text}");
    assert!(!text.contains(stack.backend.url()), "{text}");

    let media = stack
        .get(
            &stack.url("Items('1')/$value"),
            &[("accept-encoding", "gzip")],
        )
        .await;
    assert_eq!(media.status, StatusCode::OK);
    assert_eq!(media.header("content-encoding"), "gzip");
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_errors_become_odata_errors() {
    let stack = Stack::start().await;

    let xml = stack.get(&stack.url("Fail"), &[]).await;
    assert_eq!(xml.status, StatusCode::BAD_REQUEST);
    assert!(xml.text().contains("ZGW/001"), "{}", xml.text());

    let plain = stack.get(&stack.url("CloudConnector"), &[]).await;
    assert_eq!(plain.status, StatusCode::SERVICE_UNAVAILABLE);
    let message = error_message(&plain);
    assert!(
        message.contains("answered 503 with text/plain"),
        "{message}"
    );
    assert!(message.contains("Cloud Connector"), "{message}");
    assert!(
        plain.json()["error"]["message"]["lang"].is_string(),
        "V2 format"
    );
    assert!(!plain.header("x-correlationid").is_empty());

    let empty = stack.get(&stack.url("EmptyBadGateway"), &[]).await;
    assert_eq!(empty.status, StatusCode::BAD_GATEWAY);
    assert!(
        error_message(&empty).contains("empty body"),
        "{}",
        empty.text()
    );

    let login_url = format!(
        "{}/odata/{DESTINATION}/sap/opu/odata/sap/ZGW_LOGIN_SRV/Items",
        stack.gateway.url()
    );
    let login = stack.get(&login_url, &[]).await;
    assert_eq!(login.status, StatusCode::BAD_GATEWAY);
    assert!(error_message(&login).contains("Logon"), "{}", login.text());

    let redirect_url = format!(
        "{}/odata/{DESTINATION}/sap/opu/odata/sap/ZGW_REDIRECT_SRV/Items",
        stack.gateway.url()
    );
    let redirect = stack.get(&redirect_url, &[]).await;
    assert_eq!(redirect.status, StatusCode::BAD_GATEWAY);
    assert!(
        error_message(&redirect).contains("login"),
        "{}",
        redirect.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sap_message_keeps_utf8_bytes() {
    let stack = Stack::start().await;
    let response = stack.get(&stack.url("Items('1')"), &[]).await;
    let value = response
        .headers
        .get("sap-message")
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_default();
    assert_eq!(
        String::from_utf8(value).unwrap_or_default(),
        r#"{"code":"ZGW/002","message":"Größe geändert","severity":"info"}"#
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_is_cached_and_revalidated() {
    let stack = Stack::start().await;
    let first = stack.get(&stack.url("$metadata"), &[]).await;
    let second = stack.get(&stack.url("$metadata"), &[]).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(first.body, second.body);
    assert!(
        first.text().contains(&stack.url("$metadata")),
        "self link rewritten"
    );
    let stats = stack.backend.stats();
    assert_eq!(stats.metadata_full_responses, 1);
    assert_eq!(stats.metadata_not_modified, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn big_metadata_fits_in_memory_limit() {
    let stack = Stack::start_with(&[("BTP_GATEWAY_MAX_MEMORY_MIB", "64")]).await;
    let url = format!(
        "{}/odata/{DESTINATION}/sap/opu/odata/sap/ZGW_BIG_SRV/$metadata",
        stack.gateway.url()
    );
    for _ in 0..2 {
        let response = stack.get(&url, &[]).await;
        assert_eq!(response.status, StatusCode::OK);
        assert!(response.body.len() > 4_000_000, "{}", response.body.len());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_changesets_pass_intact() {
    let stack = Stack::start().await;
    let gateway_service = stack.url("");
    let body = format!(
        "--batch_1\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         \r\n\
         GET {gateway_service}Items('1') HTTP/1.1\r\n\
         Accept: application/json\r\n\
         \r\n\
         \r\n\
         --batch_1\r\n\
         Content-Type: multipart/mixed; boundary=changeset_1\r\n\
         \r\n\
         --changeset_1\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         \r\n\
         MERGE Items('2') HTTP/1.1\r\n\
         Content-Type: application/json\r\n\
         If-Match: *\r\n\
         \r\n\
         {{\"Name\":\"Batch\"}}\r\n\
         --changeset_1--\r\n\
         \r\n\
         --batch_1\r\n\
         content-type: multipart/mixed; boundary=changeset_2\r\n\
         \r\n\
         --changeset_2\r\n\
         content-type: application/http\r\n\
         \r\n\
         POST Fail HTTP/1.1\r\n\
         content-type: application/json\r\n\
         \r\n\
         {{}}\r\n\
         --changeset_2--\r\n\
         \r\n\
         --batch_1--\r\n"
    );
    let response = stack
        .send(
            Method::POST,
            &stack.url("$batch"),
            &[("content-type", "multipart/mixed; boundary=batch_1")],
            &body,
        )
        .await;

    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text());
    let text = response.text();
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("HTTP/1.1 204"), "{text}");
    assert!(text.contains("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains(&stack.url("Items('1')")),
        "links in parts rewritten: {text}"
    );
    let sent = stack
        .backend
        .requests_with_bodies()
        .into_iter()
        .rfind(|request| request.request.path_and_query().ends_with("$batch"))
        .unwrap_or_else(|| panic!("no $batch reached the backend"));
    let sent = sent.body_text();
    assert!(sent.contains("GET Items('1') HTTP/1.1"), "{sent}");
    assert!(!sent.contains(stack.gateway.url()), "{sent}");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_policy_denies_writes() {
    let policies = r#"{"SAP_GW_READ_ONLY": {"readOnly": true}}"#;
    let stack = Stack::start_with(&[("BTP_GATEWAY_DESTINATION_POLICIES", policies)]).await;
    let url = format!(
        "{}/odata/SAP_GW_READ_ONLY{SAP_TEST_SERVICE_PATH}Items",
        stack.gateway.url()
    );

    let read = stack.get(&url, &[]).await;
    assert_eq!(read.status, StatusCode::OK);
    let write = stack
        .send(
            Method::POST,
            &url,
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text());
    let message = error_message(&write);
    assert!(message.contains("read-only"), "{message}");
    assert!(
        !stack
            .backend
            .requests()
            .iter()
            .any(|r| r.method == Method::POST),
        "nothing was written"
    );

    let batch_url = format!(
        "{}/odata/SAP_GW_READ_ONLY{SAP_TEST_SERVICE_PATH}$batch",
        stack.gateway.url()
    );
    let batch_headers = [("content-type", "multipart/mixed; boundary=b")];
    let reads = "--b\r\nContent-Type: application/http\r\n\r\n\
                 GET Items('1') HTTP/1.1\r\n\r\n\r\n--b--\r\n";
    let read_batch = stack
        .send(Method::POST, &batch_url, &batch_headers, reads)
        .await;
    assert_eq!(
        read_batch.status,
        StatusCode::ACCEPTED,
        "{}",
        read_batch.text()
    );
    let writes = "--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\
                  Content-Type: application/http\r\n\r\nDELETE Items('1') HTTP/1.1\r\n\r\n\r\n\
                  --c--\r\n--b--\r\n";
    let write_batch = stack
        .send(Method::POST, &batch_url, &batch_headers, writes)
        .await;
    assert_eq!(
        write_batch.status,
        StatusCode::FORBIDDEN,
        "{}",
        write_batch.text()
    );
    assert!(
        error_message(&write_batch).contains("changeset"),
        "{}",
        write_batch.text()
    );
    assert_eq!(stack.backend.stats().batch_requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_path_allow_list() {
    let policies = r#"{"SAP_GW": {"servicePaths": ["/sap/opu/odata/sap/ZGW_TEST_SRV"]}}"#;
    let stack = Stack::start_with(&[("BTP_GATEWAY_DESTINATION_POLICIES", policies)]).await;
    let allowed = stack.get(&stack.url("Items('1')"), &[]).await;
    assert_eq!(allowed.status, StatusCode::OK);
    let denied_url = format!(
        "{}/odata/{DESTINATION}/sap/opu/odata/sap/ZGW_BIG_SRV/$metadata",
        stack.gateway.url()
    );
    let denied = stack.get(&denied_url, &[]).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.text());
    assert!(
        error_message(&denied).contains("not allowed"),
        "{}",
        denied.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn large_collection_streams_in_bounded_memory() {
    let stack = Stack::start_with(&[("BTP_GATEWAY_MAX_MEMORY_MIB", "32")]).await;
    // About 1.1 KB per entry: roughly 100 MB of JSON, every entry with an
    // absolute link to rewrite.
    let url = stack.url("Large?$top=95000");
    let before = stack.gateway.peak_memory_bytes();

    let response = stack.get(&url, &[]).await;

    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.len() > 95_000_000, "{}", response.body.len());
    let text = String::from_utf8_lossy(&response.body[..4096]).into_owned();
    assert!(text.contains(stack.gateway.url()), "{text}");
    let tail = String::from_utf8_lossy(&response.body[response.body.len() - 4096..]).into_owned();
    assert!(!tail.contains(stack.backend.url()), "{tail}");
    // The guest has 32 MiB, so it cannot hold the body; the host must not
    // either. The limit leaves room for the runtime and compiled code.
    if let (Some(before), Some(after)) = (before, stack.gateway.peak_memory_bytes()) {
        let growth = after.saturating_sub(before);
        assert!(
            growth < 64 * 1024 * 1024,
            "the gateway's peak memory grew by {growth} bytes during a 100 MB read"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn response_body_limit_breaks_transfer() {
    let stack = Stack::start_with(&[("BTP_GATEWAY_MAX_RESPONSE_BODY_MIB", "1")]).await;
    let url = stack.url("Large?$top=5000");

    let result = request(Method::GET, &url, &[]).await;

    assert!(
        result.is_err(),
        "a 5 MB body passed a 1 MiB limit as a complete response"
    );
    let log = stack.gateway.log_after("response body limit");
    assert!(
        log.contains("ended a response body at the response body limit"),
        "{log}"
    );
}
