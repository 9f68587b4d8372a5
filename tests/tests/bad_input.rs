//! End-to-end tests with hostile and broken input, run against the gateway
//! process: configurations it must reject at start, malformed and oversized
//! requests, a client that sends its headers slowly, backends that
//! misbehave and a Destination service that returns garbage.
//!
//! After every request case the gateway must still respond to `/health`
//! with 200, and no secret of the test may appear in a response body or in the
//! gateway log. Every server listens on 127.0.0.1, and every loop is bounded
//! in count and time.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use btp_gateway_tests::emulator::{ClientConfig, Emulator, EmulatorConfig};
use btp_gateway_tests::harness::{Gateway, GatewayExit, Recorder, get, request_with_body};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

const CLIENT_ID: &str = "sb-gateway-bad-input!b1";
const CLIENT_SECRET: &str = "bad-input-client-secret-5521";
/// A secret written into every configuration the gateway must reject.
const CONFIG_SECRET: &str = "bad-input-config-secret-7f3a";
/// The placeholder that the start-up cases replace with [`CONFIG_SECRET`].
const SECRET_PLACEHOLDER: &str = "@SECRET@";
const BACKEND_USER: &str = "bad-input-user";
const BACKEND_PASSWORD: &str = "bad-input-backend-password-1c9e";
/// A query parameter value that the `destinations` entries add to every
/// backend request.
const API_KEY: &str = "bad-input-api-key-88d2";
/// The caller's token, sent as `Authorization`, `Cookie` and
/// `X-Refresh-Token` with every request.
const CALLER_TOKEN: &str = "bad-input-caller-token-4b1f";
/// A secret that the garbage Destination service puts into its responses.
const SERVICE_SECRET: &str = "bad-input-service-secret-3e6b";

/// An environment variable, unknown to the gateway, that marks each gateway
/// process with its test case, so the test can find the process's id.
const MARKER_VARIABLE: &str = "BAD_INPUT_TEST_CASE";
/// How long a gateway that must fail to start may take to exit.
const START_LIMIT: Duration = Duration::from_secs(20);
/// How long a raw exchange waits for the gateway's response.
const RAW_READ_LIMIT: Duration = Duration::from_secs(5);
/// The request timeout of the gateways that reach misbehaving backends.
const REQUEST_TIMEOUT_SECS: u64 = 2;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// --- Shared helpers ---

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
}

/// The failed checks of a table of cases, reported together at the end, so
/// that one run shows every case that fails.
#[derive(Debug, Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, passed: bool, message: impl FnOnce() -> String) {
        if !passed {
            self.0.push(message());
        }
    }

    /// Records a failure for every secret that occurs in `text`.
    fn check_no_secret(&mut self, case: &str, place: &str, text: &str, secrets: &[String]) {
        for secret in secrets {
            self.check(!text.contains(secret.as_str()), || {
                format!(
                    "{case}: {place} contains the secret {secret}: ...{}...",
                    around(text, secret)
                )
            });
        }
    }

    fn assert_none(self, table: &str) {
        assert!(
            self.0.is_empty(),
            "{table}: {} failed checks:\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// Returns the start of `text`, at most 1500 characters, for messages.
fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 1500;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}... ({} bytes in all)", &text[..end], text.len()),
        None => text.to_owned(),
    }
}

/// Returns up to 120 characters on either side of the first `needle`.
fn around(text: &str, needle: &str) -> String {
    const CONTEXT: usize = 120;
    let Some(start) = text.find(needle) else {
        return String::new();
    };
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(CONTEXT)
        .map_or(0, |(index, _)| index);
    let end = start + needle.len();
    let to = text[end..]
        .char_indices()
        .nth(CONTEXT)
        .map_or(text.len(), |(index, _)| end + index);
    text[from..to].to_owned()
}

/// Returns the secrets of a gateway whose destinations authenticate as
/// [`BACKEND_USER`] and send [`API_KEY`], called with [`CALLER_TOKEN`].
fn request_secrets() -> Vec<String> {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{BACKEND_USER}:{BACKEND_PASSWORD}"));
    vec![
        BACKEND_PASSWORD.to_owned(),
        basic,
        API_KEY.to_owned(),
        CALLER_TOKEN.to_owned(),
    ]
}

/// Returns the caller's credentials, which must stay in the gateway.
fn caller_headers() -> Vec<(String, String)> {
    vec![
        ("authorization".to_owned(), format!("Bearer {CALLER_TOKEN}")),
        ("cookie".to_owned(), format!("session={CALLER_TOKEN}")),
        ("x-refresh-token".to_owned(), CALLER_TOKEN.to_owned()),
    ]
}

/// Returns a `destinations` entry for `url` with Basic authentication and an API
/// key query parameter.
fn destination_entry(name: &str, url: &str) -> serde_json::Value {
    json!({
        "name": name,
        "url": url,
        "username": BACKEND_USER,
        "password": BACKEND_PASSWORD,
        "queryParameters": { "apikey": API_KEY },
    })
}

/// Counts `/health` checks, so that each has its own correlation id.
static HEALTH_CHECKS: AtomicUsize = AtomicUsize::new(0);

/// Follows a gateway's log, so that each case is checked against the lines
/// written since the case before it.
struct LogCursor<'a> {
    gateway: &'a Gateway,
    /// The length of the log already returned. The log only grows, and a
    /// line is appended whole.
    offset: usize,
}

impl<'a> LogCursor<'a> {
    fn new(gateway: &'a Gateway) -> Self {
        Self { gateway, offset: 0 }
    }

    /// Checks that `/health` returns 200 after `case`, and returns the log
    /// lines written since the previous call, up to the health request's
    /// own line.
    async fn health_after(&mut self, case: &str, failures: &mut Failures) -> String {
        let correlation = format!(
            "bad-input-health-{}",
            HEALTH_CHECKS.fetch_add(1, Ordering::SeqCst)
        );
        let url = format!("{}/health", self.gateway.url());
        let health = tokio::time::timeout(
            Duration::from_secs(5),
            get(&url, &[("x-correlationid", &correlation)]),
        )
        .await;
        match health {
            Ok(Ok(response)) => failures.check(response.status == StatusCode::OK, || {
                format!(
                    "{case}: /health answered {} afterwards: {}",
                    response.status,
                    response.text()
                )
            }),
            Ok(Err(error)) => failures
                .0
                .push(format!("{case}: /health failed afterwards: {error}")),
            Err(_) => failures.0.push(format!(
                "{case}: /health did not answer within 5 seconds afterwards"
            )),
        }
        let log = self.gateway.log_after(&correlation);
        let new_lines = log.get(self.offset..).unwrap_or_default().to_owned();
        self.offset = log.len();
        new_lines
    }
}

/// Returns the gateway binary next to the test executable, building it
/// through the harness when it is missing.
fn gateway_binary() -> PathBuf {
    let current = std::env::current_exe().unwrap_or_else(|error| panic!("{error}"));
    let binary = current
        .parent()
        .and_then(Path::parent)
        .map(|profile_dir| profile_dir.join("btp-gateway"))
        .unwrap_or_else(|| panic!("unexpected test executable location {}", current.display()));
    if !binary.exists() {
        // The harness builds a missing binary before it runs it.
        let dir = temp_dir();
        let _ = Gateway::start_expecting_failure(&[("PORT", "not-a-port")], dir.path());
    }
    binary
}

