//! Scopes that routes require, from `BTP_GATEWAY_ROUTE_SCOPES`.
//!
//! The variable is a JSON object from a path prefix to the scopes a caller
//! needs, in the forms the approuter's `xs-app.json` uses for a route's
//! `scope`: one scope, a list (any one of them suffices), or an object by
//! HTTP method with an optional `default`. `$XSAPPNAME` stands for the
//! bound XSUAA instance's `xsappname`.
//!
//! ```json
//! {"/odata/S4HANA/": {"GET": "$XSAPPNAME.Display", "default": "$XSAPPNAME.Edit"},
//!  "/odata/": ["$XSAPPNAME.User"]}
//! ```
//!
//! The longest matching prefix decides; a path that no prefix matches needs
//! only a valid token. Route scopes need an XSUAA binding, because only an
//! XSUAA token carries scopes.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The environment variable that contains the route scopes.
pub const ROUTE_SCOPES_VARIABLE: &str = "BTP_GATEWAY_ROUTE_SCOPES";

/// The scopes of one route, any one of which admits a caller.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum ScopeList {
    One(String),
    Any(Vec<String>),
}

impl ScopeList {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(scope) => vec![scope],
            Self::Any(scopes) => scopes,
        }
    }
}

/// The scopes of one route, for all methods or by method.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum RouteScopeSpec {
    Scopes(ScopeList),
    ByMethod(BTreeMap<String, ScopeList>),
}

/// The required scopes of one route prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    prefix: String,
    /// Scopes by uppercase method; `None` is the default for other methods.
    by_method: BTreeMap<Option<String>, Vec<String>>,
}

/// The scopes every route requires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteScopes {
    /// Sorted by prefix length, longest first.
    routes: Vec<Route>,
}

/// The reason the variable cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteScopesError(String);

impl RouteScopes {
    /// Parses the variable's value and replaces `$XSAPPNAME`.
    pub fn parse(text: &str, xsappname: &str) -> Result<Self, RouteScopesError> {
        let specs: BTreeMap<String, RouteScopeSpec> =
            serde_json::from_str(text).map_err(|error| {
                RouteScopesError(format!(
                    "is not a JSON object from path prefix to scopes (a scope, a list of scopes, \
                     or an object by HTTP method with \"default\"): {}",
                    crate::config::describe_json_error(&error)
                ))
            })?;

        let mut routes = Vec::with_capacity(specs.len());
        for (prefix, spec) in specs {
            if !prefix.starts_with('/') {
                return Err(RouteScopesError(format!(
                    "has the path prefix '{prefix}', which does not start with '/'"
                )));
            }
            let mut by_method = BTreeMap::new();
            match spec {
                RouteScopeSpec::Scopes(scopes) => {
                    by_method.insert(None, expand(scopes.into_vec(), xsappname));
                }
                RouteScopeSpec::ByMethod(methods) => {
                    for (method, scopes) in methods {
                        let key = if method.eq_ignore_ascii_case("default") {
                            None
                        } else {
                            Some(method.to_ascii_uppercase())
                        };
                        by_method.insert(key, expand(scopes.into_vec(), xsappname));
                    }
                }
            }
            if by_method.values().any(Vec::is_empty) {
                return Err(RouteScopesError(format!(
                    "lists no scope for the path prefix '{prefix}': name at least one, or \
                     remove the entry"
                )));
            }
            routes.push(Route { prefix, by_method });
        }
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Ok(Self { routes })
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Returns the scopes a request needs (any one of them), or `None`
    /// when a valid token suffices.
    pub fn required(&self, path: &str, method: &str) -> Option<&[String]> {
        let route = self
            .routes
            .iter()
            .find(|route| path.starts_with(&route.prefix))?;
        let by_method = route
            .by_method
            .get(&Some(method.to_ascii_uppercase()))
            .or_else(|| route.by_method.get(&None))?;
        Some(by_method)
    }
}

fn expand(scopes: Vec<String>, xsappname: &str) -> Vec<String> {
    scopes
        .into_iter()
        .map(|scope| scope.replace("$XSAPPNAME", xsappname))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(text: &str) -> RouteScopes {
        RouteScopes::parse(text, "app!t1").unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn longest_prefix_and_method_decide() {
        let routes = scopes(
            r#"{"/odata/S4/": {"GET": "$XSAPPNAME.Display", "default": ["$XSAPPNAME.Edit"]},
                "/odata/": ["$XSAPPNAME.User", "$XSAPPNAME.Admin"]}"#,
        );
        assert_eq!(
            routes.required("/odata/S4/Items", "get"),
            Some(["app!t1.Display".to_owned()].as_slice())
        );
        assert_eq!(
            routes.required("/odata/S4/Items", "POST"),
            Some(["app!t1.Edit".to_owned()].as_slice())
        );
        assert_eq!(
            routes.required("/odata/CAP/Books", "GET"),
            Some(["app!t1.User".to_owned(), "app!t1.Admin".to_owned()].as_slice())
        );
        assert_eq!(routes.required("/other", "GET"), None);
    }

    #[test]
    fn method_without_default_needs_no_scope() {
        let routes = scopes(r#"{"/odata/": {"DELETE": "$XSAPPNAME.Delete"}}"#);
        assert_eq!(routes.required("/odata/x", "GET"), None);
        assert!(routes.required("/odata/x", "DELETE").is_some());
    }

    #[test]
    fn rejects_bad_values() {
        let error = |text| RouteScopes::parse(text, "a").err().map(|e| e.to_string());
        let message = error(r#"{"odata/": "s"}"#).unwrap_or_default();
        assert!(message.contains("'odata/'"), "{message}");
        let message = error(r#"{"/odata/": []}"#).unwrap_or_default();
        assert!(message.contains("no scope"), "{message}");
        let message = error(r#"["/odata/"]"#).unwrap_or_default();
        assert!(message.contains("JSON object"), "{message}");
        let message = error(r#"{"/odata/": 5}"#).unwrap_or_default();
        assert!(message.contains("JSON object"), "{message}");
    }
}
