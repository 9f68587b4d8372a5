//! `VCAP_SERVICES` bindings that point at the emulator, shaped like the
//! bindings Cloud Foundry gives an application: `destination` (with a client
//! secret or an X.509 certificate), `xsuaa` and `connectivity`.
//!
//! In real bindings `uri` is the Destination service, `url` the subaccount's
//! XSUAA, `certurl` XSUAA's mutual-TLS host and `onpremise_proxy_host` the
//! Connectivity proxy. Here all of them are the emulator on 127.0.0.1. A
//! real `uaadomain` is a DNS domain, but the emulator has only its host and
//! port. The RFC, LDAP and SOCKS5 ports of the connectivity binding are the
//! HTTP proxy's port too, because the emulator serves only HTTP there.

use serde_json::{Map, Value, json};

use super::config::EmulatorConfig;

/// Name of the service instance in the generated destination binding.
pub const DESTINATION_INSTANCE_NAME: &str = "destination";

/// Name of the service instance in the generated XSUAA binding.
pub const XSUAA_INSTANCE_NAME: &str = "xsuaa";

/// Name of the service instance in the generated connectivity binding.
pub const CONNECTIVITY_INSTANCE_NAME: &str = "connectivity";

/// Placeholder for the public key in bindings built without a running
/// emulator ([`vcap_services`]). It is deliberately not a valid key.
const PLACEHOLDER_VERIFICATION_KEY: &str = "-----BEGIN PUBLIC KEY-----\nnot-available-without-a-running-emulator\n-----END PUBLIC KEY-----";

/// URLs and key of a running emulator that bindings refer to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingUrls<'a> {
    pub emulator_url: &'a str,
    pub certurl: Option<&'a str>,
    pub connectivity_proxy_port: u16,
    pub verification_key: &'a str,
}

/// How a destination binding's client authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    Secret(&'a str),
    X509 {
        certificate_pem: &'a str,
        key_pem: &'a str,
    },
}

/// Builds a `VCAP_SERVICES` object with one `destination` binding for an
/// emulator at `emulator_url` (for example `http://127.0.0.1:40123`), using
/// the ids from `config` and the given client credentials. The token URL is
/// `credentials.url` plus `/oauth/token`. Its `verificationkey` is a
/// placeholder; [`Emulator::vcap_services`](super::Emulator::vcap_services)
/// gives the real key.
pub fn vcap_services(
    emulator_url: &str,
    config: &EmulatorConfig,
    client_id: &str,
    client_secret: &str,
) -> Value {
    let urls = BindingUrls {
        emulator_url: emulator_url.trim_end_matches('/'),
        certurl: None,
        connectivity_proxy_port: 0,
        verification_key: PLACEHOLDER_VERIFICATION_KEY,
    };
    compose(&[destination_binding(
        &urls,
        config,
        client_id,
        Credential::Secret(client_secret),
    )])
}

/// Groups binding entries by `label` into a `VCAP_SERVICES` object, keeping
/// their order within each label.
pub(crate) fn compose(bindings: &[Value]) -> Value {
    let mut services = Map::new();
    for binding in bindings {
        let label = binding["label"]
            .as_str()
            .unwrap_or("user-provided")
            .to_owned();
        let entries = services
            .entry(label)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(entries) = entries {
            entries.push(binding.clone());
        }
    }
    Value::Object(services)
}

/// Builds one `destination` binding entry.
pub(crate) fn destination_binding(
    urls: &BindingUrls<'_>,
    config: &EmulatorConfig,
    client_id: &str,
    credential: Credential<'_>,
) -> Value {
    let zone_id = config.zone_id_of(client_id);
    // XSUAA client ids of service bindings are "sb-" followed by the xsappname.
    let xsappname = client_id.strip_prefix("sb-").unwrap_or(client_id);
    let mut credentials = json!({
        "clientid": client_id,
        "uri": urls.emulator_url,
        "url": urls.emulator_url,
        "uaadomain": uaa_domain(urls.emulator_url),
        "identityzone": config.identity_zone,
        "tenantid": zone_id,
        "zoneid": zone_id,
        "subaccountid": config.subaccount_id,
        "tenantmode": "dedicated",
        "xsappname": xsappname,
        "instanceid": config.instance_id,
        "verificationkey": urls.verification_key,
    });
    match credential {
        Credential::Secret(client_secret) => {
            credentials["clientsecret"] = json!(client_secret);
        }
        Credential::X509 {
            certificate_pem,
            key_pem,
        } => {
            credentials["credential-type"] = json!("x509");
            credentials["certificate"] = json!(certificate_pem);
            credentials["key"] = json!(key_pem);
            credentials["certurl"] = json!(urls.certurl);
        }
    }

    json!({
        "label": "destination",
        "provider": null,
        "plan": "lite",
        "name": DESTINATION_INSTANCE_NAME,
        "tags": ["destination", "conn", "connsvc"],
        "instance_guid": config.instance_id,
        "instance_name": DESTINATION_INSTANCE_NAME,
        "binding_guid": uuid::Uuid::new_v4().to_string(),
        "binding_name": null,
        "credentials": credentials,
        "syslog_drain_url": null,
        "volume_mounts": [],
    })
}

