//! Tests of the Destination service and XSUAA emulator over real HTTP on
//! 127.0.0.1, in process and, for the binary, as a child process.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use btp_gateway_tests::emulator::{
    ClientConfig, ConfigError, DEFAULT_SUBACCOUNT_ID, Destination, Emulator, EmulatorConfig,
    EmulatorError, EmulatorStats,
};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const CLIENT_ID: &str = "sb-gateway!b1|destination-xsappname!b404";
const CLIENT_SECRET: &str = "client-secret";
const FORM: &str = "application/x-www-form-urlencoded";

/// Upper bound for any single request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Response as the tests see it: status, headers and the body parsed as JSON.
#[derive(Debug)]
struct JsonResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<JsonResponse> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Full::new(Bytes::from(body.to_owned())))?;

    let response = tokio::time::timeout(REQUEST_TIMEOUT, client.request(request))
        .await
        .with_context(|| format!("request to {url} timed out"))??;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "response from {url} is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok(JsonResponse {
        status,
        headers,
        body,
    })
}

fn basic_header(client_id: &str, client_secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{client_secret}"))
    )
}

async fn request_token(emulator: &Emulator, client_id: &str, secret: &str) -> Result<JsonResponse> {
    let authorization = basic_header(client_id, secret);
    send(
        Method::POST,
        &emulator.token_url(),
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=client_credentials",
    )
    .await
}

async fn fetch_token(emulator: &Emulator) -> Result<String> {
    let response = request_token(emulator, CLIENT_ID, CLIENT_SECRET).await?;
    ensure!(
        response.status == StatusCode::OK,
        "token request failed: {:?}",
        response.body
    );
    response.body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("token response has no access_token")
}

/// Sends a find-destination request with `encoded_name` put into the path unchanged.
async fn find_destination(
    emulator: &Emulator,
    encoded_name: &str,
    token: Option<&str>,
) -> Result<JsonResponse> {
    let url = format!(
        "{}/destination-configuration/v1/destinations/{encoded_name}",
        emulator.url()
    );
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    send(Method::GET, &url, &headers, "").await
}

async fn find_with_token(emulator: &Emulator, encoded_name: &str) -> Result<JsonResponse> {
    let token = fetch_token(emulator).await?;
    find_destination(emulator, encoded_name, Some(&token)).await
}

fn jwt_claims(token: &str) -> Result<Value> {
    let parts: Vec<&str> = token.split('.').collect();
    ensure!(parts.len() == 3, "token has {} parts, not 3", parts.len());
    let payload = URL_SAFE_NO_PAD.decode(parts[1])?;
    Ok(serde_json::from_slice(&payload)?)
}

fn config_with(
    instance_destinations: Vec<Destination>,
    subaccount_destinations: Vec<Destination>,
) -> EmulatorConfig {
    EmulatorConfig {
        clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
        instance_destinations,
        subaccount_destinations,
        ..EmulatorConfig::default()
    }
}

async fn start_with(
    instance_destinations: Vec<Destination>,
    subaccount_destinations: Vec<Destination>,
) -> Result<Emulator> {
    Ok(Emulator::start(config_with(instance_destinations, subaccount_destinations)).await?)
}

fn self_token_url() -> &'static str {
    "${EMULATOR_URL}/oauth/token"
}

fn only_auth_token(response: &JsonResponse) -> Result<&Value> {
    let tokens = response.body["authTokens"]
        .as_array()
        .context("response has no authTokens array")?;
    ensure!(tokens.len() == 1, "expected one auth token, got {tokens:?}");
    Ok(&tokens[0])
}

// ---------------------------------------------------------------- token endpoint

