//! Emulator configuration: OAuth clients, destinations and the ids that the
//! emulator reports as owner and identity zone.
//!
//! See the [`emulator`](super) module docs for the JSON format.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::destination::{Destination, DestinationLevel};

/// Default `token_lifetime_seconds`: 12 hours less one second, the
/// `expires_in` commonly seen in XSUAA client-credentials responses.
pub const DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 43_199;

/// Upper limit for `token_lifetime_seconds` (one year). It keeps expiry
/// arithmetic on `Instant` far from overflow.
pub const MAX_TOKEN_LIFETIME_SECONDS: u64 = 365 * 24 * 60 * 60;

/// Default `subaccount_id`. Real subaccount ids are UUIDs, so this one is too.
pub const DEFAULT_SUBACCOUNT_ID: &str = "5a7e1a3c-0000-4000-8000-00000000e001";

/// Default `instance_id` of the emulated Destination service instance.
pub const DEFAULT_INSTANCE_ID: &str = "5a7e1a3c-0000-4000-8000-00000000e002";

/// Default `identity_zone`, the subaccount subdomain in a real binding.
pub const DEFAULT_IDENTITY_ZONE: &str = "btp-emulator";

/// Emulator configuration, usually read from JSON with
/// [`EmulatorConfig::from_json_str`] or [`EmulatorConfig::from_json_file`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    /// OAuth clients that may request tokens at `/oauth/token`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Destinations on the service instance, looked up first.
    #[serde(default)]
    pub instance_destinations: Vec<Destination>,
    /// Destinations on the subaccount, looked up when no instance
    /// destination has the requested name.
    #[serde(default)]
    pub subaccount_destinations: Vec<Destination>,
    /// Lifetime of issued access tokens in seconds, also sent as `expires_in`.
    /// Zero issues tokens that are already expired.
    #[serde(default = "default_token_lifetime_seconds")]
    pub token_lifetime_seconds: u64,
    /// Subaccount id, reported as `owner.SubaccountId` and used as the token
    /// zone id of clients without their own `zone_id`.
    #[serde(default = "default_subaccount_id")]
    pub subaccount_id: String,
    /// Service instance id, reported as `owner.InstanceId` for instance
    /// destinations and as `instanceid` in the binding.
    #[serde(default = "default_instance_id")]
    pub instance_id: String,
    /// Identity zone (subaccount subdomain), reported as `identityzone` in the
    /// binding and as `ext_attr.zdn` in tokens.
    #[serde(default = "default_identity_zone")]
    pub identity_zone: String,
}

/// OAuth client registered at the emulated XSUAA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client id, compared byte for byte as sent (no percent-decoding).
    pub client_id: String,
    /// Client secret, compared byte for byte as sent.
    pub client_secret: String,
    /// Identity zone id written to the `zid` claim, defaulting to the
    /// configuration's `subaccount_id`.
    #[serde(default)]
    pub zone_id: Option<String>,
}

impl ClientConfig {
    /// Creates a client in the default zone.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            zone_id: None,
        }
    }
}

/// Invalid or unreadable emulator configuration. Each message is complete,
/// including the underlying I/O or JSON error, so no variant has a `source`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("failed to read emulator config {path}: {error}")]
    Read {
        /// Path of the config file.
        path: PathBuf,
        /// Underlying I/O error.
        error: std::io::Error,
    },
    /// The config is not valid JSON or does not match the format.
    #[error("invalid emulator config: {0}")]
    Parse(serde_json::Error),
    /// A client has an empty `client_id`.
    #[error("invalid emulator config: clients[{index}] has an empty client_id")]
    EmptyClientId {
        /// Position in `clients`.
        index: usize,
    },
    /// Two clients share one `client_id`.
    #[error("invalid emulator config: client_id {client_id:?} appears more than once in clients")]
    DuplicateClient {
        /// The repeated id.
        client_id: String,
    },
    /// A destination lacks a property it needs.
    #[error(
        "invalid emulator config: {level}[{index}] (Name {name:?}) is missing the property {property:?}"
    )]
    MissingDestinationProperty {
        /// List that contains the destination.
        level: DestinationLevel,
        /// Position in that list.
        index: usize,
        /// Destination name, empty if `Name` itself is missing.
        name: String,
        /// Missing property.
        property: String,
    },
    /// A destination uses an `Authentication` value the emulator does not support.
    #[error(
        "invalid emulator config: destination {name:?} has Authentication {value:?}, \
         but the emulator supports only NoAuthentication, BasicAuthentication and OAuth2ClientCredentials"
    )]
    UnsupportedAuthentication {
        /// Destination name.
        name: String,
        /// Rejected value.
        value: String,
    },
    /// A destination has an `Emulator.*` property the emulator does not know.
    #[error(
        "invalid emulator config: destination {name:?} has the unknown property {property:?}; \
         the only emulator-only property is Emulator.HttpHeaderKey"
    )]
    UnknownEmulatorProperty {
        /// Destination name.
        name: String,
        /// Rejected property.
        property: String,
    },
    /// `Emulator.HttpHeaderKey` is not a valid HTTP header name.
    #[error(
        "invalid emulator config: destination {name:?} has Emulator.HttpHeaderKey {value:?}, which is not a valid HTTP header name"
    )]
    InvalidHttpHeaderKey {
        /// Destination name.
        name: String,
        /// Rejected value.
        value: String,
    },
    /// Two destinations of one level share a name.
    #[error("invalid emulator config: destination name {name:?} appears more than once in {level}")]
    DuplicateDestination {
        /// List that contains both.
        level: DestinationLevel,
        /// The repeated name.
        name: String,
    },
    /// `token_lifetime_seconds` exceeds [`MAX_TOKEN_LIFETIME_SECONDS`].
    #[error(
        "invalid emulator config: token_lifetime_seconds is {value}, but the maximum is {MAX_TOKEN_LIFETIME_SECONDS}"
    )]
    TokenLifetimeTooLong {
        /// Rejected value.
        value: u64,
    },
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            instance_destinations: Vec::new(),
            subaccount_destinations: Vec::new(),
            token_lifetime_seconds: DEFAULT_TOKEN_LIFETIME_SECONDS,
            subaccount_id: DEFAULT_SUBACCOUNT_ID.to_owned(),
            instance_id: DEFAULT_INSTANCE_ID.to_owned(),
            identity_zone: DEFAULT_IDENTITY_ZONE.to_owned(),
        }
    }
}

