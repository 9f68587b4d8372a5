//! The registry client: resolving a reference to a manifest digest and
//! pulling the component it points at.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use url::Url;

use super::auth::{AuthError, Authenticator, RegistryCredentials};
use super::error::OciError;
use super::manifest::{
    Descriptor, Document, LayerError, MANIFEST_ACCEPT, component_layer, parse_document,
    select_index_entry,
};
use super::reference::Reference;
use super::registry_error::{registry_errors, repository_unknown, status_error};
use super::transport::{
    Exchange, MAX_REDIRECTS, REQUEST_TIMEOUT, Reply, Transport, TransportError,
};
use crate::components::digest::Digest;

/// The largest manifest read. Registries commonly reject larger manifests,
/// and the OCI distribution specification suggests this limit.
const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// Tags named in the error for a missing tag.
const LISTED_TAGS: usize = 20;

/// A client for pulling components from OCI registries, with one set of
/// credentials. Clones share the connection pool and the token cache.
#[derive(Clone)]
pub struct RegistryClient {
    transport: Transport,
    auth: Arc<Authenticator>,
}

/// A pulled component.
#[derive(Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The digest of the manifest the reference points at: for an image
    /// index, the index's digest, as [`RegistryClient::resolve`] returns.
    pub manifest_digest: Digest,
    /// The component's bytes; their digest is the layer digest, checked.
    pub component: Vec<u8>,
}

/// The expected kind of a response body, which sets its size limit and the
/// error when the body exceeds it.
#[derive(Clone, Copy)]
enum Body {
    /// The response to a HEAD request.
    Empty,
    Manifest,
    /// A blob whose descriptor declares `size` bytes.
    Blob {
        size: u64,
    },
}

impl Body {
    fn limit(self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Manifest => MANIFEST_LIMIT,
            Body::Blob { size } => size,
        }
    }
}

/// The result of listing a repository's tags.
enum TagList {
    RepositoryUnknown,
    Tags(Vec<String>),
}

/// A manifest document with the digest of its bytes.
struct FetchedManifest {
    digest: Digest,
    bytes: Bytes,
    content_type: Option<String>,
}

impl RegistryClient {
    /// Creates a client. Without credentials it pulls anonymously, which
    /// public repositories allow.
    pub fn new(credentials: Option<RegistryCredentials>) -> anyhow::Result<Self> {
        Ok(Self {
            transport: Transport::new()?,
            auth: Arc::new(Authenticator::new(credentials)),
        })
    }

    /// Returns the digest of the manifest the reference points at now: the
    /// registry's `Docker-Content-Digest` for a HEAD request. When the
    /// header is missing or the HEAD returns an error status, it is the
    /// digest of the manifest bytes from a GET.
    pub async fn resolve(&self, reference: &Reference) -> Result<Digest, OciError> {
        let url = manifest_url(reference, &reference.manifest_name())?;
        let head = self
            .send(
                reference,
                Method::HEAD,
                url,
                Some(MANIFEST_ACCEPT),
                Body::Empty,
            )
            .await?;
        if head.status.is_success()
            && let Some(digest) = content_digest(&head.headers)
        {
            check_digest(reference, "manifest", reference.digest(), digest)?;
            return Ok(digest);
        }
        let manifest = self
            .fetch_manifest(reference, &reference.manifest_name(), reference.digest())
            .await?;
        Ok(manifest.digest)
    }

    /// Downloads the manifest and the component layer, with every digest
    /// checked. An image index is followed to its WebAssembly entry. A
    /// layer larger than `max_bytes` is rejected before it is downloaded,
    /// and the download stops at the layer's declared size.
    pub async fn pull(&self, reference: &Reference, max_bytes: u64) -> Result<Pulled, OciError> {
        let top = self
            .fetch_manifest(reference, &reference.manifest_name(), reference.digest())
            .await?;
        let layers = self.component_layers(reference, &top).await?;
        let layer = wasm_layer(reference, &layers)?;
        if layer.size > max_bytes {
            return Err(OciError::TooLarge {
                reference: reference.to_string(),
                content: "component layer",
                size: layer.size,
                max: max_bytes,
            });
        }
        let component = self.fetch_blob(reference, layer.digest, layer.size).await?;
        Ok(Pulled {
            manifest_digest: top.digest,
            component: component.into(),
        })
    }

