//! A real OCI registry for tests: Debian's `docker-registry` (CNCF
//! Distribution 2.8) run as a process on 127.0.0.1, and a pusher that
//! publishes components the way `wkg oci push` does, written against the
//! OCI distribution specification independently of the host's client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use sha2::{Digest as _, Sha256};

use super::client::request_with_body;
use super::watch_output;

/// The media type of a WebAssembly component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The config media type that WebAssembly OCI tools write.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Environment variable with the path of the `docker-registry` binary.
const BINARY_VARIABLE: &str = "BTP_GATEWAY_TEST_REGISTRY_BIN";

/// Where `scripts/setup.sh` unpacks the Debian package, below `$HOME`.
const UNPACKED_BINARY: &str = ".cache/btp-gateway/tools/docker-registry/usr/bin/docker-registry";

/// Start attempts: another process may take the chosen port between
/// choosing it and the registry binding it.
const START_ATTEMPTS: usize = 3;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The user and password of [`Registry::start_with_basic_auth`].
pub const TEST_USER: &str = "gateway-bot";
pub const TEST_PASSWORD: &str = "registry-test-password-8c41";

/// The htpasswd line for [`TEST_USER`] and [`TEST_PASSWORD`]: bcrypt, the
/// only scheme the registry accepts, at the lowest cost (4) so that the
/// registry checks it quickly. It was made once with Python's `crypt`
/// module, because no bcrypt implementation is among the dependencies.
const TEST_HTPASSWD: &str =
    "gateway-bot:$2b$04$CPY0Xar915oczpJbhZbBcunC5K9OpnApd1czHjFLF3DSK5injLVwO\n";

/// A running registry without authentication. The process is killed and
/// its storage deleted when the handle is dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    address: SocketAddr,
    dir: PathBuf,
    log: Arc<Mutex<String>>,
    /// The `Authorization` header the pusher sends, when the registry
    /// requires Basic authentication.
    authorization: Option<String>,
}

impl Registry {
    /// Starts a registry with filesystem storage in a new temporary folder
    /// and waits until `GET /v2/` responds.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a registry that requires Basic authentication as
    /// [`TEST_USER`] with [`TEST_PASSWORD`] for every request.
    pub fn start_with_basic_auth() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(basic_auth: bool) -> anyhow::Result<Self> {
        use base64::Engine as _;

        let binary = find_binary()?;
        let dir =
            std::env::temp_dir().join(format!("btp-gateway-registry-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let htpasswd = basic_auth.then(|| dir.join("htpasswd"));
        if let Some(path) = &htpasswd {
            std::fs::write(path, TEST_HTPASSWD)?;
        }
        let authorization = basic_auth.then(|| {
            let credentials = format!("{TEST_USER}:{TEST_PASSWORD}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            )
        });

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match start_process(&binary, &dir, htpasswd.as_deref()) {
                Ok((child, address, log)) => {
                    return Ok(Self {
                        child,
                        address,
                        dir,
                        log,
                        authorization,
                    });
                }
                Err(StartError::PortTaken(error)) => last_error = Some(error),
                Err(StartError::Other(error)) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(error);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("the registry did not start")))
    }

    /// Returns `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Returns `oci://127.0.0.1:PORT/REPOSITORY:TAG`.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("oci://{}/{repository}:{tag}", self.address)
    }

    /// Returns the registry's output so far (warnings and errors).
    pub fn output(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Publishes `wasm` as a WebAssembly component under `repository:tag`
    /// and returns the manifest digest.
    pub async fn push(&self, repository: &str, tag: &str, wasm: &[u8]) -> anyhow::Result<String> {
        let artifact = Artifact::new(WASM_LAYER_MEDIA_TYPE, wasm);
        self.push_artifact(repository, tag, &artifact).await?;
        Ok(artifact.manifest_digest)
    }

    /// Uploads the artifact's config and layer blobs and its manifest under
    /// `tag`.
    pub async fn push_artifact(
        &self,
        repository: &str,
        tag: &str,
        artifact: &Artifact,
    ) -> anyhow::Result<()> {
        self.push_blob(repository, &artifact.config).await?;
        self.push_blob(repository, &artifact.layer).await?;
        self.push_manifest(repository, tag, OCI_MANIFEST_MEDIA_TYPE, &artifact.manifest)
            .await?;
        Ok(())
    }

    /// Uploads a blob in one piece (`POST` then `PUT ?digest=`) and returns
    /// its digest.
    pub async fn push_blob(&self, repository: &str, blob: &[u8]) -> anyhow::Result<String> {
        let digest = sha256_digest(blob);
        let start_url = format!("http://{}/v2/{repository}/blobs/uploads/", self.address);
        let started =
            request_with_body(Method::POST, &start_url, &self.headers(&[]), Bytes::new()).await?;
        if started.status != StatusCode::ACCEPTED {
            anyhow::bail!(
                "starting a blob upload to {start_url} returned {}: {}",
                started.status,
                started.text()
            );
        }

        let location = started.header("location");
        let upload_url = if location.starts_with('/') {
            format!("http://{}{location}", self.address)
        } else {
            location
        };
        let separator = if upload_url.contains('?') { '&' } else { '?' };
        let finish_url = format!("{upload_url}{separator}digest={digest}");
        let finished = request_with_body(
            Method::PUT,
            &finish_url,
            &self.headers(&[("content-type", "application/octet-stream")]),
            Bytes::copy_from_slice(blob),
        )
        .await?;
        if finished.status != StatusCode::CREATED {
            anyhow::bail!(
                "uploading blob {digest} returned {}: {}",
                finished.status,
                finished.text()
            );
        }
        Ok(digest)
    }

    /// Uploads a manifest under `reference` (a tag or a digest), checks the
    /// registry's `Docker-Content-Digest` against the bytes, and returns the
    /// digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> anyhow::Result<String> {
        let digest = sha256_digest(manifest);
        let url = format!(
            "http://{}/v2/{repository}/manifests/{reference}",
            self.address
        );
        let response = request_with_body(
            Method::PUT,
            &url,
            &self.headers(&[("content-type", media_type)]),
            Bytes::copy_from_slice(manifest),
        )
        .await?;
        if response.status != StatusCode::CREATED {
            anyhow::bail!(
                "uploading the manifest to {url} returned {}: {}",
                response.status,
                response.text()
            );
        }
        let sent = response.header("docker-content-digest");
        if sent != digest {
            anyhow::bail!("the registry stored the manifest as {sent:?}, expected {digest}");
        }
        Ok(digest)
    }
}

impl Registry {
    /// Returns `headers` with the pusher's `Authorization` added when the
    /// registry requires it.
    fn headers<'a>(&'a self, headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = headers.to_vec();
        if let Some(authorization) = &self.authorization {
            all.push(("authorization", authorization.as_str()));
        }
        all
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An OCI artifact with one layer, laid out as WebAssembly tools publish a
/// component: a small JSON config and an OCI image manifest.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub layer_digest: String,
    pub manifest_digest: String,
}

impl Artifact {
    /// Builds the config and the manifest for `layer` with `layer_media_type`.
    pub fn new(layer_media_type: &str, layer: &[u8]) -> Self {
        let layer_digest = sha256_digest(layer);
        let config = serde_json::json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
        })
        .to_string()
        .into_bytes();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {
                "mediaType": WASM_CONFIG_MEDIA_TYPE,
                "digest": sha256_digest(&config),
                "size": config.len(),
            },
            "layers": [{
                "mediaType": layer_media_type,
                "digest": layer_digest,
                "size": layer.len(),
            }],
        })
        .to_string()
        .into_bytes();
        Self {
            manifest_digest: sha256_digest(&manifest),
            config,
            layer: layer.to_vec(),
            manifest,
            layer_digest,
        }
    }
}

