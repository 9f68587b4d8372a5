//! Correlation ids, as SAP's Cloud Foundry libraries handle them: the
//! client's `x-correlationid`, else the router's `x-vcap-request-id` when it
//! is UUID-shaped, else a new UUID.

use http::{HeaderMap, HeaderValue};

/// The maximum length of a correlation id taken from a client. Longer ones
/// are replaced.
const MAX_LENGTH: usize = 128;

/// Returns the correlation id for a request.
pub fn correlation_id(headers: &HeaderMap) -> HeaderValue {
    let from_client = headers
        .get("x-correlationid")
        .filter(|value| is_acceptable(value.as_bytes()));
    if let Some(value) = from_client {
        return value.clone();
    }

    let from_router = headers
        .get("x-vcap-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| uuid::Uuid::try_parse(value).is_ok());
    if let Some(value) = from_router.and_then(|value| HeaderValue::from_str(value).ok()) {
        return value;
    }

    let generated = uuid::Uuid::new_v4().to_string();
    HeaderValue::from_str(&generated).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Returns whether a client's id is short, printable ASCII without spaces,
/// and so safe in logs and JSON.
fn is_acceptable(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= MAX_LENGTH && value.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn client_id_wins() {
        let id = correlation_id(&headers(&[
            ("x-correlationid", "abc-123"),
            ("x-vcap-request-id", "5f0c8c4e-8f1b-4b55-9d07-3f5c0c1f2a11"),
        ]));
        assert_eq!(id, "abc-123");
    }

    #[test]
    fn router_id_when_uuid() {
        let id = correlation_id(&headers(&[(
            "x-vcap-request-id",
            "5f0c8c4e-8f1b-4b55-9d07-3f5c0c1f2a11",
        )]));
        assert_eq!(id, "5f0c8c4e-8f1b-4b55-9d07-3f5c0c1f2a11");
        let id = correlation_id(&headers(&[("x-vcap-request-id", "not-a-uuid")]));
        assert!(uuid::Uuid::try_parse(id.to_str().unwrap_or_default()).is_ok());
    }

    #[test]
    fn unsafe_client_id_is_replaced() {
        let id = correlation_id(&headers(&[("x-correlationid", "a b")]));
        assert_ne!(id, "a b");
        assert!(uuid::Uuid::try_parse(id.to_str().unwrap_or_default()).is_ok());
    }
}