/// Returns the id of this test process's child whose environment sets
/// [`MARKER_VARIABLE`] to `marker`.
fn child_with_marker(marker: &str) -> Option<u32> {
    let parent = std::process::id();
    let expected_variable = format!("{MARKER_VARIABLE}={marker}");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name is in brackets and may contain spaces, so the
        // parent id is found as the second field after the last bracket.
        let parent_of_entry = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|field| field.parse::<u32>().ok());
        if parent_of_entry != Some(parent) {
            continue;
        }
        let Ok(environment) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if environment
            .split(|byte| *byte == 0)
            .any(|variable| variable == expected_variable.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

/// Returns a field of `/proc/{pid}/status` in KiB, such as `VmRSS`.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Sends SIGKILL to a gateway process this test started.
fn kill_process(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

// --- 1. Configurations that stop the start ---

/// A configuration the gateway must reject at start with exit code 2.
struct StartCase {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    files: Vec<(&'static str, Vec<u8>)>,
    /// Pieces the message on stderr must contain.
    expected: Vec<&'static str>,
}

impl StartCase {
    /// Creates a case with one environment variable. `@SECRET@` in `value`
    /// becomes [`CONFIG_SECRET`].
    fn variable(
        name: &'static str,
        variable: &'static str,
        value: &str,
        expected: &[&'static str],
    ) -> Self {
        Self {
            name,
            env: vec![(variable, value.replace(SECRET_PLACEHOLDER, CONFIG_SECRET))],
            files: Vec::new(),
            expected: expected.to_vec(),
        }
    }

    /// Creates a case with one file in the configuration folder. `@SECRET@`
    /// in `content` becomes [`CONFIG_SECRET`].
    fn file(
        name: &'static str,
        file: &'static str,
        content: &str,
        expected: &[&'static str],
    ) -> Self {
        Self::file_bytes(
            name,
            file,
            content
                .replace(SECRET_PLACEHOLDER, CONFIG_SECRET)
                .into_bytes(),
            expected,
        )
    }

    fn file_bytes(
        name: &'static str,
        file: &'static str,
        content: Vec<u8>,
        expected: &[&'static str],
    ) -> Self {
        Self {
            name,
            env: Vec::new(),
            files: vec![(file, content)],
            expected: expected.to_vec(),
        }
    }
}

fn vcap_syntax_cases() -> Vec<StartCase> {
    let expected = &["VCAP_SERVICES", "line 1 column"];
    let case = |name, value: &str| StartCase::variable(name, "VCAP_SERVICES", value, expected);
    vec![
        case(
            "VCAP_SERVICES without its closing brace",
            r#"{"destination": [{"name": "d", "credentials": {"clientsecret": "@SECRET@"}}]"#,
        ),
        case(
            "VCAP_SERVICES with a trailing comma",
            r#"{"destination": [{"name": "d", "credentials": {"clientsecret": "@SECRET@"}},]}"#,
        ),
        case(
            "VCAP_SERVICES in single quotes",
            r#"{'destination': [{'name': 'd', 'credentials': {'clientsecret': '@SECRET@'}}]}"#,
        ),
        case(
            "VCAP_SERVICES with an unquoted value",
            r#"{"destination": [{"name": "d", "credentials": {"clientsecret": @SECRET@}}]}"#,
        ),
        case(
            "VCAP_SERVICES with a control character in a string",
            "{\"destination\": [{\"name\": \"d\", \"credentials\": {\"clientsecret\": \"@SECRET@\u{1}\"}}]}",
        ),
        case(
            "VCAP_SERVICES with text after the object",
            r#"{"destination": []} @SECRET@"#,
        ),
        case("VCAP_SERVICES that is empty", ""),
        case(
            "VCAP_SERVICES nested 50000 levels deep",
            &format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
        ),
        StartCase::variable(
            "VCAP_SERVICES with a syntax error on line 3",
            "VCAP_SERVICES",
            "{\n  \"destination\": [\n    {\"name\": \"d\",, \"credentials\": {\"clientsecret\": \"@SECRET@\"}}\n  ]\n}",
            &["VCAP_SERVICES", "line 3 column"],
        ),
    ]
}

fn vcap_shape_cases() -> Vec<StartCase> {
    let expected = &["VCAP_SERVICES", "unexpected structure"];
    let case = |name, value: &str| StartCase::variable(name, "VCAP_SERVICES", value, expected);
    vec![
        case("VCAP_SERVICES that is a string", r#""@SECRET@""#),
        case(
            "VCAP_SERVICES that is a list",
            r#"[{"name": "d", "label": "destination", "credentials": {"clientsecret": "@SECRET@"}}]"#,
        ),
        case("VCAP_SERVICES that is a number", "42"),
        case("VCAP_SERVICES that is null", "null"),
        case(
            "VCAP_SERVICES with a service that is not a list",
            r#"{"destination": {"name": "d", "credentials": {"clientsecret": "@SECRET@"}}}"#,
        ),
        case(
            "VCAP_SERVICES with a binding that is a string",
            r#"{"destination": ["@SECRET@"]}"#,
        ),
        case(
            "VCAP_SERVICES with a binding without a name",
            r#"{"destination": [{"label": "destination", "credentials": {"clientsecret": "@SECRET@"}}]}"#,
        ),
        case(
            "VCAP_SERVICES with a numeric binding name",
            r#"{"destination": [{"name": 7, "credentials": {"clientsecret": "@SECRET@"}}]}"#,
        ),
        case(
            "VCAP_SERVICES with tags that are a string",
            r#"{"destination": [{"name": "d", "tags": "@SECRET@", "credentials": {}}]}"#,
        ),
    ]
}

fn binding_cases() -> Vec<StartCase> {
    let case = |name, value: &str, expected: &[&'static str]| {
        StartCase::variable(name, "VCAP_SERVICES", value, expected)
    };
    vec![
        case(
            "destination binding without credentials",
            r#"{"destination": [{"name": "my-destination", "label": "destination"}]}"#,
            &["VCAP_SERVICES", "'my-destination'", "clientid"],
        ),
        case(
            "destination binding with null credentials",
            r#"{"destination": [{"name": "my-destination", "label": "destination", "credentials": null}]}"#,
            &["VCAP_SERVICES", "'my-destination'", "clientid"],
        ),
        case(
            "destination binding with credentials that are a string",
            r#"{"destination": [{"name": "my-destination", "label": "destination", "credentials": "@SECRET@"}]}"#,
            &["VCAP_SERVICES", "'my-destination'", "clientid"],
        ),
        case(
            "destination binding without uri",
            r#"{"destination": [{"name": "my-destination", "label": "destination", "credentials":
                {"clientid": "c", "clientsecret": "@SECRET@", "url": "https://uaa.example"}}]}"#,
            &["VCAP_SERVICES", "'my-destination'", "'uri'"],
        ),
        case(
            "destination binding with an invalid url",
            r#"{"destination": [{"name": "my-destination", "label": "destination", "credentials":
                {"clientid": "c", "clientsecret": "@SECRET@", "url": "https://[@SECRET@", "uri": "https://d.example"}}]}"#,
            &[
                "VCAP_SERVICES",
                "'my-destination'",
                "'url' is not a valid URL",
            ],
        ),
        case(
            "destination binding with an unknown credential type",
            r#"{"destination": [{"name": "my-destination", "label": "destination", "credentials":
                {"credential-type": "magic", "clientid": "c", "clientsecret": "@SECRET@"}}]}"#,
            &["VCAP_SERVICES", "'my-destination'", "credential-type"],
        ),
        StartCase::variable(
            "destination binding chosen by a name that does not exist",
            "BTP_GATEWAY_DESTINATION_BINDING",
            "no-such-binding",
            &["VCAP_SERVICES", "'no-such-binding'"],
        ),
    ]
}

fn dotenv_cases() -> Vec<StartCase> {
    let case = |name, content: &str, expected: &[&'static str]| {
        StartCase::file(name, ".env", content, expected)
    };
    vec![
        case(
            ".env line without '='",
            "CLIENT_ID=abc\nCLIENT_SECRET @SECRET@\n",
            &[".env: line 2", "NAME=VALUE"],
        ),
        case(
            ".env name starting with a digit",
            "9CLIENT_SECRET=@SECRET@\n",
            &[".env: line 1", "'9CLIENT_SECRET'"],
        ),
        case(
            ".env name with a space",
            "CLIENT SECRET=@SECRET@\n",
            &[".env: line 1", "the variable name"],
        ),
        case(
            ".env single quote without its end",
            "CLIENT_ID=abc\nCLIENT_SECRET='@SECRET@\n",
            &[".env: line 2", "CLIENT_SECRET", "closing '"],
        ),
        case(
            ".env double quote that ends in a backslash",
            "CLIENT_SECRET=\"@SECRET@\\\n",
            &[".env: line 1", "CLIENT_SECRET", "closing \""],
        ),
        case(
            ".env variable set twice",
            "CLIENT_SECRET=@SECRET@\nCLIENT_ID=abc\nCLIENT_SECRET=@SECRET@-2\n",
            &[".env: line 3", "'CLIENT_SECRET' is set twice", "line 1"],
        ),
        StartCase::file_bytes(
            ".env that is not UTF-8",
            ".env",
            [
                b"CLIENT_SECRET=".as_slice(),
                b"\xff\xfe",
                CONFIG_SECRET.as_bytes(),
            ]
            .concat(),
            &[".env", "UTF-8"],
        ),
        case(
            ".env with an invalid BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES",
            "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES=@SECRET@\n",
            &[".env: BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES", "true or false"],
        ),
        case(
            ".env with invalid destinations",
            "destinations=[{\"name\": \"A\", \"password\": \"@SECRET@\"\n",
            &[".env: destinations", "not valid JSON"],
        ),
    ]
}

