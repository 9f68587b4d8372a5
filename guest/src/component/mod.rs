//! The `wasi:http/incoming-handler` export and its use of the host's
//! `wasi:http/outgoing-handler`, `wasi:config/store` and
//! `wasi:keyvalue/store`.
//!
//! One client request becomes an [`Exchange`]: what was asked, of which
//! destination, and how the gateway appears to the client. Reads go to the
//! backend as they are; writes go through the CSRF choreography in
//! [`writes`]; `$metadata` goes through the cache in [`metadata`]. Every
//! backend response leaves through [`respond`], which rewrites links and turns
//! non-OData errors into OData errors.

mod io;
mod metadata;
mod respond;
mod store;
mod writes;

use crate::csrf;
use crate::error::GatewayError;
use crate::forwarded::gateway_base;
use crate::headers::{default_accept, forwards_request_header, supported_accept_encoding};
use crate::odata::ODataVersion;
use crate::policy::Policy;
use crate::route::{Route, RouteError};

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingRequest, IncomingResponse, Method, OutgoingBody, OutgoingResponse,
    ResponseOutparam, Scheme,
};
use io::{BackendRequest, header, header_text};

#[allow(
    unsafe_code,
    reason = "wit-bindgen generates the unsafe canonical ABI glue for imports and exports"
)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "btp-gateway:gateway/gateway",
        generate_all,
    });

    use super::Component;
    export!(Component);
}

/// The header that carries the correlation id, set by the host.
const CORRELATION_HEADER: &str = "x-correlationid";

/// The methods the gateway forwards.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE"];

struct Component;

/// One client request, as the gateway works with it.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub correlation_id: String,
    /// The method as the client sent it, uppercase (`MERGE` included).
    pub method: String,
    pub destination: String,
    /// `/{encoded destination}`, the start of every reserved address.
    pub address_prefix: String,
    pub service_path_and_query: String,
    pub service_path: String,
    pub client_headers: Vec<(String, Vec<u8>)>,
    /// The destination's URL at the gateway, as the client sees it.
    pub gateway_base: String,
    pub policy: Policy,
}

impl Exchange {
    /// Returns the OData version for errors, before a backend responded.
    pub fn version(&self) -> ODataVersion {
        ODataVersion::detect(&[], &self.client_headers, &self.service_path)
    }

    /// Builds the headers of a request to the backend from the client's
    /// allow-listed ones.
    pub fn backend_headers(&self) -> Vec<(String, Vec<u8>)> {
        let client_accept = header(&self.client_headers, "accept");
        let query = self
            .service_path_and_query
            .split_once('?')
            .map(|(_, query)| query);

        let mut headers: Vec<(String, Vec<u8>)> = self
            .client_headers
            .iter()
            .filter(|(name, _)| forwards_request_header(name) || name == CORRELATION_HEADER)
            .cloned()
            .collect();
        if let Some(accept) = default_accept(&self.service_path, query, client_accept) {
            headers.retain(|(name, _)| name != "accept");
            headers.push(("accept".to_owned(), accept.as_bytes().to_vec()));
        }
        if let Some(value) =
            header(&self.client_headers, "accept-encoding").and_then(supported_accept_encoding)
        {
            headers.push(("accept-encoding".to_owned(), value));
        }
        headers
    }

    /// Returns the backend request for the client's own request.
    pub fn forwarded_request<'a>(&'a self, body: Option<&'a [u8]>) -> BackendRequest<'a> {
        BackendRequest {
            method: &self.method,
            path_and_query: format!("{}{}", self.address_prefix, self.service_path_and_query),
            headers: self.backend_headers(),
            body,
        }
    }
}

/// A backend response, with what the client response needs besides it.
pub(crate) struct Reply {
    pub response: Backend,
    /// A CSRF token to hand to a client that sent `x-csrf-token: Fetch`.
    pub csrf_token: Option<String>,
}

