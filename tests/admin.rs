//! The admin listener's operator endpoints: liveness, readiness (including while draining for
//! shutdown), the loaded config, and errors for unknown paths and methods.
mod support;
use std::thread;
use std::time::Duration;
use support::*;

#[test]
fn health_ready_and_config() {
    let up = Upstream::fixed("x");
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let r = gw.admin("GET", "/healthz");
    assert_eq!((r.status, r.text()), (200, r#"{"status":"ok"}"#.to_string()));
    let r = gw.admin("GET", "/readyz");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.text().contains(r#""status":"ready""#), "{r}");
    let r = gw.admin("GET", "/config");
    assert_eq!(r.status, 200, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.text()).expect("JSON");
    assert_eq!(v["source"], gw.config_path().to_str().unwrap());
    assert_eq!(v["checksum"].as_str().map(str::len), Some(16));
    assert_eq!(v["routes"][0]["stage"], "test");
    assert_eq!(v["routes"][0]["method"], "ANY");
    assert_eq!(v["routes"][0]["path"], "/{proxy+}");
    assert!(v["routes"][0]["integration"].as_str().unwrap().starts_with("http_proxy http://"));
    assert!(v["text"].as_str().unwrap().contains("[stages.test]"));
    assert_eq!(gw.admin("POST", "/healthz").status, 405);
    assert_eq!(gw.admin("GET", "/nope").status, 404);
}

#[test]
fn readyz_turns_503_while_draining() {
    let up = Upstream::start(|_| Reply::ok("slow").delay(Duration::from_millis(1500)));
    let gw = Gateway::builder(&petstore_config(&up.hostport())).server("shutdown_timeout_ms = 5000").start();
    let addr = gw.addr();
    let h = thread::spawn(move || Conn::connect(addr).roundtrip("GET", "/test/slow", &[], b"").status);
    up.wait_requests(1, Duration::from_secs(5));
    gw.sigterm();
    thread::sleep(Duration::from_millis(200));
    let r = gw.admin("GET", "/readyz");
    assert_eq!((r.status, r.text()), (503, r#"{"status":"draining"}"#.to_string()), "{r}");
    assert_eq!(h.join().unwrap(), 200, "the in-flight request still finishes");
}
