//! Emulator configuration: OAuth clients, users, tenants, destinations,
//! certificates, Cloud Connector mappings and the ids that the emulator
//! reports as owner and identity zone.
//!
//! See the [`emulator`](super) module docs for the JSON format.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::certurl::CertUrlConfig;
use super::destination::{Authentication, Destination, DestinationLevel, KEY_STORE_LOCATION};
use super::tenant::{TenantConfig, Zone};
use super::users::UserConfig;
use super::virtual_host::VirtualHostConfig;

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
    /// Identity zone (subaccount subdomain) of the provider, reported as
    /// `identityzone` in the binding and as `ext_attr.zdn` in provider tokens.
    /// JSON also accepts the name `provider_subdomain`.
    #[serde(default = "default_identity_zone", alias = "provider_subdomain")]
    pub identity_zone: String,
    /// Subscriber tenants, each with its own zone id, subdomain and
    /// destinations. The top-level destinations belong to the provider.
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
    /// Users who can log in with the password grant.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// Certificates and key stores of the provider, named by the
    /// `KeyStoreLocation` of `ClientCertificateAuthentication` destinations.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    /// OAuth clients of the Connectivity service binding. They may request
    /// tokens like `clients`, and only their tokens open the connectivity
    /// proxy. When empty, tokens of every client in `clients` open it.
    #[serde(default)]
    pub connectivity_clients: Vec<ClientConfig>,
    /// Cloud Connector mappings from virtual host to a backend on 127.0.0.1,
    /// used by the connectivity proxy.
    #[serde(default)]
    pub virtual_hosts: Vec<VirtualHostConfig>,
    /// Server certificate and client CA of the mutual-TLS token endpoint
    /// (XSUAA's `certurl`). Without it no TLS listener is started.
    #[serde(default)]
    pub certurl: Option<CertUrlConfig>,
}

/// OAuth client registered at the emulated XSUAA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client id, compared byte for byte as sent (no percent-decoding).
    pub client_id: String,
    /// Client secret, compared byte for byte as sent. An empty secret
    /// disables secret authentication, for clients that only authenticate
    /// with `certificate_pem` at the `certurl`.
    pub client_secret: String,
    /// Identity zone id written to the `zid` claim when the token request has
    /// no `x-zid` header, defaulting to the configuration's `subaccount_id`.
    #[serde(default)]
    pub zone_id: Option<String>,
    /// PEM certificate with which the client authenticates at the mutual-TLS
    /// token endpoint. The first certificate of the PEM text must equal the
    /// client's TLS certificate byte for byte.
    #[serde(default)]
    pub certificate_pem: Option<String>,
}

impl ClientConfig {
    /// Creates a client in the default zone.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            zone_id: None,
            certificate_pem: None,
        }
    }

    /// Creates a client that authenticates with an X.509 certificate at the
    /// mutual-TLS token endpoint and has no secret.
    pub fn with_certificate(
        client_id: impl Into<String>,
        certificate_pem: impl Into<String>,
    ) -> Self {
        Self {
            certificate_pem: Some(certificate_pem.into()),
            ..Self::new(client_id, "")
        }
    }

    /// Checks a client secret. An empty configured secret matches nothing.
    pub(crate) fn secret_matches(&self, client_secret: &str) -> bool {
        !self.client_secret.is_empty() && self.client_secret == client_secret
    }
}

/// Certificate or key store file that destinations refer to by name, as
/// uploaded to the Destination service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// File name, for example `client.p12`, as named by `KeyStoreLocation`.
    pub name: String,
    /// The file content in standard base64, returned unchanged as `Content`.
    pub content_base64: String,
}

