//! The host's OCI registry client against a real registry: Debian's
//! `docker-registry`, started on 127.0.0.1 by the harness. A loopback test
//! double covers what that registry does not do here: Bearer tokens, Basic
//! challenges, redirects to object storage, and content that does not
//! match its digest.
//!
//! Needs `docker-registry`: `scripts/setup.sh` unpacks it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use btp_gateway::components::digest::Digest;
use btp_gateway::components::oci::{OciError, Reference, RegistryClient, RegistryCredentials};
use btp_gateway::secret::Secret;
use btp_gateway_tests::harness::registry::{
    Artifact, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, Registry, WASM_LAYER_MEDIA_TYPE,
    sha256_digest,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A size limit well above every test component.
const LIMIT: u64 = 16 * 1024 * 1024;

const TAR_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Returns bytes that start like a WebAssembly component and differ per
/// `version`. The client does not validate WebAssembly, so the rest is a
/// pattern.
fn component(version: u8, length: usize) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
    let mut value = version;
    bytes.extend((0..length).map(|_| {
        value = value.wrapping_mul(31).wrapping_add(7);
        value
    }));
    bytes
}

fn length(bytes: &[u8]) -> u64 {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX)
}

fn expect_error<T: std::fmt::Debug>(result: Result<T, OciError>) -> OciError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error,
    }
}

#[tokio::test]
async fn tag_moves_and_digest_pins() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    let v1 = component(1, 200_000);
    let v2 = component(2, 150_000);
    let tagged: Reference = registry.reference("team/orders", "stable").parse()?;

    let first = registry.push("team/orders", "stable", &v1).await?;
    assert_eq!(client.resolve(&tagged).await?.to_string(), first);
    let pulled = client.pull(&tagged, LIMIT).await?;
    assert_eq!(pulled.manifest_digest.to_string(), first);
    assert!(pulled.component == v1, "pulled {pulled:?}");
    assert_eq!(
        Digest::of(&pulled.component).to_string(),
        sha256_digest(&v1)
    );

    let second = registry.push("team/orders", "stable", &v2).await?;
    assert_ne!(first, second);
    assert_eq!(client.resolve(&tagged).await?.to_string(), second);
    let pulled = client.pull(&tagged, LIMIT).await?;
    assert_eq!(pulled.manifest_digest.to_string(), second);
    assert!(pulled.component == v2, "pulled {pulled:?}");

    let pinned: Reference = format!("oci://{}/team/orders@{first}", registry.address()).parse()?;
    assert!(!pinned.follows_tag());
    assert_eq!(client.resolve(&pinned).await?.to_string(), first);
    let old = client.pull(&pinned, LIMIT).await?;
    assert_eq!(old.manifest_digest.to_string(), first);
    assert!(old.component == v1, "pulled {old:?}");

    let repinned = tagged.pinned(first.parse()?);
    assert!(client.pull(&repinned, LIMIT).await?.component == v1);
    Ok(())
}