    /// Returns the layers of the manifest, following an image index to its
    /// WebAssembly entry.
    async fn component_layers(
        &self,
        reference: &Reference,
        top: &FetchedManifest,
    ) -> Result<Vec<Descriptor>, OciError> {
        let manifests = match parse(reference, top)? {
            Document::Manifest { layers } => return Ok(layers),
            Document::Index { manifests } => manifests,
        };
        let entry =
            select_index_entry(&manifests).map_err(|entries| OciError::NoMatchingIndexEntry {
                reference: reference.to_string(),
                entries,
            })?;
        let child = self
            .fetch_manifest(reference, &entry.digest.to_string(), Some(entry.digest))
            .await?;
        match parse(reference, &child)? {
            Document::Manifest { layers } => Ok(layers),
            Document::Index { .. } => Err(OciError::InvalidManifest {
                reference: reference.to_string(),
                reason: format!("the index entry {} is another index", entry.digest),
            }),
        }
    }

    /// Downloads a manifest by tag or digest and checks its bytes against
    /// `expected` and against the registry's `Docker-Content-Digest`.
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        name: &str,
        expected: Option<Digest>,
    ) -> Result<FetchedManifest, OciError> {
        let url = manifest_url(reference, name)?;
        let reply = self
            .send(
                reference,
                Method::GET,
                url,
                Some(MANIFEST_ACCEPT),
                Body::Manifest,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.manifest_error(reference, name, &reply).await);
        }

        let digest = Digest::of(&reply.body);
        check_digest(reference, "manifest", expected, digest)?;
        if let Some(sent) = content_digest(&reply.headers) {
            check_digest(
                reference,
                "manifest (Docker-Content-Digest)",
                Some(sent),
                digest,
            )?;
        }
        let content_type = reply
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(FetchedManifest {
            digest,
            bytes: reply.body,
            content_type,
        })
    }

    /// Downloads a blob of `size` bytes and checks its length and digest.
    async fn fetch_blob(
        &self,
        reference: &Reference,
        digest: Digest,
        size: u64,
    ) -> Result<Bytes, OciError> {
        let url = repository_url(reference, &format!("blobs/{digest}"))?;
        let reply = self
            .send(reference, Method::GET, url, None, Body::Blob { size })
            .await?;
        if !reply.status.is_success() {
            return Err(status_error(reference, &reply));
        }
        if u64::try_from(reply.body.len()).ok() != Some(size) {
            return Err(size_mismatch(reference, "component layer", size));
        }
        check_digest(
            reference,
            "component layer",
            Some(digest),
            Digest::of(&reply.body),
        )?;
        Ok(reply.body)
    }

    /// Maps an unsuccessful manifest response to an error. A registry may
    /// report a missing repository as an unknown manifest (Distribution
    /// 2.8 does), so for a missing tag the repository's tags are listed to
    /// tell the two apart and to name the tags that exist.
    async fn manifest_error(&self, reference: &Reference, name: &str, reply: &Reply) -> OciError {
        let error = status_error(reference, reply);
        let manifest_unknown = registry_errors(&reply.body)
            .iter()
            .any(|(code, _)| code == "MANIFEST_UNKNOWN");
        if !matches!(error, OciError::NotFound { .. })
            || !manifest_unknown
            || reference.digest().is_some()
        {
            return error;
        }
        let detail = match self.list_tags(reference).await {
            Some(TagList::RepositoryUnknown) => repository_unknown(reference),
            Some(TagList::Tags(tags)) if tags.is_empty() => {
                format!("repository {} has no tags", reference.repository())
            }
            Some(TagList::Tags(tags)) => format!(
                "repository {} has no tag {name}; its tags include {}",
                reference.repository(),
                tags.join(", ")
            ),
            None => return error,
        };
        OciError::NotFound {
            reference: reference.to_string(),
            detail,
        }
    }

    /// Lists up to [`LISTED_TAGS`] tags of the repository. Returns `None`
    /// when the registry returns neither a listing nor `NAME_UNKNOWN`.
    async fn list_tags(&self, reference: &Reference) -> Option<TagList> {
        #[derive(serde::Deserialize)]
        struct Listing {
            tags: Option<Vec<String>>,
        }

        let url = repository_url(reference, &format!("tags/list?n={LISTED_TAGS}")).ok()?;
        // The listing is capped by `n`, so the manifest limit bounds it.
        let reply = self
            .send(
                reference,
                Method::GET,
                url,
                Some("application/json"),
                Body::Manifest,
            )
            .await
            .ok()?;
        if reply.status == StatusCode::NOT_FOUND {
            let codes = registry_errors(&reply.body);
            return codes
                .iter()
                .any(|(code, _)| code == "NAME_UNKNOWN")
                .then_some(TagList::RepositoryUnknown);
        }
        if !reply.status.is_success() {
            return None;
        }
        let listing: Listing = serde_json::from_slice(&reply.body).ok()?;
        let mut tags = listing.tags.unwrap_or_default();
        tags.truncate(LISTED_TAGS);
        Some(TagList::Tags(tags))
    }

    /// Sends a request to the registry with the cached `Authorization`. On
    /// a 401 from the registry it obtains a new `Authorization` for the
    /// registry's challenge and retries once.
    async fn send(
        &self,
        reference: &Reference,
        method: Method,
        url: Url,
        accept: Option<&'static str>,
        body: Body,
    ) -> Result<Reply, OciError> {
        let registry = reference.registry();
        let scope = reference.pull_scope();
        let origin = url.origin();

        let cached = self.auth.cached(registry, &scope);
        let reply = self
            .exchange(
                reference,
                body,
                Exchange {
                    method: method.clone(),
                    url: url.clone(),
                    accept,
                    authorization: cached.as_ref().map(|auth| (&auth.value, origin.clone())),
                    body_limit: body.limit(),
                },
            )
            .await?;
        if reply.status != StatusCode::UNAUTHORIZED || reply.url.origin() != origin {
            return Ok(reply);
        }

        self.auth.forget(registry, &scope);
        let authorization = self
            .auth
            .authorize(&self.transport, &reply.headers, registry, &scope)
            .await
            .map_err(|error| auth_error(reference, error))?;
        tracing::debug!(registry, %reference, "retrying the registry request with authorization");
        let reply = self
            .exchange(
                reference,
                body,
                Exchange {
                    method,
                    url,
                    accept,
                    authorization: Some((&authorization.value, origin.clone())),
                    body_limit: body.limit(),
                },
            )
            .await?;
        if reply.status == StatusCode::UNAUTHORIZED && reply.url.origin() == origin {
            self.auth.forget(registry, &scope);
            let error = if authorization.with_credentials {
                AuthError::Rejected
            } else {
                AuthError::Required
            };
            return Err(auth_error(reference, error));
        }
        Ok(reply)
    }

    async fn exchange(
        &self,
        reference: &Reference,
        body: Body,
        exchange: Exchange<'_>,
    ) -> Result<Reply, OciError> {
        let registry = reference.registry().to_owned();
        let name = reference.to_string();
        self.transport
            .exchange(exchange)
            .await
            .map_err(|error| match error {
                TransportError::Failed(detail) => OciError::Unreachable {
                    registry,
                    reference: name,
                    detail,
                },
                TransportError::TimedOut => OciError::TimedOut {
                    registry,
                    reference: name,
                    seconds: REQUEST_TIMEOUT.as_secs(),
                },
                TransportError::TooManyRedirects => OciError::TooManyRedirects {
                    registry,
                    reference: name,
                    max: MAX_REDIRECTS,
                },
                TransportError::Disallowed(location, reason) => OciError::InvalidRedirect {
                    registry,
                    reference: name,
                    location,
                    reason: reason.to_owned(),
                },
                TransportError::BodyTooLarge => match body {
                    // The limit of a blob is its declared size, so more
                    // bytes mean the registry sent something else.
                    Body::Blob { size } => size_mismatch(reference, "component layer", size),
                    Body::Manifest | Body::Empty => OciError::ManifestTooLarge {
                        reference: name,
                        max: body.limit(),
                    },
                },
            })
    }
}