/// The source of a response.
pub(crate) enum Backend {
    /// A response still streaming from the backend.
    Streaming(IncomingResponse),
    /// A response held in memory, such as a cached `$metadata` document.
    Buffered {
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
    },
}

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let correlation_id = correlation_id(&request);
        let exchange = match Exchange::read(&request, correlation_id.clone()) {
            Ok(exchange) => exchange,
            Err(error) => {
                let is_head = matches!(request.method(), Method::Head);
                let version = ODataVersion::detect(&[], &request.headers().entries(), "");
                return send_error(response_out, &error, &correlation_id, version, is_head);
            }
        };

        match serve(&exchange, request) {
            Ok(reply) => respond::send(&exchange, reply, response_out),
            Err(error) => send_error(
                response_out,
                &error,
                &correlation_id,
                exchange.version(),
                exchange.method == "HEAD",
            ),
        }
    }
}

impl Exchange {
    fn read(request: &IncomingRequest, correlation_id: String) -> Result<Self, GatewayError> {
        let method = method_name(&request.method());
        if !METHODS.contains(&method.as_str()) {
            return Err(GatewayError::method_not_allowed(&method));
        }

        let path_with_query = request.path_with_query().unwrap_or_default();
        let route = Route::parse(&path_with_query).map_err(|error| match error {
            RouteError::NotUnderPrefix => GatewayError::not_a_route(&path_with_query),
            RouteError::MissingDestination => GatewayError::missing_destination(),
            RouteError::InvalidDestinationEncoding => GatewayError::invalid_destination_encoding(),
        })?;

        let client_headers = request.headers().entries();
        let scheme = match request.scheme() {
            Some(Scheme::Https) => "https",
            _ => "http",
        };
        let authority = request.authority().unwrap_or_default();
        let encoded_destination = route.encoded_destination();
        let policies = store::config_value("destination-policies");

        Ok(Self {
            correlation_id,
            method,
            address_prefix: format!("/{encoded_destination}"),
            gateway_base: gateway_base(&client_headers, scheme, &authority, &encoded_destination),
            policy: Policy::find(policies.as_deref(), &route.destination),
            destination: route.destination.clone(),
            service_path: route.service_path().to_owned(),
            service_path_and_query: route.service_path_and_query.to_owned(),
            client_headers,
        })
    }
}

/// Checks the policy, then sends the request on the path its kind needs.
fn serve(exchange: &Exchange, request: IncomingRequest) -> Result<Reply, GatewayError> {
    if !exchange.policy.allows_path(&exchange.service_path) {
        return Err(GatewayError::service_path_not_allowed(
            &exchange.destination,
            &exchange.service_path,
        ));
    }
    let tunnelled = header_text(&exchange.client_headers, "x-http-method");
    let effective_method = tunnelled
        .as_deref()
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| exchange.method.clone());
    let is_batch = exchange
        .service_path
        .trim_end_matches('/')
        .ends_with("/$batch");
    let writes = csrf::is_write(&effective_method) && !(is_batch && tunnelled.is_none());
    if exchange.policy.read_only && writes {
        return Err(GatewayError::read_only(
            &exchange.destination,
            &effective_method,
        ));
    }

    if csrf::is_write(&exchange.method) {
        let body = writes::read_client_body(request)?;
        return writes::send_write(exchange, body, is_batch);
    }

    let wants_token = header(&exchange.client_headers, "x-csrf-token")
        .is_some_and(|value| value.trim_ascii().eq_ignore_ascii_case(b"fetch"));
    let csrf_token = if wants_token {
        writes::session_token(exchange)?
    } else {
        None
    };

    let response = if metadata::is_metadata_read(exchange) {
        metadata::read(exchange)?
    } else {
        let mut request = exchange.forwarded_request(None);
        if wants_token && exchange.method == "HEAD" {
            // SAPUI5 fetches tokens with HEAD, which SAP Gateway may refuse
            // with 405. The gateway already has the token, so it sends the
            // backend a GET and returns the HEAD response without the body.
            request.method = "GET";
        }
        let response =
            io::send(&request).map_err(|code| map_error_code(&exchange.destination, &code))?;
        Backend::Streaming(response)
    };
    Ok(Reply {
        response,
        csrf_token,
    })
}

