//! End-to-end tests of `btp-gateway check` and `btp-gateway call`, which
//! test a component file without a server: the first validates it, the
//! second also runs one request through it with the local destinations.

use std::path::Path;
use std::process::{Command, Output};

use btp_gateway_tests::harness::{CapService, gateway_binary, test_guest, versioned_guest};

/// Runs the gateway binary with `args` and exactly `env` (plus `PATH`) in
/// `dir`.
fn run(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    let binary = gateway_binary().unwrap_or_else(|error| panic!("{error}"));
    let mut command = Command::new(binary);
    command.args(args).current_dir(dir).env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap_or_else(|error| panic!("{error}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_and_rejects() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let v1 = versioned_guest("v1").unwrap_or_else(|error| panic!("{error}"));
    let v1_text = v1.display().to_string();

    let valid = run(&["check", &v1_text], &[], dir.path());
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
    let stdout = text(&valid.stdout);
    assert!(stdout.contains(&format!("valid: {v1_text}")), "{stdout}");
    assert!(stdout.contains("digest: sha256:"), "{stdout}");

    let command = test_guest("test-guest-command").unwrap_or_else(|error| panic!("{error}"));
    let trap = versioned_guest("trap-on-smoke").unwrap_or_else(|error| panic!("{error}"));
    let wrong_digest = format!("sha256:{}", "0".repeat(64));
    let cases: [(Vec<String>, i32, &str); 4] = [
        (
            vec!["check".into(), command.display().to_string()],
            1,
            "wasi:http/incoming-handler",
        ),
        (
            vec!["check".into(), trap.display().to_string()],
            1,
            "the smoke request `GET /` failed",
        ),
        (
            vec![
                "check".into(),
                v1_text.clone(),
                "--digest".into(),
                wrong_digest,
            ],
            1,
            "is pinned: publish the pinned component",
        ),
        (
            vec!["check".into(), "/nonexistent/component.wasm".into()],
            2,
            "cannot read /nonexistent/component.wasm",
        ),
    ];
    for (args, code, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args, &[], dir.path());
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains(expected),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn call_prints_the_response() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let v1 = versioned_guest("v1").unwrap_or_else(|error| panic!("{error}"));
    let output = run(
        &["call", &v1.display().to_string(), "/version"],
        &[],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.contains("x-component-label: v1\n"), "{stdout}");
    let (_, body) = stdout.split_once("\n\n").unwrap_or_default();
    assert_eq!(body.len(), 64 * 1024, "the whole body is printed");
    assert!(
        body.starts_with("v1\nv1\n"),
        "{}",
        &body[..body.len().min(40)]
    );

    let bad = run(
        &["call", &v1.display().to_string(), "/x", "-H", "no colon"],
        &[],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("expected `Name: value`"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn call_reaches_local_destination() {
    let cap = CapService::start().unwrap_or_else(|error| panic!("{error}"));
    let guest = test_guest("btp-gateway-guest").unwrap_or_else(|error| panic!("{error}"));
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let destinations = serde_json::json!([{ "name": "CAP", "url": cap.url() }]).to_string();

    let output = run(
        &[
            "call",
            &guest.display().to_string(),
            "/odata/CAP/odata/v4/orders/Orders?$top=1&$select=ID",
            "-H",
            "Accept: application/json",
        ],
        &[("destinations", &destinations)],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("HTTP/1.1 200 OK\n"), "{stdout}");
    assert!(stdout.contains("\"@odata.context\""), "{stdout}");
    assert!(stdout.contains("\"ID\""), "{stdout}");
}
