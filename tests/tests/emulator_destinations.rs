//! Tests of the emulated Destination service over real HTTP on 127.0.0.1:
//! tenant separation, every authentication type with and without a user
//! token, certificates, the v1 read APIs and the configuration checks.

use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use btp_gateway_tests::emulator::{
    Authentication, CertificateConfig, ClientConfig, DEFAULT_SUBACCOUNT_ID, Destination, Emulator,
    EmulatorConfig, TenantConfig, UserConfig, UserTokenSpec,
};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const CLIENT_ID: &str = "sb-gateway!b1|destination-xsappname!b404";
const CLIENT_SECRET: &str = "client-secret";
const BACKEND_CLIENT_ID: &str = "sb-backend!b2";
const BACKEND_CLIENT_SECRET: &str = "backend-secret";
const TENANT_ZONE: &str = "7c1e7f0e-1111-4000-8000-000000000001";
const FORM: &str = "application/x-www-form-urlencoded";
const SELF_TOKEN_URL: &str = "${EMULATOR_URL}/oauth/token";
const KEY_STORE_BYTES: &[u8] = b"not really a PKCS#12 file";

/// Extra request headers of one test case.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// Upper bound for any single request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct JsonResponse {
    status: StatusCode,
    body: Value,
}

async fn send(
    url: &str,
    headers: &[(&str, &str)],
    method: Method,
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
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "response from {url} is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok(JsonResponse { status, body })
}

/// Requests a client-credentials token of the binding's client, for the
/// provider or, with `zone_id`, for a tenant.
async fn service_token(emulator: &Emulator, zone_id: Option<&str>) -> Result<String> {
    let authorization = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let mut headers = vec![
        ("content-type", FORM),
        ("authorization", authorization.as_str()),
    ];
    if let Some(zone_id) = zone_id {
        headers.push(("x-zid", zone_id));
    }
    let response = send(
        &emulator.token_url(),
        &headers,
        Method::POST,
        "grant_type=client_credentials",
    )
    .await?;
    ensure!(
        response.status == StatusCode::OK,
        "token request failed: {}",
        response.body
    );
    response.body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("access_token missing")
}

/// Sends find-destination with a bearer token and extra headers.
async fn find(
    emulator: &Emulator,
    name: &str,
    token: &str,
    extra_headers: &[(&str, &str)],
) -> Result<JsonResponse> {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend_from_slice(extra_headers);
    send(
        &format!(
            "{}/destination-configuration/v1/destinations/{name}",
            emulator.url()
        ),
        &headers,
        Method::GET,
        "",
    )
    .await
}

async fn read_api(emulator: &Emulator, path: &str, token: Option<&str>) -> Result<JsonResponse> {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|value| vec![("authorization", value)])
        .unwrap_or_default();
    send(
        &format!("{}/destination-configuration/v1/{path}", emulator.url()),
        &headers,
        Method::GET,
        "",
    )
    .await
}

fn only_auth_token(response: &JsonResponse) -> Result<&Value> {
    ensure!(
        response.status == StatusCode::OK,
        "lookup failed with {}: {}",
        response.status,
        response.body
    );
    let tokens = response.body["authTokens"]
        .as_array()
        .context("response has no authTokens array")?;
    ensure!(tokens.len() == 1, "expected one auth token, got {tokens:?}");
    Ok(&tokens[0])
}

