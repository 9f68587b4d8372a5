//! The `wasi:http/incoming-handler` export.

use bindings::exports::wasi::http::incoming_handler::Guest;
use bindings::wasi::clocks::monotonic_clock;
use bindings::wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
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

/// Chunks of the `/version` body and the pause between them.
const CHUNKS: usize = 64;
const CHUNK_BYTES: usize = 1024;
const CHUNK_PAUSE_NANOS: u64 = 2_000_000;

struct Component;

impl Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let label = crate::LABEL;
        if path == "/" {
            if label.starts_with("trap-on-smoke") {
                panic!("this build traps on GET /");
            }
            respond(response_out, 200, &[label.as_bytes().to_vec()], 0);
        } else if path == "/version" {
            let chunks = vec![crate::chunk(label, CHUNK_BYTES); CHUNKS];
            respond(response_out, 200, &chunks, CHUNK_PAUSE_NANOS);
        } else {
            respond(
                response_out,
                404,
                &[format!("{label}: no scenario at {path}").into_bytes()],
                0,
            );
        }
    }
}

fn respond(response_out: ResponseOutparam, status: u16, chunks: &[Vec<u8>], pause_nanos: u64) {
    let headers = Fields::from_list(&[
        ("content-type".to_owned(), b"text/plain".to_vec()),
        (
            "x-component-label".to_owned(),
            crate::LABEL.as_bytes().to_vec(),
        ),
    ])
    .unwrap_or_else(|_| Fields::new());
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(body) = response.body() else { return };
    ResponseOutparam::set(response_out, Ok(response));
    if let Ok(stream) = body.write() {
        for chunk in chunks {
            let _ = stream.blocking_write_and_flush(chunk);
            if pause_nanos > 0 {
                monotonic_clock::subscribe_duration(pause_nanos).block();
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}
