//! Every config in conf/examples/ runs: each is started as shipped (only its listen address
//! and backend addresses swapped for the test's) and answers real requests.
mod support;
use support::*;

/// The example's text without its `[server]` table (the harness supplies one), with
/// `replace` applied.
fn example(name: &str, replace: &[(&str, String)]) -> String {
    config_without_server(&format!("{}/conf/examples/{name}", env!("CARGO_MANIFEST_DIR")), replace)
}

#[test]
fn http_proxy_example() {
    let up = Upstream::echo();
    let gw = Gateway::start(&example("http-proxy.toml", &[("127.0.0.1:9000", up.hostport())]));
    let r = gw.get("/test/pets/7");
    assert_eq!((r.status, r.text()), (200, "GET /petstore/pets/7\n".to_string()), "{r}");
    let r = gw.get("/test/orders/1?x=2");
    assert_eq!(r.text(), "GET /orders/1?x=2\n");
}

#[test]
fn http_custom_example() {
    let up = Upstream::start(|req| {
        if req.target.starts_with("/v2/pets/404") {
            return Reply::new(404).body(b"{}");
        }
        Reply::new(200).header("Content-Type", "application/json").body(br#"{"name":"rex"}"#)
    });
    let gw = Gateway::start(&example("http-custom.toml", &[("127.0.0.1:9000", up.hostport())]));
    let json = [("Content-Type", "application/json")];
    let r = gw.send("PUT", "/prod/pets/7?fields=name", &json, br#"{"note":"hi \"there\""}"#);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-pet"), Some("7"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    assert_eq!(v, serde_json::json!({"pet": {"name": "rex"}, "stage": "prod"}));
    let req = up.last_request();
    assert_eq!((req.method.as_str(), req.target.as_str()), ("POST", "/v2/pets/7?fields=name"));
    assert_eq!(req.header("x-tenant"), Some("acme"));
    let sent: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(sent["note"], "hi \"there\"");
    assert_eq!(sent["petId"], "7");
    let long = format!(r#"{{"note":"{}"}}"#, "x".repeat(141));
    assert_eq!(gw.send("POST", "/prod/pets/7", &json, long.as_bytes()).status, 400, "model: maxLength 140");
    let r = gw.send("GET", "/prod/pets/404", &[], b"");
    assert_eq!(r.status, 404, "{r}");
    assert!(r.text().contains("no such pet"), "{r}");
    let r = gw.send("POST", "/prod/pets/7", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 415, "when_no_templates with a JSON template only: {r}");
}

#[test]
fn mock_example() {
    let gw = Gateway::start(&example("mock.toml", &[]));
    let r = gw.get("/health");
    assert_eq!((r.status, r.text()), (200, r#"{"status":"ok"}"#.to_string()));
    let r = gw.get("/feature?scope=internal");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.text().contains(r#""enabled": true"#), "{r}");
    let r = gw.get("/feature?scope=public");
    assert_eq!(r.status, 403, "{r}");
    let r = gw.send("OPTIONS", "/pets", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn function_example() {
    let f = FunctionRuntime::start(|ev| {
        Answer::json(&format!(r#"{{"statusCode": 201, "body": "{}"}}"#, ev["path"].as_str().unwrap_or("")))
    });
    let gw = Gateway::start(&example("function.toml", &[("127.0.0.1:9001", f.hostport())]));
    let r = gw.get("/prod/hello/world");
    assert_eq!((r.status, r.text()), (201, "/hello/world".to_string()), "{r}");
    assert_eq!(f.invocations(), 1);
}

#[test]
fn cache_example() {
    let up = Upstream::start(|req| Reply::ok(&req.target));
    let gw = Gateway::start(&example("cache.toml", &[("127.0.0.1:9000", up.hostport())]));
    for _ in 0..3 {
        let r = gw.get("/prod/pets/1");
        assert_eq!((r.status, r.text()), (200, "/pets/1".to_string()), "{r}");
    }
    assert_eq!(up.request_count(), 1, "served from the cache after the first");
}

#[test]
fn private_backends_example() {
    let (a, b) = (Upstream::start(|_| Reply::ok("a")), Upstream::start(|_| Reply::ok("b")));
    let files = temp_path("ringway-files", "sock");
    let app = temp_path("ringway-app", "sock");
    let f = Upstream::start_unix(&files, |_| Reply::ok("f"));
    let u = Upstream::start_unix(&app, Reply::echo);
    let cfg = example(
        "private.toml",
        &[
            ("127.0.0.1:9101", a.hostport()),
            ("127.0.0.1:9102", b.hostport()),
            ("/run/ringway-example/files.sock", files.display().to_string()),
            ("/run/ringway-example/app.sock", app.display().to_string()),
        ],
    );
    let gw = Gateway::builder(&cfg).workers(1).start();
    let mut c = gw.connect();
    let seen: String = (0..6).map(|i| c.roundtrip("GET", &format!("/files/{i}"), &[], b"").text()).collect();
    assert_eq!(seen, "abfabf");
    let r = c.roundtrip("POST", "/app/orders", &[], b"new");
    assert_eq!(r.text(), "POST /orders\nnew");
    assert_eq!(u.request_count(), 1);
    assert_eq!(f.request_count(), 2);
}
