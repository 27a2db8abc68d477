//! HTTP proxy integration: PetStore mirroring, URI templates, stage variables,
//! query pass-through, headers both ways, status pass-through, request ids.
mod support;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

fn petstore() -> (Upstream, Gateway) {
    let up = Upstream::start(|req| {
        Reply::new(200)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"seen":"{} {}"}}"#, req.method, req.target).as_bytes())
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

// ---------------------------------------------------------------- PetStore

#[test]
fn petstore_get_pets() {
    let (up, gw) = petstore();
    let r = gw.get("/test/pets");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), r#"{"seen":"GET /petstore/pets"}"#, "{r}");
    let req = up.last_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, "/petstore/pets");
}

#[test]
fn petstore_query_string_kept_byte_for_byte() {
    let (up, gw) = petstore();
    let r = gw.get("/test/pets?type=dog");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, "/petstore/pets?type=dog");
    // odd bytes, repeated keys, encodings, empty values, bare flags
    let q = "?type=dog&page=2&b=%2F%20x&c=a+b&c=2&empty=&flag&sym=%7C;semi&utf=%C3%A9&&x==y";
    let r = gw.get(&format!("/test/pets{q}"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, format!("/petstore/pets{q}"));
}

#[test]
fn petstore_get_one_pet() {
    let (up, gw) = petstore();
    let r = gw.get("/test/pets/1");
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.target, "/petstore/pets/1");
}

#[test]
fn petstore_post_json_body() {
    let (up, gw) = petstore();
    let body = br#"{"type":"dog","price":249.99}"#;
    let r = gw.send("POST", "/test/pets", &[("Content-Type", "application/json")], body);
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/petstore/pets");
    assert_eq!(req.body, body.to_vec());
    assert_eq!(req.header("content-type"), Some("application/json"));
}

#[test]
fn petstore_stage_root_is_403() {
    let (up, gw) = petstore();
    assert_missing_token(&gw.get("/test"), "GET /test");
    assert_missing_token(&gw.get("/test/"), "GET /test/");
    assert_missing_token(&gw.get("/prod/pets"), "GET /prod/pets");
    assert_eq!(up.request_count(), 0, "nothing may reach the upstream");
}

#[test]
fn petstore_other_methods_mirror() {
    let (up, gw) = petstore();
    for m in ["PUT", "PATCH", "DELETE", "OPTIONS"] {
        let body: &[u8] = if m == "PUT" || m == "PATCH" { b"{\"a\":1}" } else { b"" };
        let hdrs: &[(&str, &str)] = if body.is_empty() { &[] } else { &[("Content-Type", "application/json")] };
        let r = gw.send(m, "/test/pets/9", hdrs, body);
        assert_eq!(r.status, 200, "{m}: {r}");
        let req = up.last_request();
        assert_eq!(req.method, m);
        assert_eq!(req.target, "/petstore/pets/9");
        assert_eq!(req.body, body.to_vec(), "{m} body");
    }
    let r = gw.send("HEAD", "/test/pets", &[], b"");
    assert_eq!(r.status, 200, "HEAD: {r}");
    assert_eq!(up.last_request().method, "HEAD");
}

// ---------------------------------------------------------------- URI templates

#[test]
fn greedy_value_goes_in_verbatim_with_slashes() {
    let (up, gw) = petstore();
    let cases = [
        "/test/a/b/c/d.json",
        "/test/a%20b/c%2Fd",
        "/test/x/y?z=1/2",
        "/test/dir/file.tar.gz",
        "/test/a/b//c",
        "/test/~user/%E2%9C%93",
    ];
    for path in cases {
        let r = gw.get(path);
        assert_eq!(r.status, 200, "{path}: {r}");
        let expect = format!("/petstore/{}", &path["/test/".len()..]);
        assert_eq!(up.last_request().target, expect, "request {path}");
    }
}

#[test]
fn path_parameters_are_substituted() {
    let up = Upstream::fixed("ok");
    let h = up.hostport();
    let cfg = format!(
        r#"
[stages.test]

[[routes]]
path = "/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/petstore/pets/{{petId}}" }}

[[routes]]
path = "/owners/{{ownerId}}/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/o/{{ownerId}}/p/{{petId}}/x" }}

