//! Metrics through the real binary: the exposition checked by `promtool check metrics`,
//! OpenMetrics on request, /debug/latency, and a real Prometheus server scraping ringway,
//! queried through its HTTP API for what the test sent.
mod support;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn config(up: &Upstream) -> String {
    format!(
        r#"
[stages.test]

[[routes]]
path = "/slow"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{up}/slow" }}

[[routes]]
path = "/cached"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{up}/cached" }}
cache = {{ ttl_s = 300 }}

[[routes]]
path = "/limited"
method = "GET"
integration = {{ type = "mock", body = "ok" }}
throttle = {{ rate = 0.001, burst = 1 }}
"#,
        up = up.hostport()
    )
}

fn slow_upstream() -> Upstream {
    Upstream::start(|req| {
        if req.target == "/slow" {
            Reply::ok("slow").delay(Duration::from_millis(15))
        } else {
            Reply::ok("cached")
        }
    })
}

/// The value of the sample `line_prefix ...` in a text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Sends the test's traffic; returns the slowest `/slow` request as the client saw it.
fn traffic(gw: &Gateway) -> Duration {
    let mut c = gw.connect();
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        assert_eq!(c.roundtrip("GET", "/test/slow", &[], b"").status, 200);
        slowest = slowest.max(t.elapsed());
    }
    for _ in 0..5 {
        assert_eq!(c.roundtrip("GET", "/test/cached", &[], b"").status, 200);
    }
    let statuses: Vec<u16> = (0..3).map(|_| c.roundtrip("GET", "/test/limited", &[], b"").status).collect();
    assert_eq!(statuses, [200, 429, 429]);
    assert_eq!(c.roundtrip("GET", "/test/nowhere", &[], b"").status, 403);
    slowest
}

