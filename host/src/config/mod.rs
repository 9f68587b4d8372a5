//! The host's configuration, read once at start.
//!
//! On Cloud Foundry everything comes from the environment: `PORT`,
//! `VCAP_SERVICES` (or the file named by `VCAP_SERVICES_FILE_PATH`) and
//! `VCAP_APPLICATION`. Locally the same variables may come from files in the
//! working directory, in this order, each filling only what is still unset:
//! the process environment, `.env`, then `default-env.json` (the
//! `@sap/xsenv` convention). The `destinations` variable lists destinations
//! that need no Destination service, as the approuter and the SAP Cloud SDK
//! read it.
//!
//! Any error stops the start with a message that names the variable or
//! file, the position, and the fix. Messages never quote a value, because
//! values hold credentials.

pub mod credentials;
mod default_env;
pub mod destinations;
mod dotenv;
pub mod env;
pub mod options;
pub mod policy;
pub mod vcap;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use url::Url;

use crate::auth::admin::{ADMIN_TOKEN_VARIABLE, MIN_ADMIN_TOKEN_CHARS};
use crate::auth::scopes::{ROUTE_SCOPES_VARIABLE, RouteScopes};
use crate::components::oci::RegistryCredentials;
use crate::components::routes::{ROUTES_VARIABLE, RouteConfig, parse_routes};
use crate::destination::DestinationConfig;
use crate::secret::Secret;
pub use credentials::{
    ClientAuthentication, ConnectivityCredentials, DestinationServiceCredentials, OAuthClient,
    XsuaaCredentials,
};
pub use env::{Env, LayeredEnv, MapEnv, NotUnicode, ProcessEnv};
pub use policy::{DestinationPolicies, PolicyViolation};
pub use vcap::VcapServices;

/// The port used locally when `PORT` is not set.
pub const DEFAULT_LOCAL_PORT: u16 = 8080;

/// The `.env` variables that describe one Destination service binding, as
/// copied from a service key: `clientid`, `clientsecret`, `url` +
/// `/oauth/token`, and `uri`.
const DOTENV_BINDING_VARS: [&str; 4] = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "TOKEN_URL",
    "DESTINATION_SERVICE_URI",
];

/// Everything the host needs to start.
#[derive(Debug)]
pub struct Config {
    /// The address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Whether the host runs on Cloud Foundry (`VCAP_APPLICATION` is set).
    pub on_cloud_foundry: bool,
    /// The Destination service binding, if any.
    pub destination_service: Option<DestinationServiceCredentials>,
    /// The XSUAA binding, if any: callers must then present its tokens.
    pub xsuaa: Option<XsuaaCredentials>,
    /// The Connectivity service binding, for `ProxyType: OnPremise`.
    pub connectivity: Option<ConnectivityCredentials>,
    /// Destinations from the `destinations` variable.
    pub local_destinations: Vec<DestinationConfig>,
    /// Per-destination policies from `BTP_GATEWAY_DESTINATION_POLICIES`.
    pub policies: DestinationPolicies,
    /// Scopes that routes require, from `BTP_GATEWAY_ROUTE_SCOPES`.
    pub route_scopes: RouteScopes,
    /// The token that admits callers to `/metrics` without XSUAA, from
    /// `BTP_GATEWAY_ADMIN_TOKEN`.
    pub admin_token: Option<Secret>,
    /// The routes from `BTP_GATEWAY_ROUTES`; `None` when it is not set.
    pub routes: Option<Vec<RouteConfig>>,
    /// Credentials for the OCI registries that routes follow, from
    /// `BTP_GATEWAY_REGISTRY_USERNAME` and `BTP_GATEWAY_REGISTRY_PASSWORD`.
    pub registry_credentials: Option<RegistryCredentials>,
    /// Whether outgoing connections may reach loopback, link-local and
    /// metadata addresses: `BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES`, by default
    /// only off Cloud Foundry.
    pub allow_local_addresses: bool,
    /// The sources of the settings, for the start-up log. It contains no values.
    pub sources: Vec<String>,
}

