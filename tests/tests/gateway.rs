//! End-to-end tests: the gateway process with the default component, the
//! Destination service emulator and the CAP test service, all on 127.0.0.1.

use std::path::Path;

use base64::Engine as _;
use btp_gateway_tests::emulator::{ClientConfig, Destination, Emulator, EmulatorConfig};
use btp_gateway_tests::harness::{
    CAP_PASSWORD, CAP_USER, CapService, Gateway, HttpResponse, get, request,
};
use http::{Method, StatusCode};
use tempfile::TempDir;

const CLIENT_ID: &str = "sb-gateway-test!b17|destination-xsappname!b404";
const CLIENT_SECRET: &str = "gateway-client-secret-4711";
const CATALOG: &str = "/odata/v4/catalog";

/// The CAP service, the emulator with destinations to it, and the gateway
/// bound to the emulator through `VCAP_SERVICES`.
struct Stack {
    cap: CapService,
    emulator: Emulator,
    gateway: Gateway,
    _dir: TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
        let emulator = start_emulator(cap.url()).await;
        let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET).to_string();
        let dir = temp_dir();
        let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
            .unwrap_or_else(|error| panic!("{error}"));
        Stack {
            cap,
            emulator,
            gateway,
            _dir: dir,
        }
    }

    /// GET through the gateway, path relative to `/odata/`.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let url = format!("{}/odata/{path}", self.gateway.url());
        get(&url, headers)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }

    /// GET directly from the CAP service.
    async fn direct(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        let url = format!("{}{path}", self.cap.url());
        get(&url, headers)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }
}

async fn start_emulator(cap_url: &str) -> Emulator {
    let catalog = format!("{cap_url}{CATALOG}");
    let token_url = "${EMULATOR_URL}/oauth/token";
    let config = EmulatorConfig {
        clients: vec![
            ClientConfig::new(CLIENT_ID, CLIENT_SECRET),
            ClientConfig::new("sb-backend-client", "backend-secret"),
        ],
        instance_destinations: vec![
            Destination::no_authentication("CAP_CATALOG", catalog.clone()),
            Destination::basic(
                "CAP_SECURE",
                format!("{cap_url}/odata/v4/secure"),
                CAP_USER,
                CAP_PASSWORD,
            ),
            Destination::basic("ECHO_BASIC", cap_url, CAP_USER, CAP_PASSWORD),
            Destination::oauth2_client_credentials(
                "ECHO_OAUTH",
                cap_url,
                token_url,
                "sb-backend-client",
                "backend-secret",
            ),
        ],
        subaccount_destinations: vec![
            Destination::no_authentication("ECHO", cap_url),
            Destination::no_authentication("Catalog Mixed Ä", catalog),
            Destination::oauth2_client_credentials(
                "ECHO_CUSTOM_HEADER",
                cap_url,
                token_url,
                "sb-backend-client",
                "backend-secret",
            )
            .with_property("Emulator.HttpHeaderKey", "X-Backend-Authorization"),
            Destination::oauth2_client_credentials(
                "ECHO_BROKEN_OAUTH",
                cap_url,
                token_url,
                "sb-backend-client",
                "wrong",
            ),
        ],
        ..EmulatorConfig::default()
    };
    Emulator::start(config)
        .await
        .unwrap_or_else(|error| panic!("{error}"))
}

fn temp_dir() -> TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap_or_else(|error| panic!("{error}"));
}

