//! The service root of a `$batch` request, and the conversion of inner
//! request targets to paths relative to it.
//!
//! OData resolves a relative inner target against the `$batch` URL, which is
//! `{service root}$batch`, so a path relative to the service root names the
//! same resource at the gateway and at the backend. Absolute targets name
//! the gateway and would be wrong at the backend, so they are converted, and
//! a target outside the service root is rejected, relative targets whose
//! `..` segments climb above the root included.

use std::fmt;

use percent_encoding::percent_decode_str;

/// The gateway's public URL of one OData service: origin and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRoot {
    origin: Origin,
    /// The path as given, ending with `/`.
    path: String,
    /// The percent-decoded path segments, for comparison.
    segments: Vec<Vec<u8>>,
}

/// A scheme, host and port, with the host in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

/// An inner request target that addresses a resource outside the service
/// root.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct OutsideService;

impl ServiceRoot {
    /// Creates the service root from the gateway's public origin, such as
    /// `https://gw.example.com` or `http://localhost:8080`, and the path of
    /// the service at the gateway, such as
    /// `/odata/S4/sap/opu/odata/sap/API_X/` (a missing final `/` is added).
    /// Returns `None` when `origin` is not an http or https origin without a
    /// path, or when `path` does not start with `/` or contains a query.
    pub fn new(origin: &str, path: &str) -> Option<Self> {
        let (scheme, authority) = origin.split_once("://")?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '?', '#']) {
            return None;
        }
        let origin = Origin::parse(scheme, authority)?;

        if !path.starts_with('/') || path.contains(['?', '#']) {
            return None;
        }
        let path = if path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        let inner = path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_default();
        let segments = if inner.is_empty() {
            Vec::new()
        } else {
            inner.split('/').map(decode).collect()
        };

        Some(Self {
            origin,
            path,
            segments,
        })
    }

    /// Creates the service root from the path of the `$batch` request at
    /// the gateway, such as `/odata/S4/sap/opu/odata/sap/API_X/$batch`, with
    /// or without a query. Returns `None` when the path does not end with
    /// `/$batch`, or under the conditions of [`ServiceRoot::new`].
    pub fn from_batch_path(origin: &str, batch_path: &str) -> Option<Self> {
        let path = batch_path
            .split_once('?')
            .map_or(batch_path, |(path, _)| path);
        let root = path.strip_suffix("$batch")?;
        if !root.ends_with('/') {
            return None;
        }
        Self::new(origin, root)
    }

    /// Returns the path prefix, which ends with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Returns the target relative to the service root when `target` is an
    /// absolute URL or absolute path under it, and `None` when `target` is
    /// already relative and stays as it is.
    pub(crate) fn relative_target(&self, target: &str) -> Result<Option<String>, OutsideService> {
        if let Some(authority_and_path) = target.strip_prefix("//") {
            return self
                .strip_origin(&self.origin.scheme, authority_and_path)
                .map(Some);
        }
        if target.starts_with('/') {
            return self.strip_path(target).map(Some);
        }
        if let Some((scheme, rest)) = split_scheme(target) {
            let authority_and_path = rest.strip_prefix("//").ok_or(OutsideService)?;
            return self.strip_origin(scheme, authority_and_path).map(Some);
        }

        if climbs_above_root(target) {
            return Err(OutsideService);
        }
        Ok(None)
    }

    fn strip_origin(
        &self,
        scheme: &str,
        authority_and_path: &str,
    ) -> Result<String, OutsideService> {
        let end = authority_and_path
            .find(['/', '?', '#'])
            .unwrap_or(authority_and_path.len());
        let (authority, path) = authority_and_path.split_at(end);
        let origin = Origin::parse(scheme, authority).ok_or(OutsideService)?;
        if origin != self.origin {
            return Err(OutsideService);
        }
        self.strip_path(path)
    }

    /// Removes the service root's segments from an absolute path with
    /// optional query and fragment.
    fn strip_path(&self, path_and_query: &str) -> Result<String, OutsideService> {
        let path_end = path_and_query
            .find(['?', '#'])
            .unwrap_or(path_and_query.len());
        let (path, suffix) = path_and_query.split_at(path_end);

        let mut rest = path;
        for expected in &self.segments {
            let after_slash = rest.strip_prefix('/').ok_or(OutsideService)?;
            let end = after_slash.find('/').unwrap_or(after_slash.len());
            let (segment, tail) = after_slash.split_at(end);
            if decode(segment) != *expected {
                return Err(OutsideService);
            }
            rest = tail;
        }

        let relative_path = rest.strip_prefix('/').unwrap_or(rest);
        let relative = if needs_dot_prefix(relative_path) {
            format!("./{relative_path}{suffix}")
        } else {
            format!("{relative_path}{suffix}")
        };
        if climbs_above_root(&relative) {
            return Err(OutsideService);
        }
        Ok(relative)
    }
}

