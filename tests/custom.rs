//! Non-proxy integrations through the real binary: `type = "http"` with parameter mappings,
//! request and response templates, passthrough behaviours and integration responses picked
//! by a regex over the backend's status; `type = "mock"` with templates.
mod support;
use support::*;

/// A backend that answers by path: /pets/404 -> 404 JSON error, else 200 JSON with a header.
fn backend() -> Upstream {
    Upstream::start(|req| {
        if req.target.starts_with("/pets/404") {
            return Reply::new(404).header("Content-Type", "application/json").body(br#"{"message":"no such pet"}"#);
        }
        if req.target.starts_with("/pets/500") {
            return Reply::new(503).body(b"down");
        }
        let body = format!(
            r#"{{"items":[{{"id":1,"name":"rex"}},{{"id":2,"name":"tom \"the cat\""}}],"target":"{}"}}"#,
            req.target
        );
        Reply::new(200).header("Content-Type", "application/json").header("X-Total", "2").body(body.as_bytes())
    })
}

fn config(up: &Upstream) -> String {
    format!(
        r#"
[stages.test]
variables = {{ tenant = "acme" }}

[[routes]]
path = "/pets/{{petId}}"
method = "ANY"
[routes.integration]
type = "http"
uri = "http://{up}/pets/{{id}}"
http_method = "POST"
request_parameters = {{ "integration.request.path.id" = "method.request.path.petId", "integration.request.header.x-tenant" = "stageVariables.tenant", "integration.request.header.x-user" = "method.request.querystring.user", "integration.request.querystring.src" = "'ringway'", "integration.request.header.x-name" = "method.request.body.pet.name" }}
request_templates = {{ "application/json" = '''
#set($pet = $input.path('$.pet'))
{{"name": "$util.escapeJavaScript($pet.name)", "petId": "$input.params('petId')", "stage": "$context.stage", "kind": "$stageVariables.tenant"}}''' }}

[[routes.integration.responses]]
selection_pattern = "4\\d{{2}}"
status = 400
response_templates = {{ "application/json" = '''{{"error": $input.json('$.message'), "requestId": "$context.requestId"}}''' }}

[[routes.integration.responses]]
selection_pattern = "5\\d{{2}}"
status = 502
response_parameters = {{ "method.response.header.Retry-After" = "'30'" }}
response_templates = {{ "application/json" = '{{"error": "backend unavailable"}}' }}

[[routes.integration.responses]]
status = 200
response_parameters = {{ "method.response.header.X-Count" = "integration.response.header.X-Total", "method.response.header.X-First" = "integration.response.body.items[0].name", "method.response.header.Cache-Control" = "'no-store'" }}
response_templates = {{ "application/json" = '''
#set($root = $input.path('$'))
[
#foreach($p in $root.items)
  {{"id": $p.id, "label": "$util.escapeJavaScript($p.name)"}}#if($foreach.hasNext),#end

#end
]''', "text/plain" = '''$input.path('$.items').size() pets''' }}
"#,
        up = up.hostport()
    )
}

#[test]
fn http_integration_maps_the_request_and_only_mapped_headers_reach_the_backend() {
    let up = backend();
    let gw = Gateway::start(&config(&up));
    let body = br#"{"pet":{"name":"Rex \"the dog\""}}"#;
    let r = gw.send(
        "PUT",
        "/test/pets/7?user=ann",
        &[("Content-Type", "application/json"), ("X-Secret", "s3cret"), ("Cookie", "a=1")],
        body,
    );
    assert_eq!(r.status, 200, "{r}");
    let req = up.last_request();
    assert_eq!(req.method, "POST", "http_method");
    assert_eq!(req.target, "/pets/7?src=ringway");
    assert_eq!(req.header("x-tenant"), Some("acme"));
    assert_eq!(req.header("x-user"), Some("ann"));
    assert_eq!(req.header("x-name"), Some("Rex \"the dog\""));
    assert_eq!(req.header("x-secret"), None, "unmapped headers stay behind");
    assert_eq!(req.header("cookie"), None);
    assert_eq!(req.header("content-type"), Some("application/json"));
    let sent: serde_json::Value = serde_json::from_slice(&req.body).expect("the template renders JSON");
    assert_eq!(sent["name"], "Rex \"the dog\"");
    assert_eq!(sent["petId"], "7");
    assert_eq!(sent["stage"], "test");
    assert_eq!(sent["kind"], "acme");
}

#[test]
fn responses_are_selected_by_status_mapped_and_templated() {
    let up = backend();
    let gw = Gateway::start(&config(&up));
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/test/pets/1", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-count"), Some("2"));
    assert_eq!(r.header("x-first"), Some("rex"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-total"), None, "unmapped backend headers stay behind");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("{e}: {}", r.text()));
    assert_eq!(v, serde_json::json!([{"id": 1, "label": "rex"}, {"id": 2, "label": "tom \"the cat\""}]));

    // The template is chosen by Accept.
    let r = c.roundtrip("GET", "/test/pets/1", &[("Accept", "text/plain, */*")], b"");
    assert_eq!((r.status, r.text()), (200, "2 pets".to_string()), "{r}");
    assert_eq!(r.header("content-type"), Some("text/plain"));

    let r = c.roundtrip("GET", "/test/pets/404", &[], b"");
    assert_eq!(r.status, 400, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["error"], "no such pet");
    assert_eq!(v["requestId"].as_str(), r.header("x-amzn-RequestId"));

    let r = c.roundtrip("GET", "/test/pets/500", &[], b"");
    assert_eq!(r.status, 502, "{r}");
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(r.text(), r#"{"error": "backend unavailable"}"#);
}

#[test]
fn passthrough_behaviors() {
    let up = Upstream::echo();
    let route = |path: &str, behavior: &str, templates: &str| {
        format!(
            r#"
[[routes]]
path = "{path}"
method = "POST"
integration = {{ type = "http", uri = "http://{up}{path}", passthrough_behavior = "{behavior}", {templates} responses = [{{ status = 200 }}] }}
"#,
            up = up.hostport()
        )
    };
    let json_template = r#"request_templates = { "application/json" = '''{"wrapped": $input.json('$')}''' },"#;
    let cfg = [
        route("/match", "when_no_match", json_template),
        route("/templates", "when_no_templates", json_template),
        route("/none", "when_no_templates", ""),
        route("/never", "never", json_template),
    ]
    .concat();
    let gw = Gateway::start(&cfg);
    let mut c = gw.connect();
    let text = [("Content-Type", "text/plain")];
    let json = [("Content-Type", "application/json")];
    let r = c.roundtrip("POST", "/match", &text, b"raw text");
    assert_eq!((r.status, r.text()), (200, "POST /match\nraw text".to_string()), "passed through: {r}");
    let r = c.roundtrip("POST", "/match", &json, br#"{"a":1}"#);
    assert_eq!(r.text(), "POST /match\n{\"wrapped\": {\"a\":1}}", "transformed: {r}");
    let r = c.roundtrip("POST", "/templates", &text, b"raw text");
    assert_eq!(r.status, 415, "templates exist, none for text/plain: {r}");
    assert_eq!(r.text(), r#"{"message":"Unsupported Media Type"}"#);
    let r = c.roundtrip("POST", "/none", &text, b"raw text");
    assert_eq!(r.status, 200, "no templates at all: passed through: {r}");
    let r = c.roundtrip("POST", "/never", &text, b"raw text");
    assert_eq!(r.status, 415, "{r}");
    let r = c.roundtrip("POST", "/never", &[], br#"{"b":2}"#);
    assert_eq!(r.status, 200, "no Content-Type means application/json: {r}");
    assert_eq!(up.request_count(), 4);
}

#[test]
fn overrides_and_runtime_template_errors() {
    let up = Upstream::echo();
    let cfg = format!(
        r#"
[[routes]]
path = "/override"
method = "GET"
[routes.integration]
type = "http"
uri = "http://{up}/o"
request_templates = {{ "application/json" = '''
#set($context.requestOverride.header.X-Trace = "t-$input.params('id')")
#set($context.requestOverride.querystring.page = "2")
#set($context.responseOverride.status = 201)
#set($context.responseOverride.header.X-Done = "yes")''' }}
responses = [{{ status = 200, response_templates = {{ "application/json" = '{{"ok": true}}' }} }}]

[[routes]]
path = "/broken"
method = "GET"
integration = {{ type = "http", uri = "http://{up}/b", request_templates = {{ "application/json" = '$util.base64Decode("%%%")' }}, responses = [{{ status = 200 }}] }}

[[routes]]
path = "/badjson"
method = "POST"
integration = {{ type = "http", uri = "http://{up}/j", request_parameters = {{ "integration.request.header.x-n" = "method.request.body.name" }}, responses = [{{ status = 200 }}] }}

[[routes]]
path = "/nodefault"
method = "GET"
integration = {{ type = "http", uri = "http://{up}/n", responses = [{{ selection_pattern = "4\\d{{2}}", status = 400 }}] }}
"#,
        up = up.hostport()
    );
    let gw = Gateway::start(&cfg);
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/override?id=9", &[], b"");
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.header("x-done"), Some("yes"));
    assert_eq!(r.text(), r#"{"ok": true}"#);
    let req = up.last_request();
    assert_eq!(req.header("x-trace"), Some("t-9"));
    assert_eq!(req.target, "/o?page=2");

    let r = c.roundtrip("GET", "/broken", &[], b"");
    assert_eq!(r.status, 500, "{r}");
    assert_eq!(r.text(), r#"{"message": "Internal server error"}"#);
    let r = c.roundtrip("POST", "/badjson", &[("Content-Type", "application/json")], b"{not json");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.text(), r#"{"message": "Invalid JSON in request body"}"#);
    let r = c.roundtrip("GET", "/nodefault", &[], b"");
    assert_eq!(r.status, 500, "no response matches 200 and there is no default: {r}");
    let r = c.roundtrip("GET", "/override?id=1", &[], b"");
    assert_eq!(r.status, 201, "the connection still works: {r}");
}

#[test]
fn unreachable_and_slow_backends() {
    let slow = Upstream::start(|_| Reply::ok("late").delay(std::time::Duration::from_millis(600)));
    let dead = free_port();
    let cfg = format!(
        r#"
[[routes]]
path = "/dead"
method = "GET"
integration = {{ type = "http", uri = "http://127.0.0.1:{dead}/", responses = [{{ status = 200 }}] }}

[[routes]]
path = "/slow"
method = "GET"
integration = {{ type = "http", uri = "http://{slow}/", timeout_ms = 200, responses = [{{ status = 200 }}] }}
"#,
        slow = slow.hostport()
    );
    let gw = Gateway::start(&cfg);
    let r = gw.get("/dead");
    assert_eq!(r.status, 502, "{r}");
    let r = gw.get("/slow");
    assert_eq!(r.status, 504, "{r}");
    assert_eq!(r.text(), r#"{"message": "Endpoint request timed out"}"#);
}

#[test]
fn mock_with_templates_picks_the_status_from_the_request_template() {
    let cfg = r#"
[[routes]]
path = "/scoped"
method = "GET"
[routes.integration]
type = "mock"
request_templates = { "application/json" = '''
#if($input.params('scope') == "internal")
{"statusCode": 200}
#else
{"statusCode": 500}
#end''' }

[[routes.integration.responses]]
selection_pattern = "5\\d{2}"
status = 403
response_templates = { "application/json" = '{"message": "internal only"}' }

[[routes.integration.responses]]
status = 200
response_parameters = { "method.response.header.X-Scope" = "method.request.querystring.scope" }
response_templates = { "application/json" = '''{"scope": "$input.params('scope')", "id": "$context.requestId"}''' }

# What API Gateway's "Enable CORS" generates for OPTIONS.
[[routes]]
path = "/pets"
method = "OPTIONS"
[routes.integration]
type = "mock"
request_templates = { "application/json" = '{statusCode: 200}' }
[[routes.integration.responses]]
status = 200
response_parameters = { "method.response.header.Access-Control-Allow-Origin" = "'*'", "method.response.header.Access-Control-Allow-Methods" = "'GET,OPTIONS,POST'", "method.response.header.Access-Control-Allow-Headers" = "'Content-Type,X-Amz-Date,Authorization,X-Api-Key'" }
response_templates = { "application/json" = "" }
"#;
    let gw = Gateway::start(cfg);
    let mut c = gw.connect();
    let r = c.roundtrip("GET", "/scoped?scope=internal", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("x-scope"), Some("internal"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["scope"], "internal");
    let r = c.roundtrip("GET", "/scoped?scope=public", &[], b"");
    assert_eq!((r.status, r.text()), (403, r#"{"message": "internal only"}"#.to_string()), "{r}");
    let r = c.roundtrip("OPTIONS", "/pets", &[("Origin", "https://a.example")], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,OPTIONS,POST"));
    assert_eq!(r.text(), "");
}

#[test]
fn template_and_mapping_errors_are_reported_at_their_line_and_column() {
    let f = TempFile::new(
        "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\n[routes.integration]\ntype = \"http\"\nuri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200 }]\nrequest_templates = { \"application/json\" = '''\n{\n  \"a\": 1\n  #end\n}''' }\n",
    );
    let out = run_cli(&["check", f.path_str()]);
    assert!(!out.status.success());
    // The template starts on line 9; the stray `#end` is on line 11, column 3.
    assert!(out.stderr.contains(&format!("{}:11:3:", f.path_str())), "{}", out.stderr);
    assert!(out.stderr.contains("template"), "{}", out.stderr);

    let base = "[[routes]]\npath = \"/a/{id}\"\nmethod = \"GET\"\n[routes.integration]\ntype = \"http\"\n";
    let cases = [
        ("uri = \"http://127.0.0.1:9000/{x}\"\nresponses = [{ status = 200 }]\n", "{x} is neither mapped", 6),
        ("uri = \"http://127.0.0.1:9000/\"\n", "needs responses", 4),
        (
            "uri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200, selection_pattern = \"(\" }]\n",
            "selection_pattern",
            7,
        ),
        (
            "uri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200 }]\nrequest_parameters = { \"integration.request.header.x\" = \"method.request.path.nope\" }\n",
            "no path parameter {nope}",
            8,
        ),
        (
            "uri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200, response_parameters = { \"method.response.header.Content-Length\" = \"'1'\" } }]\n",
            "cannot be mapped",
            7,
        ),
        (
            "uri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200 }]\npassthrough_behavior = \"sometimes\"\n",
            "passthrough_behavior must be",
            8,
        ),
        ("uri = \"http://127.0.0.1:9000/\"\nresponses = [{ status = 200 }]\nfunction = \"f\"\n", "not a setting of a http", 8),
    ];
    for (extra, msg, line) in cases {
        let f = TempFile::new(&format!("{base}{extra}"));
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "{extra}");
        assert!(out.stderr.contains(msg), "{extra}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{}:{line}:", f.path_str())), "{extra}: {}", out.stderr);
    }
}