/// Returns the claims of the token in a successful auth token entry.
fn entry_claims(entry: &Value) -> Result<Value> {
    if let Some(error) = entry.get("error") {
        bail!("auth token has an error: {error}");
    }
    let value = entry["value"].as_str().context("value missing")?;
    ensure!(
        entry["http_header"]["value"] == format!("Bearer {value}"),
        "http_header.value does not match value: {entry}"
    );
    let claims = value.split('.').nth(1).context("value is not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims)?)?)
}

/// Returns the `error` of a failed auth token entry, checking its shape.
fn entry_error(entry: &Value) -> Result<String> {
    ensure!(entry["type"] == "", "type of a failed token: {entry}");
    ensure!(entry["value"] == "", "value of a failed token: {entry}");
    ensure!(
        entry["expires_in"] == "0",
        "expires_in of a failed token: {entry}"
    );
    ensure!(
        entry.get("http_header").is_none(),
        "http_header of a failed token: {entry}"
    );
    entry["error"]
        .as_str()
        .map(str::to_owned)
        .context("error missing")
}

/// Builds an OAuth2 destination whose token service is the emulator itself,
/// with the backend client's credentials.
fn oauth_destination(name: &str, authentication: Authentication) -> Destination {
    Destination::new(name, "http://127.0.0.1:4005/odata", authentication)
        .with_property("tokenServiceURL", SELF_TOKEN_URL)
        .with_property("clientId", BACKEND_CLIENT_ID)
        .with_property("clientSecret", BACKEND_CLIENT_SECRET)
}

fn config() -> EmulatorConfig {
    let provider_destinations = vec![
        Destination::no_authentication("shared", "http://127.0.0.1:1001"),
        Destination::no_authentication("provider-only", "http://127.0.0.1:1002"),
        oauth_destination("password", Authentication::OAuth2Password)
            .with_property("User", "alice")
            .with_property("Password", "alice-pw"),
        oauth_destination("password-wrong", Authentication::OAuth2Password)
            .with_property("User", "alice")
            .with_property("Password", "wrong"),
        oauth_destination("refresh", Authentication::OAuth2RefreshToken),
        oauth_destination("jwt-bearer", Authentication::OAuth2JWTBearer),
        oauth_destination("user-exchange", Authentication::OAuth2UserTokenExchange)
            .with_property("scope", "openid"),
        Destination::new(
            "saml",
            "http://127.0.0.1:4006/sap/opu/odata",
            Authentication::OAuth2SAMLBearerAssertion,
        )
        .with_property("tokenServiceURL", SELF_TOKEN_URL)
        .with_property("audience", "backend-audience")
        .with_property("clientKey", BACKEND_CLIENT_ID)
        .with_property("tokenServiceUser", BACKEND_CLIENT_ID)
        .with_property("tokenServicePassword", BACKEND_CLIENT_SECRET)
        .with_property(
            "nameIdFormat",
            "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        ),
        Destination::new(
            "saml-system-user",
            "http://127.0.0.1:4006/sap/opu/odata",
            Authentication::OAuth2SAMLBearerAssertion,
        )
        .with_property("tokenServiceURL", SELF_TOKEN_URL)
        .with_property("audience", "backend-audience")
        .with_property("clientKey", BACKEND_CLIENT_ID)
        .with_property("tokenServicePassword", BACKEND_CLIENT_SECRET)
        .with_property("SystemUser", "TECH_USER"),
        oauth_destination("technical", Authentication::OAuth2TechnicalUserPropagation)
            .with_property("URL", "http://s4.onprem:44300")
            .with_property("ProxyType", "OnPremise")
            .with_property("CloudConnectorLocationId", "LOC1"),
        Destination::new(
            "principal",
            "http://s4.onprem:44300/sap/opu/odata",
            Authentication::PrincipalPropagation,
        )
        .with_property("ProxyType", "OnPremise")
        .with_property("CloudConnectorLocationId", "LOC1")
        .with_property("sap-client", "100"),
        Destination::new(
            "client-cert",
            "https://127.0.0.1:4007",
            Authentication::ClientCertificateAuthentication,
        )
        .with_property("KeyStoreLocation", "client.p12")
        .with_property("KeyStorePassword", "changeit")
        .with_property("TrustStoreLocation", "trust.pem"),
    ];

    let mut tenant = TenantConfig::new(TENANT_ZONE, "customer-a");
    tenant.instance_destinations = vec![Destination::no_authentication(
        "shared",
        "http://127.0.0.1:2001",
    )];
    tenant.subaccount_destinations = vec![
        Destination::no_authentication("tenant-only", "http://127.0.0.1:2002"),
        oauth_destination("jwt-bearer", Authentication::OAuth2JWTBearer),
    ];
    tenant.certificates = vec![CertificateConfig::from_bytes("tenant.p12", b"tenant store")];

    EmulatorConfig {
        clients: vec![
            ClientConfig::new(CLIENT_ID, CLIENT_SECRET),
            ClientConfig::new(BACKEND_CLIENT_ID, BACKEND_CLIENT_SECRET),
        ],
        users: vec![UserConfig::new("alice", "alice-pw")],
        subaccount_destinations: provider_destinations,
        certificates: vec![
            CertificateConfig::from_bytes("client.p12", KEY_STORE_BYTES),
            CertificateConfig::from_bytes("trust.pem", b"-----BEGIN CERTIFICATE-----"),
        ],
        tenants: vec![tenant],
        ..EmulatorConfig::default()
    }
}

// -------------------------------------------------------------------- tenants

#[tokio::test]
async fn provider_token_sees_provider_destinations() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let shared = find(&emulator, "shared", &token, &[]).await?;
    assert_eq!(shared.status, StatusCode::OK);
    assert_eq!(
        shared.body["destinationConfiguration"]["URL"],
        "http://127.0.0.1:1001"
    );
    assert_eq!(
        shared.body["owner"],
        json!({"SubaccountId": DEFAULT_SUBACCOUNT_ID, "InstanceId": null})
    );
    let tenant_only = find(&emulator, "tenant-only", &token, &[]).await?;
    assert_eq!(tenant_only.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn tenant_token_sees_only_tenant_destinations() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, Some(TENANT_ZONE)).await?;

    let shared = find(&emulator, "shared", &token, &[]).await?;
    assert_eq!(shared.status, StatusCode::OK);
    assert_eq!(
        shared.body["destinationConfiguration"]["URL"],
        "http://127.0.0.1:2001"
    );
    assert_eq!(
        shared.body["owner"],
        json!({"SubaccountId": TENANT_ZONE, "InstanceId": emulator.config().instance_id})
    );

    let tenant_only = find(&emulator, "tenant-only", &token, &[]).await?;
    assert_eq!(tenant_only.status, StatusCode::OK);
    assert_eq!(
        tenant_only.body["owner"],
        json!({"SubaccountId": TENANT_ZONE, "InstanceId": null})
    );

    // No fallback to the provider: that is the caller's job.
    let provider_only = find(&emulator, "provider-only", &token, &[]).await?;
    assert_eq!(provider_only.status, StatusCode::NOT_FOUND);
    assert_eq!(
        provider_only.body,
        json!({"ErrorMessage": "Configuration with the specified name was not found"})
    );
    Ok(())
}

#[tokio::test]
async fn tenant_user_token_exchanges_in_tenant() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, Some(TENANT_ZONE)).await?;
    let user_token =
        emulator.user_token(&UserTokenSpec::new("erin", CLIENT_ID).in_zone(TENANT_ZONE));

    let response = find(
        &emulator,
        "jwt-bearer",
        &token,
        &[("X-user-token", &user_token)],
    )
    .await?;

    let claims = entry_claims(only_auth_token(&response)?)?;
    assert_eq!(claims["user_name"], "erin");
    assert_eq!(claims["zid"], TENANT_ZONE);
    assert_eq!(claims["ext_attr"]["zdn"], "customer-a");
    Ok(())
}

