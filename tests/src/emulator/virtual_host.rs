//! Cloud Connector mappings of the emulated connectivity proxy: a virtual
//! host and port, as destinations name them, mapped per location id to a
//! real backend on 127.0.0.1.
//!
//! The real Cloud Connector maps a virtual host to an internal host in the
//! customer network and restricts paths per mapping. The emulator maps to a
//! loopback URL only and allows every path.

use http::Uri;
use serde::{Deserialize, Serialize};

use super::config::ConfigError;
use super::destination::EMULATOR_URL_PLACEHOLDER;

/// Only host a mapping may point to.
const ALLOWED_TARGET_HOST: &str = "127.0.0.1";

/// One Cloud Connector mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualHostConfig {
    /// Host name that destinations use, for example `s4.onprem`; compared
    /// case-insensitively.
    pub virtual_host: String,
    /// Port that destinations use.
    pub virtual_port: u16,
    /// Cloud Connector location id; empty for the connector without one.
    #[serde(default)]
    pub location_id: String,
    /// Backend base URL, `http://127.0.0.1:PORT`, optionally with a trailing
    /// slash. `${EMULATOR_URL}` is replaced like in destinations.
    pub target: String,
}

impl VirtualHostConfig {
    /// Creates a mapping for the connector without location id.
    pub fn new(
        virtual_host: impl Into<String>,
        virtual_port: u16,
        target: impl Into<String>,
    ) -> Self {
        Self {
            virtual_host: virtual_host.into(),
            virtual_port,
            location_id: String::new(),
            target: target.into(),
        }
    }

    /// Sets the Cloud Connector location id.
    pub fn with_location_id(mut self, location_id: impl Into<String>) -> Self {
        self.location_id = location_id.into();
        self
    }

    /// Returns the key that must be unique among mappings.
    pub(crate) fn key(&self) -> (String, u16, String) {
        (
            self.virtual_host.to_ascii_lowercase(),
            self.virtual_port,
            self.location_id.clone(),
        )
    }

    /// Returns whether the mapping serves `host:port` at `location_id`.
    pub(crate) fn matches(&self, host: &str, port: u16, location_id: &str) -> bool {
        self.virtual_host.eq_ignore_ascii_case(host)
            && self.virtual_port == port
            && self.location_id == location_id
    }

    /// Returns the target's authority, for example `127.0.0.1:4004`. Call
    /// only after [`VirtualHostConfig::validate`].
    pub(crate) fn target_authority(&self) -> String {
        self.target
            .parse::<Uri>()
            .ok()
            .and_then(|uri| {
                uri.authority()
                    .map(|authority| authority.as_str().to_owned())
            })
            .unwrap_or_default()
    }

    /// Checks that the virtual host is set and the target is a plain HTTP
    /// URL on 127.0.0.1 with a port and no path, query or user info. Host
    /// names, even `localhost`, are rejected so that no name is resolved.
    pub(crate) fn validate(&self, index: usize) -> Result<(), ConfigError> {
        if self.virtual_host.is_empty() {
            return Err(ConfigError::EmptyField {
                field: format!("virtual_hosts[{index}].virtual_host"),
            });
        }
        let invalid = |reason: &str| ConfigError::InvalidField {
            field: format!("virtual_hosts[{index}].target"),
            reason: format!("{:?} {reason}; use http://127.0.0.1:PORT", self.target),
        };
        let uri: Uri = self
            .target
            .parse()
            .map_err(|_| invalid("is not a valid URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("does not start with http://"));
        }
        let Some(authority) = uri.authority() else {
            return Err(invalid("has no host"));
        };
        if authority.host() != ALLOWED_TARGET_HOST || authority.as_str().contains('@') {
            return Err(invalid("is not on 127.0.0.1"));
        }
        if authority.port_u16().is_none() {
            return Err(invalid("has no port"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("has a path or query"));
        }
        Ok(())
    }

    /// Returns a copy with `${EMULATOR_URL}` replaced in `target`.
    pub(crate) fn with_emulator_url(&self, emulator_url: &str) -> Self {
        Self {
            target: self.target.replace(EMULATOR_URL_PLACEHOLDER, emulator_url),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // These checks only parse strings, so no request leaves the process.
    #[test]
    fn target_must_be_loopback_http_with_port() {
        let valid = ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"];
        for target in valid {
            assert!(
                VirtualHostConfig::new("s4", 443, target)
                    .validate(0)
                    .is_ok(),
                "{target} should be accepted"
            );
        }
        let invalid = [
            "https://127.0.0.1:8443",
            "http://localhost:8080",
            "http://127.0.0.2:8080",
            "http://10.0.0.1:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/sap",
            "http://user@127.0.0.1:8080",
            "not a url",
        ];
        for target in invalid {
            assert!(
                VirtualHostConfig::new("s4", 443, target)
                    .validate(0)
                    .is_err(),
                "{target} should be rejected"
            );
        }
    }
}
