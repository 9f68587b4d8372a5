//! The routes that mount components at path prefixes, and where each
//! route's component comes from: `BTP_GATEWAY_ROUTES`.
//!
//! ```json
//! [
//!   { "path": "/", "component": "bundled" },
//!   { "path": "/orders", "component": "oci://ghcr.io/acme/orders-gateway:stable" },
//!   { "path": "/dev", "component": "folder:./build", "name": "dev" }
//! ]
//! ```
//!
//! A request goes to the route with the longest path prefix that matches
//! whole path segments. The route's prefix is removed from the path the
//! component sees and appended to `x-forwarded-prefix`, so the component
//! builds public links with it.

use std::path::PathBuf;

use serde::Deserialize;

use super::digest::Digest;
use super::oci::Reference;

/// The variable that lists the routes.
pub const ROUTES_VARIABLE: &str = "BTP_GATEWAY_ROUTES";

/// Path prefixes that the host serves itself.
pub const RESERVED_PREFIXES: [&str; 3] = ["/health", "/metrics", "/admin"];

/// The source of a route's component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The default gateway component built into the host.
    Bundled,
    /// A `.wasm` file, read once at start.
    File(PathBuf),
    /// A folder the host watches: the newest `.wasm` file in it serves.
    Folder(PathBuf),
    /// An OCI artifact; a tag is followed by polling its digest.
    Registry(Reference),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bundled => f.write_str("bundled"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Folder(path) => write!(f, "folder:{}", path.display()),
            Self::Registry(reference) => write!(f, "{reference}"),
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "bundled" {
            return Ok(Self::Bundled);
        }
        if let Some(path) = text.strip_prefix("file:") {
            return non_empty_path(path, text).map(Self::File);
        }
        if let Some(path) = text.strip_prefix("folder:") {
            return non_empty_path(path, text).map(Self::Folder);
        }
        if text.starts_with("oci://") {
            return text
                .parse::<Reference>()
                .map(Self::Registry)
                .map_err(|error| error.to_string());
        }
        Err(format!(
            "invalid component source '{text}': expected `bundled`, `file:PATH`, \
             `folder:PATH` or `oci://REGISTRY/REPOSITORY:TAG`"
        ))
    }
}

fn non_empty_path(path: &str, text: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        Err(format!(
            "invalid component source '{text}': the path is empty"
        ))
    } else {
        Ok(PathBuf::from(path))
    }
}

/// One route's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// A short name for the admin API and logs: lowercase letters, digits
    /// and `-`.
    pub name: String,
    /// The path prefix: `/`, or segments without a trailing `/`.
    pub path: String,
    pub source: Source,
    /// When set, only a component with this digest may serve the route.
    pub digest: Option<Digest>,
}

impl RouteConfig {
    /// The single route that serves everything, from `source`.
    pub fn root(source: Source) -> Self {
        Self {
            name: "default".to_owned(),
            path: "/".to_owned(),
            source,
            digest: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    path: String,
    component: String,
    name: Option<String>,
    digest: Option<String>,
}

/// Parses the value of [`ROUTES_VARIABLE`]. The message of an error names
/// the route and the field.
pub fn parse_routes(text: &str) -> Result<Vec<RouteConfig>, String> {
    let raw: Vec<RawRoute> = serde_json::from_str(text).map_err(|error| {
        format!(
            "is not a JSON list of routes ({error}): expected for example \
             [{{\"path\": \"/\", \"component\": \"bundled\"}}]"
        )
    })?;
    if raw.is_empty() {
        return Err("lists no route: add at least one, or unset the variable".to_owned());
    }

    let mut routes: Vec<RouteConfig> = Vec::with_capacity(raw.len());
    for (index, route) in raw.into_iter().enumerate() {
        let position = format!("route {} (path '{}')", index + 1, route.path);
        let path = normalise_path(&route.path).map_err(|reason| format!("{position}: {reason}"))?;
        let source = route
            .component
            .parse::<Source>()
            .map_err(|reason| format!("{position}: {reason}"))?;
        let name = match route.name {
            Some(name) => check_name(&name).map_err(|reason| format!("{position}: {reason}"))?,
            None => name_for(&path),
        };
        let digest = match route.digest {
            Some(text) => Some(
                text.parse::<Digest>()
                    .map_err(|error| format!("{position}: {error}"))?,
            ),
            None => None,
        };

        if let Some(other) = routes.iter().find(|other| other.path == path) {
            return Err(format!(
                "{position}: the path is also the path of route '{}': give each route its own path",
                other.name
            ));
        }
        if let Some(other) = routes.iter().find(|other| other.name == name) {
            return Err(format!(
                "{position}: the name '{name}' is also the name of the route at '{}': set a \
                 distinct `name`",
                other.path
            ));
        }
        routes.push(RouteConfig {
            name,
            path,
            source,
            digest,
        });
    }
    Ok(routes)
}

/// Returns the prefix without a trailing `/`, or an error for a prefix
/// that the host cannot match or serves itself.
fn normalise_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') {
        return Err("the path must start with '/'".to_owned());
    }
    if path.contains(['?', '#', '%', '\\', ' ']) || path.contains("//") {
        return Err(
            "the path may contain only plain segments separated by '/', without '?', '#', '%', \
             '\\', spaces or empty segments"
                .to_owned(),
        );
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("the path may not contain '.' or '..' segments".to_owned());
    }
    if trimmed.is_empty() {
        return Ok("/".to_owned());
    }
    if let Some(reserved) = RESERVED_PREFIXES
        .iter()
        .find(|reserved| segment_prefix(trimmed, reserved))
    {
        return Err(format!(
            "the host serves {reserved} itself: choose another path"
        ));
    }
    Ok(trimmed.to_owned())
}