// ------------------------------------------------------- OAuth2Password

#[tokio::test]
async fn oauth2_password_returns_user_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "password", &token, &[]).await?;

    let entry = only_auth_token(&response)?;
    assert_eq!(entry["type"], "bearer");
    assert_eq!(entry["http_header"]["key"], "Authorization");
    assert_eq!(entry["expires_in"], "43199");
    assert_eq!(entry["scope"], "openid");
    assert!(entry["refresh_token"].is_string(), "{entry}");
    let claims = entry_claims(entry)?;
    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["client_id"], BACKEND_CLIENT_ID);
    assert_eq!(claims["grant_type"], "password");
    Ok(())
}

#[tokio::test]
async fn oauth2_password_wrong_password_reports_error() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "password-wrong", &token, &[]).await?;

    let error = entry_error(only_auth_token(&response)?)?;
    assert!(
        error.starts_with("Retrieval of OAuth2 access token failed"),
        "{error}"
    );
    assert!(
        error.contains("401") && error.contains("Bad credentials"),
        "{error}"
    );
    Ok(())
}

// ----------------------------------------------------- OAuth2RefreshToken

#[tokio::test]
async fn oauth2_refresh_token_uses_x_refresh_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    // A refresh token of the destination's client, from a password login.
    let login = find(&emulator, "password", &token, &[]).await?;
    let refresh_token = only_auth_token(&login)?["refresh_token"]
        .as_str()
        .context("refresh_token missing")?
        .to_owned();

    let response = find(
        &emulator,
        "refresh",
        &token,
        &[("X-refresh-token", &refresh_token)],
    )
    .await?;

    let entry = only_auth_token(&response)?;
    let claims = entry_claims(entry)?;
    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["grant_type"], "refresh_token");
    assert_eq!(entry["refresh_token"], refresh_token.as_str());
    Ok(())
}

