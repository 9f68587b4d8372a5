//! The pure parts of the CSRF choreography: where to fetch a token, and the
//! backend session (token and cookies) the gateway keeps per destination
//! and user.
//!
//! SAP Gateway and other ABAP backends protect writes with a token bound to
//! a session cookie. The gateway fetches the token with `x-csrf-token:
//! Fetch` at the service root, keeps the cookies that came with it, sends
//! both with every write, and on `403` with `x-csrf-token: Required`
//! fetches once more and retries once, as the SAP Cloud SDK does.

use serde_json::json;

/// The token and cookies of one backend session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    pub token: Option<String>,
    /// Whether a fetch found that the backend sends no token, as CAP
    /// without CSRF protection does. Writes then go without one until the
    /// backend requests one with `403` and `x-csrf-token: Required`.
    pub token_not_sent: bool,
    /// Cookies as `name=value` pairs, in the order the backend set them.
    pub cookies: Vec<(String, String)>,
}

impl Session {
    /// Stores the cookies of `Set-Cookie` values: a new name is added, a
    /// known one replaced, and one with an empty value or `Max-Age=0`
    /// removed. Attributes (path, expiry) are not kept: the session is used
    /// only with the destination that set it.
    pub fn store_cookies<'a>(&mut self, set_cookie_values: impl IntoIterator<Item = &'a [u8]>) {
        for value in set_cookie_values {
            let text = String::from_utf8_lossy(value);
            let mut attributes = text.split(';');
            let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() {
                continue;
            }
            let expired = value.is_empty()
                || attributes.any(|attribute| attribute.trim().eq_ignore_ascii_case("max-age=0"));
            self.cookies.retain(|(known, _)| known != name);
            if !expired {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    /// Returns the `Cookie` header value, if there are cookies.
    pub fn cookie_header(&self) -> Option<String> {
        if self.cookies.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Some(pairs.join("; "))
    }

    /// Serialises the session for the cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        json!({
            "token": self.token,
            "token_not_sent": self.token_not_sent,
            "cookies": self.cookies,
        })
        .to_string()
        .into_bytes()
    }

    /// Reads a cached session; anything unreadable counts as no session.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let token = value.get("token")?.as_str().map(str::to_owned);
        let cookies = value
            .get("cookies")?
            .as_array()?
            .iter()
            .filter_map(|pair| {
                let name = pair.get(0)?.as_str()?;
                let value = pair.get(1)?.as_str()?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect();
        let token_not_sent = value
            .get("token_not_sent")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Some(Self {
            token,
            token_not_sent,
            cookies,
        })
    }

    /// Returns whether a write must fetch a token first.
    pub fn needs_fetch(&self) -> bool {
        self.token.is_none() && !self.token_not_sent
    }
}

/// Returns the cache key of a destination's session. The `user` bucket
/// already separates callers.
pub fn session_key(destination: &str) -> String {
    format!("csrf-session\n{destination}")
}

/// Returns the service root of a request path: the part before `$batch`,
/// the root of a known SAP Gateway or CAP service path, or else the parent
/// of the last segment. The result ends with `/`.
pub fn service_root(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    if let Some(batch) = segments.iter().position(|segment| *segment == "$batch") {
        return join_root(&segments[..batch]);
    }

    let prefix_length = match segments.as_slice() {
        // /sap/opu/odata/{namespace}/{service}
        ["sap", "opu", "odata", _, _, ..] => Some(5),
        // /sap/opu/odata4/{namespace}/{group}/{repository}/{namespace}/{service}/{version}
        ["sap", "opu", "odata4", _, _, _, _, _, _, ..] => Some(9),
        // CAP: /odata/v4/{service} and /odata/v2/{service}
        ["odata", "v2" | "v4", _, ..] => Some(3),
        _ => None,
    };
    match prefix_length {
        Some(length) => join_root(&segments[..length]),
        None => {
            let parent = segments.len().saturating_sub(1);
            join_root(&segments[..parent])
        }
    }
}

fn join_root(segments: &[&str]) -> String {
    let mut root = String::from("/");
    for segment in segments.iter().filter(|segment| !segment.is_empty()) {
        root.push_str(segment);
        root.push('/');
    }
    root
}

