//! The `destinations` variable: a JSON list of destinations that need no
//! Destination service, as the approuter and the SAP Cloud SDK read it.
//!
//! Entries use the approuter's and the Cloud SDK's field names (`name`,
//! `url`, `username`, `password`, `authentication`, `tokenServiceUrl`,
//! `clientId`, `clientSecret`, `sapClient`, `timeout`, `headers`,
//! `queryParameters`) or the Destination service's property names (`Name`,
//! `URL`, `User`, `Password`, `Authentication`, `sap-client`,
//! `URL.headers.*`, ...), and the approuter's `forwardAuthToken`. Unknown
//! fields and approuter features this host does not implement are rejected,
//! so a destination never works differently from what its entry states.

use serde_json::{Map, Value};

use super::{ConfigError, describe_json_error};
use crate::destination::{AuthenticationType, DestinationConfig, ProxyType, parse_properties};

/// Field names of the approuter and the Cloud SDK, and the Destination
/// service property each one maps to.
const FIELD_ALIASES: &[(&str, &str)] = &[
    ("name", "Name"),
    ("url", "URL"),
    ("authentication", "Authentication"),
    ("username", "User"),
    ("user", "User"),
    ("password", "Password"),
    ("tokenServiceUrl", "tokenServiceURL"),
    ("clientId", "clientId"),
    ("clientSecret", "clientSecret"),
    ("sapClient", "sap-client"),
    ("type", "Type"),
    ("proxyType", "ProxyType"),
    ("description", "Description"),
    ("timeout", "timeout"),
    ("forwardAuthToken", "forwardAuthToken"),
];

/// Destination service property names accepted as they are.
const SERVICE_PROPERTIES: &[&str] = &[
    "Name",
    "URL",
    "Authentication",
    "User",
    "Password",
    "tokenServiceURL",
    "clientId",
    "clientSecret",
    "sap-client",
    "Type",
    "ProxyType",
    "Description",
    "timeout",
    "TrustAll",
];

/// Parses the variable's JSON text; `source` names where it came from.
pub fn parse(text: &str, source: &str) -> Result<Vec<DestinationConfig>, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidVariable {
        variable: "destinations".to_owned(),
        source_name: source.to_owned(),
        reason,
    };

    let value: Value = serde_json::from_str(text).map_err(|error| {
        invalid(format!(
            "is not valid JSON: {}",
            describe_json_error(&error)
        ))
    })?;
    let Value::Array(entries) = value else {
        return Err(invalid(
            "must be a JSON list of destinations: [{\"name\": ..., \"url\": ...}]".to_owned(),
        ));
    };

    let mut destinations: Vec<DestinationConfig> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Value::Object(fields) = entry else {
            return Err(invalid(format!("entry {index} is not a JSON object")));
        };
        let destination = parse_entry(fields).map_err(|reason| {
            let name = fields
                .get("name")
                .or_else(|| fields.get("Name"))
                .and_then(Value::as_str)
                .map(|name| format!(" ('{name}')"))
                .unwrap_or_default();
            invalid(format!("entry {index}{name}: {reason}"))
        })?;
        if destinations
            .iter()
            .any(|other| other.name == destination.name)
        {
            return Err(invalid(format!(
                "entry {index}: the name '{}' is used twice; names must be unique",
                destination.name
            )));
        }
        destinations.push(destination);
    }
    Ok(destinations)
}

fn parse_entry(fields: &Map<String, Value>) -> Result<DestinationConfig, String> {
    let mut properties = Map::new();
    for (key, value) in fields {
        if let Some((_, property)) = FIELD_ALIASES.iter().find(|(alias, _)| alias == key) {
            insert_once(&mut properties, property, value.clone())?;
        } else if SERVICE_PROPERTIES.contains(&key.as_str())
            || key.starts_with("URL.headers.")
            || key.starts_with("URL.queries.")
        {
            insert_once(&mut properties, key, value.clone())?;
        } else if key == "headers" || key == "queryParameters" {
            let prefix = if key == "headers" {
                "URL.headers."
            } else {
                "URL.queries."
            };
            let Value::Object(map) = value else {
                return Err(format!("'{key}' must be an object of names to values"));
            };
            for (name, value) in map {
                insert_once(&mut properties, &format!("{prefix}{name}"), value.clone())?;
            }
        } else {
            return Err(unsupported_field_message(key));
        }
    }

    // The approuter infers basic authentication from a user and password.
    if !properties.contains_key("Authentication") && properties.contains_key("User") {
        properties.insert(
            "Authentication".to_owned(),
            Value::from("BasicAuthentication"),
        );
    }

    let config = parse_properties(&properties)?;
    check_local_credentials(&config)?;
    Ok(config)
}

fn insert_once(properties: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), String> {
    if properties.insert(key.to_owned(), value).is_some() {
        return Err(format!("'{key}' is given twice under different spellings"));
    }
    Ok(())
}