#[tokio::test]
async fn oauth2_refresh_token_without_header_reports_error() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "refresh", &token, &[]).await?;
    let error = entry_error(only_auth_token(&response)?)?;
    assert!(error.contains("X-refresh-token"), "{error}");

    let unknown = find(
        &emulator,
        "refresh",
        &token,
        &[("X-refresh-token", "0000-r")],
    )
    .await?;
    let error = entry_error(only_auth_token(&unknown)?)?;
    assert!(error.contains("401"), "{error}");
    Ok(())
}

// ------------------------------------ OAuth2JWTBearer and OAuth2UserTokenExchange

#[tokio::test]
async fn user_exchange_types_use_x_user_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let user_token = emulator.user_token(&UserTokenSpec::new("frank", CLIENT_ID));

    for name in ["jwt-bearer", "user-exchange"] {
        let response = find(&emulator, name, &token, &[("X-user-token", &user_token)]).await?;
        let entry = only_auth_token(&response)?;
        assert_eq!(entry["http_header"]["key"], "Authorization", "{name}");
        let claims = entry_claims(entry)?;
        assert_eq!(claims["user_name"], "frank", "{name}");
        assert_eq!(claims["client_id"], BACKEND_CLIENT_ID, "{name}");
        assert_eq!(
            claims["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "{name}"
        );
    }
    assert_eq!(emulator.stats().jwt_bearer_grants, 2);
    Ok(())
}

#[tokio::test]
async fn user_exchange_takes_user_from_authorization() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    // A user token of the binding's client, as the SAP Cloud SDK gets it with
    // the JWT bearer grant when provider and user zone are the same.
    let user_token = emulator.user_token(&UserTokenSpec::new("grace", CLIENT_ID));

    let response = find(&emulator, "jwt-bearer", &user_token, &[]).await?;

    let claims = entry_claims(only_auth_token(&response)?)?;
    assert_eq!(claims["user_name"], "grace");
    Ok(())
}

#[tokio::test]
async fn user_exchange_without_user_reports_error() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let expired = emulator.user_token(&UserTokenSpec {
        lifetime_seconds: 0,
        ..UserTokenSpec::new("frank", CLIENT_ID)
    });
    let cases: [(&str, Headers<'_>, &str); 4] = [
        ("no user token", vec![], "X-user-token"),
        ("empty header", vec![("X-user-token", "")], "X-user-token"),
        (
            "expired",
            vec![("X-user-token", expired.as_str())],
            "expired",
        ),
        (
            "client token",
            vec![("X-user-token", token.as_str())],
            "not a user token",
        ),
    ];

    for (case, headers, fragment) in cases {
        let response = find(&emulator, "jwt-bearer", &token, &headers).await?;
        assert_eq!(response.status, StatusCode::OK, "{case}");
        let error = entry_error(only_auth_token(&response)?)?;
        assert!(
            error.starts_with("Retrieval of OAuth2 access token failed"),
            "{case}: {error}"
        );
        assert!(error.contains(fragment), "{case}: {error}");
    }
    Ok(())
}

// --------------------------------------------------- OAuth2SAMLBearerAssertion

#[tokio::test]
async fn saml_bearer_exchanges_assertion_for_user() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let user_token = emulator.user_token(&UserTokenSpec::new("heidi", CLIENT_ID));

    let response = find(&emulator, "saml", &token, &[("X-user-token", &user_token)]).await?;

    let claims = entry_claims(only_auth_token(&response)?)?;
    // nameIdFormat emailAddress makes the email the NameID and so the user name.
    assert_eq!(claims["user_name"], "heidi@example.com");
    assert_eq!(claims["client_id"], BACKEND_CLIENT_ID);
    assert_eq!(
        claims["grant_type"],
        "urn:ietf:params:oauth:grant-type:saml2-bearer"
    );
    assert_eq!(emulator.stats().saml2_bearer_grants, 1);
    Ok(())
}