/// Builds one `xsuaa` binding entry of plan `application`.
pub(crate) fn xsuaa_binding(
    urls: &BindingUrls<'_>,
    config: &EmulatorConfig,
    client_id: &str,
    client_secret: &str,
    xsappname: &str,
) -> Value {
    let zone_id = config.zone_id_of(client_id);
    let mut credentials = json!({
        "clientid": client_id,
        "clientsecret": client_secret,
        "credential-type": "binding-secret",
        "url": urls.emulator_url,
        "uaadomain": uaa_domain(urls.emulator_url),
        "xsappname": xsappname,
        "identityzone": config.identity_zone,
        "identityzoneid": zone_id,
        "tenantid": zone_id,
        "zoneid": zone_id,
        "subaccountid": config.subaccount_id,
        "tenantmode": if config.tenants.is_empty() { "dedicated" } else { "shared" },
        "verificationkey": urls.verification_key,
        "sburl": urls.emulator_url,
        "apiurl": urls.emulator_url,
    });
    if let Some(certurl) = urls.certurl {
        credentials["certurl"] = json!(certurl);
    }
    json!({
        "label": "xsuaa",
        "provider": null,
        "plan": "application",
        "name": XSUAA_INSTANCE_NAME,
        "tags": ["xsuaa"],
        "instance_guid": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, xsappname.as_bytes()).to_string(),
        "instance_name": XSUAA_INSTANCE_NAME,
        "binding_guid": uuid::Uuid::new_v4().to_string(),
        "binding_name": null,
        "credentials": credentials,
        "syslog_drain_url": null,
        "volume_mounts": [],
    })
}

/// Builds one `connectivity` binding entry.
pub(crate) fn connectivity_binding(
    urls: &BindingUrls<'_>,
    config: &EmulatorConfig,
    client_id: &str,
    client_secret: &str,
) -> Value {
    let zone_id = config.zone_id_of(client_id);
    let port = urls.connectivity_proxy_port.to_string();
    let xsappname = client_id.strip_prefix("sb-").unwrap_or(client_id);
    json!({
        "label": "connectivity",
        "provider": null,
        "plan": "lite",
        "name": CONNECTIVITY_INSTANCE_NAME,
        "tags": ["connectivity", "conn", "connsvc"],
        "instance_guid": uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, client_id.as_bytes()).to_string(),
        "instance_name": CONNECTIVITY_INSTANCE_NAME,
        "binding_guid": uuid::Uuid::new_v4().to_string(),
        "binding_name": null,
        "credentials": {
            "clientid": client_id,
            "clientsecret": client_secret,
            "url": urls.emulator_url,
            "token_service_url": urls.emulator_url,
            "token_service_domain": uaa_domain(urls.emulator_url),
            "uaadomain": uaa_domain(urls.emulator_url),
            "identityzone": config.identity_zone,
            "tenantid": zone_id,
            "subaccount_id": config.subaccount_id,
            "xsappname": xsappname,
            "verificationkey": urls.verification_key,
            "onpremise_proxy_host": "127.0.0.1",
            "onpremise_proxy_http_port": port,
            "onpremise_proxy_port": port,
            "onpremise_socks5_proxy_port": port,
            "onpremise_proxy_ldap_port": port,
            "onpremise_proxy_rfc_port": port,
        },
        "syslog_drain_url": null,
        "volume_mounts": [],
    })
}

/// Returns the host and port of `emulator_url`, which the bindings use as
/// `uaadomain`.
fn uaa_domain(emulator_url: &str) -> &str {
    emulator_url
        .split_once("://")
        .map_or(emulator_url, |(_, authority)| authority)
}
