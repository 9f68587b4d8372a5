//! Typed credentials of the bindings the host uses: the Destination service,
//! XSUAA and the Connectivity service.
//!
//! Each binding authenticates to XSUAA as an OAuth client, either with a
//! client secret (`credential-type` `binding-secret` or `instance-secret`,
//! the default) or with an X.509 certificate (`x509`), where token requests
//! go to `certurl` over mutual TLS with only the `client_id` in the body.
//! `x509_attested` credentials need a platform attestation this host cannot
//! produce, so they are rejected with a clear message.

use url::Url;

use super::ConfigError;
use super::vcap::ServiceBinding;
use crate::secret::Secret;

/// The proof of identity an OAuth client presents to the token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientAuthentication {
    /// `client_secret` in the token request.
    Secret(Secret),
    /// A client certificate presented in the TLS handshake.
    Certificate {
        /// The certificate chain, PEM.
        certificate_pem: String,
        /// The private key, PEM.
        key_pem: Secret,
    },
}

/// An OAuth client of XSUAA.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthClient {
    pub client_id: String,
    pub authentication: ClientAuthentication,
    /// The provider tenant's token endpoint (`{url}/oauth/token`, or
    /// `{certurl}/oauth/token` for X.509).
    pub token_url: Url,
    /// The XSUAA domain (`uaadomain`), used to address a subscriber
    /// tenant's token endpoint by its subdomain.
    pub uaadomain: Option<String>,
}

/// The credentials of a binding to the Destination service.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationServiceCredentials {
    /// The binding's name, for messages.
    pub binding_name: String,
    pub client: OAuthClient,
    /// The Destination service's REST API root (`uri`).
    pub service_uri: Url,
}

/// The data of a binding to XSUAA that validates callers' tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct XsuaaCredentials {
    pub binding_name: String,
    pub client_id: String,
    /// The application name that prefixes scopes and appears in audiences.
    pub xsappname: String,
    /// The provider tenant's XSUAA URL (`url`).
    pub url: Url,
    pub uaadomain: Option<String>,
    /// The provider's identity zone id (`tenantid` or `identityzoneid`).
    pub tenant_id: Option<String>,
    /// The public key PEM for offline validation (`verificationkey`).
    pub verification_key: Option<String>,
}

/// The credentials of a binding to the Connectivity service.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectivityCredentials {
    pub binding_name: String,
    pub client: OAuthClient,
    /// The on-premise HTTP proxy's host and port.
    pub proxy_host: String,
    pub proxy_port: u16,
}

impl ServiceBinding {
    pub(super) fn destination_credentials(
        &self,
    ) -> Result<DestinationServiceCredentials, ConfigError> {
        Ok(DestinationServiceCredentials {
            binding_name: self.name.clone(),
            client: self.oauth_client()?,
            service_uri: self.url("uri")?,
        })
    }

    pub(super) fn xsuaa_credentials(&self) -> Result<XsuaaCredentials, ConfigError> {
        Ok(XsuaaCredentials {
            binding_name: self.name.clone(),
            client_id: self.required("clientid")?.to_owned(),
            xsappname: self.required("xsappname")?.to_owned(),
            url: self.url("url")?,
            uaadomain: self.credential("uaadomain").map(str::to_owned),
            tenant_id: self
                .credential("tenantid")
                .or_else(|| self.credential("identityzoneid"))
                .map(str::to_owned),
            verification_key: self.credential("verificationkey").map(str::to_owned),
        })
    }

    pub(super) fn connectivity_credentials(&self) -> Result<ConnectivityCredentials, ConfigError> {
        let proxy_host = self.required("onpremise_proxy_host")?.to_owned();
        // Newer bindings name the HTTP proxy port `onpremise_proxy_http_port`;
        // older ones only have `onpremise_proxy_port`.
        let port_field = if self.credential_text("onpremise_proxy_http_port").is_some() {
            "onpremise_proxy_http_port"
        } else {
            "onpremise_proxy_port"
        };
        let proxy_port = self
            .credential_text(port_field)
            .ok_or_else(|| self.missing("onpremise_proxy_http_port"))?
            .parse::<u16>()
            .map_err(|_| self.invalid(port_field, "is not a port number"))?;

        Ok(ConnectivityCredentials {
            binding_name: self.name.clone(),
            client: self.oauth_client()?,
            proxy_host,
            proxy_port,
        })
    }

    /// Reads the OAuth client of the binding, by its credential type.
    fn oauth_client(&self) -> Result<OAuthClient, ConfigError> {
        let client_id = self.required("clientid")?.to_owned();
        let uaadomain = self.credential("uaadomain").map(str::to_owned);

        let credential_type = self
            .credential("credential-type")
            .unwrap_or("binding-secret");
        let (authentication, base_field) = match credential_type {
            "binding-secret" | "instance-secret" => (
                ClientAuthentication::Secret(Secret::new(self.required("clientsecret")?)),
                "url",
            ),
            "x509" => (
                ClientAuthentication::Certificate {
                    certificate_pem: self.required("certificate")?.to_owned(),
                    key_pem: Secret::new(self.required("key")?),
                },
                "certurl",
            ),
            "x509_attested" => {
                return Err(self.unsupported(
                    "credential-type 'x509_attested' is not supported: bind the service with \
                     credential-type 'x509' or 'binding-secret'",
                ));
            }
            other => {
                return Err(self.unsupported(&format!(
                    "credential-type '{other}' is not supported: use 'binding-secret' or 'x509'"
                )));
            }
        };

        let token_url = self
            .url(base_field)?
            .join("oauth/token")
            .map_err(|_| self.invalid(base_field, "cannot be joined with oauth/token"))?;
        Ok(OAuthClient {
            client_id,
            authentication,
            token_url,
            uaadomain,
        })
    }

