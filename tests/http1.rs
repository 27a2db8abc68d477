//! HTTP/1.1 on the client side: keep-alive, pipelining, request body framing
//! (Content-Length, chunked with extensions and trailers), Expect: 100-continue,
//! HTTP/1.0.
mod support;
use std::thread;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

fn echo_gateway() -> (Upstream, Gateway) {
    let up = Upstream::echo();
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

#[test]
fn keep_alive_many_requests_on_one_connection() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    for i in 0..100 {
        let r = c.roundtrip("GET", &format!("/test/n/{i}"), &[], b"");
        assert_eq!(r.status, 200, "request {i}: {r}");
        assert_eq!(r.text(), format!("GET /petstore/n/{i}\n"));
        assert!(!r.connection_close(), "gateway closed a keep-alive connection: {r}");
    }
    assert_eq!(up.request_count(), 100);
}

#[test]
fn connection_close_is_honoured() {
    let (_up, gw) = echo_gateway();
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/a", &[("Connection", "close")], b"");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.connection_close(), "response to Connection: close should say close: {r}");
    assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed);
}

/// New connections that arrive together queue in the listen backlog; an io_uring worker
/// takes the rest of the backlog after each accept (worker::accept_loop). Every one of them
/// must be served, each with its own response.
#[test]
fn a_burst_of_new_connections_is_served_in_full() {
    let (up, gw) = echo_gateway();
    let mut conns: Vec<_> = (0..200).map(|_| gw.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.send_str(&format!("GET /test/burst/{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "connection {i}: {r}");
        assert_eq!(r.text(), format!("GET /petstore/burst/{i}\n"), "connection {i}");
    }
    assert_eq!(up.request_count(), 200);
}

#[test]
fn pipelined_requests_answered_in_order() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    let mut batch = Vec::new();
    batch.extend(request("GET", "/test/one", &[], b""));
    batch.extend(request("POST", "/test/two", &[("Content-Type", "text/plain")], b"hello pipelined body"));
    batch.extend(request("GET", "/test/three?x=1", &[], b""));
    batch.extend(request("PUT", "/test/four", &[], b"4444"));
    batch.extend(request("DELETE", "/test/five", &[], b""));
    c.send(&batch);
    let expect = [
        "GET /petstore/one\n".to_string(),
        "POST /petstore/two\nhello pipelined body".to_string(),
        "GET /petstore/three?x=1\n".to_string(),
        "PUT /petstore/four\n4444".to_string(),
        "DELETE /petstore/five\n".to_string(),
    ];
    for (i, e) in expect.iter().enumerate() {
        let r = c.read_response();
        assert_eq!(r.status, 200, "pipelined response {i}: {r}");
        assert_eq!(&r.text(), e, "pipelined response {i} out of order or corrupted");
    }
    assert_eq!(up.request_count(), 5);
    // connection still fine afterwards
    let r = c.roundtrip("GET", "/test/six", &[], b"");
    assert_eq!(r.text(), "GET /petstore/six\n");
}

#[test]
fn pipelined_with_chunked_post_in_the_middle() {
    let (_up, gw) = echo_gateway();
    let mut c = gw.connect();
    let mut batch = Vec::new();
    batch.extend(request("GET", "/test/a", &[], b""));
    batch.extend(request(
        "POST",
        "/test/b",
        &[("Transfer-Encoding", "chunked")],
        &chunked(b"chunked-in-the-middle", 5),
    ));
    batch.extend(request("GET", "/test/c", &[], b""));
    c.send(&batch);
    assert_eq!(c.read_response().text(), "GET /petstore/a\n");
    assert_eq!(c.read_response().text(), "POST /petstore/b\nchunked-in-the-middle");
    assert_eq!(c.read_response().text(), "GET /petstore/c\n");
}

#[test]
fn many_pipelined_requests_in_one_write() {
    let (_up, gw) = echo_gateway();
    let mut c = gw.connect().with_timeout(Duration::from_secs(10));
    let mut batch = Vec::new();
    for i in 0..50 {
        if i % 5 == 2 {
            batch.extend(request("POST", &format!("/test/p/{i}"), &[], format!("body-{i}").as_bytes()));
        } else {
            batch.extend(request("GET", &format!("/test/p/{i}"), &[], b""));
        }
    }
    c.send(&batch);
    for i in 0..50 {
        let r = c.read_response();
        let e = if i % 5 == 2 { format!("POST /petstore/p/{i}\nbody-{i}") } else { format!("GET /petstore/p/{i}\n") };
        assert_eq!(r.text(), e, "response {i}");
    }
}

#[test]
fn pipelined_bytes_split_at_odd_boundaries() {
    let (_up, gw) = echo_gateway();
    let mut c = gw.connect();
    let mut batch = Vec::new();
    batch.extend(request("GET", "/test/x1", &[], b""));
    batch.extend(request("POST", "/test/x2", &[], b"0123456789"));
    batch.extend(request("POST", "/test/x3", &[("Transfer-Encoding", "chunked")], &chunked(b"abcdefghij", 3)));
    batch.extend(request("GET", "/test/x4", &[], b""));
    for piece in batch.chunks(7) {
        c.send(piece);
        thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.read_response().text(), "GET /petstore/x1\n");
    assert_eq!(c.read_response().text(), "POST /petstore/x2\n0123456789");
    assert_eq!(c.read_response().text(), "POST /petstore/x3\nabcdefghij");
    assert_eq!(c.read_response().text(), "GET /petstore/x4\n");
}

#[test]
fn content_length_body_reaches_upstream_intact() {
    let (up, gw) = echo_gateway();
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let r = gw.send("POST", "/test/bin", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.body, body);
    let mut expect = b"POST /petstore/bin\n".to_vec();
    expect.extend_from_slice(&body);
    assert!(r.body == expect, "echoed body differs");
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    let raw =
        b"POST /test/chunks HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n\
5;foo=bar\r\nhello\r\n\
6;name=\"quoted value\";x\r\n world\r\n\
A\r\n0123456789\r\n\
0;last=1\r\nX-Trailer: t1\r\nX-Other-Trailer: t2\r\n\r\n";
    c.send(raw);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "POST /petstore/chunks\nhello world0123456789");
    let req = up.last_request();
    assert_eq!(req.body_text(), "hello world0123456789");
    // trailers were consumed: the connection is in sync
    let r = c.roundtrip("GET", "/test/after", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "GET /petstore/after\n");
    assert_eq!(up.request_count(), 2);
}

