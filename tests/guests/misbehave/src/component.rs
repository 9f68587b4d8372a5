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
        } else if path == "/residue" {
            let report = residue();
            respond(response_out, 200, &report);
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

/// The bytes of static memory and of newly grown memory that `/residue`
/// inspects and then marks.
const RESIDUE_BYTES: usize = 4 * WASM_PAGE_BYTES;
const WASM_PAGE_BYTES: usize = 64 * 1024;
const RESIDUE_MARK: u8 = 0xa5;

/// Zero-initialised static memory, in the component's memory image.
static mut STATIC_AREA: [u8; RESIDUE_BYTES] = [0; RESIDUE_BYTES];

/// Counts the bytes that an earlier instance left behind, then leaves its
/// own mark for the next instance to find. A fresh instance must find
/// zeros both in its static memory and in pages that `memory.grow`
/// returns, whatever the slot's previous instance wrote there.
#[allow(
    unsafe_code,
    reason = "reads static memory and pages from memory.grow that no Rust allocation owns"
)]
fn residue() -> String {
    // SAFETY: the component handles one request per instance on one
    // thread, so nothing else borrows the static.
    let area = unsafe { &mut *std::ptr::addr_of_mut!(STATIC_AREA) };
    let static_marked = area.iter().filter(|byte| **byte != 0).count();
    area.fill(RESIDUE_MARK);

    let pages = RESIDUE_BYTES / WASM_PAGE_BYTES;
    let first_page = core::arch::wasm32::memory_grow(0, pages);
    if first_page == usize::MAX {
        return "memory.grow failed".to_owned();
    }
    let grown = (first_page * WASM_PAGE_BYTES) as *mut u8;
    // SAFETY: the pages were just added to linear memory. The allocator
    // takes its pages with its own memory.grow calls, so it never hands
    // these out.
    let grown = unsafe { std::slice::from_raw_parts_mut(grown, RESIDUE_BYTES) };
    let grown_marked = grown.iter().filter(|byte| **byte != 0).count();
    grown.fill(RESIDUE_MARK);

    format!("static {static_marked} grown {grown_marked}")
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