#[tokio::test]
async fn saml_bearer_without_user_reports_error() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "saml", &token, &[]).await?;

    let error = entry_error(only_auth_token(&response)?)?;
    assert!(error.contains("X-user-token"), "{error}");
    assert_eq!(emulator.stats().saml2_bearer_grants, 0);
    Ok(())
}

#[tokio::test]
async fn saml_bearer_system_user_needs_no_user() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "saml-system-user", &token, &[]).await?;

    let claims = entry_claims(only_auth_token(&response)?)?;
    assert_eq!(claims["user_name"], "TECH_USER");
    Ok(())
}

// ------------------------------------------------------------ on-premise types

#[tokio::test]
async fn technical_user_propagation_uses_connectivity_header() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "technical", &token, &[]).await?;

    let entry = only_auth_token(&response)?;
    assert_eq!(
        entry["http_header"]["key"],
        "SAP-Connectivity-Technical-Authentication"
    );
    let claims = entry_claims(entry)?;
    assert_eq!(claims["client_id"], BACKEND_CLIENT_ID);
    assert_eq!(claims["grant_type"], "client_credentials");
    let configuration = &response.body["destinationConfiguration"];
    assert_eq!(configuration["ProxyType"], "OnPremise");
    assert_eq!(configuration["CloudConnectorLocationId"], "LOC1");
    Ok(())
}

#[tokio::test]
async fn principal_propagation_has_no_auth_tokens() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let user_token = emulator.user_token(&UserTokenSpec::new("ivan", CLIENT_ID));

    for headers in [vec![], vec![("X-user-token", user_token.as_str())]] {
        let response = find(&emulator, "principal", &token, &headers).await?;
        assert_eq!(response.status, StatusCode::OK);
        assert!(
            response.body.get("authTokens").is_none(),
            "{}",
            response.body
        );
        assert_eq!(
            response.body["destinationConfiguration"],
            json!({
                "Name": "principal",
                "Type": "HTTP",
                "URL": "http://s4.onprem:44300/sap/opu/odata",
                "Authentication": "PrincipalPropagation",
                "ProxyType": "OnPremise",
                "CloudConnectorLocationId": "LOC1",
                "sap-client": "100",
            })
        );
    }
    Ok(())
}

// --------------------------------------------------------------- certificates

#[tokio::test]
async fn client_certificate_destination_returns_key_store() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let response = find(&emulator, "client-cert", &token, &[]).await?;

    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.get("authTokens").is_none());
    assert_eq!(
        response.body["certificates"],
        json!([
            {"Name": "client.p12", "Type": "CERTIFICATE", "Content": STANDARD.encode(KEY_STORE_BYTES)},
            {"Name": "trust.pem", "Type": "CERTIFICATE", "Content": STANDARD.encode("-----BEGIN CERTIFICATE-----")},
        ])
    );
    Ok(())
}

#[tokio::test]
async fn skip_token_retrieval_omits_auth_tokens() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let tokens_before = emulator.stats().token_requests;

    let response = find(&emulator, "password?$skipTokenRetrieval=true", &token, &[]).await?;

    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response.body.get("authTokens").is_none(),
        "{}",
        response.body
    );
    assert_eq!(emulator.stats().token_requests, tokens_before);
    Ok(())
}

// ------------------------------------------------------------------ read APIs

#[tokio::test]
async fn read_apis_return_stored_configurations() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;

    let by_name = read_api(&emulator, "subaccountDestinations/shared", Some(&token)).await?;
    assert_eq!(by_name.status, StatusCode::OK);
    assert_eq!(
        by_name.body,
        json!({"Name": "shared", "Type": "HTTP", "URL": "http://127.0.0.1:1001", "Authentication": "NoAuthentication"})
    );

    let list = read_api(&emulator, "subaccountDestinations", Some(&token)).await?;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<&str> = list
        .body
        .as_array()
        .context("list is not an array")?
        .iter()
        .filter_map(|destination| destination["Name"].as_str())
        .collect();
    assert!(
        names.contains(&"password") && names.contains(&"principal"),
        "{names:?}"
    );

    let instance = read_api(&emulator, "instanceDestinations", Some(&token)).await?;
    assert_eq!(instance.body, json!([]));
    let missing = read_api(&emulator, "instanceDestinations/shared", Some(&token)).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body["ErrorMessage"].is_string());

    let unauthenticated = read_api(&emulator, "subaccountDestinations/shared", None).await?;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(emulator.stats().destination_reads, 5);
    Ok(())
}

