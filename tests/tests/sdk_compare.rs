//! Side-by-side test against the SAP Cloud SDK for JavaScript.
//!
//! The same destinations are served by the Destination service emulator (or
//! the `destinations` variable), and the same requests go once through the
//! gateway and once through `@sap-cloud-sdk/http-client` (the Node script in
//! `tests/sdk-compare`). A recording backend on 127.0.0.1 shows what each
//! client sends, and every case states what both must send alike and where
//! they differ. `docs/cloud-sdk-comparison.md` gives the reason for each
//! difference asserted here.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use btp_gateway_tests::emulator::{
    ClientConfig, DEFAULT_SUBACCOUNT_ID, Destination, Emulator, EmulatorConfig, PRINCIPAL_HEADER,
    TECHNICAL_USER_HEADER, TenantConfig, UserConfig, UserTokenSpec,
};
use btp_gateway_tests::harness::{Gateway, RecordedRequest, Recorder, get, workspace_root};
use btp_gateway_tests::pki::TestCa;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

const CLIENT_ID: &str = "sb-gateway-test!b17|destination-xsappname!b404";
const CLIENT_SECRET: &str = "gateway-client-secret-4711";
const BACKEND_CLIENT_ID: &str = "sb-backend-client";
const BACKEND_CLIENT_SECRET: &str = "backend-secret";
const CONNECTIVITY_CLIENT_ID: &str = "sb-connectivity-test!b7|connectivity!b17";
const CONNECTIVITY_CLIENT_SECRET: &str = "connectivity-secret-0815";
/// The application's client: the xsuaa binding of the gateway and the
/// client the user JWTs are issued to.
const USER_APP_CLIENT_ID: &str = "sb-user-app!t1";
const USER_APP_CLIENT_SECRET: &str = "user-app-secret";
const USER_APP_XSAPPNAME: &str = "user-app!t1";
/// The user who calls in the provider's tenant.
const PROVIDER_USER: &str = "alice";
const PROVIDER_USER_PASSWORD: &str = "alice-password-8820";
/// The user who calls in the subscriber's tenant.
const SUBSCRIBER_USER: &str = "bob";
const SUBSCRIBER_ZONE: &str = "7c1e0000-0000-4000-8000-0000000000a1";
const SUBSCRIBER_SUBDOMAIN: &str = "customer-a";
/// The technical user of the `OAuth2Password` destination.
const TECHNICAL_USER: &str = "tech-user";
const TECHNICAL_USER_PASSWORD: &str = "tech-user-password-4417";
const BASIC_USER: &str = "alice";
/// A password with a colon and a non-ASCII letter, which both clients must
/// encode the same way (UTF-8, then base64).
const BASIC_PASSWORD: &str = "wonder:land-ä";
const BASE_PATH: &str = "/sap/opu/odata/sap/API_BUSINESS_PARTNER";
const SCC_LOCATION_ID: &str = "loc-1";

/// Time the Node script may take for a whole job, SDK start-up included.
const SDK_JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Headers whose values depend on the client, not on the destination:
/// their differences are documented, and `client_headers_differ_as_documented`
/// checks them on one request.
const CLIENT_HEADERS: [&str; 5] = [
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "x-correlationid",
];

/// Headers that carry credentials. They are compared by scheme and identity,
/// not byte for byte, because every token fetch returns a new token.
const AUTH_HEADERS: [&str; 2] = ["authorization", "x-backend-authorization"];

// --- What a request carried ---

/// The claims of a JWT that identify it: every token fetch returns a new
/// token, so tokens are compared by these claims and never by value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TokenClaims {
    /// `client_id`, or `cid` when `client_id` is missing.
    client_id: String,
    /// `user_name`, which client-credentials tokens do not have.
    user_name: Option<String>,
    /// `zid`, the identity zone (tenant) of the token.
    zone_id: Option<String>,
}

/// The credentials one header carried.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    None,
    /// `Basic`, with the decoded `user:password`.
    Basic {
        header: String,
        decoded: String,
    },
    /// `Bearer` with a JWT, by its identifying claims.
    Bearer {
        header: String,
        claims: TokenClaims,
    },
    /// Anything else, as sent, so that a failure shows it.
    Other {
        header: String,
        value: String,
    },
}

impl Credential {
    fn basic(user: &str, password: &str) -> Self {
        Credential::Basic {
            header: "authorization".to_owned(),
            decoded: format!("{user}:{password}"),
        }
    }

    /// Builds the credential of a client-credentials token of `client_id`
    /// in the provider's zone.
    fn bearer(header: &str, client_id: &str) -> Self {
        Credential::client_bearer(header, client_id, DEFAULT_SUBACCOUNT_ID)
    }

    /// Builds the credential of a client-credentials token of `client_id`
    /// in `zone_id`.
    fn client_bearer(header: &str, client_id: &str, zone_id: &str) -> Self {
        Credential::Bearer {
            header: header.to_owned(),
            claims: TokenClaims {
                client_id: client_id.to_owned(),
                user_name: None,
                zone_id: Some(zone_id.to_owned()),
            },
        }
    }

    /// Builds the credential of a token of `user_name` in `zone_id`, issued
    /// to `client_id`.
    fn user_bearer(header: &str, client_id: &str, user_name: &str, zone_id: &str) -> Self {
        Credential::Bearer {
            header: header.to_owned(),
            claims: TokenClaims {
                client_id: client_id.to_owned(),
                user_name: Some(user_name.to_owned()),
                zone_id: Some(zone_id.to_owned()),
            },
        }
    }

    /// Reads the credential that the request carries in one of the headers
    /// `names`. More than one such header, or a repeated one, gives
    /// [`Credential::Other`] with all of them.
    fn of(request: &RecordedRequest, names: &[&str]) -> Self {
        let found: Vec<(&str, String)> = names
            .iter()
            .flat_map(|name| {
                request
                    .header_values(name)
                    .into_iter()
                    .map(move |value| (*name, String::from_utf8_lossy(value).into_owned()))
            })
            .collect();
        let (header, value) = match found.as_slice() {
            [] => return Credential::None,
            [(header, value)] => ((*header).to_owned(), value.clone()),
            several => {
                return Credential::Other {
                    header: several
                        .iter()
                        .map(|(name, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    value: several
                        .iter()
                        .map(|(_, value)| value.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
            }
        };

        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            if let Some(decoded) = decoded {
                return Credential::Basic { header, decoded };
            }
        }
        if let Some(token) = value.strip_prefix("Bearer ")
            && let Some(claims) = jwt_claims(token)
        {
            return Credential::Bearer { header, claims };
        }
        Credential::Other { header, value }
    }
}

/// Decodes the identifying claims of a JWT without verifying it. Returns
/// `None` if it is no JWT or has neither `client_id` nor `cid`.
fn jwt_claims(token: &str) -> Option<TokenClaims> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let text = |name: &str| claims[name].as_str().map(str::to_owned);
    Some(TokenClaims {
        client_id: text("client_id").or_else(|| text("cid"))?,
        user_name: text("user_name"),
        zone_id: text("zid"),
    })
}

/// The parts of a backend request that a destination determines.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    method: Method,
    /// The request target byte for byte: path and query, or the absolute
    /// URL that a client sends to a proxy.
    target: String,
    host: Option<String>,
    auth: Credential,
    proxy_auth: Credential,
    /// `SAP-Connectivity-Authentication`: the user whom the Cloud Connector
    /// propagates (`PrincipalPropagation`).
    principal: Credential,
    /// `SAP-Connectivity-Technical-Authentication`: the technical user's
    /// token (`OAuth2TechnicalUserPropagation`).
    technical: Credential,
    /// Every other header except [`CLIENT_HEADERS`], with its value.
    headers: BTreeMap<String, String>,
}

impl Sent {
    fn of(request: &RecordedRequest) -> Self {
        let headers = request
            .header_names()
            .into_iter()
            .filter(|name| {
                *name != "host"
                    && *name != "proxy-authorization"
                    && *name != PRINCIPAL_HEADER
                    && *name != TECHNICAL_USER_HEADER
                    && !AUTH_HEADERS.contains(name)
                    && !CLIENT_HEADERS.contains(name)
            })
            .map(|name| {
                let values: Vec<String> = request
                    .header_values(name)
                    .into_iter()
                    .map(|value| String::from_utf8_lossy(value).into_owned())
                    .collect();
                (name.to_owned(), values.join(", "))
            })
            .collect();
        Sent {
            method: request.method.clone(),
            target: request.target.clone(),
            host: request.header("host"),
            auth: Credential::of(request, &AUTH_HEADERS),
            proxy_auth: Credential::of(request, &["proxy-authorization"]),
            principal: Credential::of(request, &[PRINCIPAL_HEADER]),
            technical: Credential::of(request, &[TECHNICAL_USER_HEADER]),
            headers,
        }
    }
}

/// Builds the expected request for a plain GET without credentials.
fn get_request(host: &str, target: impl Into<String>) -> Sent {
    Sent {
        method: Method::GET,
        target: target.into(),
        host: Some(host.to_owned()),
        auth: Credential::None,
        proxy_auth: Credential::None,
        principal: Credential::None,
        technical: Credential::None,
        headers: BTreeMap::new(),
    }
}

impl Sent {
    fn with_auth(mut self, auth: Credential) -> Self {
        self.auth = auth;
        self
    }

