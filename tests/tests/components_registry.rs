//! End-to-end tests of routes that follow an OCI registry: Debian's
//! `docker-registry` on loopback, components pushed as OCI artifacts, and
//! two gateway processes that must converge on the digest a tag points at.

use std::time::{Duration, Instant};

use btp_gateway_tests::harness::registry::{Registry, TEST_PASSWORD, TEST_USER};
use btp_gateway_tests::harness::{Gateway, HttpResponse, get, request, versioned_guest};
use http::{Method, StatusCode};

const ADMIN_TOKEN: &str = "registry-admin-token-7d3b9c1e0f";
const REPOSITORY: &str = "team/gateway";

fn component(label: &str) -> Vec<u8> {
    let path = versioned_guest(label).unwrap_or_else(|error| panic!("{error}"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

struct Host {
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

impl Host {
    fn start(reference: &str) -> Host {
        Self::start_with(reference, &[])
    }

    fn start_with(reference: &str, extra: &[(&str, &str)]) -> Host {
        let routes = serde_json::json!([{ "path": "/", "component": reference }]).to_string();
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut env = vec![
            ("BTP_GATEWAY_ROUTES", routes.as_str()),
            ("BTP_GATEWAY_REGISTRY_POLL_SECS", "1"),
            ("BTP_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN),
        ];
        env.extend_from_slice(extra);
        let gateway = Gateway::start(&env, dir.path()).unwrap_or_else(|error| panic!("{error}"));
        Host { gateway, _dir: dir }
    }

    async fn get(&self, path: &str) -> HttpResponse {
        get(&format!("{}{path}", self.gateway.url()), &[])
            .await
            .unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    async fn label(&self) -> String {
        self.get("/version").await.header("x-component-label")
    }

    /// Waits up to 20 seconds until the host serves `label`.
    async fn wait_for(&self, label: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.label().await != label {
            assert!(
                Instant::now() < deadline,
                "the host did not switch to {label}:\n{}",
                self.gateway.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn health_origin(&self) -> String {
        let health = self.get("/health").await.json();
        health["components"][0]["origin"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hosts_converge_on_a_tag() {
    let registry = Registry::start().unwrap_or_else(|error| panic!("{error}"));
    let reference = registry.reference(REPOSITORY, "stable");
    let v1_manifest = registry
        .push(REPOSITORY, "stable", &component("v1"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    let first = Host::start(&reference);
    let second = Host::start(&reference);
    first.wait_for("v1").await;
    second.wait_for("v1").await;
    assert_eq!(
        first.health_origin().await,
        format!("{reference}@{v1_manifest}")
    );

    registry
        .push(REPOSITORY, "stable", &component("v2"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    first.wait_for("v2").await;
    second.wait_for("v2").await;

    // A rollback on one host holds while the tag stays where it is.
    let rollback = request(
        Method::POST,
        &format!("{}/admin/components/default/rollback", first.gateway.url()),
        &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(rollback.status, StatusCode::OK, "{}", rollback.text());
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(first.label().await, "v1", "the poller undid the rollback");
    assert_eq!(second.label().await, "v2");

    // A broken artifact under the tag is rejected on both hosts.
    registry
        .push(REPOSITORY, "stable", &component("trap-on-smoke-registry"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(first.gateway.log().contains("rejected a component")
        && second.gateway.log().contains("rejected a component"))
    {
        assert!(
            Instant::now() < deadline,
            "no rejection logged:\n{}",
            second.gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(first.label().await, "v1");
    assert_eq!(second.label().await, "v2");

    // The next good version reaches both again.
    registry
        .push(REPOSITORY, "stable", &component("v3"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    first.wait_for("v3").await;
    second.wait_for("v3").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn route_waits_for_first_push() {
    let registry = Registry::start().unwrap_or_else(|error| panic!("{error}"));
    let reference = registry.reference("team/later", "v1");
    let host = Host::start(&reference);

    let waiting = host.get("/version").await;
    assert_eq!(
        waiting.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        waiting.text()
    );
    assert_eq!(
        host.get("/health/readiness").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let log = host.gateway.log_after("polling the registry failed");
    assert!(log.contains("team/later"), "{log}");

    registry
        .push("team/later", "v1", &component("v1"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    host.wait_for("v1").await;
    assert_eq!(host.get("/health/readiness").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_reference_is_pulled_once() {
    let registry = Registry::start().unwrap_or_else(|error| panic!("{error}"));
    let manifest = registry
        .push(REPOSITORY, "pinned", &component("v1"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let reference = format!("oci://{}/{REPOSITORY}@{manifest}", registry.address());
    let host = Host::start(&reference);
    host.wait_for("v1").await;

    registry
        .push(REPOSITORY, "pinned", &component("v2"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(host.label().await, "v1", "a digest reference never moves");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_registry_needs_credentials() {
    let registry = Registry::start_with_basic_auth().unwrap_or_else(|error| panic!("{error}"));
    let reference = registry.reference(REPOSITORY, "private");
    registry
        .push(REPOSITORY, "private", &component("v1"))
        .await
        .unwrap_or_else(|error| panic!("{error}"));

    let anonymous = Host::start(&reference);
    let log = anonymous.gateway.log_after("requires authentication");
    assert!(log.contains("BTP_GATEWAY_REGISTRY_USERNAME"), "{log}");
    assert_eq!(
        anonymous.get("/version").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let wrong = Host::start_with(
        &reference,
        &[
            ("BTP_GATEWAY_REGISTRY_USERNAME", TEST_USER),
            ("BTP_GATEWAY_REGISTRY_PASSWORD", "not-the-password"),
        ],
    );
    let log = wrong
        .gateway
        .log_after("rejected the configured credentials");
    assert!(log.contains("rejected the configured credentials"), "{log}");
    assert!(
        !log.contains("not-the-password"),
        "the password is never logged"
    );

    let authorised = Host::start_with(
        &reference,
        &[
            ("BTP_GATEWAY_REGISTRY_USERNAME", TEST_USER),
            ("BTP_GATEWAY_REGISTRY_PASSWORD", TEST_PASSWORD),
        ],
    );
    authorised.wait_for("v1").await;
    assert!(
        !authorised.gateway.log().contains(TEST_PASSWORD),
        "the password is never logged"
    );
}
