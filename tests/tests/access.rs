//! End-to-end tests of route scopes and of the `/metrics` endpoint with its
//! admin access: the gateway bound to the emulator's XSUAA, with a recording
//! backend as the destination.

use btp_gateway_tests::emulator::{ClientConfig, Emulator, EmulatorConfig, UserTokenSpec};
use btp_gateway_tests::harness::{Gateway, HttpResponse, Recorder, request};
use http::{Method, StatusCode};
use tempfile::TempDir;

const APP_CLIENT: &str = "sb-btp-gateway!t42";
const APP_SECRET: &str = "app-client-secret-5521";
const XSAPPNAME: &str = "btp-gateway!t42";
const ADMIN_TOKEN: &str = "local-admin-token-0123456789abcdef";

const ROUTE_SCOPES: &str = r#"{
    "/odata/REC/": {"GET": "$XSAPPNAME.Display", "default": ["$XSAPPNAME.Edit"]}
}"#;

struct Landscape {
    emulator: Emulator,
    _backend: Recorder,
    gateway: Gateway,
    _dir: TempDir,
}

impl Landscape {
    async fn start(extra: &[(&str, &str)]) -> Landscape {
        let config = EmulatorConfig {
            clients: vec![ClientConfig::new(APP_CLIENT, APP_SECRET)],
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let backend = Recorder::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let vcap = Emulator::vcap_services_with(&[
            emulator.xsuaa_binding(APP_CLIENT, APP_SECRET, XSAPPNAME)
        ])
        .to_string();
        let destinations = serde_json::json!([{ "name": "REC", "url": backend.url() }]).to_string();
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut env = vec![
            ("VCAP_SERVICES", vcap.as_str()),
            ("destinations", destinations.as_str()),
        ];
        env.extend_from_slice(extra);
        let gateway = Gateway::start(&env, dir.path()).unwrap_or_else(|error| panic!("{error}"));
        Landscape {
            emulator,
            _backend: backend,
            gateway,
            _dir: dir,
        }
    }

    fn token(&self, scopes: &[&str]) -> String {
        let mut spec = UserTokenSpec::new("alice", APP_CLIENT);
        spec.scopes = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        spec.scopes.push("openid".to_owned());
        self.emulator.user_token(&spec)
    }

    async fn send(&self, method: Method, path: &str, token: Option<&str>) -> HttpResponse {
        let url = format!("{}{path}", self.gateway.url());
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        request(method, &url, &headers)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"))
    }
}

fn message(response: &HttpResponse) -> String {
    response.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn route_scopes_by_method() {
    let landscape = Landscape::start(&[("BTP_GATEWAY_ROUTE_SCOPES", ROUTE_SCOPES)]).await;
    let display = landscape.token(&["btp-gateway!t42.Display"]);
    let none = landscape.token(&[]);

    let read = landscape
        .send(Method::GET, "/odata/REC/x", Some(&display))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());

    let write = landscape
        .send(Method::DELETE, "/odata/REC/x", Some(&display))
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.text());
    assert!(
        message(&write).contains("btp-gateway!t42.Edit"),
        "{}",
        write.text()
    );

    let without = landscape
        .send(Method::GET, "/odata/REC/x", Some(&none))
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(
        message(&without).contains("btp-gateway!t42.Display"),
        "{}",
        without.text()
    );
    assert!(!without.header("x-correlationid").is_empty());

