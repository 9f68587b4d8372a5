//! The deployment to SAP BTP Cloud Foundry, checked without Cloud Foundry
//! and without the MTA tools, which cannot be installed here:
//!
//! - `mta.yaml` and `deploy/production.mtaext` validate against SAP's
//!   Kwalify schemas from SAP/cloud-mta (test fixtures beside the
//!   repository) with pykwalify, and a broken copy is rejected;
//! - `manifest.yml`, the extension descriptor and `xs-security.json` agree
//!   with `mta.yaml`;
//! - the staging check runs the module's build commands as mbt does,
//!   checks that `build-result` contains one static binary, and starts it as
//!   Cloud Foundry starts a droplet.
//!
//! A missing tool or fixture fails the test with its path and the fix
//! (`scripts/setup.sh`); no check is skipped.

#[path = "deployment/droplet.rs"]
mod droplet;
#[path = "deployment/elf.rs"]
mod elf;
#[path = "deployment/mbt.rs"]
mod mbt;
#[path = "deployment/tools.rs"]
mod tools;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use btp_gateway_tests::harness::workspace_root;
use serde_json::Value;

use mbt::{Module, progress};
use tools::{Tools, mta_schema};

const MODULE: &str = "btp-gateway";
const EXTENSION: &str = "deploy/production.mtaext";
/// Time for the droplet part: starting the CAP service, the emulator and
/// the gateway, and the checks, with a wide margin.
const DROPLET_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn mta_yaml_matches_schema() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let scratch = tempfile::tempdir()?;
    let schema = mta_schema("mta-schema_v3.2.yaml")?;
    let validation = tools.validate(&repository_file("mta.yaml"), &schema, scratch.path())?;
    ensure!(validation.valid, "mta.yaml:\n{}", validation.report);
    Ok(())
}

#[test]
fn extension_matches_schema() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let scratch = tempfile::tempdir()?;
    let schema = mta_schema("mtaext-schema_v3.2.yaml")?;
    let validation = tools.validate(&repository_file(EXTENSION), &schema, scratch.path())?;
    ensure!(validation.valid, "{EXTENSION}:\n{}", validation.report);
    Ok(())
}

/// Each broken copy of `mta.yaml` is rejected, and for the broken field, so
/// the schema check can fail.
#[test]
fn broken_mta_yaml_rejected() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let schema = mta_schema("mta-schema_v3.2.yaml")?;
    let original = std::fs::read_to_string(repository_file("mta.yaml"))?;
    // (what breaks, text replaced, replacement, text the report must contain)
    let cases = [
        ("required key removed", "version: 0.1.0\n", "", "'version'"),
        (
            "name against its pattern",
            "  - name: btp-gateway\n",
            "  - name: btp gateway\n",
            "/modules/0/name",
        ),
        (
            "misspelled key",
            "    build-parameters:\n",
            "    build-parameter:\n",
            "'build-parameter'",
        ),
        (
            "boolean as text",
            "    optional: true\n",
            "    optional: maybe\n",
            "/resources/2/optional",
        ),
    ];

    for (case, text, replacement, expected) in cases {
        ensure!(original.contains(text), "{case}: mta.yaml has no {text:?}");
        let scratch = tempfile::tempdir()?;
        let broken = scratch.path().join("mta.yaml");
        std::fs::write(&broken, original.replacen(text, replacement, 1))?;
        let validation = tools.validate(&broken, &schema, scratch.path())?;
        ensure!(
            !validation.valid,
            "{case}: accepted:\n{}",
            validation.report
        );
        // A crash of pykwalify would fail too, but without this line.
        ensure!(
            validation.report.contains("validation.invalid"),
            "{case}: pykwalify did not report a violation:\n{}",
            validation.report
        );
        ensure!(
            validation.report.contains(expected),
            "{case}: the report does not name {expected}:\n{}",
            validation.report
        );
    }
    Ok(())
}

