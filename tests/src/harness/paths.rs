//! Locating the workspace and the binaries built by cargo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
    let current = std::env::current_exe()?;
    let target_dir = current
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .ok_or_else(|| {
            anyhow::anyhow!("unexpected test executable location {}", current.display())
        })?;

    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
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
            .arg(target_dir)
            .status();
        match status {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!(
                "building the test component {package} failed with {status}"
            )),
            Err(error) => Err(format!("cannot run cargo: {error}")),
        }
    });
    if let Err(message) = result {
        anyhow::bail!("{message}");
    }
    Ok(target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", package.replace('-', "_"))))
}
