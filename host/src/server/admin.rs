//! The admin API for components: list, upload, activate, roll back,
//! status.
//!
//! | request | effect |
//! |---|---|
//! | `GET /admin/components` | every route with its versions |
//! | `GET /admin/components/{route}` | one route |
//! | `POST /admin/components/{route}/versions` | upload a `.wasm` body; `?activate=false` keeps it without serving it |
//! | `POST /admin/components/{route}/activate` | `{"digest": "sha256:..."}` makes a kept version active |
//! | `POST /admin/components/{route}/rollback` | makes the previously active version active again |
//!
//! Policy: every request needs the admin scope or the admin token, exactly
//! as `/metrics` does (see [`crate::auth::admin`]); with neither
//! configured, the API answers 403. An upload reaches only the instance
//! that receives it; to change every Cloud Foundry instance, publish to the
//! registry that the route follows.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::App;
use super::responses::{error_json, json_response};
use crate::components::digest::Digest;
use crate::components::validate::{Rejection, Version};
use crate::components::{Activation, Route, SwapError};

/// The path under which the admin API lives.
pub const ADMIN_PREFIX: &str = "/admin/components";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateBody {
    digest: String,
}

impl App {
    /// Serves a request under [`ADMIN_PREFIX`] to an admitted caller.
    pub(super) async fn admin(
        &self,
        request: Request<Incoming>,
        correlation_id: &str,
    ) -> Response<HyperOutgoingBody> {
        if let Err(response) = self
            .admit_operator(&request, "the admin API", correlation_id)
            .await
        {
            return response;
        }

        let path = request.uri().path().to_owned();
        let rest = path[ADMIN_PREFIX.len()..].trim_matches('/');
        let segments: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let method = request.method().clone();
        let not_found = |message: String| {
            error_json(StatusCode::NOT_FOUND, "NotFound", &message, correlation_id)
        };

        let route = match segments.first() {
            None => {
                return if method == Method::GET {
                    let routes: Vec<_> = self
                        .components
                        .routes()
                        .into_iter()
                        .map(|route| route.status())
                        .collect();
                    json_ok(&serde_json::json!({ "routes": routes }))
                } else {
                    method_not_allowed(&method, "GET", correlation_id)
                };
            }
            Some(name) => match self.components.route(name) {
                Some(route) => route.clone(),
                None => {
                    let known: Vec<&str> = self
                        .components
                        .routes()
                        .into_iter()
                        .map(|route| route.config.name.as_str())
                        .collect();
                    return not_found(format!(
                        "no route is named '{name}': the routes are {}",
                        known.join(", ")
                    ));
                }
            },
        };

        match (segments.get(1).copied(), segments.len()) {
            (None, _) if method == Method::GET => json_ok(&route.status()),
            (None, _) => method_not_allowed(&method, "GET", correlation_id),
            (Some("versions"), 2) if method == Method::POST => {
                self.upload(&route, request, correlation_id).await
            }
            (Some("activate"), 2) if method == Method::POST => {
                activate(&route, request, correlation_id).await
            }
            (Some("rollback"), 2) if method == Method::POST => match route.roll_back().await {
                Ok(version) => activated(&route, &version),
                Err(error) => swap_failed(&error, correlation_id),
            },
            (Some("versions" | "activate" | "rollback"), 2) => {
                method_not_allowed(&method, "POST", correlation_id)
            }
            _ => not_found(format!(
                "unknown admin path {path}: use {ADMIN_PREFIX}/{{route}}, or add /versions, \
                 /activate or /rollback"
            )),
        }
    }

