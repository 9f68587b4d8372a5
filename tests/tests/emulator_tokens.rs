//! Tests of the emulated XSUAA over real HTTP on 127.0.0.1: RS256 signatures
//! checked against the served `token_keys`, token claims, tenants selected
//! with `x-zid`, user tokens and every grant with its errors.

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use btp_gateway_tests::emulator::{
    ClientConfig, DEFAULT_SUBACCOUNT_ID, Emulator, EmulatorConfig, TenantConfig, UserConfig,
    UserTokenSpec,
};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const CLIENT_ID: &str = "sb-app!t1";
const CLIENT_SECRET: &str = "app-secret";
const OTHER_CLIENT_ID: &str = "sb-backend!b2";
const OTHER_CLIENT_SECRET: &str = "backend-secret";
const TENANT_ZONE: &str = "7c1e7f0e-1111-4000-8000-000000000001";
const TENANT_SUBDOMAIN: &str = "customer-a";
const FORM: &str = "application/x-www-form-urlencoded";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SAML2_BEARER: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";

/// Upper bound for any single request in these tests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct JsonResponse {
    status: StatusCode,
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
    let bytes = response.into_body().collect().await?.to_bytes();
    let body = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "response from {url} is not JSON: {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok(JsonResponse { status, body })
}

fn basic_header(client_id: &str, client_secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{client_secret}"))
    )
}

/// Posts a token request with Basic client authentication and the given
/// form fields, plus any extra headers.
async fn token_request(
    emulator: &Emulator,
    client: (&str, &str),
    fields: &[(&str, &str)],
    extra_headers: &[(&str, &str)],
) -> Result<JsonResponse> {
    let authorization = basic_header(client.0, client.1);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut headers = vec![
        ("content-type", FORM),
        ("authorization", authorization.as_str()),
    ];
    headers.extend_from_slice(extra_headers);
    send(Method::POST, &emulator.token_url(), &headers, &body).await
}

fn access_token(response: &JsonResponse) -> Result<String> {
    ensure!(
        response.status == StatusCode::OK,
        "token request failed with {}: {}",
        response.status,
        response.body
    );
    response.body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("token response has no access_token")
}

fn jwt_part(token: &str, index: usize) -> Result<Value> {
    let part = token
        .split('.')
        .nth(index)
        .context("token has too few parts")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part)?)?)
}

/// Verifies an RS256 signature with `ring` and the served key set, which
/// checks the emulator's signing independently of the crate it signs with.
async fn verify_with_token_keys(emulator: &Emulator, token: &str) -> Result<Value> {
    let keys = send(
        Method::GET,
        &format!("{}/token_keys", emulator.url()),
        &[],
        "",
    )
    .await?;
    ensure!(
        keys.status == StatusCode::OK,
        "token_keys failed: {}",
        keys.body
    );
    let header = jwt_part(token, 0)?;
    let key = keys.body["keys"]
        .as_array()
        .context("token_keys has no keys array")?
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .context("no key with the token's kid")?;
    let modulus = URL_SAFE_NO_PAD.decode(key["n"].as_str().context("n missing")?)?;
    let exponent = URL_SAFE_NO_PAD.decode(key["e"].as_str().context("e missing")?)?;

    let (signing_input, signature) = token.rsplit_once('.').context("token has no signature")?;
    let signature = URL_SAFE_NO_PAD.decode(signature)?;
    ring::signature::RsaPublicKeyComponents {
        n: &modulus,
        e: &exponent,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signing_input.as_bytes(),
        &signature,
    )
    .map_err(|_| anyhow::anyhow!("signature does not verify with the served key"))?;
    jwt_part(token, 1)
}

