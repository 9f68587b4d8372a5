//! One configured destination: its property set and the checks the emulator
//! applies to it when the configuration is loaded.
//!
//! The real Destination service stores a destination as a flat object of
//! string properties, so this type does too and keeps properties it does not
//! interpret (for example `ProxyType` or `sap-client`) unchanged.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::ConfigError;

/// Prefix of properties that configure the emulator itself. The emulator
/// removes them from every configuration it returns.
pub const EMULATOR_PROPERTY_PREFIX: &str = "Emulator.";

/// Emulator-only property that replaces `Authorization` as the
/// `http_header.key` of the destination's auth tokens.
pub const HTTP_HEADER_KEY_PROPERTY: &str = "Emulator.HttpHeaderKey";

/// Placeholder that the emulator replaces with its own base URL (for example
/// `http://127.0.0.1:40123`) in every property value when it starts. A config
/// file needs it because the port is only known after binding port 0.
pub const EMULATOR_URL_PLACEHOLDER: &str = "${EMULATOR_URL}";

/// Level at which a destination is defined. The find-destination call looks
/// at the service instance level first and at the subaccount level second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationLevel {
    /// Defined on the Destination service instance that the caller is bound to.
    Instance,
    /// Defined on the subaccount and visible to every instance in it.
    Subaccount,
}

impl fmt::Display for DestinationLevel {
    /// Writes the name of the config list that contains destinations of this level.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DestinationLevel::Instance => formatter.write_str("instance_destinations"),
            DestinationLevel::Subaccount => formatter.write_str("subaccount_destinations"),
        }
    }
}

/// Property that names the key store of a `ClientCertificateAuthentication`
/// destination among the configured certificates.
pub const KEY_STORE_LOCATION: &str = "KeyStoreLocation";

/// Value of a destination's `Authentication` property that the emulator
/// supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// No credentials, so the response has no `authTokens`.
    NoAuthentication,
    /// `User` and `Password`, returned as a `Basic` auth token.
    BasicAuthentication,
    /// `clientId` and `clientSecret`, exchanged at `tokenServiceURL` for a
    /// bearer token on every lookup.
    OAuth2ClientCredentials,
    /// `User` and `Password` of a technical user, exchanged with the password
    /// grant at `tokenServiceURL`.
    OAuth2Password,
    /// The caller's `X-refresh-token`, exchanged with the refresh token grant.
    OAuth2RefreshToken,
    /// The caller's user token, exchanged with the JWT bearer grant.
    OAuth2JWTBearer,
    /// The caller's user token, exchanged with the JWT bearer grant (the
    /// grant XSUAA uses for user token exchange).
    OAuth2UserTokenExchange,
    /// A SAML assertion for the caller's user, built by the service and
    /// exchanged with the SAML 2.0 bearer grant.
    OAuth2SAMLBearerAssertion,
    /// A client-credentials token sent to the Connectivity proxy in
    /// `SAP-Connectivity-Technical-Authentication`; needs `ProxyType` `OnPremise`.
    OAuth2TechnicalUserPropagation,
    /// No auth token: the caller sends its user token to the Connectivity
    /// proxy itself; needs `ProxyType` `OnPremise`.
    PrincipalPropagation,
    /// No auth token: the response carries the key store named by
    /// `KeyStoreLocation` in `certificates`.
    ClientCertificateAuthentication,
}

impl Authentication {
    /// Every supported value, in the spelling the Destination service uses.
    pub const ALL: [Authentication; 11] = [
        Authentication::NoAuthentication,
        Authentication::BasicAuthentication,
        Authentication::OAuth2ClientCredentials,
        Authentication::OAuth2Password,
        Authentication::OAuth2RefreshToken,
        Authentication::OAuth2JWTBearer,
        Authentication::OAuth2UserTokenExchange,
        Authentication::OAuth2SAMLBearerAssertion,
        Authentication::OAuth2TechnicalUserPropagation,
        Authentication::PrincipalPropagation,
        Authentication::ClientCertificateAuthentication,
    ];

    /// Returns the property value that selects this authentication type.
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::NoAuthentication => "NoAuthentication",
            Authentication::BasicAuthentication => "BasicAuthentication",
            Authentication::OAuth2ClientCredentials => "OAuth2ClientCredentials",
            Authentication::OAuth2Password => "OAuth2Password",
            Authentication::OAuth2RefreshToken => "OAuth2RefreshToken",
            Authentication::OAuth2JWTBearer => "OAuth2JWTBearer",
            Authentication::OAuth2UserTokenExchange => "OAuth2UserTokenExchange",
            Authentication::OAuth2SAMLBearerAssertion => "OAuth2SAMLBearerAssertion",
            Authentication::OAuth2TechnicalUserPropagation => "OAuth2TechnicalUserPropagation",
            Authentication::PrincipalPropagation => "PrincipalPropagation",
            Authentication::ClientCertificateAuthentication => "ClientCertificateAuthentication",
        }
    }

    /// Parses a property value. Matching is case-sensitive, as in the real
    /// service.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// Returns the supported values as a comma-separated list, for messages.
    pub(crate) fn supported_list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Returns whether the type needs the caller's user (from `X-user-token`
    /// or a user token in `Authorization`).
    pub fn is_user_based(self) -> bool {
        matches!(
            self,
            Authentication::OAuth2JWTBearer
                | Authentication::OAuth2UserTokenExchange
                | Authentication::OAuth2SAMLBearerAssertion
        )
    }

    /// Returns whether the type works only through the Cloud Connector.
    fn requires_on_premise(self) -> bool {
        matches!(
            self,
            Authentication::OAuth2TechnicalUserPropagation | Authentication::PrincipalPropagation
        )
    }

    /// Properties that a destination with this authentication type must have
    /// in addition to `Name`, `Type`, `URL` and `Authentication`.
    fn required_properties(self) -> &'static [&'static str] {
        match self {
            Authentication::NoAuthentication | Authentication::PrincipalPropagation => &[],
            Authentication::BasicAuthentication => &["User", "Password"],
            Authentication::OAuth2ClientCredentials
            | Authentication::OAuth2RefreshToken
            | Authentication::OAuth2JWTBearer
            | Authentication::OAuth2UserTokenExchange
            | Authentication::OAuth2TechnicalUserPropagation => {
                &["tokenServiceURL", "clientId", "clientSecret"]
            }
            Authentication::OAuth2Password => &[
                "tokenServiceURL",
                "clientId",
                "clientSecret",
                "User",
                "Password",
            ],
            Authentication::OAuth2SAMLBearerAssertion => {
                &["tokenServiceURL", "audience", "clientKey"]
            }
            Authentication::ClientCertificateAuthentication => &[KEY_STORE_LOCATION],
        }
    }
}

