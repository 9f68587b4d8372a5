//! Fuzzes `config::destinations::parse`, the reader of the `destinations`
//! variable.
//!
//! Invariants: accepted destinations have unique, non-empty names, an http
//! or https URL without user information, and the credentials their
//! authentication type needs. No error message or debug output contains a
//! value from `password`, `Password`, `clientSecret` or `KeyStorePassword`.

#![no_main]

use btp_gateway::config::destinations;
use btp_gateway::destination::{AuthenticationType, DestinationConfig, ProxyType};
use btp_gateway_fuzz::{assert_no_marker, may_contain_marker, plant_in_destinations};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    parse_and_check(text);

    if may_contain_marker(text) {
        return;
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    plant_in_destinations(&mut value);
    for output in parse_and_check(&value.to_string()) {
        assert_no_marker(&output, "destinations error or debug output");
    }
});

/// Parses `text`, checks the accepted destinations, and returns the error
/// message or the debug output of each destination.
fn parse_and_check(text: &str) -> Vec<String> {
    match destinations::parse(text, "fuzz") {
        Ok(parsed) => {
            for (index, destination) in parsed.iter().enumerate() {
                check_destination(destination);
                assert!(
                    parsed[..index]
                        .iter()
                        .all(|other| other.name != destination.name),
                    "the name '{}' was accepted twice",
                    destination.name
                );
            }
            parsed.iter().map(|d| format!("{d:?}")).collect()
        }
        Err(error) => vec![error.to_string(), format!("{error:?}")],
    }
}

fn check_destination(destination: &DestinationConfig) {
    assert!(!destination.name.is_empty(), "an empty name was accepted");
    let url = &destination.url;
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "URL {url} is neither http nor https"
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "URL {url} has user information"
    );
    assert_eq!(destination.proxy_type, ProxyType::Internet);
    match destination.authentication {
        AuthenticationType::NoAuthentication => {}
        AuthenticationType::BasicAuthentication => {
            assert!(destination.user.is_some(), "basic authentication without a user");
            assert!(
                destination.password.is_some(),
                "basic authentication without a password"
            );
        }
        AuthenticationType::OAuth2ClientCredentials => {
            assert!(
                destination.token_service_url.is_some(),
                "client credentials without a token service URL"
            );
            assert!(
                destination.client_id.is_some(),
                "client credentials without a client id"
            );
            assert!(
                destination.client_secret.is_some(),
                "client credentials without a client secret"
            );
        }
        ref other => panic!("authentication {other:?} was accepted"),
    }
}
