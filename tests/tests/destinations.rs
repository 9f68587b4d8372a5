//! End-to-end tests of every destination type, inbound authentication,
//! on-premise destinations, client certificates and tenants: the gateway
//! process bound to the emulator's Destination service, XSUAA and
//! Connectivity proxy, with the CAP service and an HTTPS backend as targets.

use base64::Engine as _;
use btp_gateway_tests::emulator::{
    CertUrlConfig, CertificateConfig, ClientConfig, Destination, Emulator, EmulatorConfig,
    TenantConfig, UserConfig, UserTokenSpec, VirtualHostConfig,
};
use btp_gateway_tests::harness::{
    CAP_PASSWORD, CAP_USER, CapService, Gateway, HttpResponse, TlsBackend, get,
};
use btp_gateway_tests::pki::{IssuedCertificate, TestCa};
use http::StatusCode;
use tempfile::TempDir;

const DESTINATION_CLIENT: &str = "sb-gateway!b17|destination-xsappname!b404";
const DESTINATION_SECRET: &str = "destination-client-secret-9913";
const APP_CLIENT: &str = "sb-btp-gateway!t42";
const APP_SECRET: &str = "app-client-secret-5521";
const XSAPPNAME: &str = "btp-gateway!t42";
const CONNECTIVITY_CLIENT: &str = "sb-connectivity!b7";
const CONNECTIVITY_SECRET: &str = "connectivity-secret-7741";
const BACKEND_CLIENT: &str = "sb-backend!b3";
const BACKEND_SECRET: &str = "backend-secret-3301";
const USER_PASSWORD: &str = "alice-password-8820";
const KEY_STORE_PASSWORD: &str = "key-store-password-6167";
const SUBSCRIBER_ZONE: &str = "7c1e0000-0000-4000-8000-0000000000a1";

/// Everything a test needs, started together.
struct Landscape {
    _cap: CapService,
    emulator: Emulator,
    gateway: Gateway,
    client_certificate: IssuedCertificate,
    _mtls_backend: TlsBackend,
    _untrusted_backend: TlsBackend,
    _dir: TempDir,
}

