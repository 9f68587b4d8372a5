//! A throwaway X.509 PKI for tests: a CA, server certificates for 127.0.0.1,
//! client certificates, and the PEM and PKCS#12 files that bindings and
//! destinations refer to.
//!
//! Every key is an ECDSA P-256 key generated when the certificate is made,
//! so tests create all their keys themselves and no key is stored in the
//! repository. Certificates are valid from 1975 to 4096 (the `rcgen`
//! defaults), which keeps tests independent of the clock. PKCS#12 files are
//! encrypted with PBES2 (PBKDF2 with HMAC-SHA-256 and AES-256-CBC) and
//! protected by an HMAC-SHA-256 MAC, which Java, OpenSSL 3 and Node.js read.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use p12_keystore::{KeyStore, KeyStoreEntry, PrivateKeyChain};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Failure to create or write test certificates.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Key generation or certificate signing failed.
    #[error("failed to create the test certificate {common_name:?}: {error}")]
    Certificate {
        /// Common name of the certificate.
        common_name: String,
        /// The `rcgen` error.
        error: rcgen::Error,
    },
    /// Building the PKCS#12 file failed.
    #[error("failed to build the PKCS#12 file for {common_name:?}: {message}")]
    Pkcs12 {
        /// Common name of the certificate.
        common_name: String,
        /// The `p12-keystore` error message.
        message: String,
    },
    /// Writing a file failed.
    #[error("failed to write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// A self-signed certificate authority that issues test certificates.
pub struct TestCa {
    common_name: String,
    certificate_pem: String,
    certificate_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TestCa")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

/// The files [`IssuedCertificate::write_pem_files`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFiles {
    /// The certificate followed by the CA certificate.
    pub certificate: PathBuf,
    /// The private key, PKCS#8.
    pub private_key: PathBuf,
}

/// A certificate issued by a [`TestCa`], with its private key.
#[derive(Clone)]
pub struct IssuedCertificate {
    common_name: String,
    certificate_pem: String,
    certificate_der: Vec<u8>,
    private_key_pem: String,
    private_key_der: Vec<u8>,
    ca_certificate_pem: String,
    ca_certificate_der: Vec<u8>,
}

impl fmt::Debug for IssuedCertificate {
    /// Shows the common name only, never the private key.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IssuedCertificate")
            .field("common_name", &self.common_name)
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// Creates a CA with a new key and the given common name.
    pub fn new(common_name: &str) -> Result<Self, PkiError> {
        let error = |error| PkiError::Certificate {
            common_name: common_name.to_owned(),
            error,
        };
        let key = KeyPair::generate().map_err(error)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "btp-gateway tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params.self_signed(&key).map_err(error)?;
        Ok(Self {
            common_name: common_name.to_owned(),
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Returns the CA certificate as PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Returns the CA certificate as DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Issues a TLS server certificate for the IP address 127.0.0.1 (and
    /// the DNS name `localhost`), with `common_name` as subject.
    pub fn server_certificate(&self, common_name: &str) -> Result<IssuedCertificate, PkiError> {
        let subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName(
                "localhost"
                    .try_into()
                    .map_err(|error| self.error(common_name, error))?,
            ),
        ];
        self.issue(
            common_name,
            subject_alt_names,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// Issues a TLS client certificate with `common_name` as subject, as
    /// XSUAA issues them for X.509 bindings.
    pub fn client_certificate(&self, common_name: &str) -> Result<IssuedCertificate, PkiError> {
        self.issue(common_name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        common_name: &str,
        subject_alt_names: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<IssuedCertificate, PkiError> {
        let key = KeyPair::generate().map_err(|error| self.error(common_name, error))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|error| self.error(common_name, error))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "btp-gateway tests");
        params.subject_alt_names = subject_alt_names;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|error| self.error(common_name, error))?;

        Ok(IssuedCertificate {
            common_name: common_name.to_owned(),
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().to_vec(),
            private_key_pem: key.serialize_pem(),
            private_key_der: key.serialize_der(),
            ca_certificate_pem: self.certificate_pem.clone(),
            ca_certificate_der: self.certificate_der.clone(),
        })
    }

    fn error(&self, common_name: &str, error: rcgen::Error) -> PkiError {
        PkiError::Certificate {
            common_name: common_name.to_owned(),
            error,
        }
    }
}

impl IssuedCertificate {
    /// Returns the certificate as PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Returns the certificate as DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// Returns the private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key_pem
    }

    /// Returns the certificate followed by the CA certificate, as PEM: the
    /// chain a server or client presents.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.certificate_pem, self.ca_certificate_pem)
    }

    /// Builds a PKCS#12 key store with the private key and the chain
    /// (certificate, then CA certificate) under `alias`.
    pub fn to_pkcs12(&self, alias: &str, password: &str) -> Result<Vec<u8>, PkiError> {
        let pkcs12_error = |message: String| PkiError::Pkcs12 {
            common_name: self.common_name.clone(),
            message,
        };
        let key = p12_keystore::PrivateKey::from_der(&self.private_key_der)
            .map_err(|error| pkcs12_error(error.to_string()))?;
        let chain = [&self.certificate_der, &self.ca_certificate_der]
            .into_iter()
            .map(|der| p12_keystore::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| pkcs12_error(error.to_string()))?;
        let key_chain = PrivateKeyChain::new(alias, key, chain);

        let mut key_store = KeyStore::new();
        key_store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(key_chain));
        key_store
            .writer(password)
            .write()
            .map_err(|error| pkcs12_error(error.to_string()))
    }

    /// Writes `<file_stem>.crt` (certificate and CA certificate) and
    /// `<file_stem>.key` (private key) into `directory`.
    pub fn write_pem_files(&self, directory: &Path, file_stem: &str) -> Result<PemFiles, PkiError> {
        let files = PemFiles {
            certificate: directory.join(format!("{file_stem}.crt")),
            private_key: directory.join(format!("{file_stem}.key")),
        };
        write_file(&files.certificate, self.chain_pem().as_bytes())?;
        write_file(&files.private_key, self.private_key_pem.as_bytes())?;
        Ok(files)
    }

    /// Writes the PKCS#12 key store of [`IssuedCertificate::to_pkcs12`] to `path`.
    pub fn write_pkcs12(&self, path: &Path, alias: &str, password: &str) -> Result<(), PkiError> {
        let bytes = self.to_pkcs12(alias, password)?;
        write_file(path, &bytes)
    }
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), PkiError> {
    std::fs::write(path, content).map_err(|error| PkiError::Write {
        path: path.to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs12_round_trips_key_and_chain() -> Result<(), Box<dyn std::error::Error>> {
        let ca = TestCa::new("Test CA")?;
        let client = ca.client_certificate("client-a")?;

        let bytes = client.to_pkcs12("client-a", "changeit")?;
        let key_store = p12_keystore::KeyStore::from_pkcs12(
            &bytes,
            "changeit",
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )?;

        let Some((alias, chain)) = key_store.private_key_chain() else {
            return Err("the key store has no private key chain".into());
        };
        assert_eq!(alias, "client-a");
        assert_eq!(chain.certs()[0].as_der(), client.certificate_der());
        assert_eq!(chain.certs()[1].as_der(), ca.certificate_der());
        assert!(
            p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                "wrong",
                p12_keystore::Pkcs12ImportPolicy::Relaxed
            )
            .is_err()
        );
        Ok(())
    }
}