fn config() -> EmulatorConfig {
    EmulatorConfig {
        clients: vec![
            ClientConfig::new(CLIENT_ID, CLIENT_SECRET),
            ClientConfig::new(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        ],
        users: vec![
            UserConfig {
                email: Some("alice@customer.example".to_owned()),
                given_name: Some("Alice".to_owned()),
                family_name: Some("Doe".to_owned()),
                scopes: Some(vec!["openid".to_owned(), "app!t1.Display".to_owned()]),
                ..UserConfig::new("alice", "alice-pw")
            },
            UserConfig {
                zone_id: Some(TENANT_ZONE.to_owned()),
                ..UserConfig::new("bob", "bob-pw")
            },
        ],
        tenants: vec![TenantConfig::new(TENANT_ZONE, TENANT_SUBDOMAIN)],
        ..EmulatorConfig::default()
    }
}

async fn password_token(emulator: &Emulator, user: &str, password: &str) -> Result<JsonResponse> {
    token_request(
        emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
        &[],
    )
    .await
}

// ------------------------------------------------------------ signatures and claims

#[tokio::test]
async fn client_token_verifies_with_token_keys() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "client_credentials")],
        &[],
    )
    .await?;
    let token = access_token(&response)?;

    let header = jwt_part(&token, 0)?;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], emulator.key_id());
    assert_eq!(header["jku"], format!("{}/token_keys", emulator.url()));

    let claims = verify_with_token_keys(&emulator, &token).await?;
    assert_eq!(claims["iss"], format!("{}/oauth/token", emulator.url()));
    assert_eq!(claims["zid"], DEFAULT_SUBACCOUNT_ID);
    assert_eq!(claims["ext_attr"]["zdn"], "btp-emulator");
    assert_eq!(claims["ext_attr"]["subaccountid"], DEFAULT_SUBACCOUNT_ID);
    for claim in ["cid", "client_id", "azp", "sub"] {
        assert_eq!(claims[claim], CLIENT_ID, "{claim}");
    }
    assert_eq!(claims["aud"], json!([]));
    assert_eq!(claims["scope"], json!(["uaa.resource"]));
    assert_eq!(claims["grant_type"], "client_credentials");
    assert!(claims["jti"].is_string());
    assert!(claims.get("user_name").is_none());
    let issued_at = claims["iat"].as_u64().context("iat missing")?;
    assert_eq!(claims["exp"].as_u64(), Some(issued_at + 43199));
    Ok(())
}

#[tokio::test]
async fn token_keys_have_xsuaa_shape() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = send(
        Method::GET,
        &format!("{}/token_keys", emulator.url()),
        &[],
        "",
    )
    .await?;

    assert_eq!(response.status, StatusCode::OK);
    let keys = response.body["keys"].as_array().context("keys missing")?;
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], emulator.key_id());
    assert_eq!(key["e"], "AQAB");
    let modulus = URL_SAFE_NO_PAD.decode(key["n"].as_str().context("n missing")?)?;
    assert_eq!(modulus.len(), 256, "a 2048-bit modulus has 256 bytes");
    let pem = key["value"].as_str().context("value missing")?;
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    assert!(pem.ends_with("-----END PUBLIC KEY-----"), "{pem}");
    assert_eq!(pem, emulator.verification_key());
    assert_eq!(emulator.stats().token_key_requests, 1);
    Ok(())
}

#[tokio::test]
async fn emulators_sign_with_different_keys() -> Result<()> {
    let first = Emulator::start(config()).await?;
    let second = Emulator::start(config()).await?;

    assert_ne!(first.verification_key(), second.verification_key());
    let token = first.user_token(&UserTokenSpec::new("alice", CLIENT_ID));
    assert!(verify_with_token_keys(&first, &token).await.is_ok());
    assert!(verify_with_token_keys(&second, &token).await.is_err());
    Ok(())
}

// -------------------------------------------------------------------- tenants

#[tokio::test]
async fn x_zid_selects_tenant_zone() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "client_credentials")],
        &[("x-zid", TENANT_ZONE)],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;

    assert_eq!(claims["zid"], TENANT_ZONE);
    assert_eq!(claims["ext_attr"]["zdn"], TENANT_SUBDOMAIN);
    assert_eq!(claims["ext_attr"]["subaccountid"], TENANT_ZONE);
    assert_eq!(claims["client_id"], CLIENT_ID);
    Ok(())
}

#[tokio::test]
async fn x_zid_of_provider_gives_provider_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "client_credentials")],
        &[("x-zid", DEFAULT_SUBACCOUNT_ID)],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;

    assert_eq!(claims["zid"], DEFAULT_SUBACCOUNT_ID);
    assert_eq!(claims["ext_attr"]["zdn"], "btp-emulator");
    Ok(())
}

#[tokio::test]
async fn unknown_x_zid_is_401() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "client_credentials")],
        &[("x-zid", "no-such-zone")],
    )
    .await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["error"], "unauthorized");
    let description = response.body["error_description"]
        .as_str()
        .context("error_description missing")?;
    assert!(description.contains("no-such-zone"), "{description}");
    Ok(())
}

// ----------------------------------------------------------------- user tokens

