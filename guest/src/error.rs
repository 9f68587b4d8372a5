//! Errors the gateway itself produces, as JSON bodies with a stable shape.
//!
//! The shape follows the OData V4 JSON error format, so OData clients can
//! read it, and carries the correlation id so that a user can find the
//! matching lines in the gateway log:
//!
//! ```json
//! {"error": {"code": "DestinationNotFound", "message": "...",
//!            "target": "MyDestination",
//!            "innererror": {"correlation_id": "..."}}}
//! ```
//!
//! Messages name the value at fault and what to do next. They never contain
//! a backend URL or a credential: the host keeps those and logs the details.

use serde_json::json;

/// An error the gateway returns instead of a backend response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    /// HTTP status code of the response.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation with the fix.
    pub message: String,
    /// The destination concerned, if any.
    pub target: Option<String>,
}

impl GatewayError {
    pub fn not_a_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!(
                "no gateway route matches '{}': use /odata/{{destination}}/{{service path}}",
                truncate(path)
            ),
        )
    }

    pub fn missing_destination() -> Self {
        Self::new(
            400,
            "MissingDestination",
            "the path names no destination: use /odata/{destination}/{service path}".to_owned(),
        )
    }

    pub fn invalid_destination_encoding() -> Self {
        Self::new(
            400,
            "InvalidDestinationName",
            "the destination segment of the path is not valid percent-encoded UTF-8: every '%' \
             must start an escape such as %2F"
                .to_owned(),
        )
    }

    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("method {method} is not supported by this gateway: use GET or HEAD"),
        )
    }

    pub fn destination_not_found(name: &str) -> Self {
        Self::new(
            404,
            "DestinationNotFound",
            format!(
                "destination '{name}' was not found: create it in the Destination service \
                 (BTP cockpit, Connectivity > Destinations) or add it to the `destinations` \
                 environment variable; names are case-sensitive"
            ),
        )
        .with_target(name)
    }

    pub fn destination_unavailable(name: &str) -> Self {
        Self::new(
            502,
            "DestinationLookupFailed",
            format!(
                "destination '{name}' could not be looked up: the Destination service or its \
                 token endpoint failed; the gateway log has the cause under this correlation id"
            ),
        )
        .with_target(name)
    }

    pub fn destination_misconfigured(name: &str) -> Self {
        Self::new(
            502,
            "DestinationMisconfigured",
            format!(
                "destination '{name}' cannot be used as configured: check its URL and \
                 authentication; the gateway log has the cause under this correlation id"
            ),
        )
        .with_target(name)
    }

    pub fn outbound_denied(name: &str) -> Self {
        Self::new(
            500,
            "OutboundDenied",
            format!("the gateway host denied the request to destination '{name}'"),
        )
        .with_target(name)
    }

    pub fn backend_timeout(name: &str) -> Self {
        Self::new(
            504,
            "BackendTimeout",
            format!("the backend of destination '{name}' did not answer in time"),
        )
        .with_target(name)
    }

    pub fn backend_failed(name: &str, detail: &str) -> Self {
        Self::new(
            502,
            "BackendUnreachable",
            format!("the backend of destination '{name}' could not be reached: {detail}"),
        )
        .with_target(name)
    }

    fn new(status: u16, code: &'static str, message: String) -> Self {
        Self {
            status,
            code,
            message,
            target: None,
        }
    }

    fn with_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    /// Serialises the error as an OData V4 style JSON body.
    pub fn to_json(&self, correlation_id: &str) -> Vec<u8> {
        let mut error = json!({
            "code": self.code,
            "message": self.message,
            "innererror": { "correlation_id": correlation_id },
        });
        if let Some(target) = &self.target {
            error["target"] = json!(target);
        }
        json!({ "error": error }).to_string().into_bytes()
    }
}

/// Shortens client-supplied text before it is echoed in a message.
fn truncate(text: &str) -> &str {
    const MAX_CHARS: usize = 200;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(error: &GatewayError) -> serde_json::Value {
        match serde_json::from_slice(&error.to_json("corr-1")) {
            Ok(value) => value,
            Err(parse_error) => panic!("error body is not JSON: {parse_error}"),
        }
    }

    #[test]
    fn not_found_names_destination() {
        let body = parse(&GatewayError::destination_not_found("Näme 'x'"));
        assert_eq!(body["error"]["code"], "DestinationNotFound");
        assert_eq!(body["error"]["target"], "Näme 'x'");
        assert_eq!(body["error"]["innererror"]["correlation_id"], "corr-1");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("'Näme 'x''"), "{message}");
    }

    #[test]
    fn statuses_match_causes() {
        assert_eq!(GatewayError::destination_not_found("d").status, 404);
        assert_eq!(GatewayError::destination_unavailable("d").status, 502);
        assert_eq!(GatewayError::destination_misconfigured("d").status, 502);
        assert_eq!(GatewayError::backend_timeout("d").status, 504);
        assert_eq!(GatewayError::method_not_allowed("POST").status, 405);
        assert_eq!(GatewayError::missing_destination().status, 400);
    }

    #[test]
    fn long_paths_are_truncated() {
        let path = "/x".repeat(500);
        let message = GatewayError::not_a_route(&path).message;
        assert!(message.len() < 300, "{}", message.len());
    }

    #[test]
    fn errors_without_target_omit_it() {
        let body = parse(&GatewayError::missing_destination());
        assert!(body["error"].get("target").is_none());
    }
}
