//! Routing of a request: the checks that come before any service (`HEAD`,
//! logon and redirect services, the trailing-slash redirect, CSRF) and then
//! the service's own resources.

use std::convert::Infallible;

use bytes::Bytes;
use http::header::{ACCEPT, LOCATION};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;

use super::metadata::MetadataService;
use super::reply::{Reply, xml_error};
use super::resources::{self, ServiceRequest};
use super::{Counters, State, batch, csrf, large, lock};

/// Prefix of every service path.
const SERVICES_PREFIX: &str = "/sap/opu/odata/sap/";

/// Where `ZGW_REDIRECT_SRV` sends clients. Nothing listens on port 1.
const IDP_LOGIN_URL: &str = "http://127.0.0.1:1/saml2/idp/sso";

/// The logon page that `ZGW_LOGIN_SRV` returns for every request.
const LOGON_PAGE: &str = concat!(
    "<html><head><title>Logon</title><meta charset=\"utf-8\"></head><body>",
    "<form id=\"saml\" method=\"post\" action=\"http://127.0.0.1:1/saml2/idp/sso\">",
    "<input type=\"hidden\" name=\"SAMLRequest\" value=\"PHNhbWxwOkF1dGhuUmVxdWVzdC8+\"/>",
    "<noscript><p>JavaScript is disabled. Select Continue to log on.</p>",
    "<input type=\"submit\" value=\"Continue\"/></noscript></form>",
    "<script>document.getElementById('saml').submit()</script></body></html>"
);

/// Entity sets listed in the service document of `ZGW_TEST_SRV`.
const ENTITY_SETS: [&str; 3] = ["Items", "Suppliers", "Large"];

/// The services this backend serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Test,
    Big,
    Login,
    Redirect,
    Unknown,
}

impl Service {
    fn from_name(name: &str) -> Self {
        match name {
            "ZGW_TEST_SRV" => Self::Test,
            "ZGW_BIG_SRV" => Self::Big,
            "ZGW_LOGIN_SRV" => Self::Login,
            "ZGW_REDIRECT_SRV" => Self::Redirect,
            _ => Self::Unknown,
        }
    }
}

/// Handles a request whose body has been read.
pub(super) fn dispatch(
    state: &State,
    request: Request<Bytes>,
) -> Response<BoxBody<Bytes, Infallible>> {
    if request.method() == Method::HEAD {
        return Reply::empty(StatusCode::METHOD_NOT_ALLOWED).into_response();
    }

    let path = request.uri().path();
    let (service_name, rest) = match path.strip_prefix(SERVICES_PREFIX) {
        Some(below) => match below.split_once('/') {
            Some((name, rest)) => (name, Some(rest)),
            None => (below, None),
        },
        None => ("", None),
    };
    let service = Service::from_name(service_name);
    match service {
        Service::Login => {
            return Reply::with_body(StatusCode::OK, "text/html; charset=utf-8", LOGON_PAGE)
                .into_response();
        }
        Service::Redirect => {
            return Reply::empty(StatusCode::FOUND)
                .header(LOCATION, IDP_LOGIN_URL)
                .into_response();
        }
        Service::Test | Service::Big if rest.is_none() && request.method() == Method::GET => {
            let location = format!("{}{path}/", state.origin);
            return Reply::empty(StatusCode::MOVED_PERMANENTLY)
                .header(LOCATION, &location)
                .into_response();
        }
        _ => {}
    }

    let token = if is_write(request.method()) {
        if !lock(&state.csrf).accepts(request.headers()) {
            Counters::increment(&state.counters.csrf_rejections);
            return csrf::rejection().into_response();
        }
        None
    } else if request.method() == Method::GET && csrf::is_fetch(request.headers()) {
        Counters::increment(&state.counters.csrf_fetches);
        Some(lock(&state.csrf).fetch(request.headers()))
    } else {
        None
    };

    let resource = percent_encoding::percent_decode_str(rest.unwrap_or("")).decode_utf8_lossy();
    let mut response = match service {
        Service::Test => test_service(state, &request, &resource),
        Service::Big => big_service(state, &request, &resource).into_response(),
        _ => unknown_service(path).into_response(),
    };
    if let Some(token) = token {
        csrf::add_token(response.headers_mut(), &token);
    }
    response
}

fn is_write(method: &Method) -> bool {
    *method == Method::POST
        || *method == Method::PUT
        || *method == Method::PATCH
        || *method == Method::DELETE
        || method.as_str() == "MERGE"
}

