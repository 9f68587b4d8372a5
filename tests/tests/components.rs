//! End-to-end tests of component swaps on one host: uploads through the
//! admin API, activation and rollback, swaps under load, rejections, routes
//! at path prefixes, a watched folder, the compiled-code cache, and the
//! `check` and `call` commands.
//!
//! The components come from `tests/guests/versioned`, built once per label;
//! each label answers with its own name, so every response shows which
//! version served it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use btp_gateway_tests::harness::{
    Gateway, HttpResponse, get, request, request_with_body, test_guest, versioned_guest,
};
use bytes::Bytes;
use http::{Method, StatusCode};

const ADMIN_TOKEN: &str = "components-admin-token-5f1c2e9a7b";

fn guest(label: &str) -> PathBuf {
    versioned_guest(label).unwrap_or_else(|error| panic!("{error}"))
}

fn read(path: &Path) -> Bytes {
    Bytes::from(std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
}

/// Returns `sha256:<hex>` of a file, computed by `sha256sum`, independently
/// of the host's code.
fn sha256(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|error| panic!("sha256sum: {error}"));
    let text = String::from_utf8_lossy(&output.stdout);
    format!(
        "sha256:{}",
        text.split_whitespace().next().unwrap_or_default()
    )
}

struct Host {
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

impl Host {
    fn start(env: &[(&str, &str)]) -> Host {
        let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
        let mut all = vec![("BTP_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)];
        all.extend_from_slice(env);
        let gateway = Gateway::start(&all, dir.path()).unwrap_or_else(|error| panic!("{error}"));
        Host { gateway, _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    async fn get(&self, path: &str) -> HttpResponse {
        get(&self.url(path), &[])
            .await
            .unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    async fn admin(&self, method: Method, path: &str, body: Bytes) -> HttpResponse {
        let authorization = format!("Bearer {ADMIN_TOKEN}");
        request_with_body(
            method,
            &self.url(path),
            &[("authorization", &authorization)],
            body,
        )
        .await
        .unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    async fn upload(&self, route: &str, component: Bytes) -> HttpResponse {
        self.admin(
            Method::POST,
            &format!("/admin/components/{route}/versions"),
            component,
        )
        .await
    }

    async fn label(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
        response.header("x-component-label")
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = self
            .admin(Method::GET, "/metrics", Bytes::new())
            .await
            .text();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
    }
}

/// Checks a `/version` response: whole, and from one version only.
fn single_version(response: &HttpResponse) -> Result<String, String> {
    if response.status != StatusCode::OK {
        return Err(format!("status {}: {}", response.status, response.text()));
    }
    let label = response.header("x-component-label");
    let expected: Vec<u8> = format!("{label}\n").bytes().cycle().take(1024).collect();
    if response.body.len() != 64 * 1024 {
        return Err(format!("{} bytes instead of 65536", response.body.len()));
    }
    match response
        .body
        .chunks(1024)
        .position(|chunk| chunk != expected.as_slice())
    {
        Some(index) => Err(format!("chunk {index} is not from {label}")),
        None => Ok(label),
    }
}

fn error_code(response: &HttpResponse) -> String {
    response.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_activate_and_roll_back() {
    let v1 = guest("v1");
    let v2 = guest("v2");
    let host = Host::start(&[("BTP_GATEWAY_COMPONENT", &v1.display().to_string())]);
    assert_eq!(host.label("/version").await, "v1");

    let uploaded = host.upload("default", read(&v2)).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    assert_eq!(uploaded.json()["version"]["digest"], sha256(&v2));
    assert_eq!(uploaded.json()["version"]["origin"], "upload");
    assert_eq!(host.label("/version").await, "v2");

    let health = host.get("/health").await.json();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["components"][0]["route"], "default");
    assert_eq!(health["components"][0]["digest"], sha256(&v2));
    assert!(
        health["components"][0]["activatedAt"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let rolled_back = host
        .admin(
            Method::POST,
            "/admin/components/default/rollback",
            Bytes::new(),
        )
        .await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text());
    assert_eq!(host.label("/version").await, "v1");
    assert_eq!(
        host.get("/health").await.json()["components"][0]["digest"],
        sha256(&v1)
    );

    let body = Bytes::from(format!(r#"{{"digest": "{}"}}"#, sha256(&v2)));
    let activated = host
        .admin(Method::POST, "/admin/components/default/activate", body)
        .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.text());
    assert_eq!(host.label("/version").await, "v2");

    let status = host
        .admin(Method::GET, "/admin/components/default", Bytes::new())
        .await
        .json();
    let versions = status["versions"].as_array().cloned().unwrap_or_default();
    assert_eq!(versions.len(), 2, "{status}");
    assert_eq!(status["active"]["digest"], sha256(&v2));
    assert_eq!(status["source"], format!("file:{}", v1.display()));

    let unknown = format!(r#"{{"digest": "sha256:{}"}}"#, "0".repeat(64));
    let missing = host
        .admin(
            Method::POST,
            "/admin/components/default/activate",
            Bytes::from(unknown),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
    assert_eq!(host.metric("btp_gateway_component_swaps_total").await, 3);
    let log = host.gateway.log();
    assert!(log.contains("activated a component"), "{log}");
    assert!(
        !log.contains(ADMIN_TOKEN),
        "the admin token is never logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_without_activation() {
    let host = Host::start(&[("BTP_GATEWAY_COMPONENT", &guest("v1").display().to_string())]);
    let kept = host
        .admin(
            Method::POST,
            "/admin/components/default/versions?activate=false",
            read(&guest("v2")),
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.text());
    assert_eq!(kept.json()["version"]["active"], false);
    assert_eq!(host.label("/version").await, "v1");

    let invalid = host
        .admin(
            Method::POST,
            "/admin/components/default/versions?activate=later",
            read(&guest("v2")),
        )
        .await;
    assert_eq!(
        invalid.status,
        StatusCode::BAD_REQUEST,
        "{}",
        invalid.text()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn swaps_under_load_lose_nothing() {
    let labels = ["v1", "v2", "v3"];
    let files: Vec<PathBuf> = labels.iter().map(|label| guest(label)).collect();
    let host = Host::start(&[
        ("BTP_GATEWAY_COMPONENT", &files[0].display().to_string()),
        ("BTP_GATEWAY_MAX_INSTANCES", "32"),
    ]);
    let url = host.url("/version");

    // Eight clients send requests until the swaps are done, at most 400
    // each and at most 60 seconds in all.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (url, done) = (url.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let mut results: Vec<Result<String, String>> = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst)
                && results.len() < 400
                && Instant::now() < deadline
            {
                let result = match get(&url, &[]).await {
                    Ok(response) => single_version(&response),
                    Err(error) => Err(format!("{error:#}")),
                };
                results.push(result);
            }
            results
        }));
    }

    // Five swaps and a rollback, 300 ms apart, while the clients run.
    let mut steps = Vec::new();
    for file in [&files[1], &files[2], &files[0], &files[1], &files[2]] {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let response = host.upload("default", read(file)).await;
        steps.push((response.status, response.text()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rollback = host
        .admin(
            Method::POST,
            "/admin/components/default/rollback",
            Bytes::new(),
        )
        .await;
    steps.push((rollback.status, rollback.text()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);

    for (status, text) in &steps {
        assert_eq!(*status, StatusCode::OK, "{text}");
    }
    let mut served = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for client in clients {
        for result in client.await.unwrap_or_else(|error| panic!("{error}")) {
            match result {
                Ok(label) => *served.entry(label).or_default() += 1,
                Err(failure) => failures.push(failure),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!("responses by version during the swaps: {served:?}");
    for label in labels {
        assert!(
            served.get(label).is_some_and(|count| *count > 0),
            "no response from {label}: {served:?}"
        );
    }
    // The rollback returned to v3's predecessor, v2.
    assert_eq!(host.label("/version").await, "v2");
    assert_eq!(host.metric("btp_gateway_component_swaps_total").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_components_leave_active_version() {
    let v1 = guest("v1");
    let pinned = sha256(&v1);
    let routes = serde_json::json!([
        { "path": "/", "component": format!("file:{}", v1.display()) },
        { "path": "/pinned", "component": format!("file:{}", v1.display()), "digest": pinned },
    ])
    .to_string();
    let host = Host::start(&[
        ("BTP_GATEWAY_ROUTES", &routes),
        ("BTP_GATEWAY_COMPONENT_MAX_MIB", "1"),
        ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", "5"),
    ]);
    let command = test_guest("test-guest-command").unwrap_or_else(|error| panic!("{error}"));

    let cases: [(&str, Bytes, StatusCode, &str, &str); 6] = [
        (
            "default",
            Bytes::from_static(b"not a component"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-component",
            "not a valid WebAssembly component",
        ),
        (
            "default",
            read(&command),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-world",
            "wasi:http/incoming-handler",
        ),
        (
            "default",
            read(&guest("trap-on-smoke")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "smoke-request-failed",
            "GET /",
        ),
        (
            "default",
            Bytes::from(vec![0u8; (1 << 20) + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "BTP_GATEWAY_COMPONENT_MAX_MIB",
        ),
        (
            "pinned",
            read(&guest("v2")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "digest-mismatch",
            &pinned,
        ),
        (
            "default",
            Bytes::new(),
            StatusCode::BAD_REQUEST,
            "EmptyBody",
            "--data-binary",
        ),
    ];
    for (route, body, status, code, text) in cases {
        let response = host.upload(route, body).await;
        assert_eq!(response.status, status, "{code}: {}", response.text());
        assert_eq!(error_code(&response), code, "{}", response.text());
        assert!(
            response.text().contains(text),
            "{code}: {}",
            response.text()
        );
        assert_eq!(host.label("/version").await, "v1", "after {code}");
        assert_eq!(host.label("/pinned/version").await, "v1", "after {code}");
    }
    // Every case but the empty body reached validation and was rejected.
    assert_eq!(
        host.metric("btp_gateway_component_rejections_total").await,
        5
    );
    assert_eq!(host.metric("btp_gateway_component_swaps_total").await, 0);
    let log = host.gateway.log();
    assert!(log.contains("rejected a component"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_mount_at_prefixes() {
    let routes = serde_json::json!([
        { "path": "/", "component": "bundled" },
        { "path": "/one", "component": format!("file:{}", guest("v1").display()) },
        { "path": "/one/two", "component": format!("file:{}", guest("v2").display()), "name": "second" },
    ])
    .to_string();
    let host = Host::start(&[("BTP_GATEWAY_ROUTES", &routes)]);

    assert_eq!(host.label("/one/version").await, "v1");
    assert_eq!(host.label("/one/two/version").await, "v2");
    assert_eq!(host.label("/one/").await, "v1");
    let below = host.get("/one/elsewhere?x=1").await;
    assert_eq!(below.status, StatusCode::NOT_FOUND);
    assert_eq!(below.text(), "v1: no scenario at /elsewhere?x=1");
    let other = host.get("/oneother/version").await;
    assert!(
        other.header("x-component-label").is_empty(),
        "/oneother is not under /one"
    );

    let health = host.get("/health").await.json();
    let names: Vec<&str> = health["components"]
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter_map(|route| route["route"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(names, ["default", "one", "second"]);

    let uploaded = host.upload("second", read(&guest("v3"))).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    assert_eq!(host.label("/one/two/version").await, "v3");
    assert_eq!(
        host.label("/one/version").await,
        "v1",
        "other routes keep their version"
    );

    let unknown = host.upload("third", read(&guest("v3"))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.text().contains("default, one, second"),
        "{}",
        unknown.text()
    );
}

/// Waits up to 15 seconds until `path` answers with `label`.
async fn wait_for_label(host: &Host, path: &str, label: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = host.get(path).await;
        if response.header("x-component-label") == label {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not switch to {label}: {} {}\n{}",
            response.status,
            response.text(),
            host.gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watched_folder_follows_new_files() {
    let folder = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let routes = serde_json::json!([
        { "path": "/", "component": format!("folder:{}", folder.path().display()) },
    ])
    .to_string();
    let host = Host::start(&[("BTP_GATEWAY_ROUTES", &routes)]);

    let waiting = host.get("/version").await;
    assert_eq!(
        waiting.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        waiting.text()
    );
    assert_eq!(error_code(&waiting), "ComponentNotLoaded");
    assert_eq!(waiting.header("retry-after"), "5");
    let readiness = host.get("/health/readiness").await;
    assert_eq!(readiness.status, StatusCode::SERVICE_UNAVAILABLE);

    std::fs::copy(guest("v1"), folder.path().join("gateway-1.wasm"))
        .unwrap_or_else(|error| panic!("{error}"));
    wait_for_label(&host, "/version", "v1").await;
    assert_eq!(host.get("/health/readiness").await.status, StatusCode::OK);

    // Modification times have a resolution of at least a few milliseconds:
    // the next file must be visibly newer.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::copy(guest("v2"), folder.path().join("gateway-2.wasm"))
        .unwrap_or_else(|error| panic!("{error}"));
    wait_for_label(&host, "/version", "v2").await;

    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(folder.path().join("gateway-3.wasm"), b"half a file")
        .unwrap_or_else(|error| panic!("{error}"));
    let log_deadline = Instant::now() + Duration::from_secs(15);
    while !host.gateway.log().contains("gateway-3.wasm") && Instant::now() < log_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = host.gateway.log();
    assert!(log.contains("rejected a component"), "{log}");
    assert_eq!(host.label("/version").await, "v2");
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_code_cached_across_restarts() {
    let cache = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let folder = cache.path().join("compiled");
    let folder_text = folder.display().to_string();
    let component = guest("v1").display().to_string();
    let env = [
        ("BTP_GATEWAY_COMPONENT", component.as_str()),
        ("BTP_GATEWAY_COMPILED_CACHE_DIR", folder_text.as_str()),
    ];

    let first = Host::start(&env);
    assert_eq!(
        first
            .metric("btp_gateway_compiled_cache_misses_total")
            .await,
        1
    );
    assert_eq!(
        first.metric("btp_gateway_compiled_cache_hits_total").await,
        0
    );
    let status = first
        .gateway
        .terminate()
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(status.success());

    let second = Host::start(&env);
    assert_eq!(
        second.metric("btp_gateway_compiled_cache_hits_total").await,
        1
    );
    assert_eq!(
        second
            .metric("btp_gateway_compiled_cache_misses_total")
            .await,
        0
    );
    assert_eq!(second.label("/version").await, "v1");

    // A rollback to a kept version compiles nothing either.
    let uploaded = second.upload("default", read(&guest("v2"))).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.text());
    let rollback = second
        .admin(
            Method::POST,
            "/admin/components/default/rollback",
            Bytes::new(),
        )
        .await;
    assert_eq!(rollback.status, StatusCode::OK);
    let compiled = second
        .metric("btp_gateway_compiled_cache_misses_total")
        .await
        + second.metric("btp_gateway_compiled_cache_hits_total").await;
    assert_eq!(compiled, 2, "only the start and the upload compiled");
}

#[test]
fn cache_folder_of_others_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o777))
        .unwrap_or_else(|error| panic!("{error}"));
    let folder = parent.path().display().to_string();
    let host = Host::start(&[("BTP_GATEWAY_COMPILED_CACHE_DIR", &folder)]);
    let log = host.gateway.log_after("the compiled-code cache is off");
    assert!(log.contains("can be written by other users"), "{log}");
    assert!(log.contains("the compiled-code cache is off"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_api_needs_the_admin_token() {
    let host = Host::start(&[]);
    let url = host.url("/admin/components");
    let anonymous = get(&url, &[])
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let wrong = request_with_body(
        Method::POST,
        &host.url("/admin/components/default/versions"),
        &[("authorization", "Bearer components-admin-token-5f1c2e9a7X")],
        read(&guest("v2")),
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        host.get("/health").await.json()["components"][0]["origin"],
        "bundled"
    );

    let listed = host
        .admin(Method::GET, "/admin/components", Bytes::new())
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.json()["routes"][0]["name"], "default");
    let wrong_method = host
        .admin(
            Method::DELETE,
            "/admin/components/default/rollback",
            Bytes::new(),
        )
        .await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.header("allow"), "POST");

    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let closed = Gateway::start(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    let response = request(
        Method::GET,
        &format!("{}/admin/components", closed.url()),
        &[],
    )
    .await
    .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        response.status,
        StatusCode::FORBIDDEN,
        "{}",
        response.text()
    );
}

#[test]
fn invalid_routes_stop_the_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let v1 = guest("v1").display().to_string();
    let trap = guest("trap-on-smoke").display().to_string();
    let trap_routes = format!(r#"[{{"path": "/", "component": "file:{trap}"}}]"#);
    type StartCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [StartCase; 4] = [
        (
            "routes not JSON",
            vec![("BTP_GATEWAY_ROUTES", "/orders")],
            "BTP_GATEWAY_ROUTES",
        ),
        (
            "reserved path",
            vec![(
                "BTP_GATEWAY_ROUTES",
                r#"[{"path": "/metrics", "component": "bundled"}]"#,
            )],
            "serves /metrics itself",
        ),
        (
            "two roots",
            vec![
                (
                    "BTP_GATEWAY_ROUTES",
                    r#"[{"path": "/", "component": "bundled"}]"#,
                ),
                ("BTP_GATEWAY_COMPONENT", v1.as_str()),
            ],
            "remove one of them",
        ),
        (
            "trap on smoke",
            vec![("BTP_GATEWAY_ROUTES", trap_routes.as_str())],
            "smoke request",
        ),
    ];
    for (name, env, expected) in cases {
        let exit = Gateway::start_expecting_failure(&env, dir.path())
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(exit.status.code(), Some(2), "{name}: {}", exit.stderr);
        assert!(exit.stderr.contains(expected), "{name}: {}", exit.stderr);
    }
}
