//! Errors from the registry's error responses: the status code and the
//! OCI error body, `{"errors": [{"code": …, "message": …}]}`.

use http::StatusCode;

use super::error::OciError;
use super::reference::Reference;
use super::transport::{Reply, redact};

/// Maps an unsuccessful response to an error, with the registry's error
/// code and message when the body has them.
pub(super) fn status_error(reference: &Reference, reply: &Reply) -> OciError {
    let registry = reference.registry().to_owned();
    let name = reference.to_string();
    let registry_errors = registry_errors(&reply.body);
    match reply.status {
        StatusCode::NOT_FOUND => OciError::NotFound {
            detail: not_found_detail(reference, &registry_errors),
            reference: name,
        },
        StatusCode::UNAUTHORIZED => OciError::AuthenticationRequired {
            registry,
            reference: name,
        },
        StatusCode::FORBIDDEN => OciError::Denied {
            registry,
            reference: name,
        },
        status => OciError::UnexpectedStatus {
            registry,
            reference: name,
            status,
            detail: match registry_errors.first() {
                Some((code, message)) => format!(": {code} {message}"),
                None => format!(" from {}", redact(&reply.url)),
            },
        },
    }
}

fn not_found_detail(reference: &Reference, errors: &[(String, String)]) -> String {
    let codes: Vec<&str> = errors.iter().map(|(code, _)| code.as_str()).collect();
    if codes.contains(&"NAME_UNKNOWN") {
        repository_unknown(reference)
    } else if codes.contains(&"MANIFEST_UNKNOWN") {
        format!(
            "repository {} has no manifest {}",
            reference.repository(),
            reference.manifest_name()
        )
    } else if codes.contains(&"BLOB_UNKNOWN") {
        "the registry does not have a blob that the manifest refers to".to_owned()
    } else {
        format!(
            "registry {} returned 404 Not Found for repository {}",
            reference.registry(),
            reference.repository()
        )
    }
}

pub(super) fn repository_unknown(reference: &Reference) -> String {
    format!(
        "repository {} does not exist on registry {}",
        reference.repository(),
        reference.registry()
    )
}

/// Reads the OCI error body, `{"errors": [{"code": …, "message": …}]}`.
pub(super) fn registry_errors(body: &[u8]) -> Vec<(String, String)> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        code: String,
        #[serde(default)]
        message: String,
    }
    /// Registry messages are short, so a longer one is cut: a misbehaving
    /// server cannot fill the log.
    const MAX_MESSAGE: usize = 200;

    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return Vec::new();
    };
    parsed
        .errors
        .into_iter()
        .map(|entry| {
            let message: String = entry.message.chars().take(MAX_MESSAGE).collect();
            (entry.code, message)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_codes_are_read() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#;
        assert_eq!(
            registry_errors(body),
            [("MANIFEST_UNKNOWN".to_owned(), "manifest unknown".to_owned())]
        );
        assert!(registry_errors(b"<html>not found</html>").is_empty());
    }

    #[test]
    fn not_found_names_repository_or_manifest() -> anyhow::Result<()> {
        let reference: Reference = "oci://127.0.0.1:5000/team/orders:v2".parse()?;
        let unknown = |code: &str| vec![(code.to_owned(), String::new())];
        assert_eq!(
            not_found_detail(&reference, &unknown("NAME_UNKNOWN")),
            "repository team/orders does not exist on registry 127.0.0.1:5000"
        );
        assert_eq!(
            not_found_detail(&reference, &unknown("MANIFEST_UNKNOWN")),
            "repository team/orders has no manifest v2"
        );
        Ok(())
    }
}
