//! Attack corpus: hostile clients against the real binary (issue #8).
//!
//! What tests/smuggling.rs, tests/http1.rs and tests/limits.rs already cover (CL.TE,
//! TE.CL, `xchunked`, `Transfer-Encoding : chunked` next to a Content-Length, chunk-size
//! overflow, obs-fold, missing Host, 431/414 with configured limits, a single slowloris)
//! is not repeated here. For every vector: the right status, the connection closed when
//! it must be, nothing reaching the upstream that should not, and no worker stall (a
//! parallel client is still answered quickly).
mod support;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// A request smuggled behind each hostile one: it must never be answered or forwarded.
const SMUGGLED: &[u8] = b"GET /test/smuggled HTTP/1.1\r\nHost: gw\r\n\r\n";

/// How long a healthy request on an otherwise idle gateway may take, generously (debug
/// build, 2 shared cores). A stalled worker blows well past it.
const QUICK: Duration = Duration::from_secs(2);

fn setup() -> (Upstream, Gateway) {
    let up = Upstream::echo();
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

fn setup_with(extra: &str, workers: u32) -> (Upstream, Gateway) {
    let up = Upstream::start(|req| {
        if req.target.ends_with("/big") {
            Reply::new(200).header("Content-Type", "application/octet-stream").huge(64 << 20)
        } else {
            Reply::echo(req)
        }
    });
    let gw = Gateway::builder(&format!("{extra}\n{}", petstore_config(&up.hostport()))).workers(workers).start();
    (up, gw)
}

/// A fresh client gets its answer, and quickly: the workers are not stalled.
#[track_caller]
fn assert_answers_quickly(gw: &Gateway, what: &str) {
    let t = Instant::now();
    let mut c = gw.connect().with_timeout(QUICK * 2);
    let r = c.roundtrip("GET", "/test/healthy", &[], b"");
    let took = t.elapsed();
    assert_eq!(r.status, 200, "{what}: a parallel client was not served: {r}");
    assert_eq!(r.text(), "GET /petstore/healthy\n", "{what}");
    assert!(took < QUICK, "{what}: a parallel client waited {took:?} (worker stall?)");
}

fn describe(reqs: &[Req]) -> Vec<String> {
    reqs.iter().map(|r| format!("{} {} {:?}", r.method, r.target, r.body_text())).collect()
}

/// Sends `raw` followed by a smuggled GET; expects `status`, the connection closed right
/// after it, nothing at the upstream, and a healthy gateway.
#[track_caller]
fn assert_rejected_with(what: &str, raw: &[u8], status: u16) {
    let (up, gw) = setup();
    let mut c = gw.connect();
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(SMUGGLED);
    let _ = c.try_send(&bytes); // the gateway may close while we write
    let r = c.try_read_response().unwrap_or_else(|e| {
        panic!("{what}: expected {status}, got: {e}\nrequest: {:?}", String::from_utf8_lossy(&bytes))
    });
    assert_eq!(r.status, status, "{what}\nrequest: {:?}\nresponse:\n{r}", String::from_utf8_lossy(&bytes));
    assert!(r.text().starts_with("{\"message\":"), "{what}: body is not a JSON message: {r}");
    match c.wait_closed(Duration::from_secs(3)) {
        CloseState::Closed => {}
        CloseState::Open => panic!("{what}: connection left open after {status}"),
        CloseState::Data(d) => panic!("{what}: more bytes after the {status} (desync!): {d:?}"),
    }
    assert_answers_quickly(&gw, what);
    // Only the health probe may have reached the upstream.
    let reqs = up.requests();
    assert!(
        reqs.len() == 1 && reqs[0].target == "/petstore/healthy",
        "{what}: requests reached the upstream: {:?}",
        describe(&reqs)
    );
}

#[track_caller]
fn assert_rejected(what: &str, raw: &[u8]) {
    assert_rejected_with(what, raw, 400)
}

/// Sends `raw` (a valid request in an unusual spelling) and then a plain GET on the same
/// connection: both are answered, in order, and reach the upstream as exactly two
/// requests with `body` as the first one's body.
#[track_caller]
fn assert_accepted_in_sync(what: &str, raw: &[u8], body: &str) {
    let (up, gw) = setup();
    let mut c = gw.connect();
    let mut bytes = raw.to_vec();
    bytes.extend_from_slice(b"GET /test/second HTTP/1.1\r\nHost: gw\r\n\r\n");
    c.send(&bytes);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{what}: {r}");
    assert_eq!(r.text(), format!("POST /petstore/first\n{body}"), "{what}");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{what}: second request: {r}");
    assert_eq!(r.text(), "GET /petstore/second\n", "{what}: desync after the first request");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{what}: {:?}", describe(&reqs));
    assert_eq!(reqs[0].body_text(), body, "{what}");
    // The upstream always gets ringway's own framing, never the client's spelling.
    assert!(reqs[0].headers_all("transfer-encoding").iter().all(|v| *v == "chunked"), "{what}: {:?}", reqs[0].headers);
}

// ------------------------------------------------------------------ TE.TE obfuscations

#[test]
fn te_with_trailing_spaces_is_chunked_and_stays_in_sync() {
    // Trailing whitespace is OWS (RFC 9110 section 5.5): "chunked   " is chunked. A
    // gateway that compared the raw value would take the body as a new request.
    assert_accepted_in_sync(
        "TE chunked + trailing spaces",
        b"POST /test/first HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked   \r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "hello",
    );
}

#[test]
fn te_with_tab_before_value_is_chunked_and_stays_in_sync() {
    assert_accepted_in_sync(
        "TE tab chunked",
        b"POST /test/first HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "hello",
    );
}

#[test]
fn te_with_trailing_spaces_and_content_length_is_rejected() {
    assert_rejected(
        "TE 'chunked ' + CL",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn te_with_tab_and_content_length_is_rejected() {
    assert_rejected(
        "TE tab chunked + CL",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn duplicated_te_chunked_headers_are_rejected() {
    // chunked applied twice is invalid (RFC 9112 section 6.1: chunked only once, last).
    assert_rejected(
        "TE chunked twice",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn te_xchunked_without_content_length_is_rejected() {
    // Without a CL, a server ignoring the unknown coding would read no body and take
    // "0\r\n\r\n" + the smuggled GET as the next requests.
    assert_rejected(
        "TE xchunked alone",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn te_with_space_before_colon_without_content_length_is_rejected() {
    // RFC 9112 section 5.1: whitespace between name and colon MUST be rejected with 400.
    // Ignoring the line instead would turn the chunked body into the next request.
    assert_rejected(
        "'Transfer-Encoding : chunked' alone",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn te_with_vertical_tab_or_formfeed_is_rejected() {
    // Not OWS: a value "\x0bchunked" is not the token chunked.
    assert_rejected(
        "TE VT chunked",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn chunk_size_just_over_u64_is_rejected() {
    // 17 hex digits: one more than a u64 holds.
    assert_rejected(
        "chunk size 2^64",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n",
    );
}

#[test]
fn bare_lf_in_chunked_framing_is_rejected() {
    // RFC 9112 section 2.2 lets a recipient accept a bare LF as a line terminator, but in
    // chunked framing that is a request-smuggling vector (a front end and a back end that
    // disagree on it disagree on where the body ends): ringway requires CRLF on every
    // chunked line, 400 and the connection closed, nothing forwarded.
    for (what, body) in [
        ("bare LF after the chunk size", "5\nhello\r\n0\r\n\r\n"),
        ("bare LF after a chunk extension", "5;a=b\nhello\r\n0\r\n\r\n"),
        ("bare LF after the chunk data", "5\r\nhello\n0\r\n\r\n"),
        ("bare LF after the last chunk size", "5\r\nhello\r\n0\n\r\n"),
        ("bare LF after a trailer line", "5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n"),
        ("bare LF ending the trailer section", "5\r\nhello\r\n0\r\n\n"),
        ("bare LF everywhere", "5\nhello\n0\n\n"),
    ] {
        let raw = format!("POST /test/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        assert_rejected(what, raw.as_bytes());
    }
}

#[test]
fn transfer_encoding_in_an_http_1_0_request_is_rejected() {
    // RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing,
    // "even if a Content-Length is present", and the connection is closed.
    for (what, raw) in [
        ("HTTP/1.0 + TE chunked", &b"POST /test/a HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..]),
        ("HTTP/1.0 + TE chunked + CL", b"POST /test/a HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello"),
        ("HTTP/1.0 + TE gzip, chunked", b"POST /test/a HTTP/1.0\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("HTTP/1.0 keep-alive + TE chunked", b"POST /test/a HTTP/1.0\r\nHost: gw\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ] {
        assert_rejected(what, raw);
    }
}

// ------------------------------------------------------------------ line endings, NUL, CR

#[test]
fn bare_lf_request_head_is_accepted_and_rewritten() {
    // Accepting bare LF in a head is allowed (RFC 9112 section 2.2) and safe here: ringway
    // writes its own CRLF head to the upstream, never the client's bytes (as nginx). Both
    // pipelined requests are answered, in order, and reach the upstream as two requests.
    let (up, gw) = setup();
    let mut c = gw.connect();
    c.send(b"GET /test/lf HTTP/1.1\nHost: gw\nX-A: 1\n\nGET /test/second HTTP/1.1\r\nHost: gw\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "GET /petstore/lf\n");
    assert_eq!(c.read_response().text(), "GET /petstore/second\n", "desync after a bare-LF head");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2, "{:?}", describe(&reqs));
    assert_eq!(reqs[0].header("x-a"), Some("1"), "{:?}", reqs[0].headers);
}

#[test]
fn bare_cr_in_header_value_is_rejected() {
    // RFC 9112 section 2.2: a bare CR MUST be rejected or replaced by SP; a CR forwarded
    // as is would end the line early at an upstream that accepts bare CR.
    assert_rejected(
        "bare CR in a value",
        b"GET /test/a HTTP/1.1\r\nHost: gw\r\nX-Evil: a\rTransfer-Encoding: chunked\r\n\r\n",
    );
}

#[test]
fn bare_cr_as_line_end_is_rejected() {
    assert_rejected("bare CR line end", b"GET /test/a HTTP/1.1\rHost: gw\r\n\r\n");
}

#[test]
fn nul_in_header_value_is_rejected() {
    assert_rejected("NUL in a value", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nX-Nul: a\0b\r\n\r\n");
}

#[test]
fn nul_in_request_target_is_rejected() {
    assert_rejected("NUL in the target", b"GET /test/a\0b HTTP/1.1\r\nHost: gw\r\n\r\n");
}

#[test]
fn nul_in_header_name_is_rejected() {
    assert_rejected("NUL in a name", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nX-N\0ul: a\r\n\r\n");
}

#[test]
fn control_character_in_request_target_is_rejected() {
    assert_rejected("DEL in the target", b"GET /test/a\x7fb HTTP/1.1\r\nHost: gw\r\n\r\n");
}

#[test]
fn header_name_with_space_is_rejected() {
    assert_rejected("space in a header name", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nX Evil: 1\r\n\r\n");
}

#[test]
fn header_name_with_space_smuggling_te_is_rejected() {
    assert_rejected(
        "'Transfer Encoding: chunked'",
        b"POST /test/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer Encoding: chunked\r\n\r\nhello",
    );
}

#[test]
fn header_line_without_colon_is_rejected() {
    assert_rejected("header without a colon", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nNoColonHere\r\n\r\n");
}

#[test]
fn empty_header_name_is_rejected() {
    assert_rejected("empty header name", b"GET /test/a HTTP/1.1\r\nHost: gw\r\n: value\r\n\r\n");
}

// ------------------------------------------------------------------ sizes

#[test]
fn too_many_small_headers_is_431() {
    // 200 tiny headers are far under max_header_bytes (16 KiB) but over the field count.
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let raw = format!("GET /test/many HTTP/1.1\r\nHost: gw\r\n{many}\r\n");
    assert_rejected_with("200 headers", raw.as_bytes(), 431);
}

#[test]
fn one_hundred_headers_are_forwarded() {
    // The control for the count limit: a request with 100 headers is fine and every one
    // reaches the upstream.
    let (up, gw) = setup();
    let names: Vec<(String, String)> = (0..100).map(|i| (format!("X-H{i}"), format!("v{i}"))).collect();
    let hv: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = gw.send("GET", "/test/h", &hv, b"");
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    for (k, v) in &names {
        assert_eq!(req.header(k), Some(v.as_str()), "{k} lost");
    }
}

#[test]
fn default_header_limit_is_431_and_closes() {
    let big = "h".repeat(17 * 1024);
    let raw = format!("GET /test/a HTTP/1.1\r\nHost: gw\r\nX-Big: {big}\r\n\r\n");
    assert_rejected_with("17 KiB header, default max_header_bytes", raw.as_bytes(), 431);
}

#[test]
fn endless_request_line_is_414_without_buffering_it() {
    // A request line that never ends: cut off once it passes max_uri_bytes (default
    // 10 KiB), not buffered up to megabytes.
    let (up, gw) = setup();
    let mut c = gw.connect();
    c.send(b"GET /test/");
    let chunk = vec![b'u'; 16 * 1024];
    let mut sent = 0usize;
    let t = Instant::now();
    while sent < 4 << 20 && t.elapsed() < Duration::from_secs(5) {
        if c.try_send(&chunk).is_err() {
            break;
        }
        sent += chunk.len();
    }
    let (closed, bytes) = c.drain_until_closed(Duration::from_secs(5));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 414"), "expected 414, got {text:?} (closed={closed}, sent {sent})");
    assert!(closed, "connection left open after 414");
    assert_answers_quickly(&gw, "after an endless request line");
    assert_eq!(up.request_count(), 1);
}

#[test]
fn uri_just_under_the_default_limit_is_served() {
    let (up, gw) = setup();
    let path = format!("/test/{}", "p".repeat(10_000));
    let r = gw.get(&path);
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(up.last_request().target, format!("/petstore/{}", "p".repeat(10_000)));
}

// ------------------------------------------------------------------ methods and targets

#[test]
fn method_with_invalid_characters_is_rejected() {
    for (what, raw) in [
        ("@ in method", &b"G@T /test/a HTTP/1.1\r\nHost: gw\r\n\r\n"[..]),
        ("( in method", b"GET( /test/a HTTP/1.1\r\nHost: gw\r\n\r\n"),
        ("control byte in method", b"G\x01T /test/a HTTP/1.1\r\nHost: gw\r\n\r\n"),
        ("empty method", b" /test/a HTTP/1.1\r\nHost: gw\r\n\r\n"),
        ("two spaces", b"GET  /test/a HTTP/1.1\r\nHost: gw\r\n\r\n"),
        ("unknown version", b"GET /test/a HTTP/2.0\r\nHost: gw\r\n\r\n"),
        ("HTTP/1.12", b"GET /test/a HTTP/1.12\r\nHost: gw\r\n\r\n"),
        ("no version", b"GET /test/a\r\nHost: gw\r\n\r\n"),
        ("lowercase http", b"GET /test/a http/1.1\r\nHost: gw\r\n\r\n"),
    ] {
        assert_rejected(what, raw);
    }
}

#[test]
fn unknown_but_valid_methods_never_reach_the_upstream() {
    // Valid tokens API Gateway does not know match no route: 403, nothing forwarded, and
    // the connection stays usable (the request was well-formed).
    let (up, gw) = setup();
    let mut c = gw.connect();
    for m in ["TRACE", "CONNECT", "PROPFIND", "FOO", "get", "M-SEARCH"] {
        let r = c.roundtrip(m, "/test/a", &[], b"");
        assert_missing_token(&r, m);
        if r.connection_close() {
            c = gw.connect();
        }
    }
    let r = c.roundtrip("GET", "/test/after", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.requests().len(), 1, "{:?}", describe(&up.requests()));
}

#[test]
fn absolute_form_target_is_routed_by_its_path() {
    // RFC 9112 section 3.2.2: a server MUST accept absolute-form; the authority in the
    // target wins over Host. The upstream sees origin-form with the backend's Host,
    // never the client's absolute URI.
    let (up, gw) = setup();
    let mut c = gw.connect();
    c.send(b"GET http://evil.example/test/abs?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "GET /petstore/abs?q=1\n");
    let req = up.last_request();
    assert_eq!(req.target, "/petstore/abs?q=1");
    assert_eq!(req.header("host"), Some(up.hostport().as_str()), "{:?}", req.headers);
    // HTTPS scheme, mixed case
    c.send(b"GET HTTPS://evil.example/test/abs2 HTTP/1.1\r\nHost: gw\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, "/petstore/abs2");
}

#[test]
fn absolute_form_without_path_or_with_other_scheme_never_reaches_upstream() {
    let (up, gw) = setup();
    for raw in [
        &b"GET http://evil.example HTTP/1.1\r\nHost: gw\r\n\r\n"[..],
        b"GET http://evil.example?x=/test/a HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET ftp://evil.example/test/a HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET //evil.example/test/a HTTP/1.1\r\nHost: gw\r\n\r\n",
    ] {
        let mut c = gw.connect();
        let _ = c.try_send(raw);
        let r = c.read_response();
        let what = String::from_utf8_lossy(raw);
        assert!(r.status == 400 || r.status == 403, "{what}: {r}");
    }
    assert_answers_quickly(&gw, "absolute-form");
    let reqs = up.requests();
    // "//evil.example/test/a" is an origin-form path whose first segment is empty: it
    // routes to no stage. Nothing but the health probe may reach the upstream.
    assert_eq!(reqs.len(), 1, "{:?}", describe(&reqs));
}

#[test]
fn authority_form_connect_is_rejected() {
    // ringway is not a forward proxy: CONNECT host:port (RFC 9112 section 3.2.3) is
    // refused, and never tunnelled.
    assert_rejected("CONNECT authority-form", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n");
}

#[test]
fn authority_form_with_other_methods_is_rejected() {
    assert_rejected("GET authority-form", b"GET evil.example:80 HTTP/1.1\r\nHost: gw\r\n\r\n");
}

#[test]
fn asterisk_form_is_rejected() {
    assert_rejected("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n");
}

// ------------------------------------------------------------------ Host conflicts

#[test]
fn two_host_headers_are_rejected() {
    // RFC 9112 section 3.2: more than one Host line MUST get 400.
    assert_rejected("two differing Hosts", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nHost: evil.example\r\n\r\n");
    assert_rejected("two identical Hosts", b"GET /test/a HTTP/1.1\r\nHost: gw\r\nHost: gw\r\n\r\n");
}

#[test]
fn host_with_space_before_colon_is_rejected() {
    assert_rejected("'Host :'", b"GET /test/a HTTP/1.1\r\nHost : evil.example\r\nHost: gw\r\n\r\n");
}

#[test]
fn missing_host_with_body_is_rejected_and_body_not_forwarded() {
    assert_rejected("no Host, with a body", b"POST /test/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
}

#[test]
fn client_host_never_reaches_the_upstream() {
    let (up, gw) = setup();
    let r = gw.send("GET", "/test/h", &[("Host", "evil.example")], b"");
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.headers_all("host"), vec![up.hostport().as_str()], "{:?}", req.headers);
}

// ------------------------------------------------------------------ path traversal

/// Greedy `{proxy+}` routes substitute the rest of the path into
/// `http://upstream/petstore/{proxy}`. If ringway forwarded a dot-segment there, any
/// backend that normalizes the path (RFC 3986 section 5.2.4: nginx, Envoy, most
/// frameworks; `%2e` is `.` per RFC 3986 section 2.3, `%2f` decoded to `/` by nginx,
/// `..;` is `..` to Tomcat) would resolve `/petstore/../admin` to `/admin`: the client
/// escapes the integration's base path and reaches what the route never exposed. It also
/// lets `/test/./pets` dodge a static `/pets` route's policies (API key, throttling).
///
/// nginx resolves dot-segments and answers 400 when they climb above the root; Envoy's
/// edge settings normalize or reject. ringway routes on the raw path (as API Gateway
/// does) and so must not normalize behind the router's back: it answers 400 to any path
/// with a dot-segment, literal or percent-encoded, and closes.
///
/// What is kept verbatim, as API Gateway does (reference section 2.2): percent-encoding
/// (`%2F` stays `%2F`, `%20` stays `%20`), double slashes inside the greedy value, and
/// names that merely contain dots (`.hidden`, `a..b`, `...`). A leading `//` after the
/// stage is collapsed (reference section 2.2).
#[test]
fn dot_segments_in_the_path_are_rejected() {
    for path in [
        "/test/../admin",
        "/test/a/../../admin",
        "/test/a/..",
        "/test/./a",
        "/test/a/.",
        "/test/%2e%2e/admin",
        "/test/%2E%2E/admin",
        "/test/.%2e/admin",
        "/test/%2e./admin",
        "/test/%2e/a",
        "/test/a%2f..%2fadmin",
        "/test/a%2F..%2F..%2Fadmin",
        "/test/a%5c..%5cadmin",
        "/test/a\\..\\admin",
        "/test/..;/admin",
        "/test/a/..;x=1/admin",
        "/test/..?x=1",
        "/../test/a",
    ] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n");
        assert_rejected(&format!("path {path}"), raw.as_bytes());
    }
}

#[test]
fn dot_segments_in_absolute_form_are_rejected() {
    assert_rejected("absolute-form ..", b"GET http://gw/test/../admin HTTP/1.1\r\nHost: gw\r\n\r\n");
}

#[test]
fn percent_encoding_and_slashes_reach_the_upstream_verbatim() {
    let (up, gw) = setup();
    for (path, upstream) in [
        ("/test/a%2Fb", "/petstore/a%2Fb"),
        ("/test/a%2fb/c", "/petstore/a%2fb/c"),
        ("/test/a//b", "/petstore/a//b"),
        // trailing slashes are ignored for matching and not part of the greedy value
        // (reference section 2.2)
        ("/test/a/b//", "/petstore/a/b"),
        ("/test//a", "/petstore/a"),
        ("/test/.hidden", "/petstore/.hidden"),
        ("/test/a..b/..c/d..", "/petstore/a..b/..c/d.."),
        ("/test/.../x", "/petstore/.../x"),
        ("/test/%252e%252e/x", "/petstore/%252e%252e/x"),
        ("/test/a%20b", "/petstore/a%20b"),
        ("/test/a?p=../../x", "/petstore/a?p=../../x"),
    ] {
        let r = gw.get(path);
        assert_eq!(r.status, 200, "{path}: {r}");
        assert_eq!(up.last_request().target, upstream, "{path}");
    }
}

// ------------------------------------------------------------------ slow clients

#[test]
fn slowloris_connections_are_closed_and_do_not_stall_others() {
    // header_timeout_ms is above QUICK: a worker stalled by the trickling connections
    // until their timeout would show in the parallel clients' latency.
    let (up, gw) = setup_with("[limits]\nheader_timeout_ms = 3000", 2);
    let addr = gw.addr();
    // 64 connections trickle one byte each per round, every 50 ms.
    let mut drips: Vec<TcpStream> = (0..64)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let head = b"GET /test/slow HTTP/1.1\r\nHost: gw\r\nX-Drip: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let dripper = thread::spawn(move || {
        let start = Instant::now();
        let mut closed_after: Vec<Option<Duration>> = vec![None; drips.len()];
        for &b in head.iter() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            for (i, s) in drips.iter_mut().enumerate() {
                if closed_after[i].is_none() && s.write_all(&[b]).is_err() {
                    closed_after[i] = Some(start.elapsed());
                }
            }
            // A closed connection shows as EOF on read.
            for (i, s) in drips.iter_mut().enumerate() {
                if closed_after[i].is_none() {
                    s.set_nonblocking(true).unwrap();
                    let mut b = [0u8; 512];
                    let gone = match s.read(&mut b) {
                        Ok(0) => true,
                        Ok(_) => true, // a 408 before the close counts as cut off
                        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                    };
                    if gone {
                        closed_after[i] = Some(start.elapsed());
                    }
                    s.set_nonblocking(false).unwrap();
                }
            }
            if closed_after.iter().all(Option::is_some) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        closed_after
    });
    // Meanwhile ordinary clients are served without delay.
    let t = Instant::now();
    let mut served = 0;
    while t.elapsed() < Duration::from_millis(2500) {
        assert_answers_quickly(&gw, "during a slowloris");
        served += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let closed_after = dripper.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    assert!(served >= 5, "only {served} requests served during the slowloris");
    for (i, c) in closed_after.iter().enumerate() {
        let at = c.unwrap_or_else(|| panic!("slowloris connection {i} was never closed (header_timeout_ms = 3000)"));
        assert!(at < Duration::from_secs(5), "slowloris connection {i} closed only after {at:?}");
    }
    assert!(
        up.requests().iter().all(|r| r.target == "/petstore/healthy"),
        "a trickled request reached the upstream: {:?}",
        describe(&up.requests())
    );
}

#[test]
fn slow_reader_does_not_stall_its_worker_and_is_eventually_dropped() {
    // One worker, so the slow reader and the other clients share it. The slow reader asks
    // for 64 MiB and never reads: the gateway blocks on that one write only. The write
    // is bounded by idle_timeout_ms, above QUICK so that a stalled worker would show.
    let (up, gw) = setup_with("[limits]\nidle_timeout_ms = 4000", 1);
    assert_answers_quickly(&gw, "warm-up");
    let fds_before = fd_count(gw.pid());
    let mut slow = gw.connect();
    slow.stream.set_read_timeout(Some(Duration::from_millis(10))).ok();
    // tiny receive window: the gateway's writes back up at once
    let sock = socket2::SockRef::from(&slow.stream);
    sock.set_recv_buffer_size(4096).ok();
    slow.send(b"GET /test/big HTTP/1.1\r\nHost: gw\r\n\r\n");
    assert!(
        eventually(Duration::from_secs(5), || up.requests().iter().any(|r| r.target == "/petstore/big")),
        "the big request never reached the upstream"
    );
    for _ in 0..10 {
        assert_answers_quickly(&gw, "while a client does not read");
    }
    // The stalled write is bounded by idle_timeout_ms: connection and upstream released.
    let big_conn = up.requests().iter().find(|r| r.target == "/petstore/big").unwrap().conn_id;
    assert!(
        eventually(Duration::from_secs(15), || up.closed_connections() >= 1),
        "the upstream connection of the stalled response (conn {big_conn}) was never closed"
    );
    assert!(
        eventually(Duration::from_secs(10), || fd_count(gw.pid()) <= fds_before + 1),
        "gateway fds: {} before, {} after the slow reader was dropped",
        fds_before,
        fd_count(gw.pid())
    );
    drop(slow);
    assert_answers_quickly(&gw, "after the slow reader");
    // and the stalled response's upstream connection was never reused
    let reqs = up.requests();
    let big = reqs.iter().find(|r| r.target == "/petstore/big").unwrap();
    assert!(
        !reqs.iter().any(|r| r.conn_id == big.conn_id && r.index_on_conn > big.index_on_conn),
        "the upstream connection of an aborted response was reused: {:?}",
        describe(&reqs)
    );
}

// ------------------------------------------------------------------ disconnects

#[test]
fn client_gone_mid_request_body_leaves_no_broken_upstream_connection() {
    // One worker: a single pool. The client announces 4 MiB, sends 300 KiB and leaves.
    // Part of the body went upstream already; that connection must be dropped, not
    // pooled (the upstream would take the next request as the rest of the body).
    let (up, gw) = setup_with("", 1);
    assert_answers_quickly(&gw, "warm-up");
    for round in 0..3 {
        let mut c = gw.connect();
        c.send(b"POST /test/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 4194304\r\n\r\n");
        c.send(&pattern_body(300 * 1024));
        thread::sleep(Duration::from_millis(100));
        drop(c);
        // chunked variant: no final chunk
        let mut c = gw.connect();
        c.send(b"POST /test/upload-chunked HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(&chunked(&pattern_body(200 * 1024), 8192)[..150 * 1024]);
        thread::sleep(Duration::from_millis(100));
        drop(c);
        let mut c = gw.connect();
        for i in 0..3 {
            let body = format!("round {round} request {i}");
            let r = c.roundtrip("POST", "/test/after", &[], body.as_bytes());
            assert_eq!(r.status, 200, "round {round}: {r}");
            assert_eq!(r.text(), format!("POST /petstore/after\n{body}"), "round {round}");
        }
    }
    let reqs = up.requests();
    assert!(
        reqs.iter().all(|r| r.target == "/petstore/after" || r.target == "/petstore/healthy"),
        "an incomplete upload reached the upstream as a complete request: {:?}",
        describe(&reqs)
    );
    assert!(
        eventually(Duration::from_secs(5), || up
            .partial_requests()
            .iter()
            .any(|h| h.starts_with("POST /petstore/upload "))),
        "the upload never started upstream (test did not exercise streaming): {:?}",
        up.partial_requests()
    );
}

#[test]
fn client_gone_mid_response_leaves_no_broken_upstream_connection() {
    let (up, gw) = setup_with("", 1);
    assert_answers_quickly(&gw, "warm-up");
    for round in 0..3 {
        let mut c = gw.connect();
        c.send(b"GET /test/big HTTP/1.1\r\nHost: gw\r\n\r\n");
        let head = c.try_read_head().unwrap_or_else(|e| panic!("round {round}: no head: {e}"));
        assert_eq!(head.status, 200, "{}", head.head);
        let mut got = c.leftover().len();
        let mut buf = [0u8; 65536];
        while got < 1 << 20 {
            match c.stream.read(&mut buf) {
                Ok(0) | Err(_) => panic!("round {round}: response ended early at {got}"),
                Ok(n) => got += n,
            }
        }
        drop(c); // reset with most of 64 MiB unsent
        let mut c = gw.connect();
        for i in 0..3 {
            let r = c.roundtrip("GET", &format!("/test/r{round}/{i}"), &[], b"");
            assert_eq!(r.status, 200, "round {round}: {r}");
            assert_eq!(r.text(), format!("GET /petstore/r{round}/{i}\n"), "round {round}: stale bytes?");
        }
    }
    let reqs = up.requests();
    for big in reqs.iter().filter(|r| r.target == "/petstore/big") {
        assert!(
            !reqs.iter().any(|r| r.conn_id == big.conn_id && r.index_on_conn > big.index_on_conn),
            "the upstream connection of an aborted 64 MiB response was reused: {:?}",
            describe(&reqs)
        );
    }
    assert!(
        eventually(Duration::from_secs(10), || up.closed_connections() >= 3),
        "the aborted responses' upstream connections stay open"
    );
}

// ------------------------------------------------------------------ 10,000 connections

fn raise_nofile(want: u64) -> u64 {
    unsafe {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        if l.rlim_cur < want {
            l.rlim_cur = want.min(l.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        }
        l.rlim_cur
    }
}

#[test]
fn ten_thousand_concurrent_connections_are_all_answered() {
    // Under an emulator (scripts/test-arm64) a tenth: the point there is the code path.
    let n = if std::env::var_os("RINGWAY_TEST_RUNNER").is_some() { 1_000 } else { 10_000 };
    const THREADS: usize = 8;
    // The gateway is spawned after this, so it inherits the limit too.
    let limit = raise_nofile(2 * n as u64 + 1000);
    assert!(limit >= n as u64 + 500, "RLIMIT_NOFILE is {limit}: cannot open {n} connections");
    let cfg = mock_route("/hello", "GET", "hi");
    let gw = Gateway::start(&cfg);
    let addr = gw.addr();
    let opened = Arc::new(Barrier::new(THREADS + 1));
    let sent = Arc::new(Barrier::new(THREADS + 1));
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (opened, sent) = (opened.clone(), sent.clone());
            thread::spawn(move || {
                let mut conns = Vec::with_capacity(n / THREADS);
                for _ in 0..n / THREADS {
                    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
                    conns.push(s);
                }
                opened.wait();
                for s in conns.iter_mut() {
                    s.write_all(b"GET /hello HTTP/1.1\r\nHost: gw\r\n\r\n").expect("write");
                }
                sent.wait();
                let mut ok = 0;
                for s in conns {
                    let mut c = Conn::from_stream(s).with_timeout(Duration::from_secs(30));
                    match c.try_read_response() {
                        Ok(r) if r.status == 200 && r.text() == "hi" => ok += 1,
                        Ok(r) => panic!("unexpected response: {r}"),
                        Err(e) => panic!("no response: {e}"),
                    }
                }
                ok
            })
        })
        .collect();
    opened.wait();
    // The gateway really holds all of them at once (one fd each).
    assert!(
        eventually(Duration::from_secs(20), || fd_count(gw.pid()) >= n),
        "the gateway holds {} fds, not the {n} connections",
        fd_count(gw.pid())
    );
    // All 10,000 are open at once: a newcomer is still served promptly.
    let t = Instant::now();
    let r = gw.get("/hello");
    assert_eq!(r.status, 200, "{r}");
    assert!(t.elapsed() < Duration::from_secs(5), "a new client waited {:?} beside 10,000 idle ones", t.elapsed());
    sent.wait();
    let ok: usize = hs.into_iter().map(|h| h.join().expect("client thread")).sum();
    assert_eq!(ok, n);
    let r = gw.get("/hello");
    assert_eq!(r.status, 200, "{r}");
}
