//! The gateway host, run as its own process with an environment and a
//! configuration folder that the test controls.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::paths::workspace_binary;
use super::{wait_ready, watch_output};

/// A running gateway process.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

/// How a gateway that was expected to fail at start ended.
#[derive(Debug)]
pub struct GatewayExit {
    pub status: ExitStatus,
    pub stderr: String,
}

impl Gateway {
    /// Starts the gateway with exactly `env` (plus `PATH`) and `config_dir`
    /// as its working directory, on an ephemeral loopback port.
    pub fn start(env: &[(&str, &str)], config_dir: &Path) -> anyhow::Result<Self> {
        Self::start_command(command(env, config_dir)?)
    }

    /// Starts the gateway as [`Gateway::start`] does, in a process whose
    /// virtual address space is limited to `kib` KiB (`ulimit -v`), as in a
    /// container that forbids large reservations.
    pub fn start_with_address_space_limit(
        env: &[(&str, &str)],
        config_dir: &Path,
        kib: u64,
    ) -> anyhow::Result<Self> {
        let gateway = command(env, config_dir)?;
        let mut limited = Command::new("sh");
        limited
            .args(["-c", "ulimit -v \"$1\" && shift && exec \"$@\"", "sh"])
            .arg(kib.to_string())
            .arg(gateway.get_program())
            .current_dir(config_dir)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in gateway.get_envs() {
            if let Some(value) = value {
                limited.env(name, value);
            }
        }
        Self::start_command(limited)
    }

    fn start_command(mut command: Command) -> anyhow::Result<Self> {
        let mut child = command.spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (log, ready) = watch_output(stderr, |line| {
            let start = line.find("listening on http://")? + "listening on ".len();
            let url: String = line[start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            Some(url)
        });
        let url = wait_ready(
            &mut child,
            &ready,
            &log,
            "the gateway",
            Duration::from_secs(60),
        )?;
        Ok(Self { child, url, log })
    }

    /// Returns the process's peak resident memory in bytes (`VmHWM` in
    /// `/proc/{pid}/status`), or `None` where that file is not available.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Runs the gateway where it is expected to refuse to start, and returns
    /// how it exited.
    pub fn start_expecting_failure(
        env: &[(&str, &str)],
        config_dir: &Path,
    ) -> anyhow::Result<GatewayExit> {
        let mut child = command(env, config_dir)?.spawn()?;
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read as _;
            pipe.read_to_string(&mut stderr)?;
        }
        let status = child.wait()?;
        Ok(GatewayExit { status, stderr })
    }

    /// Returns the base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything the gateway logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits until the log contains `text`, for up to five seconds, and
    /// returns the log. The log is read on another thread, so a line written
    /// just before a response may arrive just after it.
    pub fn log_after(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(text) || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> anyhow::Result<ExitStatus> {
        self.send_sigterm()?;
        Ok(self.child.wait()?)
    }

    /// Sends SIGTERM and returns at once, so that the test can watch the
    /// shutdown; [`Gateway::try_wait`] then reports the exit.
    pub fn send_sigterm(&self) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed with {status}");
        Ok(())
    }

    /// Returns the exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }
}

/// Returns the path of the `btp-gateway` binary, building it when needed.
pub fn gateway_binary() -> anyhow::Result<std::path::PathBuf> {
    workspace_binary("btp-gateway", "btp-gateway")
}

fn command(env: &[(&str, &str)], config_dir: &Path) -> anyhow::Result<Command> {
    let binary = workspace_binary("btp-gateway", "btp-gateway")?;
    let mut command = Command::new(binary);
    command
        .current_dir(config_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", "0")
        .env("RUST_LOG", "info,btp_gateway=debug")
        .env("BTP_GATEWAY_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    Ok(command)
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