fn parse(reference: &Reference, manifest: &FetchedManifest) -> Result<Document, OciError> {
    parse_document(&manifest.bytes, manifest.content_type.as_deref()).map_err(|reason| {
        OciError::InvalidManifest {
            reference: reference.to_string(),
            reason,
        }
    })
}

fn wasm_layer<'a>(
    reference: &Reference,
    layers: &'a [Descriptor],
) -> Result<&'a Descriptor, OciError> {
    component_layer(layers).map_err(|error| match error {
        LayerError::Missing(found) => OciError::NoComponentLayer {
            reference: reference.to_string(),
            found,
        },
        LayerError::Several(count) => OciError::SeveralComponentLayers {
            reference: reference.to_string(),
            count,
        },
    })
}

fn repository_url(reference: &Reference, path: &str) -> Result<Url, OciError> {
    let text = format!(
        "{}://{}/v2/{}/{path}",
        reference.scheme(),
        reference.registry(),
        reference.repository()
    );
    Url::parse(&text).map_err(|error| OciError::Unreachable {
        registry: reference.registry().to_owned(),
        reference: reference.to_string(),
        detail: format!("the URL {text} is invalid: {error}"),
    })
}

fn manifest_url(reference: &Reference, name: &str) -> Result<Url, OciError> {
    repository_url(reference, &format!("manifests/{name}"))
}