#[test]
fn chunked_body_uppercase_hex_and_single_byte_chunks() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    let body = pattern_body(3000);
    let mut raw = b"PUT /test/up HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(b"1\r\n");
    raw.push(body[0]);
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(format!("{:X}\r\n", body.len() - 1).as_bytes());
    raw.extend_from_slice(&body[1..]);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    c.send(&raw);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().body, body);
}

#[test]
fn large_chunked_upload() {
    let (up, gw) = echo_gateway();
    let body = pattern_body(2_000_000);
    let mut c = gw.connect().with_timeout(Duration::from_secs(15));
    let mut raw = b"POST /test/big HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend(chunked(&body, 16_384));
    c.send(&raw);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.head);
    let req = up.last_request();
    assert_eq!(req.body_len, 2_000_000);
    assert_eq!(&req.body[..], &body[..1 << 20]);
}

#[test]
fn expect_100_continue() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"POST /test/expect HTTP/1.1\r\nHost: gw\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.try_read_head();
    let interim = interim.unwrap_or_else(|e| panic!("no 100 Continue before the body was sent: {e}"));
    assert_eq!(interim.status, 100, "expected 100 Continue first, got:\n{}", interim.head);
    assert!(interim.head.starts_with("HTTP/1.1 100 Continue\r\n"), "interim line: {:?}", interim.head);
    assert_eq!(up.request_count(), 0, "request forwarded before the body arrived?");
    c.send(b"hello world");
    let r = c.read_final_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "POST /petstore/expect\nhello world");
    assert_eq!(up.last_request().body_text(), "hello world");
    // connection still in sync
    let r = c.roundtrip("GET", "/test/next", &[], b"");
    assert_eq!(r.text(), "GET /petstore/next\n");
}

#[test]
fn expect_100_continue_with_chunked_body() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"PUT /test/e2 HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.try_read_head().unwrap_or_else(|e| panic!("no 100 Continue: {e}"));
    assert_eq!(interim.status, 100, "{}", interim.head);
    c.send(&chunked(b"chunked after continue", 4));
    let r = c.read_final_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().body_text(), "chunked after continue");
}

#[test]
fn http10_request_closes_after_response() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"GET /test/old HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "GET /petstore/old\n");
    assert!(r.version == "HTTP/1.1" || r.version == "HTTP/1.0", "{r}");
    assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed, "HTTP/1.0 connection left open");
    assert_eq!(up.request_count(), 1);
}