    fn credential(&self, field: &str) -> Option<&str> {
        self.credentials
            .get(field)
            .and_then(serde_json::Value::as_str)
    }

    /// Reads a credential that may be a string or a number (ports).
    fn credential_text(&self, field: &str) -> Option<String> {
        match self.credentials.get(field)? {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    fn required(&self, field: &str) -> Result<&str, ConfigError> {
        self.credential(field)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| self.missing(field))
    }

    /// Reads a URL credential, with a trailing `/` so relative joins append.
    fn url(&self, field: &str) -> Result<Url, ConfigError> {
        let text = self.required(field)?;
        let with_slash = if text.ends_with('/') {
            text.to_owned()
        } else {
            format!("{text}/")
        };
        let url = Url::parse(&with_slash).map_err(|_| self.invalid(field, "is not a valid URL"))?;
        if url.scheme() != "https" && url.scheme() != "http" {
            return Err(self.invalid(field, "must be an http or https URL"));
        }
        Ok(url)
    }

    fn missing(&self, field: &str) -> ConfigError {
        ConfigError::InvalidBinding {
            binding: self.name.clone(),
            reason: format!(
                "its credentials have no '{field}': recreate the binding or the service key"
            ),
        }
    }

    fn invalid(&self, field: &str, problem: &str) -> ConfigError {
        ConfigError::InvalidBinding {
            binding: self.name.clone(),
            reason: format!("its credential '{field}' {problem}"),
        }
    }

    fn unsupported(&self, reason: &str) -> ConfigError {
        ConfigError::InvalidBinding {
            binding: self.name.clone(),
            reason: reason.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VcapServices;

    fn vcap(value: serde_json::Value) -> VcapServices {
        VcapServices::parse(&value.to_string(), "test").unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn x509_binding_uses_certurl() {
        let vcap = vcap(serde_json::json!({ "destination": [{
            "label": "destination", "name": "dest",
            "credentials": {
                "credential-type": "x509", "clientid": "c", "certificate": "-----BEGIN CERTIFICATE-----",
                "key": "-----BEGIN PRIVATE KEY-----", "certurl": "https://sub.authentication.cert.example",
                "url": "https://sub.authentication.example", "uri": "https://destination.example"
            }
        }]}));
        let credentials = vcap
            .destination_service(None)
            .unwrap_or_else(|error| panic!("{error}"));
        let client = credentials
            .map(|c| c.client)
            .unwrap_or_else(|| panic!("no binding"));
        assert_eq!(
            client.token_url.as_str(),
            "https://sub.authentication.cert.example/oauth/token"
        );
        assert!(matches!(
            client.authentication,
            ClientAuthentication::Certificate { .. }
        ));
    }

    #[test]
    fn x509_attested_is_rejected_clearly() {
        let vcap = vcap(serde_json::json!({ "destination": [{
            "label": "destination", "name": "dest",
            "credentials": { "credential-type": "x509_attested", "clientid": "c", "uri": "https://d.example" }
        }]}));
        let error = vcap
            .destination_service(None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("'x509_attested' is not supported"),
            "{error}"
        );
    }

    #[test]
    fn connectivity_port_fallback() {
        let binding = |port_field: &str| {
            vcap(serde_json::json!({ "connectivity": [{
                "label": "connectivity", "name": "conn",
                "credentials": {
                    "clientid": "c", "clientsecret": "s", "url": "https://x.example",
                    "onpremise_proxy_host": "connectivityproxy.internal", port_field: "20003"
                }
            }]}))
        };
        for field in ["onpremise_proxy_http_port", "onpremise_proxy_port"] {
            let credentials = binding(field)
                .connectivity(None)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(credentials.map(|c| c.proxy_port), Some(20003), "{field}");
        }
    }

    #[test]
    fn xsuaa_reads_application_data() {
        let vcap = vcap(serde_json::json!({ "xsuaa": [{
            "label": "xsuaa", "name": "uaa", "plan": "application",
            "credentials": {
                "clientid": "sb-app!t1", "clientsecret": "s", "xsappname": "app!t1",
                "url": "https://provider.authentication.example", "uaadomain": "authentication.example",
                "tenantid": "zone-1", "verificationkey": "-----BEGIN PUBLIC KEY-----"
            }
        }]}));
        let xsuaa = vcap
            .xsuaa(None)
            .unwrap_or_else(|error| panic!("{error}"))
            .unwrap_or_else(|| panic!("none"));
        assert_eq!(xsuaa.xsappname, "app!t1");
        assert_eq!(xsuaa.tenant_id.as_deref(), Some("zone-1"));
        assert_eq!(xsuaa.uaadomain.as_deref(), Some("authentication.example"));
    }

    #[test]
    fn binding_chosen_by_name() {
        let entry = |name: &str| {
            serde_json::json!({
                "label": "destination", "name": name,
                "credentials": { "clientid": name, "clientsecret": "s", "url": "https://x.example", "uri": "https://d.example" }
            })
        };
        let vcap = vcap(serde_json::json!({ "destination": [entry("a"), entry("b")] }));
        assert!(vcap.destination_service(None).is_err());
        let chosen = vcap
            .destination_service(Some("b"))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(chosen.map(|c| c.client.client_id).as_deref(), Some("b"));
        let error = vcap
            .destination_service(Some("c"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("'c'"), "{error}");
    }
}
