//! Upstream side: keep-alive pooling (many client requests over few upstream
//! connections), retry once on a dead pooled connection, pool idle timeout and
//! idle bound, connect timeout.
mod support;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn many_client_requests_over_few_upstream_connections() {
    let up = Upstream::fixed("pooled");
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    // 200 sequential requests over 10 client connections
    for conn in 0..10 {
        let mut c = gw.connect();
        for i in 0..20 {
            let r = c.roundtrip("GET", &format!("/test/c{conn}/r{i}"), &[], b"");
            assert_eq!(r.status, 200, "{r}");
            assert_eq!(r.text(), "pooled");
        }
    }
    assert_eq!(up.request_count(), 200);
    let n = up.connections();
    eprintln!("200 sequential requests -> {n} upstream connections");
    assert!(n <= 4, "200 sequential requests used {n} upstream connections (workers = 2)");
}

#[test]
fn one_request_per_client_connection_still_pools_upstream() {
    let up = Upstream::fixed("pooled");
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    for i in 0..60 {
        let r = gw.send("GET", &format!("/test/x/{i}"), &[("Connection", "close")], b"");
        assert_eq!(r.status, 200, "{r}");
    }
    let n = up.connections();
    assert!(n <= 4, "60 sequential requests on fresh client connections used {n} upstream connections");
}

#[test]
fn concurrent_clients_share_a_bounded_number_of_upstream_connections() {
    let up = Upstream::fixed("pooled");
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let addr = gw.addr();
    let hs: Vec<_> = (0..4)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                for i in 0..50 {
                    let r = c.roundtrip("POST", &format!("/test/{t}/{i}"), &[], b"data");
                    assert_eq!(r.status, 200, "{r}");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(up.request_count(), 200);
    let n = up.connections();
    assert!(n <= 8, "4 concurrent clients x 50 requests used {n} upstream connections");
}

#[test]
fn retry_once_when_a_pooled_connection_was_closed_by_the_upstream() {
    // every upstream connection answers its first request, then reads the next
    // one and closes without a response byte (a keep-alive race)
    let up = Upstream::start(|req| if req.index_on_conn == 0 { Reply::ok("fresh") } else { Reply::close() });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    for i in 0..6 {
        let r = c.roundtrip("GET", &format!("/test/r/{i}"), &[], b"");
        assert_eq!(r.status, 200, "GET {i} on a stale pooled connection must be retried:\n{r}");
        assert_eq!(r.text(), "fresh");
        thread::sleep(Duration::from_millis(20));
    }
    let reqs = up.requests();
    assert!(
        reqs.iter().any(|r| r.index_on_conn > 0),
        "the gateway never reused a pooled upstream connection (no pooling?)"
    );
    // retried at most once per client request
    assert!(reqs.len() <= 12, "{} upstream attempts for 6 client requests", reqs.len());
}

#[test]
fn retry_when_upstream_silently_closed_an_idle_connection() {
    // the upstream closes each connection right after its response (no
    // Connection: close header): the pooled connection is dead on next use
    let up = Upstream::start(|_| Reply::ok("ok").close_after());
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    for i in 0..5 {
        let r = c.roundtrip("GET", &format!("/test/s/{i}"), &[], b"");
        assert_eq!(r.status, 200, "request {i}:\n{r}");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(up.request_count(), 5);
}

#[test]
fn head_and_delete_are_retried_too() {
    let up = Upstream::start(|req| if req.index_on_conn == 0 { Reply::ok("fresh") } else { Reply::close() });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/a", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    let r = c.roundtrip("DELETE", "/test/a", &[], b"");
    assert_eq!(r.status, 200, "idempotent DELETE on a stale connection:\n{r}");
    let r = c.roundtrip("HEAD", "/test/a", &[], b"");
    assert_eq!(r.status, 200, "HEAD on a stale connection:\n{r}");
}

#[test]
fn post_with_sent_body_is_not_replayed() {
    // non-idempotent request whose body was already sent on a reused connection:
    // the upstream may have acted on it, so it must not be sent twice
    let up = Upstream::start(|req| if req.index_on_conn == 0 { Reply::ok("fresh") } else { Reply::close() });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/warm", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    thread::sleep(Duration::from_millis(20));
    let r = c.roundtrip("POST", "/test/order", &[("Content-Type", "application/json")], b"{\"buy\":1}");
    let posts: Vec<_> = up.requests().into_iter().filter(|q| q.method == "POST").collect();
    if posts.len() == 1 && posts[0].index_on_conn == 0 {
        // the gateway noticed the dead connection before sending: fine
        assert_eq!(r.status, 200, "{r}");
    } else {
        assert_eq!(posts.len(), 1, "POST replayed to the upstream: {} deliveries", posts.len());
        assert!(r.status == 502 || r.status == 504, "failed POST should be a 5xx gateway error:\n{r}");
    }
}

#[test]
fn pool_idle_timeout_drops_old_connections() {
    let up = Upstream::fixed("ok");
    let cfg = format!("[upstream]\npool_idle_timeout_ms = 300\n{}", petstore_config(&up.hostport()));
    let gw = Gateway::builder(&cfg).workers(1).start();
    let mut c = gw.connect();
    assert_eq!(c.roundtrip("GET", "/test/a", &[], b"").status, 200);
    assert_eq!(c.roundtrip("GET", "/test/b", &[], b"").status, 200);
    assert_eq!(up.connections(), 1, "second request should reuse the pooled connection");
    thread::sleep(Duration::from_millis(900));
    assert_eq!(c.roundtrip("GET", "/test/c", &[], b"").status, 200);
    let last = up.last_request();
    assert_eq!(
        (up.connections(), last.conn_id),
        (2, 1),
        "a pooled connection idle past pool_idle_timeout_ms was reused"
    );
}

#[test]
fn pool_keeps_at_most_pool_max_idle_connections() {
    let up = Upstream::start(|req| {
        if req.target.contains("slow") {
            Reply::ok("slow").delay(Duration::from_millis(400))
        } else {
            Reply::ok("fast")
        }
    });
    let cfg = format!("[upstream]\npool_max_idle = 1\n{}", petstore_config(&up.hostport()));
    let gw = Gateway::builder(&cfg).workers(1).start();
    let addr = gw.addr();
    let hs: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                c.roundtrip("GET", &format!("/test/slow/{i}"), &[], b"").status
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(up.connections(), 4, "4 concurrent slow requests need 4 upstream connections");
    // at most one stays idle in the pool; the others are closed
    let deadline = Instant::now() + Duration::from_secs(3);
    while up.closed_connections() < 3 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        up.closed_connections() >= 3,
        "pool_max_idle = 1 but {} of 4 upstream connections are still open",
        4 - up.closed_connections()
    );
    // and the one left is reused
    let r = gw.get("/test/fast");
    assert_eq!(r.status, 200);
    assert_eq!(up.connections(), 4, "the idle pooled connection was not reused");
}

/// A loopback "black hole": a listener with backlog 0 whose accept queue is
/// already full, so further SYNs are dropped and connect() hangs.
fn black_hole() -> (socket2::Socket, Vec<TcpStream>, u16) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&addr.into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    // the queue is full now: a connect must not complete
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
        "could not build a black-hole listener (connect still succeeds)"
    );
    (sock, fillers, addr.port())
}

