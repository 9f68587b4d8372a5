//! The destination policies the host passes under the `wasi:config/store`
//! key `destination-policies`, checked here so that a denied request gets
//! an OData error that names the rule. The host enforces the same rules on
//! every outgoing request; this check only explains them earlier.

use serde_json::Value;

/// The policy of one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub read_only: bool,
    /// Allowed service paths; `None` allows every path.
    pub service_paths: Option<Vec<String>>,
}

impl Policy {
    /// Finds the policy of `destination` in the host's JSON. A missing or
    /// unreadable document means no policy: the host still enforces its own.
    pub fn find(policies_json: Option<&str>, destination: &str) -> Self {
        let Some(value) = policies_json.and_then(|text| serde_json::from_str::<Value>(text).ok())
        else {
            return Self::default();
        };
        let Some(entry) = value.get(destination) else {
            return Self::default();
        };
        let read_only = entry
            .get("readOnly")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let service_paths = entry
            .get("servicePaths")
            .and_then(Value::as_array)
            .map(|paths| {
                paths
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            });
        Self {
            read_only,
            service_paths,
        }
    }

    /// Returns whether a path (without query) is in the allow-list, by the
    /// host's rule. The path must equal a listed path or continue it with
    /// `/`, `;` or `(`, and a path with a `.` or `..` segment never matches.
    pub fn allows_path(&self, path: &str) -> bool {
        let Some(allowed) = &self.service_paths else {
            return true;
        };
        let has_dot_segment = path.split('/').any(|segment| {
            let decoded = percent_encoding::percent_decode_str(segment).collect::<Vec<u8>>();
            decoded == b"." || decoded == b".."
        });
        !has_dot_segment
            && allowed.iter().any(|prefix| {
                prefix == "/"
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ';', '(']))
            })
    }
}

/// Returns whether a `$batch` body has a part that is itself
/// `multipart/mixed`, which is how OData marks a changeset (a write).
pub fn batch_has_changeset(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.lines().any(|line| {
        line.strip_prefix("content-type:")
            .is_some_and(|value| value.trim_start().starts_with("multipart/mixed"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICIES: &str = r#"{"S4":{"readOnly":true,"servicePaths":["/sap/opu/odata/sap/API_A"]},"CAP":{"readOnly":false}}"#;

    #[test]
    fn finds_policy_by_exact_name() {
        let s4 = Policy::find(Some(POLICIES), "S4");
        assert!(s4.read_only);
        assert!(s4.allows_path("/sap/opu/odata/sap/API_A/Items"));
        assert!(s4.allows_path("/sap/opu/odata/sap/API_A;v=2/Items"));
        assert!(!s4.allows_path("/sap/opu/odata/sap/API_AB"));
        assert!(!s4.allows_path("/sap/opu/odata/sap/API_A/%2e%2e/API_B"));
        assert!(!Policy::find(Some(POLICIES), "s4").read_only);
        assert!(Policy::find(Some(POLICIES), "CAP").allows_path("/anything"));
    }

    #[test]
    fn finds_changesets() {
        let with = b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c--\r\n--b--";
        assert!(batch_has_changeset(with));
        let lf = b"--b\ncontent-type:Multipart/Mixed;boundary=c\n\n--c--\n--b--";
        assert!(batch_has_changeset(lf));
        let reads = b"--b\r\nContent-Type: application/http\r\n\r\nGET Items HTTP/1.1\r\n\r\n--b--";
        assert!(!batch_has_changeset(reads));
    }

    #[test]
    fn missing_or_invalid_json_means_no_policy() {
        assert_eq!(Policy::find(None, "S4"), Policy::default());
        assert_eq!(Policy::find(Some("not json"), "S4"), Policy::default());
    }
}
