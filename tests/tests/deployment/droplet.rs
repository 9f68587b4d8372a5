//! The built binary, started the way Cloud Foundry starts a
//! `binary_buildpack` droplet. It runs in the app folder, which is also
//! `HOME`, with `PORT`, `VCAP_APPLICATION`, `VCAP_SERVICES` and the
//! module's properties in its environment. The module's http health check
//! probes it, and SIGTERM stops it.
//!
//! With `VCAP_APPLICATION` set the gateway listens on `0.0.0.0`, as it must
//! behind the Cloud Foundry router. So the droplet runs only inside a
//! network namespace whose one interface is loopback ([`run_isolated`]);
//! every request of the test goes to 127.0.0.1 there.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use btp_gateway_tests::emulator::{
    ClientConfig, Destination, Emulator, EmulatorConfig, UserTokenSpec,
};
use btp_gateway_tests::harness::{CapService, get};
use http::StatusCode;
use serde_json::{Value, json};

use super::mbt::{Module, progress, wait_until};

/// Names the app folder for the run inside the network namespace.
pub const APP_FOLDER_VARIABLE: &str = "BTP_GATEWAY_TEST_DROPLET";
/// The test that [`run_isolated`] runs inside the namespace.
pub const DROPLET_TEST: &str = "staging_droplet";

const DESTINATION_CLIENT: &str = "sb-btp-gateway-destination!b17|destination-xsappname!b404";
const DESTINATION_SECRET: &str = "staging-destination-secret-4471";
const APP_CLIENT: &str = "sb-btp-gateway!t42";
const APP_SECRET: &str = "staging-app-secret-9052";
const XSAPPNAME: &str = "btp-gateway!t42";
const CONNECTIVITY_CLIENT: &str = "sb-btp-gateway-connectivity!b7";
const CONNECTIVITY_SECRET: &str = "staging-connectivity-secret-2218";
/// Cloud Foundry's default time for a new instance to pass its first
/// health check.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(60);
/// Cloud Foundry's default timeout of one http health check request.
const HEALTH_CHECK_INVOCATION_TIMEOUT: Duration = Duration::from_secs(1);
/// Cloud Foundry sends SIGKILL this long after SIGTERM.
const SIGKILL_AFTER: Duration = Duration::from_secs(10);
const CORRELATION_ID: &str = "staging-check-books";

