//! Runs requests through fresh guest instances one after another, times each,
//! and prints one JSON line with the median and the 99th percentile in
//! microseconds.
//!
//! It is also the program that `valgrind --tool=callgrind` counts
//! instructions of: only the loop in [`run_measured_requests`] is meant to be
//! collected (`--collect-atstart=no --toggle-collect=*run_measured_requests*`),
//! so compilation and start-up stay out of the count. The loop runs on a
//! current-thread runtime, so the guest's tasks run inside that function.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use btp_gateway::engine::Limits;
use btp_gateway::engine::compiled_cache::CompiledCache;
use btp_gateway_benches::percentiles::percentile;
use btp_gateway_benches::sandbox::Sandbox;
use clap::Parser;
use tokio::runtime::Runtime;

/// Times requests through fresh guest instances.
#[derive(Debug, Parser)]
#[command(name = "sandbox-probe")]
struct Args {
    /// The component's `.wasm` file; the bundled default component when not
    /// given.
    #[arg(long)]
    component: Option<PathBuf>,
    /// The path of the `GET` request; it must need no outbound request.
    #[arg(long, default_value = "/")]
    path: String,
    /// Requests measured.
    #[arg(long, default_value_t = 1000)]
    requests: u32,
    /// Requests run before the measured ones, to warm caches.
    #[arg(long, default_value_t = 50)]
    warmup: u32,
    /// Folder of the compiled-code cache; compiled afresh when not given.
    #[arg(long)]
    compiled_cache_dir: Option<PathBuf>,
    /// Instance slots of the pooling allocator, as `--max-instances` of the
    /// gateway.
    #[arg(long, default_value_t = 64)]
    max_instances: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The engine logs a warning when the pooling allocator cannot reserve
    // its memory; run.sh rejects a measurement that shows it.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();

    let component = match &args.component {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => btp_gateway::DEFAULT_COMPONENT.to_vec(),
    };
    let cache = match &args.compiled_cache_dir {
        Some(folder) => Some(CompiledCache::open(folder)?),
        None => None,
    };
    let limits = Limits {
        max_instances: args.max_instances,
        ..Limits::default()
    };
    let sandbox = Sandbox::new(&component, limits, cache.as_ref(), &args.path)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    runtime.block_on(async {
        for _ in 0..args.warmup {
            sandbox.handle_one().await?;
        }
        anyhow::Ok(())
    })?;
    let mut durations = run_measured_requests(&runtime, &sandbox, args.requests)?;

    let median = percentile(&mut durations, 50.0).unwrap_or_default();
    let p99 = percentile(&mut durations, 99.0).unwrap_or_default();
    println!(
        "{{\"requests\":{},\"median_us\":{:.1},\"p99_us\":{:.1}}}",
        args.requests,
        micros(median),
        micros(p99)
    );
    Ok(())
}

/// Runs `count` requests and returns the time each took.
#[inline(never)]
fn run_measured_requests(
    runtime: &Runtime,
    sandbox: &Sandbox,
    count: u32,
) -> anyhow::Result<Vec<Duration>> {
    runtime.block_on(async {
        let mut durations = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let started = Instant::now();
            sandbox.handle_one().await?;
            durations.push(started.elapsed());
        }
        Ok(durations)
    })
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