/// The reason the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{variable} from {source_name} cannot be parsed: {reason}")]
    InvalidJson {
        variable: String,
        source_name: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    InvalidFile { path: PathBuf, reason: String },
    #[error("cannot read {path}: {reason}")]
    UnreadableFile { path: PathBuf, reason: String },
    #[error("{source_name}: {variable} {reason}")]
    InvalidVariable {
        variable: String,
        source_name: String,
        reason: String,
    },
    #[error(
        "VCAP_SERVICES has {} different bindings for the {service} service ({}): unbind all but \
         one, or choose one by name with BTP_GATEWAY_{}_BINDING",
        names.len(),
        names.join(", "),
        service.to_uppercase()
    )]
    AmbiguousBinding { service: String, names: Vec<String> },
    #[error("VCAP_SERVICES: the binding '{binding}' cannot be used: {reason}")]
    InvalidBinding { binding: String, reason: String },
    #[error(
        "{source_name} sets {} but not {}: set all of {} to use a Destination service key locally",
        set.join(", "),
        missing.join(", "),
        DOTENV_BINDING_VARS.join(", ")
    )]
    IncompleteServiceKey {
        source_name: String,
        set: Vec<String>,
        missing: Vec<String>,
    },
    #[error("{0}")]
    InvalidDestination(String),
    #[error(transparent)]
    NotUnicode(#[from] NotUnicode),
}

impl Config {
    /// Reads the configuration from `env` and the files in `dir`.
    pub fn load(env: &dyn Env, dir: &Path) -> Result<Self, ConfigError> {
        let mut layered = LayeredEnv::new(env);
        let mut sources = vec!["the environment".to_owned()];

        let dotenv_path = dir.join(".env");
        if let Some(text) = read_optional(&dotenv_path)? {
            let vars = dotenv::parse(&text).map_err(|error| ConfigError::InvalidFile {
                path: dotenv_path.clone(),
                reason: error.to_string(),
            })?;
            layered.push_layer(".env", vars);
            sources.push(dotenv_path.display().to_string());
        }

        let default_env_path = dir.join("default-env.json");
        if let Some(text) = read_optional(&default_env_path)? {
            let vars = default_env::parse(&text).map_err(|reason| ConfigError::InvalidFile {
                path: default_env_path.clone(),
                reason,
            })?;
            layered.push_layer("default-env.json", vars);
            sources.push(default_env_path.display().to_string());
        }

        let on_cloud_foundry = layered.var("VCAP_APPLICATION")?.is_some();
        let listen = listen_address(&layered, on_cloud_foundry)?;
        let vcap = read_vcap_services(&layered)?;
        let chosen = |service: &str| layered.var(&format!("BTP_GATEWAY_{service}_BINDING"));
        let destination_service =
            match vcap.destination_service(chosen("DESTINATION")?.as_deref())? {
                Some(credentials) => Some(credentials),
                None => service_key_from_vars(&layered)?,
            };
        let xsuaa = vcap.xsuaa(chosen("XSUAA")?.as_deref())?;
        let connectivity = vcap.connectivity(chosen("CONNECTIVITY")?.as_deref())?;
        let local_destinations = match layered.var_with_source("destinations")? {
            Some((text, source)) => destinations::parse(&text, source)?,
            None => Vec::new(),
        };

        let policies = match layered.var_with_source(policy::POLICIES_VARIABLE)? {
            Some((text, source)) => DestinationPolicies::parse(&text, source)?,
            None => DestinationPolicies::default(),
        };

        let route_scopes = read_route_scopes(&layered, xsuaa.as_ref())?;
        let admin_token = read_admin_token(&layered)?;
        let routes = match layered.var_with_source(ROUTES_VARIABLE)? {
            Some((text, source)) => {
                Some(
                    parse_routes(&text).map_err(|reason| ConfigError::InvalidVariable {
                        variable: ROUTES_VARIABLE.to_owned(),
                        source_name: source.to_owned(),
                        reason,
                    })?,
                )
            }
            None => None,
        };
        let registry_credentials = read_registry_credentials(&layered)?;

        let allow_local_addresses =
            match layered.var_with_source("BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES")? {
                None => !on_cloud_foundry,
                Some((value, source)) => match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ConfigError::InvalidVariable {
                            variable: "BTP_GATEWAY_ALLOW_LOCAL_ADDRESSES".to_owned(),
                            source_name: source.to_owned(),
                            reason: "must be true or false".to_owned(),
                        });
                    }
                },
            };

        Ok(Config {
            listen,
            on_cloud_foundry,
            destination_service,
            xsuaa,
            connectivity,
            local_destinations,
            policies,
            route_scopes,
            admin_token,
            routes,
            registry_credentials,
            allow_local_addresses,
            sources,
        })
    }
}