fn default_env_cases() -> Vec<StartCase> {
    let case = |name, content: &str, expected: &[&'static str]| {
        StartCase::file(name, "default-env.json", content, expected)
    };
    vec![
        case(
            "default-env.json with a trailing comma",
            r#"{"VCAP_SERVICES": {"destination": []}, "CLIENT_SECRET": "@SECRET@",}"#,
            &["default-env.json", "line 1 column"],
        ),
        case(
            "default-env.json without its closing brace",
            "{\n  \"CLIENT_SECRET\": \"@SECRET@\"\n",
            &["default-env.json", "line 3 column"],
        ),
        case(
            "default-env.json that is a list",
            r#"["@SECRET@"]"#,
            &["default-env.json", "expected a JSON object"],
        ),
        case("default-env.json that is empty", "", &["default-env.json"]),
        case(
            "default-env.json nested 50000 levels deep",
            &format!(r#"{{"A": {}{}}}"#, "[".repeat(50_000), "]".repeat(50_000)),
            &["default-env.json"],
        ),
        case(
            "default-env.json with VCAP_SERVICES text that is not JSON",
            r#"{"VCAP_SERVICES": "{\"destination\": [@SECRET@"}"#,
            &["VCAP_SERVICES from default-env.json"],
        ),
        case(
            "default-env.json with VCAP_SERVICES that is a list",
            r#"{"VCAP_SERVICES": ["@SECRET@"]}"#,
            &[
                "VCAP_SERVICES from default-env.json",
                "unexpected structure",
            ],
        ),
        case(
            "default-env.json with an invalid BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES",
            r#"{"BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES": "@SECRET@"}"#,
            &[
                "default-env.json: BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES",
                "true or false",
            ],
        ),
    ]
}

fn destinations_cases() -> Vec<StartCase> {
    let case = |name, value: &str, expected: &[&'static str]| {
        StartCase::variable(name, "destinations", value, expected)
    };
    vec![
        case(
            "destinations that is not JSON",
            r#"[{"name": "A", "url": "http://127.0.0.1:1", "password": @SECRET@}]"#,
            &["destinations", "not valid JSON", "line 1 column"],
        ),
        case(
            "destinations that is an object",
            r#"{"name": "A", "url": "http://127.0.0.1:1", "password": "@SECRET@"}"#,
            &["destinations", "must be a JSON list"],
        ),
        case(
            "destinations entry that is a string",
            r#"["@SECRET@"]"#,
            &["destinations", "entry 0 is not a JSON object"],
        ),
        case(
            "destinations entry with a misspelt field",
            r#"[{"name": "A", "url": "http://127.0.0.1:1", "passwort": "@SECRET@"}]"#,
            &["destinations", "entry 0 ('A')", "passwort"],
        ),
        case(
            "destinations entry without url",
            r#"[{"name": "A", "password": "@SECRET@"}]"#,
            &["destinations", "entry 0 ('A')", "'URL' is missing"],
        ),
        case(
            "destinations entry with an invalid url",
            r#"[{"name": "A", "url": "http://[@SECRET@"}]"#,
            &["destinations", "entry 0 ('A')", "'URL' is not a valid URL"],
        ),
        case(
            "destinations entry with credentials in its url",
            r#"[{"name": "A", "url": "http://user:@SECRET@@127.0.0.1:1"}]"#,
            &[
                "destinations",
                "entry 0 ('A')",
                "must not contain credentials",
            ],
        ),
        case(
            "destinations entry with a password that is an object",
            r#"[{"name": "A", "url": "http://127.0.0.1:1", "password": {"value": "@SECRET@"}}]"#,
            &[
                "destinations",
                "entry 0 ('A')",
                "'Password' must be a string",
            ],
        ),
        case(
            "destinations entry with headers that are a string",
            r#"[{"name": "A", "url": "http://127.0.0.1:1", "headers": "x-api-key: @SECRET@"}]"#,
            &[
                "destinations",
                "entry 0 ('A')",
                "'headers' must be an object",
            ],
        ),
        case(
            "destinations entry with an invalid header name",
            r#"[{"name": "A", "url": "http://127.0.0.1:1", "headers": {"bad header": "@SECRET@"}}]"#,
            &["destinations", "entry 0 ('A')", "bad header"],
        ),
        case(
            "destinations entries with one name twice",
            r#"[{"name": "A", "url": "http://127.0.0.1:1"}, {"name": "A", "url": "http://127.0.0.1:2", "password": "@SECRET@"}]"#,
            &["destinations", "entry 1", "used twice"],
        ),
        case(
            "destinations nested 50000 levels deep",
            &format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
            &["destinations", "not valid JSON"],
        ),
    ]
}

fn policy_cases() -> Vec<StartCase> {
    let case = |name, value: &str, expected: &[&'static str]| {
        StartCase::variable(name, "BTP_GATEWAY_DESTINATION_POLICIES", value, expected)
    };
    vec![
        case(
            "policies that are not JSON",
            r#"{"S4": {"readOnly": @SECRET@}}"#,
            &[
                "BTP_GATEWAY_DESTINATION_POLICIES",
                "JSON object",
                "line 1 column",
            ],
        ),
        case(
            "policy with a misspelt field",
            r#"{"S4": {"readonly": true, "x": "@SECRET@"}}"#,
            &[
                "BTP_GATEWAY_DESTINATION_POLICIES",
                "unknown field `readonly`",
            ],
        ),
        case(
            "policy path without leading slash",
            r#"{"S4": {"servicePaths": ["sap/opu/odata/sap/API_X"]}}"#,
            &[
                "BTP_GATEWAY_DESTINATION_POLICIES",
                "'sap/opu/odata/sap/API_X'",
                "starts with '/'",
            ],
        ),
        case(
            "policy path with a dot segment",
            r#"{"S4": {"servicePaths": ["/sap/../x"]}}"#,
            &[
                "BTP_GATEWAY_DESTINATION_POLICIES",
                "'/sap/../x'",
                "'..' segment",
            ],
        ),
    ]
}

fn variable_cases() -> Vec<StartCase> {
    let port = |name, value: &str| {
        StartCase::variable(name, "PORT", value, &["PORT", "not a port number"])
    };
    vec![
        port("PORT that is a word", "eighty"),
        port("PORT above 65535", "65536"),
        port("PORT that is negative", "-1"),
        port("PORT that is empty", ""),
        port("PORT with two numbers", "80 80"),
        StartCase::variable(
            "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES that is not a boolean",
            "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES",
            "yes",
            &["BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES", "true or false"],
        ),
        StartCase::variable(
            "VCAP_SERVICES_FILE_PATH naming a missing file",
            "VCAP_SERVICES_FILE_PATH",
            "/nonexistent/bad-input/vcap.json",
            &[
                "VCAP_SERVICES_FILE_PATH",
                "/nonexistent/bad-input/vcap.json",
            ],
        ),
    ]
}

/// Options read by the command-line parser, which also reads their
/// variables.
fn option_cases() -> Vec<StartCase> {
    vec![
        StartCase::variable(
            "BTP_GATEWAY_REQUEST_TIMEOUT_SECS that is a word",
            "BTP_GATEWAY_REQUEST_TIMEOUT_SECS",
            "soon",
            &[
                "BTP_GATEWAY_REQUEST_TIMEOUT_SECS",
                "'soon'",
                "--request-timeout-secs",
            ],
        ),
        StartCase::variable(
            "BTP_GATEWAY_MAX_REQUEST_BODY_MIB that is negative",
            "BTP_GATEWAY_MAX_REQUEST_BODY_MIB",
            "-1",
            &[
                "BTP_GATEWAY_MAX_REQUEST_BODY_MIB",
                "'-1'",
                "--max-request-body-mib",
            ],
        ),
        StartCase::variable(
            "BTP_GATEWAY_LOG_FORMAT that is unknown",
            "BTP_GATEWAY_LOG_FORMAT",
            "xml",
            &["BTP_GATEWAY_LOG_FORMAT", "'xml'", "--log-format"],
        ),
    ]
}

/// Runs the gateway where it must fail to start, for at most
/// [`START_LIMIT`]. A gateway still running then is found by its marker and
/// killed, and the case fails.
fn run_failing_start(
    env: &[(&str, String)],
    dir: &Path,
    marker: &str,
) -> Result<GatewayExit, String> {
    let mut owned: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect();
    owned.push((MARKER_VARIABLE.to_owned(), marker.to_owned()));
    let dir = dir.to_path_buf();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let env: Vec<(&str, &str)> = owned
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let _ = sender.send(Gateway::start_expecting_failure(&env, &dir));
    });

    match receiver.recv_timeout(START_LIMIT) {
        Ok(result) => result.map_err(|error| format!("the gateway could not be run: {error}")),
        Err(_) => {
            let pid = child_with_marker(marker);
            if let Some(pid) = pid {
                kill_process(pid);
            }
            let stderr = receiver
                .recv_timeout(Duration::from_secs(5))
                .ok()
                .and_then(Result::ok)
                .map(|exit| exit.stderr)
                .unwrap_or_default();
            Err(format!(
                "the gateway was still running after {START_LIMIT:?} (process {pid:?} killed); its output: {}",
                excerpt(&stderr)
            ))
        }
    }
}

/// Runs each case and checks its exit code, its message and that the
/// message quotes no secret.
fn check_start_cases(cases: &[StartCase], table: &str) {
    let secrets = [CONFIG_SECRET.to_owned()];
    let mut failures = Failures::default();

    for case in cases {
        let dir = temp_dir();
        for (file, content) in &case.files {
            std::fs::write(dir.path().join(file), content)
                .unwrap_or_else(|error| panic!("{error}"));
        }
        let exit = match run_failing_start(&case.env, dir.path(), case.name) {
            Ok(exit) => exit,
            Err(problem) => {
                failures.0.push(format!("{}: {problem}", case.name));
                continue;
            }
        };

        failures.check(exit.status.code() == Some(2), || {
            format!(
                "{}: exited with {} instead of exit code 2: {}",
                case.name,
                exit.status,
                excerpt(&exit.stderr)
            )
        });
        for piece in &case.expected {
            failures.check(exit.stderr.contains(piece), || {
                format!(
                    "{}: the message does not contain {piece:?}: {}",
                    case.name,
                    excerpt(&exit.stderr)
                )
            });
        }
        failures.check_no_secret(case.name, "the message", &exit.stderr, &secrets);
    }
    failures.assert_none(table);
}

