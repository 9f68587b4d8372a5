//! Validation of XSUAA access tokens: signature (RS256 only), expiry with a
//! small clock skew, issuer and audience.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation, decode, decode_header};
use serde::Deserialize;
use url::Url;

use super::keys::KeyStore;
use crate::config::XsuaaCredentials;

/// The clock difference tolerated between XSUAA and this host.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The claims the host reads from a validated token.
#[derive(Debug, Clone)]
pub struct Claims {
    pub zone_id: String,
    pub subdomain: Option<String>,
    pub user_name: Option<String>,
    /// A key that identifies the user across identity providers: `user_id`,
    /// else `user_uuid`, else `origin` and `user_name` together.
    pub user_key: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
}

/// The reason a token is rejected. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("it is not a JWT")]
    Malformed,
    #[error("it is signed with {0:?}; only RS256 is accepted")]
    Algorithm(Algorithm),
    #[error("no key to verify it: {0}")]
    NoKey(String),
    #[error("{0}")]
    Rejected(String),
    #[error("it was issued by '{0}', not by the bound XSUAA")]
    Issuer(String),
    #[error("it was not issued for this application (xsappname '{0}')")]
    Audience(String),
}

#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    zid: String,
    #[serde(default)]
    ext_attr: Option<ExtAttr>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_uuid: Option<String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    aud: Audience,
}

#[derive(Deserialize)]
struct ExtAttr {
    #[serde(default)]
    zdn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audience {
    fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(value) => vec![value.as_str()],
            Audience::Many(values) => values.iter().map(String::as_str).collect(),
            Audience::None => Vec::new(),
        }
    }
}

/// Validates `token` and returns its claims.
pub(super) async fn validate(
    token: &str,
    xsuaa: &XsuaaCredentials,
    keys: &KeyStore,
) -> Result<Claims, TokenError> {
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(TokenError::Algorithm(header.alg));
    }
    let key = keys
        .key(header.kid.as_deref())
        .await
        .map_err(|error| TokenError::NoKey(format!("{error:#}")))?;

    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = CLOCK_SKEW.as_secs();
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iss"]);
    let raw = decode::<RawClaims>(token, &key, &validation)
        .map_err(|error| TokenError::Rejected(error.to_string()))?
        .claims;

    check_issuer(&raw.iss, xsuaa)?;
    check_audience(&raw, xsuaa)?;

    let user_key = user_key(&raw);
    Ok(Claims {
        user_key,
        zone_id: raw.zid,
        subdomain: raw.ext_attr.and_then(|ext| ext.zdn),
        user_name: raw.user_name,
        client_id: raw.client_id.or(raw.cid),
        scopes: raw.scope,
    })
}

/// Returns the key that identifies a token's user. A user name is unique
/// only within one identity provider (`origin`), so it never identifies the
/// user alone.
fn user_key(raw: &RawClaims) -> Option<String> {
    raw.user_id
        .clone()
        .or_else(|| raw.user_uuid.clone())
        .or_else(|| {
            raw.user_name
                .as_ref()
                .map(|name| format!("{}/{name}", raw.origin.as_deref().unwrap_or_default()))
        })
}

/// Accepts issuers on the binding's own XSUAA host, or on any subdomain of
/// its `uaadomain` (subscriber tenants have their own subdomain).
fn check_issuer(issuer: &str, xsuaa: &XsuaaCredentials) -> Result<(), TokenError> {
    let rejected = || TokenError::Issuer(issuer.to_owned());
    let url = Url::parse(issuer).map_err(|_| rejected())?;
    let host = url.host_str().ok_or_else(rejected)?;

    let same_host = Some(host) == xsuaa.url.host_str()
        && url.port_or_known_default() == xsuaa.url.port_or_known_default();
    let in_domain = xsuaa.uaadomain.as_deref().is_some_and(|domain| {
        host.strip_suffix(domain)
            .is_some_and(|prefix| prefix.ends_with('.'))
    });
    if same_host || in_domain {
        Ok(())
    } else {
        Err(rejected())
    }
}

