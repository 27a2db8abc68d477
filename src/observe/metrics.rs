//! Request metrics: per-worker single-writer atomic counters and Prometheus bucket histograms,
//! recorded lock-free with no allocation, summed over workers only when `/metrics` renders them
//! (the text formats: `metrics/exposition.rs`). Touches only its own state; quantiles:
//! `histogram.rs`.

mod exposition;

use super::histogram::{self, LatencyRecorder, LatencySnapshot};
use crate::http::method::Method;
use exposition::escape;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Default latency buckets in seconds, 100 µs to 10 s.
pub const DEFAULT_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The method table of `ringway_requests_total`; index = `Method as usize`, then `OTHER`.
pub const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "OTHER"];
/// Index of `OTHER` in [`METHODS`].
pub const METHOD_OTHER: usize = 7;
/// `route` label value of requests that matched no route: one row per stage, in
/// `ringway_requests_total` and both duration histograms (an empty value would read as no label).
pub const UNMATCHED_ROUTE: &str = "(none)";

pub use exposition::{CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_PROMETHEUS};

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const PER_ROW: usize = METHODS.len() * CLASSES.len();

/// Index into [`METHODS`] of a request method token (`OTHER` when unknown). Same as
/// `Method as usize` for a parsed [`Method`].
pub fn method_index(m: &str) -> usize {
    Method::from_bytes(m.as_bytes()).map_or(METHOD_OTHER, |m| m as usize)
}

/// Status class index: 1xx..5xx; anything below 200 is 1xx, anything from 500 up is 5xx.
#[inline]
fn class_index(status: u16) -> usize {
    (status / 100).clamp(1, 5) as usize - 1
}

