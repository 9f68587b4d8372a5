//! A WASI command: built for wasm32-wasip2 it exports `wasi:cli/run`
//! instead of the HTTP handler, so the gateway must reject it.

fn main() {
    println!("a command, not a gateway component");
}