#[tokio::test]
async fn missing_tag_is_not_found() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    registry
        .push("team/orders", "v1", &component(1, 1000))
        .await?;
    let reference: Reference = registry.reference("team/orders", "v9").parse()?;

    for error in [
        expect_error(client.resolve(&reference).await),
        expect_error(client.pull(&reference, LIMIT).await),
    ] {
        assert!(matches!(error, OciError::NotFound { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&reference.to_string()), "{message}");
        assert!(
            message.contains("repository team/orders has no tag v9; its tags include v1"),
            "{message}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn missing_repository_is_not_found() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    let reference: Reference = registry.reference("team/nothing", "v1").parse()?;

    for error in [
        expect_error(client.resolve(&reference).await),
        expect_error(client.pull(&reference, LIMIT).await),
    ] {
        assert!(matches!(error, OciError::NotFound { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&reference.to_string()), "{message}");
        assert!(
            message.contains(&format!(
                "repository team/nothing does not exist on registry {}",
                registry.address()
            )),
            "{message}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn non_wasm_layer_is_rejected() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    let image = Artifact::new(TAR_LAYER, b"a container image layer");
    registry.push_artifact("team/image", "v1", &image).await?;
    let reference: Reference = registry.reference("team/image", "v1").parse()?;

    assert_eq!(
        client.resolve(&reference).await?.to_string(),
        image.manifest_digest
    );
    let error = expect_error(client.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::NoComponentLayer { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(TAR_LAYER), "{message}");
    assert!(message.contains("`application/wasm`"), "{message}");
    Ok(())
}

#[tokio::test]
async fn layer_above_limit_is_rejected() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    let wasm = component(1, 50_000);
    registry.push("team/orders", "v1", &wasm).await?;
    let reference: Reference = registry.reference("team/orders", "v1").parse()?;
    let size = length(&wasm);

    let error = expect_error(client.pull(&reference, size - 1).await);
    assert!(matches!(error, OciError::TooLarge { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&format!("is {size} bytes")), "{message}");
    assert!(
        message.contains(&format!("limit of {} bytes", size - 1)),
        "{message}"
    );

    assert!(client.pull(&reference, size).await?.component == wasm);
    Ok(())
}

#[tokio::test]
async fn unknown_pinned_digest_is_rejected() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    registry
        .push("team/orders", "v1", &component(1, 1000))
        .await?;
    let unknown = sha256_digest(b"not a manifest in this registry");
    let reference: Reference =
        format!("oci://{}/team/orders:v1@{unknown}", registry.address()).parse()?;

    for error in [
        expect_error(client.resolve(&reference).await),
        expect_error(client.pull(&reference, LIMIT).await),
    ] {
        assert!(matches!(error, OciError::NotFound { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&unknown), "{message}");
    }
    Ok(())
}

fn index_entry(artifact: &Artifact, os: &str, architecture: &str) -> serde_json::Value {
    serde_json::json!({
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "digest": artifact.manifest_digest,
        "size": artifact.manifest.len(),
        "platform": {"os": os, "architecture": architecture},
    })
}

fn index(entries: &[serde_json::Value]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": entries,
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn index_selects_wasm_entry() -> anyhow::Result<()> {
    let registry = Registry::start()?;
    let client = RegistryClient::new(None)?;
    let wasm = component(3, 10_000);
    let image = Artifact::new(TAR_LAYER, b"a container image layer");
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &wasm);
    registry
        .push_artifact("team/multi", "image", &image)
        .await?;
    registry
        .push_artifact("team/multi", "wasm", &artifact)
        .await?;

    let mixed = index(&[
        index_entry(&image, "linux", "amd64"),
        index_entry(&artifact, "wasip2", "wasm"),
    ]);
    let index_digest = registry
        .push_manifest("team/multi", "v1", OCI_INDEX_MEDIA_TYPE, &mixed)
        .await?;
    let reference: Reference = registry.reference("team/multi", "v1").parse()?;
    assert_eq!(client.resolve(&reference).await?.to_string(), index_digest);
    let pulled = client.pull(&reference, LIMIT).await?;
    assert_eq!(pulled.manifest_digest.to_string(), index_digest);
    assert!(pulled.component == wasm, "pulled {pulled:?}");

    let images_only = index(&[
        index_entry(&image, "linux", "amd64"),
        index_entry(&image, "linux", "arm64"),
    ]);
    registry
        .push_manifest("team/multi", "images", OCI_INDEX_MEDIA_TYPE, &images_only)
        .await?;
    let reference: Reference = registry.reference("team/multi", "images").parse()?;
    let error = expect_error(client.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::NoMatchingIndexEntry { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("linux/amd64"), "{message}");
    assert!(message.contains("linux/arm64"), "{message}");
    assert!(message.contains(&image.manifest_digest), "{message}");
    Ok(())
}

// The test double: a loopback registry that serves one artifact as
// `team/app` under any tag, and authenticates as configured.

const DOUBLE_SERVICE: &str = "oci-double";

/// How the double authenticates registry requests.
#[derive(Clone, Debug)]
enum DoubleAuth {
    None,
    /// Bearer tokens from the double's `/token`, which requires this
    /// `Authorization` value when set.
    Bearer {
        token_authorization: Option<String>,
    },
    /// Basic credentials: this `Authorization` value.
    Basic {
        authorization: String,
    },
}

/// One request the double received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    target: String,
    authorization: Option<String>,
    status: StatusCode,
}

#[derive(Default)]
struct DoubleState {
    manifest: Vec<u8>,
    /// A `Docker-Content-Digest` to send instead of the manifest's digest.
    content_digest: Option<String>,
    blobs: HashMap<String, Vec<u8>>,
    /// The base URL blob requests are redirected to.
    blob_redirect: Option<String>,
    valid_token: Option<String>,
    tokens_issued: u32,
    seen: Vec<Seen>,
}

struct Double {
    address: SocketAddr,
    state: Arc<Mutex<DoubleState>>,
    server: JoinHandle<()>,
}

impl Double {
    async fn start(auth: DoubleAuth, artifact: &Artifact) -> anyhow::Result<Self> {
        let state = DoubleState {
            manifest: artifact.manifest.clone(),
            blobs: HashMap::from([(artifact.layer_digest.clone(), artifact.layer.clone())]),
            ..DoubleState::default()
        };
        let state = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(serve(listener, auth, state.clone()));
        Ok(Self {
            address,
            state,
            server,
        })
    }

    fn reference(&self, tag: &str) -> anyhow::Result<Reference> {
        Ok(format!("oci://{}/team/app:{tag}", self.address).parse()?)
    }

    fn update(&self, change: impl FnOnce(&mut DoubleState)) {
        change(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }

    fn seen(&self) -> Vec<Seen> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .clone()
    }

    fn tokens_issued(&self) -> u32 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens_issued
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, auth: DoubleAuth, state: Arc<Mutex<DoubleState>>) {
    let Ok(address) = listener.local_addr() else {
        return;
    };
    while let Ok((stream, _)) = listener.accept().await {
        let auth = auth.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                let response = respond(&request, address, &auth, &mut state);
                state.seen.push(Seen {
                    method: request.method().clone(),
                    target: request
                        .uri()
                        .path_and_query()
                        .map(|target| target.as_str().to_owned())
                        .unwrap_or_default(),
                    authorization: authorization(&request),
                    status: response.status(),
                });
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn authorization<B>(request: &Request<B>) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn respond<B>(
    request: &Request<B>,
    address: SocketAddr,
    auth: &DoubleAuth,
    state: &mut DoubleState,
) -> Response<Full<Bytes>> {
    let sent = authorization(request);
    let path = request.uri().path();
    if path == "/token" {
        return issue_token(auth, sent.as_deref(), state);
    }

    let authorized = match auth {
        DoubleAuth::None => true,
        DoubleAuth::Bearer { .. } => {
            sent.is_some() && sent == state.valid_token.as_ref().map(|t| format!("Bearer {t}"))
        }
        DoubleAuth::Basic { authorization } => sent.as_deref() == Some(authorization),
    };
    if !authorized {
        let challenge = match auth {
            DoubleAuth::Basic { .. } => format!("Basic realm=\"{DOUBLE_SERVICE}\""),
            _ => format!(
                "Bearer realm=\"http://{address}/token\",service=\"{DOUBLE_SERVICE}\",\
                 scope=\"repository:team/app:pull\""
            ),
        };
        return reply(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", challenge)],
            b"",
        );
    }

    if path.starts_with("/v2/team/app/manifests/") {
        let digest = state
            .content_digest
            .clone()
            .unwrap_or_else(|| sha256_digest(&state.manifest));
        return reply(
            StatusCode::OK,
            &[
                ("content-type", OCI_MANIFEST_MEDIA_TYPE.to_owned()),
                ("docker-content-digest", digest),
            ],
            &state.manifest,
        );
    }
    if let Some(digest) = path.strip_prefix("/v2/team/app/blobs/") {
        if let Some(base) = &state.blob_redirect {
            let location = format!("{base}/v2/team/app/blobs/{digest}?signature=from-storage");
            return reply(
                StatusCode::TEMPORARY_REDIRECT,
                &[("location", location)],
                b"",
            );
        }
        if let Some(blob) = state.blobs.get(digest) {
            return reply(StatusCode::OK, &[], blob);
        }
    }
    reply(StatusCode::NOT_FOUND, &[], b"")
}

fn issue_token(
    auth: &DoubleAuth,
    sent: Option<&str>,
    state: &mut DoubleState,
) -> Response<Full<Bytes>> {
    let DoubleAuth::Bearer {
        token_authorization,
    } = auth
    else {
        return reply(StatusCode::NOT_FOUND, &[], b"");
    };
    if token_authorization.is_some() && sent != token_authorization.as_deref() {
        return reply(
            StatusCode::UNAUTHORIZED,
            &[],
            b"{\"details\":\"bad credentials\"}",
        );
    }
    state.tokens_issued += 1;
    let token = format!("token-{}", state.tokens_issued);
    state.valid_token = Some(token.clone());
    let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
    reply(
        StatusCode::OK,
        &[("content-type", "application/json".to_owned())],
        body.as_bytes(),
    )
}

fn reply(status: StatusCode, headers: &[(&str, String)], body: &[u8]) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body)));
    *response.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn basic(username: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{username}:{password}")))
}

fn credentials(username: &str, password: &str) -> Option<RegistryCredentials> {
    Some(RegistryCredentials {
        username: username.to_owned(),
        password: Secret::new(password),
    })
}

fn registry_requests(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.target.starts_with("/v2/"))
        .collect()
}

#[tokio::test]
async fn bearer_token_fetched_once_and_reused() -> anyhow::Result<()> {
    let wasm = component(4, 30_000);
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &wasm);
    let double = Double::start(
        DoubleAuth::Bearer {
            token_authorization: None,
        },
        &artifact,
    )
    .await?;
    let client = RegistryClient::new(None)?;
    let reference = double.reference("v1")?;

    assert_eq!(
        client.resolve(&reference).await?.to_string(),
        artifact.manifest_digest
    );
    let pulled = client.pull(&reference, LIMIT).await?;
    assert!(pulled.component == wasm, "pulled {pulled:?}");
    // A clone shares the token cache.
    client.clone().resolve(&reference).await?;
    assert_eq!(double.tokens_issued(), 1);

    let seen = double.seen();
    let summary: Vec<(Method, StatusCode, Option<String>)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.status, s.authorization.clone()))
        .collect();
    let bearer = Some("Bearer token-1".to_owned());
    assert_eq!(
        summary,
        [
            (Method::HEAD, StatusCode::UNAUTHORIZED, None),
            (Method::GET, StatusCode::OK, None),
            (Method::HEAD, StatusCode::OK, bearer.clone()),
            (Method::GET, StatusCode::OK, bearer.clone()),
            (Method::GET, StatusCode::OK, bearer.clone()),
            (Method::HEAD, StatusCode::OK, bearer),
        ]
    );
    assert_eq!(
        seen[1].target,
        format!("/token?service={DOUBLE_SERVICE}&scope=repository%3Ateam%2Fapp%3Apull")
    );
    Ok(())
}

#[tokio::test]
async fn rejected_token_is_replaced_once() -> anyhow::Result<()> {
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &component(5, 1000));
    let double = Double::start(
        DoubleAuth::Bearer {
            token_authorization: None,
        },
        &artifact,
    )
    .await?;
    let client = RegistryClient::new(None)?;
    let reference = double.reference("v1")?;
    client.resolve(&reference).await?;

    // The registry revokes the token before it expires.
    double.update(|state| state.valid_token = Some("revoked-elsewhere".to_owned()));
    client.resolve(&reference).await?;
    assert_eq!(double.tokens_issued(), 2);
    let last: Vec<(StatusCode, Option<String>)> = double.seen()[3..]
        .iter()
        .map(|s| (s.status, s.authorization.clone()))
        .collect();
    assert_eq!(
        last,
        [
            (StatusCode::UNAUTHORIZED, Some("Bearer token-1".to_owned())),
            (StatusCode::OK, None),
            (StatusCode::OK, Some("Bearer token-2".to_owned())),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn token_service_checks_credentials() -> anyhow::Result<()> {
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &component(6, 1000));
    let double = Double::start(
        DoubleAuth::Bearer {
            token_authorization: Some(basic("robot", "s3cret-password")),
        },
        &artifact,
    )
    .await?;
    let reference = double.reference("v1")?;

    let anonymous = RegistryClient::new(None)?;
    let error = expect_error(anonymous.resolve(&reference).await);
    assert!(
        matches!(error, OciError::AuthenticationRequired { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("requires authentication"),
        "{error}"
    );

    let wrong = RegistryClient::new(credentials("robot", "wrong-password"))?;
    let error = expect_error(wrong.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::CredentialsRejected { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("rejected the configured credentials"),
        "{message}"
    );
    assert!(!message.contains("wrong-password"), "{message}");
    assert!(
        !format!("{error:?}").contains("wrong-password"),
        "{error:?}"
    );

    let right = RegistryClient::new(credentials("robot", "s3cret-password"))?;
    let pulled = right.pull(&reference, LIMIT).await?;
    assert!(pulled.component == artifact.layer, "pulled {pulled:?}");
    let seen = double.seen();
    let token_requests: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.target.starts_with("/token"))
        .collect();
    assert_eq!(
        token_requests.last().and_then(|s| s.authorization.clone()),
        Some(basic("robot", "s3cret-password"))
    );
    for request in registry_requests(&seen) {
        let sent = request.authorization.as_deref().unwrap_or("");
        assert!(!sent.starts_with("Basic"), "{request:?}");
    }
    Ok(())
}

#[tokio::test]
async fn basic_challenge_uses_credentials() -> anyhow::Result<()> {
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &component(7, 1000));
    let double = Double::start(
        DoubleAuth::Basic {
            authorization: basic("robot", "s3cret-password"),
        },
        &artifact,
    )
    .await?;
    let reference = double.reference("v1")?;

    let anonymous = RegistryClient::new(None)?;
    let error = expect_error(anonymous.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::AuthenticationRequired { .. }),
        "{error:?}"
    );

    let wrong = RegistryClient::new(credentials("robot", "wrong-password"))?;
    let error = expect_error(wrong.resolve(&reference).await);
    assert!(
        matches!(error, OciError::CredentialsRejected { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("wrong-password"), "{error}");

    let before = double.seen().len();
    let right = RegistryClient::new(credentials("robot", "s3cret-password"))?;
    assert_eq!(
        right.resolve(&reference).await?.to_string(),
        artifact.manifest_digest
    );
    let pulled = right.pull(&reference, LIMIT).await?;
    assert!(pulled.component == artifact.layer, "pulled {pulled:?}");
    // Only the first request is challenged; the credentials are then sent
    // with every request.
    let statuses: Vec<StatusCode> = double.seen()[before..].iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK
        ]
    );
    Ok(())
}

#[tokio::test]
async fn redirect_never_carries_authorization() -> anyhow::Result<()> {
    let wasm = component(8, 40_000);
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &wasm);
    let storage = Double::start(DoubleAuth::None, &artifact).await?;
    let double = Double::start(
        DoubleAuth::Bearer {
            token_authorization: None,
        },
        &artifact,
    )
    .await?;
    let storage_base = format!("http://{}", storage.address);
    double.update(|state| state.blob_redirect = Some(storage_base));
    let client = RegistryClient::new(None)?;

    let pulled = client.pull(&double.reference("v1")?, LIMIT).await?;
    assert!(pulled.component == wasm, "pulled {pulled:?}");

    let blob_requests: Vec<Seen> = double
        .seen()
        .into_iter()
        .filter(|s| s.target.contains("/blobs/"))
        .collect();
    assert_eq!(blob_requests.len(), 1, "{blob_requests:?}");
    assert_eq!(blob_requests[0].status, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        blob_requests[0].authorization.as_deref(),
        Some("Bearer token-1")
    );
    let stored = storage.seen();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        stored[0].target,
        format!(
            "/v2/team/app/blobs/{}?signature=from-storage",
            artifact.layer_digest
        )
    );
    assert_eq!(stored[0].authorization, None);
    Ok(())
}

