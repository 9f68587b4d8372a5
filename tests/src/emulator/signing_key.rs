//! The emulator's RSA token-signing key: RS256 signatures on JWTs, their
//! verification, and the public key in the shapes XSUAA publishes it
//! (`GET /token_keys` and the binding's `verificationkey`).
//!
//! Each emulator generates its own 2048-bit key at start, so a token signed by
//! one emulator does not verify at another. Key rotation and several active
//! keys are not emulated.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::sha2::{Digest as _, Sha256};
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};

/// Modulus size of the generated key, the size XSUAA uses.
const KEY_BITS: usize = 2048;

/// Failure to generate or encode the signing key.
#[derive(Debug, thiserror::Error)]
#[error("failed to create the token signing key: {0}")]
pub struct SigningKeyError(String);

impl SigningKeyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Reason why a JWT was not accepted as signed by this key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("the token is not a JWT of three base64url parts with JSON header and claims")]
    Malformed,
    #[error("the token header has alg {0:?}, but only RS256 is accepted")]
    UnsupportedAlgorithm(String),
    #[error("the token was signed with key id {0:?}, which is not this emulator's key")]
    UnknownKey(String),
    #[error("the token signature does not verify with this emulator's key")]
    InvalidSignature,
}

/// RSA key pair that signs and verifies the emulator's tokens.
#[derive(Debug)]
pub(crate) struct TokenSigner {
    key_id: String,
    signing_key: SigningKey<Sha256>,
    verifying_key: VerifyingKey<Sha256>,
    public_key_pem: String,
    modulus: String,
    exponent: String,
}

impl TokenSigner {
    /// Generates a new 2048-bit key. This takes between 0.1 and 1 second with
    /// an optimised `rsa` crate and several seconds without, so callers in
    /// async code run it on a blocking thread.
    pub(crate) fn generate() -> Result<Self, SigningKeyError> {
        let mut rng = rsa::rand_core::OsRng;
        let private_key = RsaPrivateKey::new(&mut rng, KEY_BITS)
            .map_err(|error| SigningKeyError(error.to_string()))?;
        let public_key = RsaPublicKey::from(&private_key);
        let public_key_pem = public_key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| SigningKeyError(error.to_string()))?;

        let modulus_bytes = public_key.n().to_bytes_be();
        // The key id is derived from the modulus, so it names this key and no
        // other, like the "default-jwt-key-..." ids of XSUAA.
        let fingerprint = Sha256::digest(&modulus_bytes);
        let key_id = format!(
            "btp-emulator-{}",
            fingerprint[..6]
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );

        Ok(Self {
            key_id,
            verifying_key: VerifyingKey::new(public_key.clone()),
            signing_key: SigningKey::new(private_key),
            public_key_pem: public_key_pem.trim_end().to_owned(),
            modulus: URL_SAFE_NO_PAD.encode(modulus_bytes),
            exponent: URL_SAFE_NO_PAD.encode(public_key.e().to_bytes_be()),
        })
    }

    /// Returns the `kid` written into every token header.
    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Returns the public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo)
    /// block without a trailing newline.
    pub(crate) fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Returns the JSON Web Key Set that `GET /token_keys` serves.
    pub(crate) fn token_keys(&self) -> Value {
        json!({
            "keys": [{
                "kty": "RSA",
                "alg": "RS256",
                "use": "sig",
                "kid": self.key_id,
                "n": self.modulus,
                "e": self.exponent,
                "value": self.public_key_pem,
            }]
        })
    }

    /// Signs `claims` as a compact JWS with RS256. `jku` is the URL of the
    /// key set, as XSUAA writes it into its token headers.
    pub(crate) fn sign_jwt(&self, jku: &str, claims: &Value) -> String {
        let header = json!({
            "alg": "RS256",
            "typ": "JWT",
            "kid": self.key_id,
            "jku": jku,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
        );
        let signature = self.signing_key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        )
    }

    /// Verifies the RS256 signature of a compact JWS and returns its claims.
    /// Expiry and other claims are the caller's business.
    pub(crate) fn verify_jwt(&self, token: &str) -> Result<Value, JwtError> {
        let mut parts = token.trim().split('.');
        let (Some(header_part), Some(claims_part), Some(signature_part), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header = decode_json_part(header_part)?;
        let algorithm = header["alg"].as_str().unwrap_or_default();
        if algorithm != "RS256" {
            return Err(JwtError::UnsupportedAlgorithm(algorithm.to_owned()));
        }
        let key_id = header["kid"].as_str().unwrap_or_default();
        if key_id != self.key_id {
            return Err(JwtError::UnknownKey(key_id.to_owned()));
        }

        let signature_bytes = URL_SAFE_NO_PAD
            .decode(signature_part)
            .map_err(|_| JwtError::Malformed)?;
        let signature =
            Signature::try_from(signature_bytes.as_slice()).map_err(|_| JwtError::Malformed)?;
        let signing_input = &token.trim()[..header_part.len() + 1 + claims_part.len()];
        self.verifying_key
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::InvalidSignature)?;

        decode_json_part(claims_part)
    }
}

/// Decodes one base64url part of a JWT into a JSON object.
fn decode_json_part(part: &str) -> Result<Value, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(JwtError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_token_verifies_and_tampered_one_does_not() -> Result<(), Box<dyn std::error::Error>> {
        let signer = TokenSigner::generate()?;
        let token = signer.sign_jwt("http://127.0.0.1:1/token_keys", &json!({"sub": "a"}));
        assert_eq!(signer.verify_jwt(&token)?, json!({"sub": "a"}));

        let other_claims = URL_SAFE_NO_PAD.encode(json!({"sub": "b"}).to_string());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{other_claims}.{}", parts[0], parts[2]);
        assert_eq!(
            signer.verify_jwt(&tampered),
            Err(JwtError::InvalidSignature)
        );
        assert_eq!(signer.verify_jwt("a.b"), Err(JwtError::Malformed));
        Ok(())
    }
}