impl CertificateConfig {
    /// Creates a certificate entry from the raw file content.
    pub fn from_bytes(name: impl Into<String>, content: &[u8]) -> Self {
        Self {
            name: name.into(),
            content_base64: STANDARD.encode(content),
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
         but the emulator supports only {supported}",
        supported = Authentication::supported_list()
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
    /// A destination's authentication type works only through the Cloud
    /// Connector, but its `ProxyType` is not `OnPremise`.
    #[error(
        "invalid emulator config: destination {name:?} has Authentication {authentication}, \
         which needs the property ProxyType set to OnPremise"
    )]
    OnPremiseRequired {
        /// Destination name.
        name: String,
        /// The authentication type.
        authentication: &'static str,
    },
    /// A `ClientCertificateAuthentication` destination names a key store that
    /// is not in `certificates` of its tenant.
    #[error(
        "invalid emulator config: destination {name:?} has KeyStoreLocation {key_store:?}, \
         but no entry of certificates has that name"
    )]
    UnknownKeyStore {
        /// Destination name.
        name: String,
        /// The missing certificate name.
        key_store: String,
    },
    /// A field that must not be empty is empty.
    #[error("invalid emulator config: {field} must not be empty")]
    EmptyField {
        /// Path of the field, for example `tenants[0].zone_id`.
        field: String,
    },
    /// A value that must be unique appears twice.
    #[error("invalid emulator config: {field} {value:?} appears more than once")]
    DuplicateValue {
        /// Name of the field, for example `tenants.zone_id`.
        field: String,
        /// The repeated value.
        value: String,
    },
    /// A zone id names neither the provider nor a tenant.
    #[error(
        "invalid emulator config: {field} is {zone_id:?}, which is neither subaccount_id nor the zone_id of a tenant"
    )]
    UnknownZone {
        /// Path of the field.
        field: String,
        /// The zone id.
        zone_id: String,
    },
    /// A field has an invalid value.
    #[error("invalid emulator config: {field} is invalid: {reason}")]
    InvalidField {
        /// Path of the field.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A destination or certificate of a tenant is invalid.
    #[error("{error} (in tenants[{index}], zone_id {zone_id:?})")]
    InTenant {
        /// Position in `tenants`.
        index: usize,
        /// The tenant's zone id.
        zone_id: String,
        /// The error inside the tenant's lists.
        error: Box<ConfigError>,
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
            tenants: Vec::new(),
            users: Vec::new(),
            certificates: Vec::new(),
            connectivity_clients: Vec::new(),
            virtual_hosts: Vec::new(),
            certurl: None,
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
    /// ids, complete and unique destinations per level and tenant, known
    /// zones and key stores, loopback-only virtual host targets, and the
    /// token lifetime limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token_lifetime_seconds > MAX_TOKEN_LIFETIME_SECONDS {
            return Err(ConfigError::TokenLifetimeTooLong {
                value: self.token_lifetime_seconds,
            });
        }

        let mut client_ids = HashSet::new();
        for (index, client) in self.all_clients().enumerate() {
            if client.client_id.is_empty() {
                return Err(ConfigError::EmptyClientId { index });
            }
            if !client_ids.insert(client.client_id.as_str()) {
                return Err(ConfigError::DuplicateClient {
                    client_id: client.client_id.clone(),
                });
            }
        }

        self.validate_tenants()?;
        validate_zone_lists(&self.provider_zone())?;
        for (index, tenant) in self.tenants.iter().enumerate() {
            validate_zone_lists(&tenant.zone()).map_err(|error| ConfigError::InTenant {
                index,
                zone_id: tenant.zone_id.clone(),
                error: Box::new(error),
            })?;
        }

        let mut user_keys = HashSet::new();
        for (index, user) in self.users.iter().enumerate() {
            user.validate(index)?;
            if let Some(zone_id) = &user.zone_id
                && self.zone(zone_id).is_none()
            {
                return Err(ConfigError::UnknownZone {
                    field: format!("users[{index}].zone_id"),
                    zone_id: zone_id.clone(),
                });
            }
            let zone_id = user.zone_id.as_deref().unwrap_or(&self.subaccount_id);
            if !user_keys.insert((zone_id, user.user_name.as_str())) {
                return Err(ConfigError::DuplicateValue {
                    field: "users.user_name in one zone".to_owned(),
                    value: user.user_name.clone(),
                });
            }
        }

        let mut mappings = HashSet::new();
        for (index, virtual_host) in self.virtual_hosts.iter().enumerate() {
            virtual_host.validate(index)?;
            let key = virtual_host.key();
            if !mappings.insert(key.clone()) {
                return Err(ConfigError::DuplicateValue {
                    field: "virtual_hosts (virtual_host, virtual_port, location_id)".to_owned(),
                    value: format!("{key:?}"),
                });
            }
        }

        if let Some(certurl) = &self.certurl {
            certurl.validate()?;
        }
        Ok(())
    }

    /// Checks tenant ids and subdomains: non-empty, unique and distinct from
    /// the provider's.
    fn validate_tenants(&self) -> Result<(), ConfigError> {
        let mut zone_ids = HashSet::from([self.subaccount_id.as_str()]);
        let mut subdomains = HashSet::from([self.identity_zone.as_str()]);
        for (index, tenant) in self.tenants.iter().enumerate() {
            if tenant.zone_id.is_empty() {
                return Err(ConfigError::EmptyField {
                    field: format!("tenants[{index}].zone_id"),
                });
            }
            if tenant.subdomain.is_empty() {
                return Err(ConfigError::EmptyField {
                    field: format!("tenants[{index}].subdomain"),
                });
            }
            // The provider's ids count as taken, so a tenant cannot shadow it.
            if !zone_ids.insert(tenant.zone_id.as_str()) {
                return Err(ConfigError::DuplicateValue {
                    field: "zone_id (subaccount_id and tenants)".to_owned(),
                    value: tenant.zone_id.clone(),
                });
            }
            if !subdomains.insert(tenant.subdomain.as_str()) {
                return Err(ConfigError::DuplicateValue {
                    field: "subdomain (identity_zone and tenants)".to_owned(),
                    value: tenant.subdomain.clone(),
                });
            }
        }
        Ok(())
    }

    /// Returns the client registered under `client_id` in `clients` or
    /// `connectivity_clients`.
    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.all_clients()
            .find(|client| client.client_id == client_id)
    }

    /// Returns every client that may request tokens.
    pub(crate) fn all_clients(&self) -> impl Iterator<Item = &ClientConfig> {
        self.clients.iter().chain(&self.connectivity_clients)
    }

    /// Returns the identity zone id of `client_id`: its own `zone_id` if set,
    /// otherwise the subaccount id.
    pub fn zone_id_of(&self, client_id: &str) -> &str {
        self.client(client_id)
            .and_then(|client| client.zone_id.as_deref())
            .unwrap_or(&self.subaccount_id)
    }

    /// Returns the provider's zone: `subaccount_id`, `identity_zone` and the
    /// top-level destinations and certificates.
    pub(crate) fn provider_zone(&self) -> Zone<'_> {
        Zone {
            zone_id: &self.subaccount_id,
            subdomain: &self.identity_zone,
            instance_destinations: &self.instance_destinations,
            subaccount_destinations: &self.subaccount_destinations,
            certificates: &self.certificates,
        }
    }

    /// Returns the zone with this id: the provider's or a tenant's.
    pub(crate) fn zone(&self, zone_id: &str) -> Option<Zone<'_>> {
        if zone_id == self.subaccount_id {
            return Some(self.provider_zone());
        }
        self.tenants
            .iter()
            .find(|tenant| tenant.zone_id == zone_id)
            .map(TenantConfig::zone)
    }

    /// Returns the zone whose destinations a token with this `zid` can read:
    /// the tenant's, or the provider's for every other zone id. A client
    /// `zone_id` that names no tenant thus acts as an alias of the provider.
    pub(crate) fn zone_or_provider(&self, zone_id: &str) -> Zone<'_> {
        self.zone(zone_id).unwrap_or_else(|| self.provider_zone())
    }

    /// Finds a provider destination by exact, case-sensitive name, looking at
    /// the instance level before the subaccount level as the real service does.
    pub fn find_destination(&self, name: &str) -> Option<(DestinationLevel, &Destination)> {
        self.provider_zone().find_destination(name)
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
        let tenants = self
            .tenants
            .iter()
            .map(|tenant| TenantConfig {
                instance_destinations: replace_all(&tenant.instance_destinations),
                subaccount_destinations: replace_all(&tenant.subaccount_destinations),
                ..tenant.clone()
            })
            .collect();
        let virtual_hosts = self
            .virtual_hosts
            .iter()
            .map(|virtual_host| virtual_host.with_emulator_url(emulator_url))
            .collect();
        Self {
            instance_destinations: replace_all(&self.instance_destinations),
            subaccount_destinations: replace_all(&self.subaccount_destinations),
            tenants,
            virtual_hosts,
            ..self.clone()
        }
    }
}

