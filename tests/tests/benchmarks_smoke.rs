//! Runs `benches/run.sh --smoke`, which starts every measured system briefly
//! on 127.0.0.1, and checks that it succeeds and that its Markdown report
//! has a row for each system and each part.
//!
//! The script builds into the same target folder as this test, so a run
//! after `cargo test --workspace` reuses its debug builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use btp_gateway_tests::harness::workspace_root;

/// The maximum time the smoke run may take before it is stopped, in seconds.
/// A warm run takes well under this; a cold one builds the benchmark
/// programs and installs the approuter first.
const TIME_LIMIT_SECS: &str = "900";

/// Returns the target folder this test executable was built into:
/// `<target>/<profile>/deps/<test>`.
fn target_dir() -> Result<PathBuf, String> {
    let executable = std::env::current_exe().map_err(|error| error.to_string())?;
    executable
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            format!(
                "unexpected test executable location {}",
                executable.display()
            )
        })
}

/// Returns the lines of `report` that are table rows whose text starts
/// with `cells`.
fn rows_starting_with<'a>(report: &'a str, cells: &str) -> Vec<&'a str> {
    let prefix = format!("| {cells}");
    report
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .collect()
}

#[test]
fn smoke_run_reports_every_system() -> Result<(), String> {
    let results = tempfile::tempdir().map_err(|error| error.to_string())?;
    let results_file = results.path().join("results.md");
    let output = Command::new("timeout")
        .arg(TIME_LIMIT_SECS)
        .arg("bash")
        .arg(workspace_root().join("benches/run.sh"))
        .arg("--smoke")
        .env("CARGO_TARGET_DIR", target_dir()?)
        .env("BENCH_RESULTS_FILE", &results_file)
        .output()
        .map_err(|error| format!("cannot run benches/run.sh: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr_tail: String = {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    assert!(
        output.status.success(),
        "benches/run.sh --smoke failed with {}; the end of its output:\n{stderr_tail}",
        output.status
    );

    let report = std::fs::read_to_string(&results_file)
        .map_err(|error| format!("cannot read {}: {error}", results_file.display()))?;
    assert_eq!(
        stdout.trim(),
        report.trim(),
        "stdout differs from the results file"
    );
    for (cells, part) in [
        ("default gateway component", "sandbox cost"),
        ("tests/guests/versioned", "sandbox cost"),
        ("gateway | small", "throughput"),
        ("gateway | large", "throughput"),
        ("gateway | large-binary", "throughput"),
        ("gateway | root", "throughput"),
        ("native-proxy | small", "throughput"),
        ("native-proxy | large", "throughput"),
        ("native-proxy | large-binary", "throughput"),
        ("approuter | small", "throughput"),
        ("approuter | large", "throughput"),
        ("wasmtime-serve | root", "throughput"),
        ("gateway idle after start", "memory"),
        ("gateway with a 100 MiB response in flight", "memory"),
        ("start to ready, empty compiled-code cache", "start"),
        ("start to ready, warm compiled-code cache", "start"),
        ("swap to a new component", "swap"),
        ("gateway, Destination service", "destination lookups"),
    ] {
        let found = rows_starting_with(&report, cells);
        assert!(
            !found.is_empty(),
            "the {part} table has no row starting with '{cells}':\n{report}"
        );
    }

    let swap_rows = rows_starting_with(&report, "failed requests during");
    assert_eq!(swap_rows.len(), 1, "{report}");
    assert!(
        swap_rows[0].trim_end().ends_with("| 0 |"),
        "requests failed during swaps: {}",
        swap_rows[0]
    );
    Ok(())
}