#[tokio::test]
async fn token_with_basic_auth_succeeds() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let response = request_token(&emulator, CLIENT_ID, CLIENT_SECRET).await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["token_type"], "bearer");
    assert_eq!(response.body["expires_in"], 43199);
    assert_eq!(response.body["scope"], "uaa.resource");
    assert_eq!(
        response
            .headers
            .get("cache-control")
            .map(|value| value.as_bytes()),
        Some(&b"no-store"[..])
    );
    let token = response.body["access_token"]
        .as_str()
        .context("access_token missing")?;
    let claims = jwt_claims(token)?;
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["cid"], CLIENT_ID);
    assert_eq!(claims["zid"], DEFAULT_SUBACCOUNT_ID);
    assert_eq!(claims["grant_type"], "client_credentials");
    assert_eq!(claims["iss"], format!("{}/oauth/token", emulator.url()));
    assert_eq!(claims["jti"], response.body["jti"]);
    assert_eq!(claims["scope"], json!(["uaa.resource"]));
    let issued_at = claims["iat"].as_u64().context("iat missing")?;
    let expires_at = claims["exp"].as_u64().context("exp missing")?;
    assert_eq!(expires_at - issued_at, 43199);
    Ok(())
}

#[tokio::test]
async fn token_with_form_credentials_succeeds() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("client_secret", CLIENT_SECRET)
        .finish();

    let response = send(
        Method::POST,
        &emulator.token_url(),
        &[("content-type", FORM)],
        &body,
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body["access_token"].is_string());
    Ok(())
}

#[tokio::test]
async fn token_with_wrong_secret_is_401() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let response = request_token(&emulator, CLIENT_ID, "wrong-secret").await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.body,
        json!({"error": "unauthorized", "error_description": "Bad credentials"})
    );
    Ok(())
}

#[tokio::test]
async fn token_with_unknown_client_is_401() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let response = request_token(&emulator, "sb-unknown", CLIENT_SECRET).await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["error"], "unauthorized");
    Ok(())
}

#[tokio::test]
async fn token_without_credentials_is_401() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let response = send(
        Method::POST,
        &emulator.token_url(),
        &[("content-type", FORM)],
        "grant_type=client_credentials",
    )
    .await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["error"], "unauthorized");
    Ok(())
}

#[tokio::test]
async fn token_with_unsupported_grant_is_400() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;
    let authorization = basic_header(CLIENT_ID, CLIENT_SECRET);

    let response = send(
        Method::POST,
        &emulator.token_url(),
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x",
    )
    .await?;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.body["error"], "unsupported_grant_type");
    assert!(response.body["error_description"].is_string());
    Ok(())
}

#[tokio::test]
async fn token_with_json_body_is_400() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;
    let authorization = basic_header(CLIENT_ID, CLIENT_SECRET);

    let response = send(
        Method::POST,
        &emulator.token_url(),
        &[
            ("content-type", "application/json"),
            ("authorization", &authorization),
        ],
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await?;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.body["error"], "invalid_request");
    Ok(())
}

#[tokio::test]
async fn token_uses_configured_lifetime_and_zone() -> Result<()> {
    let config = EmulatorConfig {
        clients: vec![ClientConfig {
            zone_id: Some("zone-42".to_owned()),
            ..ClientConfig::new(CLIENT_ID, CLIENT_SECRET)
        }],
        token_lifetime_seconds: 120,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await?;

    let response = request_token(&emulator, CLIENT_ID, CLIENT_SECRET).await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["expires_in"], 120);
    let claims = jwt_claims(
        response.body["access_token"]
            .as_str()
            .context("access_token missing")?,
    )?;
    assert_eq!(claims["zid"], "zone-42");
    Ok(())
}

// ------------------------------------------------------- find destination: access

#[tokio::test]
async fn lookup_without_token_is_401() -> Result<()> {
    let emulator = start_with(
        vec![Destination::no_authentication("d", "http://127.0.0.1:1")],
        vec![],
    )
    .await?;

    let response = find_destination(&emulator, "d", None).await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.body["ErrorMessage"].is_string());
    Ok(())
}

#[tokio::test]
async fn lookup_with_foreign_token_is_401() -> Result<()> {
    let emulator = start_with(
        vec![Destination::no_authentication("d", "http://127.0.0.1:1")],
        vec![],
    )
    .await?;
    // A token from another emulator has the right shape but was not issued here.
    let other = start_with(vec![], vec![]).await?;
    let foreign_token = fetch_token(&other).await?;

    let response = find_destination(&emulator, "d", Some(&foreign_token)).await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(response.body["ErrorMessage"].is_string());
    Ok(())
}

