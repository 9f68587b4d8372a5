//! `VCAP_SERVICES` with a Destination service binding that points at the
//! emulator, shaped like the binding Cloud Foundry gives an application.
//!
//! In a real binding `uri` is the Destination service and `url` is the
//! subaccount's XSUAA. Here both are the emulator. The `verificationkey` is a
//! placeholder because the emulator does not sign its tokens.

use serde_json::{Value, json};

use super::config::EmulatorConfig;

/// Name of the service instance in the generated binding.
pub const DESTINATION_INSTANCE_NAME: &str = "destination";

/// Placeholder for the public key that would verify XSUAA tokens. No key
/// verifies the emulator's tokens, so this is deliberately not a valid key.
const PLACEHOLDER_VERIFICATION_KEY: &str =
    "-----BEGIN PUBLIC KEY-----\nbtp-emulator-tokens-are-not-signed\n-----END PUBLIC KEY-----";

/// Builds a `VCAP_SERVICES` object with one `destination` binding for an
/// emulator at `emulator_url` (for example `http://127.0.0.1:40123`), using
/// the ids from `config` and the given client credentials. The token URL is
/// `credentials.url` plus `/oauth/token`.
pub fn vcap_services(
    emulator_url: &str,
    config: &EmulatorConfig,
    client_id: &str,
    client_secret: &str,
) -> Value {
    let emulator_url = emulator_url.trim_end_matches('/');
    let zone_id = config.zone_id_of(client_id);
    // XSUAA client ids of service bindings are "sb-" followed by the xsappname.
    let xsappname = client_id.strip_prefix("sb-").unwrap_or(client_id);
    // A real uaadomain is a DNS domain, but the emulator has only its host
    // and port.
    let uaa_domain = emulator_url
        .split_once("://")
        .map_or(emulator_url, |(_, authority)| authority);

    json!({
        "destination": [{
            "label": "destination",
            "provider": null,
            "plan": "lite",
            "name": DESTINATION_INSTANCE_NAME,
            "tags": ["destination", "conn", "connsvc"],
            "instance_guid": config.instance_id,
            "instance_name": DESTINATION_INSTANCE_NAME,
            "binding_guid": uuid::Uuid::new_v4().to_string(),
            "binding_name": null,
            "credentials": {
                "clientid": client_id,
                "clientsecret": client_secret,
                "uri": emulator_url,
                "url": emulator_url,
                "uaadomain": uaa_domain,
                "identityzone": config.identity_zone,
                "tenantid": zone_id,
                "zoneid": zone_id,
                "subaccountid": config.subaccount_id,
                "tenantmode": "dedicated",
                "xsappname": xsappname,
                "instanceid": config.instance_id,
                "verificationkey": PLACEHOLDER_VERIFICATION_KEY,
            },
            "syslog_drain_url": null,
            "volume_mounts": [],
        }]
    })
}