/// The requests to try, in order, until one returns a token: `HEAD` and
/// then `GET` on the service root with a trailing `/`, then `GET` without
/// it. `HEAD` is skipped once the backend refused it with `405`.
pub fn fetch_attempts(root: &str) -> [(FetchMethod, String); 3] {
    let without_slash = match root.trim_end_matches('/') {
        "" => "/".to_owned(),
        trimmed => trimmed.to_owned(),
    };
    [
        (FetchMethod::Head, root.to_owned()),
        (FetchMethod::Get, root.to_owned()),
        (FetchMethod::Get, without_slash),
    ]
}

/// The method of a token fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMethod {
    Head,
    Get,
}

/// Returns whether a response requests a new token: `403` with
/// `x-csrf-token: Required`.
pub fn token_required(status: u16, csrf_header: Option<&[u8]>) -> bool {
    status == 403
        && csrf_header.is_some_and(|value| value.trim_ascii().eq_ignore_ascii_case(b"required"))
}

/// Returns whether a request is a write that needs a token.
pub fn is_write(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_roots() {
        let cases = [
            (
                "/sap/opu/odata/sap/ZGW_TEST_SRV/Items('1')",
                "/sap/opu/odata/sap/ZGW_TEST_SRV/",
            ),
            (
                "/sap/opu/odata/sap/ZGW_TEST_SRV",
                "/sap/opu/odata/sap/ZGW_TEST_SRV/",
            ),
            (
                "/sap/opu/odata/sap/API_X;v=0002/A_Item",
                "/sap/opu/odata/sap/API_X;v=0002/",
            ),
            (
                "/sap/opu/odata4/sap/zgroup/srvd_a2x/sap/zservice/0001/Items",
                "/sap/opu/odata4/sap/zgroup/srvd_a2x/sap/zservice/0001/",
            ),
            ("/odata/v4/orders/Orders(1)/items", "/odata/v4/orders/"),
            ("/odata/v2/orders/Orders", "/odata/v2/orders/"),
            ("/some/service/$batch", "/some/service/"),
            ("/odata/v4/orders/$batch", "/odata/v4/orders/"),
            ("/service/Items", "/service/"),
            ("/Items", "/"),
            ("", "/"),
        ];
        for (path, root) in cases {
            assert_eq!(service_root(path), root, "{path}");
        }
    }

    #[test]
    fn attempts_with_and_without_slash() {
        let attempts = fetch_attempts("/sap/opu/odata/sap/Z_SRV/");
        assert_eq!(
            attempts[0],
            (FetchMethod::Head, "/sap/opu/odata/sap/Z_SRV/".to_owned())
        );
        assert_eq!(
            attempts[1],
            (FetchMethod::Get, "/sap/opu/odata/sap/Z_SRV/".to_owned())
        );
        assert_eq!(
            attempts[2],
            (FetchMethod::Get, "/sap/opu/odata/sap/Z_SRV".to_owned())
        );
        assert_eq!(fetch_attempts("/")[2], (FetchMethod::Get, "/".to_owned()));
    }

    #[test]
    fn cookies_are_merged() {
        let mut session = Session::default();
        session.store_cookies([
            b"SAP_SESSIONID_GW1_100=abc%3d; path=/; HttpOnly".as_slice(),
            b"sap-usercontext=sap-client=100; path=/".as_slice(),
        ]);
        assert_eq!(
            session.cookie_header().as_deref(),
            Some("SAP_SESSIONID_GW1_100=abc%3d; sap-usercontext=sap-client=100")
        );
        session.store_cookies([
            b"SAP_SESSIONID_GW1_100=new; path=/".as_slice(),
            b"sap-usercontext=; Max-Age=0".as_slice(),
            b"garbage".as_slice(),
        ]);
        assert_eq!(
            session.cookie_header().as_deref(),
            Some("SAP_SESSIONID_GW1_100=new")
        );
    }

    #[test]
    fn session_round_trips() {
        let mut session = Session {
            token: Some("tok==".to_owned()),
            token_not_sent: false,
            cookies: Vec::new(),
        };
        session.store_cookies([b"a=1".as_slice()]);
        assert_eq!(Session::from_bytes(&session.to_bytes()), Some(session));
        assert_eq!(Session::from_bytes(b"not json"), None);
    }

    #[test]
    fn required_is_case_insensitive() {
        assert!(token_required(403, Some(b"Required")));
        assert!(token_required(403, Some(b" required ")));
        assert!(!token_required(403, None));
        assert!(!token_required(401, Some(b"Required")));
    }
}
