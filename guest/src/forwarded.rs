//! The gateway's public URL as the client sees it, for rewriting backend
//! links.
//!
//! Behind the Cloud Foundry router and the approuter, the client-facing
//! scheme and host arrive in `x-forwarded-proto` and `x-forwarded-host`;
//! a reverse proxy that mounts the gateway under a path sends it in
//! `x-forwarded-prefix`. Without them the request's own scheme and `Host`
//! are used. Only the first value of a comma-separated list counts, since
//! that is the one the client addressed.

/// Returns the public URL of a destination at the gateway, without a
/// trailing `/`: `{scheme}://{host}{prefix}/odata/{encoded destination}`.
pub fn gateway_base(
    headers: &[(String, Vec<u8>)],
    request_scheme: &str,
    request_authority: &str,
    encoded_destination: &str,
) -> String {
    let scheme = first_value(headers, "x-forwarded-proto")
        .filter(|value| value == "http" || value == "https")
        .unwrap_or_else(|| request_scheme.to_owned());
    let host = first_value(headers, "x-forwarded-host")
        .filter(|value| is_valid_authority(value))
        .unwrap_or_else(|| request_authority.to_owned());
    let prefix = first_value(headers, "x-forwarded-prefix")
        .filter(|value| value.starts_with('/') && !value.contains(['?', '#', ' ']))
        .map(|value| value.trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{scheme}://{host}{prefix}/odata/{encoded_destination}")
}

fn first_value(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    let (_, value) = headers.iter().find(|(header, _)| header == name)?;
    let text = std::str::from_utf8(value).ok()?;
    let first = text.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// Accepts host names, IPv4 and bracketed IPv6 addresses with an optional
/// port; anything that could end the authority early is refused.
fn is_valid_authority(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]_".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> (String, Vec<u8>) {
        (name.to_owned(), value.as_bytes().to_vec())
    }

    #[test]
    fn uses_request_without_forwarded_headers() {
        assert_eq!(
            gateway_base(&[], "http", "127.0.0.1:8080", "S4"),
            "http://127.0.0.1:8080/odata/S4"
        );
    }

    #[test]
    fn prefers_forwarded_headers() {
        let headers = [
            header("x-forwarded-proto", "https, http"),
            header("x-forwarded-host", "app.cfapps.eu10.hana.ondemand.com"),
            header("x-forwarded-prefix", "/api/"),
        ];
        assert_eq!(
            gateway_base(&headers, "http", "10.0.0.1:8080", "My%20Dest"),
            "https://app.cfapps.eu10.hana.ondemand.com/api/odata/My%20Dest"
        );
    }

    #[test]
    fn ignores_malformed_forwarded_values() {
        let headers = [
            header("x-forwarded-proto", "javascript"),
            header("x-forwarded-host", "evil.example/path?"),
            header("x-forwarded-prefix", "no-slash"),
        ];
        assert_eq!(
            gateway_base(&headers, "http", "gw:8080", "S4"),
            "http://gw:8080/odata/S4"
        );
    }
}