#[test]
fn bad_config_stops_start() {
    let cases: Vec<StartCase> = [
        vcap_syntax_cases(),
        vcap_shape_cases(),
        binding_cases(),
        dotenv_cases(),
        default_env_cases(),
        destinations_cases(),
        policy_cases(),
        variable_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    check_start_cases(&cases, "bad configuration cases");
}

#[test]
fn dotenv_name_error_hides_value() {
    let cases = [StartCase::file(
        ".env with ': ' and a base64 secret ending in '='",
        ".env",
        "CLIENT_SECRET: @SECRET@==\n",
        &[".env: line 1"],
    )];
    check_start_cases(&cases, "invalid .env name cases");
}

#[test]
fn option_errors_name_variable() {
    check_start_cases(&option_cases(), "option cases");
}

#[test]
fn missing_component_exits_2() {
    let cases = [StartCase::variable(
        "BTP_GATEWAY_COMPONENT naming a missing file",
        "BTP_GATEWAY_COMPONENT",
        "/nonexistent/bad-input/component.wasm",
        &["/nonexistent/bad-input/component.wasm"],
    )];
    check_start_cases(&cases, "component cases");
}

#[test]
fn vcap_services_not_utf8() {
    use std::os::unix::ffi::OsStrExt as _;

    let binary = gateway_binary();
    let dir = temp_dir();
    let value = [
        br#"{"destination": [{"name": "d", "credentials": {"clientsecret": ""#.as_slice(),
        b"\xff",
        CONFIG_SECRET.as_bytes(),
        br#""}}]}"#,
    ]
    .concat();
    let mut child = Command::new(binary)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("BTP_GATEWAY_LOG_FORMAT", "text")
        .env("VCAP_SERVICES", std::ffi::OsStr::from_bytes(&value))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{error}"));
    let stderr = child.stderr.take();
    let output = Arc::new(Mutex::new(String::new()));
    let reader = {
        let output = output.clone();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let Some(stderr) = stderr else { return };
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut output = output.lock().unwrap_or_else(PoisonError::into_inner);
                output.push_str(&line);
                output.push('\n');
            }
        })
    };

    let deadline = Instant::now() + START_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|error| panic!("{error}")) {
            break Some(status);
        }
        let listening = output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains("listening on");
        if listening || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = reader.join();
    let output = output
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();

    assert!(
        status.is_some(),
        "the gateway started although VCAP_SERVICES is not UTF-8: {}",
        excerpt(&output)
    );
    assert_eq!(status.and_then(|status| status.code()), Some(2), "{output}");
    assert!(output.contains("VCAP_SERVICES"), "{output}");
    assert!(!output.contains(CONFIG_SECRET), "{output}");
}

/// Runs the gateway with `variable` set to `value`, which need not be UTF-8,
/// for at most [`START_LIMIT`]. Returns the exit status, or `None` when the
/// gateway was still running and was killed, and what it wrote to stderr.
fn run_with_raw_variable(variable: &str, value: &[u8]) -> (Option<ExitStatus>, String) {
    use std::os::unix::ffi::OsStrExt as _;

    let binary = gateway_binary();
    let dir = temp_dir();
    let stderr_path = dir.path().join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).unwrap_or_else(|error| panic!("{error}"));
    let mut child = Command::new(binary)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("BTP_GATEWAY_LOG_FORMAT", "text")
        .env(variable, std::ffi::OsStr::from_bytes(value))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap_or_else(|error| panic!("{error}"));

    let deadline = Instant::now() + START_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|error| panic!("{error}")) {
            break Some(status);
        }
        let output = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        if output.contains("listening on") || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read(&stderr_path).unwrap_or_default();
    (status, String::from_utf8_lossy(&output).into_owned())
}

#[test]
fn variables_not_utf8_stop_start() {
    let variables = [
        "PORT",
        "destinations",
        "VCAP_APPLICATION",
        "CF_INSTANCE_INDEX",
        "RUST_LOG",
        "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES",
        "BTP_GATEWAY_MAX_INSTANCES",
        "BTP_GATEWAY_LOG_FORMAT",
        "BTP_GATEWAY_HEADER_READ_TIMEOUT_SECS",
    ];
    let mut failures = Failures::default();

    for variable in variables {
        let (status, output) = run_with_raw_variable(variable, b"abc\xffdef");

        failures.check(status.is_some(), || {
            format!("{variable}: the gateway started: {}", excerpt(&output))
        });
        failures.check(status.and_then(|status| status.code()) == Some(2), || {
            format!(
                "{variable}: exited with {status:?} instead of exit code 2: {}",
                excerpt(&output)
            )
        });
        let expected = format!("{variable} is set but its value is not valid UTF-8");
        failures.check(output.contains(&expected), || {
            format!(
                "{variable}: the message does not name it: {}",
                excerpt(&output)
            )
        });
    }
    failures.assert_none("variables that are not UTF-8");
}

/// Returns `VCAP_SERVICES` with `count` user-provided bindings that no part
/// of the gateway uses, each with about 1 KiB of credentials.
fn pointless_bindings(count: usize) -> serde_json::Value {
    let bindings: Vec<serde_json::Value> = (0..count)
        .map(|index| {
            json!({
                "name": format!("unused-{index}"),
                "label": "user-provided",
                "tags": ["padding"],
                "credentials": { "clientsecret": CONFIG_SECRET, "padding": "p".repeat(KIB) },
            })
        })
        .collect();
    json!({ "user-provided": bindings })
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bindings_load() {
    // Linux limits one environment string to 128 KiB, so the variable
    // stays below that, and the files are 4 MiB.
    let in_variable = pointless_bindings(100).to_string();
    let in_file = pointless_bindings(4 * KIB).to_string();
    assert!(in_variable.len() > 100 * KIB, "{}", in_variable.len());
    assert!(in_file.len() > 4 * MIB, "{}", in_file.len());
    let default_env = format!(r#"{{"VCAP_SERVICES": {in_file}}}"#);
    let mut failures = Failures::default();

    for source in [
        "VCAP_SERVICES",
        "VCAP_SERVICES_FILE_PATH",
        "default-env.json",
    ] {
        let dir = temp_dir();
        let vcap_file = dir.path().join("vcap.json");
        let vcap_path = vcap_file.display().to_string();
        let env: Vec<(&str, &str)> = match source {
            "VCAP_SERVICES" => vec![("VCAP_SERVICES", in_variable.as_str())],
            "VCAP_SERVICES_FILE_PATH" => {
                std::fs::write(&vcap_file, &in_file).unwrap_or_else(|error| panic!("{error}"));
                vec![("VCAP_SERVICES_FILE_PATH", vcap_path.as_str())]
            }
            _ => {
                std::fs::write(dir.path().join("default-env.json"), &default_env)
                    .unwrap_or_else(|error| panic!("{error}"));
                Vec::new()
            }
        };

        let started = Instant::now();
        let gateway = match Gateway::start(&env, dir.path()) {
            Ok(gateway) => gateway,
            Err(error) => {
                failures.0.push(format!(
                    "oversized {source}: the gateway did not start: {}",
                    excerpt(&error.to_string())
                ));
                continue;
            }
        };
        let elapsed = started.elapsed();
        eprintln!("oversized {source}: the gateway started in {elapsed:?}");
        failures.check(elapsed < Duration::from_secs(30), || {
            format!("oversized {source}: the start took {elapsed:?}")
        });
        let case = format!("oversized {source}");
        let log = LogCursor::new(&gateway)
            .health_after(&case, &mut failures)
            .await;
        failures.check_no_secret(&case, "the log", &log, &[CONFIG_SECRET.to_owned()]);
    }
    failures.assert_none("oversized binding cases");
}

// --- 2. Requests ---

/// A request sent with hyper's client, and the response the gateway must
/// give.
struct RequestCase {
    name: &'static str,
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    status: StatusCode,
    /// The error code the body must contain, or empty when the backend
    /// responds.
    code: &'static str,
}

impl RequestCase {
    fn new(
        name: &'static str,
        method: Method,
        target: impl Into<String>,
        status: StatusCode,
        code: &'static str,
    ) -> Self {
        Self {
            name,
            method,
            target: target.into(),
            headers: Vec::new(),
            body: Bytes::new(),
            status,
            code,
        }
    }

    fn get(
        name: &'static str,
        target: impl Into<String>,
        status: StatusCode,
        code: &'static str,
    ) -> Self {
        Self::new(name, Method::GET, target, status, code)
    }

    fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

fn request_cases() -> Vec<RequestCase> {
    use StatusCode as S;
    let filler = |count: usize, size: usize| -> Vec<(String, String)> {
        (0..count)
            .map(|index| (format!("x-filler-{index}"), "f".repeat(size)))
            .collect()
    };

    let mut cases = vec![
        RequestCase::get(
            "percent-encoded byte FF",
            "/odata/%FF/x",
            S::BAD_REQUEST,
            "InvalidDestinationName",
        ),
        RequestCase::get(
            "truncated UTF-8 sequence",
            "/odata/%C3/x",
            S::BAD_REQUEST,
            "InvalidDestinationName",
        ),
        RequestCase::get(
            "percent-encoded NUL",
            "/odata/%00/x",
            S::NOT_FOUND,
            "DestinationNotFound",
        ),
        RequestCase::get(
            "empty destination",
            "/odata/",
            S::BAD_REQUEST,
            "MissingDestination",
        ),
        RequestCase::get(
            "empty destination segment",
            "/odata//Books",
            S::BAD_REQUEST,
            "MissingDestination",
        ),
        RequestCase::get("prefix without a slash", "/odata", S::NOT_FOUND, "NotFound"),
        RequestCase::get(
            "unknown destination",
            "/odata/NOPE/Books",
            S::NOT_FOUND,
            "DestinationNotFound",
        ),
        RequestCase::get("root path", "/", S::NOT_FOUND, "NotFound"),
        RequestCase::get(
            "path outside /odata/",
            "/somewhere/else",
            S::NOT_FOUND,
            "NotFound",
        ),
        RequestCase::get(
            "prefix in upper case",
            "/ODATA/ECHO/x",
            S::NOT_FOUND,
            "NotFound",
        ),
        RequestCase::get(
            "dot segments before the prefix",
            "/health/../odata/ECHO/x",
            S::NOT_FOUND,
            "NotFound",
        ),
        RequestCase::get(
            "service path of 16 KiB",
            format!("/odata/ECHO/{}", "p".repeat(16 * KIB)),
            S::OK,
            "",
        ),
        RequestCase::get(
            "destination name of 16 KiB",
            format!("/odata/{}/x", "N".repeat(16 * KIB)),
            S::NOT_FOUND,
            "DestinationNotFound",
        ),
        // hyper's client sends at most 64 KiB of path and query.
        RequestCase::get(
            "query of 60 KiB",
            format!("/odata/ECHO/x?$filter={}", "q".repeat(60 * KIB)),
            S::OK,
            "",
        ),
        RequestCase::get("90 headers of 1 KiB", "/odata/ECHO/x", S::OK, "")
            .with_headers(filler(90, KIB)),
        RequestCase::get("one header of 100 KiB", "/odata/ECHO/x", S::OK, "")
            .with_headers(filler(1, 100 * KIB)),
        RequestCase::get("Accept header of 100 KiB", "/odata/ECHO/x", S::OK, "")
            .with_headers(vec![("accept".to_owned(), "a".repeat(100 * KIB))]),
        RequestCase::get("correlation id of 100 KiB", "/odata/ECHO/x", S::OK, "")
            .with_headers(vec![("x-correlationid".to_owned(), "c".repeat(100 * KIB))]),
    ];
    // POST, PUT, PATCH, MERGE and DELETE are writes the gateway forwards.
    for method in ["OPTIONS", "TRACE", "PURGE", "PROPFIND", "CONNECT"] {
        let method =
            Method::from_bytes(method.as_bytes()).unwrap_or_else(|error| panic!("{error}"));
        cases.push(RequestCase::new(
            "unsupported method",
            method,
            "/odata/ECHO/x",
            S::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
        ));
    }
    cases
}

/// A request sent as raw bytes, for input that hyper's client cannot send.
struct RawCase {
    name: &'static str,
    request: Vec<u8>,
    /// The expected status, or `None` when the gateway must close the
    /// connection without a response.
    status: Option<u16>,
    /// The error code the body must contain, if any.
    code: &'static str,
}

/// Builds a raw request with the caller's credentials, a `Host` header and
/// `extra` header lines, each ending in CRLF.
fn raw_request(request_line: &str, extra: &str) -> Vec<u8> {
    format!(
        "{request_line}\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {CALLER_TOKEN}\r\n{extra}\r\n"
    )
    .into_bytes()
}

fn raw_cases() -> Vec<RawCase> {
    let case = |name, request, status, code| RawCase {
        name,
        request,
        status,
        code,
    };
    let many_headers: String = (0..200)
        .map(|index| format!("x-filler-{index}: {}\r\n", "f".repeat(KIB)))
        .collect();
    vec![
        case(
            "200 headers of 1 KiB",
            raw_request("GET /odata/ECHO/x HTTP/1.1", &many_headers),
            Some(431),
            "",
        ),
        case(
            "one header of 600 KiB",
            raw_request(
                "GET /odata/ECHO/x HTTP/1.1",
                &format!("x-big: {}\r\n", "b".repeat(600 * KIB)),
            ),
            Some(431),
            "",
        ),
        case(
            "path of 600 KiB",
            raw_request(
                &format!("GET /odata/ECHO/{} HTTP/1.1", "p".repeat(600 * KIB)),
                "",
            ),
            Some(431),
            "",
        ),
        case(
            "declared body of 10 GiB that never comes",
            raw_request(
                "POST /odata/ECHO/x HTTP/1.1",
                "Content-Length: 10737418240\r\n",
            ),
            Some(413),
            "PayloadTooLarge",
        ),
        case(
            "Content-Length that is not a number",
            raw_request("GET /odata/ECHO/x HTTP/1.1", "Content-Length: abc\r\n"),
            Some(400),
            "",
        ),
        case(
            "two different Content-Length headers",
            raw_request(
                "GET /odata/ECHO/x HTTP/1.1",
                "Content-Length: 1\r\nContent-Length: 2\r\n",
            ),
            Some(400),
            "",
        ),
        case(
            "request line that is not HTTP",
            raw_request("GARBAGE", ""),
            Some(400),
            "",
        ),
        case(
            "unknown HTTP version",
            raw_request("GET /odata/ECHO/x HTTP/9.9", ""),
            Some(400),
            "",
        ),
        case(
            "header line without a colon",
            raw_request("GET /odata/ECHO/x HTTP/1.1", "no-colon-here\r\n"),
            Some(400),
            "",
        ),
        case(
            "NUL byte in a header value",
            raw_request("GET /odata/ECHO/x HTTP/1.1", "x-nul: a\0b\r\n"),
            Some(400),
            "",
        ),
        case(
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            None,
            "",
        ),
        case(
            "absolute-form target with a reserved host",
            raw_request("GET http://destination.invalid/odata/ECHO/x HTTP/1.1", ""),
            Some(200),
            "",
        ),
        case(
            "CONNECT request",
            raw_request("CONNECT destination.invalid:443 HTTP/1.1", ""),
            Some(405),
            "MethodNotAllowed",
        ),
        case("empty lines only", b"\r\n\r\n\r\n".to_vec(), None, ""),
    ]
}

/// The response to a raw request.
#[derive(Debug)]
struct RawResponse {
    /// The status code, or `None` when the connection closed without a
    /// response.
    status: Option<u16>,
    /// Everything received, as text.
    text: String,
}

/// Sends `request` as it is and reads the first response, for at most
/// [`RAW_READ_LIMIT`].
async fn send_raw(address: &str, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(address)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {address}: {error}"));
    // The gateway may reject a request and close the connection before it
    // read all of it, so a failed write is no failure here.
    let _ = stream.write_all(request).await;

    let mut received = Vec::new();
    let mut buffer = vec![0; 64 * KIB];
    let deadline = Instant::now() + RAW_READ_LIMIT;
    while received.len() < MIB && !response_complete(&received) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(count)) => received.extend_from_slice(&buffer[..count]),
        }
    }
    let text = String::from_utf8_lossy(&received).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    RawResponse { status, text }
}

