//! Per-destination policies from `BTP_GATEWAY_DESTINATION_POLICIES`.
//!
//! The variable is a JSON object from destination name to policy:
//!
//! ```json
//! {"S4HANA": {"readOnly": true,
//!             "servicePaths": ["/sap/opu/odata/sap/API_BUSINESS_PARTNER"]}}
//! ```
//!
//! `readOnly` allows only reads: `GET`, `HEAD`, and `POST` to a `$batch`
//! resource, whose parts the component checks (a read-only `$batch` may not
//! contain a changeset). `servicePaths` is an allow-list: a request path must
//! equal a listed path or continue it with `/`, `;` (SAP matrix parameters
//! such as `;v=0002`) or `(`. A path with a `.` or `..` segment, also
//! percent-encoded, is never allowed, because the backend could resolve it
//! to a service outside the list. A destination without a policy is
//! unrestricted.
//!
//! The host enforces the policy on every outgoing request, so a replaced
//! component cannot bypass it, and hands the same JSON to the component as
//! the `wasi:config/store` key `destination-policies`, so the component can
//! return a precise OData error before it sends anything.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The environment variable that contains the policies.
pub const POLICIES_VARIABLE: &str = "BTP_GATEWAY_DESTINATION_POLICIES";

/// The policy of one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DestinationPolicy {
    /// Whether only reads are allowed.
    #[serde(default)]
    pub read_only: bool,
    /// The service paths requests may address; `None` allows every path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_paths: Option<Vec<String>>,
}

/// The policies of all destinations, by destination name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationPolicies(BTreeMap<String, DestinationPolicy>);

/// The reason a request breaks a destination's policy.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("destination '{destination}' is read-only, and {method} is a write")]
    ReadOnly { destination: String, method: String },
    #[error("path is not in the service paths allowed for destination '{destination}'")]
    PathNotAllowed { destination: String },
}

impl DestinationPolicies {
    /// Parses and checks the variable's value. `source` names where it came
    /// from, for the error message.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidVariable {
            variable: POLICIES_VARIABLE.to_owned(),
            source_name: source.to_owned(),
            reason,
        };
        let mut policies: BTreeMap<String, DestinationPolicy> = serde_json::from_str(text)
            .map_err(|error| {
                invalid(format!(
                    "is not a JSON object of destination name to {{\"readOnly\": bool, \
                     \"servicePaths\": [\"/path\", ...]}} ({}; {})",
                    super::describe_json_error(&error),
                    unknown_field_hint(&error)
                ))
            })?;

        for (name, policy) in &mut policies {
            let Some(paths) = &mut policy.service_paths else {
                continue;
            };
            for path in paths.iter_mut() {
                if !path.starts_with('/') || path.contains(['?', '#']) || has_dot_segment(path) {
                    return Err(invalid(format!(
                        "lists the service path '{path}' for destination '{name}': a service \
                         path starts with '/' and has no query, fragment, '.' or '..' segment"
                    )));
                }
                let trimmed = path.trim_end_matches('/');
                *path = if trimmed.is_empty() { "/" } else { trimmed }.to_owned();
            }
        }
        Ok(Self(policies))
    }

    /// Returns the canonical JSON the component reads from `wasi:config`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks one outgoing request. `path` is the request path relative to
    /// the destination URL, without the query; `tunnelled_method` is the
    /// value of `X-HTTP-Method`, if any.
    pub fn check(
        &self,
        destination: &str,
        method: &http::Method,
        tunnelled_method: Option<&str>,
        path: &str,
    ) -> Result<(), PolicyViolation> {
        let Some(policy) = self.0.get(destination) else {
            return Ok(());
        };

        if policy.read_only && !is_read(method, tunnelled_method, path) {
            let method = tunnelled_method.unwrap_or(method.as_str()).to_owned();
            return Err(PolicyViolation::ReadOnly {
                destination: destination.to_owned(),
                method,
            });
        }

        if let Some(allowed) = &policy.service_paths {
            let permitted =
                !has_dot_segment(path) && allowed.iter().any(|prefix| path_is_under(path, prefix));
            if !permitted {
                return Err(PolicyViolation::PathNotAllowed {
                    destination: destination.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Returns whether a request only reads. A `$batch` POST counts as a read
/// here; the component checks that it contains no changeset.
fn is_read(method: &http::Method, tunnelled_method: Option<&str>, path: &str) -> bool {
    if tunnelled_method.is_some() {
        return false;
    }
    match *method {
        http::Method::GET | http::Method::HEAD => true,
        http::Method::POST => path.trim_end_matches('/').ends_with("/$batch"),
        _ => false,
    }
}

fn path_is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with(['/', ';', '(']),
        None => false,
    }
}

/// Returns whether a segment is `.` or `..`, also when percent-encoded.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = percent_decode_str(segment).collect::<Vec<u8>>();
        decoded == b"." || decoded == b".."
    })
}