/// Reads `BTP_GATEWAY_ROUTE_SCOPES`, which needs an xsuaa binding for its
/// `$XSAPPNAME` and because only XSUAA tokens carry scopes.
fn read_route_scopes(
    env: &LayeredEnv<'_>,
    xsuaa: Option<&XsuaaCredentials>,
) -> Result<RouteScopes, ConfigError> {
    let Some((text, source)) = env.var_with_source(ROUTE_SCOPES_VARIABLE)? else {
        return Ok(RouteScopes::default());
    };
    let invalid = |reason: String| ConfigError::InvalidVariable {
        variable: ROUTE_SCOPES_VARIABLE.to_owned(),
        source_name: source.to_owned(),
        reason,
    };
    let Some(xsuaa) = xsuaa else {
        return Err(invalid(
            "needs an xsuaa binding, because only XSUAA tokens carry scopes: bind an xsuaa \
             instance or remove the variable"
                .to_owned(),
        ));
    };
    RouteScopes::parse(&text, &xsuaa.xsappname).map_err(|error| invalid(error.to_string()))
}

/// Reads `BTP_GATEWAY_ADMIN_TOKEN`, which must be long enough not to be
/// guessed.
fn read_admin_token(env: &LayeredEnv<'_>) -> Result<Option<Secret>, ConfigError> {
    let Some((text, source)) = env.var_with_source(ADMIN_TOKEN_VARIABLE)? else {
        return Ok(None);
    };
    let token = text.trim();
    if token.chars().count() < MIN_ADMIN_TOKEN_CHARS || token.contains(char::is_whitespace) {
        return Err(ConfigError::InvalidVariable {
            variable: ADMIN_TOKEN_VARIABLE.to_owned(),
            source_name: source.to_owned(),
            reason: format!(
                "must be at least {MIN_ADMIN_TOKEN_CHARS} characters without spaces: generate \
                 one, for example with `openssl rand -hex 32`"
            ),
        });
    }
    Ok(Some(Secret::new(token)))
}

/// Reads the registry credentials: both variables or neither.
fn read_registry_credentials(
    env: &LayeredEnv<'_>,
) -> Result<Option<RegistryCredentials>, ConfigError> {
    const USERNAME: &str = "BTP_GATEWAY_REGISTRY_USERNAME";
    const PASSWORD: &str = "BTP_GATEWAY_REGISTRY_PASSWORD";
    match (
        env.var_with_source(USERNAME)?,
        env.var_with_source(PASSWORD)?,
    ) {
        (None, None) => Ok(None),
        (Some((username, _)), Some((password, _))) => Ok(Some(RegistryCredentials {
            username: username.trim().to_owned(),
            password: Secret::new(password.trim()),
        })),
        (Some((_, source)), None) | (None, Some((_, source))) => {
            Err(ConfigError::InvalidVariable {
                variable: format!("{USERNAME} and {PASSWORD}"),
                source_name: source.to_owned(),
                reason: "must be set together: set both, or neither for anonymous pulls".to_owned(),
            })
        }
    }
}

