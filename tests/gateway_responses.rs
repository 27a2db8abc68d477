//! Gateway responses: per-type overrides, DEFAULT_4XX / DEFAULT_5XX fallback,
//! upstream unreachable (502) and integration timeout (504).
mod support;
use std::time::{Duration, Instant};
use support::*;

fn routes(up_hostport: &str) -> String {
    format!(
        r#"
[stages.test]

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{up_hostport}/{{proxy}}" }}
"#
    )
}

fn dead_hostport() -> String {
    // a port nobody listens on
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn missing_authentication_token_override_from_config() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.MISSING_AUTHENTICATION_TOKEN]
status = 404
headers = { "x-why" = "no route" }
body = '{"message":$context.error.messageString}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test");
    assert_eq!(r.status, 404, "{r}");
    assert_eq!(r.header("x-why"), Some("no route"), "{r}");
    assert_eq!(r.text(), r#"{"message":"Missing Authentication Token"}"#, "{r}");
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException"),
        "the error type header stays on a customized response:\n{r}"
    );
    assert!(r.has_header("x-amzn-RequestId"), "{r}");
    // unknown stage is the same response type
    let r = gw.get("/nostage/x");
    assert_eq!(r.status, 404, "{r}");
    assert_eq!(r.header("x-why"), Some("no route"), "{r}");
}

#[test]
fn gateway_response_body_context_variables() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.MISSING_AUTHENTICATION_TOKEN]
status = 403
headers = { "content-type" = "application/json" }
body = '{"type":"$context.error.responseType","stage":"$context.stage","msg":$context.error.messageString,"raw":"$context.error.message","id":"$context.requestId"}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test");
    assert_eq!(r.status, 403, "{r}");
    let id = r.header("x-amzn-RequestId").expect("x-amzn-RequestId").to_string();
    assert_eq!(
        r.text(),
        format!(
            r#"{{"type":"MISSING_AUTHENTICATION_TOKEN","stage":"test","msg":"Missing Authentication Token","raw":"Missing Authentication Token","id":"{id}"}}"#
        ),
        "{r}"
    );
}

#[test]
fn default_4xx_fallback() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.DEFAULT_4XX]
headers = { "x-default" = "4xx" }
body = '{"error":$context.error.messageString}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test");
    // DEFAULT_4XX without a status keeps the type's own status
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.header("x-default"), Some("4xx"), "{r}");
    assert_eq!(r.text(), r#"{"error":"Missing Authentication Token"}"#, "{r}");
    assert_eq!(r.header("x-amzn-ErrorType"), Some("MissingAuthenticationTokenException"), "{r}");
    // a 5xx gateway response does not use DEFAULT_4XX
    let r = gw.get("/test/x");
    assert_eq!(r.status, 502, "unreachable upstream: {r}");
    assert!(r.header("x-default").is_none(), "DEFAULT_4XX applied to a 5xx:\n{r}");
}

#[test]
fn default_4xx_status_applies_to_uncustomized_types() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.DEFAULT_4XX]
status = 400
headers = { "x-default" = "4xx" }
body = '{"error":$context.error.messageString}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.header("x-default"), Some("4xx"), "{r}");
    assert_eq!(r.text(), r#"{"error":"Missing Authentication Token"}"#, "{r}");
}

#[test]
fn specific_type_beats_default_4xx() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.DEFAULT_4XX]
status = 400
headers = { "x-default" = "4xx" }
body = '{"default":true}'

[gateway_responses.MISSING_AUTHENTICATION_TOKEN]
status = 404
headers = { "x-specific" = "yes" }
body = '{"specific":true}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test");
    assert_eq!(r.status, 404, "{r}");
    assert_eq!(r.header("x-specific"), Some("yes"), "{r}");
    assert_eq!(r.text(), r#"{"specific":true}"#, "{r}");
}

#[test]
fn upstream_unreachable_is_502_json() {
    let gw = Gateway::start(&routes(&dead_hostport()));
    let t = Instant::now();
    let r = gw.get("/test/pets");
    assert_eq!(r.status, 502, "{r}");
    assert!(t.elapsed() < Duration::from_secs(4), "connection refused took {:?}", t.elapsed());
    assert_eq!(r.header("content-type").map(|v| v.to_ascii_lowercase()), Some("application/json".into()), "{r}");
    let text = r.text();
    assert!(
        text.starts_with("{\"message\":") && text.ends_with('}'),
        "502 body must be a JSON message object: {text:?}"
    );
    assert!(r.has_header("x-amzn-ErrorType"), "{r}");
    assert!(r.has_header("x-amzn-RequestId"), "{r}");
    // the client connection is still usable afterwards, unless the 502 said close
    let mut c = gw.connect();
    let r1 = c.roundtrip("GET", "/test/a", &[], b"");
    assert_eq!(r1.status, 502, "{r1}");
    if r1.connection_close() {
        assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed, "said close, stayed open");
        c = gw.connect();
    }
    let r2 = c.roundtrip("GET", "/test", &[], b"");
    assert_eq!(r2.status, 403, "{r2}");
}