/// The module runs the static binary with an http health check and binds
/// every resource, each resource is a service with the expected plan, and
/// no build command needs a shell.
#[test]
fn mta_yaml_describes_gateway() -> anyhow::Result<()> {
    let mta = Tools::find()?.yaml_to_json(&repository_file("mta.yaml"))?;
    let module = Module::from_mta(&mta, MODULE, workspace_root())?;
    ensure!(module.descriptor["type"] == "custom");
    ensure!(module.descriptor["build-parameters"]["builder"] == "custom");
    ensure!(module.parameter("buildpack")? == "binary_buildpack");
    ensure!(module.parameter("command")? == "./btp-gateway");
    ensure!(module.parameter("health-check-type")? == "http");
    ensure!(module.parameter("health-check-http-endpoint")? == "/health/readiness");
    ensure!(
        module.timeout >= Duration::from_secs(30 * 60),
        "a cold release build takes several minutes: {:?}",
        module.timeout
    );
    for command in &module.commands {
        ensure!(
            !command.contains(['&', '|', ';', '<', '>', '*', '?', '$', '`', '"', '\'']),
            "mbt runs `{command}` without a shell"
        );
    }

    let required = names(&module.descriptor["requires"]);
    let resources = names(&mta["resources"]);
    ensure!(
        required == resources,
        "requires {required:?}, resources {resources:?}"
    );
    let services: Vec<(&str, &str, bool)> = mta["resources"]
        .as_array()
        .context("no resources")?
        .iter()
        .map(|resource| {
            (
                resource["parameters"]["service"]
                    .as_str()
                    .unwrap_or_default(),
                resource["parameters"]["service-plan"]
                    .as_str()
                    .unwrap_or_default(),
                resource["optional"] == true,
            )
        })
        .collect();
    let expected = [
        ("xsuaa", "application", false),
        ("destination", "lite", false),
        ("connectivity", "lite", true),
    ];
    ensure!(services == expected, "services {services:?}");
    let security = mta["resources"][0]["parameters"]["path"]
        .as_str()
        .context("the xsuaa resource names no xs-security.json")?;
    ensure!(repository_file(security).is_file(), "{security} is missing");
    Ok(())
}

/// `manifest.yml`, for `cf push`, describes the same application as
/// `mta.yaml`.
#[test]
fn manifest_matches_mta_yaml() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let mta = tools.yaml_to_json(&repository_file("mta.yaml"))?;
    let manifest = tools.yaml_to_json(&repository_file("manifest.yml"))?;
    let module = Module::from_mta(&mta, MODULE, workspace_root())?;
    let app = &manifest["applications"][0];
    let parameter = |name: &str| module.descriptor["parameters"][name].clone();

    ensure!(app["name"] == MODULE, "{app}");
    ensure!(app["buildpacks"] == serde_json::json!([parameter("buildpack")]));
    ensure!(app["command"] == parameter("command"));
    ensure!(app["memory"] == parameter("memory"));
    ensure!(app["disk_quota"] == parameter("disk-quota"));
    ensure!(app["health-check-type"] == parameter("health-check-type"));
    ensure!(app["health-check-http-endpoint"] == parameter("health-check-http-endpoint"));
    ensure!(app["env"] == module.descriptor["properties"], "{app}");
    let build_result = module.descriptor["build-parameters"]["build-result"].clone();
    ensure!(app["path"] == build_result, "{app}");
    let services: BTreeSet<String> = app["services"]
        .as_array()
        .context("the manifest binds no services")?
        .iter()
        .filter_map(|service| service.as_str().map(str::to_owned))
        .collect();
    ensure!(services == names(&mta["resources"]), "{services:?}");
    Ok(())
}

/// The production extension extends this MTA, names only its module and
/// bindings, and requests X.509 bindings that `xs-security.json` allows.
#[test]
fn extension_fits_mta_yaml() -> anyhow::Result<()> {
    let tools = Tools::find()?;
    let mta = tools.yaml_to_json(&repository_file("mta.yaml"))?;
    let extension = tools.yaml_to_json(&repository_file(EXTENSION))?;
    let module = Module::from_mta(&mta, MODULE, workspace_root())?;

    ensure!(
        extension["extends"] == mta["ID"],
        "{}",
        extension["extends"]
    );
    let extended = &extension["modules"][0];
    ensure!(extended["name"] == MODULE);
    ensure!(extended["parameters"]["instances"].as_u64() >= Some(2));
    let required = names(&module.descriptor["requires"]);
    let bindings = names(&extended["requires"]);
    ensure!(
        bindings.is_subset(&required),
        "{bindings:?} not in {required:?}"
    );

    let xsuaa = binding_config(extended, "btp-gateway-xsuaa")?;
    let destination = binding_config(extended, "btp-gateway-destination")?;
    for x509 in [xsuaa, &destination["xsuaa"]] {
        ensure!(x509["credential-type"] == "x509", "{x509}");
        ensure!(x509["x509"]["validity-type"] == "DAYS", "{x509}");
        let days = x509["x509"]["validity"].as_u64().unwrap_or_default();
        ensure!(
            (1..=30).contains(&days),
            "XSUAA allows 1 to 30 days: {x509}"
        );
    }

    let security: Value = serde_json::from_str(&std::fs::read_to_string(repository_file(
        "xs-security.json",
    ))?)?;
    let types = &security["oauth2-configuration"]["credential-types"];
    ensure!(
        types
            .as_array()
            .is_some_and(|types| types.contains(&"x509".into())),
        "xs-security.json must allow x509 bindings: {types}"
    );
    Ok(())
}