/// Listens on `0.0.0.0:$PORT` on Cloud Foundry, where the router reaches the
/// container from outside, and on loopback otherwise, so a local run is not
/// reachable from the network.
fn listen_address(env: &LayeredEnv<'_>, on_cloud_foundry: bool) -> Result<SocketAddr, ConfigError> {
    let port = match env.var_with_source("PORT")? {
        Some((text, source)) => {
            text.trim()
                .parse::<u16>()
                .map_err(|_| ConfigError::InvalidVariable {
                    variable: "PORT".to_owned(),
                    source_name: source.to_owned(),
                    reason: "is not a port number between 0 and 65535".to_owned(),
                })?
        }
        None => DEFAULT_LOCAL_PORT,
    };
    let ip = if on_cloud_foundry {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    Ok(SocketAddr::new(ip, port))
}

fn read_vcap_services(env: &LayeredEnv<'_>) -> Result<VcapServices, ConfigError> {
    if let Some((text, source)) = env.var_with_source("VCAP_SERVICES")? {
        return VcapServices::parse(&text, source);
    }
    if let Some((path, _)) = env.var_with_source("VCAP_SERVICES_FILE_PATH")? {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::UnreadableFile {
            path: path.clone(),
            reason: format!("{error} (named by VCAP_SERVICES_FILE_PATH)"),
        })?;
        return VcapServices::parse(&text, &path.display().to_string());
    }
    Ok(VcapServices::default())
}

/// Builds Destination service credentials from the service-key variables,
/// when all of them are set. Some but not all is an error.
fn service_key_from_vars(
    env: &LayeredEnv<'_>,
) -> Result<Option<DestinationServiceCredentials>, ConfigError> {
    let values: Vec<Option<(String, &str)>> = DOTENV_BINDING_VARS
        .iter()
        .map(|name| env.var_with_source(name))
        .collect::<Result<_, _>>()?;
    let set: Vec<String> = DOTENV_BINDING_VARS
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| (*name).to_owned())
        .collect();
    if set.is_empty() {
        return Ok(None);
    }

    let source_name = values
        .iter()
        .flatten()
        .map(|(_, source)| *source)
        .next()
        .unwrap_or("the environment")
        .to_owned();
    let [
        Some(client_id),
        Some(client_secret),
        Some(token_url),
        Some(service_uri),
    ] = <[Option<(String, &str)>; 4]>::try_from(values).unwrap_or_default()
    else {
        let missing = DOTENV_BINDING_VARS
            .iter()
            .filter(|name| !set.iter().any(|s| s == *name))
            .map(|name| (*name).to_owned())
            .collect();
        return Err(ConfigError::IncompleteServiceKey {
            source_name,
            set,
            missing,
        });
    };

    let parse_url = |(text, source): (String, &str), variable: &str| {
        Url::parse(text.trim()).map_err(|_| ConfigError::InvalidVariable {
            variable: variable.to_owned(),
            source_name: source.to_owned(),
            reason: "is not a valid URL (expected https://...)".to_owned(),
        })
    };
    let mut service_uri = parse_url(service_uri, "DESTINATION_SERVICE_URI")?;
    if !service_uri.path().ends_with('/') {
        let path = format!("{}/", service_uri.path());
        service_uri.set_path(&path);
    }

    Ok(Some(DestinationServiceCredentials {
        binding_name: format!("service key in {source_name}"),
        client: OAuthClient {
            client_id: client_id.0,
            authentication: ClientAuthentication::Secret(Secret::new(client_secret.0)),
            token_url: parse_url(token_url, "TOKEN_URL")?,
            uaadomain: None,
        },
        service_uri,
    }))
}

/// Reads a file that may be absent.
fn read_optional(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ConfigError::UnreadableFile {
            path: path.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// Describes a JSON error by kind and position, without the input text that
/// serde_json quotes in some messages (a value may be a secret).
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "it could not be read",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected structure",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    format!("{kind} at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests;