impl fmt::Display for ServiceRoot {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Origin { scheme, host, port } = &self.origin;
        write!(formatter, "{scheme}://{host}")?;
        if Some(*port) != default_port(scheme) {
            write!(formatter, ":{port}")?;
        }
        formatter.write_str(&self.path)
    }
}

impl Origin {
    /// Parses `host[:port]` of an http or https URL. Returns `None` for
    /// other schemes, an authority with user information, or an invalid
    /// port.
    fn parse(scheme: &str, authority: &str) -> Option<Self> {
        let scheme = scheme.to_ascii_lowercase();
        let default_port = default_port(&scheme)?;
        if authority.contains('@') {
            return None;
        }

        let (host, port) = if authority.starts_with('[') {
            let close = authority.find(']')?;
            authority.split_at(close + 1)
        } else {
            authority
                .rfind(':')
                .map_or((authority, ""), |colon| authority.split_at(colon))
        };
        let port = match port {
            "" | ":" => default_port,
            _ => port.strip_prefix(':')?.parse().ok()?,
        };
        if host.is_empty() {
            return None;
        }

        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `scheme:rest` when `target` starts with an RFC 3986 scheme.
fn split_scheme(target: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = target.split_once(':')?;
    let mut characters = scheme.chars();
    let starts_with_letter = characters.next()?.is_ascii_alphabetic();
    let valid = starts_with_letter
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    valid.then_some((scheme, rest))
}

/// Returns whether a relative path needs `./` in front to stay a relative
/// path: when it is empty (the service document), starts with `/`, or has a
/// `:` in its first segment, where it would read as a scheme.
fn needs_dot_prefix(relative_path: &str) -> bool {
    let first_segment = relative_path.split('/').next().unwrap_or_default();
    relative_path.is_empty() || relative_path.starts_with('/') || first_segment.contains(':')
}

/// Returns whether resolving the relative reference against the service
/// root would leave it, through `..` segments (RFC 3986 section 5.2.4).
fn climbs_above_root(relative: &str) -> bool {
    let path_end = relative.find(['?', '#']).unwrap_or(relative.len());
    let segments: Vec<&str> = relative[..path_end].split('/').collect();

    let mut depth: usize = 0;
    for (index, segment) in segments.iter().enumerate() {
        let is_last = index + 1 == segments.len();
        match decode(segment).as_slice() {
            b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(parent) => depth = parent,
                None => return true,
            },
            _ if !is_last => depth += 1,
            _ => {}
        }
    }
    false
}

fn decode(segment: &str) -> Vec<u8> {
    percent_decode_str(segment).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> ServiceRoot {
        match ServiceRoot::new(
            "https://gw.example.com",
            "/odata/S4/sap/opu/odata/sap/API_X/",
        ) {
            Some(root) => root,
            None => panic!("the test service root is invalid"),
        }
    }

    #[test]
    fn new_normalises_origin_and_path() {
        let Some(root) = ServiceRoot::new("HTTPS://GW.Example.com:443/", "/odata/S4/API_X") else {
            panic!("rejected a valid origin");
        };
        assert_eq!(root.to_string(), "https://gw.example.com/odata/S4/API_X/");
        assert_eq!(root.path(), "/odata/S4/API_X/");
    }

    #[test]
    fn new_keeps_other_ports() {
        let Some(root) = ServiceRoot::new("http://localhost:8080", "/odata/Local/") else {
            panic!("rejected a valid origin");
        };
        assert_eq!(root.to_string(), "http://localhost:8080/odata/Local/");
    }

    #[test]
    fn new_rejects_invalid_input() {
        assert_eq!(ServiceRoot::new("ftp://gw.example.com", "/odata/"), None);
        assert_eq!(ServiceRoot::new("gw.example.com", "/odata/"), None);
        assert_eq!(
            ServiceRoot::new("https://gw.example.com/base", "/odata/"),
            None
        );
        assert_eq!(
            ServiceRoot::new("https://user@gw.example.com", "/odata/"),
            None
        );
        assert_eq!(
            ServiceRoot::new("https://gw.example.com:x", "/odata/"),
            None
        );
        assert_eq!(ServiceRoot::new("https://gw.example.com", "odata/"), None);
        assert_eq!(
            ServiceRoot::new("https://gw.example.com", "/odata/?x=1"),
            None
        );
    }

    #[test]
    fn from_batch_path_strips_batch_segment() {
        let parsed = ServiceRoot::from_batch_path(
            "https://gw.example.com",
            "/odata/S4/sap/opu/odata/sap/API_X/$batch?sap-client=100",
        );
        assert_eq!(parsed, Some(root()));
        assert_eq!(
            ServiceRoot::from_batch_path("https://gw.example.com", "/odata/S4/X"),
            None
        );
        assert_eq!(
            ServiceRoot::from_batch_path("https://gw.example.com", "/odata/S4x$batch"),
            None
        );
    }

    #[test]
    fn relative_target_converts_gateway_targets() {
        let cases = [
            (
                "https://gw.example.com/odata/S4/sap/opu/odata/sap/API_X/Items?$top=2",
                "Items?$top=2",
            ),
            (
                "HTTPS://GW.EXAMPLE.COM:443/odata/S4/sap/opu/odata/sap/API_X/Items('1')",
                "Items('1')",
            ),
            (
                "/odata/S4/sap/opu/odata/sap/API_X/Items('1')/to_Sub",
                "Items('1')/to_Sub",
            ),
            ("/odata/S4/sap/opu/odata/sap/API%5FX/Items", "Items"),
            (
                "//gw.example.com/odata/S4/sap/opu/odata/sap/API_X/$metadata",
                "$metadata",
            ),
            ("/odata/S4/sap/opu/odata/sap/API_X/", "./"),
            ("/odata/S4/sap/opu/odata/sap/API_X", "./"),
            (
                "/odata/S4/sap/opu/odata/sap/API_X?$format=json",
                "./?$format=json",
            ),
            ("/odata/S4/sap/opu/odata/sap/API_X//Items", ".//Items"),
            ("/odata/S4/sap/opu/odata/sap/API_X/a:b", "./a:b"),
            (
                "/odata/S4/sap/opu/odata/sap/API_X/Items/../Orders",
                "Items/../Orders",
            ),
        ];
        for (target, expected) in cases {
            assert_eq!(
                root().relative_target(target),
                Ok(Some(expected.to_owned())),
                "{target}"
            );
        }
    }

    #[test]
    fn relative_target_leaves_relative_targets() {
        for target in [
            "Items",
            "$1",
            "$1/to_Sub",
            "Items('1')/to_Sub",
            "Items?$filter=a eq 'b:c'",
            "*",
        ] {
            assert_eq!(root().relative_target(target), Ok(None), "{target}");
        }
    }

    #[test]
    fn relative_target_rejects_other_services() {
        let targets = [
            "https://gw.example.com/odata/S4/sap/opu/odata/sap/API_Y/Items",
            "https://gw.example.com/odata/S5/sap/opu/odata/sap/API_X/Items",
            "https://gw.example.com:8443/odata/S4/sap/opu/odata/sap/API_X/Items",
            "http://gw.example.com/odata/S4/sap/opu/odata/sap/API_X/Items",
            "https://user@gw.example.com/odata/S4/sap/opu/odata/sap/API_X/Items",
            "https://s4.example.com/sap/opu/odata/sap/API_X/Items",
            "https://gw.example.com",
            "/sap/opu/odata/sap/API_X/Items",
            "/odata/S4/sap/opu/odata/sap/API_XY/Items",
            "/odata/S4/sap/opu/odata/sap/API_X/../API_Y/Items",
            "//other.example.com/odata/S4/sap/opu/odata/sap/API_X/Items",
            "../API_Y/Items",
            "Items/../../API_Y/Items",
            "%2E%2E/API_Y",
            "mailto:someone@example.com",
        ];
        for target in targets {
            assert_eq!(
                root().relative_target(target),
                Err(OutsideService),
                "{target}"
            );
        }
    }

    #[test]
    fn root_path_accepts_every_absolute_path() {
        let Some(root) = ServiceRoot::new("https://gw.example.com", "/") else {
            panic!("rejected the root path");
        };
        assert_eq!(root.relative_target("/Items"), Ok(Some("Items".to_owned())));
    }

    #[test]
    fn ipv6_origin_compares_port() {
        let Some(root) = ServiceRoot::new("http://[::1]:8080", "/odata/L/") else {
            panic!("rejected an IPv6 origin");
        };
        assert_eq!(
            root.relative_target("http://[::1]:8080/odata/L/Items"),
            Ok(Some("Items".to_owned()))
        );
        assert_eq!(
            root.relative_target("http://[::1]/odata/L/Items"),
            Err(OutsideService)
        );
    }
}