/// Sends a gateway error as an OData JSON error response.
fn send_error(
    response_out: ResponseOutparam,
    error: &GatewayError,
    correlation_id: &str,
    version: ODataVersion,
    is_head: bool,
) {
    let body = error.to_json(correlation_id, version);
    let mut headers = vec![
        (
            "content-type".to_owned(),
            b"application/json;charset=utf-8".to_vec(),
        ),
        (
            CORRELATION_HEADER.to_owned(),
            correlation_id.as_bytes().to_vec(),
        ),
    ];
    match version {
        ODataVersion::V2 => headers.push(("dataserviceversion".to_owned(), b"1.0".to_vec())),
        ODataVersion::V4 => headers.push(("odata-version".to_owned(), b"4.0".to_vec())),
    }
    if error.status == 405 {
        headers.push(("allow".to_owned(), METHODS.join(", ").into_bytes()));
    }

    let response =
        OutgoingResponse::new(Fields::from_list(&headers).unwrap_or_else(|_| Fields::new()));
    let _ = response.set_status_code(error.status);
    let Ok(body_handle) = response.body() else {
        return;
    };
    ResponseOutparam::set(response_out, Ok(response));

    if !is_head {
        let Ok(stream) = body_handle.write() else {
            return;
        };
        if io::write_all(&stream, &body).is_err() {
            return;
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body_handle, None);
}

/// Maps an outbound error code to the gateway error the client receives. The
/// destination codes follow the table in `wit/world.wit`.
fn map_error_code(destination: &str, code: &ErrorCode) -> GatewayError {
    match code {
        ErrorCode::DestinationNotFound => GatewayError::destination_not_found(destination),
        ErrorCode::DestinationUnavailable => GatewayError::destination_unavailable(destination),
        ErrorCode::ConfigurationError => GatewayError::destination_misconfigured(destination),
        ErrorCode::HttpRequestDenied => GatewayError::outbound_denied(destination),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => GatewayError::backend_timeout(destination),
        ErrorCode::ConnectionRefused => {
            GatewayError::backend_failed(destination, "the connection was refused")
        }
        ErrorCode::TlsCertificateError | ErrorCode::TlsProtocolError => {
            GatewayError::backend_failed(destination, "the TLS handshake failed")
        }
        ErrorCode::DestinationIpProhibited => GatewayError::backend_failed(
            destination,
            "its address is refused: loopback, link-local and metadata addresses are not allowed",
        ),
        ErrorCode::DnsError(_) => {
            GatewayError::backend_failed(destination, "its host name could not be resolved")
        }
        _ => GatewayError::backend_failed(destination, "the connection failed"),
    }
}

/// Returns the host's correlation id, or a new one when the component runs
/// under a host that sets none (for example `wasmtime serve`).
fn correlation_id(request: &IncomingRequest) -> String {
    let from_host = request
        .headers()
        .get(CORRELATION_HEADER)
        .into_iter()
        .find_map(|value| String::from_utf8(value).ok());
    from_host.unwrap_or_else(|| {
        let bytes = bindings::wasi::random::random::get_random_bytes(16);
        format_uuid(&bytes)
    })
}

/// Formats 16 random bytes as a version 4 UUID.
fn format_uuid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.iter_mut()
        .zip(bytes)
        .for_each(|(slot, byte)| *slot = *byte);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".to_owned(),
        Method::Head => "HEAD".to_owned(),
        Method::Post => "POST".to_owned(),
        Method::Put => "PUT".to_owned(),
        Method::Delete => "DELETE".to_owned(),
        Method::Connect => "CONNECT".to_owned(),
        Method::Options => "OPTIONS".to_owned(),
        Method::Trace => "TRACE".to_owned(),
        Method::Patch => "PATCH".to_owned(),
        Method::Other(other) => other.to_ascii_uppercase(),
    }
}