/// Returns `sha256:` and the lowercase hexadecimal SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256:{hex}")
}

enum StartError {
    /// The process exited because the port was taken; worth another port.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

fn find_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(BINARY_VARIABLE) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        anyhow::bail!(
            "{BINARY_VARIABLE} is {}, which is not a file",
            path.display()
        );
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("docker-registry"))
            .find(|candidate| candidate.is_file())
    });
    let unpacked = std::env::var_os("HOME").map(|home| Path::new(&home).join(UNPACKED_BINARY));
    on_path
        .or(unpacked.filter(|path| path.is_file()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "docker-registry not found in {BINARY_VARIABLE}, on PATH or at $HOME/{UNPACKED_BINARY}: \
                 run scripts/setup.sh, which unpacks Debian's docker-registry package"
            )
        })
}

fn start_process(
    binary: &Path,
    dir: &Path,
    htpasswd: Option<&Path>,
) -> Result<(Child, SocketAddr, Arc<Mutex<String>>), StartError> {
    let address = free_address().map_err(StartError::Other)?;
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        config_yaml(address, &dir.join("storage"), htpasswd),
    )
    .map_err(|error| StartError::Other(error.into()))?;

    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // `REGISTRY_*` variables override the configuration file.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(name);
        }
    }
    let mut child = command.spawn().map_err(|error| {
        StartError::Other(anyhow::anyhow!(
            "cannot start {}: {error}",
            binary.display()
        ))
    })?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| StartError::Other(anyhow::anyhow!("no stderr")))?;
    let (log, _) = watch_output(stderr, |_| None);

    match wait_until_ready(&mut child, address) {
        Ok(()) => Ok((child, address, log)),
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            // Let the output reader take the last lines.
            std::thread::sleep(Duration::from_millis(100));
            let output = log.lock().map(|log| log.clone()).unwrap_or_default();
            let error = anyhow::anyhow!(
                "the registry on {address} did not start: {error}; its output:\n{output}"
            );
            if output.contains("address already in use") {
                Err(StartError::PortTaken(error))
            } else {
                Err(StartError::Other(error))
            }
        }
    }
}

/// Returns a port that was free a moment ago, by binding port 0.
fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

fn config_yaml(address: SocketAddr, storage: &Path, htpasswd: Option<&Path>) -> String {
    let auth = htpasswd.map_or_else(String::new, |path| {
        format!(
            "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
            path.display()
        )
    });
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {address}\n  secret: {secret}\n{auth}",
        storage = storage.display(),
        secret = uuid::Uuid::new_v4(),
    )
}

/// Polls `GET /v2/` until the registry responds, the process exits, or
/// `READY_TIMEOUT` passes.
fn wait_until_ready(child: &mut Child, address: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the process exited with {status}");
        }
        // 401 is the answer of a registry that requires authentication.
        let ready = probe(address).is_ok_and(|status_line| {
            status_line.starts_with("HTTP/1.1 200") || status_line.starts_with("HTTP/1.1 401")
        });
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("GET /v2/ did not succeed within {READY_TIMEOUT:?}")
}

/// Sends `GET /v2/` over a plain socket and returns the status line.
fn probe(address: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}
