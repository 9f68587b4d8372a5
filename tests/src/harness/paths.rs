//! Locating the workspace and the binaries built by cargo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Returns the repository root.
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).to_path_buf()
    })
}

/// Returns the path of a binary of this workspace, building it when the
/// test run has not (for example under `cargo test -p btp-gateway-tests`).
pub(crate) fn workspace_binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    // Test executables live in `<target>/<profile>/deps/`; binaries one
    // folder up.
    let current = std::env::current_exe()?;
    let profile_dir = current.parent().and_then(Path::parent).ok_or_else(|| {
        anyhow::anyhow!("unexpected test executable location {}", current.display())
    })?;
    let binary = profile_dir.join(name);

    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if !binary.exists() {
        let release = profile_dir.file_name().is_some_and(|dir| dir == "release");
        let result = BUILT.get_or_init(|| {
            let mut command =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
            command
                .current_dir(workspace_root())
                .args(["build", "-p", package, "--bin", name]);
            if release {
                command.arg("--release");
            }
            match command.status() {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(format!("cargo build -p {package} failed with {status}")),
                Err(error) => Err(format!("cannot run cargo: {error}")),
            }
        });
        if let Err(message) = result {
            anyhow::bail!("{message}");
        }
    }
    Ok(binary)
}

/// Builds a test component from `tests/guests/` for wasm32-wasip2 and
/// returns the path of its `.wasm` file. `package` is the crate name, for
/// example `test-guest-misbehave`.
pub fn test_guest(package: &str) -> anyhow::Result<PathBuf> {
    build_test_guest(package, None)
}

/// Builds the `test-guest-versioned` component with `label` compiled in and
/// returns the path of a copy that later builds with other labels leave
/// alone.
pub fn versioned_guest(label: &str) -> anyhow::Result<PathBuf> {
    build_test_guest("test-guest-versioned", Some(label))
}

fn build_test_guest(package: &str, label: Option<&str>) -> anyhow::Result<PathBuf> {
    let current = std::env::current_exe()?;
    let target_dir = current
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or_else(|| {
            anyhow::anyhow!("unexpected test executable location {}", current.display())
        })?
        .to_path_buf();

    // One build at a time per process: builds of the versioned component
    // with different labels write the same output file.
    static BUILDS: Mutex<Vec<(String, Result<PathBuf, String>)>> = Mutex::new(Vec::new());
    let key = format!("{package}:{}", label.unwrap_or(""));
    let mut builds = BUILDS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, result)) = builds.iter().find(|(built, _)| *built == key) {
        return result
            .clone()
            .map_err(|message| anyhow::anyhow!("{message}"));
    }

    let result = run_guest_build(package, label, &target_dir);
    builds.push((key, result.clone()));
    result.map_err(|message| anyhow::anyhow!("{message}"))
}

fn run_guest_build(
    package: &str,
    label: Option<&str>,
    target_dir: &Path,
) -> Result<PathBuf, String> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
            "--target-dir",
        ])
        .arg(target_dir);
    if let Some(label) = label {
        command.env("VERSIONED_GUEST_LABEL", label);
    }
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            return Err(format!(
                "building the test component {package} failed with {status}"
            ));
        }
        Err(error) => return Err(format!("cannot run cargo: {error}")),
    }

    // A library component is named after the crate with `_`, a command
    // after the package.
    let release = target_dir.join("wasm32-wasip2/release");
    let built = [
        release.join(format!("{}.wasm", package.replace('-', "_"))),
        release.join(format!("{package}.wasm")),
    ]
    .into_iter()
    .find(|path| path.exists())
    .ok_or_else(|| {
        format!(
            "the build of {package} left no .wasm file in {}",
            release.display()
        )
    })?;
    let Some(label) = label else {
        return Ok(built);
    };

    let copies = target_dir.join("versioned-guests");
    std::fs::create_dir_all(&copies)
        .map_err(|error| format!("cannot create {}: {error}", copies.display()))?;
    let copy = copies.join(format!("{label}.wasm"));
    std::fs::copy(&built, &copy)
        .map_err(|error| format!("cannot copy {}: {error}", built.display()))?;
    Ok(copy)
}