#[tokio::test]
async fn read_apis_return_certificates() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, None).await?;
    let expected = json!({"Name": "client.p12", "Type": "CERTIFICATE", "Content": STANDARD.encode(KEY_STORE_BYTES)});

    for path in [
        "subaccountCertificates/client.p12",
        "instanceCertificates/client.p12",
    ] {
        let response = read_api(&emulator, path, Some(&token)).await?;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(response.body, expected, "{path}");
    }
    let list = read_api(&emulator, "subaccountCertificates", Some(&token)).await?;
    assert_eq!(list.body.as_array().map(Vec::len), Some(2));
    let missing = read_api(&emulator, "subaccountCertificates/nope.p12", Some(&token)).await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(emulator.stats().certificate_reads, 4);
    Ok(())
}

#[tokio::test]
async fn read_apis_separate_tenants() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let token = service_token(&emulator, Some(TENANT_ZONE)).await?;

    let provider_only = read_api(
        &emulator,
        "subaccountDestinations/provider-only",
        Some(&token),
    )
    .await?;
    assert_eq!(provider_only.status, StatusCode::NOT_FOUND);
    let tenant_only = read_api(
        &emulator,
        "subaccountDestinations/tenant-only",
        Some(&token),
    )
    .await?;
    assert_eq!(tenant_only.status, StatusCode::OK);
    let certificate =
        read_api(&emulator, "subaccountCertificates/tenant.p12", Some(&token)).await?;
    assert_eq!(certificate.body["Content"], STANDARD.encode("tenant store"));
    let provider_certificate =
        read_api(&emulator, "subaccountCertificates/client.p12", Some(&token)).await?;
    assert_eq!(provider_certificate.status, StatusCode::NOT_FOUND);
    Ok(())
}

// -------------------------------------------------------------- configuration

#[test]
fn invalid_new_configs_are_rejected() -> Result<()> {
    let destination = |extra: Value| {
        let mut properties = json!({"Name": "n", "Type": "HTTP", "URL": "http://127.0.0.1:1"});
        if let (Some(target), Some(source)) = (properties.as_object_mut(), extra.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
        properties
    };
    let cases = [
        (
            "principal propagation without OnPremise",
            json!({"subaccount_destinations": [destination(json!({"Authentication": "PrincipalPropagation"}))]}),
            "ProxyType",
        ),
        (
            "unknown key store",
            json!({"subaccount_destinations": [destination(json!({
                "Authentication": "ClientCertificateAuthentication", "KeyStoreLocation": "missing.p12"
            }))]}),
            "missing.p12",
        ),
        (
            "saml without audience",
            json!({"subaccount_destinations": [destination(json!({
                "Authentication": "OAuth2SAMLBearerAssertion", "tokenServiceURL": "http://127.0.0.1:1", "clientKey": "k"
            }))]}),
            "\"audience\"",
        ),
        (
            "tenant with provider zone",
            json!({"tenants": [{"zone_id": DEFAULT_SUBACCOUNT_ID, "subdomain": "a"}]}),
            "more than once",
        ),
        (
            "tenant destination incomplete",
            json!({"tenants": [{"zone_id": "z", "subdomain": "a", "instance_destinations": [destination(json!({}))]}]}),
            "tenants[0]",
        ),
        (
            "user in unknown zone",
            json!({"users": [{"user_name": "u", "password": "p", "zone_id": "nowhere"}]}),
            "nowhere",
        ),
        (
            "certificate not base64",
            json!({"certificates": [{"name": "a.p12", "content_base64": "***"}]}),
            "base64",
        ),
        (
            "virtual host on another address",
            json!({"virtual_hosts": [{"virtual_host": "s4", "virtual_port": 443, "target": "http://10.0.0.1:80"}]}),
            "127.0.0.1",
        ),
        (
            "connectivity client repeats a client",
            json!({
                "clients": [{"client_id": "a", "client_secret": "b"}],
                "connectivity_clients": [{"client_id": "a", "client_secret": "c"}]
            }),
            "more than once",
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

#[test]
fn provider_subdomain_is_accepted_as_identity_zone() -> Result<()> {
    let config = EmulatorConfig::from_json_str(r#"{"provider_subdomain": "provider"}"#)?;
    assert_eq!(config.identity_zone, "provider");
    Ok(())
}