    let anonymous = landscape.send(Method::GET, "/odata/REC/x", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let health = landscape.send(Method::GET, "/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_admin_scope() {
    let landscape = Landscape::start(&[]).await;
    let user = landscape.token(&["btp-gateway!t42.Display"]);
    let admin = landscape.token(&["btp-gateway!t42.Admin"]);

    for _ in 0..3 {
        let response = landscape
            .send(Method::GET, "/odata/REC/x", Some(&user))
            .await;
        assert_eq!(response.status, StatusCode::OK);
    }

    let anonymous = landscape.send(Method::GET, "/metrics", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let forbidden = landscape.send(Method::GET, "/metrics", Some(&user)).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text()
    );
    assert!(
        message(&forbidden).contains("$XSAPPNAME.Admin"),
        "{}",
        forbidden.text()
    );

    let metrics = landscape.send(Method::GET, "/metrics", Some(&admin)).await;
    assert_eq!(metrics.status, StatusCode::OK, "{}", metrics.text());
    assert!(
        metrics
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    };
    assert!(value("btp_gateway_responses_total{status_class=\"2xx\"}") >= 3);
    assert!(value("btp_gateway_responses_total{status_class=\"4xx\"}") >= 2);
    assert_eq!(value("btp_gateway_instances_in_use"), 0);
    assert_eq!(value("btp_gateway_instance_slots"), 64);
    assert!(value("btp_gateway_request_duration_seconds_count") >= 5);
    assert!(
        text.contains("btp_gateway_component_cache_hits_total "),
        "{text}"
    );
    assert!(text.contains("btp_gateway_token_requests_total "), "{text}");
    assert!(
        text.contains("btp_gateway_component_swaps_total 0"),
        "{text}"
    );
    assert!(!text.contains(APP_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_needs_admin_scope() {
    let landscape = Landscape::start(&[]).await;
    let user = landscape.token(&["btp-gateway!t42.Display"]);
    let admin = landscape.token(&["btp-gateway!t42.Admin"]);
    let path = "/admin/components";

    let anonymous = landscape.send(Method::GET, path, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let forbidden = landscape.send(Method::GET, path, Some(&user)).await;
    assert_eq!(
        forbidden.status,
        StatusCode::FORBIDDEN,
        "{}",
        forbidden.text()
    );
    assert!(message(&forbidden).contains("the admin API needs the scope $XSAPPNAME.Admin"));
    let rollback = landscape
        .send(
            Method::POST,
            "/admin/components/default/rollback",
            Some(&user),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::FORBIDDEN);

    let listed = landscape.send(Method::GET, path, Some(&admin)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json()["routes"][0]["source"], "bundled");
}

/// The scope the gateway checks is the one `xs-security.json` declares, so
/// a role collection built from the file grants it.
#[test]
fn admin_scope_declared_in_security_descriptor() {
    let path = btp_gateway_tests::harness::workspace_root().join("xs-security.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let descriptor: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}"));
    let scopes: Vec<&str> = descriptor["scopes"]
        .as_array()
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(|scope| scope["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(scopes.contains(&"$XSAPPNAME.Admin"), "{scopes:?}");
    let granted = descriptor["role-templates"]
        .as_array()
        .is_some_and(|templates| {
            templates.iter().any(|template| {
                template["scope-references"]
                    .as_array()
                    .is_some_and(|references| references.iter().any(|r| r == "$XSAPPNAME.Admin"))
            })
        });
    assert!(granted, "no role template grants $XSAPPNAME.Admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_with_local_admin_token() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let gateway = Gateway::start(&[("BTP_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    let url = format!("{}/metrics", gateway.url());

    let with_token = request(
        Method::GET,
        &url,
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(with_token.status, StatusCode::OK);
    assert!(with_token.text().contains("btp_gateway_up 1"));

    let wrong = request(
        Method::GET,
        &url,
        &[("authorization", "Bearer local-admin-token-0123456789abcdeX")],
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        !gateway.log().contains(ADMIN_TOKEN),
        "the token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_closed_without_admin_access() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let gateway = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    let response = request(Method::GET, &format!("{}/metrics", gateway.url()), &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(
        message(&response).contains("BTP_GATEWAY_ADMIN_TOKEN"),
        "{}",
        response.text()
    );
}

#[test]
fn access_settings_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let cases = [
        (
            ("BTP_GATEWAY_ROUTE_SCOPES", ROUTE_SCOPES),
            "needs an xsuaa binding",
        ),
        (
            ("BTP_GATEWAY_ADMIN_TOKEN", "short"),
            "at least 24 characters",
        ),
    ];
    for ((name, value), expected) in cases {
        let exit = Gateway::start_expecting_failure(&[(name, value)], dir.path())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(exit.status.code(), Some(2), "{name}: {}", exit.stderr);
        assert!(exit.stderr.contains(name), "{}", exit.stderr);
        assert!(exit.stderr.contains(expected), "{}", exit.stderr);
    }
}