#[test]
fn http10_keep_alive_when_asked() {
    let (_up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"GET /test/ka1 HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert!(r.header("content-length").is_some(), "an HTTP/1.0 keep-alive response needs Content-Length: {r}");
    assert!(!r.is_chunked(), "chunked to an HTTP/1.0 client: {r}");
    c.send(b"GET /test/ka2 HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "GET /petstore/ka2\n");
}

#[test]
fn http10_post_with_body() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"POST /test/old HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().body_text(), "abcd");
}

#[test]
fn http10_client_gets_a_chunked_backend_response_unchunked() {
    let up = Upstream::start(|_| Reply::new(200).header("Content-Type", "text/plain").chunked(&[b"part1-", b"part2"]));
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    c.send(b"GET /test/x HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert!(!r.is_chunked(), "chunked coding sent to an HTTP/1.0 client:\n{r}");
    assert_eq!(r.text(), "part1-part2");
}

#[test]
fn request_target_and_method_case() {
    let (_up, gw) = echo_gateway();
    // lowercase method is a different (unknown) method, never GET
    let r = gw.send("get", "/test/x", &[], b"");
    assert_ne!(r.status, 200, "lowercase method treated as GET: {r}");
}

#[test]
fn garbage_request_line_is_400_and_closed() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"THIS IS NOT HTTP\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed);
    assert_eq!(up.request_count(), 0);
}

#[test]
fn http11_without_host_is_400() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"GET /test/x HTTP/1.1\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 400, "HTTP/1.1 request without Host: {r}");
    thread::sleep(Duration::from_millis(100));
    assert_eq!(up.request_count(), 0);
}

#[test]
fn concurrent_clients() {
    let (up, gw) = echo_gateway();
    let addr = gw.addr();
    let handles: Vec<_> = (0..8)
        .map(|t| {
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                for i in 0..25 {
                    c.send(&request("POST", &format!("/test/t{t}/{i}"), &[], format!("{t}-{i}").as_bytes()));
                    let r = c.try_read_response().unwrap_or_else(|e| panic!("client {t}, request {i}: {e}"));
                    assert_eq!(r.status, 200, "{r}");
                    assert_eq!(r.text(), format!("POST /petstore/t{t}/{i}\n{t}-{i}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
    assert_eq!(up.wait_requests(200, WAIT).len(), 200);
}

#[test]
fn pipelined_gateway_errors_keep_order_and_sync() {
    // a 403 (with a request body to skip) between proxied requests
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    let mut batch = Vec::new();
    batch.extend(request("GET", "/test/first", &[], b""));
    batch.extend(request("POST", "/nostage/x", &[], b"body-of-a-403"));
    batch.extend(request("POST", "/test/third", &[], b"third-body"));
    c.send(&batch);
    let r1 = c.read_response();
    assert_eq!(r1.text(), "GET /petstore/first\n", "{r1}");
    let r2 = c.read_response();
    assert_missing_token(&r2, "pipelined unknown stage");
    if r2.connection_close() {
        assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed);
        return;
    }
    let r3 = c.read_response();
    assert_eq!(r3.status, 200, "{r3}");
    assert_eq!(r3.text(), "POST /petstore/third\nthird-body", "desync after a 403 with a body");
    assert_eq!(up.request_count(), 2);
}

#[test]
fn expect_100_continue_on_unknown_route_does_not_desync() {
    let (up, gw) = echo_gateway();
    let mut c = gw.connect();
    c.send(b"POST /nostage/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_final_response();
    assert_missing_token(&r, "Expect on an unknown route");
    if r.connection_close() {
        assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed);
        return;
    }
    // the client sends the body anyway, then another request: the gateway must
    // either skip the 5 body bytes or have closed; never parse them as a request
    let _ = c.try_send(b"helloGET /test/next HTTP/1.1\r\nHost: gw\r\n\r\n");
    match c.try_read_response() {
        Ok(r) => {
            assert_eq!(r.status, 200, "after the skipped body: {r}");
            assert_eq!(r.text(), "GET /petstore/next\n");
        }
        Err(e) => assert!(e.contains("closed"), "neither a response nor a close: {e}"),
    }
    thread::sleep(Duration::from_millis(100));
    assert!(up.requests().iter().all(|q| q.target == "/petstore/next"), "{:?}", up.requests());
}

/// A client that sends its requests and half-closes in one go gets every answer, and then
/// the close: the end of the stream arrives with the last bytes read, so the worker must
/// still see it after a short read emptied the socket (the epoll driver skips the read that
/// would fail with EAGAIN; it must not skip the one that returns end of stream).
#[test]
fn requests_then_half_close_get_answers_then_close() {
    let (up, gw) = echo_gateway();
    for delay_fin in [false, true] {
        let mut c = gw.connect();
        let mut batch = request("GET", "/test/one", &[], b"");
        batch.extend(request("GET", "/test/two", &[], b""));
        c.send(&batch);
        if delay_fin {
            thread::sleep(Duration::from_millis(100));
        }
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        let one = c.read_response();
        let two = c.read_response();
        assert_eq!((one.status, one.text().as_str()), (200, "GET /petstore/one\n"), "delayed FIN {delay_fin}: {one}");
        assert_eq!((two.status, two.text().as_str()), (200, "GET /petstore/two\n"), "delayed FIN {delay_fin}: {two}");
        assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed, "delayed FIN {delay_fin}: left open");
    }
    assert_eq!(up.request_count(), 4);
}
