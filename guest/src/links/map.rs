//! The mapping from a destination's URL to the gateway's URL for it.

use super::uri::{self, UriReference};

/// Maps URLs under a destination's URL to the same path under the gateway.
///
/// A link matches when all of these hold:
///
/// - its scheme and host equal the backend's, ignoring ASCII case;
/// - its port equals the backend's, where an omitted or empty port is the
///   scheme's default;
/// - it has no userinfo;
/// - its path starts with the base path at a segment boundary.
///
/// The bytes after the base path are kept exactly, so percent-encoding,
/// OData key quotes and `$` options survive.
#[derive(Debug, Clone)]
pub struct LinkMap {
    scheme: &'static str,
    host: String,
    port: u16,
    /// The base path without its trailing `/`. An empty base path matches
    /// every path.
    base_path: String,
    /// The gateway URL without a trailing `/`.
    gateway_base: String,
}

impl LinkMap {
    /// Creates the map for one destination.
    ///
    /// `backend_base` is the destination URL as the host reports it, for
    /// example `https://s4.example.com:443/base` (no query, no userinfo,
    /// the path may be empty or end with `/`). `gateway_base` is the public
    /// URL of the same destination at the gateway, for example
    /// `https://gw.example.com/odata/S4` (no trailing `/`). Returns `None`
    /// when `backend_base` is not an absolute http(s) URL.
    ///
    /// A query, fragment or userinfo in `backend_base` is ignored, and one
    /// trailing `/` of `gateway_base` is removed.
    pub fn new(backend_base: &str, gateway_base: &str) -> Option<Self> {
        let parsed = UriReference::parse(backend_base);
        let scheme = parse_scheme(parsed.scheme?)?;
        let authority = parsed.authority?;
        let host_and_port = match authority.rsplit_once('@') {
            Some((_userinfo, host_and_port)) => host_and_port,
            None => authority,
        };
        let (host, port) = split_host_port(host_and_port, default_port(scheme))?;

        let base_path = parsed.path.strip_suffix('/').unwrap_or(parsed.path);
        let gateway_base = gateway_base.strip_suffix('/').unwrap_or(gateway_base);

        Some(LinkMap {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            base_path: base_path.to_owned(),
            gateway_base: gateway_base.to_owned(),
        })
    }

    /// Rewrites one link: an absolute URL, or an absolute-path reference
    /// (`/sap/opu/...`), that addresses the backend base. Returns `None` for
    /// anything else, relative references included.
    ///
    /// A network-path reference (`//host/x`) is read with the backend's
    /// scheme, and an absolute-path reference as being on the backend's origin.
    pub fn rewrite(&self, link: &str) -> Option<String> {
        // A URL never contains control characters (RFC 3986). A value with
        // one is data, not a link, and writing it back would have to change
        // how the character is encoded.
        if link.chars().any(char::is_control) {
            return None;
        }
        let after_origin = self.strip_origin(link)?;
        let rest = self.strip_base_path(after_origin)?;
        Some(format!("{}{rest}", self.gateway_base))
    }

    /// Resolves a `Location` or `Content-Location` value against the
    /// absolute backend URL of the request (RFC 3986, section 5.2), then
    /// rewrites it. Returns `None` when the result is outside the backend base.
    ///
    /// Resolution removes dot segments from the path, so `/base/x/../y`
    /// becomes `/base/y` before it is matched.
    pub fn rewrite_location(&self, value: &str, request_url: &str) -> Option<String> {
        let resolved = uri::resolve(value, request_url)?;
        self.rewrite(&resolved)
    }