/// Destination as a flat map of string properties, serialised as one JSON
/// object exactly like the real service's `destinationConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Destination {
    properties: BTreeMap<String, String>,
}

impl Destination {
    /// Creates a destination with the four properties every destination needs.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        authentication: Authentication,
    ) -> Self {
        Self::default()
            .with_property("Name", name)
            .with_property("Type", "HTTP")
            .with_property("URL", url)
            .with_property("Authentication", authentication.as_str())
    }

    /// Creates an HTTP destination with `NoAuthentication`.
    pub fn no_authentication(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self::new(name, url, Authentication::NoAuthentication)
    }

    /// Creates an HTTP destination with `BasicAuthentication`.
    pub fn basic(
        name: impl Into<String>,
        url: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self::new(name, url, Authentication::BasicAuthentication)
            .with_property("User", user)
            .with_property("Password", password)
    }

    /// Creates an HTTP destination with `OAuth2ClientCredentials`.
    pub fn oauth2_client_credentials(
        name: impl Into<String>,
        url: impl Into<String>,
        token_service_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self::new(name, url, Authentication::OAuth2ClientCredentials)
            .with_property("tokenServiceURL", token_service_url)
            .with_property("clientId", client_id)
            .with_property("clientSecret", client_secret)
    }

    /// Sets one property, replacing any earlier value.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Returns the value of a property, if set.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }

    /// Returns the `Name` property, or an empty string if it is missing.
    pub fn name(&self) -> &str {
        self.property("Name").unwrap_or_default()
    }

    /// Returns the parsed `Authentication` property, or `None` if it is
    /// missing or unsupported. [`Destination::validate`] rejects both cases.
    pub fn authentication(&self) -> Option<Authentication> {
        self.property("Authentication")
            .and_then(Authentication::parse)
    }

    /// Returns whether `ProxyType` is `OnPremise`, so that requests go through
    /// the Connectivity proxy and the Cloud Connector.
    pub fn is_on_premise(&self) -> bool {
        self.property("ProxyType") == Some("OnPremise")
    }

    /// Returns all properties, including emulator-only ones.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// Returns the properties that the find-destination call reports as
    /// `destinationConfiguration`: all of them except `Emulator.*`.
    pub fn public_properties(&self) -> BTreeMap<&str, &str> {
        self.properties
            .iter()
            .filter(|(key, _)| !key.starts_with(EMULATOR_PROPERTY_PREFIX))
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }

    /// Returns a copy with [`EMULATOR_URL_PLACEHOLDER`] replaced by
    /// `emulator_url` in every property value.
    pub fn with_emulator_url(&self, emulator_url: &str) -> Self {
        let properties = self
            .properties
            .iter()
            .map(|(key, value)| {
                let value = value.replace(EMULATOR_URL_PLACEHOLDER, emulator_url);
                (key.clone(), value)
            })
            .collect();
        Self { properties }
    }

    /// Checks that the destination has every property its authentication type
    /// needs and no emulator-only property the emulator does not know.
    /// `index` is the position in its config list, for error messages.
    pub fn validate(&self, level: DestinationLevel, index: usize) -> Result<(), ConfigError> {
        let missing = |property: &str| ConfigError::MissingDestinationProperty {
            level,
            index,
            name: self.name().to_owned(),
            property: property.to_owned(),
        };

        // `Name` comes first so that the later messages can name the destination.
        for property in ["Name", "Type", "URL", "Authentication"] {
            if self.property(property).is_none_or(str::is_empty) {
                return Err(missing(property));
            }
        }

        let authentication_value = self.property("Authentication").unwrap_or_default();
        let Some(authentication) = Authentication::parse(authentication_value) else {
            return Err(ConfigError::UnsupportedAuthentication {
                name: self.name().to_owned(),
                value: authentication_value.to_owned(),
            });
        };
        for property in authentication.required_properties() {
            if self.property(property).is_none_or(str::is_empty) {
                return Err(missing(property));
            }
        }
        if authentication.requires_on_premise() && !self.is_on_premise() {
            return Err(ConfigError::OnPremiseRequired {
                name: self.name().to_owned(),
                authentication: authentication.as_str(),
            });
        }

        for (key, value) in &self.properties {
            if !key.starts_with(EMULATOR_PROPERTY_PREFIX) {
                continue;
            }
            if key != HTTP_HEADER_KEY_PROPERTY {
                return Err(ConfigError::UnknownEmulatorProperty {
                    name: self.name().to_owned(),
                    property: key.clone(),
                });
            }
            if http::HeaderName::from_bytes(value.as_bytes()).is_err() {
                return Err(ConfigError::InvalidHttpHeaderKey {
                    name: self.name().to_owned(),
                    value: value.clone(),
                });
            }
        }
        Ok(())
    }
}