#[tokio::test]
async fn lookup_with_expired_token_is_401() -> Result<()> {
    let config = EmulatorConfig {
        token_lifetime_seconds: 0,
        ..config_with(
            vec![Destination::no_authentication("d", "http://127.0.0.1:1")],
            vec![],
        )
    };
    let emulator = Emulator::start(config).await?;
    let token = fetch_token(&emulator).await?;

    let response = find_destination(&emulator, "d", Some(&token)).await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["ErrorMessage"], "Access token has expired");
    Ok(())
}

#[tokio::test]
async fn unknown_destination_is_exact_404() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let response = find_with_token(&emulator, "missing").await?;

    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        response.body,
        json!({"ErrorMessage": "Configuration with the specified name was not found"})
    );
    Ok(())
}

// -------------------------------------------------- find destination: auth types

#[tokio::test]
async fn basic_destination_returns_basic_token() -> Result<()> {
    let destination = Destination::basic("backend", "http://127.0.0.1:4004/odata", "alice", "pw")
        .with_property("sap-client", "100");
    let emulator = start_with(vec![destination], vec![]).await?;

    let response = find_with_token(&emulator, "backend").await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body["destinationConfiguration"],
        json!({
            "Name": "backend",
            "Type": "HTTP",
            "URL": "http://127.0.0.1:4004/odata",
            "Authentication": "BasicAuthentication",
            "User": "alice",
            "Password": "pw",
            "sap-client": "100",
        })
    );
    let expected_value = STANDARD.encode("alice:pw");
    assert_eq!(
        *only_auth_token(&response)?,
        json!({
            "type": "Basic",
            "value": expected_value,
            "http_header": {"key": "Authorization", "value": format!("Basic {expected_value}")},
        })
    );
    Ok(())
}

#[tokio::test]
async fn no_authentication_omits_auth_tokens() -> Result<()> {
    let destination = Destination::no_authentication("open", "http://127.0.0.1:4004");
    let emulator = start_with(vec![destination], vec![]).await?;

    let response = find_with_token(&emulator, "open").await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body["destinationConfiguration"]["Authentication"],
        "NoAuthentication"
    );
    assert!(response.body.get("authTokens").is_none());
    Ok(())
}

#[tokio::test]
async fn oauth2_destination_fetches_token() -> Result<()> {
    let destination = Destination::oauth2_client_credentials(
        "orders",
        "http://127.0.0.1:4005/odata",
        self_token_url(),
        CLIENT_ID,
        CLIENT_SECRET,
    );
    let emulator = start_with(vec![], vec![destination]).await?;

    let response = find_with_token(&emulator, "orders").await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.body["destinationConfiguration"]["tokenServiceURL"],
        emulator.token_url(),
        "the placeholder should be replaced by the emulator URL"
    );
    let entry = only_auth_token(&response)?;
    assert_eq!(entry["type"], "bearer");
    assert_eq!(entry["expires_in"], "43199");
    assert!(entry.get("error").is_none());
    let token = entry["value"].as_str().context("value missing")?;
    assert_eq!(entry["http_header"]["key"], "Authorization");
    assert_eq!(entry["http_header"]["value"], format!("Bearer {token}"));
    // The token came from this emulator, so it must be accepted here.
    let again = find_destination(&emulator, "orders", Some(token)).await?;
    assert_eq!(again.status, StatusCode::OK);
    // One request from the test, one per lookup from the emulator itself.
    assert_eq!(emulator.stats().token_requests, 3);
    Ok(())
}

