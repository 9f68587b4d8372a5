//! The CAP OData V4 test service in `tests/cap`, run with Node.js.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{wait_ready, watch_output, workspace_root};

/// The user the test service accepts with Basic authentication.
pub const CAP_USER: &str = "alice";
/// That user's password.
pub const CAP_PASSWORD: &str = "wonderland-secret";

/// A running CAP test service.
#[derive(Debug)]
pub struct CapService {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl CapService {
    /// Starts the service and waits until it listens. Decimals are rendered
    /// as strings (`IEEE754Compatible`), so trailing zeros are visible.
    pub fn start() -> anyhow::Result<Self> {
        let dir = workspace_root().join("tests/cap");
        if !dir.join("node_modules/@sap/cds").exists() {
            anyhow::bail!(
                "the CAP test service is not installed: run `npm ci` in {} (the test script does this)",
                dir.display()
            );
        }

        let mut child = Command::new("node")
            .arg("serve.js")
            .current_dir(&dir)
            .env("PORT", "0")
            .env("CDS_FEATURES_IEEE754COMPATIBLE", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| anyhow::anyhow!("cannot start node: {error}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let (log, ready) = watch_output(stdout, |line| {
            let value: serde_json::Value = serde_json::from_str(line).ok()?;
            value.get("listening")?.as_str().map(str::to_owned)
        });
        let url = wait_ready(
            &mut child,
            &ready,
            &log,
            "the CAP service",
            Duration::from_secs(60),
        )?;
        Ok(Self { child, url, log })
    }

    /// Returns the base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns the service's output so far.
    pub fn output(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

impl Drop for CapService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