/// Tells whether `bytes` hold a whole response with a `Content-Length`.
fn response_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    length.is_some_and(|length| bytes.len() >= end + 4 + length)
}

/// Starts a gateway whose destination `ECHO` is `recorder`, with a body
/// limit of 1 MiB and `marker` in its environment.
fn start_echo_gateway(recorder: &Recorder, marker: &str, dir: &Path) -> Gateway {
    let destinations = json!([destination_entry("ECHO", recorder.url())]).to_string();
    Gateway::start(
        &[
            ("destinations", &destinations),
            ("BTP_GATEWAY_MAX_REQUEST_BODY_MIB", "1"),
            (MARKER_VARIABLE, marker),
        ],
        dir,
    )
    .unwrap_or_else(|error| panic!("{error}"))
}

/// Sends each case through hyper's client and checks the status, the error
/// code and that neither the response nor the log contains a secret.
async fn check_request_cases(
    cases: Vec<RequestCase>,
    log: &mut LogCursor<'_>,
    failures: &mut Failures,
) {
    let secrets = request_secrets();
    for case in cases {
        let name = format!(
            "{} {} {}",
            case.name,
            case.method,
            excerpt_target(&case.target)
        );
        let url = format!("{}{}", log.gateway.url(), case.target);
        let mut headers = caller_headers();
        headers.extend(case.headers);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(header, value)| (header.as_str(), value.as_str()))
            .collect();
        match request_with_body(case.method, &url, &headers, case.body).await {
            Ok(response) => {
                failures.check(response.status == case.status, || {
                    format!(
                        "{name}: status {} instead of {}: {}",
                        response.status,
                        case.status,
                        excerpt(&response.text())
                    )
                });
                failures.check(response.text().contains(case.code), || {
                    format!(
                        "{name}: the body does not contain {:?}: {}",
                        case.code,
                        excerpt(&response.text())
                    )
                });
                failures.check_no_secret(&name, "the response", &response.text(), &secrets);
            }
            Err(error) => failures
                .0
                .push(format!("{name}: the request failed: {error}")),
        }
        let lines = log.health_after(&name, failures).await;
        failures.check_no_secret(&name, "the log", &lines, &secrets);
    }
}