#[tokio::test]
async fn user_token_has_user_claims() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let spec = UserTokenSpec {
        scopes: vec!["openid".to_owned(), "app!t1.Display".to_owned()],
        ..UserTokenSpec::new("alice", CLIENT_ID)
    };

    let token = emulator.user_token(&spec);
    let claims = verify_with_token_keys(&emulator, &token).await?;

    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["email"], "alice@customer.example");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Doe");
    assert_eq!(claims["origin"], "sap.default");
    assert!(claims["user_id"].is_string());
    assert!(claims["user_uuid"].is_string());
    assert_eq!(claims["sub"], claims["user_id"]);
    assert_eq!(claims["grant_type"], "authorization_code");
    assert_eq!(claims["zid"], DEFAULT_SUBACCOUNT_ID);
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(claims["scope"], json!(["openid", "app!t1.Display"]));
    assert_eq!(claims["aud"], json!([CLIENT_ID, "openid", "app!t1"]));
    Ok(())
}

#[tokio::test]
async fn user_token_in_tenant_zone() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let spec = UserTokenSpec {
        audience: vec!["custom-audience".to_owned()],
        lifetime_seconds: 60,
        ..UserTokenSpec::new("carol", CLIENT_ID).in_zone(TENANT_ZONE)
    };

    let claims = verify_with_token_keys(&emulator, &emulator.user_token(&spec)).await?;

    assert_eq!(claims["zid"], TENANT_ZONE);
    assert_eq!(claims["ext_attr"]["zdn"], TENANT_SUBDOMAIN);
    assert_eq!(claims["user_name"], "carol");
    assert_eq!(claims["email"], "carol@example.com");
    assert_eq!(claims["aud"], json!(["custom-audience"]));
    let issued_at = claims["iat"].as_u64().context("iat missing")?;
    assert_eq!(claims["exp"].as_u64(), Some(issued_at + 60));
    Ok(())
}

// -------------------------------------------------------------- password grant

#[tokio::test]
async fn password_grant_returns_user_and_refresh_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = password_token(&emulator, "alice", "alice-pw").await?;
    let token = access_token(&response)?;

    assert_eq!(response.body["token_type"], "bearer");
    assert_eq!(response.body["scope"], "openid app!t1.Display");
    let refresh_token = response.body["refresh_token"]
        .as_str()
        .context("refresh_token missing")?;
    assert!(refresh_token.ends_with("-r"), "{refresh_token}");
    let claims = verify_with_token_keys(&emulator, &token).await?;
    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["grant_type"], "password");
    assert_eq!(claims["client_id"], CLIENT_ID);
    assert_eq!(emulator.stats().password_grants, 1);
    Ok(())
}

#[tokio::test]
async fn password_grant_rejects_bad_user_credentials() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "alice-pw"),
        ("bob", "bob-pw"),
    ] {
        let response = password_token(&emulator, user, password).await?;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{user}");
        assert_eq!(
            response.body,
            json!({"error": "unauthorized", "error_description": "Bad credentials"}),
            "{user}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn password_grant_finds_tenant_user_with_x_zid() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-pw"),
        ],
        &[("x-zid", TENANT_ZONE)],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;

    assert_eq!(claims["user_name"], "bob");
    assert_eq!(claims["zid"], TENANT_ZONE);
    assert_eq!(claims["scope"], json!(["openid"]));
    Ok(())
}

#[tokio::test]
async fn password_grant_without_username_is_400() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "password"), ("password", "alice-pw")],
        &[],
    )
    .await?;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.body["error"], "invalid_request");
    Ok(())
}

// ------------------------------------------------------------ jwt bearer grant

#[tokio::test]
async fn jwt_bearer_exchanges_user_token_for_client() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let user_token =
        emulator.user_token(&UserTokenSpec::new("dave", CLIENT_ID).in_zone(TENANT_ZONE));

    let response = token_request(
        &emulator,
        (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        &[("grant_type", JWT_BEARER), ("assertion", &user_token)],
        &[],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;

    assert_eq!(claims["user_name"], "dave");
    assert_eq!(claims["zid"], TENANT_ZONE);
    assert_eq!(claims["ext_attr"]["zdn"], TENANT_SUBDOMAIN);
    assert_eq!(claims["client_id"], OTHER_CLIENT_ID);
    assert_eq!(claims["grant_type"], JWT_BEARER);
    assert!(response.body["refresh_token"].is_string());
    assert_eq!(emulator.stats().jwt_bearer_grants, 1);
    Ok(())
}

#[tokio::test]
async fn jwt_bearer_rejects_invalid_assertions() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let foreign = Emulator::start(config()).await?;
    let expired = emulator.user_token(&UserTokenSpec {
        lifetime_seconds: 0,
        ..UserTokenSpec::new("alice", CLIENT_ID)
    });
    let client_token = access_token(
        &token_request(
            &emulator,
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "client_credentials")],
            &[],
        )
        .await?,
    )?;
    let cases = [
        ("expired", expired, "expired"),
        (
            "foreign",
            foreign.user_token(&UserTokenSpec::new("alice", CLIENT_ID)),
            "not issued by this emulator",
        ),
        ("client token", client_token, "not a user token"),
        (
            "garbage",
            "not-a-jwt".to_owned(),
            "not issued by this emulator",
        ),
    ];

    for (case, assertion, fragment) in cases {
        let response = token_request(
            &emulator,
            (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
            &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            &[],
        )
        .await?;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(response.body["error"], "invalid_token", "{case}");
        let description = response.body["error_description"]
            .as_str()
            .context("error_description missing")?;
        assert!(description.contains(fragment), "{case}: {description}");
    }
    Ok(())
}