#[tokio::test]
async fn oauth2_uses_separate_token_service() -> Result<()> {
    let token_service = Emulator::start(EmulatorConfig {
        clients: vec![ClientConfig::new("backend-client", "backend-secret")],
        ..EmulatorConfig::default()
    })
    .await?;
    let destination = Destination::oauth2_client_credentials(
        "orders",
        "http://127.0.0.1:4005/odata",
        token_service.token_url(),
        "backend-client",
        "backend-secret",
    );
    let emulator = start_with(vec![destination], vec![]).await?;

    let response = find_with_token(&emulator, "orders").await?;

    assert_eq!(response.status, StatusCode::OK);
    let entry = only_auth_token(&response)?;
    let token = entry["value"].as_str().context("value missing")?;
    assert_eq!(jwt_claims(token)?["client_id"], "backend-client");
    assert_eq!(token_service.stats().token_requests, 1);
    Ok(())
}

#[tokio::test]
async fn oauth2_wrong_secret_reports_error() -> Result<()> {
    let destination = Destination::oauth2_client_credentials(
        "orders",
        "http://127.0.0.1:4005/odata",
        self_token_url(),
        CLIENT_ID,
        "wrong-secret",
    );
    let emulator = start_with(vec![destination], vec![]).await?;

    let response = find_with_token(&emulator, "orders").await?;

    assert_eq!(response.status, StatusCode::OK);
    let entry = only_auth_token(&response)?;
    assert_eq!(entry["type"], "");
    assert_eq!(entry["value"], "");
    assert_eq!(entry["expires_in"], "0");
    assert!(entry.get("http_header").is_none());
    let error = entry["error"].as_str().context("error missing")?;
    assert!(
        error.starts_with("Retrieval of OAuth2 access token failed"),
        "{error}"
    );
    assert!(error.contains("401"), "{error}");
    Ok(())
}

