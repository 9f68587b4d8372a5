//! SAML 2.0 bearer assertions: built by the emulated Destination service for
//! `OAuth2SAMLBearerAssertion` destinations and accepted by the emulated
//! XSUAA's `urn:ietf:params:oauth:grant-type:saml2-bearer` grant (RFC 7522).
//!
//! An assertion has the elements a token service reads: `Issuer`, `Subject`
//! with `NameID` and a bearer `SubjectConfirmation` for the token URL,
//! `Conditions` with the destination's `audience`, and an `AuthnStatement`.
//! It is not XML-signed. Instead the emulator that built an assertion
//! records its ID and SHA-256 digest and accepts it once, before it expires,
//! only if the bytes are unchanged. So an assertion built by one emulator is
//! rejected by another. Attribute statements, encryption and audience checks
//! at the grant are not emulated.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use rsa::sha2::{Digest as _, Sha256};

use super::access_token::unix_now;
use super::users::UserIdentity;

/// Lifetime of an assertion, from its `IssueInstant` to `NotOnOrAfter`.
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// `NameID` format used when the destination has no `nameIdFormat`.
pub(crate) const DEFAULT_NAME_ID_FORMAT: &str =
    "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

/// `AuthnContextClassRef` used when the destination has no
/// `authnContextClassRef`.
pub(crate) const DEFAULT_AUTHN_CONTEXT: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PreviousSession";

/// Upper bound for recorded assertions; expired ones are dropped first.
const MAX_ASSERTIONS: usize = 10_000;

/// What an assertion asserts.
#[derive(Debug)]
pub(crate) struct AssertionRequest<'a> {
    pub user: &'a UserIdentity,
    /// `NameID` format. An email format makes the user's email the `NameID`,
    /// every other format the user name.
    pub name_id_format: &'a str,
    pub audience: &'a str,
    /// Token URL the assertion is presented at (`Recipient`).
    pub recipient: &'a str,
    pub issuer: &'a str,
    pub authn_context_class_ref: &'a str,
}

/// The user an accepted assertion stands for.
#[derive(Debug, Clone)]
pub(crate) struct AssertedUser {
    /// The `NameID` value, which becomes the `user_name` of the new token.
    pub name_id: String,
    /// The identity the assertion was built for.
    pub identity: UserIdentity,
}

/// Why an assertion is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssertionError {
    #[error("the assertion is not base64-encoded UTF-8 XML")]
    NotBase64,
    #[error("the assertion has no ID attribute")]
    MissingId,
    #[error("this emulator did not build the assertion, or it was already used")]
    Unknown,
    #[error("the assertion was changed after it was built")]
    Modified,
    #[error("the assertion has expired")]
    Expired,
}

#[derive(Debug)]
struct RecordedAssertion {
    digest: [u8; 32],
    asserted: AssertedUser,
    expires_at: Instant,
}

/// Registry of the assertions this emulator built and not yet accepted.
#[derive(Debug, Default)]
pub(crate) struct SamlAssertions {
    recorded: Mutex<HashMap<String, RecordedAssertion>>,
}

