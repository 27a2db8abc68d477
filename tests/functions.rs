//! Lambda-style functions (`aws_proxy`): events in payload formats 1.0 and 2.0, answers
//! validated as the reference says, one invocation per endpoint at a time with a bounded
//! queue, function errors as 502. Against a real invoke-protocol runtime on loopback.
mod support;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;
use support::*;

fn gw(endpoints: &[&FunctionRuntime], extra: &str) -> Gateway {
    let list: Vec<String> = endpoints.iter().map(|f| format!("\"{}\"", f.hostport())).collect();
    Gateway::start(&format!(
        r#"
[api]
binary_media_types = ["image/png"]

[functions.pets]
endpoints = [{}]
max_queue = 2

[stages.test]
variables = {{ env = "t" }}

[[routes]]
path = "/pets/{{petId}}"
method = "ANY"
integration = {{ type = "aws_proxy", function = "pets" }}

[[routes]]
path = "/v2/{{proxy+}}"
method = "ANY"
integration = {{ type = "aws_proxy", function = "pets", payload_format = "2.0", timeout_ms = 2000 }}
{extra}
"#,
        list.join(", ")
    ))
}

/// Echoes the event back as the body of a 200.
fn echo() -> FunctionRuntime {
    FunctionRuntime::start(|ev| {
        Answer::json(&json!({"statusCode": 200, "headers": {"x-fn": "yes"}, "body": ev.to_string()}).to_string())
    })
}