/// Runs [`DROPLET_TEST`] of this test binary in a new network namespace
/// (`unshare --net`, with a user namespace so that no privilege is needed),
/// after `ip` has brought up its loopback interface. The namespace ends
/// with the test, and with it everything that listened in it.
pub fn run_isolated(app: &Path, timeout: Duration) -> anyhow::Result<()> {
    let test_binary = std::env::current_exe()?;
    let mut child = Command::new("unshare")
        .args(["--net", "--map-root-user", "sh", "-c"])
        .arg(r#"ip link set lo up && exec "$0" "$@""#)
        .arg(&test_binary)
        .args([DROPLET_TEST, "--exact", "--ignored", "--nocapture"])
        .env(APP_FOLDER_VARIABLE, app)
        .stdin(Stdio::null())
        // libtest's summary of the inner run stays out of the outer run's
        // output, where scripts/test.sh would count it.
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run unshare (util-linux), which the staging check needs")?;
    let summary = collect_lines(child.stdout.take());
    let status = wait_until(&mut child, Instant::now() + timeout, "the droplet check")?;
    let summary = summary.lock().map(|text| text.clone()).unwrap_or_default();
    ensure!(
        status.success(),
        "the droplet check in its own network namespace failed with {status} (its log is \
         above; unshare --net --map-root-user and `ip` from iproute2 must work here). \
         Its test summary:\n{}",
        indent(&summary)
    );
    Ok(())
}

/// Starts the droplet in `app` bound to the emulated services, and checks
/// the health check, an OData request through a destination, the JSON
/// request log and the exit on SIGTERM.
pub async fn check(app: &Path, module: &Module) -> anyhow::Result<()> {
    ensure_isolated_network()?;
    let cap = CapService::start()?;
    let emulator = Emulator::start(emulator_config(cap.url())).await?;
    let port = free_port()?;
    let mut droplet = Droplet::start(app, module, &environment(&emulator, port))?;
    let base = format!("http://127.0.0.1:{port}");

    let endpoint = module.parameter("health-check-http-endpoint")?;
    let healthy_after = wait_healthy(&format!("{base}{endpoint}"), &droplet).await?;
    progress(&format!(
        "{endpoint} returned 200 after {healthy_after:.1?}"
    ));

    check_odata(&base, &emulator, &droplet).await?;
    check_request_log(&droplet).await?;

    droplet.send_sigterm()?;
    let exit = droplet.wait_exit(SIGKILL_AFTER).await?;
    ensure!(
        exit.code() == Some(0),
        "after SIGTERM the gateway exited with {exit} instead of 0; its log:\n{}",
        droplet.log()
    );
    Ok(())
}

/// Fails unless this process's network namespace has no interface but `lo`,
/// as in [`run_isolated`], so that the gateway's `0.0.0.0` reaches no
/// network.
fn ensure_isolated_network() -> anyhow::Result<()> {
    let devices = std::fs::read_to_string("/proc/self/net/dev")?;
    let interfaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(str::trim)
        .collect();
    ensure!(
        interfaces == ["lo"],
        "{DROPLET_TEST} runs only inside the network namespace that staging_check creates, \
         because the gateway listens on 0.0.0.0 when VCAP_APPLICATION is set; this process \
         sees the interfaces {interfaces:?}"
    );
    Ok(())
}

fn emulator_config(cap_url: &str) -> EmulatorConfig {
    EmulatorConfig {
        clients: vec![
            ClientConfig::new(DESTINATION_CLIENT, DESTINATION_SECRET),
            ClientConfig::new(APP_CLIENT, APP_SECRET),
            ClientConfig::new(CONNECTIVITY_CLIENT, CONNECTIVITY_SECRET),
        ],
        instance_destinations: vec![Destination::no_authentication(
            "CAP_CATALOG",
            format!("{cap_url}/odata/v4/catalog"),
        )],
        ..EmulatorConfig::default()
    }
}

/// Returns the environment Cloud Foundry gives the app, with the three
/// bindings of `mta.yaml` pointing at the emulator.
fn environment(emulator: &Emulator, port: u16) -> Vec<(String, String)> {
    let vcap_services = Emulator::vcap_services_with(&[
        emulator.xsuaa_binding(APP_CLIENT, APP_SECRET, XSAPPNAME),
        emulator.destination_binding(DESTINATION_CLIENT, DESTINATION_SECRET),
        emulator.connectivity_binding(CONNECTIVITY_CLIENT, CONNECTIVITY_SECRET),
    ]);
    vec![
        ("PORT".to_owned(), port.to_string()),
        (
            "VCAP_APPLICATION".to_owned(),
            vcap_application().to_string(),
        ),
        ("VCAP_SERVICES".to_owned(), vcap_services.to_string()),
        ("CF_INSTANCE_INDEX".to_owned(), "0".to_owned()),
        ("MEMORY_LIMIT".to_owned(), "256m".to_owned()),
        ("LANG".to_owned(), "en_US.UTF-8".to_owned()),
        // The emulator and the CAP service listen on 127.0.0.1, which the
        // gateway rejects on Cloud Foundry unless this variable is true.
        (
            "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES".to_owned(),
            "true".to_owned(),
        ),
    ]
}

/// Returns a `VCAP_APPLICATION` as Cloud Foundry sets it, with made-up ids
/// and reserved `.invalid` host names that nothing resolves.
fn vcap_application() -> Value {
    json!({
        "application_id": "0c6f3c8e-5d1a-4b7e-9a2f-6e4d8b1c3a57",
        "application_name": "btp-gateway",
        "application_uris": ["btp-gateway-dev.cfapps.example.invalid"],
        "application_version": "5f2b8e1d-7c3a-4e9f-b6d2-1a8c4e7f9b30",
        "cf_api": "https://api.cf.example.invalid",
        "limits": { "disk": 512, "fds": 32768, "mem": 256 },
        "name": "btp-gateway",
        "organization_id": "a3e9c1f7-2b5d-4c8a-9e6f-0d4b7a2c5e81",
        "organization_name": "acme",
        "process_id": "0c6f3c8e-5d1a-4b7e-9a2f-6e4d8b1c3a57",
        "process_type": "web",
        "space_id": "e8b2d6a4-1c7f-4e3b-8a5d-9f0c2e6b4a19",
        "space_name": "dev",
        "uris": ["btp-gateway-dev.cfapps.example.invalid"],
        "users": null,
        "version": "5f2b8e1d-7c3a-4e9f-b6d2-1a8c4e7f9b30"
    })
}

/// Returns a port that was free on 127.0.0.1 a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Probes `url` as Cloud Foundry's http health check does until it returns
/// 200, and returns how long that took.
async fn wait_healthy(url: &str, droplet: &Droplet) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < HEALTH_CHECK_TIMEOUT {
        let probe = tokio::time::timeout(HEALTH_CHECK_INVOCATION_TIMEOUT, get(url, &[])).await;
        if let Ok(Ok(response)) = probe
            && response.status == StatusCode::OK
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bail!(
        "{url} did not answer 200 within {HEALTH_CHECK_TIMEOUT:?}; the gateway's log:\n{}",
        droplet.log()
    )
}

/// Reads books through the `CAP_CATALOG` destination with a user token of
/// the bound XSUAA, and checks that a request without a token is rejected.
async fn check_odata(base: &str, emulator: &Emulator, droplet: &Droplet) -> anyhow::Result<()> {
    let url = format!("{base}/odata/CAP_CATALOG/Books?$top=2&$select=ID,title");
    let anonymous = get(&url, &[]).await?;
    ensure!(
        anonymous.status == StatusCode::UNAUTHORIZED,
        "without a token: {} {}",
        anonymous.status,
        anonymous.text()
    );

    let token = emulator.user_token(&UserTokenSpec::new("alice", APP_CLIENT));
    let authorization = format!("Bearer {token}");
    let response = get(
        &url,
        &[
            ("authorization", authorization.as_str()),
            ("x-correlationid", CORRELATION_ID),
        ],
    )
    .await?;
    ensure!(
        response.status == StatusCode::OK,
        "GET {url}: {} {}; the gateway's log:\n{}",
        response.status,
        response.text(),
        droplet.log()
    );
    let body = response.json();
    let books = body["value"].as_array().map_or(0, Vec::len);
    ensure!(books == 2, "expected 2 books, got {body}");
    ensure!(
        body["@odata.context"]
            .as_str()
            .is_some_and(|context| context.contains("Books")),
        "no @odata.context for Books in {body}"
    );
    Ok(())
}

/// Checks the JSON request log line of the OData request: the fields SAP's
/// logging libraries write, and the app's name from `VCAP_APPLICATION`.
async fn check_request_log(droplet: &Droplet) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = droplet.log();
        let line = log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["type"] == "request" && line["correlation_id"] == CORRELATION_ID);
        if let Some(line) = line {
            ensure!(line["response_status"] == 200, "{line}");
            ensure!(line["method"] == "GET", "{line}");
            ensure!(line["component_name"] == "btp-gateway", "{line}");
            ensure!(line["space_name"] == "dev", "{line}");
            ensure!(line["written_at"].is_string(), "{line}");
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "no JSON request log with correlation_id {CORRELATION_ID}; the log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The running droplet, killed when dropped.
struct Droplet {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Droplet {
    /// Starts the module's `command` in the app folder, as Cloud Foundry's
    /// launcher does in `/home/vcap/app`, with `TMPDIR` beside it as
    /// `/home/vcap/tmp` is.
    fn start(
        app: &Path,
        module: &Module,
        environment: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let command = module.parameter("command")?;
        let temporary = app.with_file_name("tmp");
        std::fs::create_dir_all(&temporary)?;
        let mut words = command.split_whitespace();
        let program = words.next().context("the module's command is empty")?;
        let mut child = Command::new(app.join(program))
            .args(words)
            .current_dir(app)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", app)
            .env("TMPDIR", &temporary)
            .envs(module_properties(module))
            .envs(environment.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {command} in {}", app.display()))?;
        let log = collect_lines(child.stderr.take());
        Ok(Self { child, log })
    }

    fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Sends SIGTERM to this process only, by its PID.
    fn send_sigterm(&self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        ensure!(status.success(), "kill -TERM {pid} failed with {status}");
        Ok(())
    }

    async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the gateway was still running {timeout:?} after SIGTERM, when Cloud Foundry \
                     kills it; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Droplet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns the module's `properties`, which the MTA deployer sets as
/// environment variables.
fn module_properties(module: &Module) -> Vec<(String, String)> {
    module.descriptor["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, value)| {
                    let value = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    (name.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a child's output stream on a thread and keeps every line.
fn collect_lines(stream: Option<impl std::io::Read + Send + 'static>) -> Arc<Mutex<String>> {
    let lines = Arc::new(Mutex::new(String::new()));
    if let Some(stream) = stream {
        let writer = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut text = writer
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
    }
    lines
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("    {line}\n")).collect()
}
