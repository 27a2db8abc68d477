//! Limits: 431 header too large, 413 body too large (CL and chunked), 414 URI
//! too long, header-read timeout, idle keep-alive timeout.
mod support;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

fn gateway_with_limits(limits: &str) -> (Upstream, Gateway) {
    let up = Upstream::echo();
    let cfg = format!("[limits]\n{limits}\n{}", petstore_config(&up.hostport()));
    let gw = Gateway::start(&cfg);
    (up, gw)
}

// ---------------------------------------------------------------- 431

#[test]
fn header_over_max_header_bytes_is_431() {
    let (up, gw) = gateway_with_limits("max_header_bytes = 2048");
    // under the limit: fine
    let r = gw.send("GET", "/test/ok", &[("X-Small", &"a".repeat(500))], b"");
    assert_eq!(r.status, 200, "{r}");
    // one big header
    let big = "b".repeat(4000);
    let r = gw.send("GET", "/test/big", &[("X-Big", &big)], b"");
    assert_eq!(r.status, 431, "{r}");
    // many small headers adding up
    let many: Vec<(String, String)> = (0..100).map(|i| (format!("X-H{i}"), "v".repeat(40))).collect();
    let hv: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = gw.send("GET", "/test/many", &hv, b"");
    assert_eq!(r.status, 431, "{r}");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(up.request_count(), 1, "only the small request may reach the upstream");
}