[[routes]]
path = "/files/{{path+}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/storage/{{path}}" }}
"#
    );
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test/pets/42");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, "/petstore/pets/42");
    let r = gw.get("/test/owners/ann/pets/7?x=1");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, "/o/ann/p/7/x?x=1");
    let r = gw.get("/test/files/a/b/c.txt");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().target, "/storage/a/b/c.txt");
}

#[test]
fn stage_variables_are_substituted_per_stage() {
    let up1 = Upstream::fixed("one");
    let up2 = Upstream::fixed("two");
    let cfg = format!(
        r#"
[stages.test]
variables = {{ petHost = "{}", base = "v1" }}

[stages.prod]
variables = {{ petHost = "{}", base = "v2" }}

[[routes]]
path = "/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://${{stageVariables.petHost}}/${{stageVariables.base}}/pets/{{petId}}", timeout_ms = 29000 }}
"#,
        up1.hostport(),
        up2.hostport()
    );
    let gw = Gateway::start(&cfg);
    let r = gw.get("/test/pets/5");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "one");
    assert_eq!(up1.last_request().target, "/v1/pets/5");
    let r = gw.get("/prod/pets/6?q=a");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "two");
    assert_eq!(up2.last_request().target, "/v2/pets/6?q=a");
    assert_eq!(up1.request_count(), 1);
    assert_eq!(up2.request_count(), 1);
}

// ---------------------------------------------------------------- request headers