/// The bounded label values, fixed for the life of a [`Metrics`].
pub struct Labels {
    pub stages: Vec<String>,
    /// Route ids (`GET /pets/{petId}`); every stage has the same route table.
    pub routes: Vec<String>,
    pub upstreams: Vec<String>,
    /// Histogram bucket upper bounds in seconds. Non-finite and non-positive values are dropped,
    /// the rest sorted and deduplicated; empty means [`DEFAULT_BUCKETS`].
    pub buckets: Vec<f64>,
    pub version: String,
    pub driver: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
    Bypass,
    Stale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleScope {
    KeyRoute,
    Key,
    Route,
    Global,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamError {
    Connect,
    Timeout,
    Reset,
    Invalid,
}

const CACHE_NAMES: [&str; 4] = ["hit", "miss", "bypass", "stale"];
const SCOPE_NAMES: [&str; 4] = ["key_route", "key", "route", "global"];
const ERROR_NAMES: [&str; 4] = ["connect", "timeout", "reset", "invalid"];

// Offsets in `WorkerMetrics::fixed`.
const CACHE: usize = 0;
const THROTTLE: usize = 4;
const QUOTA: usize = 8;
const BYTES_IN: usize = 9;
const BYTES_OUT: usize = 10;
const OPEN: usize = 11;
const LOG_DROPPED: usize = 12;
const TLS_OK: usize = 13;
const TLS_FAILED: usize = 14;
const FIXED: usize = 15;

/// Eight counters on one cache line.
#[repr(align(64))]
struct Line([AtomicU64; 8]);

/// A flat array of single-writer counters in whole cache lines: its own allocation, 64-byte
/// aligned and a multiple of 64 bytes long, so no two workers' counters ever share a line.
struct Counters(Box<[Line]>);

impl Counters {
    fn new(n: usize) -> Counters {
        Counters((0..n.div_ceil(8)).map(|_| Line(Default::default())).collect())
    }

    #[inline]
    fn get(&self, i: usize) -> &AtomicU64 {
        &self.0[i / 8].0[i % 8]
    }

    /// Single-writer add: only the owning worker thread calls it.
    #[inline]
    fn add(&self, i: usize, n: u64) {
        let c = self.get(i);
        c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
    }

    #[inline]
    fn load(&self, i: usize) -> u64 {
        self.get(i).load(Relaxed)
    }
}

/// One worker's counters. Single-writer rule: only that worker's thread records into them, each
/// counter as `store(load + n)` (no locked instruction); the admin thread only loads them at
/// scrape time. `Sync` as it holds only atomics: a write from another thread is no undefined
/// behaviour, it can only lose counts.
#[repr(align(64))]
pub struct WorkerMetrics {
    stages: usize,
    routes: usize,
    upstreams: usize,
    /// Bucket upper bounds in ns, ascending; bucket `edges.len()` is `+Inf`.
    edges: Box<[u64]>,
    /// [row][method][class], row = slot, or `stages * routes + stage` when unmatched.
    requests: Counters,
    /// [row][request | integration][bucket 0..=edges.len(), then sum_ns].
    hist: Counters,
    /// [upstream][reused false | true].
    up_conns: Counters,
    /// [upstream][UpstreamError].
    up_errors: Counters,
    /// Cache results, throttle scopes, quota, bytes, open connections (offsets above).
    fixed: Counters,
}

impl WorkerMetrics {
    fn new(stages: usize, routes: usize, upstreams: usize, edges: &[u64]) -> WorkerMetrics {
        let rows = stages * routes + stages;
        WorkerMetrics {
            stages,
            routes,
            upstreams,
            edges: edges.into(),
            requests: Counters::new(rows * PER_ROW),
            hist: Counters::new(rows * 2 * (edges.len() + 2)),
            up_conns: Counters::new(upstreams * 2),
            up_errors: Counters::new(upstreams * 4),
            fixed: Counters::new(FIXED),
        }
    }

    #[inline]
    fn hist_base(&self, row: usize, integration: bool) -> usize {
        (row * 2 + usize::from(integration)) * (self.edges.len() + 2)
    }

    /// Index of the bucket of `ns`: the first edge >= `ns` (a value on an edge is in that `le`
    /// bucket), `edges.len()` for `+Inf`. A branch-free count over ~16 edges.
    #[inline]
    fn bucket(&self, ns: u64) -> usize {
        self.edges.iter().map(|&e| usize::from(e < ns)).sum()
    }

    #[inline]
    fn observe(&self, row: usize, integration: bool, ns: u64) {
        let base = self.hist_base(row, integration);
        self.hist.add(base + self.bucket(ns), 1);
        self.hist.add(base + self.edges.len() + 1, ns);
    }

    /// One finished request. `slot` = stage * routes + route ([`Metrics::slot`]; `stage` is then
    /// unused), or None when no route matched (counted under `route="(none)"` of `stage`). `method` indexes [`METHODS`] (see
    /// [`method_index`]; out of range counts as `OTHER`). `total_ns` runs from the first byte in
    /// to the last byte out; `integration_ns` is the integration's share, when there was one.
    /// Out-of-range `stage`/`slot` are ignored.
    #[inline]
    pub fn request(
        &self,
        stage: usize,
        slot: Option<usize>,
        method: usize,
        status: u16,
        total_ns: u64,
        integration_ns: Option<u64>,
    ) {
        let row = match slot {
            Some(s) if s < self.stages * self.routes => s,
            None if stage < self.stages => self.stages * self.routes + stage,
            _ => return,
        };
        let method = method.min(METHOD_OTHER);
        self.requests.add(row * PER_ROW + method * CLASSES.len() + class_index(status), 1);
        self.observe(row, false, total_ns);
        if let Some(ns) = integration_ns {
            self.observe(row, true, ns);
        }
    }

    #[inline]
    pub fn bytes(&self, inbound: u64, outbound: u64) {
        self.fixed.add(BYTES_IN, inbound);
        self.fixed.add(BYTES_OUT, outbound);
    }

    #[inline]
    pub fn cache(&self, r: CacheResult) {
        self.fixed.add(CACHE + r as usize, 1);
    }

    #[inline]
    pub fn throttled(&self, s: ThrottleScope) {
        self.fixed.add(THROTTLE + s as usize, 1);
    }

    #[inline]
    pub fn quota_exceeded(&self) {
        self.fixed.add(QUOTA, 1);
    }

    /// A TLS handshake on a client connection completed.
    pub fn tls_handshake(&self) {
        self.fixed.add(TLS_OK, 1);
    }

    /// A TLS handshake on a client connection failed or timed out.
    pub fn tls_handshake_failed(&self) {
        self.fixed.add(TLS_FAILED, 1);
    }

    /// The worker's access log dropped lines so far (its writer keeps the running total).
    pub fn access_log_dropped(&self, total: u64) {
        self.fixed.get(LOG_DROPPED).store(total, Relaxed);
    }

    /// A request got an upstream connection: a fresh one, or `reused` from the pool.
    #[inline]
    pub fn upstream_connection(&self, upstream: usize, reused: bool) {
        if upstream < self.upstreams {
            self.up_conns.add(upstream * 2 + usize::from(reused), 1);
        }
    }

    #[inline]
    pub fn upstream_error(&self, upstream: usize, e: UpstreamError) {
        if upstream < self.upstreams {
            self.up_errors.add(upstream * 4 + e as usize, 1);
        }
    }

    #[inline]
    pub fn connection_opened(&self) {
        self.fixed.add(OPEN, 1);
    }

    #[inline]
    pub fn connection_closed(&self) {
        self.fixed.add(OPEN, u64::MAX); // wrapping -1
    }
}

/// All workers' metrics plus the label values; one per process, `Arc`-shared by the workers and
/// the admin thread.
pub struct Metrics {
    /// Label values, escaped for the exposition formats.
    stages: Vec<String>,
    routes: Vec<String>,
    upstreams: Vec<String>,
    version: String,
    driver: String,
    /// Raw names for the JSON of `latency_json`.
    raw_stages: Vec<String>,
    raw_routes: Vec<String>,
    buckets: Vec<f64>,
    workers: Box<[WorkerMetrics]>,
    latency: Box<[Arc<LatencySnapshot>]>,
    reloads: [AtomicU64; 2],
}

impl Metrics {
    pub fn new(labels: Labels, workers: usize) -> Metrics {
        let mut buckets: Vec<f64> = labels.buckets.into_iter().filter(|b| b.is_finite() && *b > 0.0).collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        if buckets.is_empty() {
            buckets = DEFAULT_BUCKETS.to_vec();
        }
        let edges: Vec<u64> = buckets.iter().map(|s| (s * 1e9).round() as u64).collect();
        let (stages, routes, upstreams) = (labels.stages.len(), labels.routes.len(), labels.upstreams.len());
        let escape_all = |v: &[String]| v.iter().map(|s| escape(s)).collect::<Vec<_>>();
        Metrics {
            stages: escape_all(&labels.stages),
            routes: escape_all(&labels.routes),
            upstreams: escape_all(&labels.upstreams),
            version: escape(&labels.version),
            driver: escape(&labels.driver),
            raw_stages: labels.stages,
            raw_routes: labels.routes,
            buckets,
            workers: (0..workers).map(|_| WorkerMetrics::new(stages, routes, upstreams, &edges)).collect(),
            latency: (0..workers).map(|_| Arc::new(LatencySnapshot::new(stages * routes))).collect(),
            reloads: Default::default(),
        }
    }

    /// The slot of (stage, route) for [`WorkerMetrics::request`] and [`LatencyRecorder::record`].
    pub fn slot(&self, stage: usize, route: usize) -> usize {
        stage * self.routes.len() + route
    }

    /// Worker `id`'s counters. Only worker `id`'s thread may record into them.
    pub fn worker(&self, id: usize) -> &WorkerMetrics {
        &self.workers[id]
    }

    /// Worker `id`'s quantile recorder, owned by that worker thread (`!Sync`). It records per
    /// slot (stage * routes + route) and publishes with `publish()` about once a second.
    pub fn recorder(&self, id: usize) -> LatencyRecorder {
        LatencyRecorder::new(self.latency[id].clone())
    }

    /// Takes over the reload counts of the metrics this replaces (a reloaded config).
    pub fn carry_reloads(&self, old: &Metrics) {
        for (n, o) in self.reloads.iter().zip(&old.reloads) {
            n.store(o.load(Relaxed), Relaxed);
        }
    }

    /// Counts one configuration reload; any thread.
    pub fn config_reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// JSON for `GET /debug/latency`: p50/p90/p99/p99.9/max in ms per (stage, route) with
    /// traffic, over all workers' published snapshots (cumulative since start).
    pub fn latency_json(&self, out: &mut String) {
        let routes = self.raw_routes.len();
        histogram::latency_json(
            &self.latency,
            |slot| (&self.raw_stages[slot / routes], &self.raw_routes[slot % routes]),
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn labels() -> Labels {
        Labels {
            stages: vec!["prod".into()],
            routes: vec!["GET /pets".into(), "GET /pets/{petId}".into()],
            upstreams: vec!["pets".into()],
            buckets: vec![],
            version: "0.1.0".into(),
            driver: "io_uring".into(),
        }
    }

    pub(super) fn render(m: &Metrics, om: bool) -> String {
        let mut out = String::new();
        m.render(&mut out, om);
        out
    }

    /// Every line is a comment or `name{labels} value` with a numeric value.
    pub(super) fn assert_parses(text: &str) {
        for line in text.lines() {
            if line.starts_with("# ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "bad value: {line}");
            let name_end = series.find('{').unwrap_or(series.len());
            let name = &series[..name_end];
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad name: {line}"
            );
            if name_end < series.len() {
                assert!(series.ends_with('}'), "bad labels: {line}");
                let mut rest = &series[name_end + 1..series.len() - 1];
                while !rest.is_empty() {
                    let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                    assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad label name: {line}");
                    let mut end = None;
                    let mut chars = after.char_indices();
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n'))), "bad escape: {line}"),
                            '"' => {
                                end = Some(i);
                                break;
                            }
                            '\n' => panic!("raw newline: {line}"),
                            _ => {}
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("unterminated label: {line}"));
                    rest = after[end + 1..].strip_prefix(',').unwrap_or(&after[end + 1..]);
                }
            }
        }
    }

    #[test]
    fn method_and_class_tables() {
        assert_eq!(method_index("GET"), 0);
        assert_eq!(method_index("OPTIONS"), 6);
        assert_eq!(method_index("get"), METHOD_OTHER);
        assert_eq!(method_index("PROPFIND"), METHOD_OTHER);
        for m in Method::ALL {
            assert_eq!(METHODS[m as usize], m.as_str());
        }
        assert_eq!(
            [99, 100, 204, 302, 404, 503, 600].map(|s| CLASSES[class_index(s)]),
            ["1xx", "1xx", "2xx", "3xx", "4xx", "5xx", "5xx"]
        );
    }

    #[test]
    fn value_on_an_edge_goes_into_that_bucket() {
        let m = Metrics::new(labels(), 1);
        let w = m.worker(0);
        assert_eq!(w.bucket(0), 0);
        assert_eq!(w.bucket(100_000), 0); // exactly 0.0001 s
        assert_eq!(w.bucket(100_001), 1);
        assert_eq!(w.bucket(250_000), 1); // exactly 0.00025 s
        assert_eq!(w.bucket(1_000_000_000), 12); // exactly 1 s
        assert_eq!(w.bucket(10_000_000_000), 15); // exactly 10 s
        assert_eq!(w.bucket(10_000_000_001), 16); // +Inf
        w.request(0, Some(0), 0, 200, 250_000, None);
        let text = render(&m, false);
        assert!(text
            .contains("ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets\",le=\"0.0001\"} 0\n"));
        assert!(text.contains(
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets\",le=\"0.00025\"} 1\n"
        ));
    }

    #[test]
    fn configured_buckets_are_cleaned() {
        let mut l = labels();
        l.buckets = vec![2.0, f64::NAN, 0.5, -1.0, 0.5];
        let m = Metrics::new(l, 1);
        assert_eq!(m.buckets, [0.5, 2.0]);
        assert_eq!(&*m.worker(0).edges, [500_000_000, 2_000_000_000]);
    }

    #[test]
    fn counts_from_several_writers_are_exact() {
        let m = Arc::new(Metrics::new(labels(), 3));
        let reader = {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let mut out = String::new();
                    m.render(&mut out, false);
                    assert_parses(&out);
                }
            })
        };
        let writers: Vec<_> = (0..3)
            .map(|id| {
                let m = m.clone();
                std::thread::spawn(move || {
                    let w = m.worker(id);
                    for i in 0..10_000u64 {
                        w.request(0, Some((i % 2) as usize), 0, 200, 1_000, Some(500));
                        w.bytes(3, 5);
                        w.cache(CacheResult::Hit);
                        w.upstream_connection(0, i % 2 == 0);
                        w.connection_opened();
                        w.connection_closed();
                    }
                    w.connection_opened();
                })
            })
            .collect();
        writers.into_iter().for_each(|t| t.join().unwrap());
        reader.join().unwrap();
        let text = render(&m, false);
        for route in ["GET /pets", "GET /pets/{petId}"] {
            let line = format!("ringway_requests_total{{stage=\"prod\",route=\"{route}\",method=\"GET\",status_class=\"2xx\"}} 15000\n");
            assert!(text.contains(&line), "{line}");
            assert!(text.contains(&format!(
                "ringway_request_duration_seconds_count{{stage=\"prod\",route=\"{route}\"}} 15000\n"
            )));
            assert!(text.contains(&format!(
                "ringway_request_duration_seconds_sum{{stage=\"prod\",route=\"{route}\"}} 0.015\n"
            )));
            assert!(text.contains(&format!(
                "ringway_integration_duration_seconds_count{{stage=\"prod\",route=\"{route}\"}} 15000\n"
            )));
        }
        assert!(text.contains("ringway_bytes_total{direction=\"in\"} 90000\n"));
        assert!(text.contains("ringway_bytes_total{direction=\"out\"} 150000\n"));
        assert!(text.contains("ringway_cache_requests_total{result=\"hit\"} 30000\n"));
        assert!(text.contains("ringway_upstream_connections_total{upstream=\"pets\",reused=\"true\"} 15000\n"));
        assert!(text.contains("ringway_upstream_connections_total{upstream=\"pets\",reused=\"false\"} 15000\n"));
        for id in 0..3 {
            assert!(text.contains(&format!("ringway_open_connections{{worker=\"{id}\"}} 1\n")));
        }
    }

