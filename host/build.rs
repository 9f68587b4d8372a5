//! Builds the default gateway component from `guest/` for wasm32-wasip2 and
//! places it in `OUT_DIR`, where `DEFAULT_COMPONENT` embeds it.
//!
//! The nested cargo uses a target folder of its own inside `OUT_DIR`, so it
//! never waits for the outer build's lock. Set
//! `BTP_GATEWAY_GUEST_WASM` to a prebuilt component to skip the nested build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Variables the outer cargo sets for build scripts that would change or
/// break the nested build for another target.
const INHERITED_VARS_REMOVED: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_PROFILE_RELEASE_LTO",
];

fn main() -> ExitCode {
    match build() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn build() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir
        .parent()
        .ok_or("the host crate has no parent folder")?;
    let destination = out_dir.join("default-guest.wasm");

    println!("cargo::rerun-if-env-changed=BTP_GATEWAY_GUEST_WASM");
    if let Some(prebuilt) = env::var_os("BTP_GATEWAY_GUEST_WASM") {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo::rerun-if-changed={}", prebuilt.display());
        return copy(&prebuilt, &destination);
    }

    for watched in ["guest/src", "guest/Cargo.toml", "wit", "Cargo.lock"] {
        println!(
            "cargo::rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out_dir.join("guest-target");
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "btp-gateway-guest",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for name in INHERITED_VARS_REMOVED {
        command.env_remove(name);
    }

    let status = command
        .status()
        .map_err(|error| format!("cannot run cargo to build the guest component: {error}"))?;
    if !status.success() {
        return Err(
            "building the guest component failed (see the output above); if the wasm32-wasip2 target \
             is missing, run `rustup target add wasm32-wasip2`"
                .to_owned(),
        );
    }

    copy(
        &target_dir.join("wasm32-wasip2/release/btp_gateway_guest.wasm"),
        &destination,
    )
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(|_| ()).map_err(|error| {
        format!(
            "cannot copy {} to {}: {error}",
            from.display(),
            to.display()
        )
    })
}
