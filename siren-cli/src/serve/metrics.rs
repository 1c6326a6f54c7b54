//! The server's counters, exposed at `GET /metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use siren_core::serving::CacheStats;

/// Upper bounds of the request latency histogram, seconds.
const LATENCY_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds of the batch size histogram, prompts.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// A cumulative histogram.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Tables {
    requests: BTreeMap<(String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    batches: Option<Histogram>,
    cache: CacheStats,
}

/// Every counter of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    /// Requests waiting for the model.
    pub queue_depth: AtomicI64,
    /// The queue's bound.
    pub queue_capacity: AtomicI64,
    /// Requests dropped by the model worker because their client had gone or their time was
    /// up.
    pub abandoned: AtomicU64,
    /// Requests refused because the queue was full or its wait too long.
    pub rejected: AtomicU64,
    /// Prompt tokens waiting in the queue (each request's user part counted once).
    pub queued_tokens: AtomicI64,
    /// Prompt tokens the model is computing now.
    pub busy_tokens: AtomicI64,
    /// Recent model seconds per computed prompt token (f64 bits; 0 until the first batch).
    pub seconds_per_token: AtomicU64,
    /// Batches whose scoring panicked (each of their requests got 500; the worker went on).
    pub model_panics: AtomicU64,
}

impl Metrics {
    /// Recent model seconds per computed prompt token (0 before the first batch).
    pub fn seconds_per_token(&self) -> f64 {
        f64::from_bits(self.seconds_per_token.load(Ordering::Relaxed))
    }

    /// Folds one batch's seconds per computed token into the running estimate.
    pub fn observe_speed(&self, seconds: f64, tokens: usize) {
        if tokens == 0 {
            return;
        }
        let now = seconds / tokens as f64;
        let old = self.seconds_per_token();
        let new = if old == 0.0 {
            now
        } else {
            0.7 * old + 0.3 * now
        };
        self.seconds_per_token
            .store(new.to_bits(), Ordering::Relaxed);
    }
}

impl Metrics {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic elsewhere while holding the lock leaves plain counters: keep serving them.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one finished request.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        let mut t = self.tables();
        *t.requests.entry((route.to_string(), status)).or_default() += 1;
        t.latency
            .entry(route.to_string())
            .or_insert_with(|| Histogram::new(&LATENCY_BUCKETS))
            .observe(seconds);
    }

    /// Records one scored batch of `prompts` prompts and the cache counters after it.
    pub fn batch(&self, prompts: usize, cache: CacheStats) {
        let mut t = self.tables();
        t.batches
            .get_or_insert_with(|| Histogram::new(&BATCH_BUCKETS))
            .observe(prompts as f64);
        t.cache = cache;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let t = self.tables();
        let mut s = String::new();
        s.push_str("# HELP siren_requests_total Requests by route and status.\n");
        s.push_str("# TYPE siren_requests_total counter\n");
        for ((route, status), n) in &t.requests {
            let _ = writeln!(
                s,
                "siren_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        s.push_str("# HELP siren_request_duration_seconds Request latency by route.\n");
        s.push_str("# TYPE siren_request_duration_seconds histogram\n");
        for (route, h) in &t.latency {
            h.write(
                &mut s,
                "siren_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        s.push_str("# HELP siren_batch_prompts Prompts scored per model batch.\n");
        s.push_str("# TYPE siren_batch_prompts histogram\n");
        t.batches
            .clone()
            .unwrap_or_else(|| Histogram::new(&BATCH_BUCKETS))
            .write(&mut s, "siren_batch_prompts", "");
        let gauge = |s: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = write!(
                s,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            );
        };
        gauge(
            &mut s,
            "siren_queue_depth",
            "Requests waiting for the model.",
            "gauge",
            self.queue_depth.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "siren_queue_capacity",
            "Most requests that may wait; beyond it requests get 503.",
            "gauge",
            self.queue_capacity.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "siren_queued_tokens",
            "Prompt tokens waiting for the model.",
            "gauge",
            self.queued_tokens.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "siren_seconds_per_token",
            "Recent model seconds per computed prompt token (admission estimates waits with it).",
            "gauge",
            self.seconds_per_token().to_string(),
        );
        gauge(
            &mut s,
            "siren_rejected_total",
            "Requests refused with 503: the queue was full or its wait past the timeout.",
            "counter",
            self.rejected.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "siren_model_panics_total",
            "Batches whose scoring panicked: their requests got 500 and the worker went on.",
            "counter",
            self.model_panics.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut s,
            "siren_abandoned_total",
            "Queued requests dropped unscored: client gone or time up.",
            "counter",
            self.abandoned.load(Ordering::Relaxed).to_string(),
        );
        let c = t.cache;
        for (name, help, kind, v) in [
            (
                "siren_prefix_cache_hits_total",
                "Per-user prefixes found in the cache.",
                "counter",
                c.hits as f64,
            ),
            (
                "siren_prefix_cache_misses_total",
                "Per-user prefixes computed.",
                "counter",
                c.misses as f64,
            ),
            (
                "siren_prefix_cache_evictions_total",
                "Prefixes dropped to stay within the memory bound.",
                "counter",
                c.evictions as f64,
            ),
            (
                "siren_prefix_cache_entries",
                "Prefixes held.",
                "gauge",
                c.entries as f64,
            ),
            (
                "siren_prefix_cache_bytes",
                "Bytes of keys and values held.",
                "gauge",
                c.bytes as f64,
            ),
            (
                "siren_prefix_cache_max_bytes",
                "The cache's memory bound.",
                "gauge",
                c.max_bytes as f64,
            ),
        ] {
            gauge(&mut s, name, help, kind, v.to_string());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_the_text_is_prometheus() {
        let m = Metrics::default();
        m.request("/v1/predict", 200, 0.02);
        m.request("/v1/predict", 200, 3.0);
        m.request("/v1/predict", 400, 0.001);
        m.batch(3, CacheStats::default());
        let t = m.render();
        assert!(
            t.contains("siren_requests_total{route=\"/v1/predict\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(t.contains("siren_requests_total{route=\"/v1/predict\",status=\"400\"} 1"));
        assert!(t.contains(
            "siren_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.005\"} 1"
        ));
        assert!(t.contains(
            "siren_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"0.025\"} 2"
        ));
        assert!(t.contains(
            "siren_request_duration_seconds_bucket{route=\"/v1/predict\",le=\"+Inf\"} 3"
        ));
        assert!(t.contains("siren_request_duration_seconds_count{route=\"/v1/predict\"} 3"));
        assert!(t.contains("siren_batch_prompts_bucket{le=\"2\"} 0"));
        assert!(t.contains("siren_batch_prompts_bucket{le=\"4\"} 1"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let v = line.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
    }
}