    /// Returns the part of `link` after a matching scheme and authority:
    /// the path, query and fragment.
    fn strip_origin<'a>(&self, link: &'a str) -> Option<&'a str> {
        if let Some(network_path) = link.strip_prefix("//") {
            return self.strip_authority(network_path);
        }
        if link.starts_with('/') {
            return Some(link);
        }

        let (scheme, rest) = link.split_once(':')?;
        if !scheme.eq_ignore_ascii_case(self.scheme) {
            return None;
        }
        self.strip_authority(rest.strip_prefix("//")?)
    }

    fn strip_authority<'a>(&self, text: &'a str) -> Option<&'a str> {
        let end = text.find(['/', '?', '#']).unwrap_or(text.len());
        let (authority, rest) = text.split_at(end);

        // A link with userinfo names other credentials, so it is not ours.
        if authority.contains('@') {
            return None;
        }
        let (host, port) = split_host_port(authority, default_port(self.scheme))?;
        if host.eq_ignore_ascii_case(&self.host) && port == self.port {
            Some(rest)
        } else {
            None
        }
    }

    /// Returns the part of `after_origin` after the base path, when the
    /// path starts with the base path at a segment boundary.
    fn strip_base_path<'a>(&self, after_origin: &'a str) -> Option<&'a str> {
        let path_end = after_origin.find(['?', '#']).unwrap_or(after_origin.len());
        let path = &after_origin[..path_end];

        let remainder = path.strip_prefix(self.base_path.as_str())?;
        if remainder.is_empty() || remainder.starts_with('/') {
            Some(&after_origin[self.base_path.len()..])
        } else {
            None
        }
    }
}