/// Returns the `Docker-Content-Digest` header as a SHA-256 digest. Other
/// algorithms are not checked: the manifest bytes are hashed with SHA-256
/// in every case.
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get(DOCKER_CONTENT_DIGEST)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn check_digest(
    reference: &Reference,
    content: &'static str,
    expected: Option<Digest>,
    actual: Digest,
) -> Result<(), OciError> {
    match expected {
        Some(expected) if expected != actual => Err(OciError::DigestMismatch {
            reference: reference.to_string(),
            content,
            expected,
            actual,
        }),
        _ => Ok(()),
    }
}

fn size_mismatch(reference: &Reference, content: &'static str, declared: u64) -> OciError {
    OciError::SizeMismatch {
        registry: reference.registry().to_owned(),
        reference: reference.to_string(),
        content,
        declared,
    }
}

fn auth_error(reference: &Reference, error: AuthError) -> OciError {
    let registry = reference.registry().to_owned();
    let name = reference.to_string();
    match error {
        AuthError::Required => OciError::AuthenticationRequired {
            registry,
            reference: name,
        },
        AuthError::Rejected => OciError::CredentialsRejected {
            registry,
            reference: name,
        },
        AuthError::InvalidChallenge(reason) => OciError::InvalidChallenge {
            registry,
            reference: name,
            reason,
        },
        AuthError::Token { realm, reason } => OciError::Token {
            realm,
            reference: name,
            reason,
        },
    }
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Pulled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pulled")
            .field("manifest_digest", &self.manifest_digest)
            .field("component_bytes", &self.component.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn debug_never_prints_password() -> anyhow::Result<()> {
        let client = RegistryClient::new(Some(RegistryCredentials {
            username: "robot".to_owned(),
            password: Secret::new("hunter2"),
        }))?;
        let debug = format!("{client:?}");
        assert!(debug.contains("robot"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
        Ok(())
    }

    #[test]
    fn manifest_url_uses_scheme_policy() -> anyhow::Result<()> {
        let local: Reference = "oci://127.0.0.1:5000/team/orders:v2".parse()?;
        assert_eq!(
            manifest_url(&local, "v2")?.as_str(),
            "http://127.0.0.1:5000/v2/team/orders/manifests/v2"
        );
        let remote: Reference = "oci://ghcr.io/acme/gateway".parse()?;
        assert_eq!(
            manifest_url(&remote, "latest")?.as_str(),
            "https://ghcr.io/v2/acme/gateway/manifests/latest"
        );
        Ok(())
    }
}