    fn with_proxy_auth(mut self, auth: Credential) -> Self {
        self.proxy_auth = auth;
        self
    }

    fn with_principal(mut self, principal: Credential) -> Self {
        self.principal = principal;
        self
    }

    fn with_technical(mut self, technical: Credential) -> Self {
        self.technical = technical;
        self
    }

    fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }
}

// --- Cases ---

/// What one client does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The request reaches the backend directly.
    Backend(Sent),
    /// The request goes to the proxy recorder.
    Proxy(Sent),
    /// The gateway responds itself with this status and error code.
    GatewayError(StatusCode, &'static str),
    /// The SDK throws an error whose message contains this text.
    SdkError(&'static str),
}

#[derive(Debug, Clone)]
struct Case {
    destination: &'static str,
    path: String,
    /// A user JWT: the SDK gets it as `jwt`, the gateway as the caller's
    /// `Authorization: Bearer` header.
    jwt: Option<String>,
    /// A refresh token: the SDK gets it as `refreshToken`, the gateway as
    /// the caller's `X-Refresh-Token` header.
    refresh_token: Option<String>,
    gateway: Outcome,
    sdk: Outcome,
}

impl Case {
    /// Creates a request that both clients must send identically.
    fn same(destination: &'static str, path: &str, sent: Sent) -> Self {
        Case {
            destination,
            path: path.to_owned(),
            jwt: None,
            refresh_token: None,
            gateway: Outcome::Backend(sent.clone()),
            sdk: Outcome::Backend(sent),
        }
    }

    /// Creates a request that both clients must send identically through
    /// the Connectivity proxy.
    fn same_through_proxy(destination: &'static str, path: &str, sent: Sent) -> Self {
        Case::differs(
            destination,
            path,
            Outcome::Proxy(sent.clone()),
            Outcome::Proxy(sent),
        )
    }

    /// Creates a request where the two clients differ as documented.
    fn differs(destination: &'static str, path: &str, gateway: Outcome, sdk: Outcome) -> Self {
        Case {
            destination,
            path: path.to_owned(),
            jwt: None,
            refresh_token: None,
            gateway,
            sdk,
        }
    }

    fn with_jwt(mut self, jwt: &str) -> Self {
        self.jwt = Some(jwt.to_owned());
        self
    }

    fn with_refresh_token(mut self, refresh_token: &str) -> Self {
        self.refresh_token = Some(refresh_token.to_owned());
        self
    }
}

impl fmt::Display for Case {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {:?}", self.destination, self.path)?;
        if self.jwt.is_some() {
            formatter.write_str(" with a user JWT")?;
        }
        if self.refresh_token.is_some() {
            formatter.write_str(" with a refresh token")?;
        }
        Ok(())
    }
}

/// What one client actually did with one case.
#[derive(Debug)]
enum Observed {
    Backend(RecordedRequest),
    Proxy(RecordedRequest),
    GatewayError(StatusCode, String),
    SdkError(String),
}

// --- Running the gateway and the SDK ---

/// The emulator and the two recorders that both clients use: the backend
/// and the proxy.
struct Stack {
    backend: Recorder,
    proxy: Recorder,
    emulator: Emulator,
    /// The emulator's token endpoint over HTTPS, for the SDK's token
    /// requests for a zone.
    xsuaa_front: TlsFront,
}

impl Stack {
    /// Starts the recorders and an emulator with `destinations` on the
    /// provider's service instance.
    async fn start(destinations: impl FnOnce(&str) -> Vec<Destination>) -> Stack {
        Stack::start_with(|backend_url| EmulatorConfig {
            instance_destinations: destinations(backend_url),
            ..EmulatorConfig::default()
        })
        .await
    }

    /// Starts the recorders and an emulator with the configuration that
    /// `configure` builds for the backend URL. The clients of every test
    /// replace the configuration's `clients`.
    async fn start_with(configure: impl FnOnce(&str) -> EmulatorConfig) -> Stack {
        let backend = Recorder::start()
            .await
            .unwrap_or_else(|error| panic!("recorder: {error}"));
        let proxy = Recorder::start()
            .await
            .unwrap_or_else(|error| panic!("proxy recorder: {error}"));
        let config = EmulatorConfig {
            clients: vec![
                ClientConfig::new(CLIENT_ID, CLIENT_SECRET),
                ClientConfig::new(BACKEND_CLIENT_ID, BACKEND_CLIENT_SECRET),
                ClientConfig::new(CONNECTIVITY_CLIENT_ID, CONNECTIVITY_CLIENT_SECRET),
                ClientConfig::new(USER_APP_CLIENT_ID, USER_APP_CLIENT_SECRET),
            ],
            ..configure(backend.url())
        };
        let emulator = Emulator::start(config)
            .await
            .unwrap_or_else(|error| panic!("emulator: {error}"));
        let xsuaa_front = TlsFront::start(emulator.local_addr()).await;
        Stack {
            backend,
            proxy,
            emulator,
            xsuaa_front,
        }
    }

    /// `VCAP_SERVICES` with the emulator's Destination service binding and a
    /// Connectivity service binding whose on-premise proxy is the proxy
    /// recorder. The `uaadomain` of both names the [`TlsFront`].
    fn vcap_services(&self) -> String {
        self.bindings().to_string()
    }

    /// [`Stack::vcap_services`] plus an xsuaa binding of the application
    /// client, so that the gateway validates the caller's JWT and
    /// propagates it.
    fn vcap_services_with_xsuaa(&self) -> String {
        let mut vcap = self.bindings();
        vcap["xsuaa"] = json!([self.emulator.xsuaa_binding(
            USER_APP_CLIENT_ID,
            USER_APP_CLIENT_SECRET,
            USER_APP_XSAPPNAME,
        )]);
        vcap.to_string()
    }

