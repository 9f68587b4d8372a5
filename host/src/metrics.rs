//! Process-wide counters, served in the Prometheus text format (version
//! 0.0.4) on `/metrics` behind admin access.
//!
//! The counters are plain atomics updated where the events happen, so
//! reading them never blocks a request. They count from process start;
//! Prometheus computes rates from the differences.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the request duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's metrics.
pub static METRICS: Metrics = Metrics::new();

/// Counters and gauges of one process.
#[derive(Debug)]
pub struct Metrics {
    /// Responses by status class: 1xx to 5xx.
    responses: [AtomicU64; 5],
    /// Request durations: one count per bucket (not cumulative) and one
    /// for the rest, plus the sum in microseconds.
    duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    duration_sum_micros: AtomicU64,
    instances_in_use: AtomicU64,
    instance_slots: AtomicU64,
    busy_rejections: AtomicU64,
    component_cache_hits: AtomicU64,
    component_cache_misses: AtomicU64,
    destination_cache_hits: AtomicU64,
    destination_cache_misses: AtomicU64,
    token_requests: AtomicU64,
    token_failures: AtomicU64,
    component_swaps: AtomicU64,
    component_rejections: AtomicU64,
}

/// Values that other parts of the host own, read when metrics are rendered.
#[derive(Debug, Default, Clone, Copy)]
pub struct Readings {
    /// Bytes held in the cache components share.
    pub cache_bytes: usize,
    /// Compilations served from the compiled-code cache.
    pub compiled_cache_hits: usize,
    /// Compilations that found no usable entry in the compiled-code cache.
    pub compiled_cache_misses: usize,
}

impl Metrics {
    const fn new() -> Self {
        Self {
            responses: [const { AtomicU64::new(0) }; 5],
            duration_buckets: [const { AtomicU64::new(0) }; DURATION_BUCKETS.len() + 1],
            duration_sum_micros: AtomicU64::new(0),
            instances_in_use: AtomicU64::new(0),
            instance_slots: AtomicU64::new(0),
            busy_rejections: AtomicU64::new(0),
            component_cache_hits: AtomicU64::new(0),
            component_cache_misses: AtomicU64::new(0),
            destination_cache_hits: AtomicU64::new(0),
            destination_cache_misses: AtomicU64::new(0),
            token_requests: AtomicU64::new(0),
            token_failures: AtomicU64::new(0),
            component_swaps: AtomicU64::new(0),
            component_rejections: AtomicU64::new(0),
        }
    }

    /// Records one response and how long the request took to its head.
    pub fn record_response(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);