#[test]
fn v1_event_reaches_the_function_and_its_answer_comes_back() {
    let f = echo();
    let g = gw(&[&f], "");
    let r = g.send(
        "POST",
        "/test/pets/7?a=1&a=2",
        &[("X-Custom", "c"), ("Content-Type", "application/json")],
        b"{\"n\":1}",
    );
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-fn"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ev: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(ev["resource"], "/pets/{petId}");
    assert_eq!(ev["path"], "/pets/7");
    assert_eq!(ev["httpMethod"], "POST");
    assert_eq!(ev["headers"]["X-Custom"], "c");
    assert_eq!(ev["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
    assert_eq!(ev["queryStringParameters"]["a"], "2");
    assert_eq!(ev["pathParameters"]["petId"], "7");
    assert_eq!(ev["stageVariables"]["env"], "t");
    assert_eq!(ev["body"], "{\"n\":1}");
    assert_eq!(ev["isBase64Encoded"], false);
    assert_eq!(ev["requestContext"]["stage"], "test");
    assert_eq!(ev["requestContext"]["path"], "/test/pets/7");
    assert_eq!(ev["requestContext"]["requestId"].as_str(), r.header("x-amzn-requestid"), "one request id");
    assert_eq!(ev["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    // A GET has a null body; a binary body goes base64.
    let r = g.get("/test/pets/8");
    let ev: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(ev["body"], Value::Null);
    assert_eq!(ev["queryStringParameters"], Value::Null);
    let r = g.send("PUT", "/test/pets/9", &[("Content-Type", "image/png")], &[0x89, 0x50, 0x4e, 0x47]);
    let ev: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(ev["isBase64Encoded"], true);
    assert_eq!(ev["body"], "iVBORw==");
    assert_eq!(f.invocations(), 3);
}

#[test]
fn v2_event_and_inferred_answers() {
    let f = FunctionRuntime::start(|ev| {
        if ev["rawPath"] == "/v2/plain" {
            return Answer::json("\"Hello\"");
        }
        if ev["rawPath"] == "/v2/object" {
            return Answer::json(r#"{"message":"x"}"#);
        }
        Answer::json(&json!({"statusCode": 201, "cookies": ["a=1", "b=2"], "body": ev.to_string()}).to_string())
    });
    let g = gw(&[&f], "");
    let r = g.send("GET", "/test/v2/full?q=1&q=2", &[("Cookie", "c1=v1; c2=v2")], b"");
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.headers_all("set-cookie"), vec!["a=1", "b=2"]);
    let ev: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "GET /v2/{proxy+}");
    assert_eq!(ev["rawQueryString"], "q=1&q=2");
    assert_eq!(ev["queryStringParameters"]["q"], "1,2");
    assert_eq!(ev["cookies"], json!(["c1=v1", "c2=v2"]));
    assert_eq!(ev["requestContext"]["http"]["method"], "GET");
    let plain = g.get("/test/v2/plain");
    assert_eq!((plain.status, plain.text().as_str()), (200, "Hello"));
    let obj = g.get("/test/v2/object");
    assert_eq!(obj.text(), r#"{"message":"x"}"#);
    assert_eq!(obj.header("content-type"), Some("application/json"));
}

#[test]
fn malformed_answers_and_function_errors_are_502() {
    let f = FunctionRuntime::start(|ev| match ev["path"].as_str().unwrap_or("") {
        "/pets/extra" => Answer::json(r#"{"statusCode":200,"wrongValue":"value"}"#),
        "/pets/status" => Answer::json(r#"{"statusCode":"test"}"#),
        "/pets/string" => Answer::json(r#""justAString""#),
        "/pets/raised" => Answer::json(r#"{"errorMessage":"boom","errorType":"Error","stackTrace":[]}"#),
        "/pets/flagged" => Answer::json(r#"{"statusCode":200}"#).header("X-Amz-Function-Error", "Unhandled"),
        "/pets/multi" => {
            Answer::json(r#"{"multiValueHeaders":{"tesT-Multi":["m"]},"headers":{"test-multi":"s","b":true}}"#)
        }
        "/pets/b64" => Answer::json(r#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#),
        _ => Answer::json(r#"{"statusCode":"201"}"#),
    });
    let g = gw(&[&f], "");
    for p in ["extra", "status", "string", "raised", "flagged"] {
        let r = g.get(&format!("/test/pets/{p}"));
        assert_eq!(r.status, 502, "{p}: {r}");
        assert_eq!(r.text(), r#"{"message": "Internal server error"}"#, "{p}");
    }
    assert_eq!(g.get("/test/pets/ok").status, 201);
    let m = g.get("/test/pets/multi");
    assert_eq!(m.status, 200);
    assert_eq!(m.header("test-multi"), Some("m, s"), "{m}");
    assert_eq!(m.header("b"), Some("true"));
    assert_eq!(g.get("/test/pets/b64").text(), "aGk=", "not decoded without a binary Accept");
    assert_eq!(g.send("GET", "/test/pets/b64", &[("Accept", "image/png")], b"").text(), "hi");
}

#[test]
fn one_invocation_per_endpoint_with_a_bounded_queue() {
    let slow = || {
        FunctionRuntime::start(|_| {
            // Long enough that every request of a run arrives while the first ones still hold
            // the endpoints, even on a busy CI box (300 ms was not: one run saw five 200s).
            Answer::json(r#"{"statusCode":200,"body":"done"}"#).delay(Duration::from_millis(1000))
        })
    };
    let (a, b) = (slow(), slow());
    let g = gw(&[&a, &b], "");
    // 2 endpoints + a queue of 2: four concurrent requests all succeed, serially per endpoint.
    let run = |n: usize| -> Vec<u16> {
        let barrier = Arc::new(Barrier::new(n));
        let addr = g.addr();
        let ts: Vec<_> = (0..n)
            .map(|_| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let mut c = Conn::connect(addr);
                    barrier.wait();
                    c.roundtrip("GET", "/test/pets/1", &[], b"").status
                })
            })
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let statuses = run(4);
    assert!(
        statuses.iter().all(|&s| s == 200),
        "{statuses:?} rejected {} {} invocations {} {}",
        a.rejected(),
        b.rejected(),
        a.invocations(),
        b.invocations()
    );
    assert_eq!(a.rejected() + b.rejected(), 0, "never two invocations at once on one endpoint");
    assert_eq!(a.invocations() + b.invocations(), 4);
    assert!(a.invocations() >= 1 && b.invocations() >= 1);
    // Six at once: 2 running, 2 queued, 2 refused with 429.
    let mut statuses = run(6);
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    assert_eq!(a.rejected() + b.rejected(), 0);
}

#[test]
fn unreachable_endpoints_and_timeouts() {
    let f = FunctionRuntime::start(|_| Answer::json(r#"{"statusCode":200}"#).delay(Duration::from_millis(3000)));
    let g = gw(&[&f], "");
    let r = g.get("/test/v2/slow");
    assert_eq!(r.status, 504, "{r}");
    let dead = free_port();
    let g2 = Gateway::start(&format!(
        r#"
[functions.gone]
endpoints = ["127.0.0.1:{dead}"]
[[routes]]
path = "/x"
method = "GET"
integration = {{ type = "aws_proxy", function = "gone" }}
"#
    ));
    assert_eq!(g2.get("/x").status, 502);
}

#[test]
fn function_config_errors() {
    for (cfg, msg) in [
        ("[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"aws_proxy\", function = \"nope\" }\n", "unknown function 'nope'"),
        ("[functions.f]\nendpoints = []\n", "needs at least one endpoint"),
        (
            "[functions.f]\nendpoints = [\"127.0.0.1:9000\"]\n[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"aws_proxy\", function = \"f\", payload_format = \"3.0\" }\n",
            "payload_format must be",
        ),
        ("[api]\nbinary_media_types = [\"png\"]\n", "is not a media type"),
    ] {
        let f = TempFile::new(cfg);
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "{cfg}");
        assert!(out.stderr.contains(msg), "{cfg}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{}:", f.path_str())), "{}", out.stderr);
    }
}
