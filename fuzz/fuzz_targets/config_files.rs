//! Fuzzes `Config::load` through the files it reads, because the `.env` and
//! `default-env.json` parsers are private to the host crate.
//!
//! The input up to its first NUL byte is written as `.env`. The rest, when
//! there is a NUL byte, is written as `default-env.json`. Without one, that
//! file is absent. The files hold raw bytes, so invalid UTF-8 reaches the
//! host's file reading as well.
//!
//! Invariant: no error message or debug output of the loaded configuration
//! contains a secret. The target loads the input a second time with a
//! marker as `CLIENT_SECRET` in the first line of `.env` and as every secret
//! value in `default-env.json`, and checks that the marker never appears.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use btp_gateway::config::{Config, MapEnv};
use btp_gateway_fuzz::{SECRET_MARKER, assert_no_marker, may_contain_marker, plant_in_default_env};
use libfuzzer_sys::fuzz_target;
use tempfile::TempDir;

/// A folder per fuzzing process, for `.env`, `default-env.json` and the
/// `VCAP_SERVICES` file. It lives in `fuzz/target/scratch` and is left there
/// when libFuzzer exits, because statics are never dropped.
static SCRATCH: OnceLock<Scratch> = OnceLock::new();

struct Scratch {
    dir: TempDir,
    /// The process environment seen by `Config::load`.
    env: MapEnv,
}

fn scratch() -> &'static Scratch {
    SCRATCH.get_or_init(|| {
        let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scratch");
        fs::create_dir_all(&parent).expect("cannot create fuzz/target/scratch");
        let dir = tempfile::Builder::new()
            .prefix("config_files-")
            .tempdir_in(&parent)
            .expect("cannot create a scratch folder");

        // `VCAP_SERVICES_FILE_PATH` makes `Config::load` read the file it
        // names. An input that set it could name /dev/zero and never finish,
        // so the environment sets it to an empty binding list, and the
        // environment wins over both files. `VCAP_SERVICES` from the files
        // still takes precedence over this file.
        let vcap_path = dir.path().join("vcap-services.json");
        fs::write(&vcap_path, "{}").expect("cannot write the VCAP_SERVICES file");
        let vcap_path = vcap_path.to_str().expect("the scratch path is not UTF-8");
        let env = MapEnv::from_pairs([("VCAP_SERVICES_FILE_PATH", vcap_path)]);
        Scratch { dir, env }
    })
}

fuzz_target!(|data: &[u8]| {
    let (dotenv, default_env) = match data.iter().position(|&byte| byte == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    load(dotenv, default_env);

    let (Ok(dotenv), Ok(default_env)) = (
        std::str::from_utf8(dotenv),
        default_env.map(std::str::from_utf8).transpose(),
    ) else {
        return;
    };
    if may_contain_marker(dotenv) || default_env.is_some_and(may_contain_marker) {
        return;
    }
    let dotenv = format!("CLIENT_SECRET={SECRET_MARKER}\n{dotenv}");
    let default_env = default_env.map(|text| {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(mut value) => {
                plant_in_default_env(&mut value);
                value.to_string()
            }
            Err(_) => text.to_owned(),
        }
    });
    let output = load(dotenv.as_bytes(), default_env.as_deref().map(str::as_bytes));
    assert_no_marker(&output, "Config::load error or configuration");
});

/// Writes the files, loads the configuration, and returns the error message
/// or the debug output of the configuration.
fn load(dotenv: &[u8], default_env: Option<&[u8]>) -> String {
    let scratch = scratch();
    let dir = scratch.dir.path();
    write_or_remove(&dir.join(".env"), Some(dotenv));
    write_or_remove(&dir.join("default-env.json"), default_env);

    match Config::load(&scratch.env, dir) {
        Ok(config) => format!("{config:?}"),
        Err(error) => format!("{error}\n{error:?}"),
    }
}

fn write_or_remove(path: &PathBuf, contents: Option<&[u8]>) {
    match contents {
        Some(contents) => fs::write(path, contents).expect("cannot write a scratch file"),
        None => match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("cannot remove {}: {error}", path.display()),
        },
    }
}