    #[test]
    fn out_of_range_indexes_are_ignored() {
        let m = Metrics::new(labels(), 1);
        let w = m.worker(0);
        w.request(0, Some(2), 0, 200, 1, None); // 1 stage * 2 routes: slot 2 does not exist
        w.request(1, None, 0, 200, 1, None);
        w.request(0, Some(0), 99, 200, 1, None); // method out of range: OTHER
        w.upstream_connection(1, true);
        w.upstream_error(5, UpstreamError::Connect);
        let text = render(&m, false);
        let requests = text.lines().filter(|l| l.starts_with("ringway_requests_total{")).collect::<Vec<_>>();
        assert_eq!(
            requests,
            ["ringway_requests_total{stage=\"prod\",route=\"GET /pets\",method=\"OTHER\",status_class=\"2xx\"} 1"]
        );
        assert!(!text.contains("upstream=\""));
    }

    #[test]
    fn latency_json_over_workers() {
        let m = Metrics::new(labels(), 2);
        let recs = [m.recorder(0), m.recorder(1)];
        for us in 1..=1000u64 {
            recs[(us % 2) as usize].record(1, us * 1_000);
        }
        let mut out = String::new();
        m.latency_json(&mut out);
        assert_eq!(out, r#"{"routes":[]}"#); // nothing published yet
        recs.iter().for_each(|r| assert!(r.publish()));
        out.clear();
        m.latency_json(&mut out);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let r = &v["routes"][0];
        assert_eq!(v["routes"].as_array().unwrap().len(), 1);
        assert_eq!(
            (r["stage"].as_str(), r["route"].as_str(), r["count"].as_u64()),
            (Some("prod"), Some("GET /pets/{petId}"), Some(1000))
        );
        let p50 = r["p50_ms"].as_f64().unwrap();
        assert!((p50 - 0.5).abs() <= 0.005, "{p50}");
    }

    #[test]
    fn shared_types_are_sync() {
        fn sync<T: Send + Sync>() {}
        sync::<Metrics>();
        sync::<WorkerMetrics>();
        fn send<T: Send>() {}
        send::<LatencyRecorder>();
    }

    #[test]
    fn worker_blocks_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<WorkerMetrics>(), 64);
        assert_eq!(std::mem::size_of::<WorkerMetrics>() % 64, 0);
        assert_eq!(std::mem::size_of::<Line>(), 64);
        let m = Metrics::new(labels(), 2);
        for w in m.workers.iter() {
            for c in [&w.requests, &w.hist, &w.fixed, &w.up_conns] {
                assert_eq!(c.0.as_ptr() as usize % 64, 0);
            }
        }
    }
}