#[test]
fn huge_header_does_not_hang_or_buffer_forever() {
    // a head that never ends must be cut off at the limit, not buffered
    let (_up, gw) = gateway_with_limits("max_header_bytes = 4096");
    let mut c = gw.connect();
    c.send(b"GET /test/x HTTP/1.1\r\nHost: gw\r\nX-Endless: ");
    let mut sent = 0usize;
    let chunk = vec![b'z'; 8192];
    let t = Instant::now();
    while sent < 64 * 1024 && t.elapsed() < Duration::from_secs(3) {
        if c.try_send(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let (closed, bytes) = c.drain_until_closed(Duration::from_secs(3));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 431"), "expected 431 for an endless head, got {text:?} (closed={closed})");
}

// ---------------------------------------------------------------- 413

#[test]
fn content_length_body_over_limit_is_413() {
    let (up, gw) = gateway_with_limits("max_body_bytes = 1000");
    let r = gw.send("POST", "/test/ok", &[], &[b'a'; 1000]);
    assert_eq!(r.status, 200, "exactly at the limit: {r}");
    let mut c = gw.connect();
    c.send(&request("POST", "/test/big", &[], &[b'a'; 1001]));
    let r = c.read_response();
    assert_eq!(r.status, 413, "{r}");
    thread::sleep(Duration::from_millis(100));
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "the oversized body reached the upstream");
}

#[test]
fn content_length_over_limit_is_413_before_the_body_is_sent() {
    let (up, gw) = gateway_with_limits("max_body_bytes = 1000");
    let mut c = gw.connect();
    // the head alone announces too much
    c.send(b"POST /test/big HTTP/1.1\r\nHost: gw\r\nContent-Length: 50000000\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413, "{r}");
    assert_eq!(up.request_count(), 0);
}

#[test]
fn expect_100_continue_over_limit_gets_413_without_continue() {
    let (up, gw) = gateway_with_limits("max_body_bytes = 1000");
    let mut c = gw.connect();
    c.send(b"POST /test/big HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413, "an over-limit Expect request must be refused with 413, not invited: {r}");
    assert_eq!(up.request_count(), 0);
}

#[test]
fn chunked_body_over_limit_is_413() {
    let (up, gw) = gateway_with_limits("max_body_bytes = 1000");
    let mut c = gw.connect();
    let mut raw = b"POST /test/chunky HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend(chunked(&[b'c'; 600], 600));
    c.send(&raw);
    let r = c.read_response();
    assert_eq!(r.status, 200, "600 chunked bytes are under the limit: {r}");

    let mut c = gw.connect();
    let mut raw = b"POST /test/chunky2 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend(chunked(&[b'c'; 3000], 500));
    let _ = c.try_send(&raw);
    let r = c.try_read_response().unwrap_or_else(|e| panic!("no response to an oversized chunked body: {e}"));
    assert_eq!(r.status, 413, "{r}");
    thread::sleep(Duration::from_millis(200));
    let reqs = up.requests();
    assert_eq!(
        reqs.len(),
        1,
        "an oversized chunked body was delivered upstream complete: {:?}",
        reqs.iter().map(|r| (&r.target, r.body_len)).collect::<Vec<_>>()
    );
}

#[test]
fn default_body_limit_is_10_mib() {
    let (up, gw) = gateway_with_limits("");
    let mut c = gw.connect();
    c.send(
        format!("POST /test/big HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n", 10 * 1024 * 1024 + 1).as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 413, "{r}");
    assert_eq!(up.request_count(), 0);
}

// ---------------------------------------------------------------- 414

#[test]
fn uri_over_max_uri_bytes_is_414() {
    let (up, gw) = gateway_with_limits("max_uri_bytes = 256");
    let r = gw.get(&format!("/test/{}", "a".repeat(200)));
    assert_eq!(r.status, 200, "under the URI limit: {r}");
    let r = gw.get(&format!("/test/{}", "a".repeat(400)));
    assert_eq!(r.status, 414, "{r}");
    let r = gw.get(&format!("/test/x?q={}", "q".repeat(400)));
    assert_eq!(r.status, 414, "long query string counts too: {r}");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(up.request_count(), 1);
}

#[test]
fn default_uri_limit() {
    let (_up, gw) = gateway_with_limits("max_header_bytes = 65536");
    let r = gw.get(&format!("/test/{}", "u".repeat(12_000)));
    assert_eq!(r.status, 414, "default max_uri_bytes is 10240: {r}");
}

// ---------------------------------------------------------------- timeouts

#[test]
fn stalled_request_head_is_closed_by_header_timeout() {
    let (up, gw) = gateway_with_limits("header_timeout_ms = 500\nidle_timeout_ms = 60000");
    let mut c = gw.connect();
    c.send(b"GET /test/slow HTTP/1.1\r\nHost: gw\r\n");
    let t = Instant::now();
    let (closed, bytes) = c.drain_until_closed(Duration::from_secs(4));
    let took = t.elapsed();
    assert!(closed, "partial head not closed within 4 s (header_timeout_ms = 500)");
    assert!(took >= Duration::from_millis(300), "closed too early: {took:?}");
    assert!(took <= Duration::from_millis(2500), "closed too late: {took:?}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "unexpected bytes before close: {text:?}");
    assert_eq!(up.request_count(), 0);
}

#[test]
fn slowloris_dribble_is_closed_by_header_timeout() {
    // one byte every 100 ms keeps each read short, but the head deadline is total
    let (_up, gw) = gateway_with_limits("header_timeout_ms = 600\nidle_timeout_ms = 60000");
    let mut c = gw.connect();
    let head = b"GET /test/slow HTTP/1.1\r\nHost: gw\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let t = Instant::now();
    let mut closed_at = None;
    for b in head.iter() {
        if c.try_send(&[*b]).is_err() {
            closed_at = Some(t.elapsed());
            break;
        }
        if let CloseState::Closed | CloseState::Data(_) = c.wait_closed(Duration::from_millis(100)) {
            closed_at = Some(t.elapsed());
            break;
        }
        if t.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let at = closed_at.expect("slow-drip head was never cut off");
    assert!(at <= Duration::from_millis(2500), "cut off after {at:?} (header_timeout_ms = 600)");
}

#[test]
fn connection_without_any_bytes_is_closed() {
    let (_up, gw) = gateway_with_limits("header_timeout_ms = 500\nidle_timeout_ms = 500");
    let mut c = gw.connect();
    let (closed, _) = c.drain_until_closed(Duration::from_secs(4));
    assert!(closed, "silent connection never closed");
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let (_up, gw) = gateway_with_limits("header_timeout_ms = 10000\nidle_timeout_ms = 500");
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/a", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    // activity within the idle time keeps it open
    thread::sleep(Duration::from_millis(200));
    let r = c.roundtrip("GET", "/test/b", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    let t = Instant::now();
    let (closed, bytes) = c.drain_until_closed(Duration::from_secs(5));
    let took = t.elapsed();
    assert!(closed, "idle keep-alive connection not closed within 5 s (idle_timeout_ms = 500)");
    assert!(bytes.is_empty(), "unexpected bytes on idle close: {:?}", String::from_utf8_lossy(&bytes));
    assert!(took >= Duration::from_millis(300), "idle close too early: {took:?}");
    assert!(took <= Duration::from_millis(3000), "idle close too late: {took:?}");
}

#[test]
fn idle_timeout_does_not_cut_a_slow_upstream_response() {
    // the idle timer is for idle connections, not for requests in flight
    let up = Upstream::start(|_| Reply::ok("slow but fine").delay(Duration::from_millis(1200)));
    let cfg = format!("[limits]\nheader_timeout_ms = 400\nidle_timeout_ms = 400\n{}", petstore_config(&up.hostport()));
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test/slow");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "slow but fine");
}
