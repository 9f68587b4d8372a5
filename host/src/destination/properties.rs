//! Reading a destination from its properties, as the Destination service
//! returns them in `destinationConfiguration` (`Name`, `URL`,
//! `Authentication`, `sap-client`, `URL.headers.*`, ...).

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use super::{AuthenticationType, DestinationConfig, ProxyType};
use crate::secret::Secret;

/// Parses destination properties. The error message names the property and
/// never quotes a value.
pub(crate) fn parse_properties(
    properties: &Map<String, Value>,
) -> Result<DestinationConfig, String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        match properties.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
            Some(_) => Err(format!("property '{key}' must be a string")),
        }
    };

    let name = text("Name")?
        .filter(|n| !n.is_empty())
        .ok_or("property 'Name' is missing")?;
    let url_text = text("URL")?.ok_or("property 'URL' is missing")?;
    let url = Url::parse(url_text.trim())
        .map_err(|error| format!("property 'URL' is not a valid URL ({error})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("property 'URL' must start with http:// or https://".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "property 'URL' must not contain credentials: use User and Password".to_owned(),
        );
    }

    let authentication = text("Authentication")?
        .map_or(AuthenticationType::NoAuthentication, |name| {
            AuthenticationType::parse(&name)
        });
    let proxy_type = match text("ProxyType")?.as_deref() {
        None | Some("Internet") => ProxyType::Internet,
        Some("OnPremise") => ProxyType::OnPremise,
        Some(other) => ProxyType::Unsupported(other.to_owned()),
    };
    let flag = |key: &str| -> Result<bool, String> {
        match text(key)?.as_deref() {
            None => Ok(false),
            Some(flag) if flag.eq_ignore_ascii_case("true") => Ok(true),
            Some(flag) if flag.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(format!("property '{key}' must be true or false")),
        }
    };
    let trust_all = flag("TrustAll")?;
    let forward_auth_token = flag("forwardAuthToken")?;

    let token_service_url =
        match text("tokenServiceURL")? {
            Some(value) => Some(Url::parse(value.trim()).map_err(|error| {
                format!("property 'tokenServiceURL' is not a valid URL ({error})")
            })?),
            None => None,
        };

    let timeout = match text("timeout")? {
        Some(value) => Some(Duration::from_millis(value.trim().parse::<u64>().map_err(
            |_| "property 'timeout' must be a number of milliseconds".to_owned(),
        )?)),
        None => None,
    };

    let mut url_headers = Vec::new();
    let mut url_queries = Vec::new();
    for (key, value) in properties {
        if let Some(header) = key.strip_prefix("URL.headers.") {
            let value = text(key)?.unwrap_or_default();
            http::HeaderName::try_from(header)
                .map_err(|_| format!("property '{key}' does not name a valid HTTP header"))?;
            http::HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("property '{key}' is not a valid header value"))?;
            url_headers.push((header.to_owned(), value));
        } else if let Some(query) = key.strip_prefix("URL.queries.") {
            url_queries.push((query.to_owned(), text(key)?.unwrap_or_default()));
        } else if !value.is_string()
            && !value.is_null()
            && !value.is_number()
            && !value.is_boolean()
        {
            return Err(format!("property '{key}' must be a string"));
        }
    }

    Ok(DestinationConfig {
        name,
        url,
        authentication,
        proxy_type,
        location_id: text("CloudConnectorLocationId")?.filter(|id| !id.is_empty()),
        user: text("User")?,
        password: text("Password")?.map(Secret::new),
        token_service_url,
        client_id: text("clientId")?,
        client_secret: text("clientSecret")?.map(Secret::new),
        sap_client: text("sap-client")?.filter(|client| !client.is_empty()),
        url_headers,
        url_queries,
        timeout,
        trust_all,
        key_store_location: text("KeyStoreLocation")?.filter(|location| !location.is_empty()),
        key_store_password: text("KeyStorePassword")?.map(Secret::new),
        forward_auth_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn reads_service_properties() {
        let config = parse_properties(&props(serde_json::json!({
            "Name": "S4", "Type": "HTTP", "URL": "https://s4.example/sap/opu/odata",
            "Authentication": "BasicAuthentication", "ProxyType": "Internet",
            "User": "u", "Password": "p", "sap-client": "100",
            "URL.headers.x-api-key": "k", "URL.queries.sap-language": "EN",
        })));
        let Ok(config) = config else {
            panic!("{config:?}")
        };
        assert_eq!(config.name, "S4");
        assert_eq!(
            config.authentication,
            AuthenticationType::BasicAuthentication
        );
        assert_eq!(config.sap_client.as_deref(), Some("100"));
        assert_eq!(
            config.url_headers,
            vec![("x-api-key".to_owned(), "k".to_owned())]
        );
        assert_eq!(
            config.url_queries,
            vec![("sap-language".to_owned(), "EN".to_owned())]
        );
        assert_eq!(
            config.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("p")
        );
    }

    #[test]
    fn rejects_missing_and_invalid_url() {
        let missing = parse_properties(&props(serde_json::json!({ "Name": "A" })));
        assert_eq!(missing.err().as_deref(), Some("property 'URL' is missing"));
        let ftp = parse_properties(&props(serde_json::json!({ "Name": "A", "URL": "ftp://x" })));
        assert_eq!(
            ftp.err().as_deref(),
            Some("property 'URL' must start with http:// or https://")
        );
    }

    #[test]
    fn unknown_authentication_is_kept_for_later_error() {
        let config = parse_properties(&props(serde_json::json!({
            "Name": "A", "URL": "https://x", "Authentication": "SAMLAssertion"
        })));
        // SAMLAssertion hands a SAML assertion to the client, which this
        // host does not forward.
        assert!(matches!(
            config.map(|c| c.authentication),
            Ok(AuthenticationType::Unsupported(kind)) if kind == "SAMLAssertion"
        ));
    }

    #[test]
    fn on_premise_properties() {
        let config = parse_properties(&props(serde_json::json!({
            "Name": "A", "URL": "http://s4.onprem:44300", "ProxyType": "OnPremise",
            "CloudConnectorLocationId": "LOC1", "Authentication": "PrincipalPropagation",
            "TrustAll": "TRUE"
        })));
        let Ok(config) = config else {
            panic!("{config:?}")
        };
        assert_eq!(config.proxy_type, ProxyType::OnPremise);
        assert_eq!(config.location_id.as_deref(), Some("LOC1"));
        assert_eq!(
            config.authentication,
            AuthenticationType::PrincipalPropagation
        );
        assert!(config.trust_all);
    }

    #[test]
    fn invalid_header_property_is_named() {
        let config = parse_properties(&props(serde_json::json!({
            "Name": "A", "URL": "https://x", "URL.headers.bad header": "v"
        })));
        assert_eq!(
            config.err().as_deref(),
            Some("property 'URL.headers.bad header' does not name a valid HTTP header")
        );
    }
}
