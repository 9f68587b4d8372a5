//! Benchmarks of the gateway, and the programs that `benches/run.sh` runs
//! beside it: a fast OData-shaped backend, a native reverse proxy that does
//! the gateway's forwarding without WebAssembly, and a probe that measures
//! the cost of one sandboxed request.
//!
//! Policy: every server here binds 127.0.0.1 and forwards only to the
//! loopback URLs it is given, so no benchmark sends traffic off the machine.
//! Each server prints one line `{"listening":"http://127.0.0.1:PORT"}` to
//! stdout when it accepts connections, so that a script can wait for it.

pub mod listen;
pub mod odata;
pub mod percentiles;
pub mod proxy;
pub mod sandbox;
