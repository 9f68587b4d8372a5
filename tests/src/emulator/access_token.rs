//! Access tokens issued by the emulated XSUAA: the claims of client and user
//! tokens, RS256 signing, and the check that a bearer token is one of ours.
//!
//! Tokens are JWTs signed with the emulator's RSA key, with the header
//! `{"alg":"RS256","typ":"JWT","kid":...,"jku":"<url>/token_keys"}` and the
//! claims XSUAA writes (`iss`, `zid`, `ext_attr`, `cid`, `client_id`, `azp`,
//! `aud`, `scope`, `grant_type`, `iat`, `exp`, `jti`, and for user tokens the
//! identity claims). The emulator accepts a bearer token if its signature
//! verifies with the emulator's key, its issuer is this emulator and it has
//! not expired. Revocation, `rev_sig`, role collections and scope checks are
//! not emulated.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::signing_key::{JwtError, TokenSigner};
use super::users::UserIdentity;

/// Scope granted in every client-credentials token. The emulator has no
/// per-client authorities, so it grants only this UAA default scope.
pub(crate) const CLIENT_CREDENTIALS_SCOPE: &str = "uaa.resource";

/// OAuth grant types, as sent in `grant_type` and written to the claim of
/// the same name.
pub(crate) mod grant_type {
    pub(crate) const CLIENT_CREDENTIALS: &str = "client_credentials";
    pub(crate) const PASSWORD: &str = "password";
    pub(crate) const REFRESH_TOKEN: &str = "refresh_token";
    pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    pub(crate) const SAML2_BEARER: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";
    /// Grant type of tokens from a browser login through the approuter.
    pub(crate) const AUTHORIZATION_CODE: &str = "authorization_code";
}

/// Path of the key set, relative to the emulator's base URL.
pub(crate) const TOKEN_KEYS_PATH: &str = "/token_keys";

/// Path of the token endpoint, relative to the emulator's base URL. It is
/// also the `iss` of every token.
pub(crate) const TOKEN_PATH: &str = "/oauth/token";

/// Everything that goes into the claims of one token.
#[derive(Debug)]
pub(crate) struct TokenClaims<'a> {
    pub client_id: &'a str,
    pub grant_type: &'a str,
    pub zone_id: &'a str,
    /// Subdomain of the zone, written to `ext_attr.zdn`.
    pub subdomain: &'a str,
    pub scopes: &'a [String],
    pub audience: &'a [String],
    /// The user of a user token, `None` for a client token.
    pub user: Option<&'a UserIdentity>,
    pub lifetime: Duration,
}

/// Newly issued access token.
#[derive(Debug)]
pub(crate) struct IssuedToken {
    pub access_token: String,
    pub jti: String,
}

/// Returns the current time in whole seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since_epoch| since_epoch.as_secs())
}

/// Creates and signs an access token. `issuer_base_url` is the emulator's
/// base URL, from which `iss` and the `jku` header are built.
pub(crate) fn mint_access_token(
    signer: &TokenSigner,
    issuer_base_url: &str,
    request: &TokenClaims<'_>,
) -> IssuedToken {
    let jti = uuid::Uuid::new_v4().simple().to_string();
    let issued_at = unix_now();
    let expires_at = issued_at.saturating_add(request.lifetime.as_secs());

    let mut claims = json!({
        "jti": jti,
        "ext_attr": {
            "enhancer": "XSUAA",
            "subaccountid": request.zone_id,
            "zdn": request.subdomain,
        },
        "sub": request.client_id,
        "scope": request.scopes,
        "client_id": request.client_id,
        "cid": request.client_id,
        "azp": request.client_id,
        "grant_type": request.grant_type,
        "iat": issued_at,
        "exp": expires_at,
        "iss": format!("{issuer_base_url}{TOKEN_PATH}"),
        "zid": request.zone_id,
        "aud": request.audience,
    });
    match request.user {
        Some(user) => {
            user.add_claims(&mut claims);
            claims["auth_time"] = json!(issued_at);
        }
        // Client tokens list their granted scopes as authorities too.
        None => claims["authorities"] = json!(request.scopes),
    }

    let access_token = signer.sign_jwt(&format!("{issuer_base_url}{TOKEN_KEYS_PATH}"), &claims);
    IssuedToken { access_token, jti }
}

/// A bearer token that this emulator issued and that has not expired.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedToken {
    /// The token as sent.
    pub encoded: String,
    pub client_id: String,
    pub zone_id: String,
    pub scopes: Vec<String>,
    /// The user of a user token, `None` for a client token.
    pub user: Option<UserIdentity>,
}

/// Reason why a bearer token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenRejection {
    /// The signature, format or key id is wrong: not a token of this emulator.
    NotIssuedHere(JwtError),
    /// Signed with this emulator's key but with another issuer.
    WrongIssuer(String),
    /// A claim the emulator relies on is missing.
    MissingClaim(&'static str),
    Expired,
}

impl fmt::Display for TokenRejection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRejection::NotIssuedHere(error) => {
                write!(
                    formatter,
                    "Access token was not issued by this emulator: {error}"
                )
            }
            TokenRejection::WrongIssuer(issuer) => {
                write!(
                    formatter,
                    "Access token has the issuer {issuer:?}, not this emulator"
                )
            }
            TokenRejection::MissingClaim(claim) => {
                write!(formatter, "Access token lacks the claim {claim:?}")
            }
            TokenRejection::Expired => formatter.write_str("Access token has expired"),
        }
    }
}

/// Verifies a bearer token: signature, issuer and expiry.
pub(crate) fn verify_access_token(
    signer: &TokenSigner,
    issuer_base_url: &str,
    token: &str,
) -> Result<VerifiedToken, TokenRejection> {
    let claims = signer
        .verify_jwt(token)
        .map_err(TokenRejection::NotIssuedHere)?;

    let issuer = claims["iss"].as_str().unwrap_or_default();
    if issuer != format!("{issuer_base_url}{TOKEN_PATH}") {
        return Err(TokenRejection::WrongIssuer(issuer.to_owned()));
    }
    let expires_at = claims["exp"]
        .as_u64()
        .ok_or(TokenRejection::MissingClaim("exp"))?;
    if unix_now() >= expires_at {
        return Err(TokenRejection::Expired);
    }
    let text_claim = |claim: &'static str| {
        claims[claim]
            .as_str()
            .map(str::to_owned)
            .ok_or(TokenRejection::MissingClaim(claim))
    };
    let scopes = claims["scope"]
        .as_array()
        .map(|scopes| {
            scopes
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();

    Ok(VerifiedToken {
        encoded: token.trim().to_owned(),
        client_id: text_claim("client_id")?,
        zone_id: text_claim("zid")?,
        scopes,
        user: UserIdentity::from_claims(&claims),
    })
}