#[test]
fn hop_by_hop_request_headers_are_dropped() {
    let (up, gw) = petstore();
    let r = gw.send(
        "GET",
        "/test/pets",
        &[
            ("Connection", "keep-alive, X-Custom-Hop, x-other-hop"),
            ("X-Custom-Hop", "1"),
            ("X-Other-Hop", "2"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-Keep", "yes"),
            ("Authorization", "Bearer abc"),
            ("Accept", "application/json"),
            ("User-Agent", "ringway-tests/1"),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    for h in [
        "x-custom-hop",
        "x-other-hop",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(req.header(h).is_none(), "hop-by-hop header {h} reached the upstream: {:?}", req.headers);
    }
    for v in req.headers_all("connection") {
        let v = v.to_ascii_lowercase();
        assert!(
            !v.contains("hop") && (v == "keep-alive" || v == "close"),
            "client's Connection header leaked upstream: {v:?}"
        );
    }
    assert_eq!(req.header("x-keep"), Some("yes"));
    assert_eq!(req.header("authorization"), Some("Bearer abc"));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some("ringway-tests/1"));
}

#[test]
fn host_is_set_to_the_backend() {
    let (up, gw) = petstore();
    let r = gw.send("GET", "/test/pets", &[("Host", "api.example.com")], b"");
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.headers_all("host"), vec![up.hostport().as_str()], "{:?}", req.headers);
}

#[test]
fn x_forwarded_headers() {
    let (up, gw) = petstore();
    let r = gw.get("/test/pets");
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.headers_all("x-forwarded-for"), vec!["127.0.0.1"], "{:?}", req.headers);
    assert_eq!(req.headers_all("x-forwarded-proto"), vec!["http"], "{:?}", req.headers);
    let port = gw.port().to_string();
    assert_eq!(req.headers_all("x-forwarded-port"), vec![port.as_str()], "{:?}", req.headers);

    // client-supplied X-Forwarded-For is appended to; proto/port are set, not appended
    let r = gw.send(
        "GET",
        "/test/pets",
        &[("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "443")],
        b"",
    );
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.headers_all("x-forwarded-for"), vec!["203.0.113.7, 127.0.0.1"], "{:?}", req.headers);
    assert_eq!(req.headers_all("x-forwarded-proto"), vec!["http"], "{:?}", req.headers);
    assert_eq!(req.headers_all("x-forwarded-port"), vec![port.as_str()], "{:?}", req.headers);
}

#[test]
fn request_body_framing_regenerated_for_upstream() {
    let (up, gw) = petstore();
    let body = pattern_body(300_000);
    let r = gw.send("PUT", "/test/blob", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.body_len, body.len() as u64);
    assert_eq!(req.body, body);
    assert_eq!(req.header("content-type"), Some("application/octet-stream"));
    // exactly one framing header
    let cl = req.headers_all("content-length").len();
    let te = req.headers_all("transfer-encoding").len();
    assert!(cl + te == 1, "upstream framing: {:?}", req.headers);
}

// ---------------------------------------------------------------- response side

fn status_upstream() -> (Upstream, Gateway) {
    let up = Upstream::start(|req| {
        let code: u16 = req.target.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(200);
        Reply::new(code).header("Content-Type", "text/plain").body(format!("backend {code}").as_bytes())
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

#[test]
fn backend_status_is_passed_through() {
    let (_up, gw) = status_upstream();
    for code in [200u16, 201, 202, 301, 400, 401, 403, 404, 409, 418, 429, 500, 502, 503] {
        let r = gw.get(&format!("/test/status/{code}"));
        assert_eq!(r.status, code, "{r}");
        assert_eq!(r.text(), format!("backend {code}"), "body for {code}: {r}");
        assert!(r.header("x-amzn-ErrorType").is_none(), "backend {code} must not become a gateway error: {r}");
    }
}

#[test]
fn backend_204_and_304_keep_the_connection_usable() {
    let up = Upstream::start(|req| {
        if req.target.ends_with("/204") {
            Reply::new(204).empty()
        } else if req.target.ends_with("/304") {
            Reply::new(304).header("ETag", "\"abc\"").empty()
        } else {
            Reply::ok("after")
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/x/204", &[], b"");
    assert_eq!(r.status, 204, "{r}");
    assert!(r.body.is_empty());
    let r = c.roundtrip("GET", "/test/x/304", &[], b"");
    assert_eq!(r.status, 304, "{r}");
    assert_eq!(r.header("etag"), Some("\"abc\""));
    let r = c.roundtrip("GET", "/test/x/ok", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "after");
}

#[test]
fn head_response_has_no_body_and_connection_stays_in_sync() {
    let up = Upstream::start(|req| {
        if req.method == "HEAD" {
            Reply::new(200).header("Content-Type", "text/plain").header("Content-Length", "1234").empty()
        } else {
            Reply::ok("get-body")
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    let r = c.roundtrip("HEAD", "/test/x", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("content-length"), Some("1234"), "HEAD keeps the backend's Content-Length: {r}");
    let r = c.roundtrip("GET", "/test/x", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "get-body");
}

#[test]
fn hop_by_hop_response_headers_are_dropped() {
    let up = Upstream::start(|_| {
        Reply::new(200)
            .header("Content-Type", "text/plain")
            .header("Connection", "X-Resp-Hop")
            .header("X-Resp-Hop", "secret")
            .header("Keep-Alive", "timeout=5, max=1000")
            .header("Trailer", "X-Checksum")
            .header("Upgrade", "h2c")
            .header("Proxy-Authenticate", "Basic realm=\"x\"")
            .header("Proxy-Connection", "keep-alive")
            .header("X-Keep-Resp", "yes")
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .body(b"resp")
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let r = gw.get("/test/pets");
    assert_eq!(r.status, 200, "{r}");
    for h in ["x-resp-hop", "keep-alive", "trailer", "upgrade", "proxy-authenticate", "proxy-connection"] {
        assert!(r.header(h).is_none(), "hop-by-hop response header {h} reached the client:\n{r}");
    }
    for v in r.headers_all("connection") {
        let v = v.to_ascii_lowercase();
        assert!(v == "keep-alive" || v == "close", "backend Connection header leaked: {v:?}\n{r}");
    }
    assert_eq!(r.header("x-keep-resp"), Some("yes"), "{r}");
    assert_eq!(r.headers_all("set-cookie"), vec!["a=1", "b=2"], "{r}");
    assert_eq!(r.text(), "resp");
}

#[test]
fn content_type_json_added_when_backend_sent_none() {
    let up = Upstream::start(|req| {
        if req.target.ends_with("/typed") {
            Reply::new(200).header("Content-Type", "text/html; charset=utf-8").body(b"<p>")
        } else {
            Reply::new(200).body(b"{}")
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let r = gw.get("/test/untyped");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.headers_all("content-type"), vec!["application/json"], "{r}");
    let r = gw.get("/test/typed");
    assert_eq!(r.headers_all("content-type"), vec!["text/html; charset=utf-8"], "{r}");
}

#[test]
fn request_id_present_and_unique() {
    let (_up, gw) = petstore();
    let mut ids = Vec::new();
    let mut c = gw.connect();
    for i in 0..20 {
        let r = c.roundtrip("GET", &format!("/test/pets/{i}"), &[], b"");
        assert_eq!(r.status, 200, "{r}");
        let id = r.header("x-amzn-RequestId").unwrap_or_else(|| panic!("no x-amzn-RequestId:\n{r}"));
        assert!(!id.is_empty());
        ids.push(id.to_string());
    }
    for i in 0..10 {
        // fresh connections (possibly other workers), and gateway-generated responses
        let r = gw.get(if i % 2 == 0 { "/test" } else { "/test/pets" });
        ids.push(r.header("x-amzn-RequestId").unwrap_or_else(|| panic!("no x-amzn-RequestId:\n{r}")).to_string());
    }
    assert!(all_distinct(&ids), "request ids repeat: {ids:?}");
}

#[test]
fn response_bodies_in_every_framing_reach_the_client() {
    let big = pattern_body(200_000);
    let big2 = big.clone();
    let up = Upstream::start(move |req| {
        if req.target.ends_with("/chunked") {
            Reply::new(200).header("Content-Type", "text/plain").chunked(&[b"hello ", b"chunked ", b"world"])
        } else if req.target.ends_with("/close") {
            Reply::new(200).header("Content-Type", "text/plain").close_delimited(b"close-delimited body")
        } else if req.target.ends_with("/bigchunked") {
            let parts: Vec<&[u8]> = big2.chunks(7000).collect();
            Reply::new(200).chunked(&parts)
        } else {
            Reply::ok("fixed")
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/chunked", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "hello chunked world");
    let r = c.roundtrip("GET", "/test/bigchunked", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "chunked body corrupted");
    let r = c.roundtrip("GET", "/test/fixed", &[], b"");
    assert_eq!(r.text(), "fixed");
    // a close-delimited backend response must be re-framed (or close the client conn)
    let r = c.roundtrip("GET", "/test/close", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "close-delimited body");
    if !r.connection_close() && (r.header("content-length").is_some() || r.is_chunked()) {
        let r = c.roundtrip("GET", "/test/fixed", &[], b"");
        assert_eq!(r.text(), "fixed", "connection unusable after a close-delimited backend response");
    }
}

#[test]
fn upstream_keeps_x_amzn_requestid_unique_even_if_backend_sends_one() {
    let up = Upstream::start(|_| Reply::new(200).header("x-amzn-RequestId", "backend-id").body(b"x"));
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let a = gw.get("/test/a");
    let b = gw.get("/test/b");
    let ia = a.headers_all("x-amzn-RequestId");
    let ib = b.headers_all("x-amzn-RequestId");
    assert_eq!(ia.len(), 1, "exactly one x-amzn-RequestId:\n{a}");
    assert_eq!(ib.len(), 1, "exactly one x-amzn-RequestId:\n{b}");
    assert_ne!(ia[0], ib[0], "request ids must differ");
    assert_ne!(ia[0], "backend-id");
}

#[test]
fn large_request_and_response_bodies_stream_intact() {
    let up = Upstream::start(|req| {
        if req.method == "POST" {
            Reply::new(200).body(format!("got {}", req.body_len).as_bytes())
        } else {
            Reply::new(200).huge(3_000_000)
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let body = pattern_body(4_000_000);
    let mut c = gw.connect().with_timeout(Duration::from_secs(20));
    let r = c.roundtrip("POST", "/test/upload", &[("Content-Type", "application/octet-stream")], &body);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "got 4000000");
    let req = up.wait_requests(1, WAIT).pop().unwrap();
    assert_eq!(&req.body[..], &body[..1 << 20], "first MiB of the upload differs");
    let r = c.roundtrip("GET", "/test/download", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 3_000_000);
    assert!(r.body == pattern_body(3_000_000), "download corrupted");
}
