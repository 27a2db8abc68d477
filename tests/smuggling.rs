//! Request-smuggling vectors: each must get 400, the connection closed, and
//! nothing (neither the request nor the smuggled one behind it) may reach the
//! upstream.
mod support;
use std::thread;
use std::time::Duration;
use support::*;

const SMUGGLED: &[u8] = b"GET /test/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n";

fn setup() -> (Upstream, Gateway) {
    let up = Upstream::echo();
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

/// Send `raw` (followed by a smuggled GET), expect 400 + close + nothing upstream.
fn assert_rejected(what: &str, raw: &[u8]) {
    let (up, gw) = setup();
    let mut c = gw.connect();
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(SMUGGLED);
    let _ = c.try_send(&bytes); // the gateway may close while we write
    let r = c.try_read_response().unwrap_or_else(|e| {
        panic!("{what}: expected a 400 response, got: {e}\nrequest: {:?}", String::from_utf8_lossy(&bytes))
    });
    assert_eq!(r.status, 400, "{what}: expected 400\nrequest: {:?}\nresponse:\n{r}", String::from_utf8_lossy(&bytes));
    match c.wait_closed(Duration::from_secs(3)) {
        CloseState::Closed => {}
        CloseState::Open => panic!("{what}: connection left open after 400"),
        CloseState::Data(d) => panic!("{what}: more bytes after the 400 (desync!): {d:?}"),
    }
    thread::sleep(Duration::from_millis(200));
    let reqs = up.requests();
    assert!(
        reqs.is_empty(),
        "{what}: requests reached the upstream: {:?}",
        reqs.iter().map(|r| format!("{} {} {:?}", r.method, r.target, r.body_text())).collect::<Vec<_>>()
    );
    // the gateway is still healthy for other clients
    let r = gw.get("/test/healthy");
    assert_eq!(r.status, 200, "{what}: gateway unhealthy afterwards: {r}");
}

#[test]
fn cl_and_te_together() {
    assert_rejected(
        "CL+TE",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn te_and_cl_together() {
    assert_rejected(
        "TE+CL",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn cl_and_te_get_without_body() {
    assert_rejected(
        "GET with CL+TE",
        b"GET /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn two_differing_content_lengths() {
    assert_rejected(
        "differing duplicate CL",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 45\r\n\r\nhello",
    );
}

#[test]
fn differing_content_lengths_in_one_header() {
    assert_rejected(
        "CL list with differing values",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 45\r\n\r\nhello",
    );
}

#[test]
fn negative_content_length() {
    assert_rejected("negative CL", b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\nhello");
}

#[test]
fn signed_content_length() {
    assert_rejected("CL with plus sign", b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello");
}

#[test]
fn non_numeric_content_length() {
    assert_rejected("non-numeric CL", b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5x\r\n\r\nhello");
}

#[test]
fn transfer_encoding_gzip() {
    assert_rejected("TE gzip", b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\n");
}

#[test]
fn transfer_encoding_chunked_then_gzip() {
    assert_rejected(
        "TE chunked, gzip",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn transfer_encoding_split_over_two_headers_last_not_chunked() {
    assert_rejected(
        "TE chunked + TE gzip headers",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn transfer_encoding_lookalike() {
    assert_rejected(
        "TE xchunked",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn transfer_encoding_identity() {
    assert_rejected("TE identity", b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\n");
}

#[test]
fn invalid_chunk_size() {
    assert_rejected(
        "chunk size zz",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn overflowing_chunk_size() {
    assert_rejected(
        "chunk size overflow",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn negative_chunk_size() {
    assert_rejected(
        "chunk size -1",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn chunk_data_longer_than_its_size() {
    assert_rejected(
        "chunk data not followed by CRLF",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn obs_fold_continuation_line() {
    assert_rejected("obs-fold", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nX-Folded: first\r\n  continued\r\n\r\n");
}

#[test]
fn obs_fold_on_transfer_encoding() {
    assert_rejected(
        "obs-fold TE",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn whitespace_before_colon() {
    assert_rejected(
        "space before colon",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn two_identical_content_lengths_handled_sanely() {
    let (up, gw) = setup();
    let mut c = gw.connect();
    let mut bytes =
        b"POST /test/dup HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    bytes.extend_from_slice(b"GET /test/second HTTP/1.1\r\nHost: gw\r\n\r\n");
    c.send(&bytes);
    let r = c.read_response();
    match r.status {
        400 => {
            assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed, "400 without close");
            thread::sleep(Duration::from_millis(200));
            assert_eq!(up.request_count(), 0, "rejected request reached the upstream");
        }
        200 => {
            assert_eq!(r.text(), "POST /petstore/dup\nhello", "{r}");
            let r2 = c.read_response();
            assert_eq!(r2.status, 200, "{r2}");
            assert_eq!(r2.text(), "GET /petstore/second\n", "desync after duplicate identical CL");
            let reqs = up.requests();
            assert_eq!(reqs.len(), 2);
            assert_eq!(reqs[0].body_text(), "hello");
            assert_eq!(reqs[1].target, "/petstore/second");
            assert_eq!(reqs[0].headers_all("content-length"), vec!["5"], "one CL upstream");
        }
        s => panic!("unexpected status {s} for identical duplicate CL:\n{r}"),
    }
}

#[test]
fn chunked_coding_is_case_insensitive_and_accepted() {
    // the non-smuggling control: a normal chunked request with odd case works
    let (up, gw) = setup();
    let mut c = gw.connect();
    c.send(b"POST /test/ok HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().body_text(), "abc");
}

#[test]
fn smuggled_request_after_rejection_is_never_answered() {
    // CL.TE classic: if the gateway used CL it would see "0\r\n\r\nG" as the body and
    // "POST /test/smuggled..." as a new request; if it used TE, "G..." would start
    // the next request.
    let (up, gw) = setup();
    let mut c = gw.connect();
    let _ = c.try_send(
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGPOST /test/smuggled HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
    );
    let r = c.read_response();
    assert_eq!(r.status, 400, "{r}");
    match c.wait_closed(Duration::from_secs(3)) {
        CloseState::Closed => {}
        other => panic!("after 400: {other:?}"),
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(up.request_count(), 0);
}