// --------------------------------------------------------- refresh token grant

#[tokio::test]
async fn refresh_token_grant_renews_user_token() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let login = password_token(&emulator, "alice", "alice-pw").await?;
    let refresh_token = login.body["refresh_token"]
        .as_str()
        .context("refresh_token missing")?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, CLIENT_SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        &[],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;

    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["grant_type"], "refresh_token");
    assert_eq!(claims["scope"], json!(["openid", "app!t1.Display"]));
    assert_eq!(response.body["refresh_token"], refresh_token);
    assert_eq!(emulator.stats().refresh_token_grants, 1);
    Ok(())
}

#[tokio::test]
async fn refresh_token_of_other_client_is_401() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let login = password_token(&emulator, "alice", "alice-pw").await?;
    let refresh_token = login.body["refresh_token"]
        .as_str()
        .context("refresh_token missing")?;

    for (client, token) in [
        ((OTHER_CLIENT_ID, OTHER_CLIENT_SECRET), refresh_token),
        ((CLIENT_ID, CLIENT_SECRET), "0123-r"),
    ] {
        let response = token_request(
            &emulator,
            client,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
            &[],
        )
        .await?;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(response.body["error"], "invalid_token", "{token}");
    }
    Ok(())
}

// --------------------------------------------------------- saml2 bearer grant

#[tokio::test]
async fn saml2_bearer_accepts_own_assertion_once() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let assertion = emulator.saml_assertion("alice", "backend-audience");

    let response = token_request(
        &emulator,
        (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        &[("grant_type", SAML2_BEARER), ("assertion", &assertion)],
        &[],
    )
    .await?;
    let claims = verify_with_token_keys(&emulator, &access_token(&response)?).await?;
    assert_eq!(claims["user_name"], "alice");
    assert_eq!(claims["email"], "alice@customer.example");
    assert_eq!(claims["client_id"], OTHER_CLIENT_ID);
    assert_eq!(claims["grant_type"], SAML2_BEARER);

    let replay = token_request(
        &emulator,
        (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        &[("grant_type", SAML2_BEARER), ("assertion", &assertion)],
        &[],
    )
    .await?;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.body["error"], "invalid_token");
    assert_eq!(emulator.stats().saml2_bearer_grants, 2);
    Ok(())
}

#[tokio::test]
async fn saml2_bearer_rejects_changed_assertion() -> Result<()> {
    let emulator = Emulator::start(config()).await?;
    let assertion = emulator.saml_assertion("alice", "backend-audience");
    let xml = String::from_utf8(URL_SAFE_NO_PAD.decode(&assertion)?)?;
    assert!(xml.contains(">alice</saml2:NameID>"), "{xml}");
    let changed = URL_SAFE_NO_PAD.encode(xml.replace(">alice<", ">mallory<"));

    let response = token_request(
        &emulator,
        (OTHER_CLIENT_ID, OTHER_CLIENT_SECRET),
        &[("grant_type", SAML2_BEARER), ("assertion", &changed)],
        &[],
    )
    .await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.body["error"], "invalid_token");
    let description = response.body["error_description"]
        .as_str()
        .context("error_description missing")?;
    assert!(description.contains("changed"), "{description}");
    Ok(())
}

// ------------------------------------------------------------------ other errors

#[tokio::test]
async fn grants_authenticate_client_first() -> Result<()> {
    let emulator = Emulator::start(config()).await?;

    let response = token_request(
        &emulator,
        (CLIENT_ID, "wrong"),
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-pw"),
        ],
        &[],
    )
    .await?;

    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.body,
        json!({"error": "unauthorized", "error_description": "Bad credentials"})
    );
    assert_eq!(emulator.stats().password_grants, 0);
    Ok(())
}