#[test]
fn exposition_counts_what_was_sent_and_passes_promtool() {
    let up = slow_upstream();
    let gw = Gateway::start(&config(&up));
    let _ = traffic(&gw);
    // A worker counts a request just after writing its response: the client can scrape
    // before the last one (the 403) is counted, so wait for it.
    let last = r#"ringway_requests_total{stage="test",route="(none)",method="GET",status_class="4xx"}"#;
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let r = gw.admin("GET", "/metrics");
        if sample(&r.text(), last).is_some() || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"), "{r}");
    let text = r.text();
    let req = |route: &str, class: &str| {
        sample(
            &text,
            &format!(r#"ringway_requests_total{{stage="test",route="{route}",method="GET",status_class="{class}"}}"#),
        )
    };
    assert_eq!(req("GET /slow", "2xx"), Some(40.0), "{text}");
    assert_eq!(req("GET /cached", "2xx"), Some(5.0));
    assert_eq!(req("GET /limited", "2xx"), Some(1.0));
    assert_eq!(req("GET /limited", "4xx"), Some(2.0));
    assert_eq!(req("(none)", "4xx"), Some(1.0));
    assert_eq!(sample(&text, r#"ringway_cache_requests_total{result="hit"}"#), Some(4.0));
    assert_eq!(sample(&text, r#"ringway_cache_requests_total{result="miss"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"ringway_throttled_total{scope="route"}"#), Some(2.0));
    let slow_count = r#"ringway_request_duration_seconds_count{stage="test",route="GET /slow"}"#;
    assert_eq!(sample(&text, slow_count), Some(40.0));
    let under_10ms = r#"ringway_request_duration_seconds_bucket{stage="test",route="GET /slow",le="0.01"}"#;
    assert_eq!(sample(&text, under_10ms), Some(0.0), "the upstream takes 15 ms");
    let under_1s = r#"ringway_integration_duration_seconds_bucket{stage="test",route="GET /slow",le="1"}"#;
    assert_eq!(sample(&text, under_1s), Some(40.0));
    let fresh =
        sample(&text, &format!(r#"ringway_upstream_connections_total{{upstream="{}",reused="false"}}"#, up.hostport()));
    let reused =
        sample(&text, &format!(r#"ringway_upstream_connections_total{{upstream="{}",reused="true"}}"#, up.hostport()));
    assert_eq!(fresh.unwrap_or(0.0) + reused.unwrap_or(0.0), 41.0, "40 slow + 1 cache miss went upstream");
    assert!(reused.unwrap_or(0.0) >= 39.0, "keep-alive: {text}");
    assert!(sample(&text, "ringway_bytes_total{direction=\"out\"}").unwrap() > 0.0);
    assert!(text.contains("ringway_build_info{version=\""), "{text}");

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test installs it)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics: {said}");
    assert!(said.trim().is_empty(), "promtool lint: {said}");
}

#[test]
fn openmetrics_and_debug_latency() {
    let up = slow_upstream();
    let gw = Gateway::start(&config(&up));
    let _ = traffic(&gw);
    let mut c = Conn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], gw.admin_port())));
    c.send(&request("GET", "/metrics", &[("Accept", "application/openmetrics-text; version=1.0.0")], b""));
    let r = c.read_response();
    assert!(r.header("content-type").unwrap().starts_with("application/openmetrics-text"), "{r}");
    assert!(r.text().ends_with("# EOF\n"));
    assert!(r.text().contains("# TYPE ringway_requests counter"));
    // Workers publish their exact histograms about once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw.admin("GET", "/debug/latency");
        let v: serde_json::Value = serde_json::from_str(&r.text()).expect("JSON");
        let slow = v["routes"].as_array().unwrap().iter().find(|x| x["route"] == "GET /slow").cloned();
        if let Some(slow) = slow.filter(|s| s["count"] == 40) {
            let p50 = slow["p50_ms"].as_f64().unwrap();
            let max = slow["max_ms"].as_f64().unwrap();
            assert!((15.0..100.0).contains(&p50), "{slow}");
            assert!(max >= p50 && slow["p99_ms"].as_f64().unwrap() >= p50, "{slow}");
            break;
        }
        assert!(Instant::now() < deadline, "no latency for GET /slow: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn metrics_can_be_turned_off() {
    let up = slow_upstream();
    let gw = Gateway::start(&format!("[metrics]\nenabled = false\n{}", config(&up)));
    let _ = traffic(&gw);
    let text = gw.admin("GET", "/metrics").text();
    assert!(!text.contains("ringway_requests_total"), "{text}");
}

/// A Prometheus server on loopback scraping the admin listener every second.
struct Prometheus {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Prometheus {
    fn start(admin_port: u16) -> Prometheus {
        let dir = TempDir(temp_path("ringway-prom", "d"));
        std::fs::create_dir_all(&dir.0).unwrap();
        let cfg = dir.0.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ringway\n    static_configs:\n      - targets: ['127.0.0.1:{admin_port}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus; scripts/test installs it)");
        let p = Prometheus { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.get("/-/ready").map(|(s, _)| s) != Some(200) {
            assert!(Instant::now() < deadline, "prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    fn get(&self, target: &str) -> Option<(u16, String)> {
        let mut c = Conn::try_connect(std::net::SocketAddr::from(([127, 0, 0, 1], self.port))).ok()?;
        c.try_send(&request("GET", target, &[("Host", "127.0.0.1")], b"")).ok()?;
        let r = c.try_read_response().ok()?;
        Some((r.status, r.text()))
    }

    /// The single value of an instant query (None: no result yet).
    fn query(&self, promql: &str) -> Option<f64> {
        let mut q = String::new();
        for b in promql.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                q.push(b as char);
            } else {
                q.push_str(&format!("%{b:02X}"));
            }
        }
        let (status, body) = self.get(&format!("/api/v1/query?query={q}"))?;
        assert_eq!(status, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits until `promql` has a value for which `ok` holds; returns it.
    fn wait_for(&self, promql: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.query(promql);
            if let Some(v) = v.filter(|v| ok(*v)) {
                return v;
            }
            assert!(Instant::now() < deadline, "{promql}: last value {v:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_and_answers_promql() {
    let up = slow_upstream();
    let gw = Gateway::start(&config(&up));
    let prom = Prometheus::start(gw.admin_port());
    // A first scrape before the traffic, so rates see the increase.
    prom.wait_for(r#"up{job="ringway"}"#, |v| v == 1.0);
    let mut slowest = traffic(&gw);
    let slow = r#"route="GET /slow""#;
    let total = prom.wait_for(&format!("sum(ringway_requests_total{{{slow}}})"), |v| v == 40.0);
    assert_eq!(total, 40.0);
    // Series appear with their first request: a rate needs a second round of traffic.
    let mut c = gw.connect();
    for _ in 0..40 {
        let t = Instant::now();
        assert_eq!(c.roundtrip("GET", "/test/slow", &[], b"").status, 200);
        slowest = slowest.max(t.elapsed());
    }
    prom.wait_for(&format!("sum(ringway_requests_total{{{slow}}})"), |v| v == 80.0);
    let rate = prom.wait_for(&format!("sum(rate(ringway_requests_total{{{slow}}}[1m]))"), |v| v > 0.0);
    assert!(rate > 0.0);
    let p99 = prom.wait_for(
        &format!("histogram_quantile(0.99, sum by (le) (rate(ringway_request_duration_seconds_bucket{{{slow}}}[1m])))"),
        f64::is_finite,
    );
    // Every request took at least 15 ms (above the 0.01 edge) and at most what the client saw
    // for the slowest one: p99 lies between 0.01 and the first bucket edge above that.
    let edges = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let ceiling = edges.iter().copied().find(|e| *e >= slowest.as_secs_f64()).unwrap_or(10.0);
    assert!(p99 > 0.01 && p99 <= ceiling, "p99 = {p99}, slowest request seen by the client {slowest:?}");
    let hits = prom.wait_for(r#"sum(ringway_cache_requests_total{result="hit"})"#, |v| v == 4.0);
    assert_eq!(hits, 4.0);
    let throttled = prom.wait_for(r#"sum(ringway_throttled_total{scope="route"})"#, |v| v == 2.0);
    assert_eq!(throttled, 2.0);
    let errors = prom.wait_for(r#"sum(ringway_requests_total{status_class="4xx"})"#, |v| v == 3.0);
    assert_eq!(errors, 3.0, "two throttled and one unrouted");
}