/// Checks the destinations and certificates of one zone: complete, unique
/// per level, and every `KeyStoreLocation` naming a certificate of the zone.
fn validate_zone_lists(zone: &Zone<'_>) -> Result<(), ConfigError> {
    let mut certificate_names = HashSet::new();
    for (index, certificate) in zone.certificates.iter().enumerate() {
        if certificate.name.is_empty() {
            return Err(ConfigError::EmptyField {
                field: format!("certificates[{index}].name"),
            });
        }
        if STANDARD.decode(&certificate.content_base64).is_err() {
            return Err(ConfigError::InvalidField {
                field: format!("certificates[{index}].content_base64"),
                reason: "it is not standard base64 (RFC 4648 with padding)".to_owned(),
            });
        }
        if !certificate_names.insert(certificate.name.as_str()) {
            return Err(ConfigError::DuplicateValue {
                field: "certificates.name".to_owned(),
                value: certificate.name.clone(),
            });
        }
    }

    // The same name may appear once per level: that is how the real
    // service lets an instance destination shadow a subaccount one.
    for (level, destinations) in zone.destination_levels() {
        let mut names = HashSet::new();
        for (index, destination) in destinations.iter().enumerate() {
            destination.validate(level, index)?;
            if !names.insert(destination.name()) {
                return Err(ConfigError::DuplicateDestination {
                    level,
                    name: destination.name().to_owned(),
                });
            }
            if destination.authentication() == Some(Authentication::ClientCertificateAuthentication)
            {
                let key_store = destination.property(KEY_STORE_LOCATION).unwrap_or_default();
                if !certificate_names.contains(key_store) {
                    return Err(ConfigError::UnknownKeyStore {
                        name: destination.name().to_owned(),
                        key_store: key_store.to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
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