/// Names the unknown field that serde reports, since describe_json_error
/// leaves out the message text.
fn unknown_field_hint(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("unknown field") {
        // serde's message quotes only the field name and the expected names,
        // never a value, so it is safe to show.
        message
            .split(" at line")
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        "each policy may set readOnly and servicePaths".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn policies(text: &str) -> DestinationPolicies {
        match DestinationPolicies::parse(text, "test") {
            Ok(policies) => policies,
            Err(error) => panic!("{error}"),
        }
    }

    fn error(text: &str) -> String {
        match DestinationPolicies::parse(text, "test") {
            Ok(policies) => panic!("accepted {policies:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn read_only_allows_reads_and_batch() {
        let p = policies(r#"{"S4": {"readOnly": true}}"#);
        assert_eq!(p.check("S4", &Method::GET, None, "/sap/x/Items"), Ok(()));
        assert_eq!(p.check("S4", &Method::HEAD, None, "/sap/x/"), Ok(()));
        assert_eq!(p.check("S4", &Method::POST, None, "/sap/x/$batch"), Ok(()));
        assert!(p.check("S4", &Method::POST, None, "/sap/x/Items").is_err());
        assert!(
            p.check("S4", &Method::DELETE, None, "/sap/x/Items(1)")
                .is_err()
        );
        assert_eq!(
            p.check("S4", &Method::POST, Some("MERGE"), "/sap/x/$batch"),
            Err(PolicyViolation::ReadOnly {
                destination: "S4".to_owned(),
                method: "MERGE".to_owned()
            })
        );
        assert_eq!(p.check("Other", &Method::DELETE, None, "/x"), Ok(()));
    }

    #[test]
    fn service_paths_match_at_boundaries() {
        let p = policies(r#"{"S4": {"servicePaths": ["/sap/opu/odata/sap/API_A/"]}}"#);
        for path in [
            "/sap/opu/odata/sap/API_A",
            "/sap/opu/odata/sap/API_A/",
            "/sap/opu/odata/sap/API_A/Items('1')",
            "/sap/opu/odata/sap/API_A;v=0002/Items",
        ] {
            assert_eq!(p.check("S4", &Method::GET, None, path), Ok(()), "{path}");
        }
        for path in [
            "/sap/opu/odata/sap/API_AB/Items",
            "/sap/opu/odata/sap/API_A/../API_B/Items",
            "/sap/opu/odata/sap/API_A/%2E%2E/API_B/Items",
            "/sap/opu/odata/sap/api_a/Items",
            "",
        ] {
            assert!(
                p.check("S4", &Method::GET, None, path).is_err(),
                "{path} must be denied"
            );
        }
    }

    #[test]
    fn canonical_json_trims_slashes() {
        let p = policies(r#"{"S4": {"readOnly": false, "servicePaths": ["/a/b/"]}}"#);
        assert_eq!(
            p.to_json(),
            r#"{"S4":{"readOnly":false,"servicePaths":["/a/b"]}}"#
        );
    }

    #[test]
    fn rejects_bad_policies() {
        let message = error(r#"{"S4": {"readonly": true}}"#);
        assert!(message.contains("unknown field `readonly`"), "{message}");
        assert!(message.contains(POLICIES_VARIABLE), "{message}");

        let message = error(r#"{"S4": {"servicePaths": ["sap/x"]}}"#);
        assert!(message.contains("'sap/x'"), "{message}");
        assert!(message.contains("starts with '/'"), "{message}");

        let message = error(r#"{"S4": {"servicePaths": ["/a/../b"]}}"#);
        assert!(message.contains("'/a/../b'"), "{message}");

        let message = error(r#"["S4"]"#);
        assert!(message.contains("JSON object"), "{message}");
    }
}