        let seconds = elapsed.as_secs_f64();
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.duration_sum_micros
            .fetch_add(micros, Ordering::Relaxed);
    }

    pub fn set_instance_slots(&self, slots: u32) {
        self.instance_slots
            .store(u64::from(slots), Ordering::Relaxed);
    }

    /// Counts a running instance until the returned guard is dropped.
    pub fn instance_started(&'static self) -> InstanceGuard {
        self.instances_in_use.fetch_add(1, Ordering::Relaxed);
        InstanceGuard { metrics: self }
    }

    pub fn busy_rejected(&self) {
        self.busy_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn component_cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.component_cache_hits
        } else {
            &self.component_cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn destination_cache_lookup(&self, hit: bool) {
        let counter = if hit {
            &self.destination_cache_hits
        } else {
            &self.destination_cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request to a token endpoint, and whether it failed.
    pub fn token_requested(&self, succeeded: bool) {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        if !succeeded {
            self.token_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Formats every metric in the Prometheus text format.
    /// Counts a swap of a route's active component.
    pub fn component_swapped(&self) {
        self.component_swaps.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a component that failed validation.
    pub fn component_rejected(&self) {
        self.component_rejections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, readings: Readings) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut text = String::with_capacity(4096);

        header(
            &mut text,
            "btp_gateway_responses_total",
            "counter",
            "Responses sent, by status class.",
        );
        for (index, counter) in self.responses.iter().enumerate() {
            let _ = writeln!(
                text,
                "btp_gateway_responses_total{{status_class=\"{}xx\"}} {}",
                index + 1,
                load(counter)
            );
        }

        header(
            &mut text,
            "btp_gateway_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response head.",
        );
        let mut cumulative = 0;
        for (bound, counter) in DURATION_BUCKETS.iter().zip(&self.duration_buckets) {
            cumulative += load(counter);
            let _ = writeln!(
                text,
                "btp_gateway_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += load(&self.duration_buckets[DURATION_BUCKETS.len()]);
        let _ = writeln!(
            text,
            "btp_gateway_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = load(&self.duration_sum_micros) as f64 / 1_000_000.0;
        let _ = writeln!(text, "btp_gateway_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            text,
            "btp_gateway_request_duration_seconds_count {cumulative}"
        );

        let values: [(&str, &str, &str, u64); 15] = [
            (
                "btp_gateway_instances_in_use",
                "gauge",
                "Component instances running now.",
                load(&self.instances_in_use),
            ),
            (
                "btp_gateway_instance_slots",
                "gauge",
                "Component instances that may run at once.",
                load(&self.instance_slots),
            ),
            (
                "btp_gateway_busy_rejections_total",
                "counter",
                "Requests answered 503 because every instance slot was busy.",
                load(&self.busy_rejections),
            ),
            (
                "btp_gateway_component_cache_hits_total",
                "counter",
                "Reads from the cache components share that found a value.",
                load(&self.component_cache_hits),
            ),
            (
                "btp_gateway_component_cache_misses_total",
                "counter",
                "Reads from the cache components share that found nothing.",
                load(&self.component_cache_misses),
            ),
            (
                "btp_gateway_component_cache_bytes",
                "gauge",
                "Bytes held in the cache components share.",
                readings.cache_bytes as u64,
            ),
            (
                "btp_gateway_destination_cache_hits_total",
                "counter",
                "Destination lookups served from the destination cache.",
                load(&self.destination_cache_hits),
            ),
            (
                "btp_gateway_destination_cache_misses_total",
                "counter",
                "Destination lookups that asked the Destination service.",
                load(&self.destination_cache_misses),
            ),
            (
                "btp_gateway_token_requests_total",
                "counter",
                "Requests to XSUAA token endpoints.",
                load(&self.token_requests),
            ),
            (
                "btp_gateway_token_failures_total",
                "counter",
                "Requests to XSUAA token endpoints that failed.",
                load(&self.token_failures),
            ),
            (
                "btp_gateway_component_swaps_total",
                "counter",
                "Times a route's active component was replaced.",
                load(&self.component_swaps),
            ),
            (
                "btp_gateway_component_rejections_total",
                "counter",
                "Candidate components that failed validation.",
                load(&self.component_rejections),
            ),
            (
                "btp_gateway_compiled_cache_hits_total",
                "counter",
                "Components whose compiled code came from the compiled-code cache.",
                readings.compiled_cache_hits as u64,
            ),
            (
                "btp_gateway_compiled_cache_misses_total",
                "counter",
                "Components compiled because the compiled-code cache had no entry.",
                readings.compiled_cache_misses as u64,
            ),
            (
                "btp_gateway_up",
                "gauge",
                "Always 1 while the process serves.",
                1,
            ),
        ];
        for (name, kind, help, value) in values {
            header(&mut text, name, kind, help);
            let _ = writeln!(text, "{name} {value}");
        }
        text
    }
}

fn header(text: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}

/// Decrements the running-instance gauge when dropped.
#[derive(Debug)]
pub struct InstanceGuard {
    metrics: &'static Metrics,
}

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.metrics
            .instances_in_use
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let metrics = Metrics::new();
        metrics.record_response(200, Duration::from_millis(3));
        metrics.record_response(404, Duration::from_millis(30));
        metrics.record_response(503, Duration::from_secs(60));
        let text = metrics.render(Readings::default());

        assert!(
            text.contains("btp_gateway_responses_total{status_class=\"2xx\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_responses_total{status_class=\"4xx\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_request_duration_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_request_duration_seconds_bucket{le=\"0.05\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_request_duration_seconds_bucket{le=\"30\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("btp_gateway_request_duration_seconds_count 3\n"),
            "{text}"
        );
    }

    #[test]
    fn instance_guard_restores_gauge() {
        static LOCAL: Metrics = Metrics::new();
        let guard = LOCAL.instance_started();
        assert!(
            LOCAL
                .render(Readings::default())
                .contains("btp_gateway_instances_in_use 1\n")
        );
        drop(guard);
        assert!(
            LOCAL
                .render(Readings::default())
                .contains("btp_gateway_instances_in_use 0\n")
        );
    }

    #[test]
    fn every_metric_has_help_and_type() {
        let text = Metrics::new().render(Readings {
            cache_bytes: 42,
            ..Readings::default()
        });
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {family} ")), "{line}");
        }
        assert!(text.contains("btp_gateway_component_cache_bytes 42\n"));
    }
}