impl SamlAssertions {
    /// Builds an assertion, records it, and returns it base64url-encoded
    /// without padding, ready for the `assertion` form field.
    pub(crate) fn build(&self, request: &AssertionRequest<'_>) -> String {
        let id = format!("_{}", uuid::Uuid::new_v4().simple());
        let now = unix_now();
        let issue_instant = format_saml_time(now);
        let not_on_or_after = format_saml_time(now + ASSERTION_LIFETIME.as_secs());
        let name_id = if request.name_id_format.contains("emailAddress") {
            request.user.email.clone()
        } else {
            request.user.user_name.clone()
        };

        let xml = format!(
            concat!(
                r#"<saml2:Assertion xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" IssueInstant="{issue_instant}" Version="2.0">"#,
                "<saml2:Issuer>{issuer}</saml2:Issuer>",
                "<saml2:Subject>",
                r#"<saml2:NameID Format="{format}">{name_id}</saml2:NameID>"#,
                r#"<saml2:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml2:SubjectConfirmationData NotOnOrAfter="{not_on_or_after}" Recipient="{recipient}"/>"#,
                "</saml2:SubjectConfirmation>",
                "</saml2:Subject>",
                r#"<saml2:Conditions NotBefore="{issue_instant}" NotOnOrAfter="{not_on_or_after}">"#,
                "<saml2:AudienceRestriction><saml2:Audience>{audience}</saml2:Audience></saml2:AudienceRestriction>",
                "</saml2:Conditions>",
                r#"<saml2:AuthnStatement AuthnInstant="{issue_instant}">"#,
                "<saml2:AuthnContext><saml2:AuthnContextClassRef>{authn_context}</saml2:AuthnContextClassRef></saml2:AuthnContext>",
                "</saml2:AuthnStatement>",
                "</saml2:Assertion>",
            ),
            id = id,
            issue_instant = issue_instant,
            not_on_or_after = not_on_or_after,
            issuer = escape_xml(request.issuer),
            format = escape_xml(request.name_id_format),
            name_id = escape_xml(&name_id),
            recipient = escape_xml(request.recipient),
            audience = escape_xml(request.audience),
            authn_context = escape_xml(request.authn_context_class_ref),
        );

        let record = RecordedAssertion {
            digest: Sha256::digest(xml.as_bytes()).into(),
            asserted: AssertedUser {
                name_id,
                identity: request.user.clone(),
            },
            expires_at: Instant::now() + ASSERTION_LIFETIME,
        };
        // A poisoned lock only means that another request panicked while
        // holding it. The map is still consistent, so keep using it.
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        recorded.retain(|_, record| record.expires_at > now);
        if recorded.len() >= MAX_ASSERTIONS {
            recorded.clear();
        }
        recorded.insert(id, record);
        URL_SAFE_NO_PAD.encode(xml)
    }

    /// Accepts an assertion this emulator built, once, and returns its user.
    /// Standard and URL-safe base64, with or without padding, are accepted.
    pub(crate) fn redeem(&self, encoded: &str) -> Result<AssertedUser, AssertionError> {
        let xml = decode_base64(encoded.trim()).ok_or(AssertionError::NotBase64)?;
        let id = attribute_value(&xml, "ID").ok_or(AssertionError::MissingId)?;

        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let record = recorded.get(id).ok_or(AssertionError::Unknown)?;
        let digest: [u8; 32] = Sha256::digest(xml.as_bytes()).into();
        if digest != record.digest {
            return Err(AssertionError::Modified);
        }
        // An expired or accepted assertion is removed: bearer assertions are
        // for one use.
        let record = recorded.remove(id).ok_or(AssertionError::Unknown)?;
        if Instant::now() >= record.expires_at {
            return Err(AssertionError::Expired);
        }
        Ok(record.asserted)
    }
}

/// Decodes base64 in any of the usual alphabets and paddings into UTF-8.
fn decode_base64(encoded: &str) -> Option<String> {
    let unpadded = encoded.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE.decode(encoded))
        .or_else(|_| STANDARD.decode(encoded))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded))
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Returns the value of the first `name="..."` attribute in `xml`.
fn attribute_value<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(" {name}=\"");
    let start = xml.find(&marker)? + marker.len();
    let length = xml[start..].find('"')?;
    Some(&xml[start..start + length])
}

/// Escapes the five XML special characters.
fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Formats Unix seconds as an `xs:dateTime` in UTC, for example
/// `2024-05-01T12:00:00Z`.
pub(crate) fn format_saml_time(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let seconds_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds_of_day / 3600,
        (seconds_of_day / 60) % 60,
        seconds_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, with the
/// era-based method of Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saml_time_formats_known_instants() {
        assert_eq!(format_saml_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_saml_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_saml_time(1_714_564_800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn assertion_is_accepted_once_and_unchanged_only() {
        let assertions = SamlAssertions::default();
        let user = UserIdentity::new("zone", "alice", None);
        let request = AssertionRequest {
            user: &user,
            name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            audience: "backend",
            recipient: "http://127.0.0.1:1/oauth/token",
            issuer: "emulator & co",
            authn_context_class_ref: DEFAULT_AUTHN_CONTEXT,
        };

        let encoded = assertions.build(&request);
        let xml = decode_base64(&encoded).unwrap_or_default();
        assert!(xml.contains("emulator &amp; co"), "{xml}");
        let tampered = URL_SAFE_NO_PAD.encode(xml.replace("alice@example.com", "eve@example.com"));
        assert_eq!(
            assertions.redeem(&tampered).err(),
            Some(AssertionError::Modified)
        );

        let asserted = assertions.redeem(&encoded).map(|asserted| asserted.name_id);
        assert_eq!(asserted, Ok("alice@example.com".to_owned()));
        assert_eq!(
            assertions.redeem(&encoded).err(),
            Some(AssertionError::Unknown)
        );
    }
}