    /// Validates an uploaded component and keeps it, active unless the
    /// query says `activate=false`.
    async fn upload(
        &self,
        route: &Arc<Route>,
        request: Request<Incoming>,
        correlation_id: &str,
    ) -> Response<HyperOutgoingBody> {
        let activation = match request.uri().query().map(activation_from_query) {
            None => Activation::Activate,
            Some(Ok(activation)) => activation,
            Some(Err(message)) => {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "InvalidQuery",
                    &message,
                    correlation_id,
                );
            }
        };
        let max = self.components.validator.max_component_bytes;
        let limit = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1);
        let bytes = match Limited::new(request.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return error_json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    &format!(
                        "the component is larger than the limit of {max} bytes: make it smaller \
                         or raise BTP_GATEWAY_COMPONENT_MAX_MIB"
                    ),
                    correlation_id,
                );
            }
            Err(error) => {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    &format!("reading the uploaded component failed: {error}"),
                    correlation_id,
                );
            }
        };
        if bytes.is_empty() {
            return error_json(
                StatusCode::BAD_REQUEST,
                "EmptyBody",
                "the request has no body: send the .wasm file as the body, for example with \
                 curl --data-binary @gateway.wasm",
                correlation_id,
            );
        }

        let upload: Arc<[u8]> = Arc::from(Vec::from(Bytes::clone(&bytes)));
        match route
            .offer(
                &self.components.validator,
                upload,
                "upload".to_owned(),
                activation,
            )
            .await
        {
            Ok(version) => activated(route, &version),
            Err(rejection) => rejected(&rejection, correlation_id),
        }
    }
}

async fn activate(
    route: &Arc<Route>,
    request: Request<Incoming>,
    correlation_id: &str,
) -> Response<HyperOutgoingBody> {
    let body = match Limited::new(request.into_body(), 4096).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_json(
                StatusCode::BAD_REQUEST,
                "InvalidBody",
                &format!("reading the request body failed: {error}"),
                correlation_id,
            );
        }
    };
    let digest = serde_json::from_slice::<ActivateBody>(&body)
        .map_err(|error| error.to_string())
        .and_then(|body| {
            body.digest
                .parse::<Digest>()
                .map_err(|error| error.to_string())
        });
    let digest = match digest {
        Ok(digest) => digest,
        Err(reason) => {
            return error_json(
                StatusCode::BAD_REQUEST,
                "InvalidBody",
                &format!("expected {{\"digest\": \"sha256:...\"}}: {reason}"),
                correlation_id,
            );
        }
    };
    match route.activate(digest).await {
        Ok(version) => activated(route, &version),
        Err(error) => swap_failed(&error, correlation_id),
    }
}

fn activation_from_query(query: &str) -> Result<Activation, String> {
    let mut activation = Activation::Activate;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match (name.as_ref(), value.as_ref()) {
            ("activate", "true") => activation = Activation::Activate,
            ("activate", "false") => activation = Activation::KeepOnly,
            ("activate", other) => {
                return Err(format!(
                    "invalid value '{other}' for activate: use true or false"
                ));
            }
            (other, _) => {
                return Err(format!(
                    "unknown query parameter '{other}': only activate is known"
                ));
            }
        }
    }
    Ok(activation)
}

/// Returns the route's status and the version the request touched.
fn activated(route: &Route, version: &Version) -> Response<HyperOutgoingBody> {
    let status = route.status();
    let touched = status
        .versions
        .iter()
        .find(|entry| entry.digest == version.digest)
        .cloned();
    json_ok(&serde_json::json!({ "version": touched, "route": status }))
}

fn rejected(rejection: &Rejection, correlation_id: &str) -> Response<HyperOutgoingBody> {
    let status = match rejection {
        Rejection::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Rejection::Load(crate::engine::LoadError::Host(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    error_json(
        status,
        rejection.code(),
        &rejection.to_string(),
        correlation_id,
    )
}

fn swap_failed(error: &SwapError, correlation_id: &str) -> Response<HyperOutgoingBody> {
    let (status, code) = match error {
        SwapError::UnknownVersion { .. } => (StatusCode::NOT_FOUND, "UnknownVersion"),
        SwapError::NothingToRollBack(_) => (StatusCode::CONFLICT, "NothingToRollBack"),
    };
    error_json(status, code, &error.to_string(), correlation_id)
}

fn method_not_allowed(
    method: &Method,
    allowed: &'static str,
    correlation_id: &str,
) -> Response<HyperOutgoingBody> {
    let mut response = error_json(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("{method} is not allowed here: use {allowed}"),
        correlation_id,
    );
    response
        .headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static(allowed));
    response
}

fn json_ok(value: &impl serde::Serialize) -> Response<HyperOutgoingBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    json_response(StatusCode::OK, body)
}
