//! Fuzzes `VcapServices::parse` and reading the Destination service, XSUAA
//! and Connectivity bindings from the result.
//!
//! Invariants: a token URL read from a binding is http or https and ends in
//! `/oauth/token`, and no error message or credential debug output contains
//! a value from `clientsecret`, `key` or `password`.

#![no_main]

use std::fmt::Debug;

use btp_gateway::config::{ConfigError, OAuthClient, VcapServices};
use btp_gateway_fuzz::{assert_no_marker, may_contain_marker, plant_in_vcap_services};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    parse_and_read_bindings(text);

    if may_contain_marker(text) {
        return;
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    plant_in_vcap_services(&mut value);
    for output in parse_and_read_bindings(&value.to_string()) {
        assert_no_marker(&output, "VCAP_SERVICES error or credentials");
    }
});

/// Parses `text` and reads the three bindings the host uses. Returns every
/// error message and the debug output of every result.
fn parse_and_read_bindings(text: &str) -> Vec<String> {
    let vcap = match VcapServices::parse(text, "fuzz") {
        Ok(vcap) => vcap,
        Err(error) => return describe_error(&error),
    };

    let destination_service = vcap.destination_service(None);
    if let Ok(Some(credentials)) = &destination_service {
        check_token_url(&credentials.client);
    }
    let connectivity = vcap.connectivity(None);
    if let Ok(Some(credentials)) = &connectivity {
        check_token_url(&credentials.client);
    }
    let xsuaa = vcap.xsuaa(None);

    let mut outputs = describe(destination_service);
    outputs.extend(describe(xsuaa));
    outputs.extend(describe(connectivity));
    outputs
}

fn check_token_url(client: &OAuthClient) {
    let token_url = &client.token_url;
    assert!(
        matches!(token_url.scheme(), "http" | "https"),
        "token URL {token_url} is neither http nor https"
    );
    assert!(
        token_url.path().ends_with("/oauth/token"),
        "token URL {token_url} does not end in /oauth/token"
    );
}

fn describe<T: Debug>(result: Result<T, ConfigError>) -> Vec<String> {
    match result {
        Ok(value) => vec![format!("{value:?}")],
        Err(error) => describe_error(&error),
    }
}

fn describe_error(error: &ConfigError) -> Vec<String> {
    vec![error.to_string(), format!("{error:?}")]
}
