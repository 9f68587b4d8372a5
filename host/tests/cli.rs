//! The `btp-gateway` command line. Besides checking the options, this test
//! makes `cargo test` build the binary, which the end-to-end tests in
//! `tests/` start as a process.

use std::process::Command;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_btp-gateway"))
}

#[test]
fn help_lists_options() {
    let output = gateway()
        .arg("--help")
        .output()
        .unwrap_or_else(|error| panic!("{error}"));
    let help = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{help}");
    for option in [
        "--component",
        "--config-dir",
        "--log-format",
        "--max-instances",
        "--max-memory-mib",
    ] {
        assert!(help.contains(option), "{option} missing in:\n{help}");
    }
}

#[test]
fn missing_component_file_is_named() {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"));
    let output = gateway()
        .current_dir(dir.path())
        .env_clear()
        .env("PORT", "0")
        .args(["--component", "no-such-component.wasm"])
        .output()
        .unwrap_or_else(|error| panic!("{error}"));
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(!output.status.success());
    assert!(stderr.contains("no-such-component.wasm"), "{stderr}");
}