/// The static check recognises a dynamically linked binary: this test
/// executable, linked against glibc.
#[test]
fn dynamic_binary_is_not_static() -> anyhow::Result<()> {
    let bytes = std::fs::read(std::env::current_exe()?)?;
    let result = elf::check_static_x86_64(&bytes);
    ensure!(
        result
            .as_ref()
            .is_err_and(|reason| reason.contains("interpreter")),
        "{result:?}"
    );
    Ok(())
}

/// Builds the module with its own commands, as `mbt build` does, and
/// starts the result as Cloud Foundry would.
///
/// The commands build in the repository's `target/` folder (mbt sets no
/// `CARGO_TARGET_DIR`), so a later run is incremental and takes seconds.
/// In CI the clone is fresh: the release musl build there is cold and
/// takes about 10 minutes on 2 cores.
#[test]
fn staging_check() -> anyhow::Result<()> {
    let started = Instant::now();
    let mta = Tools::find()?.yaml_to_json(&repository_file("mta.yaml"))?;
    let module = Module::from_mta(&mta, MODULE, workspace_root())?;
    let build_result = RemovedOnDrop(module.build_result.clone());
    module.build()?;

    let entries = folder_entries(&build_result.0)?;
    ensure!(
        entries == ["btp-gateway"],
        "{} must contain only the binary: {entries:?}",
        build_result.0.display()
    );
    let binary = build_result.0.join("btp-gateway");
    let bytes = std::fs::read(&binary)?;
    elf::check_static_x86_64(&bytes).map_err(|reason| anyhow::anyhow!("{reason}"))?;
    progress(&format!(
        "{} is a static x86_64 executable of {} MiB",
        binary.display(),
        bytes.len() >> 20
    ));

    let droplet = tempfile::tempdir()?;
    let app = droplet.path().join("app");
    std::fs::create_dir(&app)?;
    std::fs::copy(&binary, app.join("btp-gateway"))?;
    drop(build_result);
    droplet::run_isolated(&app, DROPLET_TIMEOUT)?;
    progress(&format!(
        "staging check passed in {:.1?}",
        started.elapsed()
    ));
    Ok(())
}

/// Runs the droplet part of [`staging_check`], which starts this test in a
/// network namespace of its own. Run alone, it fails at once with the
/// reason.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "staging_check runs it inside a network namespace of its own"]
async fn staging_droplet() -> anyhow::Result<()> {
    let app = std::env::var_os(droplet::APP_FOLDER_VARIABLE).with_context(|| {
        format!(
            "{} is not set: run staging_check, which sets it",
            droplet::APP_FOLDER_VARIABLE
        )
    })?;
    let mta = Tools::find()?.yaml_to_json(&repository_file("mta.yaml"))?;
    let module = Module::from_mta(&mta, MODULE, workspace_root())?;
    droplet::check(Path::new(&app), &module).await
}

/// Removes the build result when the staging check ends, also when it
/// fails, as the result is only for packing.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repository_file(path: &str) -> PathBuf {
    workspace_root().join(path)
}

/// Returns the `name` of each entry of a descriptor list.
fn names(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry["name"].as_str().map(str::to_owned))
        .collect()
}

/// Returns the `parameters.config` of the binding `name` of an extended
/// module.
fn binding_config<'a>(module: &'a Value, name: &str) -> anyhow::Result<&'a Value> {
    module["requires"]
        .as_array()
        .and_then(|bindings| bindings.iter().find(|binding| binding["name"] == name))
        .map(|binding| &binding["parameters"]["config"])
        .with_context(|| format!("the extension does not configure the binding {name}"))
}

fn folder_entries(folder: &Path) -> anyhow::Result<Vec<String>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(folder)
        .with_context(|| format!("the build left no {}", folder.display()))?
    {
        entries.push(entry?.file_name().to_string_lossy().into_owned());
    }
    entries.sort();
    Ok(entries)
}