fn test_service(
    state: &State,
    request: &Request<Bytes>,
    resource: &str,
) -> Response<BoxBody<Bytes, Infallible>> {
    let service_root = state.service_root();
    let method = request.method();
    let headers = request.headers();
    let reply = match resource {
        "" if method == Method::GET => service_document(&service_root, request),
        "$metadata" if method == Method::GET => {
            state
                .metadata
                .respond(MetadataService::Test, headers, &state.counters)
        }
        "$batch" if method == Method::POST => {
            Counters::increment(&state.counters.batch_requests);
            let mut items = lock(&state.items);
            batch::handle(&mut items, &service_root, headers, request.body())
        }
        "" | "$metadata" | "$batch" => method_not_allowed(method, resource),
        "Large" if method == Method::GET => {
            return large::response(&service_root, request.uri().query());
        }
        _ => {
            let mut items = lock(&state.items);
            resources::handle(
                &mut items,
                &service_root,
                &ServiceRequest {
                    method: tunnelled_method(method, headers),
                    resource,
                    query: request.uri().query(),
                    headers,
                    body: request.body(),
                },
            )
        }
    };
    reply.into_response()
}

fn big_service(state: &State, request: &Request<Bytes>, resource: &str) -> Reply {
    match (request.method(), resource) {
        (&Method::GET, "") => Reply::json(StatusCode::OK, r#"{"d":{"EntitySets":[]}}"#.to_owned()),
        (&Method::GET, "$metadata") => {
            state
                .metadata
                .respond(MetadataService::Big, request.headers(), &state.counters)
        }
        _ => xml_error(
            StatusCode::NOT_FOUND,
            "/IWBEP/CM_MGW_RT/020",
            &format!("Resource not found for segment '{resource}'"),
        ),
    }
}

fn unknown_service(path: &str) -> Reply {
    xml_error(
        StatusCode::NOT_FOUND,
        "/IWFND/MED/170",
        &format!("No service found for path '{path}'"),
    )
}

fn method_not_allowed(method: &Method, resource: &str) -> Reply {
    xml_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "/IWBEP/CM_MGW_RT/021",
        &format!("Method '{method}' is not allowed for resource '{resource}'"),
    )
}

/// Returns the method that `X-HTTP-Method` names on a `POST`, or the
/// request's own method.
fn tunnelled_method(method: &Method, headers: &HeaderMap) -> Method {
    if *method != Method::POST {
        return method.clone();
    }
    headers
        .get("x-http-method")
        .and_then(|value| Method::from_bytes(value.as_bytes()).ok())
        .unwrap_or(Method::POST)
}

/// Returns the service document: JSON when the request names JSON in
/// `$format` or `Accept`, otherwise AtomPub XML, the default of SAP Gateway.
fn service_document(service_root: &str, request: &Request<Bytes>) -> Reply {
    let wants_json = request
        .uri()
        .query()
        .is_some_and(|query| query.split('&').any(|option| option == "$format=json"))
        || request
            .headers()
            .get(ACCEPT)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|accept| accept.contains("json"));
    if wants_json {
        let sets: Vec<String> = ENTITY_SETS.iter().map(|set| format!("\"{set}\"")).collect();
        return Reply::json(
            StatusCode::OK,
            format!(r#"{{"d":{{"EntitySets":[{}]}}}}"#, sets.join(",")),
        );
    }

    let mut body = format!(
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>"#,
            r#"<app:service xml:lang="en" xml:base="{root}" xmlns:app="http://www.w3.org/2007/app" "#,
            r#"xmlns:atom="http://www.w3.org/2005/Atom" xmlns:sap="http://www.sap.com/Protocols/SAPData">"#,
            r#"<app:workspace><atom:title type="text">Data</atom:title>"#
        ),
        root = service_root
    );
    for set in ENTITY_SETS {
        body.push_str(&format!(
            r#"<app:collection href="{set}"><atom:title type="text">{set}</atom:title></app:collection>"#
        ));
    }
    body.push_str(&format!(
        r#"</app:workspace><atom:link rel="self" href="{service_root}" xmlns:atom="http://www.w3.org/2005/Atom"/></app:service>"#
    ));
    Reply::with_body(
        StatusCode::OK,
        "application/atomsvc+xml;charset=utf-8",
        body,
    )
    .header_static("dataserviceversion", "2.0")
}
