//! Client certificates of `ClientCertificateAuthentication` destinations,
//! and the TLS clients for them and for `TrustAll` destinations.
//!
//! The Destination service returns the key store that `KeyStoreLocation`
//! names in the find-destination response's `certificates`, base64 encoded.
//! Locations ending in `.p12` or `.pfx` are PKCS#12, opened with
//! `KeyStorePassword`. Anything else is read as PEM with the certificate
//! chain and the private key in one file.

use base64::Engine as _;
use serde::Deserialize;

use super::{AuthenticationType, DestinationConfig};
use crate::outbound::HttpClient;
use crate::outbound::tls::{ClientIdentity, client_config};
use crate::secret::Secret;

/// One entry of the find-destination response's `certificates`.
#[derive(Deserialize)]
pub(super) struct Certificate {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Content")]
    content: Secret,
}

/// Builds the destination's own TLS client when it presents a client
/// certificate or trusts every server.
pub(super) fn tls_client(
    base: &HttpClient,
    config: &DestinationConfig,
    certificates: &[Certificate],
) -> Result<Option<HttpClient>, String> {
    let identity = if config.authentication == AuthenticationType::ClientCertificateAuthentication {
        let location = config
            .key_store_location
            .as_deref()
            .ok_or("ClientCertificateAuthentication needs the property KeyStoreLocation")?;
        let certificate = certificates
            .iter()
            .find(|certificate| certificate.name == location)
            .ok_or_else(|| {
                format!("the Destination service returned no certificate named '{location}'")
            })?;
        let password = config
            .key_store_password
            .as_ref()
            .map_or("", Secret::expose);
        Some(read_key_store(
            location,
            certificate.content.expose(),
            password,
        )?)
    } else {
        None
    };

    if identity.is_none() && !config.trust_all {
        return Ok(None);
    }
    let tls = client_config(identity, config.trust_all).map_err(|error| format!("{error:#}"))?;
    base.with_tls(tls)
        .map(Some)
        .map_err(|error| format!("{error:#}"))
}

/// Reads a key store from the service's base64 `Content`: PKCS#12 for
/// `.p12` and `.pfx`, else PEM with the certificate chain and the key.
fn read_key_store(location: &str, content: &str, password: &str) -> Result<ClientIdentity, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content.trim())
        .map_err(|_| format!("the certificate '{location}' is not valid base64"))?;
    let lowercase = location.to_ascii_lowercase();
    let identity = if lowercase.ends_with(".p12") || lowercase.ends_with(".pfx") {
        ClientIdentity::from_pkcs12(&bytes, password)
    } else {
        ClientIdentity::from_pem(&bytes, &bytes)
    };
    identity.map_err(|error| format!("the key store '{location}' cannot be used: {error:#}"))
}