/// Accepts tokens whose audience names this application's client or
/// `xsappname`, or whose scopes belong to the `xsappname`, as XSUAA client
/// libraries do.
fn check_audience(raw: &RawClaims, xsuaa: &XsuaaCredentials) -> Result<(), TokenError> {
    let own = [xsuaa.client_id.as_str(), xsuaa.xsappname.as_str()];
    let scope_prefix = format!("{}.", xsuaa.xsappname);
    let by_audience = raw.aud.values().iter().any(|aud| {
        own.contains(aud)
            || aud
                .split_once('.')
                .is_some_and(|(app, _)| own.contains(&app))
    });
    let by_scope = raw
        .scope
        .iter()
        .any(|scope| scope.starts_with(&scope_prefix));
    let by_client =
        raw.client_id.as_deref().or(raw.cid.as_deref()) == Some(xsuaa.client_id.as_str());
    if by_audience || by_scope || by_client {
        Ok(())
    } else {
        Err(TokenError::Audience(xsuaa.xsappname.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xsuaa(url: &str, uaadomain: Option<&str>) -> XsuaaCredentials {
        XsuaaCredentials {
            binding_name: "uaa".to_owned(),
            client_id: "sb-app!t1".to_owned(),
            xsappname: "app!t1".to_owned(),
            url: Url::parse(url).unwrap_or_else(|error| panic!("{error}")),
            uaadomain: uaadomain.map(str::to_owned),
            tenant_id: None,
            verification_key: None,
        }
    }

    #[test]
    fn issuer_on_binding_host_or_subdomain() {
        let binding = xsuaa(
            "https://provider.authentication.example/",
            Some("authentication.example"),
        );
        assert!(
            check_issuer(
                "https://provider.authentication.example/oauth/token",
                &binding
            )
            .is_ok()
        );
        assert!(
            check_issuer(
                "https://subscriber.authentication.example/oauth/token",
                &binding
            )
            .is_ok()
        );
        assert!(check_issuer("https://evil-authentication.example/oauth/token", &binding).is_err());
        assert!(check_issuer("https://authentication.example.evil/oauth/token", &binding).is_err());

        let local = xsuaa("http://127.0.0.1:4010/", None);
        assert!(check_issuer("http://127.0.0.1:4010/oauth/token", &local).is_ok());
        assert!(check_issuer("http://127.0.0.1:4011/oauth/token", &local).is_err());
    }

    fn claims(aud: Audience, scope: &[&str], client: Option<&str>) -> RawClaims {
        RawClaims {
            iss: String::new(),
            zid: "z".to_owned(),
            ext_attr: None,
            user_name: None,
            user_id: None,
            user_uuid: None,
            origin: None,
            client_id: client.map(str::to_owned),
            cid: None,
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
            aud,
        }
    }

    #[test]
    fn user_key_prefers_ids_over_names() {
        let mut raw = claims(Audience::None, &[], None);
        raw.user_name = Some("alice".to_owned());
        raw.origin = Some("corporate-idp".to_owned());
        assert_eq!(user_key(&raw).as_deref(), Some("corporate-idp/alice"));
        raw.user_uuid = Some("uuid-1".to_owned());
        assert_eq!(user_key(&raw).as_deref(), Some("uuid-1"));
        raw.user_id = Some("id-1".to_owned());
        assert_eq!(user_key(&raw).as_deref(), Some("id-1"));
    }

    #[test]
    fn audience_by_aud_scope_or_client() {
        let binding = xsuaa("https://p.authentication.example/", None);
        let ok = |raw: RawClaims| check_audience(&raw, &binding).is_ok();
        assert!(ok(claims(
            Audience::Many(vec!["app!t1".to_owned()]),
            &[],
            None
        )));
        assert!(ok(claims(Audience::One("sb-app!t1".to_owned()), &[], None)));
        assert!(ok(claims(Audience::None, &["app!t1.Read"], None)));
        assert!(ok(claims(Audience::None, &[], Some("sb-app!t1"))));
        assert!(!ok(claims(
            Audience::Many(vec!["other!t2".to_owned()]),
            &["other!t2.Read"],
            Some("x")
        )));
    }
}