/// Returns whether `prefix` matches `path` on whole segments. The root
/// prefix matches every request, also one without a path such as
/// `CONNECT host:port`, so that its component answers it.
pub fn segment_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

fn check_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "invalid name '{name}': use 1 to 63 lowercase letters, digits and '-'"
        ))
    }
}

/// Derives a name from a prefix: `default` for `/`, `v2-orders` for
/// `/v2/orders`.
fn name_for(path: &str) -> String {
    if path == "/" {
        return "default".to_owned();
    }
    let name: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.chars().take(63).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_source_form() {
        let text = r#"[
            {"path": "/", "component": "bundled"},
            {"path": "/files/", "component": "file:./gateway.wasm"},
            {"path": "/dev", "component": "folder:/tmp/build", "name": "dev-build"},
            {"path": "/Orders/V2", "component": "oci://127.0.0.1:5000/team/orders:v1"}
        ]"#;
        let routes = match parse_routes(text) {
            Ok(routes) => routes,
            Err(error) => panic!("{error}"),
        };
        let summary: Vec<(String, String, String)> = routes
            .iter()
            .map(|route| {
                (
                    route.name.clone(),
                    route.path.clone(),
                    route.source.to_string(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("default", "/", "bundled"),
                ("files", "/files", "file:./gateway.wasm"),
                ("dev-build", "/dev", "folder:/tmp/build"),
                (
                    "orders-v2",
                    "/Orders/V2",
                    "oci://127.0.0.1:5000/team/orders:v1"
                ),
            ]
            .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        );
    }

    #[test]
    fn rejects_invalid_routes() {
        let cases = [
            ("{}", "is not a JSON list"),
            ("[]", "lists no route"),
            (
                r#"[{"path": "orders", "component": "bundled"}]"#,
                "must start with '/'",
            ),
            (
                r#"[{"path": "/a//b", "component": "bundled"}]"#,
                "empty segments",
            ),
            (
                r#"[{"path": "/a/../b", "component": "bundled"}]"#,
                "'..' segments",
            ),
            (
                r#"[{"path": "/admin/x", "component": "bundled"}]"#,
                "serves /admin itself",
            ),
            (
                r#"[{"path": "/health", "component": "bundled"}]"#,
                "serves /health itself",
            ),
            (
                r#"[{"path": "/", "component": "gateway.wasm"}]"#,
                "invalid component source",
            ),
            (
                r#"[{"path": "/", "component": "file:"}]"#,
                "the path is empty",
            ),
            (
                r#"[{"path": "/", "component": "bundled", "digest": "md5:1"}]"#,
                "invalid digest",
            ),
            (
                r#"[{"path": "/", "component": "bundled", "name": "Big"}]"#,
                "invalid name 'Big'",
            ),
            (
                r#"[{"path": "/", "component": "bundled", "extra": 1}]"#,
                "unknown field",
            ),
            (
                r#"[{"path": "/", "component": "bundled"}, {"path": "/", "component": "bundled"}]"#,
                "also the path of route 'default'",
            ),
            (
                r#"[{"path": "/a", "component": "bundled", "name": "x"}, {"path": "/b", "component": "bundled", "name": "x"}]"#,
                "also the name of the route at '/a'",
            ),
        ];
        for (text, expected) in cases {
            match parse_routes(text) {
                Ok(routes) => panic!("{text} was accepted as {routes:?}"),
                Err(message) => assert!(message.contains(expected), "{text}: {message}"),
            }
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(segment_prefix("/orders", "/orders"));
        assert!(segment_prefix("/orders/odata/X", "/orders"));
        assert!(segment_prefix("/orders?x=1", "/orders"));
        assert!(!segment_prefix("/ordersx", "/orders"));
        assert!(segment_prefix("/anything", "/"));
        assert!(segment_prefix("", "/"));
    }
}