#[test]
fn connect_timeout_bounds_unreachable_hosts() {
    let (_hole, _fillers, port) = black_hole();
    let cfg = format!(
        r#"
[upstream]
connect_timeout_ms = 300

[stages.test]

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://127.0.0.1:{port}/{{proxy}}" }}
"#
    );
    let gw = Gateway::start(&cfg);
    let t = Instant::now();
    let r = gw.get("/test/x");
    let took = t.elapsed();
    assert!(r.status == 502 || r.status == 504, "{r}");
    assert!(took >= Duration::from_millis(250), "answered before the connect timeout: {took:?}\n{r}");
    assert!(took < Duration::from_millis(2500), "connect_timeout_ms = 300 but took {took:?}");
    assert!(r.has_header("x-amzn-ErrorType"), "{r}");
}

#[test]
fn pool_is_lifo() {
    // two connections end up idle; sequential requests then keep using the most
    // recently returned one (a FIFO pool would alternate between them)
    let s = slowdown();
    let up = Upstream::start(move |req| {
        if req.target.contains("slow") {
            Reply::ok("slow").delay(Duration::from_millis(300) * s)
        } else {
            Reply::ok("fast")
        }
    });
    let gw = Gateway::builder(&petstore_config(&up.hostport())).workers(1).start();
    let addr = gw.addr();
    let hs: Vec<_> = (0..2)
        .map(|i| {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(100 * i) * s);
                Conn::connect(addr).roundtrip("GET", &format!("/test/slow/{i}"), &[], b"").status
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(up.connections(), 2);
    let mut c = gw.connect();
    for i in 0..6 {
        assert_eq!(c.roundtrip("GET", &format!("/test/f/{i}"), &[], b"").status, 200);
    }
    let used: Vec<usize> = up.requests().iter().skip(2).map(|r| r.conn_id).collect();
    assert!(used.windows(2).all(|w| w[0] == w[1]), "pooled connections used in order {used:?} (not LIFO)");
    // the last one returned was the second slow request's connection
    let second = up.requests().iter().find(|r| r.target.ends_with("/slow/1")).unwrap().conn_id;
    assert_eq!(used[0], second, "LIFO should pick the most recently returned connection");
}

#[test]
fn upstream_sees_keep_alive_http11() {
    let up = Upstream::fixed("ok");
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    gw.get("/test/a");
    let req = up.last_request();
    assert_eq!(req.version, "HTTP/1.1", "upstream requests should be HTTP/1.1");
    for v in req.headers_all("connection") {
        assert!(!v.eq_ignore_ascii_case("close"), "gateway asked the upstream to close: {:?}", req.headers);
    }
}