#[tokio::test]
async fn oauth2_closed_port_reports_error() -> Result<()> {
    // Bind and release a port so that nothing listens on it.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let destination = Destination::oauth2_client_credentials(
        "orders",
        "http://127.0.0.1:4005/odata",
        format!("http://127.0.0.1:{closed_port}/oauth/token"),
        CLIENT_ID,
        CLIENT_SECRET,
    );
    let emulator = start_with(vec![destination], vec![]).await?;

    let response = find_with_token(&emulator, "orders").await?;

    assert_eq!(response.status, StatusCode::OK);
    let entry = only_auth_token(&response)?;
    let error = entry["error"].as_str().context("error missing")?;
    assert!(
        error.starts_with("Retrieval of OAuth2 access token failed"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn header_key_override_sets_key() -> Result<()> {
    let basic = Destination::basic("basic", "http://127.0.0.1:4004", "alice", "pw")
        .with_property("Emulator.HttpHeaderKey", "X-Backend-Authorization");
    let oauth = Destination::oauth2_client_credentials(
        "oauth",
        "http://127.0.0.1:4005",
        self_token_url(),
        CLIENT_ID,
        CLIENT_SECRET,
    )
    .with_property("Emulator.HttpHeaderKey", "Proxy-Authorization");
    let emulator = start_with(vec![basic, oauth], vec![]).await?;

    for (name, expected_key) in [
        ("basic", "X-Backend-Authorization"),
        ("oauth", "Proxy-Authorization"),
    ] {
        let response = find_with_token(&emulator, name).await?;
        assert_eq!(response.status, StatusCode::OK, "{name}");
        assert_eq!(
            only_auth_token(&response)?["http_header"]["key"],
            expected_key,
            "{name}"
        );
        let configuration = &response.body["destinationConfiguration"];
        assert!(
            configuration.get("Emulator.HttpHeaderKey").is_none(),
            "{name}: emulator-only property leaked: {configuration}"
        );
    }
    Ok(())
}

// -------------------------------------------------- find destination: lookup

#[tokio::test]
async fn instance_destination_shadows_subaccount_one() -> Result<()> {
    let emulator = start_with(
        vec![Destination::no_authentication(
            "shared",
            "http://127.0.0.1:1001",
        )],
        vec![
            Destination::no_authentication("shared", "http://127.0.0.1:2001"),
            Destination::no_authentication("subaccount-only", "http://127.0.0.1:2002"),
        ],
    )
    .await?;
    let config = emulator.config();

    let shared = find_with_token(&emulator, "shared").await?;
    assert_eq!(shared.status, StatusCode::OK);
    assert_eq!(
        shared.body["destinationConfiguration"]["URL"],
        "http://127.0.0.1:1001"
    );
    assert_eq!(
        shared.body["owner"],
        json!({"SubaccountId": config.subaccount_id, "InstanceId": config.instance_id})
    );

    let subaccount_only = find_with_token(&emulator, "subaccount-only").await?;
    assert_eq!(subaccount_only.status, StatusCode::OK);
    assert_eq!(
        subaccount_only.body["owner"],
        json!({"SubaccountId": config.subaccount_id, "InstanceId": null})
    );
    Ok(())
}

#[tokio::test]
async fn names_are_decoded_and_case_sensitive() -> Result<()> {
    let emulator = start_with(
        vec![
            Destination::no_authentication("My Destination", "http://127.0.0.1:1001"),
            Destination::no_authentication("a+b", "http://127.0.0.1:1002"),
            Destination::no_authentication("Ä/b", "http://127.0.0.1:1003"),
        ],
        vec![],
    )
    .await?;

    let cases = [
        ("My%20Destination", Some("My Destination")),
        ("my%20destination", None),
        ("MY%20DESTINATION", None),
        // "+" in a path is a literal plus, not an encoded space.
        ("a+b", Some("a+b")),
        ("a%2Bb", Some("a+b")),
        ("a%20b", None),
        ("%C3%84%2Fb", Some("Ä/b")),
        ("%C3%84/b", None),
    ];
    for (encoded, expected_name) in cases {
        let response = find_with_token(&emulator, encoded).await?;
        match expected_name {
            Some(name) => {
                assert_eq!(response.status, StatusCode::OK, "{encoded}");
                assert_eq!(
                    response.body["destinationConfiguration"]["Name"], name,
                    "{encoded}"
                );
            }
            None => assert_eq!(response.status, StatusCode::NOT_FOUND, "{encoded}"),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- counters

#[tokio::test]
async fn counters_count_every_request() -> Result<()> {
    let emulator = start_with(
        vec![Destination::no_authentication("d", "http://127.0.0.1:1")],
        vec![],
    )
    .await?;
    assert_eq!(emulator.stats(), EmulatorStats::default());

    let token = fetch_token(&emulator).await?;
    request_token(&emulator, CLIENT_ID, "wrong-secret").await?;
    find_destination(&emulator, "d", Some(&token)).await?;
    find_destination(&emulator, "missing", Some(&token)).await?;
    find_destination(&emulator, "d", None).await?;

    let expected = EmulatorStats {
        token_requests: 2,
        destination_lookups: 3,
        client_credentials_grants: 1,
        ..EmulatorStats::default()
    };
    assert_eq!(emulator.stats(), expected);
    let served = send(
        Method::GET,
        &format!("{}/_emulator/stats", emulator.url()),
        &[],
        "",
    )
    .await?;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["token_requests"], 2);
    assert_eq!(served.body["destination_lookups"], 3);
    assert_eq!(served.body["client_credentials_grants"], 1);
    assert_eq!(served.body["password_grants"], 0);
    Ok(())
}

// ------------------------------------------------------------- configuration

#[test]
fn empty_config_uses_defaults() -> Result<()> {
    let config = EmulatorConfig::from_json_str("{}")?;
    assert_eq!(config, EmulatorConfig::default());
    assert_eq!(config.token_lifetime_seconds, 43199);
    Ok(())
}

#[test]
fn config_from_json_round_trips() -> Result<()> {
    let text = json!({
        "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "zone_id": "z"}],
        "instance_destinations": [{
            "Name": "n", "Type": "HTTP", "URL": "http://127.0.0.1:1",
            "Authentication": "BasicAuthentication", "User": "u", "Password": "p"
        }],
        "subaccount_destinations": [],
        "token_lifetime_seconds": 60,
        "subaccount_id": "sub",
        "instance_id": "inst",
        "identity_zone": "zone"
    })
    .to_string();

    let config = EmulatorConfig::from_json_str(&text)?;

    assert_eq!(config.clients[0].zone_id.as_deref(), Some("z"));
    assert_eq!(config.instance_destinations[0].property("User"), Some("u"));
    assert_eq!(config.token_lifetime_seconds, 60);
    assert_eq!(config.subaccount_id, "sub");
    Ok(())
}

#[test]
fn invalid_configs_are_rejected() -> Result<()> {
    let destination = |extra: Value| {
        let mut properties = json!({
            "Name": "n", "Type": "HTTP", "URL": "http://127.0.0.1:1",
            "Authentication": "NoAuthentication"
        });
        if let (Some(target), Some(source)) = (properties.as_object_mut(), extra.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
        properties
    };
    let cases = [
        (
            "unknown top-level field",
            json!({"client": []}),
            "unknown field",
        ),
        (
            "unknown client field",
            json!({"clients": [{"client_id": "a", "client_secret": "b", "secret": "c"}]}),
            "unknown field",
        ),
        (
            "missing URL",
            json!({"instance_destinations": [{"Name": "n", "Type": "HTTP", "Authentication": "NoAuthentication"}]}),
            "\"URL\"",
        ),
        (
            "unsupported authentication",
            json!({"instance_destinations": [destination(json!({"Authentication": "SAMLAssertion"}))]}),
            "SAMLAssertion",
        ),
        (
            "basic without password",
            json!({"instance_destinations": [destination(json!({"Authentication": "BasicAuthentication", "User": "u"}))]}),
            "\"Password\"",
        ),
        (
            "unknown emulator property",
            json!({"subaccount_destinations": [destination(json!({"Emulator.Delay": "5"}))]}),
            "Emulator.Delay",
        ),
        (
            "invalid header key",
            json!({"subaccount_destinations": [destination(json!({"Emulator.HttpHeaderKey": "bad key"}))]}),
            "bad key",
        ),
        (
            "non-string property",
            json!({"instance_destinations": [destination(json!({"Timeout": 5}))]}),
            "invalid type",
        ),
        (
            "duplicate name in one level",
            json!({"instance_destinations": [destination(json!({})), destination(json!({}))]}),
            "more than once",
        ),
        (
            "duplicate client",
            json!({"clients": [
                {"client_id": "a", "client_secret": "b"},
                {"client_id": "a", "client_secret": "c"}
            ]}),
            "more than once",
        ),
        (
            "lifetime too long",
            json!({"token_lifetime_seconds": 100_000_000}),
            "token_lifetime_seconds",
        ),
    ];
    for (case, config, expected_fragment) in cases {
        let Err(error) = EmulatorConfig::from_json_str(&config.to_string()) else {
            bail!("{case}: config was accepted");
        };
        let message = error.to_string();
        assert!(
            message.contains(expected_fragment),
            "{case}: message {message:?} lacks {expected_fragment:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn start_rejects_invalid_config() -> Result<()> {
    let config = config_with(
        vec![Destination::default().with_property("Name", "n")],
        vec![],
    );

    let result = Emulator::start(config).await;

    assert!(matches!(
        result,
        Err(EmulatorError::Config(
            ConfigError::MissingDestinationProperty { .. }
        ))
    ));
    Ok(())
}

// ---------------------------------------------------------- binding and lifecycle

#[tokio::test]
async fn vcap_services_binding_points_at_emulator() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;

    let vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET);

    let binding = &vcap["destination"][0];
    assert_eq!(binding["label"], "destination");
    assert_eq!(binding["plan"], "lite");
    assert_eq!(binding["tags"], json!(["destination", "conn", "connsvc"]));
    let credentials = &binding["credentials"];
    assert_eq!(credentials["uri"], emulator.url());
    assert_eq!(credentials["url"], emulator.url());
    assert_eq!(credentials["clientid"], CLIENT_ID);
    assert_eq!(credentials["tenantmode"], "dedicated");
    assert_eq!(
        credentials["xsappname"],
        "gateway!b1|destination-xsappname!b404"
    );
    assert_eq!(credentials["instanceid"], emulator.config().instance_id);

    // A client that follows the binding gets a token and finds nothing.
    let url = credentials["url"].as_str().context("url missing")?;
    let client_secret = credentials["clientsecret"]
        .as_str()
        .context("clientsecret missing")?;
    let authorization = basic_header(CLIENT_ID, client_secret);
    let token_response = send(
        Method::POST,
        &format!("{url}/oauth/token"),
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=client_credentials",
    )
    .await?;
    assert_eq!(token_response.status, StatusCode::OK);

    let wrong = emulator.vcap_services(CLIENT_ID, "wrong-secret");
    assert_eq!(
        wrong["destination"][0]["credentials"]["clientsecret"],
        "wrong-secret"
    );
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_server() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;
    let stats_url = format!("{}/_emulator/stats", emulator.url());
    assert_eq!(
        send(Method::GET, &stats_url, &[], "").await?.status,
        StatusCode::OK
    );

    emulator.shutdown().await;

    assert!(send(Method::GET, &stats_url, &[], "").await.is_err());
    Ok(())
}

#[tokio::test]
async fn drop_stops_server() -> Result<()> {
    let emulator = start_with(vec![], vec![]).await?;
    let stats_url = format!("{}/_emulator/stats", emulator.url());

    let addr = emulator.local_addr();
    assert_eq!(
        send(Method::GET, &stats_url, &[], "").await?.status,
        StatusCode::OK
    );

    drop(emulator);

    // Aborting the server task takes effect when the runtime next polls it,
    // so give it up to one second to release the port.
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("emulator still accepts connections on {addr} one second after drop")
}

#[tokio::test]
async fn binary_serves_and_stops_on_sigterm() -> Result<()> {
    let config = config_with(
        vec![Destination::basic(
            "backend",
            "http://127.0.0.1:4004",
            "alice",
            "pw",
        )],
        vec![],
    );
    let config_path =
        std::env::temp_dir().join(format!("btp-emulator-test-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&config_path, serde_json::to_string(&config)?)?;

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_btp-emulator"))
        .arg("--config")
        .arg(&config_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let result = exercise_binary(&mut child).await;
    // Clean up even when the checks failed.
    let _ = child.start_kill();
    let _ = std::fs::remove_file(&config_path);
    result
}

async fn exercise_binary(child: &mut tokio::process::Child) -> Result<()> {
    let stdout = child.stdout.take().context("child stdout not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let ready_line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("btp-emulator printed no ready line within 30 s")??
        .context("btp-emulator closed stdout without a ready line")?;
    let ready: Value = serde_json::from_str(&ready_line)?;
    let url = ready["listening"]
        .as_str()
        .context("ready line lacks \"listening\"")?;
    ensure!(url.starts_with("http://127.0.0.1:"), "unexpected url {url}");

    let authorization = basic_header(CLIENT_ID, CLIENT_SECRET);
    let token_response = send(
        Method::POST,
        &format!("{url}/oauth/token"),
        &[("content-type", FORM), ("authorization", &authorization)],
        "grant_type=client_credentials",
    )
    .await?;
    assert_eq!(token_response.status, StatusCode::OK);
    let token = token_response.body["access_token"]
        .as_str()
        .context("access_token missing")?;
    let bearer = format!("Bearer {token}");
    let lookup = send(
        Method::GET,
        &format!("{url}/destination-configuration/v1/destinations/backend"),
        &[("authorization", &bearer)],
        "",
    )
    .await?;
    assert_eq!(lookup.status, StatusCode::OK);
    assert_eq!(only_auth_token(&lookup)?["type"], "Basic");

    let pid = child.id().context("child has already exited")?;
    let kill_status = tokio::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await?;
    ensure!(kill_status.success(), "kill -TERM {pid} failed");
    let exit_status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .context("btp-emulator did not exit within 10 s of SIGTERM")??;
    assert!(exit_status.success(), "exit status {exit_status}");

    let remaining = lines.next_line().await?;
    assert_eq!(remaining, None, "stdout must contain only the ready line");
    Ok(())
}