#[tokio::test]
async fn tampered_content_is_rejected() -> anyhow::Result<()> {
    let wasm = component(9, 5000);
    let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, &wasm);
    let double = Double::start(DoubleAuth::None, &artifact).await?;
    let client = RegistryClient::new(None)?;
    let reference = double.reference("v1")?;

    // A manifest that does not match the registry's Docker-Content-Digest.
    let other = sha256_digest(b"another manifest");
    double.update(|state| state.content_digest = Some(other.clone()));
    let error = expect_error(client.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::DigestMismatch { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("Docker-Content-Digest"), "{message}");
    assert!(message.contains(&other), "{message}");
    double.update(|state| state.content_digest = None);

    // A manifest that does not match the digest pinned in the reference.
    let pinned: Reference = format!("oci://{}/team/app@{other}", double.address).parse()?;
    let error = expect_error(client.pull(&pinned, LIMIT).await);
    assert!(
        matches!(error, OciError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&artifact.manifest_digest),
        "{error}"
    );

    // A layer of the declared size with other bytes.
    let mut altered = wasm.clone();
    altered[100] ^= 0xff;
    let layer_digest = artifact.layer_digest.clone();
    double.update(|state| {
        state.blobs.insert(layer_digest.clone(), altered);
    });
    let error = expect_error(client.pull(&reference, LIMIT).await);
    assert!(
        matches!(error, OciError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("component layer"), "{error}");

    // A layer longer than declared: the download stops at the declared
    // size.
    let mut longer = wasm.clone();
    longer.extend_from_slice(&[0; 4096]);
    double.update(|state| {
        state.blobs.insert(layer_digest, longer);
    });
    let error = expect_error(client.pull(&reference, LIMIT).await);
    assert!(matches!(error, OciError::SizeMismatch { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&format!("not {} bytes long", wasm.len())),
        "{error}"
    );
    Ok(())
}