impl EmulatorConfig {
    /// Parses and validates a JSON configuration.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let config: Self = serde_json::from_str(text).map_err(ConfigError::Parse)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a JSON configuration file.
    pub fn from_json_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::from_json_str(&text)
    }

    /// Checks the rules that serde cannot express: unique, non-empty client
    /// ids, complete and unique destinations per level, and the token
    /// lifetime limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token_lifetime_seconds > MAX_TOKEN_LIFETIME_SECONDS {
            return Err(ConfigError::TokenLifetimeTooLong {
                value: self.token_lifetime_seconds,
            });
        }

        let mut client_ids = HashSet::new();
        for (index, client) in self.clients.iter().enumerate() {
            if client.client_id.is_empty() {
                return Err(ConfigError::EmptyClientId { index });
            }
            if !client_ids.insert(client.client_id.as_str()) {
                return Err(ConfigError::DuplicateClient {
                    client_id: client.client_id.clone(),
                });
            }
        }

        // The same name may appear once per level: that is how the real
        // service lets an instance destination shadow a subaccount one.
        for (level, destinations) in self.destination_levels() {
            let mut names = HashSet::new();
            for (index, destination) in destinations.iter().enumerate() {
                destination.validate(level, index)?;
                if !names.insert(destination.name()) {
                    return Err(ConfigError::DuplicateDestination {
                        level,
                        name: destination.name().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Returns the client registered under `client_id`.
    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients
            .iter()
            .find(|client| client.client_id == client_id)
    }

    /// Returns the identity zone id of `client_id`: its own `zone_id` if set,
    /// otherwise the subaccount id.
    pub fn zone_id_of(&self, client_id: &str) -> &str {
        self.client(client_id)
            .and_then(|client| client.zone_id.as_deref())
            .unwrap_or(&self.subaccount_id)
    }

    /// Finds a destination by exact, case-sensitive name, looking at the
    /// instance level before the subaccount level as the real service does.
    pub fn find_destination(&self, name: &str) -> Option<(DestinationLevel, &Destination)> {
        self.destination_levels()
            .into_iter()
            .find_map(|(level, destinations)| {
                destinations
                    .iter()
                    .find(|destination| destination.name() == name)
                    .map(|destination| (level, destination))
            })
    }

    /// Returns a copy with `${EMULATOR_URL}` replaced in every destination
    /// property value.
    pub(crate) fn with_emulator_url(&self, emulator_url: &str) -> Self {
        let replace_all = |destinations: &[Destination]| {
            destinations
                .iter()
                .map(|destination| destination.with_emulator_url(emulator_url))
                .collect()
        };
        Self {
            instance_destinations: replace_all(&self.instance_destinations),
            subaccount_destinations: replace_all(&self.subaccount_destinations),
            ..self.clone()
        }
    }

    /// Returns both destination lists in lookup order.
    fn destination_levels(&self) -> [(DestinationLevel, &[Destination]); 2] {
        [
            (DestinationLevel::Instance, &self.instance_destinations),
            (DestinationLevel::Subaccount, &self.subaccount_destinations),
        ]
    }
}

fn default_token_lifetime_seconds() -> u64 {
    DEFAULT_TOKEN_LIFETIME_SECONDS
}

fn default_subaccount_id() -> String {
    DEFAULT_SUBACCOUNT_ID.to_owned()
}

fn default_instance_id() -> String {
    DEFAULT_INSTANCE_ID.to_owned()
}

fn default_identity_zone() -> String {
    DEFAULT_IDENTITY_ZONE.to_owned()
}
