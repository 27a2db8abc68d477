//! The Prometheus exposition of [`Metrics`]: `/metrics` as Prometheus text 0.0.4 or
//! OpenMetrics 1.0 text, summing every worker's counters at scrape time, and the escaping of
//! label values. Recording lives in `metrics.rs`.

use super::{
    Metrics, WorkerMetrics, BYTES_IN, BYTES_OUT, CACHE, CACHE_NAMES, CLASSES, ERROR_NAMES, LOG_DROPPED, METHODS, OPEN,
    PER_ROW, QUOTA, SCOPE_NAMES, THROTTLE, TLS_FAILED, TLS_OK, UNMATCHED_ROUTE,
};
use std::fmt::{Display, Write};
use std::sync::atomic::Ordering::Relaxed;

/// Content type of [`Metrics::render`] output with `openmetrics == false`.
pub const CONTENT_TYPE_PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of [`Metrics::render`] output with `openmetrics == true`.
pub const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Metrics {
    fn sum(&self, f: impl Fn(&WorkerMetrics) -> u64) -> u64 {
        self.workers.iter().map(f).fold(0, u64::wrapping_add)
    }

    /// `stage="..",route=".."` of a row.
    fn row_labels(&self, row: usize) -> (&str, &str) {
        let per_stage = self.routes.len();
        let matched = self.stages.len() * per_stage;
        if row < matched {
            (&self.stages[row / per_stage], &self.routes[row % per_stage])
        } else {
            (&self.stages[row - matched], UNMATCHED_ROUTE)
        }
    }

    /// Prometheus text format 0.0.4, or OpenMetrics 1.0 text when `openmetrics` (families named
    /// without `_total`, `info` type for build info, `# UNIT` lines, floats with `.0`, `# EOF`).
    /// Large families (requests, upstreams) show only non-zero series, histograms only series
    /// with a count; small fixed families show every series.
    pub fn render(&self, out: &mut String, openmetrics: bool) {
        let mut f = Fmt { out, om: openmetrics };
        self.render_requests(&mut f);
        self.render_histogram(&mut f, false);
        self.render_histogram(&mut f, true);

        f.header("ringway_cache_requests_total", Kind::Counter, "Response cache lookups by result.", None);
        for (i, r) in CACHE_NAMES.iter().enumerate() {
            let v = self.sum(|w| w.fixed.load(CACHE + i));
            f.sample("ringway_cache_requests_total", format_args!("{{result=\"{r}\"}}"), v);
        }
        f.header("ringway_throttled_total", Kind::Counter, "Requests refused by a rate limit, by limit scope.", None);
        for (i, s) in SCOPE_NAMES.iter().enumerate() {
            let v = self.sum(|w| w.fixed.load(THROTTLE + i));
            f.sample("ringway_throttled_total", format_args!("{{scope=\"{s}\"}}"), v);
        }
        f.header("ringway_quota_exceeded_total", Kind::Counter, "Requests refused by a usage plan quota.", None);
        f.sample("ringway_quota_exceeded_total", format_args!(""), self.sum(|w| w.fixed.load(QUOTA)));
        f.header(
            "ringway_access_log_dropped_total",
            Kind::Counter,
            "Access log lines dropped because the destination could not keep up.",
            None,
        );
        f.sample("ringway_access_log_dropped_total", format_args!(""), self.sum(|w| w.fixed.load(LOG_DROPPED)));
        f.header("ringway_tls_handshakes_total", Kind::Counter, "TLS handshakes with clients, by result.", None);
        for (r, i) in [("ok", TLS_OK), ("failed", TLS_FAILED)] {
            f.sample("ringway_tls_handshakes_total", format_args!("{{result=\"{r}\"}}"), self.sum(|w| w.fixed.load(i)));
        }

        f.header(
            "ringway_upstream_connections_total",
            Kind::Counter,
            "Upstream connections used, fresh or reused.",
            None,
        );
        for (u, name) in self.upstreams.iter().enumerate() {
            for reused in [false, true] {
                let v = self.sum(|w| w.up_conns.load(u * 2 + usize::from(reused)));
                if v != 0 {
                    f.sample(
                        "ringway_upstream_connections_total",
                        format_args!("{{upstream=\"{name}\",reused=\"{reused}\"}}"),
                        v,
                    );
                }
            }
        }
        f.header("ringway_upstream_errors_total", Kind::Counter, "Upstream failures by kind.", None);
        for (u, name) in self.upstreams.iter().enumerate() {
            for (k, kind) in ERROR_NAMES.iter().enumerate() {
                let v = self.sum(|w| w.up_errors.load(u * 4 + k));
                if v != 0 {
                    f.sample(
                        "ringway_upstream_errors_total",
                        format_args!("{{upstream=\"{name}\",kind=\"{kind}\"}}"),
                        v,
                    );
                }
            }
        }
        f.header("ringway_open_connections", Kind::Gauge, "Client connections open, per worker.", None);
        for (i, w) in self.workers.iter().enumerate() {
            f.sample("ringway_open_connections", format_args!("{{worker=\"{i}\"}}"), w.fixed.load(OPEN) as i64);
        }
        f.header("ringway_bytes_total", Kind::Counter, "Client bytes received (in) and sent (out).", Some("bytes"));
        f.sample("ringway_bytes_total", format_args!("{{direction=\"in\"}}"), self.sum(|w| w.fixed.load(BYTES_IN)));
        f.sample("ringway_bytes_total", format_args!("{{direction=\"out\"}}"), self.sum(|w| w.fixed.load(BYTES_OUT)));
        f.header("ringway_config_reloads_total", Kind::Counter, "Configuration reloads by result.", None);
        for (i, r) in ["success", "failure"].iter().enumerate() {
            f.sample("ringway_config_reloads_total", format_args!("{{result=\"{r}\"}}"), self.reloads[i].load(Relaxed));
        }
        f.header("ringway_build_info", Kind::Info, "Version and I/O driver of this build.", None);
        let (version, driver) = (&self.version, &self.driver);
        f.sample("ringway_build_info", format_args!("{{version=\"{version}\",driver=\"{driver}\"}}"), 1);
        if openmetrics {
            f.out.push_str("# EOF\n");
        }
    }

    fn render_requests(&self, f: &mut Fmt<'_>) {
        let name = "ringway_requests_total";
        f.header(name, Kind::Counter, "Finished requests by stage, route, method and status class.", None);
        let rows = self.stages.len() * self.routes.len() + self.stages.len();
        for row in 0..rows {
            let (stage, route) = self.row_labels(row);
            for (m, method) in METHODS.iter().enumerate() {
                for (c, class) in CLASSES.iter().enumerate() {
                    let i = row * PER_ROW + m * CLASSES.len() + c;
                    let v = self.sum(|w| w.requests.load(i));
                    if v != 0 {
                        let labels = format_args!(
                            "{{stage=\"{stage}\",route=\"{route}\",method=\"{method}\",status_class=\"{class}\"}}"
                        );
                        f.sample(name, labels, v);
                    }
                }
            }
        }
    }

    fn render_histogram(&self, f: &mut Fmt<'_>, integration: bool) {
        let (name, help) = if integration {
            ("ringway_integration_duration_seconds", "Time spent in the integration (upstream exchange).")
        } else {
            ("ringway_request_duration_seconds", "Request duration from the first byte in to the last byte out.")
        };
        f.header(name, Kind::Histogram, help, Some("seconds"));
        let nb = self.buckets.len() + 1;
        let mut counts = vec![0u64; nb];
        let rows = self.stages.len() * self.routes.len() + self.stages.len();
        for row in 0..rows {
            counts.iter_mut().for_each(|c| *c = 0);
            let mut sum_ns = 0u64;
            for w in self.workers.iter() {
                let base = w.hist_base(row, integration);
                for (b, c) in counts.iter_mut().enumerate() {
                    *c = c.wrapping_add(w.hist.load(base + b));
                }
                sum_ns = sum_ns.wrapping_add(w.hist.load(base + nb));
            }
            let count: u64 = counts.iter().sum();
            if count == 0 {
                continue;
            }
            let (stage, route) = self.row_labels(row);
            let mut cumulative = 0;
            for (b, c) in counts.iter().enumerate() {
                cumulative += c;
                let le = Le(self.buckets.get(b).copied(), f.om);
                f.sample(name, format_args!("_bucket{{stage=\"{stage}\",route=\"{route}\",le=\"{le}\"}}"), cumulative);
            }
            f.sample(
                name,
                format_args!("_sum{{stage=\"{stage}\",route=\"{route}\"}}"),
                Float(sum_ns as f64 / 1e9, f.om),
            );
            f.sample(name, format_args!("_count{{stage=\"{stage}\",route=\"{route}\"}}"), count);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Info,
}

/// Writes headers and samples into the output in one of the two formats.
struct Fmt<'a> {
    out: &'a mut String,
    om: bool,
}

impl Fmt<'_> {
    /// `# HELP`, `# TYPE` (and `# UNIT` in OpenMetrics) for the family whose sample name is
    /// `name`. OpenMetrics names counter families without `_total` and info families without
    /// `_info`; Prometheus text has no info type and calls it a gauge.
    fn header(&mut self, name: &str, kind: Kind, help: &str, unit: Option<&str>) {
        let (family, ty) = match (kind, self.om) {
            (Kind::Counter, true) => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            (Kind::Counter, false) => (name, "counter"),
            (Kind::Info, true) => (name.strip_suffix("_info").unwrap_or(name), "info"),
            (Kind::Info, false) | (Kind::Gauge, _) => (name, "gauge"),
            (Kind::Histogram, _) => (name, "histogram"),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}");
        let _ = writeln!(self.out, "# TYPE {family} {ty}");
        if let (true, Some(unit)) = (self.om, unit) {
            let _ = writeln!(self.out, "# UNIT {family} {unit}");
        }
    }

    /// `name` + `rest` (suffix and `{labels}`, values already escaped) + ` value`.
    fn sample(&mut self, name: &str, rest: std::fmt::Arguments<'_>, value: impl Display) {
        let _ = writeln!(self.out, "{name}{rest} {value}");
    }
}

