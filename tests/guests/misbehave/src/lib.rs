//! A gateway component that misbehaves on purpose, so that tests can check
//! the host's limits. The request path picks the behaviour:
//!
//! | path | behaviour |
//! |---|---|
//! | `/loop` | computes forever without calling the host |
//! | `/allocate` | allocates memory until the instance's limit stops it |
//! | `/trap-after-headers` | sends 200 and part of a body, then traps |
//! | `/outbound/{n}` | sends `n` requests to the destination `ECHO` and lists the results |
//! | `/residue` | counts non-zero bytes in its static memory and in newly grown pages, then fills both |
//! | `/egress/{port}` | sends a request to `http://127.0.0.1:{port}/`, which the host must deny |
//!
//! Built only for tests; the logic compiles natively so the workspace
//! builds, but it runs only as a component.

#[cfg(target_arch = "wasm32")]
mod component;