    fn bindings(&self) -> Value {
        let mut vcap = self.emulator.vcap_services(CLIENT_ID, CLIENT_SECRET);
        let uaadomain = self.xsuaa_front.authority.as_str();
        vcap["destination"][0]["credentials"]["uaadomain"] = json!(uaadomain);
        let proxy_port = self
            .proxy
            .authority()
            .rsplit_once(':')
            .map(|(_, port)| port.to_owned())
            .unwrap_or_default();
        let emulator_url = self.emulator.url();
        vcap["connectivity"] = json!([{
            "label": "connectivity",
            "plan": "lite",
            "name": "connectivity",
            "tags": ["connectivity", "conn", "connsvc"],
            "credentials": {
                "clientid": CONNECTIVITY_CLIENT_ID,
                "clientsecret": CONNECTIVITY_CLIENT_SECRET,
                "url": emulator_url,
                "token_service_url": emulator_url,
                "uaadomain": uaadomain,
                "onpremise_proxy_host": "127.0.0.1",
                "onpremise_proxy_http_port": proxy_port,
                "onpremise_proxy_port": proxy_port,
                "onpremise_socks5_proxy_port": "0",
            },
        }]);
        vcap
    }

    /// Creates a user JWT of the application client for `user_name`, in the
    /// provider's zone or in `zone_id`, as the approuter would pass it on.
    fn user_jwt(&self, user_name: &str, zone_id: Option<&str>) -> String {
        let spec = UserTokenSpec::new(user_name, USER_APP_CLIENT_ID);
        let spec = match zone_id {
            Some(zone_id) => spec.in_zone(zone_id),
            None => spec,
        };
        self.emulator.user_token(&spec)
    }

    /// Fetches a client-credentials token of the application client: a JWT
    /// without a user.
    async fn app_client_jwt(&self) -> String {
        let reply = self
            .request_token(
                USER_APP_CLIENT_ID,
                USER_APP_CLIENT_SECRET,
                &[("grant_type", "client_credentials")],
            )
            .await;
        reply["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {reply}"))
            .to_owned()
    }

    /// Fetches a refresh token of the provider user for the backend client,
    /// with the password grant, as an application would keep it from the
    /// user's login at the backend's token service.
    async fn backend_refresh_token(&self) -> String {
        let reply = self
            .request_token(
                BACKEND_CLIENT_ID,
                BACKEND_CLIENT_SECRET,
                &[
                    ("grant_type", "password"),
                    ("username", PROVIDER_USER),
                    ("password", PROVIDER_USER_PASSWORD),
                ],
            )
            .await;
        reply["refresh_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no refresh_token in {reply}"))
            .to_owned()
    }

    /// Posts a token request with HTTP Basic client authentication to the
    /// emulator's token endpoint and returns the JSON reply.
    async fn request_token(&self, client_id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let credentials = STANDARD.encode(format!("{client_id}:{secret}"));
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.emulator.token_url())
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|error| panic!("{error}"));
        let exchange = async {
            let response = client.request(request).await?;
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(serde_json::from_slice::<Value>(&body)?)
        };
        tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .unwrap_or_else(|_| panic!("the emulator sent no token within 30 seconds"))
            .unwrap_or_else(|error| panic!("token request failed: {error}"))
    }

    /// Takes what the recorders received for one request of one client.
    fn take_one(&self, client: &str, case: &Case) -> Option<Observed> {
        let mut backend = self.backend.take();
        let mut proxy = self.proxy.take();
        assert!(
            backend.len() + proxy.len() <= 1,
            "{case}: the {client} sent more than one request: backend {backend:#?}, proxy {proxy:#?}"
        );
        backend
            .pop()
            .map(Observed::Backend)
            .or_else(|| proxy.pop().map(Observed::Proxy))
    }
}

/// An HTTPS listener on 127.0.0.1 that passes every connection, decrypted,
/// to the emulator's HTTP listener.
///
/// `@sap/xssec` 4.15.0 sends a token request for a zone (`x-zid`) to
/// `https://{uaadomain}/oauth/token`, always over HTTPS, and the SDK
/// requests tokens for a zone whenever it has a JWT. The emulator serves HTTP only, so the
/// bindings' `uaadomain` names this listener, and the Node process trusts
/// its CA through `NODE_EXTRA_CA_CERTS`.
struct TlsFront {
    /// `127.0.0.1:PORT`.
    authority: String,
    /// The CA certificate as a PEM file.
    ca_file: PathBuf,
    _dir: TempDir,
    accept_task: JoinHandle<()>,
}