#[test]
fn default_5xx_fallback_on_502() {
    let mut cfg = routes(&dead_hostport());
    cfg += r#"
[gateway_responses.DEFAULT_5XX]
headers = { "x-default" = "5xx" }
body = '{"oops":$context.error.messageString}'
"#;
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test/pets");
    assert_eq!(r.status, 502, "{r}");
    assert_eq!(r.header("x-default"), Some("5xx"), "{r}");
    assert!(r.text().starts_with("{\"oops\":\""), "{r}");
    // and it does not touch 4xx
    let r = gw.get("/test");
    assert_eq!(r.status, 403, "{r}");
    assert!(r.header("x-default").is_none(), "{r}");
}

fn slow_config(up: &Upstream, timeout_ms: u32) -> String {
    format!(
        r#"
[stages.test]

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{}/{{proxy}}", timeout_ms = {timeout_ms} }}
"#,
        up.hostport()
    )
}

#[test]
fn integration_timeout_is_504() {
    let up = Upstream::start(|req| {
        if req.target.contains("slow") {
            Reply::ok("too late").delay(Duration::from_secs(2))
        } else {
            Reply::ok("fast")
        }
    });
    let gw = Gateway::start(&slow_config(&up, 200));
    let t = Instant::now();
    let r = gw.get("/test/slow");
    let took = t.elapsed();
    assert_eq!(r.status, 504, "{r}");
    assert_eq!(r.text(), r#"{"message": "Endpoint request timed out"}"#, "{r}");
    assert_eq!(r.header("x-amzn-ErrorType"), Some("InternalServerErrorException"), "{r}");
    assert!(took >= Duration::from_millis(150), "504 came before the timeout: {took:?}");
    assert!(took < Duration::from_millis(1500), "504 took {took:?} for timeout_ms=200");
    // a fast request is unaffected, also on the same client connection
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/slow", &[], b"");
    assert_eq!(r.status, 504, "{r}");
    if r.connection_close() {
        assert_eq!(c.wait_closed(Duration::from_secs(3)), CloseState::Closed, "said close, stayed open");
        c = gw.connect();
    }
    let r = c.roundtrip("GET", "/test/fast", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "fast");
}

#[test]
fn integration_timeout_counts_until_the_whole_head() {
    // the backend accepts and then says nothing: still 504
    let up = Upstream::start(|_| Reply::raw(b"").delay(Duration::from_secs(3)));
    let gw = Gateway::start(&slow_config(&up, 300));
    let t = Instant::now();
    let r = gw.get("/test/x");
    assert_eq!(r.status, 504, "{r}");
    assert!(t.elapsed() < Duration::from_millis(2000), "took {:?}", t.elapsed());
}

#[test]
fn upstream_closing_without_response_is_5xx() {
    let up = Upstream::start(|_| Reply::close());
    let gw = Gateway::start(&slow_config(&up, 2000));
    let r = gw.get("/test/x");
    assert!(r.status == 502 || r.status == 504, "{r}");
    assert!(r.has_header("x-amzn-ErrorType"), "{r}");
    assert!(r.text().starts_with("{\"message\":"), "{r}");
}

#[test]
fn garbage_from_upstream_is_502() {
    let up = Upstream::start(|_| Reply::raw(b"THIS IS NOT HTTP\r\n\r\n").close_after());
    let gw = Gateway::start(&slow_config(&up, 2000));
    let r = gw.get("/test/x");
    assert_eq!(r.status, 502, "{r}");
    assert!(r.has_header("x-amzn-ErrorType"), "{r}");
}

#[test]
fn templates_see_the_request_path_after_a_streamed_body() {
    // The body arrives in pieces, so ringway compacts its read buffer while streaming;
    // the head (and so $context.path) must survive that.
    let up = Upstream::start(|_| Reply::ok("late").delay(Duration::from_secs(3)));
    let cfg = format!(
        "[[routes]]\npath = \"/slow/{{id}}\"\nmethod = \"POST\"\n\
         integration = {{ type = \"http_proxy\", uri = \"http://127.0.0.1:{}/x\", timeout_ms = 800 }}\n\
         [gateway_responses.INTEGRATION_TIMEOUT]\nbody = '{{\"path\":\"$context.path\",\"m\":$context.error.messageString}}'\n",
        up.port()
    );
    let gw = Gateway::start(&cfg);
    let mut c = gw.connect();
    let body = pattern_body(300_000);
    c.send(format!("POST /slow/42 HTTP/1.1\r\nHost: gw\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    for piece in body.chunks(20_000) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = c.read_response();
    assert_eq!(r.status, 504, "{r}");
    assert_eq!(r.text(), r#"{"path":"/slow/42","m":"Endpoint request timed out"}"#);
}