impl Landscape {
    async fn start() -> Landscape {
        let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
        // The gateway trusts `ca` (through SSL_CERT_FILE) but not `unknown_ca`.
        let ca = TestCa::new("btp-gateway test CA").unwrap_or_else(|error| panic!("{error}"));
        let unknown_ca = TestCa::new("unknown CA").unwrap_or_else(|error| panic!("{error}"));
        let server_certificate = ca
            .server_certificate("127.0.0.1")
            .unwrap_or_else(|error| panic!("{error}"));
        let untrusted_certificate = unknown_ca
            .server_certificate("127.0.0.1")
            .unwrap_or_else(|error| panic!("{error}"));
        let client_certificate = ca
            .client_certificate("gateway-client")
            .unwrap_or_else(|error| panic!("{error}"));
        let mtls_backend = TlsBackend::start(&server_certificate, Some(&ca))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let untrusted_backend = TlsBackend::start(&untrusted_certificate, None)
            .await
            .unwrap_or_else(|error| panic!("{error}"));

        let config = emulator_config(
            cap.url(),
            mtls_backend.url(),
            untrusted_backend.url(),
            &client_certificate,
        );
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let vcap = Emulator::vcap_services_with(&[
            emulator.destination_binding(DESTINATION_CLIENT, DESTINATION_SECRET),
            emulator.xsuaa_binding(APP_CLIENT, APP_SECRET, XSAPPNAME),
            emulator.connectivity_binding(CONNECTIVITY_CLIENT, CONNECTIVITY_SECRET),
        ])
        .to_string();

        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.certificate_pem()).unwrap_or_else(|error| panic!("{error}"));
        let ca_path = ca_file.display().to_string();
        let gateway = Gateway::start(
            &[("VCAP_SERVICES", &vcap), ("SSL_CERT_FILE", &ca_path)],
            dir.path(),
        )
        .unwrap_or_else(|error| panic!("{error}"));
        Landscape {
            _cap: cap,
            emulator,
            gateway,
            client_certificate,
            _mtls_backend: mtls_backend,
            _untrusted_backend: untrusted_backend,
            _dir: dir,
        }
    }

    fn user_token(&self, user: &str) -> String {
        self.emulator
            .user_token(&UserTokenSpec::new(user, APP_CLIENT))
    }

    fn subscriber_token(&self, user: &str) -> String {
        self.emulator
            .user_token(&UserTokenSpec::new(user, APP_CLIENT).in_zone(SUBSCRIBER_ZONE))
    }

    /// GET through the gateway with a token; path relative to `/odata/`.
    async fn get(&self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> HttpResponse {
        let url = format!("{}/odata/{path}", self.gateway.url());
        let authorization = token.map(|token| format!("Bearer {token}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        get(&url, &headers)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }
}

fn emulator_config(
    cap_url: &str,
    tls_url: &str,
    untrusted_url: &str,
    client_certificate: &IssuedCertificate,
) -> EmulatorConfig {
    let token_url = "${EMULATOR_URL}/oauth/token";
    let oauth = |name: &str, authentication: &str| {
        Destination::oauth2_client_credentials(
            name,
            cap_url,
            token_url,
            BACKEND_CLIENT,
            BACKEND_SECRET,
        )
        .with_property("Authentication", authentication)
    };
    let on_premise = |name: &str, authentication: &str| {
        Destination::no_authentication(name, "http://s4.onprem:44300")
            .with_property("Authentication", authentication)
            .with_property("ProxyType", "OnPremise")
            .with_property("CloudConnectorLocationId", "LOC1")
    };
    let p12 = client_certificate
        .to_pkcs12("client", KEY_STORE_PASSWORD)
        .unwrap_or_else(|error| panic!("{error}"));
    let pem = format!(
        "{}{}",
        client_certificate.chain_pem(),
        client_certificate.private_key_pem()
    );

    EmulatorConfig {
        clients: vec![
            ClientConfig::new(DESTINATION_CLIENT, DESTINATION_SECRET),
            ClientConfig::new(APP_CLIENT, APP_SECRET),
            ClientConfig::new(BACKEND_CLIENT, BACKEND_SECRET),
        ],
        connectivity_clients: vec![ClientConfig::new(CONNECTIVITY_CLIENT, CONNECTIVITY_SECRET)],
        users: vec![UserConfig::new("alice", USER_PASSWORD)],
        instance_destinations: vec![
            Destination::no_authentication("SHARED", cap_url)
                .with_property("URL.headers.x-owner", "provider"),
            Destination::no_authentication("PROVIDER_ONLY", cap_url),
            oauth("ECHO_PASSWORD", "OAuth2Password")
                .with_property("User", "alice")
                .with_property("Password", USER_PASSWORD),
            oauth("ECHO_EXCHANGE", "OAuth2UserTokenExchange"),
            oauth("ECHO_JWT_BEARER", "OAuth2JWTBearer"),
            oauth("ECHO_REFRESH", "OAuth2RefreshToken"),
            Destination::no_authentication("ECHO_SAML", cap_url)
                .with_property("Authentication", "OAuth2SAMLBearerAssertion")
                .with_property("tokenServiceURL", token_url)
                .with_property("clientKey", BACKEND_CLIENT)
                .with_property("tokenServiceUser", BACKEND_CLIENT)
                .with_property("tokenServicePassword", BACKEND_SECRET)
                .with_property("audience", "backend"),
            on_premise("ONPREM_TECHNICAL", "OAuth2TechnicalUserPropagation")
                .with_property("tokenServiceURL", token_url)
                .with_property("clientId", BACKEND_CLIENT)
                .with_property("clientSecret", BACKEND_SECRET),
            on_premise("ONPREM_PRINCIPAL", "PrincipalPropagation"),
            on_premise("ONPREM_NONE", "NoAuthentication"),
            Destination::no_authentication("MTLS_P12", tls_url)
                .with_property("Authentication", "ClientCertificateAuthentication")
                .with_property("KeyStoreLocation", "client.p12")
                .with_property("KeyStorePassword", KEY_STORE_PASSWORD),
            Destination::no_authentication("MTLS_PEM", tls_url)
                .with_property("Authentication", "ClientCertificateAuthentication")
                .with_property("KeyStoreLocation", "client.pem"),
            Destination::no_authentication("MTLS_MISSING_CERT", tls_url),
            Destination::no_authentication("UNTRUSTED", untrusted_url),
            Destination::no_authentication("TRUST_ALL", untrusted_url)
                .with_property("TrustAll", "true"),
            Destination::basic("ECHO_BASIC", cap_url, CAP_USER, CAP_PASSWORD),
        ],
        certificates: vec![
            CertificateConfig::from_bytes("client.p12", &p12),
            CertificateConfig::from_bytes("client.pem", pem.as_bytes()),
        ],
        virtual_hosts: vec![
            VirtualHostConfig::new("s4.onprem", 44300, cap_url).with_location_id("LOC1"),
        ],
        tenants: vec![TenantConfig {
            subaccount_destinations: vec![
                Destination::no_authentication("SHARED", cap_url)
                    .with_property("URL.headers.x-owner", "customer-a"),
            ],
            ..TenantConfig::new(SUBSCRIBER_ZONE, "customer-a")
        }],
        ..EmulatorConfig::default()
    }
}

/// Returns the headers the CAP echo route received, as JSON.
fn echoed(response: &HttpResponse) -> serde_json::Value {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.json()
}

/// Decodes the claims of a `Bearer <JWT>` header value.
fn bearer_claims(value: &serde_json::Value) -> serde_json::Value {
    let text = value.as_str().unwrap_or_default();
    let token = text
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("not a bearer token: {text}"));
    let payload = token.split('.').nth(1).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("not a JWT: {token}"))
}

// --- Inbound authentication ---

#[tokio::test(flavor = "multi_thread")]
async fn xsuaa_binding_requires_token() {
    let landscape = Landscape::start().await;
    let anonymous = landscape.get("SHARED/echo/headers", None, &[]).await;
    let garbage = landscape
        .get("SHARED/echo/headers", Some("not-a-jwt"), &[])
        .await;
    let valid = landscape
        .get(
            "SHARED/echo/headers",
            Some(&landscape.user_token("alice")),
            &[],
        )
        .await;
    let health = get(&format!("{}/health", landscape.gateway.url()), &[]).await;

    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.header("www-authenticate"), "Bearer");
    assert_eq!(anonymous.json()["error"]["code"], "Unauthorized");
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(valid.status, StatusCode::OK, "{}", valid.text());
    assert_eq!(
        health.map(|response| response.status).ok(),
        Some(StatusCode::OK)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_and_tampered_tokens_rejected() {
    let landscape = Landscape::start().await;
    let mut other_app = UserTokenSpec::new("alice", "sb-other-app!t9");
    other_app.audience = vec!["other-app!t9".to_owned()];
    other_app.scopes = vec!["other-app!t9.Read".to_owned()];
    let foreign = landscape.emulator.user_token(&other_app);
    let valid = landscape.user_token("alice");
    let (head, rest) = valid.split_at(valid.len() - 4);
    let tampered = format!("{head}{}", if rest == "AAAA" { "BBBB" } else { "AAAA" });

    for (what, token) in [("foreign", foreign), ("tampered", tampered)] {
        let response = landscape
            .get("SHARED/echo/headers", Some(&token), &[])
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            response.text()
        );
    }
}

// --- Authentication types ---

#[tokio::test(flavor = "multi_thread")]
async fn user_token_types_reach_backend_as_user() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");

    for destination in ["ECHO_EXCHANGE", "ECHO_JWT_BEARER", "ECHO_PASSWORD"] {
        let headers = echoed(
            &landscape
                .get(&format!("{destination}/echo/headers"), Some(&token), &[])
                .await,
        );
        let claims = bearer_claims(&headers["authorization"]);
        assert_eq!(claims["user_name"], "alice", "{destination}: {claims}");
        assert_eq!(
            claims["client_id"], BACKEND_CLIENT,
            "{destination}: {claims}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn saml_bearer_assertion_reaches_backend() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");
    let headers = echoed(
        &landscape
            .get("ECHO_SAML/echo/headers", Some(&token), &[])
            .await,
    );

    let claims = bearer_claims(&headers["authorization"]);
    assert_eq!(claims["user_name"], "alice", "{claims}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_token_from_caller_header() {
    let landscape = Landscape::start().await;
    let form = format!(
        "grant_type=password&username=alice&password={USER_PASSWORD}&client_id={BACKEND_CLIENT}&client_secret={BACKEND_SECRET}"
    );
    let reply = token_request(&landscape.emulator.token_url(), form).await;
    let refresh_token = reply["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned();
    let token = landscape.user_token("alice");

    let with = landscape
        .get(
            "ECHO_REFRESH/echo/headers",
            Some(&token),
            &[("x-refresh-token", &refresh_token)],
        )
        .await;
    let headers = echoed(&with);
    assert_eq!(
        bearer_claims(&headers["authorization"])["user_name"],
        "alice"
    );
    assert!(headers.get("x-refresh-token").is_none(), "{headers}");

    // Another user, because alice's destination is now cached for her.
    let bob = landscape.user_token("bob");
    let without = landscape
        .get("ECHO_REFRESH/echo/headers", Some(&bob), &[])
        .await;
    assert_eq!(
        without.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        without.text()
    );
}

/// Posts a form to the emulator's token endpoint and returns the JSON reply.
async fn token_request(token_url: &str, form: String) -> serde_json::Value {
    use http_body_util::{BodyExt, Full};
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::post(token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from(form)))
        .unwrap_or_else(|error| panic!("{error}"));
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|error| panic!("{error}"))
        .to_bytes();
    serde_json::from_slice(&body).unwrap_or_else(|error| panic!("{error}"))
}

// --- On-premise through the Connectivity proxy ---

#[tokio::test(flavor = "multi_thread")]
async fn on_premise_goes_through_proxy() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");

    let plain = echoed(
        &landscape
            .get("ONPREM_NONE/echo/headers", Some(&token), &[])
            .await,
    );
    assert_eq!(plain["x-emulator-scc-location-id"], "LOC1", "{plain}");
    assert!(plain.get("proxy-authorization").is_none(), "{plain}");

    let technical = echoed(
        &landscape
            .get("ONPREM_TECHNICAL/echo/headers", Some(&token), &[])
            .await,
    );
    assert_eq!(
        technical["x-emulator-technical-user"], BACKEND_CLIENT,
        "{technical}"
    );

    let principal = echoed(
        &landscape
            .get("ONPREM_PRINCIPAL/echo/headers", Some(&token), &[])
            .await,
    );
    assert_eq!(principal["x-emulator-principal"], "alice", "{principal}");

    let stats = landscape.emulator.stats();
    assert_eq!(stats.proxy_forwarded, 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn principal_propagation_needs_user() {
    let landscape = Landscape::start().await;
    let form =
        format!("grant_type=client_credentials&client_id={APP_CLIENT}&client_secret={APP_SECRET}");
    let reply = token_request(&landscape.emulator.token_url(), form).await;
    let client_token = reply["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let response = landscape
        .get("ONPREM_PRINCIPAL/echo/headers", Some(&client_token), &[])
        .await;

    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "DestinationMisconfigured");
    let log = landscape.gateway.log_after("needs a logged-in user");
    assert!(log.contains("needs a logged-in user"), "{log}");
    assert_eq!(landscape.emulator.stats().proxy_requests, 0);
}

// --- Client certificates and TrustAll ---

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_from_key_store() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");
    let expected = base64::engine::general_purpose::STANDARD
        .encode(landscape.client_certificate.certificate_der());

    for destination in ["MTLS_P12", "MTLS_PEM"] {
        let response = landscape
            .get(&format!("{destination}/anything"), Some(&token), &[])
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{destination}: {}",
            response.text()
        );
        assert_eq!(
            response.json()["client_certificate"],
            expected.as_str(),
            "{destination}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificate_required_by_backend() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");
    let response = landscape
        .get("MTLS_MISSING_CERT/anything", Some(&token), &[])
        .await;

    assert_eq!(
        response.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_all_accepts_unknown_ca() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");

    let untrusted = landscape.get("UNTRUSTED/anything", Some(&token), &[]).await;
    let trusted = landscape.get("TRUST_ALL/anything", Some(&token), &[]).await;

    assert_eq!(
        untrusted.status,
        StatusCode::BAD_GATEWAY,
        "{}",
        untrusted.text()
    );
    let message = untrusted.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("TLS handshake"),
        "{message}\n{}",
        landscape.gateway.log()
    );
    assert_eq!(trusted.status, StatusCode::OK, "{}", trusted.text());
    assert_eq!(trusted.json()["path"], "/anything");
}

// --- Tenants and caching ---

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_first_then_provider() {
    let landscape = Landscape::start().await;
    let provider = landscape.user_token("alice");
    let subscriber = landscape.subscriber_token("bob");

    let as_provider = echoed(
        &landscape
            .get("SHARED/echo/headers", Some(&provider), &[])
            .await,
    );
    let as_subscriber = echoed(
        &landscape
            .get("SHARED/echo/headers", Some(&subscriber), &[])
            .await,
    );
    let fallback = landscape
        .get("PROVIDER_ONLY/echo/headers", Some(&subscriber), &[])
        .await;

    assert_eq!(as_provider["x-owner"], "provider");
    assert_eq!(as_subscriber["x-owner"], "customer-a");
    assert_eq!(fallback.status, StatusCode::OK, "{}", fallback.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn user_dependent_cached_per_user() {
    let landscape = Landscape::start().await;
    let alice = landscape.user_token("alice");
    let bob = landscape.user_token("bob");

    for _ in 0..2 {
        let headers = echoed(
            &landscape
                .get("ECHO_EXCHANGE/echo/headers", Some(&alice), &[])
                .await,
        );
        assert_eq!(
            bearer_claims(&headers["authorization"])["user_name"],
            "alice"
        );
    }
    let headers = echoed(
        &landscape
            .get("ECHO_EXCHANGE/echo/headers", Some(&bob), &[])
            .await,
    );
    assert_eq!(bearer_claims(&headers["authorization"])["user_name"], "bob");
    for _ in 0..2 {
        echoed(
            &landscape
                .get("ECHO_BASIC/echo/headers", Some(&alice), &[])
                .await,
        );
        echoed(
            &landscape
                .get("ECHO_BASIC/echo/headers", Some(&bob), &[])
                .await,
        );
    }

    // One lookup for alice and one for bob of the user-dependent
    // destination, one shared lookup of the basic one.
    assert_eq!(landscape.emulator.stats().destination_lookups, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_logs() {
    let landscape = Landscape::start().await;
    let token = landscape.user_token("alice");
    for destination in [
        "ECHO_EXCHANGE",
        "ECHO_PASSWORD",
        "ECHO_BASIC",
        "ONPREM_PRINCIPAL",
        "MTLS_P12",
    ] {
        landscape
            .get(&format!("{destination}/echo/headers"), Some(&token), &[])
            .await;
    }
    landscape.get("NOPE/x", Some(&token), &[]).await;

    let log = landscape.gateway.log_after("NOPE");
    for secret in [
        DESTINATION_SECRET,
        APP_SECRET,
        CONNECTIVITY_SECRET,
        BACKEND_SECRET,
        USER_PASSWORD,
        KEY_STORE_PASSWORD,
        CAP_PASSWORD,
        token.as_str(),
    ] {
        assert!(!log.contains(secret), "the log contains a secret");
    }
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !log.contains(signature),
        "the log contains the caller's token signature"
    );
}

#[test]
fn x509_binding_uses_certurl() {
    // The X.509 binding needs the emulator's mutual TLS token endpoint and a
    // gateway that trusts the test CA through SSL_CERT_FILE.
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|error| panic!("{error}"));
    runtime.block_on(async {
        let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
        let ca = TestCa::new("btp-gateway certurl CA").unwrap_or_else(|error| panic!("{error}"));
        let server = ca
            .server_certificate("127.0.0.1")
            .unwrap_or_else(|error| panic!("{error}"));
        let client = ca
            .client_certificate("sb-x509-gateway")
            .unwrap_or_else(|error| panic!("{error}"));
        let config = EmulatorConfig {
            clients: vec![ClientConfig::with_certificate(
                "sb-x509-gateway!b1",
                client.certificate_pem(),
            )],
            instance_destinations: vec![Destination::no_authentication(
                "CATALOG",
                format!("{}/odata/v4/catalog", cap.url()),
            )],
            certurl: Some(CertUrlConfig {
                server_certificate_pem: server.chain_pem(),
                server_private_key_pem: server.private_key_pem().to_owned(),
                client_ca_pem: ca.certificate_pem().to_owned(),
            }),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let binding = emulator
            .destination_binding_x509(
                "sb-x509-gateway!b1",
                &client.chain_pem(),
                client.private_key_pem(),
            )
            .unwrap_or_else(|| panic!("no certurl"));
        let vcap = Emulator::vcap_services_with(&[binding]).to_string();

        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.certificate_pem()).unwrap_or_else(|error| panic!("{error}"));
        let ca_path = ca_file.display().to_string();
        let gateway = Gateway::start(
            &[("VCAP_SERVICES", &vcap), ("SSL_CERT_FILE", &ca_path)],
            dir.path(),
        )
        .unwrap_or_else(|error| panic!("{error}"));

        let url = format!("{}/odata/CATALOG/Books?$top=1", gateway.url());
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{}\n{}",
            response.text(),
            gateway.log()
        );
        assert_eq!(emulator.stats().certurl_token_requests, 1);
        assert!(!gateway.log().contains(client.private_key_pem()));
    });
}
