use std::path::Path;

use super::*;

fn dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("{error}"))
}

fn load(pairs: &[(&str, &str)], dir: &Path) -> Result<Config, ConfigError> {
    Config::load(&MapEnv::from_pairs(pairs.iter().copied()), dir)
}

fn vcap(secret: &str) -> String {
    serde_json::json!({ "destination": [{
        "label": "destination", "name": "dest", "tags": ["destination"],
        "credentials": { "clientid": "vcap-client", "clientsecret": secret,
                         "url": "http://127.0.0.1:9/", "uri": "http://127.0.0.1:9" }
    }]})
    .to_string()
}

#[test]
fn local_defaults() {
    let dir = dir();
    let config = load(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert!(!config.on_cloud_foundry);
    assert!(config.destination_service.is_none());
    assert!(config.local_destinations.is_empty());
}

#[test]
fn cloud_foundry_listens_on_all_interfaces() {
    let dir = dir();
    let config = load(&[("VCAP_APPLICATION", "{}"), ("PORT", "8081")], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.listen.to_string(), "0.0.0.0:8081");
}

#[test]
fn local_addresses_allowed_only_off_cloud_foundry() {
    let dir = dir();
    let local = load(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    assert!(local.allow_local_addresses);
    let cf =
        load(&[("VCAP_APPLICATION", "{}")], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    assert!(!cf.allow_local_addresses);
    let forced = load(
        &[("BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES", "false")],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    assert!(!forced.allow_local_addresses);
    let invalid = load(&[("BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES", "yes")], dir.path());
    assert!(invalid.is_err());
}

#[test]
fn invalid_port_is_named() {
    let dir = dir();
    let error = load(&[("PORT", "eighty")], dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        error,
        "the environment: PORT is not a port number between 0 and 65535"
    );
}

#[test]
fn dotenv_fills_only_unset_variables() {
    let dir = dir();
    std::fs::write(
        dir.path().join(".env"),
        "CLIENT_ID=from-file\nCLIENT_SECRET=s\nTOKEN_URL=http://127.0.0.1:9/oauth/token\n\
         DESTINATION_SERVICE_URI=http://127.0.0.1:9\nPORT=9000\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let config =
        load(&[("CLIENT_ID", "from-env")], dir.path()).unwrap_or_else(|error| panic!("{error}"));

    let service = config
        .destination_service
        .unwrap_or_else(|| panic!("no service"));
    assert_eq!(service.client.client_id, "from-env");
    assert_eq!(service.service_uri.as_str(), "http://127.0.0.1:9/");
    assert_eq!(config.listen.port(), 9000);
}

#[test]
fn vcap_services_wins_over_service_key_variables() {
    let dir = dir();
    let vcap = vcap("s");
    let config = load(
        &[("VCAP_SERVICES", &vcap), ("CLIENT_ID", "partial")],
        dir.path(),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let service = config
        .destination_service
        .unwrap_or_else(|| panic!("no service"));
    assert_eq!(service.client.client_id, "vcap-client");
}

#[test]
fn vcap_services_from_file_path() {
    let dir = dir();
    let path = dir.path().join("vcap.json");
    std::fs::write(&path, vcap("s")).unwrap_or_else(|error| panic!("{error}"));
    let path_text = path.display().to_string();
    let config = load(&[("VCAP_SERVICES_FILE_PATH", &path_text)], dir.path())
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(config.destination_service.is_some());

    let missing = dir.path().join("missing.json").display().to_string();
    let error = load(&[("VCAP_SERVICES_FILE_PATH", &missing)], dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("missing.json") && error.contains("VCAP_SERVICES_FILE_PATH"),
        "{error}"
    );
}

#[test]
fn default_env_json_is_the_last_layer() {
    let dir = dir();
    let default_env = serde_json::json!({
        "VCAP_SERVICES": serde_json::from_str::<serde_json::Value>(&vcap("s")).unwrap_or_default(),
        "destinations": [{ "name": "A", "url": "http://127.0.0.1:1" }],
        "PORT": 7000,
    });
    std::fs::write(dir.path().join("default-env.json"), default_env.to_string())
        .unwrap_or_else(|error| panic!("{error}"));
    std::fs::write(dir.path().join(".env"), "PORT=7001\n")
        .unwrap_or_else(|error| panic!("{error}"));

    let config = load(&[], dir.path()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(config.listen.port(), 7001);
    assert!(config.destination_service.is_some());
    assert_eq!(config.local_destinations.len(), 1);
}

#[test]
fn errors_never_show_secrets() {
    let dir = dir();
    let broken = format!("{}x", vcap("top-secret-value"));
    let error = load(&[("VCAP_SERVICES", &broken)], dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("VCAP_SERVICES"), "{error}");
    assert!(!error.contains("top-secret-value"), "{error}");

    let shape = load(
        &[("VCAP_SERVICES", r#"{"destination": "top-secret-value"}"#)],
        dir.path(),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(shape.contains("unexpected structure"), "{shape}");
    assert!(!shape.contains("top-secret-value"), "{shape}");
}
