//! The programs the deployment tests call: pykwalify, and
//! `tests/tools/mta_descriptor.py`, which reads YAML for tests that have no
//! YAML parser. Both run from the virtual environment that
//! `scripts/setup.sh` creates; a missing one fails the test with its path.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use btp_gateway_tests::harness::workspace_root;
use serde_json::Value;

/// The virtual environment of `scripts/setup.sh`, relative to `$HOME`.
const VIRTUAL_ENV: &str = ".cache/btp-gateway/tools/pykwalify";

/// pykwalify and the Python interpreter beside it.
#[derive(Debug)]
pub struct Tools {
    pykwalify: PathBuf,
    python: PathBuf,
}

/// The outcome of one pykwalify run.
#[derive(Debug)]
pub struct Validation {
    pub valid: bool,
    /// pykwalify's standard output and error, which list every violation
    /// with its path in the document.
    pub report: String,
}

impl Tools {
    /// Locates the tools in `$HOME/.cache/btp-gateway/tools/pykwalify`.
    pub fn find() -> anyhow::Result<Self> {
        let home = std::env::var_os("HOME")
            .context("HOME is not set, so the tools of scripts/setup.sh cannot be found")?;
        let bin = Path::new(&home).join(VIRTUAL_ENV).join("bin");
        let tools = Self {
            pykwalify: bin.join("pykwalify"),
            python: bin.join("python"),
        };
        for path in [&tools.pykwalify, &tools.python] {
            ensure!(
                path.is_file(),
                "{} is missing: run scripts/setup.sh, which installs pykwalify there",
                path.display()
            );
        }
        Ok(tools)
    }

    /// Reads a YAML file and returns its content as JSON.
    pub fn yaml_to_json(&self, path: &Path) -> anyhow::Result<Value> {
        let output = self.helper(&["to-json".as_ref(), path.as_os_str()])?;
        serde_json::from_str(&output)
            .with_context(|| format!("the YAML helper printed no JSON for {}", path.display()))
    }

    /// Validates the YAML file `descriptor` against the Kwalify schema
    /// `schema`, with every implicit `str` type made explicit first (see the
    /// helper's docstring). `scratch` receives the copies pykwalify reads.
    pub fn validate(
        &self,
        descriptor: &Path,
        schema: &Path,
        scratch: &Path,
    ) -> anyhow::Result<Validation> {
        let explicit_schema = scratch.join("schema.yaml");
        self.helper(&[
            "kwalify-schema".as_ref(),
            schema.as_os_str(),
            explicit_schema.as_os_str(),
        ])?;
        // pykwalify picks its parser by the file name's extension, and `.mtaext`
        // is not one it reads.
        let data = scratch.join("descriptor.yaml");
        std::fs::copy(descriptor, &data)
            .with_context(|| format!("cannot copy {}", descriptor.display()))?;

        // SAP's schemas write patterns as Ruby does, between slashes.
        let output = Command::new(&self.pykwalify)
            .arg("-d")
            .arg(&data)
            .arg("-s")
            .arg(&explicit_schema)
            .arg("--fix-ruby-style-regex")
            .output()
            .with_context(|| format!("cannot run {}", self.pykwalify.display()))?;
        Ok(Validation {
            valid: output.status.success(),
            report: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }

    /// Runs `tests/tools/mta_descriptor.py` and returns its standard output.
    fn helper(&self, arguments: &[&std::ffi::OsStr]) -> anyhow::Result<String> {
        let script = workspace_root().join("tests/tools/mta_descriptor.py");
        let output = Command::new(&self.python)
            .arg(&script)
            .args(arguments)
            .output()
            .with_context(|| format!("cannot run {}", self.python.display()))?;
        ensure!(
            output.status.success(),
            "{} {arguments:?} failed with {}:\n{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Returns the path of one of SAP's MTA schemas in `shared/fixtures/cf`,
/// which lies beside the repository, or fails naming the missing path.
pub fn mta_schema(file_name: &str) -> anyhow::Result<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/cf");
    ensure!(
        folder.is_dir(),
        "the MTA schema fixtures are missing: {} does not exist; shared/fixtures/cf \
         (from SAP/cloud-mta) must lie beside the repository",
        folder.display()
    );
    let schema = folder.join(file_name);
    ensure!(schema.is_file(), "{} is missing", schema.display());
    Ok(schema)
}