/// Sends each case as raw bytes and checks the status, the error code and
/// that neither the response nor the log contains a secret.
async fn check_raw_cases(cases: Vec<RawCase>, log: &mut LogCursor<'_>, failures: &mut Failures) {
    let secrets = request_secrets();
    let address = log.gateway.url().trim_start_matches("http://").to_owned();
    for case in cases {
        let response = send_raw(&address, &case.request).await;
        failures.check(response.status == case.status, || {
            format!(
                "{}: status {:?} instead of {:?}: {}",
                case.name,
                response.status,
                case.status,
                excerpt(&response.text)
            )
        });
        failures.check(response.text.contains(case.code), || {
            format!(
                "{}: the response does not contain {:?}: {}",
                case.name,
                case.code,
                excerpt(&response.text)
            )
        });
        failures.check_no_secret(case.name, "the response", &response.text, &secrets);
        let lines = log.health_after(case.name, failures).await;
        failures.check_no_secret(case.name, "the log", &lines, &secrets);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests() {
    let recorder = Recorder::start()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = temp_dir();
    let gateway = start_echo_gateway(&recorder, "bad-requests", dir.path());
    let mut log = LogCursor::new(&gateway);
    let mut failures = Failures::default();

    check_request_cases(request_cases(), &mut log, &mut failures).await;
    check_raw_cases(raw_cases(), &mut log, &mut failures).await;
    failures.assert_none("bad request cases");
}

#[tokio::test(flavor = "multi_thread")]
async fn sent_body_over_limit_is_413() {
    let recorder = Recorder::start()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = temp_dir();
    let gateway = start_echo_gateway(&recorder, "sent-body-over-limit", dir.path());
    let mut log = LogCursor::new(&gateway);
    let mut failures = Failures::default();
    let over_limit = Bytes::from(vec![b'x'; 2 * MIB]);
    let cases = vec![
        RequestCase::new(
            "POST body over the limit",
            Method::POST,
            "/odata/ECHO/x",
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
        )
        .with_body(over_limit.clone()),
        RequestCase::get(
            "GET body over the limit",
            "/odata/ECHO/x",
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
        )
        .with_body(over_limit),
    ];

    check_request_cases(cases, &mut log, &mut failures).await;
    failures.assert_none("sent body cases");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_percent_encoding_is_400() {
    let recorder = Recorder::start()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = temp_dir();
    let gateway = start_echo_gateway(&recorder, "invalid-percent-encoding", dir.path());
    let mut log = LogCursor::new(&gateway);
    let mut failures = Failures::default();
    let cases = vec![
        RequestCase::get(
            "invalid percent-encoding %ZZ",
            "/odata/%ZZ/x",
            StatusCode::BAD_REQUEST,
            "InvalidDestinationName",
        ),
        RequestCase::get(
            "lone percent sign",
            "/odata/%/x",
            StatusCode::BAD_REQUEST,
            "InvalidDestinationName",
        ),
    ];

    check_request_cases(cases, &mut log, &mut failures).await;
    failures.assert_none("invalid percent-encoding cases");
}

/// Shortens a long request target for case names.
fn excerpt_target(target: &str) -> String {
    match target.char_indices().nth(40) {
        Some((end, _)) => format!("{}... ({} bytes)", &target[..end], target.len()),
        None => target.to_owned(),
    }
}

// --- 3. Slow clients ---

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_leave_others_served() {
    const SLOW_CONNECTIONS: usize = 20;
    const SLOW_FOR: Duration = Duration::from_secs(3);
    const TICK: Duration = Duration::from_millis(200);
    const SLOW_HEADER: &[u8] = b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    let recorder = Recorder::start()
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let dir = temp_dir();
    let gateway = start_echo_gateway(&recorder, "slow-headers", dir.path());
    let address = gateway.url().trim_start_matches("http://").to_owned();
    let mut failures = Failures::default();

    let mut slow = Vec::with_capacity(SLOW_CONNECTIONS);
    for _ in 0..SLOW_CONNECTIONS {
        let mut stream = TcpStream::connect(&address)
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        stream
            .write_all(b"GET /odata/ECHO/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        slow.push(stream);
    }

    // One byte of a header line per connection and tick, while other
    // clients are served.
    let started = Instant::now();
    let mut served = 0;
    for byte in SLOW_HEADER {
        if started.elapsed() >= SLOW_FOR {
            break;
        }
        for stream in &mut slow {
            let _ = stream.write_all(&[*byte]).await;
        }
        for path in ["/health", "/odata/ECHO/other"] {
            let url = format!("{}{path}", gateway.url());
            let response = tokio::time::timeout(Duration::from_secs(2), get(&url, &[])).await;
            match response {
                Ok(Ok(response)) => failures.check(response.status == StatusCode::OK, || {
                    format!(
                        "{path} returned {} during the slow clients",
                        response.status
                    )
                }),
                Ok(Err(error)) => failures
                    .0
                    .push(format!("{path} failed during the slow clients: {error}")),
                Err(_) => failures.0.push(format!(
                    "{path} did not answer within 2 seconds during the slow clients"
                )),
            }
        }
        served += 1;
        tokio::time::sleep(TICK).await;
    }

    // What the gateway did with the slow connections meanwhile. A read of a
    // closed connection returns at once, so a short timeout is enough.
    // The gateway's header read timeout (120 seconds by default) is longer
    // than this test, so the slow connections are only counted here.
    // connections.rs tests the timeout itself.
    let slow_phase = started.elapsed();
    let (mut open, mut closed, mut answered) = (0, 0, 0);
    let mut buffer = [0; 1024];
    for stream in &mut slow {
        match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut buffer)).await {
            Err(_) => open += 1,
            Ok(Ok(0)) | Ok(Err(_)) => closed += 1,
            Ok(Ok(_)) => answered += 1,
        }
    }
    eprintln!(
        "slow headers: after {slow_phase:?}, {open} of {SLOW_CONNECTIONS} slow connections were \
         still open, {closed} closed and {answered} answered; other clients were served {served} \
         times"
    );

    // A slow request that still is open completes normally once its
    // headers end.
    if let Some(stream) = slow.first_mut().filter(|_| open == SLOW_CONNECTIONS) {
        let _ = stream.write_all(b"\r\n\r\n").await;
        let mut received = Vec::new();
        let deadline = Instant::now() + RAW_READ_LIMIT;
        while !response_complete(&received) && Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
                Ok(Ok(count)) if count > 0 => received.extend_from_slice(&buffer[..count]),
                _ => break,
            }
        }
        let text = String::from_utf8_lossy(&received);
        eprintln!(
            "slow headers: the first slow request, completed, got {:?}",
            text.lines().next().unwrap_or_default()
        );
        failures.check(text.starts_with("HTTP/1.1 200"), || {
            format!("the completed slow request got: {}", excerpt(&text))
        });
    }
    failures.check(served > 0, || "no client was served".to_owned());
    let log = LogCursor::new(&gateway)
        .health_after("slow headers", &mut failures)
        .await;
    failures.check_no_secret("slow headers", "the log", &log, &request_secrets());
    failures.assert_none("slow header checks");
}

// --- 4. Misbehaving backends ---

type TestBody = BoxBody<Bytes, std::io::Error>;

/// A response body fed by a task through a channel. An `Err` item ends the
/// body with that error, which makes hyper abort the response.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(context)
            .map(|item| item.map(|result| result.map(hyper::body::Frame::data)))
    }
}

/// How a test backend misbehaves.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// Reads the request and sends no response for 30 seconds.
    NeverAnswers,
    /// Sends 200 and body chunks without end, for up to 30 seconds.
    EndlessBody,
    /// Declares a `Content-Length` of 1 MiB, sends 256 KiB and closes.
    CutWithLength,
    /// Sends a chunked body, closes after 256 KiB without the last chunk.
    CutChunked,
    /// Sends a response header of 512 KiB.
    HugeHeader,
}

/// A backend on 127.0.0.1 that misbehaves on every request. Dropping it
/// stops the server and its connections.
struct Backend {
    url: String,
    task: JoinHandle<()>,
}

impl Backend {
    async fn start(misbehaviour: Misbehaviour) -> Backend {
        const MAX_CONNECTIONS: usize = 64;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|error| panic!("{error}"))
        );
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            for _ in 0..MAX_CONNECTIONS {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                connections.spawn(async move {
                    let service = service_fn(move |_request: Request<Incoming>| async move {
                        Ok::<_, Infallible>(misbehave(misbehaviour).await)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            while connections.join_next().await.is_some() {}
        });
        Backend { url, task }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn misbehave(misbehaviour: Misbehaviour) -> Response<TestBody> {
    const CHUNK: usize = 64 * KIB;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    match misbehaviour {
        Misbehaviour::NeverAnswers => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            json_response(
                Full::new(Bytes::from_static(b"{}"))
                    .map_err(|never| match never {})
                    .boxed(),
            )
        }
        Misbehaviour::EndlessBody => {
            let (sender, receiver) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                // At most 64 GiB, and never longer than 30 seconds.
                for _ in 0..MIB {
                    if Instant::now() > deadline || sender.send(Ok(chunk.clone())).await.is_err() {
                        break;
                    }
                }
            });
            json_response(ChannelBody(receiver).boxed())
        }
        Misbehaviour::CutWithLength | Misbehaviour::CutChunked => {
            let (sender, receiver) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                for _ in 0..4 {
                    if sender.send(Ok(chunk.clone())).await.is_err() {
                        return;
                    }
                }
                let cut = std::io::Error::other("the test backend closes mid-body");
                let _ = sender.send(Err(cut)).await;
            });
            let mut response = json_response(ChannelBody(receiver).boxed());
            if matches!(misbehaviour, Misbehaviour::CutWithLength) {
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(MIB));
            }
            response
        }
        Misbehaviour::HugeHeader => {
            let mut response = json_response(
                Full::new(Bytes::from_static(b"{}"))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            let value = http::HeaderValue::from_str(&"h".repeat(512 * KIB))
                .unwrap_or_else(|error| panic!("{error}"));
            response.headers_mut().insert("x-huge", value);
            response
        }
    }
}

fn json_response(body: TestBody) -> Response<TestBody> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A backend on 127.0.0.1 that is not an HTTP server: it sends `reply` (or
/// nothing) to each connection and closes it.
struct RawBackend {
    url: String,
    task: JoinHandle<()>,
}

impl RawBackend {
    async fn start(reply: &'static [u8]) -> RawBackend {
        const MAX_CONNECTIONS: usize = 64;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|error| panic!("{error}"))
        );
        let task = tokio::spawn(async move {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((mut stream, _)) = listener.accept().await else {
                    break;
                };
                let mut buffer = [0; 4096];
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buffer)).await;
                let _ = stream.write_all(reply).await;
            }
        });
        RawBackend { url, task }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a request through a misbehaving backend must end with.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// A gateway error with this status and code, within `REQUEST_TIMEOUT_SECS`
    /// plus three seconds.
    Error(StatusCode, &'static str),
    /// Anything but a complete 2xx response.
    NoCompleteSuccess,
}