/// A float sample value: shortest round-trip; OpenMetrics wants a `.0` on integral values.
struct Float(f64, bool);

impl Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.1 && self.0.fract() == 0.0 {
            write!(f, "{:.1}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// An `le` label value: a bucket bound in seconds, or `+Inf` for None.
struct Le(Option<f64>, bool);

impl Display for Le {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => Float(v, self.1).fmt(f),
            None => f.write_str("+Inf"),
        }
    }
}

/// Escapes a label value for both text formats: `\` `"` and newline.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_parses, labels, render};
    use super::super::{method_index, ThrottleScope, UpstreamError};
    use super::*;

    #[test]
    fn render_snapshot() {
        let m = Metrics::new(labels(), 2);
        m.worker(0).request(0, Some(1), method_index("GET"), 404, 3_000_000, Some(2_000_000));
        m.worker(1).request(0, Some(1), method_index("GET"), 200, 1_500_000_000, Some(1_000_000_000));
        m.worker(1).request(0, None, method_index("BREW"), 404, 50_000, None);
        m.worker(0).throttled(ThrottleScope::KeyRoute);
        m.worker(1).quota_exceeded();
        m.worker(1).upstream_error(0, UpstreamError::Timeout);
        m.worker(0).connection_opened();
        m.worker(1).connection_closed();
        m.config_reload(true);
        m.config_reload(false);
        m.config_reload(true);
        let text = render(&m, false);
        assert_parses(&text);
        let expect = [
            "# HELP ringway_requests_total Finished requests by stage, route, method and status class.",
            "# TYPE ringway_requests_total counter",
            "ringway_requests_total{stage=\"prod\",route=\"GET /pets/{petId}\",method=\"GET\",status_class=\"2xx\"} 1",
            "ringway_requests_total{stage=\"prod\",route=\"GET /pets/{petId}\",method=\"GET\",status_class=\"4xx\"} 1",
            "ringway_requests_total{stage=\"prod\",route=\"(none)\",method=\"OTHER\",status_class=\"4xx\"} 1",
            "# TYPE ringway_request_duration_seconds histogram",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"0.0025\"} 0",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"0.005\"} 1",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"1\"} 1",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"2.5\"} 2",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"10\"} 2",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets/{petId}\",le=\"+Inf\"} 2",
            "ringway_request_duration_seconds_sum{stage=\"prod\",route=\"GET /pets/{petId}\"} 1.503",
            "ringway_request_duration_seconds_count{stage=\"prod\",route=\"GET /pets/{petId}\"} 2",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"(none)\",le=\"0.0001\"} 1",
            "ringway_integration_duration_seconds_sum{stage=\"prod\",route=\"GET /pets/{petId}\"} 1.002",
            "ringway_integration_duration_seconds_count{stage=\"prod\",route=\"GET /pets/{petId}\"} 2",
            "ringway_cache_requests_total{result=\"stale\"} 0",
            "ringway_throttled_total{scope=\"key_route\"} 1",
            "ringway_throttled_total{scope=\"global\"} 0",
            "ringway_quota_exceeded_total 1",
            "ringway_upstream_errors_total{upstream=\"pets\",kind=\"timeout\"} 1",
            "ringway_open_connections{worker=\"0\"} 1",
            "ringway_open_connections{worker=\"1\"} -1",
            "ringway_config_reloads_total{result=\"success\"} 2",
            "ringway_config_reloads_total{result=\"failure\"} 1",
            "# TYPE ringway_build_info gauge",
            "ringway_build_info{version=\"0.1.0\",driver=\"io_uring\"} 1",
        ];
        let lines: Vec<&str> = text.lines().collect();
        for e in expect {
            assert!(lines.contains(&e), "missing {e:?} in\n{text}");
        }
        // Zero series of the big families are not shown; no route without traffic appears.
        assert!(!text.contains("route=\"GET /pets\""));
        assert!(!text.contains("status_class=\"5xx\""));
        assert!(!text.contains("kind=\"connect\""));
        assert!(!text.contains("ringway_upstream_connections_total{"));
        assert!(!text.contains("# EOF"));
        assert!(text.ends_with('\n'));
        // Each family has exactly one HELP and one TYPE.
        assert_eq!(text.matches("# TYPE ").count(), 14);
        assert_eq!(text.matches("# HELP ").count(), 14);
    }

    #[test]
    fn openmetrics_format() {
        let m = Metrics::new(labels(), 1);
        m.worker(0).request(0, Some(0), 1, 201, 2_000_000_000, None);
        let text = render(&m, true);
        assert_parses(&text);
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
        let lines: Vec<&str> = text.lines().collect();
        for e in [
            "# TYPE ringway_requests counter",
            "ringway_requests_total{stage=\"prod\",route=\"GET /pets\",method=\"POST\",status_class=\"2xx\"} 1",
            "# TYPE ringway_request_duration_seconds histogram",
            "# UNIT ringway_request_duration_seconds seconds",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets\",le=\"1.0\"} 0",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets\",le=\"2.5\"} 1",
            "ringway_request_duration_seconds_bucket{stage=\"prod\",route=\"GET /pets\",le=\"+Inf\"} 1",
            "ringway_request_duration_seconds_sum{stage=\"prod\",route=\"GET /pets\"} 2.0",
            "# TYPE ringway_quota_exceeded counter",
            "ringway_quota_exceeded_total 0",
            "# TYPE ringway_bytes counter",
            "# UNIT ringway_bytes bytes",
            "# TYPE ringway_open_connections gauge",
            "# TYPE ringway_build info",
            "ringway_build_info{version=\"0.1.0\",driver=\"io_uring\"} 1",
        ] {
            assert!(lines.contains(&e), "missing {e:?} in\n{text}");
        }
        assert!(!text.contains("# TYPE ringway_requests_total"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut l = labels();
        l.stages = vec!["a\"b".into()];
        l.routes = vec!["GET /x\\y".into()];
        l.upstreams = vec!["line\nbreak".into()];
        l.version = "v\"1\"".into();
        let m = Metrics::new(l, 1);
        m.worker(0).request(0, Some(0), 0, 200, 1, None);
        m.worker(0).upstream_error(0, UpstreamError::Reset);
        let text = render(&m, false);
        assert_parses(&text);
        assert!(text
            .contains(r#"ringway_requests_total{stage="a\"b",route="GET /x\\y",method="GET",status_class="2xx"} 1"#));
        assert!(text.contains(r#"ringway_upstream_errors_total{upstream="line\nbreak",kind="reset"} 1"#));
        assert!(text.contains(r#"ringway_build_info{version="v\"1\"",driver="io_uring"} 1"#));
        assert_parses(&render(&m, true));
    }
}
