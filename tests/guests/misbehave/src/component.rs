//! The `wasi:http/incoming-handler` export.

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::http::outgoing_handler;
use bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};

#[allow(
    unsafe_code,
    reason = "wit-bindgen generates the unsafe canonical ABI glue for imports and exports"
)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "btp-gateway:gateway/gateway",
        generate_all,
    });

    use super::Component;
    export!(Component);
}

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        if path == "/loop" {
            spin();
        } else if path == "/allocate" {
            allocate();
        } else if path == "/trap-after-headers" {
            trap_after_headers(response_out);
        } else if let Some(count) = path.strip_prefix("/outbound/") {
            let results = send_many(count.parse().unwrap_or(0));
            respond(response_out, 200, &results);
        } else if let Some(port) = path.strip_prefix("/egress/") {
            let result = send(&format!("127.0.0.1:{port}"), "/");
            respond(response_out, 200, &result);
        } else {
            respond(response_out, 404, "unknown scenario");
        }
    }
}

fn spin() {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn allocate() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        blocks.push(std::hint::black_box(vec![1u8; 1 << 20]));
    }
}

fn trap_after_headers(response_out: ResponseOutparam) {
    let headers = Fields::from_list(&[("content-type".to_owned(), b"text/plain".to_vec())])
        .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(200);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = body.write() {
        let _ = stream.blocking_write_and_flush(b"the first part of a body that never ends");
    }
    panic!("trapping after the response headers were sent");
}

fn send_many(count: u32) -> String {
    let results: Vec<String> = (0..count)
        .map(|_| send("destination.invalid", "/ECHO/echo/headers"))
        .collect();
    results.join("\n")
}

/// Sends a GET and returns `status N` or `error CODE`.
fn send(authority: &str, path: &str) -> String {
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_scheme(Some(&Scheme::Http));
    let _ = request.set_authority(Some(authority));
    let _ = request.set_path_with_query(Some(path));
    let Ok(body) = request.body() else {
        return "error no body".to_owned();
    };
    let pending = match outgoing_handler::handle(request, None) {
        Ok(pending) => pending,
        Err(code) => return format!("error {code:?}"),
    };
    let _ = OutgoingBody::finish(body, None);
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => format!("status {}", response.status()),
        Some(Ok(Err(code))) => format!("error {code:?}"),
        _ => "error lost".to_owned(),
    }
}

fn respond(response_out: ResponseOutparam, status: u16, text: &str) {
    let response = OutgoingResponse::new(Fields::new());
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in text.as_bytes().chunks(4096) {
            let _ = stream.blocking_write_and_flush(chunk);
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