/// Returns the headers the CAP echo route received, as JSON.
fn echoed(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

// --- Reading OData through a destination ---

#[tokio::test(flavor = "multi_thread")]
async fn collection_read_matches_backend() {
    let stack = Stack::start().await;
    let query = "Books?$top=3&$select=ID,title,price&$count=true";

    let through = stack.get(&format!("CAP_CATALOG/{query}"), &[]).await;
    let direct = stack
        .direct(
            &format!("{CATALOG}/{query}"),
            &[("accept", "application/json")],
        )
        .await;

    assert_eq!(through.status, StatusCode::OK, "{}", through.text());
    assert_eq!(through.body, direct.body);
    assert_eq!(through.json()["@odata.count"], 61);
    assert_eq!(through.json()["value"].as_array().map(Vec::len), Some(3));
    assert!(
        through
            .header("content-type")
            .starts_with("application/json")
    );
    assert_eq!(through.header("odata-version"), "4.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn decimal_trailing_zeros_unchanged() {
    let stack = Stack::start().await;
    let response = stack
        .get("CAP_CATALOG/Books('C%2FD')?$select=price", &[])
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert!(
        response.text().contains(r#""price":"100.00""#),
        "{}",
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_with_doubled_quote_and_non_ascii() {
    let stack = Stack::start().await;
    let filter = "$filter=title%20eq%20%27O%27%27Brien%27%27s%20Stra%C3%9Fe%27";
    let response = stack.get(&format!("CAP_CATALOG/Books?{filter}"), &[]).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let rows = response.json()["value"].clone();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["title"], "O'Brien's Straße");
    assert_eq!(rows[0]["ID"], "A/B'1");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_with_slash_and_quote() {
    let stack = Stack::start().await;
    let response = stack.get("CAP_CATALOG/Books('A%2FB''1')", &[]).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.json()["ID"], "A/B'1");
    assert_eq!(response.json()["price"], "12.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_is_backend_xml() {
    let stack = Stack::start().await;
    let through = stack.get("CAP_CATALOG/$metadata", &[]).await;
    let direct = stack.direct(&format!("{CATALOG}/$metadata"), &[]).await;

    assert_eq!(through.status, StatusCode::OK, "{}", through.text());
    assert!(
        through
            .header("content-type")
            .starts_with("application/xml")
    );
    assert_eq!(through.body, direct.body);
    assert!(through.text().contains(r#"<EntityType Name="Books">"#));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_driven_paging_follows_next_links() {
    let stack = Stack::start().await;
    let mut next = Some("Books".to_owned());
    let mut ids = Vec::new();
    let mut pages = 0;

    while let Some(link) = next.take() {
        pages += 1;
        assert!(pages <= 10, "paging did not end");
        let response = stack.get(&format!("CAP_CATALOG/{link}"), &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let page = response.json();
        for row in page["value"].as_array().into_iter().flatten() {
            ids.push(row["ID"].as_str().unwrap_or_default().to_owned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }

    assert_eq!(pages, 4);
    assert_eq!(ids.len(), 61);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 61);
}

#[tokio::test(flavor = "multi_thread")]
async fn destination_name_case_and_encoding() {
    let stack = Stack::start().await;
    let found = stack
        .get("Catalog%20Mixed%20%C3%84/Books?$top=1", &[])
        .await;
    let wrong_case = stack
        .get("catalog%20mixed%20%C3%A4/Books?$top=1", &[])
        .await;

    assert_eq!(found.status, StatusCode::OK, "{}", found.text());
    assert_eq!(
        wrong_case.status,
        StatusCode::NOT_FOUND,
        "{}",
        wrong_case.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn head_returns_headers_without_body() {
    let stack = Stack::start().await;
    // CAP returns 405 for HEAD on OData resources, so this uses the echo
    // route, which Express serves for HEAD as for GET.
    let url = format!("{}/odata/ECHO/echo/sap-messages", stack.gateway.url());
    let response = request(Method::HEAD, &url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());
    assert!(
        response
            .header("content-type")
            .starts_with("application/json")
    );
    assert_eq!(response.header("etag"), r#"W/"2024-01-01T00:00:00Z""#);
}

// --- Headers in both directions ---

#[tokio::test(flavor = "multi_thread")]
async fn default_accept_is_json_unless_chosen() {
    let stack = Stack::start().await;
    let default = echoed(&stack.get("ECHO/echo/headers", &[]).await);
    let any = echoed(&stack.get("ECHO/echo/headers", &[("accept", "*/*")]).await);
    let chosen = echoed(
        &stack
            .get("ECHO/echo/headers", &[("accept", "application/xml")])
            .await,
    );
    let format = echoed(&stack.get("ECHO/echo/headers?$format=json", &[]).await);

    assert_eq!(default["accept"], "application/json");
    assert_eq!(any["accept"], "application/json");
    assert_eq!(chosen["accept"], "application/xml");
    assert!(format.get("accept").is_none(), "{format}");
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_credentials_stay_in_gateway() {
    let stack = Stack::start().await;
    let response = stack
        .get(
            "ECHO/echo/headers",
            &[
                ("authorization", "Bearer caller-jwt"),
                ("cookie", "JSESSIONID=caller"),
                ("x-custom", "1"),
            ],
        )
        .await;
    let headers = echoed(&response);

    assert!(headers.get("authorization").is_none(), "{headers}");
    assert!(headers.get("cookie").is_none(), "{headers}");
    assert!(headers.get("x-custom").is_none(), "{headers}");
}

#[tokio::test(flavor = "multi_thread")]
async fn correlation_id_travels_both_ways() {
    let stack = Stack::start().await;
    let response = stack
        .get("ECHO/echo/headers", &[("x-correlationid", "test-corr-42")])
        .await;

    assert_eq!(response.header("x-correlationid"), "test-corr-42");
    assert_eq!(echoed(&response)["x-correlationid"], "test-corr-42");

    let generated = stack.get("ECHO/echo/headers", &[]).await;
    let id = generated.header("x-correlationid");
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(echoed(&generated)["x-correlationid"], id.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn sap_messages_bytes_and_etag_pass() {
    let stack = Stack::start().await;
    let response = stack.get("ECHO/echo/sap-messages", &[]).await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let messages = response
        .headers
        .get("sap-messages")
        .map(|value| value.as_bytes().to_vec());
    let expected = r#"[{"code":"ZMSG/001","message":"Größe geändert: Ærø","severity":"info"}]"#;
    assert_eq!(messages.as_deref(), Some(expected.as_bytes()));
    assert_eq!(response.header("etag"), r#"W/"2024-01-01T00:00:00Z""#);
    assert!(response.headers.get("set-cookie").is_none());
}

// --- Authentication types ---

#[tokio::test(flavor = "multi_thread")]
async fn no_authentication_sends_no_credentials() {
    let stack = Stack::start().await;
    let headers = echoed(&stack.get("ECHO/echo/headers", &[]).await);

    assert!(headers.get("authorization").is_none(), "{headers}");
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_authentication_reaches_backend() {
    let stack = Stack::start().await;
    let anonymous = stack.direct("/odata/v4/secure/Books?$top=1", &[]).await;
    let through = stack.get("CAP_SECURE/Books?$top=1", &[]).await;
    let echo = echoed(&stack.get("ECHO_BASIC/echo/headers", &[]).await);

    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(through.status, StatusCode::OK, "{}", through.text());
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("{CAP_USER}:{CAP_PASSWORD}"));
    assert_eq!(echo["authorization"], format!("Basic {expected}"));
    assert!(through.headers.get("www-authenticate").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_client_credentials_sends_bearer() {
    let stack = Stack::start().await;
    let headers = echoed(&stack.get("ECHO_OAUTH/echo/headers", &[]).await);

    let authorization = headers["authorization"].as_str().unwrap_or_default();
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("{headers}"));
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("token is not a JWT: {token}"));
    assert_eq!(claims["client_id"], "sb-backend-client");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_header_key_comes_from_service() {
    let stack = Stack::start().await;
    let headers = echoed(&stack.get("ECHO_CUSTOM_HEADER/echo/headers", &[]).await);

    let custom = headers["x-backend-authorization"]
        .as_str()
        .unwrap_or_default();
    assert!(custom.starts_with("Bearer "), "{headers}");
    assert!(headers.get("authorization").is_none(), "{headers}");
}

#[tokio::test(flavor = "multi_thread")]
async fn destination_lookups_are_cached() {
    let stack = Stack::start().await;
    for _ in 0..3 {
        let response = stack.get("CAP_CATALOG/Books?$top=1", &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }

    let stats = stack.emulator.stats();
    assert_eq!(stats.destination_lookups, 1);
    assert_eq!(stats.token_requests, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_makes_one_lookup() {
    let stack = Stack::start().await;
    let url = format!("{}/odata/ECHO_OAUTH/echo/headers", stack.gateway.url());
    let requests = (0..20).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { get(&url, &[]).await })
    });
    for request in requests {
        let response = request
            .await
            .unwrap_or_else(|error| panic!("{error}"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }

    let stats = stack.emulator.stats();
    assert_eq!(stats.destination_lookups, 1);
    // One token for the gateway, one that the emulator fetched for the
    // destination's OAuth2 client.
    assert_eq!(stats.token_requests, 2);
}

// --- Errors ---

#[tokio::test(flavor = "multi_thread")]
async fn unknown_destination_is_404_json() {
    let stack = Stack::start().await;
    let response = stack
        .get("NO_SUCH_DEST/Books", &[("x-correlationid", "corr-404")])
        .await;

    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let body = response.json();
    assert_eq!(body["error"]["code"], "DestinationNotFound");
    assert_eq!(body["error"]["target"], "NO_SUCH_DEST");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("'NO_SUCH_DEST'")
    );
    assert_eq!(body["error"]["innererror"]["correlation_id"], "corr-404");
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_auth_tokens_are_502() {
    let stack = Stack::start().await;
    let response = stack.get("ECHO_BROKEN_OAUTH/echo/headers", &[]).await;

    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "DestinationMisconfigured");
    let log = stack
        .gateway
        .log_after("Retrieval of OAuth2 access token failed");
    assert!(
        log.contains("Retrieval of OAuth2 access token failed"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_errors_for_bad_requests() {
    let stack = Stack::start().await;
    let base = stack.gateway.url();

    let options = request(
        Method::OPTIONS,
        &format!("{base}/odata/CAP_CATALOG/Books"),
        &[],
    )
    .await;
    let options = options.unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(options.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        options.header("allow"),
        "GET, HEAD, POST, PUT, PATCH, MERGE, DELETE"
    );

    let other = get(&format!("{base}/somewhere"), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.json()["error"]["code"], "NotFound");

    let missing = get(&format!("{base}/odata/"), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn destination_service_down_is_502() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(cap.url()).await;
    let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET).to_string();
    emulator.shutdown().await;
    let dir = temp_dir();
    let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));

    let url = format!("{}/odata/CAP_CATALOG/Books", gateway.url());
    let response = get(&url, &[("x-correlationid", "corr-down")])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(response.status, StatusCode::BAD_GATEWAY);
    assert_eq!(response.json()["error"]["code"], "DestinationLookupFailed");
    assert!(
        !response.text().contains("127.0.0.1"),
        "{}",
        response.text()
    );
    let log = gateway.log_after("destination lookup failed");
    assert!(
        log.contains("corr-down") && log.contains("destination lookup failed"),
        "{log}"
    );
    assert!(!log.contains(CLIENT_SECRET), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_token_is_502_without_leak() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(cap.url()).await;
    let wrong_secret = "wrong-secret-0815";
    let vcap = emulator.vcap_services(CLIENT_ID, wrong_secret).to_string();
    let dir = temp_dir();
    let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));

    let url = format!("{}/odata/CAP_CATALOG/Books", gateway.url());
    let response = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(response.status, StatusCode::BAD_GATEWAY);
    assert!(!response.text().contains(wrong_secret));
    let log = gateway.log_after("destination lookup failed");
    assert!(log.contains("401"), "{log}");
    assert!(!log.contains(wrong_secret), "{log}");
}

// --- Configuration sources ---

#[tokio::test(flavor = "multi_thread")]
async fn destinations_variable_without_service() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(cap.url()).await;
    let destinations = serde_json::json!([
        { "name": "LOCAL_CATALOG", "url": format!("{}{CATALOG}", cap.url()) },
        { "name": "LOCAL_BASIC", "url": cap.url(), "username": CAP_USER, "password": CAP_PASSWORD },
        {
            "name": "LOCAL_OAUTH", "url": cap.url(), "authentication": "OAuth2ClientCredentials",
            "tokenServiceUrl": emulator.token_url(), "clientId": "sb-backend-client",
            "clientSecret": "backend-secret"
        },
    ])
    .to_string();
    let dir = temp_dir();
    let gateway = Gateway::start(&[("destinations", &destinations)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    let base = format!("{}/odata", gateway.url());

    let rows = get(&format!("{base}/LOCAL_CATALOG/Books?$top=2"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        rows.json()["value"].as_array().map(Vec::len),
        Some(2),
        "{}",
        rows.text()
    );

    let basic = echoed(
        &get(&format!("{base}/LOCAL_BASIC/echo/headers"), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(
        basic["authorization"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Basic "),
        "{basic}"
    );

    for _ in 0..2 {
        let oauth = echoed(
            &get(&format!("{base}/LOCAL_OAUTH/echo/headers"), &[])
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        assert!(
            oauth["authorization"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Bearer "),
            "{oauth}"
        );
    }
    assert_eq!(
        emulator.stats().token_requests,
        1,
        "the local OAuth token is cached"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dotenv_service_key_binds_destination_service() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(cap.url()).await;
    let dir = temp_dir();
    let dotenv = format!(
        "# Destination service key\nCLIENT_ID={CLIENT_ID}\nCLIENT_SECRET='{CLIENT_SECRET}'\nTOKEN_URL={}\nDESTINATION_SERVICE_URI={}\n",
        emulator.token_url(),
        emulator.url()
    );
    write(dir.path(), ".env", &dotenv);
    let gateway = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));

    let url = format!("{}/odata/CAP_CATALOG/Books?$top=1", gateway.url());
    let response = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_env_json_provides_vcap_services() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let emulator = start_emulator(cap.url()).await;
    let dir = temp_dir();
    let default_env =
        serde_json::json!({ "VCAP_SERVICES": emulator.vcap_services(CLIENT_ID, CLIENT_SECRET) });
    write(dir.path(), "default-env.json", &default_env.to_string());
    let gateway = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));

    let url = format!("{}/odata/CAP_CATALOG/Books?$top=1", gateway.url());
    let response = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
}

#[test]
fn malformed_vcap_services_stops_start() {
    let dir = temp_dir();
    let vcap = r#"{"destination": [{"name": "d", "credentials": {"clientsecret": "s3cr3t-value"}"#;
    let exit = Gateway::start_expecting_failure(&[("VCAP_SERVICES", vcap)], dir.path())
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(exit.stderr.contains("VCAP_SERVICES"), "{}", exit.stderr);
    assert!(exit.stderr.contains("line 1 column"), "{}", exit.stderr);
    assert!(!exit.stderr.contains("s3cr3t-value"), "{}", exit.stderr);
}

#[test]
fn vcap_services_binding_without_secret_stops_start() {
    let dir = temp_dir();
    let vcap = r#"{"destination": [{"name": "my-destination", "label": "destination",
        "credentials": {"clientid": "c", "url": "https://x.example", "uri": "https://y.example"}}]}"#;
    let exit = Gateway::start_expecting_failure(&[("VCAP_SERVICES", vcap)], dir.path())
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(exit.stderr.contains("'my-destination'"), "{}", exit.stderr);
    assert!(exit.stderr.contains("clientsecret"), "{}", exit.stderr);
}

#[test]
fn malformed_dotenv_stops_start() {
    let dir = temp_dir();
    write(
        dir.path(),
        ".env",
        "CLIENT_ID=abc\nCLIENT_SECRET=\"unterminated-s3cr3t\n",
    );
    let exit = Gateway::start_expecting_failure(&[], dir.path()).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(exit.stderr.contains(".env: line 2"), "{}", exit.stderr);
    assert!(exit.stderr.contains("CLIENT_SECRET"), "{}", exit.stderr);
    assert!(
        !exit.stderr.contains("unterminated-s3cr3t"),
        "{}",
        exit.stderr
    );
}

#[test]
fn incomplete_service_key_stops_start() {
    let dir = temp_dir();
    write(dir.path(), ".env", "CLIENT_ID=abc\nCLIENT_SECRET=def\n");
    let exit = Gateway::start_expecting_failure(&[], dir.path()).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("TOKEN_URL, DESTINATION_SERVICE_URI"),
        "{}",
        exit.stderr
    );
}

#[test]
fn invalid_destinations_variable_stops_start() {
    let dir = temp_dir();
    let destinations = r#"[{"name": "A", "url": "http://127.0.0.1:1", "proxyHost": "proxy"}]"#;
    let exit = Gateway::start_expecting_failure(&[("destinations", destinations)], dir.path())
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(exit.status.code(), Some(2), "{}", exit.stderr);
    assert!(exit.stderr.contains("destinations"), "{}", exit.stderr);
    assert!(exit.stderr.contains("proxyHost"), "{}", exit.stderr);
}

// --- Process behaviour ---

#[tokio::test(flavor = "multi_thread")]
async fn health_answers_and_sigterm_stops() {
    let dir = temp_dir();
    let gateway = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    let health = get(&format!("{}/health", gateway.url()), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "UP");
    for path in ["/health/liveness", "/health/readiness"] {
        let probe = get(&format!("{}{path}", gateway.url()), &[])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(probe.status, StatusCode::OK, "{path}");
    }
    let status = gateway
        .terminate()
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_use_sap_field_names() {
    let dir = temp_dir();
    // VCAP_APPLICATION would make the gateway listen on all interfaces, so
    // the component fields it feeds are checked by a unit test instead.
    let gateway = Gateway::start(
        &[
            ("BTP_GATEWAY_LOG_FORMAT", "json"),
            ("CF_INSTANCE_INDEX", "0"),
        ],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let url = format!("{}/odata/NOPE/x", gateway.url());
    let response = get(&url, &[("x-correlationid", "corr-json-1")])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status, StatusCode::NOT_FOUND);

    let log = gateway.log_after(r#""type":"request""#);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    for line in &lines {
        for field in [
            "written_at",
            "written_ts",
            "level",
            "logger",
            "msg",
            "type",
            "component_instance",
        ] {
            assert!(line.get(field).is_some(), "{field} missing in {line}");
        }
    }
    let request_log = lines
        .iter()
        .find(|line| line["type"] == "request")
        .unwrap_or_else(|| panic!("no request log in {log}"));
    assert_eq!(request_log["correlation_id"], "corr-json-1");
    assert_eq!(request_log["method"], "GET");
    assert_eq!(request_log["request"], "/odata/NOPE/x");
    assert_eq!(request_log["response_status"], 404);
    assert!(request_log["response_time_ms"].is_u64(), "{request_log}");
}
