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
use url::Url;

use super::ConfigError;
use crate::secret::Secret;

/// One entry of a service's list in `VCAP_SERVICES`. Other fields Cloud
/// Foundry adds (`binding_guid`, `volume_mounts`, ...) are ignored.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ServiceBinding {
    pub name: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub plan: Option<String>,
    #[serde(default)]
    credentials: serde_json::Value,
}

/// The parsed `VCAP_SERVICES`: service label to bindings.
#[derive(Debug, Clone, Default)]
pub struct VcapServices {
    services: BTreeMap<String, Vec<ServiceBinding>>,
}

/// What a binding to the Destination service provides.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationServiceCredentials {
    /// The binding's name, for messages.
    pub binding_name: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The XSUAA token endpoint (`{url}/oauth/token`).
    pub token_url: Url,
    /// The Destination service's REST API root (`uri`).
    pub service_uri: Url,
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
    /// exists.
    pub fn destination_service(
        &self,
    ) -> Result<Option<DestinationServiceCredentials>, ConfigError> {
        let Some(binding) = self.find("destination")? else {
            return Ok(None);
        };
        binding.destination_credentials().map(Some)
    }
}

impl ServiceBinding {
    fn destination_credentials(&self) -> Result<DestinationServiceCredentials, ConfigError> {
        let credential_type = self
            .credential("credential-type")
            .unwrap_or("binding-secret");
        if credential_type != "binding-secret" && credential_type != "instance-secret" {
            return Err(ConfigError::InvalidBinding {
                binding: self.name.clone(),
                reason: format!(
                    "credential-type '{credential_type}' is not supported yet: bind the service with \
                     the default client secret credentials"
                ),
            });
        }

        let client_id = self.required("clientid")?.to_owned();
        let client_secret = Secret::new(self.required("clientsecret")?);
        let xsuaa_url = self.url("url")?;
        let token_url = xsuaa_url
            .join("oauth/token")
            .map_err(|_| self.invalid("url", "cannot be joined with oauth/token"))?;
        let service_uri = self.url("uri")?;

        Ok(DestinationServiceCredentials {
            binding_name: self.name.clone(),
            client_id,
            client_secret,
            token_url,
            service_uri,
        })
    }

    fn credential(&self, field: &str) -> Option<&str> {
        self.credentials
            .get(field)
            .and_then(serde_json::Value::as_str)
    }

    fn required(&self, field: &str) -> Result<&str, ConfigError> {
        self.credential(field)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| ConfigError::InvalidBinding {
                binding: self.name.clone(),
                reason: format!(
                    "its credentials have no '{field}': recreate the binding or the service key"
                ),
            })
    }

    /// Reads a URL credential, with a trailing `/` so relative joins append.
    fn url(&self, field: &str) -> Result<Url, ConfigError> {
        let text = self.required(field)?;
        let with_slash = if text.ends_with('/') {
            text.to_owned()
        } else {
            format!("{text}/")
        };
        let url = Url::parse(&with_slash).map_err(|_| self.invalid(field, "is not a valid URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(self.invalid(field, "must be an http or https URL"));
        }
        Ok(url)
    }

    fn invalid(&self, field: &str, problem: &str) -> ConfigError {
        ConfigError::InvalidBinding {
            binding: self.name.clone(),
            reason: format!("its credential '{field}' {problem}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let credentials = vcap.destination_service().ok().flatten();
        let Some(credentials) = credentials else {
            panic!("no credentials")
        };
        assert_eq!(
            credentials.token_url.as_str(),
            "https://sub.authentication.example/oauth/token"
        );
        assert_eq!(
            credentials.service_uri.as_str(),
            "https://destination.example/"
        );
        assert_eq!(credentials.client_secret.expose(), "s");
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
            .destination_service()
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
