//! Criterion benchmark of the per-request sandbox cost: a fresh instance
//! from the pooling allocator, `GET /` handled by the guest without an
//! outbound request, the response body read, and the instance dropped.
//!
//! Cases:
//! - `default_guest_get_root`: the bundled gateway component, which responds
//!   to `GET /` with its OData `NotFound` error;
//! - `versioned_guest_get_root`: the small test component of
//!   `tests/guests/versioned`, when `BENCH_VERSIONED_WASM` names its
//!   `.wasm` file.
//!
//! `BENCH_COMPILED_CACHE_DIR` names a compiled-code cache folder, which
//! saves the compilation at each start.

use std::path::PathBuf;

use btp_gateway::engine::Limits;
use btp_gateway::engine::compiled_cache::CompiledCache;
use btp_gateway_benches::sandbox::Sandbox;
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn sandbox_cost(criterion: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot start a tokio runtime: {error}"),
    };
    let cache =
        std::env::var_os("BENCH_COMPILED_CACHE_DIR").map(|folder| {
            match CompiledCache::open(&PathBuf::from(&folder)) {
                Ok(cache) => cache,
                Err(error) => panic!("{error:#}"),
            }
        });

    let mut group = criterion.benchmark_group("sandbox");
    let default = sandbox(btp_gateway::DEFAULT_COMPONENT, cache.as_ref());
    group.bench_function("default_guest_get_root", |bencher| {
        bencher.iter(|| handle_one(&runtime, &default));
    });

    if let Some(path) = std::env::var_os("BENCH_VERSIONED_WASM") {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => panic!("cannot read {}: {error}", PathBuf::from(path).display()),
        };
        let versioned = sandbox(&bytes, cache.as_ref());
        group.bench_function("versioned_guest_get_root", |bencher| {
            bencher.iter(|| handle_one(&runtime, &versioned));
        });
    }
    group.finish();
}

fn sandbox(component: &[u8], cache: Option<&CompiledCache>) -> Sandbox {
    match Sandbox::new(component, Limits::default(), cache, "/") {
        Ok(sandbox) => sandbox,
        Err(error) => panic!("cannot load the component: {error:#}"),
    }
}

fn handle_one(runtime: &Runtime, sandbox: &Sandbox) -> usize {
    match runtime.block_on(sandbox.handle_one()) {
        Ok(length) => length,
        Err(error) => panic!("the request failed: {error:#}"),
    }
}

criterion_group!(benches, sandbox_cost);
criterion_main!(benches);