fn parse_scheme(scheme: &str) -> Option<&'static str> {
    if scheme.eq_ignore_ascii_case("https") {
        Some("https")
    } else if scheme.eq_ignore_ascii_case("http") {
        Some("http")
    } else {
        None
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// Splits `host[:port]`, where the host may be an IP literal in brackets.
/// An empty port means the default port (RFC 3986, section 3.2.3).
fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    let host_end = if authority.starts_with('[') {
        authority.find(']')? + 1
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, port) = authority.split_at(host_end);
    if host.is_empty() {
        return None;
    }

    let port = match port.strip_prefix(':') {
        None if port.is_empty() => default_port,
        None => return None,
        Some("") => default_port,
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.parse().ok()?,
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: &str = "https://gw.example.com/odata/S4";

    fn map(backend_base: &str) -> LinkMap {
        match LinkMap::new(backend_base, GATEWAY) {
            Some(map) => map,
            None => panic!("{backend_base} was rejected as backend base"),
        }
    }

    fn check_rewrites(map: &LinkMap, cases: &[(&str, Option<&str>)]) {
        for (link, expected) in cases {
            assert_eq!(
                map.rewrite(link).as_deref(),
                *expected,
                "rewriting {link:?}"
            );
        }
    }

    #[test]
    fn new_rejects_non_http_bases() {
        for base in [
            "ftp://s4.example.com",
            "s4.example.com/x",
            "/x",
            "https:x",
            "https://",
            "https://h:x",
        ] {
            assert!(LinkMap::new(base, GATEWAY).is_none(), "{base} was accepted");
        }
    }

    #[test]
    fn rewrite_default_port_equivalence() {
        check_rewrites(
            &map("https://s4.example.com:443"),
            &[
                (
                    "https://s4.example.com/sap/opu/odata/sap/API_X/Items('1')",
                    Some("https://gw.example.com/odata/S4/sap/opu/odata/sap/API_X/Items('1')"),
                ),
                (
                    "https://s4.example.com:443/a",
                    Some("https://gw.example.com/odata/S4/a"),
                ),
                (
                    "https://s4.example.com:/a",
                    Some("https://gw.example.com/odata/S4/a"),
                ),
                (
                    "https://s4.example.com:0443/a",
                    Some("https://gw.example.com/odata/S4/a"),
                ),
                ("https://s4.example.com:8443/a", None),
                ("http://s4.example.com/a", None),
                ("http://s4.example.com:443/a", None),
            ],
        );
        check_rewrites(
            &map("http://s4.example.com"),
            &[
                (
                    "http://s4.example.com:80/a",
                    Some("https://gw.example.com/odata/S4/a"),
                ),
                (
                    "http://s4.example.com/a",
                    Some("https://gw.example.com/odata/S4/a"),
                ),
                ("http://s4.example.com:443/a", None),
            ],
        );
    }

    #[test]
    fn rewrite_ignores_scheme_and_host_case() {
        check_rewrites(
            &map("https://S4.Example.com/Base"),
            &[
                (
                    "HTTPS://s4.EXAMPLE.com/Base/x",
                    Some("https://gw.example.com/odata/S4/x"),
                ),
                ("https://s4.example.com/base/x", None),
            ],
        );
    }

    #[test]
    fn rewrite_base_path_segment_boundary() {
        check_rewrites(
            &map("https://h/base"),
            &[
                ("https://h/base", Some("https://gw.example.com/odata/S4")),
                ("https://h/base/", Some("https://gw.example.com/odata/S4/")),
                (
                    "https://h/base/x",
                    Some("https://gw.example.com/odata/S4/x"),
                ),
                (
                    "https://h/base?q=1",
                    Some("https://gw.example.com/odata/S4?q=1"),
                ),
                (
                    "https://h/base#f",
                    Some("https://gw.example.com/odata/S4#f"),
                ),
                ("https://h/basement", None),
                ("https://h/bas", None),
                ("https://h/other/base/x", None),
                ("https://h", None),
            ],
        );
    }

    #[test]
    fn rewrite_base_with_trailing_slash() {
        check_rewrites(
            &map("http://127.0.0.1:4004/odata/v4/catalog/"),
            &[
                (
                    "http://127.0.0.1:4004/odata/v4/catalog/Books?$skiptoken=3",
                    Some("https://gw.example.com/odata/S4/Books?$skiptoken=3"),
                ),
                (
                    "http://127.0.0.1:4004/odata/v4/catalog",
                    Some("https://gw.example.com/odata/S4"),
                ),
                ("http://127.0.0.1:4004/odata/v4/catalogue", None),
                ("http://127.0.0.1/odata/v4/catalog/Books", None),
            ],
        );
    }

    #[test]
    fn rewrite_empty_and_root_base_paths() {
        for base in ["https://h", "https://h/"] {
            check_rewrites(
                &map(base),
                &[
                    ("https://h", Some("https://gw.example.com/odata/S4")),
                    ("https://h/", Some("https://gw.example.com/odata/S4/")),
                    (
                        "https://h/any/path",
                        Some("https://gw.example.com/odata/S4/any/path"),
                    ),
                    ("https://h?x", Some("https://gw.example.com/odata/S4?x")),
                    ("https://other/any", None),
                ],
            );
        }
    }

    #[test]
    fn rewrite_absolute_path_references() {
        check_rewrites(
            &map("https://s4.example.com/sap/opu/odata/sap/API_X"),
            &[
                (
                    "/sap/opu/odata/sap/API_X/Items('1')",
                    Some("https://gw.example.com/odata/S4/Items('1')"),
                ),
                ("/sap/opu/odata/sap/API_Y/Items", None),
                (
                    "//s4.example.com/sap/opu/odata/sap/API_X/$metadata",
                    Some("https://gw.example.com/odata/S4/$metadata"),
                ),
                (
                    "//s4.example.com:443/sap/opu/odata/sap/API_X",
                    Some("https://gw.example.com/odata/S4"),
                ),
                ("//other.example.com/sap/opu/odata/sap/API_X", None),
            ],
        );
    }

    #[test]
    fn rewrite_leaves_relative_references() {
        check_rewrites(
            &map("https://s4.example.com"),
            &[
                ("Items('1')", None),
                ("../x", None),
                ("?$skip=2", None),
                ("#frag", None),
                ("", None),
                ("$metadata#Items", None),
                ("Items(Key='a:b')", None),
                (" https://s4.example.com/x", None),
            ],
        );
    }

    #[test]
    fn rewrite_copies_rest_exactly() {
        check_rewrites(
            &map("https://s4.example.com/svc"),
            &[
                (
                    "https://s4.example.com/svc/Items('a%2Fb''c')?$filter=Name%20eq%20'x'&$top=2#frag",
                    Some(
                        "https://gw.example.com/odata/S4/Items('a%2Fb''c')?$filter=Name%20eq%20'x'&$top=2#frag",
                    ),
                ),
                (
                    "https://s4.example.com/svc/a/../b",
                    Some("https://gw.example.com/odata/S4/a/../b"),
                ),
                (
                    "https://s4.example.com/svc?$format=json",
                    Some("https://gw.example.com/odata/S4?$format=json"),
                ),
                (
                    "https://s4.example.com/svc#x",
                    Some("https://gw.example.com/odata/S4#x"),
                ),
            ],
        );
    }

    #[test]
    fn rewrite_rejects_userinfo_and_bad_ports() {
        check_rewrites(
            &map("https://s4.example.com"),
            &[
                ("https://user@s4.example.com/x", None),
                ("https://s4.example.com:x/x", None),
                ("https://s4.example.com:99999/x", None),
            ],
        );
    }

    #[test]
    fn rewrite_ip_literal_hosts() {
        check_rewrites(
            &map("http://[::1]:4004/svc"),
            &[
                (
                    "http://[::1]:4004/svc/x",
                    Some("https://gw.example.com/odata/S4/x"),
                ),
                ("http://[::1]/svc/x", None),
            ],
        );
    }

    #[test]
    fn new_ignores_base_userinfo_and_query() {
        check_rewrites(
            &map("https://u@s4.example.com/svc?sap-client=100"),
            &[(
                "https://s4.example.com/svc/x",
                Some("https://gw.example.com/odata/S4/x"),
            )],
        );
    }

    #[test]
    fn new_strips_gateway_trailing_slash() {
        let map = LinkMap::new("https://h/svc", "https://gw.example.com/odata/S4/");
        let rewritten = map.and_then(|map| map.rewrite("https://h/svc/x"));
        assert_eq!(
            rewritten.as_deref(),
            Some("https://gw.example.com/odata/S4/x")
        );
    }

    #[test]
    fn rewrite_location_resolves_references() {
        let map = map("https://s4.example.com/sap/opu/odata/sap/API_X");
        let request = "https://s4.example.com/sap/opu/odata/sap/API_X/Items?$top=1";
        let cases = [
            (
                "Items('1')",
                Some("https://gw.example.com/odata/S4/Items('1')"),
            ),
            (
                "./Items('1')",
                Some("https://gw.example.com/odata/S4/Items('1')"),
            ),
            (
                "?$skip=2",
                Some("https://gw.example.com/odata/S4/Items?$skip=2"),
            ),
            ("", Some("https://gw.example.com/odata/S4/Items?$top=1")),
            (
                "/sap/opu/odata/sap/API_X/a/../b",
                Some("https://gw.example.com/odata/S4/b"),
            ),
            (
                "https://s4.example.com/sap/opu/odata/sap/API_X/x/./y",
                Some("https://gw.example.com/odata/S4/x/y"),
            ),
            ("../API_Y/Items", None),
            (
                "../API_X/Items",
                Some("https://gw.example.com/odata/S4/Items"),
            ),
            ("../../API_X/Items", None),
            ("https://other.example.com/x", None),
            (
                "//s4.example.com/sap/opu/odata/sap/API_X/z",
                Some("https://gw.example.com/odata/S4/z"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(
                map.rewrite_location(value, request).as_deref(),
                expected,
                "resolving {value:?} against {request}"
            );
        }
    }

    #[test]
    fn rewrite_location_needs_absolute_request() {
        let map = map("https://s4.example.com");
        assert_eq!(map.rewrite_location("Items", "/relative"), None);
        assert_eq!(
            map.rewrite_location("https://s4.example.com/Items", "/relative")
                .as_deref(),
            Some("https://gw.example.com/odata/S4/Items")
        );
    }

    #[test]
    fn values_with_control_characters_are_data() {
        let map = map("https://s4.example.com");
        assert_eq!(map.rewrite("https://s4.example.com/x\n--b--"), None);
        assert_eq!(map.rewrite("https://s4.example.com/x\ty"), None);
        assert!(map.rewrite("https://s4.example.com/x%0Ay").is_some());
    }
}