fn unsupported_field_message(key: &str) -> String {
    match key {
        "proxyHost"
        | "proxyPort"
        | "strictSSL"
        | "setXForwardedHeaders"
        | "ipDomain"
        | "proxyEntity" => {
            format!("'{key}' is an approuter option this gateway does not support yet: remove it")
        }
        _ => format!(
            "unknown field '{key}': use name, url, authentication, username, password, \
             tokenServiceUrl, clientId, clientSecret, sapClient, timeout, forwardAuthToken, \
             headers, queryParameters or Destination service properties"
        ),
    }
}

/// Checks that a local destination's own credentials are complete, so a
/// typo fails at start and not on the first request.
fn check_local_credentials(config: &DestinationConfig) -> Result<(), String> {
    if config.proxy_type != ProxyType::Internet {
        return Err(format!(
            "ProxyType {:?} needs the Destination service: in the destinations variable only \
             Internet destinations are supported",
            config.proxy_type
        ));
    }
    let missing = |what: &str| {
        Err(format!(
            "{what} is required for {:?} authentication",
            config.authentication
        ))
    };
    match &config.authentication {
        AuthenticationType::NoAuthentication => Ok(()),
        AuthenticationType::BasicAuthentication => {
            if config.user.is_none() || config.password.is_none() {
                return missing("'username' and 'password'");
            }
            Ok(())
        }
        AuthenticationType::OAuth2ClientCredentials => {
            if config.token_service_url.is_none()
                || config.client_id.is_none()
                || config.client_secret.is_none()
            {
                return missing("'tokenServiceUrl', 'clientId' and 'clientSecret'");
            }
            Ok(())
        }
        AuthenticationType::Unsupported(kind) => Err(format!(
            "authentication '{kind}' is not supported in the destinations variable: use \
             NoAuthentication, BasicAuthentication or OAuth2ClientCredentials"
        )),
        other => Err(format!(
            "authentication {other:?} needs the Destination service: in the destinations \
             variable use NoAuthentication, BasicAuthentication or OAuth2ClientCredentials"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Vec<DestinationConfig> {
        match parse(text, "test") {
            Ok(destinations) => destinations,
            Err(error) => panic!("{error}"),
        }
    }

    fn parse_err(text: &str) -> String {
        parse(text, "test")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn approuter_spelling() {
        let destinations = parse_ok(
            r#"[{"name": "backend", "url": "http://127.0.0.1:4004", "username": "alice",
                 "password": "pw", "sapClient": "001", "headers": {"x-a": "1"}}]"#,
        );
        let backend = &destinations[0];
        assert_eq!(
            backend.authentication,
            AuthenticationType::BasicAuthentication
        );
        assert_eq!(backend.sap_client.as_deref(), Some("001"));
        assert_eq!(
            backend.url_headers,
            vec![("x-a".to_owned(), "1".to_owned())]
        );
    }

    #[test]
    fn service_spelling() {
        let destinations = parse_ok(
            r#"[{"Name": "B", "URL": "http://127.0.0.1:1", "Authentication": "OAuth2ClientCredentials",
                 "tokenServiceURL": "http://127.0.0.1:2/oauth/token", "clientId": "c",
                 "clientSecret": "s", "URL.queries.a": "b"}]"#,
        );
        assert_eq!(
            destinations[0].authentication,
            AuthenticationType::OAuth2ClientCredentials
        );
        assert_eq!(
            destinations[0].url_queries,
            vec![("a".to_owned(), "b".to_owned())]
        );
    }

    #[test]
    fn errors_name_entry_and_field() {
        let error = parse_err(
            r#"[{"name": "a", "url": "http://x"}, {"name": "b", "url": "http://y", "proxyHost": "p"}]"#,
        );
        assert!(
            error.contains("entry 1 ('b')") && error.contains("proxyHost"),
            "{error}"
        );

        let error = parse_err(
            r#"[{"name": "a", "url": "http://x", "authentication": "BasicAuthentication"}]"#,
        );
        assert!(error.contains("'username' and 'password'"), "{error}");

        let error =
            parse_err(r#"[{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]"#);
        assert!(error.contains("used twice"), "{error}");

        let error = parse_err(r#"[{"name": "a", "url": "http://x", "ProxyType": "OnPremise"}]"#);
        assert!(
            error.contains("ProxyType OnPremise needs the Destination service"),
            "{error}"
        );

        let error = parse_err(r#"{"name": "a"}"#);
        assert!(error.contains("must be a JSON list"), "{error}");

        let error = parse_err(r#"[{"name": "a", "Name": "b", "url": "http://x"}]"#);
        assert!(error.contains("twice under different spellings"), "{error}");
    }

    #[test]
    fn malformed_json_has_position_but_no_value() {
        let error = parse_err(r#"[{"name": "a", "password": "topsecret" "#);
        assert!(error.contains("line 1"), "{error}");
        assert!(!error.contains("topsecret"), "{error}");
    }
}
