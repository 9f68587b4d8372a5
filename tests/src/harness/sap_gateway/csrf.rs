//! CSRF tokens bound to session cookies, as SAP Gateway issues and checks
//! them.
//!
//! A token fetch without a valid session cookie opens a new session: the
//! response sets `SAP_SESSIONID_GW1_100` and `sap-usercontext`. A fetch
//! with a valid session cookie returns that session's token and sets no
//! cookie. A write is accepted only when `x-csrf-token` equals the token of
//! the session that its `Cookie` header names.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::header::{COOKIE, HeaderName, HeaderValue, SET_COOKIE};
use http::{HeaderMap, StatusCode};
use uuid::Uuid;

use super::reply::{Reply, TEXT};

/// Name of the session cookie that a token is bound to.
pub(super) const SESSION_COOKIE: &str = "SAP_SESSIONID_GW1_100";

const TOKEN_HEADER: &str = "x-csrf-token";

/// Open sessions and their tokens.
#[derive(Debug, Default)]
pub(super) struct CsrfSessions {
    /// Token of each session, by session cookie value.
    tokens: HashMap<String, String>,
}

/// A token handed out by a fetch.
#[derive(Debug)]
pub(super) struct IssuedToken {
    token: String,
    /// The session cookie value when the fetch opened a new session.
    new_session: Option<String>,
}

impl CsrfSessions {
    /// Ends every session, so that every token becomes invalid.
    pub(super) fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Returns the token of the session that the request's cookie names, or
    /// opens a new session with a new token.
    pub(super) fn fetch(&mut self, headers: &HeaderMap) -> IssuedToken {
        if let Some(token) = session_cookie(headers).and_then(|session| self.tokens.get(&session)) {
            return IssuedToken {
                token: token.clone(),
                new_session: None,
            };
        }

        let session = format!(
            "{}{}",
            URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes()),
            URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes())
        );
        let token = STANDARD.encode(Uuid::new_v4().as_bytes());
        self.tokens.insert(session.clone(), token.clone());
        IssuedToken {
            token,
            new_session: Some(session),
        }
    }

    /// Checks that the request carries the token of the session its cookie
    /// names.
    pub(super) fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(sent) = headers.get(TOKEN_HEADER) else {
            return false;
        };
        session_cookie(headers)
            .and_then(|session| self.tokens.get(&session))
            .is_some_and(|token| token.as_bytes() == sent.as_bytes())
    }
}

/// Checks whether a request fetches a token with `x-csrf-token: Fetch`.
pub(super) fn is_fetch(headers: &HeaderMap) -> bool {
    headers
        .get(TOKEN_HEADER)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"fetch"))
}

/// Adds the token, and the cookies of a new session, to response headers.
pub(super) fn add_token(headers: &mut HeaderMap, issued: &IssuedToken) {
    append(
        headers,
        HeaderName::from_static(TOKEN_HEADER),
        &issued.token,
    );
    if let Some(session) = &issued.new_session {
        let session_cookie = format!("{SESSION_COOKIE}={session}; path=/; HttpOnly");
        append(headers, SET_COOKIE, &session_cookie);
        append(
            headers,
            SET_COOKIE,
            "sap-usercontext=sap-client=100; path=/",
        );
    }
}

/// Appends a header. Tokens and session ids are base64 text, which is
/// always a valid header value.
fn append(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.append(name, value);
    }
}

/// Builds the 403 that SAP Gateway sends for a write without a valid token.
pub(super) fn rejection() -> Reply {
    Reply::with_body(StatusCode::FORBIDDEN, TEXT, "CSRF token validation failed")
        .header_static(TOKEN_HEADER, "Required")
}

/// Returns the value of the session cookie from every `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}
