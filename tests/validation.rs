//! Request validation through the real binary: required parameters (path, query, header)
//! and JSON Schema body models, with API Gateway's 400 bodies, in front of a real upstream.
mod support;
use support::*;

const MODELS: &str = r##"
[models]
NewPet = '''
{
  "type": "object",
  "required": ["name", "type"],
  "properties": {
    "name": { "type": "string", "minLength": 1, "maxLength": 20 },
    "type": { "type": "string", "enum": ["dog", "cat", "fish"] },
    "price": { "type": "number", "minimum": 0, "maximum": 1000 },
    "tags": { "type": "array", "items": { "$ref": "#/definitions/Tag" } }
  }
}
'''
Tag = { type = "string", pattern = "^[a-z]+$" }
"##;

fn config(up: &Upstream, extra_route: &str) -> String {
    format!(
        r#"{MODELS}
[stages.test]

[[routes]]
path = "/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{up}/pets/{{petId}}" }}
validate = {{ required = ["querystring.qs1", "method.request.header.x-header-param", "querystring.issuer", "path.petId"] }}

[[routes]]
path = "/pets"
method = "POST"
integration = {{ type = "http_proxy", uri = "http://{up}/pets" }}
validate = {{ body = "NewPet" }}
{extra_route}
"#,
        up = up.hostport()
    )
}

#[test]
fn missing_parameters_are_listed_in_api_gateways_order() {
    let up = Upstream::echo();
    let gw = Gateway::start(&config(&up, ""));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/pets/7", &[], b"");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.text(), r#"{"message": "Missing required request parameters: [x-header-param, issuer, qs1]"}"#);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("BadRequestException"));
    // Blank counts as missing; the connection stays usable.
    let r = c.roundtrip("GET", "/test/pets/7?qs1=&issuer=me", &[("X-Header-Param", "v")], b"");
    assert_eq!(r.text(), r#"{"message": "Missing required request parameters: [qs1]"}"#);
    let r = c.roundtrip("GET", "/test/pets/7?qs1=1&issuer=me", &[("X-Header-Param", "v")], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.request_count(), 1, "rejected requests never reach the upstream");
}

#[test]
fn bodies_are_checked_against_the_model() {
    let up = Upstream::echo();
    let gw = Gateway::start(&config(&up, ""));
    let mut c = gw.connect();
    let json = [("Content-Type", "application/json")];
    let bad: [&[u8]; 7] = [
        br#"{"name":"rex"}"#,
        br#"{"name":"rex","type":"horse"}"#,
        br#"{"name":"","type":"dog"}"#,
        br#"{"name":"rex","type":"dog","price":-1}"#,
        br#"{"name":"rex","type":"dog","tags":["OK"]}"#,
        b"not json",
        b"",
    ];
    for body in bad {
        let r = c.roundtrip("POST", "/test/pets", &json, body);
        assert_eq!(r.status, 400, "{}: {r}", String::from_utf8_lossy(body));
        assert_eq!(r.text(), r#"{"message": "Invalid request body"}"#);
    }
    let good = br#"{"name":"rex","type":"dog","price":12.5,"tags":["good","boy"]}"#;
    let r = c.roundtrip("POST", "/test/pets", &json, good);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.request_count(), 1);
    assert_eq!(up.last_request().body, good.to_vec(), "the validated body is forwarded unchanged");
}

#[test]
fn chunked_and_continue_bodies_are_validated_then_forwarded() {
    let up = Upstream::echo();
    let gw = Gateway::start(&config(&up, ""));
    let body = br#"{"name":"rex","type":"cat"}"#;
    let mut c = gw.connect();
    let mut raw = request("POST", "/test/pets", &[("Transfer-Encoding", "chunked")], b"");
    raw.extend_from_slice(&chunked(body, 5));
    c.send(&raw);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.last_request().body, body.to_vec());
    let mut raw = request("POST", "/test/pets", &[("Transfer-Encoding", "chunked")], b"");
    raw.extend_from_slice(&chunked(br#"{"name":"rex"}"#, 3));
    c.send(&raw);
    assert_eq!(c.read_response().status, 400);
    // Expect: 100-continue gets its interim response before the body is read.
    let len = body.len().to_string();
    c.send(&request("POST", "/test/pets", &[("Expect", "100-continue"), ("Content-Length", &len)], b""));
    assert_eq!(c.read_response().status, 100);
    c.send(body);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(up.request_count(), 2);
}

#[test]
fn models_by_content_type_and_custom_gateway_response() {
    let up = Upstream::echo();
    let extra = r#"
[[routes]]
path = "/typed"
method = "POST"
integration = { type = "http_proxy", uri = "http://UP/typed" }
validate = { body = { "application/json" = "NewPet" } }

[gateway_responses.BAD_REQUEST_BODY]
body = '{"error":"$context.error.validationErrorString"}'
"#
    .replace("UP", &up.hostport());
    let gw = Gateway::start(&config(&up, &extra));
    let r = gw.send("POST", "/test/typed", &[("Content-Type", "text/plain")], b"anything goes");
    assert_eq!(r.status, 200, "no model for text/plain: {r}");
    let r = gw.send(
        "POST",
        "/test/typed",
        &[("Content-Type", "application/json; charset=utf-8")],
        br#"{"name":"x","type":"dog","price":2000}"#,
    );
    assert_eq!(r.status, 400, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.text()).expect("valid JSON body");
    let detail = v["error"].as_str().unwrap();
    assert!(detail.contains("/price") && detail.contains("1000"), "{detail}");
}

#[test]
fn validation_config_errors_point_at_the_value() {
    let route = "[[routes]]\npath = \"/a/{id}\"\nmethod = \"POST\"\nintegration = { type = \"mock\" }\n";
    let cases = [
        (format!("{route}validate = {{ required = [\"path.nope\"] }}\n"), "no path parameter {nope}", 5),
        (format!("{route}validate = {{ required = [\"body.x\"] }}\n"), "is not a request parameter", 5),
        (format!("{route}validate = {{ body = \"Nope\" }}\n"), "unknown model 'Nope'", 5),
        (format!("[models]\nA = '{{\"type\": 5}}'\n{route}"), "model 'A'", 2),
        (format!("[models]\nA = '{{not json'\n{route}"), "not valid JSON", 2),
        (format!("[models]\nA = '{{\"$ref\": \"#/definitions/B\"}}'\n{route}"), "model 'A'", 2),
    ];
    for (cfg, msg, line) in cases {
        let f = TempFile::new(&cfg);
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "{cfg}");
        assert!(out.stderr.contains(msg), "{cfg}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{}:{line}:", f.path_str())), "{cfg}: {}", out.stderr);
    }
    let f = TempFile::new(&format!("{MODELS}{route}validate = {{ required = [\"path.id\"], body = \"NewPet\" }}\n"));
    let out = run_cli(&["check", f.path_str()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("[validate 1 params, body]"), "{}", out.stdout);
}
