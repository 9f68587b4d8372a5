//! Errors the gateway itself produces, as JSON bodies with a stable shape.
//!
//! The shape follows the JSON error format of the service's OData version,
//! so that SAPUI5 and other OData clients show the message, and carries the
//! correlation id so that a user can find the matching lines in the gateway
//! log. OData V4:
//!
//! ```json
//! {"error": {"code": "DestinationNotFound", "message": "...",
//!            "target": "MyDestination",
//!            "innererror": {"correlation_id": "..."}}}
//! ```
//!
//! OData V2 (as SAP Gateway writes it), where the message is an object:
//!
//! ```json
//! {"error": {"code": "DestinationNotFound",
//!            "message": {"lang": "en", "value": "..."},
//!            "innererror": {"correlation_id": "..."}}}
//! ```
//!
//! Messages name the value at fault and what to do next. They never contain
//! a backend URL or a credential: the host keeps those and logs the details.

use serde_json::json;

use crate::odata::ODataVersion;

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
    /// The backend's status, for an error that replaces a backend response.
    pub upstream_status: Option<u16>,
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
            format!(
                "method {method} is not supported by this gateway: use GET, HEAD, POST, PUT, \
                 PATCH, MERGE or DELETE"
            ),
        )
    }

    pub fn read_only(name: &str, method: &str) -> Self {
        Self::new(
            403,
            "DestinationReadOnly",
            format!(
                "destination '{name}' is read-only in this gateway, so {method} is not allowed: \
                 ask the operator to change readOnly in BTP_GATEWAY_DESTINATION_POLICIES if \
                 writes are intended"
            ),
        )
        .with_target(name)
    }

    pub fn read_only_batch(name: &str) -> Self {
        Self::new(
            403,
            "DestinationReadOnly",
            format!(
                "destination '{name}' is read-only in this gateway, and this $batch contains a \
                 changeset (a write): send reads only"
            ),
        )
        .with_target(name)
    }

    pub fn service_path_not_allowed(name: &str, path: &str) -> Self {
        Self::new(
            403,
            "ServicePathNotAllowed",
            format!(
                "service path '{}' is not allowed for destination '{name}': the operator lists \
                 the allowed paths in servicePaths of BTP_GATEWAY_DESTINATION_POLICIES",
                truncate(path)
            ),
        )
        .with_target(name)
    }

    pub fn invalid_batch(name: &str, reason: &str) -> Self {
        Self::new(
            400,
            "InvalidBatchRequest",
            format!(
                "the $batch request cannot be forwarded: {}",
                truncate(reason)
            ),
        )
        .with_target(name)
    }

    pub fn request_body_failed(detail: &str) -> Self {
        Self::new(
            400,
            "RequestBodyFailed",
            format!("the request body could not be read: {detail}"),
        )
    }

    pub fn csrf_token_failed(name: &str) -> Self {
        Self::new(
            502,
            "CsrfTokenFetchFailed",
            format!(
                "the backend of destination '{name}' requires a CSRF token but returned none for \
                 x-csrf-token: Fetch (tried HEAD and GET on the service root, with and without \
                 a trailing '/'): check that the service exists and that the destination's user \
                 may write"
            ),
        )
        .with_target(name)
    }

    /// Builds the error for a backend error that is not in an OData format,
    /// such as an HTML login page or plain text from the Cloud Connector.
    pub fn non_odata_upstream(name: &str, status: u16, description: &str) -> Self {
        let gateway_status = if (400..600).contains(&status) {
            status
        } else {
            502
        };
        let mut error = Self::new(
            gateway_status,
            "UpstreamError",
            format!("the backend of destination '{name}' answered {status} {description}"),
        )
        .with_target(name);
        error.upstream_status = Some(status);
        error
    }

    /// Builds the error for a redirect that leaves the destination, which
    /// usually points at a login page.
    pub fn redirected_away(name: &str, status: u16) -> Self {
        let mut error = Self::new(
            502,
            "UpstreamRedirect",
            format!(
                "the backend of destination '{name}' redirected to another site ({status}), \
                 which usually means it asks for a login: check the destination's \
                 authentication and user"
            ),
        )
        .with_target(name);
        error.upstream_status = Some(status);
        error
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
            upstream_status: None,
        }
    }

    fn with_target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    /// Serialises the error as a JSON body in the format of `version`.
    pub fn to_json(&self, correlation_id: &str, version: ODataVersion) -> Vec<u8> {
        let message = match version {
            ODataVersion::V2 => json!({ "lang": "en", "value": self.message }),
            ODataVersion::V4 => json!(self.message),
        };
        let mut inner = json!({ "correlation_id": correlation_id });
        if let Some(status) = self.upstream_status {
            inner["upstream_status"] = json!(status);
        }
        let mut error = json!({
            "code": self.code,
            "message": message,
            "innererror": inner,
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
        match serde_json::from_slice(&error.to_json("corr-1", ODataVersion::V4)) {
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
    fn v2_message_is_an_object() {
        let error = GatewayError::non_odata_upstream("S4", 503, "with text/plain: down");
        let body: serde_json::Value =
            match serde_json::from_slice(&error.to_json("c", ODataVersion::V2)) {
                Ok(value) => value,
                Err(parse_error) => panic!("{parse_error}"),
            };
        assert_eq!(body["error"]["message"]["lang"], "en");
        let value = body["error"]["message"]["value"]
            .as_str()
            .unwrap_or_default();
        assert!(
            value.contains("answered 503 with text/plain: down"),
            "{value}"
        );
        assert_eq!(body["error"]["innererror"]["upstream_status"], 503);
        assert_eq!(error.status, 503);
    }

    #[test]
    fn success_status_upstream_becomes_502() {
        assert_eq!(
            GatewayError::non_odata_upstream("S4", 200, "an HTML page").status,
            502
        );
    }

    #[test]
    fn errors_without_target_omit_it() {
        let body = parse(&GatewayError::missing_destination());
        assert!(body["error"].get("target").is_none());
    }
}
