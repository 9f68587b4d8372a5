//! The module of `mta.yaml` and its build, run the way the Cloud MTA Build
//! Tool (mbt) runs a `custom` builder. mbt splits each command on
//! whitespace into a program and its arguments and starts it without a
//! shell in the module's folder. The module's `timeout` bounds the whole
//! build.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

/// The one module of `mta.yaml`, with what the build and the start need.
#[derive(Debug)]
pub struct Module {
    pub descriptor: Value,
    /// The module's folder, `path` resolved against the repository.
    pub folder: PathBuf,
    pub commands: Vec<String>,
    /// The folder mbt packs into the archive, inside `folder`.
    pub build_result: PathBuf,
    pub timeout: Duration,
}

impl Module {
    /// Reads the module named `name` from `mta.yaml` as JSON.
    pub fn from_mta(mta: &Value, name: &str, repository: &Path) -> anyhow::Result<Self> {
        let descriptor = mta["modules"]
            .as_array()
            .and_then(|modules| modules.iter().find(|module| module["name"] == name))
            .with_context(|| format!("mta.yaml has no module named {name}"))?
            .clone();
        let build = &descriptor["build-parameters"];
        // Collecting the components drops the `.` of `path: .`.
        let folder: PathBuf = repository
            .join(text(&descriptor, "path")?)
            .components()
            .collect();
        let commands = build["commands"]
            .as_array()
            .context("the module has no build-parameters.commands")?
            .iter()
            .map(|command| command.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .context("a build command is not a string")?;
        let build_result = folder.join(text(build, "build-result")?);
        let timeout = parse_timeout(text(build, "timeout")?)?;
        Ok(Self {
            descriptor,
            folder,
            commands,
            build_result,
            timeout,
        })
    }

    /// Returns one of the module's deployment `parameters` as text.
    pub fn parameter(&self, name: &str) -> anyhow::Result<&str> {
        text(&self.descriptor["parameters"], name)
    }

    /// Runs every build command in order, as mbt does, and fails on the
    /// first that fails or when the module's timeout has passed.
    pub fn build(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout;
        for command in &self.commands {
            progress(&format!("running `{command}` in {}", self.folder.display()));
            let started = Instant::now();
            let mut child = spawn_without_shell(command, &self.folder)?;
            let status = wait_until(&mut child, deadline, command)?;
            ensure!(status.success(), "`{command}` failed with {status}");
            progress(&format!("`{command}` took {:.1?}", started.elapsed()));
        }
        Ok(())
    }
}

/// Starts one command as mbt does. mbt passes its own environment, which
/// has no `CARGO_TARGET_DIR`; CI sets one for the outer `cargo test`, and
/// with it the copy from `target/...` would find no binary.
fn spawn_without_shell(command: &str, folder: &Path) -> anyhow::Result<Child> {
    let mut words = command.split_whitespace();
    let program = words.next().context("an empty build command")?;
    Command::new(program)
        .args(words)
        .current_dir(folder)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start `{command}`"))
}

/// Waits for `child`, and kills it (by its own handle, so only this
/// process) when `deadline` passes first.
pub fn wait_until(
    child: &mut Child,
    deadline: Instant,
    description: &str,
) -> anyhow::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{description}` did not finish in time and was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Parses mbt's timeout, a whole number with the unit `s`, `m` or `h`.
fn parse_timeout(value: &str) -> anyhow::Result<Duration> {
    let invalid = || format!("invalid build timeout {value:?}: expected for example 30m");
    let units = [("s", 1), ("m", 60), ("h", 3600)];
    let (number, seconds_per_unit) = units
        .iter()
        .find_map(|(unit, seconds)| Some((value.strip_suffix(unit)?, *seconds)))
        .with_context(invalid)?;
    let number: u64 = number.parse().with_context(invalid)?;
    Ok(Duration::from_secs(number * seconds_per_unit))
}

fn text<'a>(object: &'a Value, key: &str) -> anyhow::Result<&'a str> {
    object[key]
        .as_str()
        .with_context(|| format!("{key} is missing or not text in {object}"))
}

/// Writes a progress line to the test's standard error. The build takes
/// minutes when cold, and libtest captures only the print macros, so this
/// line shows while the test runs.
pub fn progress(message: &str) {
    let _ = writeln!(std::io::stderr(), "[deployment] {message}");
}