impl TlsFront {
    async fn start(target: SocketAddr) -> TlsFront {
        let ca = TestCa::new("sdk-compare XSUAA CA").unwrap_or_else(|error| panic!("{error}"));
        let server = ca
            .server_certificate("127.0.0.1")
            .unwrap_or_else(|error| panic!("{error}"));
        let chain = vec![CertificateDer::from(server.certificate_der().to_vec())];
        let key = PrivateKeyDer::from_pem_slice(server.private_key_pem().as_bytes())
            .unwrap_or_else(|error| panic!("{error}"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
            .unwrap_or_else(|error| panic!("TLS front configuration: {error}"));
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let dir = TempDir::new().unwrap_or_else(|error| panic!("{error}"));
        let ca_file = dir.path().join("xsuaa-ca.pem");
        std::fs::write(&ca_file, ca.certificate_pem()).unwrap_or_else(|error| panic!("{error}"));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|error| panic!("TLS front: {error}"));
        let authority = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("TLS front: {error}"))
            .to_string();
        let accept_task = tokio::spawn(pass_to(listener, acceptor, target));
        TlsFront {
            authority,
            ca_file,
            _dir: dir,
            accept_task,
        }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Accepts TLS connections until the listener fails or the task is aborted,
/// which also aborts the open connections.
async fn pass_to(listener: TcpListener, acceptor: TlsAcceptor, target: SocketAddr) {
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(mut tls)) = handshake.await else {
                return;
            };
            let Ok(mut plain) = TcpStream::connect(target).await else {
                return;
            };
            // The copy ends when either side closes, and its error is not needed.
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}

/// Sends every case through the gateway, one at a time, and returns what
/// happened to each.
async fn run_gateway(stack: &Stack, env: &[(&str, &str)], cases: &[Case]) -> Vec<Observed> {
    let dir = TempDir::new().unwrap_or_else(|error| panic!("{error}"));
    let gateway = Gateway::start(env, dir.path()).unwrap_or_else(|error| panic!("{error}"));
    let mut observed = Vec::with_capacity(cases.len());
    for case in cases {
        let url = format!("{}/odata/{}{}", gateway.url(), case.destination, case.path);
        let bearer = case.jwt.as_ref().map(|jwt| format!("Bearer {jwt}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        if let Some(refresh_token) = &case.refresh_token {
            headers.push(("x-refresh-token", refresh_token));
        }
        let response = get(&url, &headers)
            .await
            .unwrap_or_else(|error| panic!("{case}: {url}: {error}"));

        let recorded = stack.take_one("gateway", case);
        if response.status == StatusCode::OK {
            let recorded = recorded.unwrap_or_else(|| {
                panic!(
                    "{case}: the gateway responded with 200 but no backend request was recorded; log:\n{}",
                    gateway.log()
                )
            });
            observed.push(recorded);
        } else {
            assert!(
                recorded.is_none(),
                "{case}: the gateway responded with {} but also sent {recorded:#?}",
                response.status
            );
            let code = response.json()["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            observed.push(Observed::GatewayError(response.status, code));
        }
    }
    observed
}

/// One line of the Node script's output for one request.
#[derive(Debug, Deserialize)]
struct SdkResult {
    index: usize,
    status: Option<u16>,
    error: Option<String>,
}

/// Sends every case through the SAP Cloud SDK in one Node process and
/// returns what happened to each.
async fn run_sdk(stack: &Stack, env: &[(&str, &str)], cases: &[Case]) -> Vec<Observed> {
    let job = json!({
        "requests": cases
            .iter()
            .map(|case| {
                let mut request = json!({ "destinationName": case.destination, "path": case.path });
                if let Some(jwt) = &case.jwt {
                    request["jwt"] = Value::String(jwt.clone());
                }
                if let Some(refresh_token) = &case.refresh_token {
                    request["refreshToken"] = Value::String(refresh_token.clone());
                }
                request
            })
            .collect::<Vec<_>>(),
    });
    let ca_file = stack.xsuaa_front.ca_file.display().to_string();
    let mut node_env = env.to_vec();
    node_env.push(("NODE_EXTRA_CA_CERTS", &ca_file));
    let (results, blocked, output) = run_node(&node_env, &job).await;
    assert_eq!(
        blocked,
        Vec::<String>::new(),
        "the SDK tried to connect to hosts other than 127.0.0.1; output:\n{output}"
    );
    assert_eq!(
        results.len(),
        cases.len(),
        "the SDK script printed {} results for {} requests; output:\n{output}",
        results.len(),
        cases.len()
    );

    // The script sends one request at a time, so the recorders hold the
    // SDK's requests in the order of the cases.
    let mut backend: VecDeque<RecordedRequest> = stack.backend.take().into();
    let mut proxy: VecDeque<RecordedRequest> = stack.proxy.take().into();
    let mut observed = Vec::with_capacity(cases.len());
    for (case, result) in cases.iter().zip(&results) {
        if let Some(error) = &result.error {
            observed.push(Observed::SdkError(error.clone()));
            continue;
        }
        assert_eq!(
            result.status,
            Some(200),
            "{case}: the SDK got no error but status {:?}; output:\n{output}",
            result.status
        );
        let recorded = match &case.sdk {
            Outcome::Proxy(_) => proxy.pop_front().map(Observed::Proxy),
            _ => backend.pop_front().map(Observed::Backend),
        };
        observed.push(recorded.unwrap_or_else(|| {
            panic!(
                "{case}: the SDK reported 200 but no request is left where expected \
                 (backend {backend:#?}, proxy {proxy:#?}); output:\n{output}"
            )
        }));
    }
    assert!(
        backend.is_empty() && proxy.is_empty(),
        "the SDK sent requests that no case accounts for: backend {backend:#?}, proxy {proxy:#?}"
    );
    observed
}

/// Runs `tests/sdk-compare/run-requests.js` with exactly `env` (plus `PATH`)
/// and returns the per-request results, the connections the script
/// rejected, and its whole output for messages.
async fn run_node(env: &[(&str, &str)], job: &Value) -> (Vec<SdkResult>, Vec<String>, String) {
    let dir = sdk_compare_dir();
    let mut command = tokio::process::Command::new("node");
    command
        .arg("run-requests.js")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start node in {}: {error}", dir.display()));
    let mut stdin = child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("node has no stdin"));
    stdin
        .write_all(job.to_string().as_bytes())
        .await
        .unwrap_or_else(|error| panic!("cannot write the job to node: {error}"));
    drop(stdin);

    // On timeout the child is dropped, and kill_on_drop ends it.
    let output = tokio::time::timeout(SDK_JOB_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the SDK script did not finish within {SDK_JOB_TIMEOUT:?}"))
        .unwrap_or_else(|error| panic!("cannot read the SDK script's output: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let text = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        output.status.success(),
        "the SDK script failed with {}; {text}",
        output.status
    );

    let mut results = Vec::new();
    let mut blocked = None;
    for line in stdout.lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if value.get("index").is_some() {
            let result: SdkResult = serde_json::from_value(value)
                .unwrap_or_else(|error| panic!("unexpected result line {line}: {error}"));
            assert_eq!(result.index, results.len(), "results out of order; {text}");
            results.push(result);
        } else if value.get("done").is_some() {
            blocked = Some(
                value["blockedConnections"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|host| host.as_str().unwrap_or_default().to_owned())
                    .collect(),
            );
        }
    }
    let blocked = blocked.unwrap_or_else(|| panic!("the SDK script did not finish; {text}"));
    (results, blocked, text)
}

/// The npm project with the SDK, which must have been installed.
fn sdk_compare_dir() -> PathBuf {
    let dir = workspace_root().join("tests/sdk-compare");
    assert!(
        dir.join("node_modules/@sap-cloud-sdk/http-client").is_dir(),
        "the SAP Cloud SDK is not installed in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

// --- Comparing ---

/// Checks what each client did against the case, field by field.
fn compare(cases: &[Case], gateway: &[Observed], sdk: &[Observed]) {
    for ((case, gateway), sdk) in cases.iter().zip(gateway).zip(sdk) {
        check_outcome(case, "gateway", &case.gateway, gateway);
        check_outcome(case, "SDK", &case.sdk, sdk);
    }
}

fn check_outcome(case: &Case, client: &str, expected: &Outcome, observed: &Observed) {
    match (expected, observed) {
        (Outcome::Backend(expected), Observed::Backend(request))
        | (Outcome::Proxy(expected), Observed::Proxy(request)) => {
            check_sent(case, client, expected, &Sent::of(request));
        }
        (Outcome::GatewayError(status, code), Observed::GatewayError(actual, actual_code)) => {
            assert_eq!(actual, status, "{case}: gateway status");
            assert_eq!(actual_code, code, "{case}: gateway error code");
        }
        (Outcome::SdkError(text), Observed::SdkError(message)) => {
            assert!(
                message.contains(text),
                "{case}: the SDK error should contain {text:?}: {message}"
            );
        }
        _ => panic!("{case}: the {client} should give {expected:#?} but gave {observed:#?}"),
    }
}

/// Asserts one field at a time, so that a failure names the field.
fn check_sent(case: &Case, client: &str, expected: &Sent, actual: &Sent) {
    let other = if client == "gateway" {
        &case.sdk
    } else {
        &case.gateway
    };
    let context =
        format!("{case}: the {client} sent {actual:#?}\nexpected for the other client: {other:#?}");
    assert_eq!(actual.method, expected.method, "method; {context}");
    assert_eq!(actual.target, expected.target, "target; {context}");
    assert_eq!(actual.host, expected.host, "host header; {context}");
    assert_eq!(
        actual.auth, expected.auth,
        "authentication header; {context}"
    );
    assert_eq!(
        actual.proxy_auth, expected.proxy_auth,
        "proxy-authorization; {context}"
    );
    assert_eq!(
        actual.principal, expected.principal,
        "{PRINCIPAL_HEADER}; {context}"
    );
    assert_eq!(
        actual.technical, expected.technical,
        "{TECHNICAL_USER_HEADER}; {context}"
    );
    assert_eq!(actual.headers, expected.headers, "other headers; {context}");
}

// --- Destinations from the Destination service ---

/// Builds destinations of every kind the comparison covers, all pointing at the
/// backend recorder.
fn service_destinations(backend_url: &str) -> Vec<Destination> {
    let token_url = "${EMULATOR_URL}/oauth/token";
    let oauth = |name: &str, secret: &str| {
        Destination::oauth2_client_credentials(
            name,
            backend_url,
            token_url,
            BACKEND_CLIENT_ID,
            secret,
        )
    };
    vec![
        Destination::no_authentication("NO_AUTH", backend_url),
        Destination::basic("BASIC", backend_url, BASIC_USER, BASIC_PASSWORD),
        oauth("OAUTH", BACKEND_CLIENT_SECRET),
        oauth("OAUTH_HEADER_KEY", BACKEND_CLIENT_SECRET)
            .with_property("Emulator.HttpHeaderKey", "X-Backend-Authorization"),
        oauth("OAUTH_BROKEN", "wrong-secret"),
        Destination::no_authentication("SAP_CLIENT", backend_url)
            .with_property("sap-client", "100"),
        Destination::no_authentication("URL_PROPERTIES", backend_url)
            .with_property("URL.headers.x-custom", "custom-value")
            .with_property("URL.queries.sap-language", "EN"),
        Destination::no_authentication("BASE_PATH", format!("{backend_url}{BASE_PATH}")),
        Destination::no_authentication("BASE_PATH_SLASH", format!("{backend_url}{BASE_PATH}/")),
        Destination::no_authentication("FORWARD_TOKEN", backend_url)
            .with_property("forwardAuthToken", "true"),
        Destination::no_authentication("ON_PREMISE", format!("{backend_url}{BASE_PATH}"))
            .with_property("ProxyType", "OnPremise")
            .with_property("CloudConnectorLocationId", SCC_LOCATION_ID),
    ]
}

fn service_cases(host: &str, backend_url: &str, user_jwt: &str) -> Vec<Case> {
    let plain = |target: &str| get_request(host, target);
    let on_base = |suffix: &str| plain(&format!("{BASE_PATH}{suffix}"));
    let backend = |sent: Sent| Outcome::Backend(sent);
    let misconfigured = Outcome::GatewayError(StatusCode::BAD_GATEWAY, "DestinationMisconfigured");

    vec![
        // Path and query byte for byte.
        Case::same(
            "NO_AUTH",
            "/Books?$top=3&$select=ID,title",
            plain("/Books?$top=3&$select=ID,title"),
        ),
        Case::same("NO_AUTH", "/Books('A%2FB''1')", plain("/Books('A%2FB''1')")),
        Case::same(
            "NO_AUTH",
            "/Books?$filter=title%20eq%20%27O%27%27Brien%27%27s%20Stra%C3%9Fe%27",
            plain("/Books?$filter=title%20eq%20%27O%27%27Brien%27%27s%20Stra%C3%9Fe%27"),
        ),
        Case::same("NO_AUTH", "/$metadata", plain("/$metadata")),
        Case::same(
            "NO_AUTH",
            "/Books?$search=blue+green",
            plain("/Books?$search=blue+green"),
        ),
        // Both drop an empty query, `?` included.
        Case::same("NO_AUTH", "/Books?", plain("/Books")),
        Case::same("NO_AUTH", "/", plain("/")),
        Case::same("NO_AUTH", "", plain("/")),
        Case::same(
            "NO_AUTH",
            "/Books('%7Bx%7D')?$orderby=title%20desc",
            plain("/Books('%7Bx%7D')?$orderby=title%20desc"),
        ),
        // axios takes a URL that starts with `//` as absolute, protocol-relative
        // URL, so the SDK does not join it to the destination URL.
        Case::differs(
            "NO_AUTH",
            "//Books",
            backend(plain("//Books")),
            Outcome::SdkError("Invalid URL"),
        ),
        // The SDK parses the URL with the WHATWG URL parser, which
        // percent-encodes `'` in the query of http URLs.
        Case::differs(
            "NO_AUTH",
            "/Books?$filter=ID%20eq%20'A'",
            backend(plain("/Books?$filter=ID%20eq%20'A'")),
            backend(plain("/Books?$filter=ID%20eq%20%27A%27")),
        ),
        // The WHATWG URL parser also removes dot segments.
        Case::differs(
            "NO_AUTH",
            "/Books/./x/../Authors",
            backend(plain("/Books/./x/../Authors")),
            backend(plain("/Books/Authors")),
        ),
        // The caller's token is not used for a NoAuthentication destination,
        // so both send the same request.
        Case::same("NO_AUTH", "/Books?$top=1", plain("/Books?$top=1")).with_jwt(user_jwt),
        // Authentication.
        Case::same(
            "BASIC",
            "/Books?$top=1",
            plain("/Books?$top=1").with_auth(Credential::basic(BASIC_USER, BASIC_PASSWORD)),
        ),
        Case::same(
            "OAUTH",
            "/Books?$top=1",
            plain("/Books?$top=1")
                .with_auth(Credential::bearer("authorization", BACKEND_CLIENT_ID)),
        ),
        Case::same(
            "OAUTH",
            "/Books?$top=2",
            plain("/Books?$top=2")
                .with_auth(Credential::bearer("authorization", BACKEND_CLIENT_ID)),
        )
        .with_jwt(user_jwt),
        // The SDK always sends an auth token as `Authorization` and ignores
        // `http_header.key`.
        Case::differs(
            "OAUTH_HEADER_KEY",
            "/Books?$top=1",
            backend(plain("/Books?$top=1").with_auth(Credential::bearer(
                "x-backend-authorization",
                BACKEND_CLIENT_ID,
            ))),
            backend(
                plain("/Books?$top=1")
                    .with_auth(Credential::bearer("authorization", BACKEND_CLIENT_ID)),
            ),
        ),
        Case::differs(
            "OAUTH_BROKEN",
            "/Books?$top=1",
            misconfigured.clone(),
            Outcome::SdkError("Retrieval of OAuth2 access token failed"),
        ),
        Case::differs(
            "NO_SUCH_DESTINATION",
            "/Books",
            Outcome::GatewayError(StatusCode::NOT_FOUND, "DestinationNotFound"),
            Outcome::SdkError("NO_SUCH_DESTINATION"),
        ),
        // sap-client: the gateway sends the header, as the SDK does, and
        // the query parameter, as the approuter does.
        Case::differs(
            "SAP_CLIENT",
            "/Books?$top=1",
            backend(plain("/Books?$top=1&sap-client=100").with_header("sap-client", "100")),
            backend(plain("/Books?$top=1").with_header("sap-client", "100")),
        ),
        Case::differs(
            "SAP_CLIENT",
            "/Books?sap-client=200",
            backend(plain("/Books?sap-client=200")),
            backend(plain("/Books?sap-client=200").with_header("sap-client", "100")),
        ),
        // URL.headers.* and URL.queries.*.
        Case::same(
            "URL_PROPERTIES",
            "/Books?$top=1",
            plain("/Books?$top=1&sap-language=EN").with_header("x-custom", "custom-value"),
        ),
        Case::same(
            "URL_PROPERTIES",
            "/Books",
            plain("/Books?sap-language=EN").with_header("x-custom", "custom-value"),
        ),
        // The gateway keeps a parameter the request already has; the SDK
        // appends the destination's value as well.
        Case::differs(
            "URL_PROPERTIES",
            "/Books?sap-language=DE",
            backend(plain("/Books?sap-language=DE").with_header("x-custom", "custom-value")),
            backend(
                plain("/Books?sap-language=DE&sap-language=EN")
                    .with_header("x-custom", "custom-value"),
            ),
        ),
        // The destination URL's path comes first.
        Case::same(
            "BASE_PATH",
            "/A_BusinessPartner?$top=1",
            on_base("/A_BusinessPartner?$top=1"),
        ),
        Case::same("BASE_PATH", "/", on_base("/")),
        Case::same("BASE_PATH", "", on_base("")),
        Case::same(
            "BASE_PATH_SLASH",
            "/A_BusinessPartner",
            on_base("/A_BusinessPartner"),
        ),
        // forwardAuthToken: the SDK forwards the user JWT it is given. The
        // gateway forwards only a token it validated, and this gateway has
        // no xsuaa binding to validate one with.
        Case::differs(
            "FORWARD_TOKEN",
            "/Books",
            misconfigured.clone(),
            backend(plain("/Books").with_auth(Credential::user_bearer(
                "authorization",
                USER_APP_CLIENT_ID,
                PROVIDER_USER,
                DEFAULT_SUBACCOUNT_ID,
            ))),
        )
        .with_jwt(user_jwt),
        // ProxyType OnPremise: both go through the Connectivity service's
        // proxy, with its token and the Cloud Connector location.
        Case::same_through_proxy(
            "ON_PREMISE",
            "/A_BusinessPartner?$top=1",
            get_request(
                host,
                format!("{backend_url}{BASE_PATH}/A_BusinessPartner?$top=1"),
            )
            .with_proxy_auth(Credential::bearer(
                "proxy-authorization",
                CONNECTIVITY_CLIENT_ID,
            ))
            .with_header("sap-connectivity-scc-location_id", SCC_LOCATION_ID),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn service_destinations_match_sdk() {
    sdk_compare_dir();
    let stack = Stack::start(service_destinations).await;
    let host = stack.backend.authority().to_owned();
    let user_jwt = stack.user_jwt(PROVIDER_USER, None);
    let cases = service_cases(&host, stack.backend.url(), &user_jwt);
    let vcap = stack.vcap_services();
    let env = [("VCAP_SERVICES", vcap.as_str())];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;

    compare(&cases, &gateway, &sdk);
}

// --- User-based destinations, with an xsuaa binding ---

/// Builds the emulator configuration for the comparison with a logged-in
/// user: a destination of every authentication type that needs the
/// caller's user or the Connectivity service, a subscriber tenant with
/// destinations of its own, and the users of the password grants.
fn user_config(backend_url: &str) -> EmulatorConfig {
    let token_url = "${EMULATOR_URL}/oauth/token";
    let oauth = |name: &str, authentication: &str| {
        Destination::oauth2_client_credentials(
            name,
            backend_url,
            token_url,
            BACKEND_CLIENT_ID,
            BACKEND_CLIENT_SECRET,
        )
        .with_property("Authentication", authentication)
    };
    let on_premise = |name: &str, authentication: &str| {
        Destination::no_authentication(name, format!("{backend_url}{BASE_PATH}"))
            .with_property("Authentication", authentication)
            .with_property("ProxyType", "OnPremise")
            .with_property("CloudConnectorLocationId", SCC_LOCATION_ID)
    };
    let shared = |owner: &str| {
        Destination::no_authentication("SHARED", backend_url)
            .with_property("URL.headers.x-owner", owner)
    };

    EmulatorConfig {
        users: vec![
            UserConfig::new(PROVIDER_USER, PROVIDER_USER_PASSWORD),
            UserConfig::new(TECHNICAL_USER, TECHNICAL_USER_PASSWORD),
        ],
        instance_destinations: vec![
            Destination::no_authentication("NO_AUTH", backend_url),
            shared("provider"),
            Destination::no_authentication("PROVIDER_ONLY", backend_url),
            oauth("PASSWORD", "OAuth2Password")
                .with_property("User", TECHNICAL_USER)
                .with_property("Password", TECHNICAL_USER_PASSWORD),
            oauth("TOKEN_EXCHANGE", "OAuth2UserTokenExchange"),
            oauth("JWT_BEARER", "OAuth2JWTBearer"),
            oauth("REFRESH", "OAuth2RefreshToken"),
            Destination::no_authentication("SAML", backend_url)
                .with_property("Authentication", "OAuth2SAMLBearerAssertion")
                .with_property("tokenServiceURL", token_url)
                .with_property("clientKey", BACKEND_CLIENT_ID)
                .with_property("tokenServiceUser", BACKEND_CLIENT_ID)
                .with_property("tokenServicePassword", BACKEND_CLIENT_SECRET)
                .with_property("audience", "backend"),
            on_premise("ON_PREMISE_TECHNICAL", "OAuth2TechnicalUserPropagation")
                .with_property("tokenServiceURL", token_url)
                .with_property("clientId", BACKEND_CLIENT_ID)
                .with_property("clientSecret", BACKEND_CLIENT_SECRET),
            on_premise("ON_PREMISE_PRINCIPAL", "PrincipalPropagation"),
            Destination::no_authentication("FORWARD_TOKEN", backend_url)
                .with_property("forwardAuthToken", "true"),
        ],
        tenants: vec![TenantConfig {
            subaccount_destinations: vec![
                shared(SUBSCRIBER_SUBDOMAIN),
                oauth("SUBSCRIBER_JWT_BEARER", "OAuth2JWTBearer"),
                on_premise("SUBSCRIBER_PRINCIPAL", "PrincipalPropagation"),
            ],
            ..TenantConfig::new(SUBSCRIBER_ZONE, SUBSCRIBER_SUBDOMAIN)
        }],
        ..EmulatorConfig::default()
    }
}

/// The tokens the user-based cases send.
struct UserTokens {
    /// The provider user's JWT.
    provider: String,
    /// The subscriber user's JWT.
    subscriber: String,
    /// A client-credentials JWT of the application client, without a user.
    app_client: String,
    /// The provider user's refresh token for the backend client.
    refresh: String,
}

fn provider_user_cases(host: &str, backend_url: &str, tokens: &UserTokens) -> Vec<Case> {
    let plain = |target: &str| get_request(host, target);
    let misconfigured = Outcome::GatewayError(StatusCode::BAD_GATEWAY, "DestinationMisconfigured");
    let as_user = |user: &str| {
        Credential::user_bearer(
            "authorization",
            BACKEND_CLIENT_ID,
            user,
            DEFAULT_SUBACCOUNT_ID,
        )
    };
    let caller = Credential::user_bearer(
        "authorization",
        USER_APP_CLIENT_ID,
        PROVIDER_USER,
        DEFAULT_SUBACCOUNT_ID,
    );
    let through_proxy = get_request(
        host,
        format!("{backend_url}{BASE_PATH}/A_BusinessPartner?$top=1"),
    )
    .with_proxy_auth(Credential::bearer(
        "proxy-authorization",
        CONNECTIVITY_CLIENT_ID,
    ))
    .with_header("sap-connectivity-scc-location_id", SCC_LOCATION_ID);
    let jwt = tokens.provider.as_str();

    vec![
        // The gateway validates the caller's token and does not pass it on.
        Case::same("NO_AUTH", "/Books", plain("/Books")).with_jwt(jwt),
        Case::same(
            "PASSWORD",
            "/Books",
            plain("/Books").with_auth(as_user(TECHNICAL_USER)),
        )
        .with_jwt(jwt),
        Case::same(
            "TOKEN_EXCHANGE",
            "/Books",
            plain("/Books").with_auth(as_user(PROVIDER_USER)),
        )
        .with_jwt(jwt),
        Case::same(
            "JWT_BEARER",
            "/Books",
            plain("/Books").with_auth(as_user(PROVIDER_USER)),
        )
        .with_jwt(jwt),
        Case::same(
            "SAML",
            "/Books",
            plain("/Books").with_auth(as_user(PROVIDER_USER)),
        )
        .with_jwt(jwt),
        // OAuth2RefreshToken without a refresh token: the SDK throws
        // before it requests the token from the Destination service. The
        // gateway requests it, and the service's auth token has an error.
        Case::differs(
            "REFRESH",
            "/Books",
            misconfigured.clone(),
            Outcome::SdkError("No refresh token has been provided"),
        )
        .with_jwt(jwt),
        Case::same(
            "REFRESH",
            "/Books?$top=1",
            plain("/Books?$top=1").with_auth(as_user(PROVIDER_USER)),
        )
        .with_jwt(jwt)
        .with_refresh_token(&tokens.refresh),
        // Both cache the destination with its token per tenant and user,
        // so the same user needs no refresh token while the entry lasts.
        Case::same(
            "REFRESH",
            "/Books?$top=2",
            plain("/Books?$top=2").with_auth(as_user(PROVIDER_USER)),
        )
        .with_jwt(jwt),
        // The SDK does not support OAuth2TechnicalUserPropagation. The
        // gateway sends the auth token in the header that it names.
        Case::differs(
            "ON_PREMISE_TECHNICAL",
            "/A_BusinessPartner?$top=1",
            Outcome::Proxy(
                through_proxy
                    .clone()
                    .with_technical(Credential::bearer(TECHNICAL_USER_HEADER, BACKEND_CLIENT_ID)),
            ),
            Outcome::SdkError("not supported by the SAP Cloud SDK"),
        )
        .with_jwt(jwt),
        Case::same_through_proxy(
            "ON_PREMISE_PRINCIPAL",
            "/A_BusinessPartner?$top=1",
            through_proxy
                .clone()
                .with_principal(Credential::user_bearer(
                    PRINCIPAL_HEADER,
                    USER_APP_CLIENT_ID,
                    PROVIDER_USER,
                    DEFAULT_SUBACCOUNT_ID,
                )),
        )
        .with_jwt(jwt),
        // A JWT without a user: the gateway rejects principal propagation
        // before it sends anything. The SDK sends the client's token as the
        // principal.
        Case::differs(
            "ON_PREMISE_PRINCIPAL",
            "/A_BusinessPartner?$top=1",
            misconfigured,
            Outcome::Proxy(
                through_proxy
                    .with_principal(Credential::bearer(PRINCIPAL_HEADER, USER_APP_CLIENT_ID)),
            ),
        )
        .with_jwt(&tokens.app_client),
        // With an xsuaa binding, the gateway forwards the validated token.
        Case::same("FORWARD_TOKEN", "/Books", plain("/Books").with_auth(caller)).with_jwt(jwt),
    ]
}

fn subscriber_user_cases(host: &str, backend_url: &str, tokens: &UserTokens) -> Vec<Case> {
    let plain = |target: &str| get_request(host, target);
    let subscriber_user = |header: &str, client_id: &str| {
        Credential::user_bearer(header, client_id, SUBSCRIBER_USER, SUBSCRIBER_ZONE)
    };
    let subscriber_proxy_token = Credential::client_bearer(
        "proxy-authorization",
        CONNECTIVITY_CLIENT_ID,
        SUBSCRIBER_ZONE,
    );
    // The proxy token differs by case and is set in each.
    let through_proxy = get_request(
        host,
        format!("{backend_url}{BASE_PATH}/A_BusinessPartner?$top=1"),
    )
    .with_principal(subscriber_user(PRINCIPAL_HEADER, USER_APP_CLIENT_ID))
    .with_header("sap-connectivity-scc-location_id", SCC_LOCATION_ID);
    let jwt = tokens.subscriber.as_str();

    vec![
        // Subscriber first: the subscriber's SHARED, not the provider's.
        Case::same(
            "SHARED",
            "/Books",
            plain("/Books").with_header("x-owner", SUBSCRIBER_SUBDOMAIN),
        )
        .with_jwt(jwt),
        // Provider fallback.
        Case::same("PROVIDER_ONLY", "/Books", plain("/Books")).with_jwt(jwt),
        Case::same(
            "SUBSCRIBER_JWT_BEARER",
            "/Books",
            plain("/Books").with_auth(subscriber_user("authorization", BACKEND_CLIENT_ID)),
        )
        .with_jwt(jwt),
        // A provider destination that exchanges the subscriber user's token:
        // the token stays in the user's zone.
        Case::same(
            "JWT_BEARER",
            "/Books",
            plain("/Books").with_auth(subscriber_user("authorization", BACKEND_CLIENT_ID)),
        )
        .with_jwt(jwt),
        // A subscriber's on-premise destination: both request the proxy
        // token in the subscriber's zone.
        Case::same_through_proxy(
            "SUBSCRIBER_PRINCIPAL",
            "/A_BusinessPartner?$top=1",
            through_proxy
                .clone()
                .with_proxy_auth(subscriber_proxy_token.clone()),
        )
        .with_jwt(jwt),
        // The provider's on-premise destination: the gateway requests the
        // proxy token in the zone of the destination, the SDK in the zone of
        // the user.
        Case::differs(
            "ON_PREMISE_PRINCIPAL",
            "/A_BusinessPartner?$top=1",
            Outcome::Proxy(through_proxy.clone().with_proxy_auth(Credential::bearer(
                "proxy-authorization",
                CONNECTIVITY_CLIENT_ID,
            ))),
            Outcome::Proxy(through_proxy.with_proxy_auth(subscriber_proxy_token)),
        )
        .with_jwt(jwt),
    ]
}

/// Starts the stack for the user-based comparison and creates its tokens.
async fn start_user_stack() -> (Stack, UserTokens) {
    let stack = Stack::start_with(user_config).await;
    let tokens = UserTokens {
        provider: stack.user_jwt(PROVIDER_USER, None),
        subscriber: stack.user_jwt(SUBSCRIBER_USER, Some(SUBSCRIBER_ZONE)),
        app_client: stack.app_client_jwt().await,
        refresh: stack.backend_refresh_token().await,
    };
    (stack, tokens)
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_user_destinations_match_sdk() {
    sdk_compare_dir();
    let (stack, tokens) = start_user_stack().await;
    let host = stack.backend.authority().to_owned();
    let cases = provider_user_cases(&host, stack.backend.url(), &tokens);
    let vcap = stack.vcap_services_with_xsuaa();
    let env = [("VCAP_SERVICES", vcap.as_str())];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;

    compare(&cases, &gateway, &sdk);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_user_destinations_match_sdk() {
    sdk_compare_dir();
    let (stack, tokens) = start_user_stack().await;
    let host = stack.backend.authority().to_owned();
    let cases = subscriber_user_cases(&host, stack.backend.url(), &tokens);
    let vcap = stack.vcap_services_with_xsuaa();
    let env = [("VCAP_SERVICES", vcap.as_str())];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;

    compare(&cases, &gateway, &sdk);
}

// --- Destinations from the `destinations` variable ---

/// Builds the same kinds of destination as [`service_destinations`] as
/// entries of the `destinations` variable. The entries use the approuter's
/// and the Cloud SDK's field names, and `LOCAL_SERVICE_NAMES` uses the
/// Destination service's property names.
fn local_destinations(backend_url: &str, token_url: &str) -> Value {
    json!([
        { "name": "LOCAL_NO_AUTH", "url": backend_url },
        {
            "name": "LOCAL_BASIC", "url": backend_url,
            "username": BASIC_USER, "password": BASIC_PASSWORD,
        },
        {
            "name": "LOCAL_OAUTH", "url": backend_url, "authentication": "OAuth2ClientCredentials",
            "tokenServiceUrl": token_url, "clientId": BACKEND_CLIENT_ID,
            "clientSecret": BACKEND_CLIENT_SECRET,
        },
        { "name": "LOCAL_SAP_CLIENT", "url": backend_url, "sapClient": "100" },
        {
            "name": "LOCAL_PROPERTIES", "url": backend_url,
            "headers": { "x-custom": "custom-value" },
            "queryParameters": { "sap-language": "EN" },
        },
        { "name": "LOCAL_BASE_PATH", "url": format!("{backend_url}{BASE_PATH}") },
        {
            "Name": "LOCAL_SERVICE_NAMES", "Type": "HTTP", "URL": backend_url,
            "Authentication": "BasicAuthentication", "User": BASIC_USER,
            "Password": BASIC_PASSWORD, "sap-client": "100",
            "URL.headers.x-custom": "custom-value", "URL.queries.sap-language": "EN",
        },
    ])
}

fn local_cases(host: &str) -> Vec<Case> {
    let plain = |target: &str| get_request(host, target);
    let backend = |sent: Sent| Outcome::Backend(sent);
    let basic = Credential::basic(BASIC_USER, BASIC_PASSWORD);

    vec![
        Case::same("LOCAL_NO_AUTH", "/Books?$top=1", plain("/Books?$top=1")),
        Case::same(
            "LOCAL_BASIC",
            "/Books?$top=1",
            plain("/Books?$top=1").with_auth(basic.clone()),
        ),
        // The SDK fetches no token for a destination from the variable: it
        // expects the entry to carry `authTokens`.
        Case::differs(
            "LOCAL_OAUTH",
            "/Books?$top=1",
            backend(
                plain("/Books?$top=1")
                    .with_auth(Credential::bearer("authorization", BACKEND_CLIENT_ID)),
            ),
            Outcome::SdkError("no auth tokens could be fetched"),
        ),
        Case::differs(
            "LOCAL_SAP_CLIENT",
            "/Books?$top=1",
            backend(plain("/Books?$top=1&sap-client=100").with_header("sap-client", "100")),
            backend(plain("/Books?$top=1").with_header("sap-client", "100")),
        ),
        Case::same(
            "LOCAL_PROPERTIES",
            "/Books?$top=1",
            plain("/Books?$top=1&sap-language=EN").with_header("x-custom", "custom-value"),
        ),
        Case::same(
            "LOCAL_BASE_PATH",
            "/A_BusinessPartner?$top=1",
            plain(&format!("{BASE_PATH}/A_BusinessPartner?$top=1")),
        ),
        Case::differs(
            "LOCAL_SERVICE_NAMES",
            "/Books?$top=1",
            backend(
                plain("/Books?$top=1&sap-language=EN&sap-client=100")
                    .with_auth(basic.clone())
                    .with_header("x-custom", "custom-value")
                    .with_header("sap-client", "100"),
            ),
            backend(
                plain("/Books?$top=1&sap-language=EN")
                    .with_auth(basic)
                    .with_header("x-custom", "custom-value")
                    .with_header("sap-client", "100"),
            ),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn local_destinations_match_sdk() {
    sdk_compare_dir();
    let stack = Stack::start(|_| Vec::new()).await;
    let host = stack.backend.authority().to_owned();
    let destinations =
        local_destinations(stack.backend.url(), &stack.emulator.token_url()).to_string();
    let cases = local_cases(&host);
    let env = [("destinations", destinations.as_str())];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;

    compare(&cases, &gateway, &sdk);
}

// --- Headers that depend on the client ---

#[tokio::test(flavor = "multi_thread")]
async fn client_headers_differ_as_documented() {
    sdk_compare_dir();
    let stack = Stack::start(|_| Vec::new()).await;
    let host = stack.backend.authority().to_owned();
    let destinations =
        local_destinations(stack.backend.url(), &stack.emulator.token_url()).to_string();
    let env = [("destinations", destinations.as_str())];
    let cases = vec![Case::same(
        "LOCAL_NO_AUTH",
        "/Books",
        get_request(&host, "/Books"),
    )];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;
    compare(&cases, &gateway, &sdk);
    let (Observed::Backend(gateway), Observed::Backend(sdk)) = (&gateway[0], &sdk[0]) else {
        panic!("both clients should reach the backend: {gateway:#?} {sdk:#?}");
    };

    assert_eq!(
        gateway.header("accept").as_deref(),
        Some("application/json"),
        "{gateway:#?}"
    );
    let correlation_id = gateway.header("x-correlationid").unwrap_or_default();
    assert_eq!(
        correlation_id.len(),
        36,
        "gateway x-correlationid: {gateway:#?}"
    );
    assert_eq!(gateway.header("user-agent"), None, "{gateway:#?}");
    assert_eq!(gateway.header("accept-encoding"), None, "{gateway:#?}");

    assert_eq!(
        sdk.header("accept").as_deref(),
        Some("application/json, text/plain, */*"),
        "{sdk:#?}"
    );
    let user_agent = sdk.header("user-agent").unwrap_or_default();
    assert!(user_agent.starts_with("axios/"), "SDK user-agent: {sdk:#?}");
    assert_eq!(
        sdk.header("accept-encoding").as_deref(),
        Some("gzip, compress, deflate, br"),
        "{sdk:#?}"
    );
    assert_eq!(sdk.header("x-correlationid"), None, "{sdk:#?}");
}

// --- Proxies from the environment ---

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_variable_used_by_sdk_only() {
    sdk_compare_dir();
    let stack = Stack::start(|_| Vec::new()).await;
    let host = stack.backend.authority().to_owned();
    let destinations =
        local_destinations(stack.backend.url(), &stack.emulator.token_url()).to_string();
    let proxy_url = format!("http://proxy-user:proxy-secret@{}", stack.proxy.authority());
    let env = [
        ("destinations", destinations.as_str()),
        ("http_proxy", proxy_url.as_str()),
    ];
    // The gateway does not read http_proxy and connects directly. The SDK
    // sends the request in absolute form to the proxy, with the proxy's
    // credentials from the variable.
    let cases = vec![Case::differs(
        "LOCAL_BASIC",
        "/Books?$top=1",
        Outcome::Backend(
            get_request(&host, "/Books?$top=1")
                .with_auth(Credential::basic(BASIC_USER, BASIC_PASSWORD)),
        ),
        Outcome::Proxy(
            get_request(&host, format!("{}/Books?$top=1", stack.backend.url()))
                .with_auth(Credential::basic(BASIC_USER, BASIC_PASSWORD))
                .with_proxy_auth(Credential::Basic {
                    header: "proxy-authorization".to_owned(),
                    decoded: "proxy-user:proxy-secret".to_owned(),
                }),
        ),
    )];

    let gateway = run_gateway(&stack, &env, &cases).await;
    let sdk = run_sdk(&stack, &env, &cases).await;

    compare(&cases, &gateway, &sdk);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_proxy_variable_carries_sdk_lookup() {
    sdk_compare_dir();
    let stack =
        Stack::start(|backend_url| vec![Destination::no_authentication("NO_AUTH", backend_url)])
            .await;
    let vcap = stack.vcap_services();
    let proxy_url = format!("http://{}", stack.proxy.authority());
    let env = [
        ("VCAP_SERVICES", vcap.as_str()),
        ("http_proxy", proxy_url.as_str()),
    ];
    let case = Case::same(
        "NO_AUTH",
        "/Books",
        get_request(stack.backend.authority(), "/Books"),
    );

    // The gateway ignores http_proxy for the Destination service as well.
    let gateway = run_gateway(&stack, &env, std::slice::from_ref(&case)).await;
    check_outcome(&case, "gateway", &case.gateway, &gateway[0]);

    // axios, which the SDK uses for the Destination service, reads
    // http_proxy itself, so the find-destination call with the SDK's
    // service token goes to the proxy. The recorder is no Destination
    // service, so the lookup then fails.
    let job = json!({ "requests": [{ "destinationName": "NO_AUTH", "path": "/Books" }] });
    let (results, blocked, output) = run_node(&env, &job).await;
    assert_eq!(blocked, Vec::<String>::new(), "{output}");
    let error = results
        .first()
        .and_then(|result| result.error.clone())
        .unwrap_or_else(|| panic!("the SDK lookup through the recorder should fail; {output}"));
    assert!(error.contains("Failed to fetch destination"), "{error}");

    let proxied = stack.proxy.take();
    let lookup = format!(
        "{}/destination-configuration/v1/destinations/NO_AUTH?$skipTokenRetrieval=true",
        stack.emulator.url()
    );
    let targets: Vec<&str> = proxied
        .iter()
        .map(|request| request.target.as_str())
        .collect();
    assert_eq!(targets, [lookup.as_str()], "requests the proxy received");
    assert_eq!(
        Credential::of(&proxied[0], &["authorization"]),
        Credential::bearer("authorization", CLIENT_ID),
        "the SDK's Destination service token goes to the proxy"
    );
    assert_eq!(
        stack.backend.take(),
        Vec::new(),
        "backend requests of the SDK"
    );
}
