//! Service bindings from `VCAP_SERVICES`, and the Destination service
//! credentials taken from them.
//!
//! A binding is found by its service label first, then by a tag (which is how
//! user-provided services announce what they are), then by its name.
//! Identical duplicates collapse into one; different ones are an error that
//! lists their names, because picking one silently could send requests with
//! the wrong credentials.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;
use super::credentials::{
    ConnectivityCredentials, DestinationServiceCredentials, XsuaaCredentials,
};

/// One entry of a service's list in `VCAP_SERVICES`. Other fields Cloud
/// Foundry adds (`binding_guid`, `volume_mounts`, ...) are ignored.
#[derive(Clone, Deserialize, PartialEq)]
pub struct ServiceBinding {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    pub(super) credentials: serde_json::Value,
}

impl std::fmt::Debug for ServiceBinding {
    /// Shows everything but the credentials, which hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBinding")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("tags", &self.tags)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

/// The parsed `VCAP_SERVICES`: service label to bindings.
#[derive(Debug, Clone, Default)]
pub struct VcapServices {
    services: BTreeMap<String, Vec<ServiceBinding>>,
}

impl VcapServices {
    /// Parses the JSON text of `VCAP_SERVICES`; `source` names where it came
    /// from in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let services: BTreeMap<String, Vec<ServiceBinding>> =
            serde_json::from_str(text).map_err(|error| ConfigError::InvalidJson {
                variable: "VCAP_SERVICES".to_owned(),
                source_name: source.to_owned(),
                reason: super::describe_json_error(&error),
            })?;
        Ok(Self { services })
    }

