//! Throttling: token buckets at route, stage and box level, exact across workers.
mod support;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

fn mock(path: &str, extra: &str) -> String {
    format!("[[routes]]\npath = \"{path}\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\", status = 200, body = \"ok\" }}\n{extra}\n")
}

fn assert_throttled(r: &Response) {
    assert_eq!(r.status, 429, "expected 429, got:\n{r}");
    assert_eq!(r.text(), r#"{"message":"Too Many Requests"}"#);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("TooManyRequestsException"));
    let retry: u64 = r.header("Retry-After").expect("Retry-After on 429").parse().expect("Retry-After in seconds");
    assert!(retry >= 1, "Retry-After {retry}");
}

/// rate R, burst B, 2 workers, several keep-alive clients hammering for 10 s: the gateway
/// admits R*t + B requests within 2 %, however the connections spread over the workers.
#[test]
fn limit_is_exact_across_two_workers() {
    let (rate, burst) = (100u64, 40u64);
    let cfg = mock("/t", &format!("throttle = {{ rate = {rate}, burst = {burst} }}"));
    let gw = Gateway::builder(&cfg).workers(2).start();
    let clients = 6;
    let run_for = Duration::from_secs(10);
    let admitted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(clients + 1));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (admitted, refused, bad, barrier) = (admitted.clone(), refused.clone(), bad.clone(), barrier.clone());
            let mut c = gw.connect();
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                while start.elapsed() < run_for {
                    let r = c.roundtrip("GET", "/t", &[], b"");
                    match r.status {
                        200 => admitted.fetch_add(1, Ordering::Relaxed),
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        _ => {
                            bad.store(true, Ordering::Relaxed);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    assert!(!bad.load(Ordering::Relaxed), "a response other than 200/429");
    let got = admitted.load(Ordering::Relaxed) as f64;
    let expected = rate as f64 * secs + burst as f64;
    let refused = refused.load(Ordering::Relaxed);
    assert!(refused > 1000, "the clients must push well past the limit (refused only {refused})");
    let err = (got - expected).abs() / expected;
    assert!(
        err <= 0.02,
        "admitted {got} over {secs:.2} s, expected {expected:.0} (R*t + B), off by {:.1} %",
        err * 100.0
    );
}

#[test]
fn stage_default_applies_per_route_and_route_overrides() {
    let mut cfg = String::from("[stages.test]\nthrottle = { rate = 0.5, burst = 3 }\n");
    cfg += &mock("/a", "");
    cfg += &mock("/c", "");
    cfg += &mock("/b", "throttle = { rate = 1000, burst = 1000 }");
    let gw = Gateway::start(&cfg);
    let mut c = gw.connect();
    for i in 0..3 {
        let r = c.roundtrip("GET", "/test/a", &[], b"");
        assert_eq!(r.status, 200, "request {i} within the burst:\n{r}");
    }
    assert_throttled(&c.roundtrip("GET", "/test/a", &[], b""));
    // The connection stays usable after a 429.
    for _ in 0..20 {
        assert_eq!(c.roundtrip("GET", "/test/b", &[], b"").status, 200, "route override");
    }
    // Each route has its own bucket with the stage's default limits.
    for _ in 0..3 {
        assert_eq!(c.roundtrip("GET", "/test/c", &[], b"").status, 200);
    }
    assert_throttled(&c.roundtrip("GET", "/test/c", &[], b""));
}

#[test]
fn box_wide_limit_covers_every_route() {
    let mut cfg = String::from("[throttle]\nrate = 0.1\nburst = 5\n");
    cfg += &mock("/x", "");
    cfg += &mock("/y", "");
    let gw = Gateway::start(&cfg);
    let ok = (0..10)
        .map(|i| gw.get(if i % 2 == 0 { "/x" } else { "/y" }))
        .inspect(|r| assert!(r.status == 200 || r.status == 429, "{r}"))
        .filter(|r| r.status == 200)
        .count();
    assert_eq!(ok, 5, "the box-wide burst of 5 is shared by both routes");
    assert_throttled(&gw.get("/x"));
    // Unrouted requests are not counted: they still get the 403.
    assert_eq!(gw.get("/nowhere").status, 403);
}

#[test]
fn gateway_response_override_applies_to_throttled() {
    let mut cfg = mock("/t", "throttle = { rate = 1, burst = 0 }");
    cfg += "[gateway_responses.THROTTLED]\nstatus = 503\nbody = '{\"slow\":\"down\",\"m\":$context.error.messageString}'\n";
    let gw = Gateway::start(&cfg);
    let r = gw.get("/t");
    assert_eq!(r.status, 503, "{r}");
    assert_eq!(r.text(), r#"{"slow":"down","m":"Too Many Requests"}"#);
    assert!(r.header("Retry-After").is_some());
}

#[test]
fn bad_throttle_config_is_a_check_error() {
    let bad = "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"mock\" }\nthrottle = { rate = -1, burst = 5 }\n";
    let f = TempFile::new(bad);
    let out = run_cli(&["check", f.path_str()]);
    assert!(!out.status.success());
    assert!(out.stderr.contains(":5:") && out.stderr.contains("throttle rate"), "{}", out.stderr);
    let bad = "[throttle]\nrate = 5\nbrust = 5\n";
    let f = TempFile::new(bad);
    let out = run_cli(&["check", f.path_str()]);
    assert!(!out.status.success());
    assert!(out.stderr.contains(":3:"), "{}", out.stderr);
}