#[tokio::test(flavor = "multi_thread")]
async fn misbehaving_backends() {
    let never = Backend::start(Misbehaviour::NeverAnswers).await;
    let cut_length = Backend::start(Misbehaviour::CutWithLength).await;
    let cut_chunked = Backend::start(Misbehaviour::CutChunked).await;
    let huge_header = Backend::start(Misbehaviour::HugeHeader).await;
    let not_http = RawBackend::start(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let closes = RawBackend::start(b"").await;
    let destinations = json!([
        destination_entry("NEVER", &never.url),
        destination_entry("CUT_LENGTH", &cut_length.url),
        destination_entry("CUT_CHUNKED", &cut_chunked.url),
        destination_entry("HUGE_HEADER", &huge_header.url),
        destination_entry("NOT_HTTP", &not_http.url),
        destination_entry("CLOSES", &closes.url),
    ])
    .to_string();
    let dir = temp_dir();
    let timeout = REQUEST_TIMEOUT_SECS.to_string();
    let gateway = Gateway::start(
        &[
            ("destinations", &destinations),
            ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", &timeout),
        ],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let secrets = request_secrets();
    let mut log = LogCursor::new(&gateway);
    let mut failures = Failures::default();

    let cases = [
        (
            "NEVER",
            Outcome::Error(StatusCode::GATEWAY_TIMEOUT, "Timeout"),
        ),
        (
            "NOT_HTTP",
            Outcome::Error(StatusCode::BAD_GATEWAY, "BackendUnreachable"),
        ),
        (
            "CLOSES",
            Outcome::Error(StatusCode::BAD_GATEWAY, "BackendUnreachable"),
        ),
        (
            "HUGE_HEADER",
            Outcome::Error(StatusCode::BAD_GATEWAY, "BackendUnreachable"),
        ),
        ("CUT_LENGTH", Outcome::NoCompleteSuccess),
        ("CUT_CHUNKED", Outcome::NoCompleteSuccess),
    ];
    for (destination, outcome) in cases {
        let headers = caller_headers();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(header, value)| (header.as_str(), value.as_str()))
            .collect();
        let url = format!("{}/odata/{destination}/Books", gateway.url());
        let started = Instant::now();
        let result = get(&url, &headers).await;
        let elapsed = started.elapsed();

        match (outcome, result) {
            (Outcome::Error(status, code), Ok(response)) => {
                failures.check(response.status == status, || {
                    format!(
                        "{destination}: status {} instead of {status}: {}",
                        response.status,
                        excerpt(&response.text())
                    )
                });
                failures.check(response.text().contains(code), || {
                    format!(
                        "{destination}: the body does not contain {code:?}: {}",
                        excerpt(&response.text())
                    )
                });
                failures.check_no_secret(destination, "the response", &response.text(), &secrets);
                let limit = Duration::from_secs(REQUEST_TIMEOUT_SECS + 3);
                failures.check(elapsed < limit, || {
                    format!("{destination}: the answer took {elapsed:?}, more than {limit:?}")
                });
            }
            (Outcome::Error(..), Err(error)) => {
                failures
                    .0
                    .push(format!("{destination}: the request failed: {error}"));
            }
            (Outcome::NoCompleteSuccess, Ok(response)) => {
                failures.check(!response.status.is_success(), || {
                    format!(
                        "{destination}: a body the backend cut off arrived as a complete {} of {} bytes",
                        response.status,
                        response.body.len()
                    )
                });
                failures.check_no_secret(destination, "the response", &response.text(), &secrets);
            }
            (Outcome::NoCompleteSuccess, Err(error)) => {
                eprintln!("{destination}: the client saw a broken response, as expected: {error}");
            }
        }
        let lines = log.health_after(destination, &mut failures).await;
        failures.check_no_secret(destination, "the log", &lines, &secrets);
    }
    failures.assert_none("misbehaving backend cases");
}

/// How a streamed response body ended.
#[derive(Debug)]
enum BodyEnd {
    Complete,
    Failed(String),
    /// The test stopped reading at its own limit.
    Stopped,
}

impl BodyEnd {
    fn describe(&self) -> String {
        match self {
            BodyEnd::Complete => "a complete body".to_owned(),
            BodyEnd::Failed(error) => format!("the error '{error}'"),
            BodyEnd::Stopped => "the test's read limit".to_owned(),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_body_is_bounded() {
    const READ_BEFORE_STALL: usize = 4 * MIB;
    const STALL: Duration = Duration::from_millis(1500);
    const READ_LIMIT: Duration = Duration::from_secs(10);
    /// The growth of the gateway's resident memory allowed while the client
    /// does not read.
    const MAX_GROWTH_KIB: u64 = 64 * 1024;

    let backend = Backend::start(Misbehaviour::EndlessBody).await;
    let destinations = json!([destination_entry("ENDLESS", &backend.url)]).to_string();
    let dir = temp_dir();
    let timeout = REQUEST_TIMEOUT_SECS.to_string();
    let gateway = Gateway::start(
        &[
            ("destinations", &destinations),
            ("BTP_GATEWAY_REQUEST_TIMEOUT_SECS", &timeout),
            (MARKER_VARIABLE, "endless-body"),
        ],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let pid =
        child_with_marker("endless-body").unwrap_or_else(|| panic!("no gateway process found"));
    let resident_at_start = memory_kib(pid, "VmRSS").unwrap_or_default();

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = Request::get(format!("{}/odata/ENDLESS/stream", gateway.url()))
        .header("authorization", format!("Bearer {CALLER_TOKEN}"))
        .body(Empty::new())
        .unwrap_or_else(|error| panic!("{error}"));
    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .unwrap_or_else(|_| panic!("no response headers within 5 seconds"))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the backend's status is passed on"
    );
    let mut body = response.into_body();

    let mut received = 0;
    let mut end = BodyEnd::Stopped;
    while received < READ_BEFORE_STALL {
        match tokio::time::timeout(READ_LIMIT, body.frame()).await {
            Ok(Some(Ok(frame))) => received += frame.data_ref().map_or(0, Bytes::len),
            Ok(Some(Err(error))) => {
                end = BodyEnd::Failed(error.to_string());
                break;
            }
            Ok(None) => {
                end = BodyEnd::Complete;
                break;
            }
            Err(_) => break,
        }
    }
    let resident_before_stall = memory_kib(pid, "VmRSS").unwrap_or_default();
    tokio::time::sleep(STALL).await;
    let resident_after_stall = memory_kib(pid, "VmRSS").unwrap_or_default();

    // Reading again, the body must end with an error at the request
    // timeout, which passed during the stall.
    if matches!(end, BodyEnd::Stopped) {
        let deadline = Instant::now() + READ_LIMIT;
        while Instant::now() < deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, body.frame()).await {
                Ok(Some(Ok(frame))) => received += frame.data_ref().map_or(0, Bytes::len),
                Ok(Some(Err(error))) => {
                    end = BodyEnd::Failed(error.to_string());
                    break;
                }
                Ok(None) => {
                    end = BodyEnd::Complete;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    let elapsed = started.elapsed();
    drop(body);
    let peak = memory_kib(pid, "VmHWM").unwrap_or_default();
    eprintln!(
        "endless body: {received} bytes received, ended with {} after {elapsed:?}; gateway \
         resident memory {resident_at_start} KiB at start, {resident_before_stall} KiB before and \
         {resident_after_stall} KiB after a {STALL:?} stall, peak {peak} KiB",
        end.describe()
    );

    assert!(
        matches!(end, BodyEnd::Failed(_)),
        "the endless body ended with {} after {received} bytes, not with an error",
        end.describe()
    );
    let limit = Duration::from_secs(REQUEST_TIMEOUT_SECS + 4);
    assert!(
        elapsed < limit,
        "the body ended after {elapsed:?}, more than {limit:?}"
    );
    let growth = resident_after_stall.saturating_sub(resident_before_stall);
    assert!(
        growth < MAX_GROWTH_KIB,
        "the gateway grew by {growth} KiB while the client did not read"
    );
    let mut failures = Failures::default();
    let log = LogCursor::new(&gateway)
        .health_after("endless body", &mut failures)
        .await;
    failures.check_no_secret("endless body", "the log", &log, &request_secrets());
    failures.assert_none("endless body checks");
}

// --- 5. A Destination service that returns garbage ---

/// Returns the status and body the garbage Destination service sends for a
/// find-destination call of `name`. `backend` is a working backend URL.
fn garbage_for(name: &str, backend: &str) -> (StatusCode, Vec<u8>) {
    let secret = SERVICE_SECRET;
    let body = match name {
        "NOT_JSON" => format!("<html><body>{secret}</body></html>"),
        "EMPTY" => String::new(),
        "TRUNCATED" => format!(
            r#"{{"destinationConfiguration": {{"Name": "TRUNCATED", "URL": "{backend}", "Password": "{secret}""#
        ),
        "NO_CONFIGURATION" => {
            json!({ "owner": { "SubaccountId": "s" }, "authTokens": [{ "type": "Bearer", "value": secret }] })
                .to_string()
        }
        "CONFIGURATION_STRING" => json!({ "destinationConfiguration": secret }).to_string(),
        "CONFIGURATION_NULL" => json!({ "destinationConfiguration": null }).to_string(),
        "AUTH_TOKENS_STRING" => json!({
            "destinationConfiguration": { "Name": name, "Type": "HTTP", "URL": backend, "Authentication": "OAuth2ClientCredentials" },
            "authTokens": secret,
        })
        .to_string(),
        "LIST" => json!([
            { "Name": name, "Type": "HTTP", "URL": backend, "Authentication": "NoAuthentication" }
        ])
        .to_string(),
        "INVALID_URL" => json!({
            "destinationConfiguration": {
                "Name": name, "Type": "HTTP", "URL": "http://[::1",
                "Authentication": "BasicAuthentication", "User": "u", "Password": secret,
            },
        })
        .to_string(),
        "URL_NOT_HTTP" => json!({
            "destinationConfiguration": { "Name": name, "Type": "HTTP", "URL": "file:///etc/passwd", "Authentication": "NoAuthentication" },
        })
        .to_string(),
        "URL_WITH_CREDENTIALS" => json!({
            "destinationConfiguration": {
                "Name": name, "Type": "HTTP", "URL": format!("http://user:{secret}@127.0.0.1:1/"),
                "Authentication": "NoAuthentication",
            },
        })
        .to_string(),
        "INVALID_AUTH_HEADER_NAME" => json!({
            "destinationConfiguration": { "Name": name, "Type": "HTTP", "URL": backend, "Authentication": "OAuth2ClientCredentials" },
            "authTokens": [{ "type": "Bearer", "value": secret, "http_header": { "key": "bad header", "value": format!("Bearer {secret}") } }],
        })
        .to_string(),
        "INVALID_AUTH_HEADER_VALUE" => json!({
            "destinationConfiguration": { "Name": name, "Type": "HTTP", "URL": backend, "Authentication": "OAuth2ClientCredentials" },
            "authTokens": [{ "type": "Bearer", "value": secret, "http_header": { "key": "Authorization", "value": format!("Bearer {secret}\r\nX-Injected: 1") } }],
        })
        .to_string(),
        "ENORMOUS" => json!({
            "destinationConfiguration": { "Name": name, "Type": "HTTP", "URL": backend, "Authentication": "NoAuthentication" },
            "padding": format!("{}{secret}", "p".repeat(4 * MIB)),
        })
        .to_string(),
        "DEEP" => format!(
            r#"{{"destinationConfiguration": {{"Name": "DEEP", "URL": "{backend}", "x": {}{}}}}}"#,
            "[".repeat(50_000),
            "]".repeat(50_000)
        ),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                br#"{"ErrorMessage":"Configuration with the specified name was not found"}"#.to_vec(),
            );
        }
    };
    (StatusCode::OK, body.into_bytes())
}

/// A Destination service on 127.0.0.1 that responds to find-destination
/// calls with [`garbage_for`], and records the paths and bearer tokens it
/// received.
struct GarbageService {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
    tokens: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl GarbageService {
    async fn start(backend: String) -> GarbageService {
        const MAX_CONNECTIONS: usize = 256;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .unwrap_or_else(|error| panic!("{error}"))
        );
        let paths = Arc::new(Mutex::new(Vec::new()));
        let tokens = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let paths = paths.clone();
            let tokens = tokens.clone();
            async move {
                let mut connections = JoinSet::new();
                for _ in 0..MAX_CONNECTIONS {
                    let Ok((stream, _)) = listener.accept().await else {
                        break;
                    };
                    let (paths, tokens, backend) = (paths.clone(), tokens.clone(), backend.clone());
                    connections.spawn(async move {
                        let service = service_fn(move |request: Request<Incoming>| {
                            let path = request.uri().path().to_owned();
                            let token = request
                                .headers()
                                .get(http::header::AUTHORIZATION)
                                .and_then(|value| value.to_str().ok())
                                .and_then(|value| value.strip_prefix("Bearer "))
                                .map(str::to_owned);
                            paths
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push(path.clone());
                            if let Some(token) = token {
                                tokens
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(token);
                            }
                            let name = path
                                .strip_prefix("/destination-configuration/v1/destinations/")
                                .unwrap_or_default();
                            let (status, body) = garbage_for(name, &backend);
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            response.headers_mut().insert(
                                http::header::CONTENT_TYPE,
                                http::HeaderValue::from_static("application/json"),
                            );
                            async move { Ok::<_, Infallible>(response) }
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                while connections.join_next().await.is_some() {}
            }
        });
        GarbageService {
            url,
            paths,
            tokens,
            task,
        }
    }

    fn take_paths(&self) -> Vec<String> {
        std::mem::take(&mut *self.paths.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for GarbageService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway bound to the garbage Destination service, with its token from
/// the emulator.
struct GarbageStack {
    service: GarbageService,
    _emulator: Emulator,
    _recorder: Recorder,
    gateway: Gateway,
    _dir: tempfile::TempDir,
}

impl GarbageStack {
    async fn start() -> GarbageStack {
        let recorder = Recorder::start()
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        let service = GarbageService::start(recorder.url().to_owned()).await;
        let emulator = Emulator::start(EmulatorConfig {
            clients: vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET)],
            ..EmulatorConfig::default()
        })
        .await
        .unwrap_or_else(|error| panic!("{error}"));
        let mut vcap = emulator.vcap_services(CLIENT_ID, CLIENT_SECRET);
        vcap["destination"][0]["credentials"]["uri"] = serde_json::Value::from(service.url.clone());
        let vcap = vcap.to_string();
        let dir = temp_dir();
        let gateway = Gateway::start(&[("VCAP_SERVICES", &vcap)], dir.path())
            .unwrap_or_else(|error| panic!("{error}"));
        GarbageStack {
            service,
            _emulator: emulator,
            _recorder: recorder,
            gateway,
            _dir: dir,
        }
    }

    /// Returns the secrets of this stack, with the service tokens issued so
    /// far.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            CLIENT_SECRET.to_owned(),
            SERVICE_SECRET.to_owned(),
            CALLER_TOKEN.to_owned(),
        ];
        secrets.extend(self.service.tokens());
        secrets
    }
}

const LOOKUP_FAILED: &str = "DestinationLookupFailed";
const MISCONFIGURED: &str = "DestinationMisconfigured";

/// Requests each destination of the garbage Destination service and checks
/// for 502 with one of the codes and no secret in the response or the log.
async fn check_garbage_cases(cases: &[(&str, &[&str])], table: &str) {
    let stack = GarbageStack::start().await;
    let mut log = LogCursor::new(&stack.gateway);
    let mut failures = Failures::default();

    for (name, codes) in cases {
        let headers = caller_headers();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(header, value)| (header.as_str(), value.as_str()))
            .collect();
        let url = format!("{}/odata/{name}/Books", stack.gateway.url());
        match get(&url, &headers).await {
            Ok(response) => {
                failures.check(response.status == StatusCode::BAD_GATEWAY, || {
                    format!(
                        "{name}: status {} instead of 502: {}",
                        response.status,
                        excerpt(&response.text())
                    )
                });
                let body: serde_json::Value =
                    serde_json::from_slice(&response.body).unwrap_or_default();
                let code = body["error"]["code"].as_str().unwrap_or_default();
                failures.check(codes.contains(&code), || {
                    format!(
                        "{name}: code {code:?} instead of one of {codes:?}: {}",
                        excerpt(&response.text())
                    )
                });
                failures.check_no_secret(name, "the response", &response.text(), &stack.secrets());
            }
            Err(error) => failures
                .0
                .push(format!("{name}: the request failed: {error}")),
        }
        let lines = log.health_after(name, &mut failures).await;
        failures.check_no_secret(name, "the log", &lines, &stack.secrets());
    }
    failures.check(!stack.service.tokens().is_empty(), || {
        "the garbage Destination service received no bearer token".to_owned()
    });
    failures.assert_none(table);
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_destination_service() {
    let cases: [(&str, &[&str]); 12] = [
        ("NOT_JSON", &[LOOKUP_FAILED]),
        ("EMPTY", &[LOOKUP_FAILED]),
        ("TRUNCATED", &[LOOKUP_FAILED]),
        ("NO_CONFIGURATION", &[LOOKUP_FAILED]),
        ("CONFIGURATION_NULL", &[LOOKUP_FAILED]),
        ("INVALID_URL", &[MISCONFIGURED]),
        ("URL_NOT_HTTP", &[MISCONFIGURED]),
        ("URL_WITH_CREDENTIALS", &[MISCONFIGURED]),
        ("INVALID_AUTH_HEADER_NAME", &[MISCONFIGURED]),
        ("INVALID_AUTH_HEADER_VALUE", &[MISCONFIGURED]),
        ("ENORMOUS", &[LOOKUP_FAILED]),
        ("DEEP", &[LOOKUP_FAILED]),
    ];
    check_garbage_cases(&cases, "garbage Destination service cases").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_values_stay_out_of_log() {
    let cases: [(&str, &[&str]); 2] = [
        ("CONFIGURATION_STRING", &[LOOKUP_FAILED]),
        ("AUTH_TOKENS_STRING", &[LOOKUP_FAILED]),
    ];
    check_garbage_cases(&cases, "wrongly typed service response cases").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn service_list_is_no_destination() {
    let cases: [(&str, &[&str]); 1] = [("LIST", &[LOOKUP_FAILED])];
    check_garbage_cases(&cases, "service list cases").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dot_names_stay_names() {
    let stack = GarbageStack::start().await;
    let mut log = LogCursor::new(&stack.gateway);
    let mut failures = Failures::default();

    for target in [
        "/odata/%2E%2E/Books",
        "/odata/../Books",
        "/odata/./Books",
        "/odata/%2e/Books",
    ] {
        let url = format!("{}{target}", stack.gateway.url());
        let response = get(&url, &[])
            .await
            .unwrap_or_else(|error| panic!("{target}: {error}"));
        let paths = stack.service.take_paths();
        // The gateway may reject the name or look it up, but a lookup must
        // ask for that name, not for the collection or its parent.
        let requested_by_name = paths.iter().all(|path| {
            path.starts_with("/destination-configuration/v1/destinations/")
                && path.len() > "/destination-configuration/v1/destinations/".len()
        });
        failures.check(requested_by_name, || {
            format!(
                "{target}: the Destination service received requests for {paths:?} (the gateway returned {}: {})",
                response.status,
                excerpt(&response.text())
            )
        });
        let lines = log.health_after(target, &mut failures).await;
        failures.check_no_secret(target, "the log", &lines, &stack.secrets());
    }
    failures.assert_none("dot name cases");
}