    /// Finds the one binding for a service, by label, then tag, then name.
    pub fn find(&self, label: &str) -> Result<Option<&ServiceBinding>, ConfigError> {
        let all = || self.services.values().flatten();
        let by_label: Vec<_> = self.services.get(label).into_iter().flatten().collect();
        let matches = if !by_label.is_empty() {
            by_label
        } else {
            let by_tag: Vec<_> = all()
                .filter(|b| b.tags.iter().any(|t| t == label))
                .collect();
            if !by_tag.is_empty() {
                by_tag
            } else {
                all().filter(|b| b.name == label).collect()
            }
        };

        let mut distinct: Vec<&ServiceBinding> = Vec::new();
        for binding in matches {
            if !distinct.contains(&binding) {
                distinct.push(binding);
            }
        }
        match distinct.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one)),
            many => Err(ConfigError::AmbiguousBinding {
                service: label.to_owned(),
                names: many.iter().map(|b| b.name.clone()).collect(),
            }),
        }
    }

    /// Reads the Destination service credentials, if a destination binding
    /// exists. `chosen` picks one of several bindings by name.
    pub fn destination_service(
        &self,
        chosen: Option<&str>,
    ) -> Result<Option<DestinationServiceCredentials>, ConfigError> {
        self.find_chosen("destination", chosen)?
            .map(ServiceBinding::destination_credentials)
            .transpose()
    }

    /// Reads the XSUAA credentials, if an xsuaa binding exists.
    pub fn xsuaa(&self, chosen: Option<&str>) -> Result<Option<XsuaaCredentials>, ConfigError> {
        self.find_chosen("xsuaa", chosen)?
            .map(ServiceBinding::xsuaa_credentials)
            .transpose()
    }

    /// Reads the Connectivity service credentials, if a connectivity
    /// binding exists.
    pub fn connectivity(
        &self,
        chosen: Option<&str>,
    ) -> Result<Option<ConnectivityCredentials>, ConfigError> {
        self.find_chosen("connectivity", chosen)?
            .map(ServiceBinding::connectivity_credentials)
            .transpose()
    }

    /// Finds a binding by name when `chosen` is set, else by [`Self::find`].
    fn find_chosen(
        &self,
        label: &str,
        chosen: Option<&str>,
    ) -> Result<Option<&ServiceBinding>, ConfigError> {
        let Some(name) = chosen else {
            return self.find(label);
        };
        self.services
            .values()
            .flatten()
            .find(|binding| binding.name == name)
            .map(Some)
            .ok_or_else(|| ConfigError::InvalidBinding {
                binding: name.to_owned(),
                reason: format!(
                    "no binding has this name, but it was chosen for the {label} service: \
                     check the binding names in VCAP_SERVICES"
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::credentials::ClientAuthentication;

    fn binding(label: &str, name: &str, tags: &[&str], secret: &str) -> serde_json::Value {
        serde_json::json!({
            "label": label, "name": name, "tags": tags, "plan": "lite",
            "binding_guid": "ignored",
            "credentials": {
                "clientid": "sb-client", "clientsecret": secret,
                "url": "https://sub.authentication.example", "uri": "https://destination.example",
            }
        })
    }

    fn parse(value: serde_json::Value) -> VcapServices {
        match VcapServices::parse(&value.to_string(), "test") {
            Ok(vcap) => vcap,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn finds_by_label_and_builds_urls() {
        let vcap =
            parse(serde_json::json!({ "destination": [binding("destination", "dest", &[], "s")] }));
        let credentials = vcap.destination_service(None).ok().flatten();
        let Some(credentials) = credentials else {
            panic!("no credentials")
        };
        assert_eq!(
            credentials.client.token_url.as_str(),
            "https://sub.authentication.example/oauth/token"
        );
        assert_eq!(
            credentials.service_uri.as_str(),
            "https://destination.example/"
        );
        assert!(matches!(
            &credentials.client.authentication,
            ClientAuthentication::Secret(secret) if secret.expose() == "s"
        ));
    }

    #[test]
    fn finds_user_provided_by_tag_then_name() {
        let by_tag = parse(serde_json::json!({
            "user-provided": [binding("user-provided", "my-dest", &["destination"], "s")]
        }));
        assert_eq!(
            by_tag
                .find("destination")
                .ok()
                .flatten()
                .map(|b| b.name.as_str()),
            Some("my-dest")
        );

        let by_name = parse(serde_json::json!({
            "user-provided": [binding("user-provided", "destination", &[], "s")]
        }));
        assert!(by_name.find("destination").ok().flatten().is_some());
    }

    #[test]
    fn debug_output_hides_credentials() {
        let vcap = parse(
            serde_json::json!({ "destination": [binding("destination", "dest", &[], "very-secret")] }),
        );
        let text = format!("{vcap:?}");
        assert!(text.contains("dest"), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
    }

    #[test]
    fn identical_duplicates_collapse() {
        let one = binding("destination", "dest", &[], "s");
        let vcap = parse(serde_json::json!({ "destination": [one.clone(), one] }));
        assert!(vcap.find("destination").is_ok());
    }

    #[test]
    fn different_duplicates_are_an_error() {
        let vcap = parse(serde_json::json!({ "destination": [
            binding("destination", "dest-a", &[], "s"),
            binding("destination", "dest-b", &[], "t"),
        ] }));
        let error = vcap
            .find("destination")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("dest-a") && error.contains("dest-b"),
            "{error}"
        );
    }

    #[test]
    fn missing_secret_names_field_not_value() {
        let mut entry = binding("destination", "dest", &[], "s");
        entry["credentials"]["clientsecret"] = serde_json::Value::Null;
        let vcap = parse(serde_json::json!({ "destination": [entry] }));
        let error = vcap
            .destination_service(None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("'dest'") && error.contains("clientsecret"),
            "{error}"
        );
    }

    #[test]
    fn malformed_json_names_variable_and_position() {
        let error =
            VcapServices::parse("{\"destination\": [", "VCAP_SERVICES_FILE_PATH /tmp/v.json")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(error.contains("VCAP_SERVICES"), "{error}");
        assert!(error.contains("/tmp/v.json"), "{error}");
        assert!(error.contains("line 1"), "{error}");
    }
}
