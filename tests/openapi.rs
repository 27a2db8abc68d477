//! OpenAPI import: the API Gateway exports in conf/openapi/ (an OpenAPI 3.0 JSON document
//! with an overlay, a Swagger 2.0 YAML one with an overlay, a mock-only document run as it
//! is) through `check`, `import` and `run` of the real binary, against real upstreams and a
//! real function runtime.
mod support;
use serde_json::{json, Value};
use support::*;

fn conf(name: &str) -> String {
    format!("{}/conf/openapi/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// An overlay from conf/openapi without its `[server]` table (the harness supplies one), its
/// document named by absolute path, and `replace` applied.
fn overlay(name: &str, doc: &str, replace: &[(&str, String)]) -> String {
    let from = format!("openapi = \"{doc}\"");
    let mut all = vec![(from.as_str(), format!("openapi = \"{}\"", conf(doc)))];
    all.extend(replace.iter().map(|(f, t)| (*f, t.clone())));
    config_without_server(&conf(name), &all)
}

fn json_of(r: &Response) -> Value {
    serde_json::from_str(&r.text()).unwrap_or_else(|e| panic!("not JSON ({e}):\n{r}"))
}

fn pet_upstream() -> Upstream {
    Upstream::start(|req| {
        if req.target.contains("page=404") {
            return Reply::new(404).header("Content-Type", "application/json").body(br#"{"message":"no such page"}"#);
        }
        Reply::new(200)
            .header("Content-Type", "application/json")
            .body(format!(r#"{{"seen":"{} {}"}}"#, req.method, req.target).as_bytes())
    })
}

fn pet_function() -> FunctionRuntime {
    FunctionRuntime::start(|ev| {
        let body =
            json!({ "path": ev["path"], "base64": ev["isBase64Encoded"], "stage": ev["requestContext"]["stage"] });
        Answer::json(&json!({ "statusCode": 200, "body": body.to_string() }).to_string())
    })
}

const KEY: &str = "demo-key-0123456789abcdef";

/// Every route kind of the OpenAPI 3.0 PetStore export, as API Gateway answers them.
fn assert_petstore_behaviour(gw: &Gateway, up: &Upstream, f: &FunctionRuntime) {
    // mock with a response template
    let r = gw.get("/prod/");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(json_of(&r), json!({"service": "petstore", "stage": "prod"}));
    // http (custom): validator "params", mappings, selection patterns
    let r = gw.get("/prod/pets?type=dog");
    assert_eq!(r.status, 400, "{r}");
    assert_eq!(r.text(), r#"{"message":"Missing required request parameters: [page]"}"#);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "DEFAULT_4XX header: {r}");
    let r = gw.get("/prod/pets?type=dog&page=2");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "2\\d{{2}} response parameter: {r}");
    let req = up.last_request();
    assert_eq!(req.method, "GET");
    assert!(req.target.starts_with("/petstore/pets?"), "{}", req.target);
    assert!(req.target.contains("type=dog") && req.target.contains("page=2"), "{}", req.target);
    assert!(req.header("x-request-id").is_some_and(|v| !v.is_empty()), "context.requestId mapped");
    let r = gw.get("/prod/pets?page=404");
    assert_eq!(r.status, 400, "4\\d{{2}} -> 400: {r}");
    assert_eq!(json_of(&r), json!({"error": "no such page"}));
    // http_proxy with an API key and a body model
    let good = br#"{"type":"dog","price":30}"#;
    let json_ct = ("Content-Type", "application/json");
    let r = gw.send("POST", "/prod/pets", &[json_ct], good);
    assert_eq!((r.status, r.text()), (403, r#"{"message":"Forbidden"}"#.to_string()), "{r}");
    let r = gw.send("POST", "/prod/pets", &[json_ct, ("x-api-key", KEY)], br#"{"type":"dog","price":3}"#);
    // the document's DEFAULT_4XX template writes it without the space
    assert_eq!((r.status, r.text()), (400, r#"{"message":"Invalid request body"}"#.to_string()), "{r}");
    let r = gw.send("POST", "/prod/pets", &[json_ct, ("x-api-key", KEY)], good);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(json_of(&r), json!({"seen": "POST /petstore/pets"}));
    assert_eq!(up.last_request().body, good.to_vec());
    // mock CORS preflight, as "Enable CORS" exports it
    let r = gw.send("OPTIONS", "/prod/pets", &[], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST,OPTIONS"));
    assert_eq!(r.text(), "");
    // http_proxy with a path mapping (uri {id} from method.request.path.petId)
    let r = gw.get("/prod/pets/7");
    assert_eq!(json_of(&r), json!({"seen": "GET /petstore/pets/7"}), "{r}");
    // no DELETE on /pets/{petId}: the greedy ANY takes it
    let r = gw.send("DELETE", "/prod/pets/7", &[], b"");
    assert_eq!(json_of(&r), json!({"seen": "DELETE /petstore/pets/7"}), "{r}");
    let r = gw.get("/prod/anything/else?x=1");
    assert_eq!(json_of(&r), json!({"seen": "GET /petstore/anything/else?x=1"}), "{r}");
    // aws_proxy: the ARN's ${stageVariables.fn} -> [functions.pets-prod]; image/png is binary
    let before = f.invocations();
    let r = gw.send("POST", "/prod/fn/upload", &[("Content-Type", "image/png")], b"\x89PNG");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(json_of(&r), json!({"path": "/fn/upload", "base64": true, "stage": "prod"}));
    let r = gw.send("POST", "/prod/fn/x", &[json_ct], b"{}");
    assert_eq!(json_of(&r)["base64"], json!(false), "{r}");
    assert_eq!(f.invocations(), before + 2);
    // unknown stage
    assert_missing_token(&gw.get("/test/pets/7"), "stage test is not in the overlay");
}

#[test]
fn openapi3_export_runs_with_its_overlay() {
    let (up, f) = (pet_upstream(), pet_function());
    let cfg = overlay(
        "petstore.toml",
        "petstore.json",
        &[("127.0.0.1:9000", up.hostport()), ("127.0.0.1:9001", f.hostport())],
    );
    let gw = Gateway::start(&cfg);
    assert_petstore_behaviour(&gw, &up, &f);
}

#[test]
fn openapi3_import_compiles_and_behaves_the_same() {
    let (up, f) = (pet_upstream(), pet_function());
    let cfg = overlay(
        "petstore.toml",
        "petstore.json",
        &[("127.0.0.1:9000", up.hostport()), ("127.0.0.1:9001", f.hostport())],
    );
    let file = TempFile::new(&cfg);
    let checked = run_cli(&["check", file.path_str()]);
    assert!(checked.status.success(), "{}", checked.stderr);
    assert!(checked.stdout.contains("ok (7 routes, 1 stages"), "{}", checked.stdout);
    let imported = run_cli(&["import", file.path_str()]);
    assert!(imported.status.success(), "{}", imported.stderr);
    let text = imported.stdout;
    assert!(text.contains("# paths./pets/{petId}.get\n[[routes]]"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("openapi")), "the overlay's openapi key is commented out:\n{text}");
    let native = TempFile::new(&text);
    let again = run_cli(&["check", native.path_str()]);
    assert!(again.status.success(), "{}\n{text}", again.stderr);
    let table = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(table(&again.stdout), table(&checked.stdout), "same route table");
    let gw = Gateway::start(&text);
    assert_petstore_behaviour(&gw, &up, &f);
}

#[test]
fn swagger2_yaml_export_runs_with_its_overlay() {
    let up = Upstream::start(|req| {
        if req.target == "/v2/orders" {
            return Reply::new(200).header("Content-Type", "application/json").body(br#"{"id":"o-1"}"#);
        }
        Reply::ok(&format!("{} {}", req.method, req.target))
    });
    let cfg = overlay("orders.toml", "orders.yaml", &[("127.0.0.1:9000", up.hostport())]);
    let file = TempFile::new(&cfg);
    let checked = run_cli(&["check", file.path_str()]);
    assert!(checked.status.success(), "{}", checked.stderr);
    let doc = conf("orders.yaml");
    for w in [
        "warning: paths./queue.post.x-amazon-apigateway-integration: AWS service integrations are not supported",
        "warning: paths./admin.get.security: Cognito user pool authorizer 'cognito' is not supported",
        "warning: paths./reports.get.security: IAM authorization ('sigv4') is not supported",
        "warning: x-amazon-apigateway-policy: resource policies are not supported",
    ] {
        let line = checked
            .stderr
            .lines()
            .find(|l| l.contains(w))
            .unwrap_or_else(|| panic!("no '{w}' in:\n{}", checked.stderr));
        assert!(line.starts_with(&format!("{doc}:")), "{line}");
    }
    assert!(checked.stderr.contains(&format!("{doc}:145:7: warning: paths./queue.post")), "{}", checked.stderr);

    let gw = Gateway::start(&cfg);
    assert!(gw.stderr_text().contains("warning: paths./queue.post.x-amazon-apigateway-integration"), "startup log");
    // http_proxy over the VPC link -> [upstreams.orders-link]; basePath prepended
    let r = gw.get("/legacy/orders");
    assert_eq!((r.status, r.text()), (200, "GET /orders".to_string()), "{r}");
    assert_eq!(up.last_request().header("host"), Some("orders.internal"));
    // http custom: validator "full" (x-tenant header, Order body), template, PUT
    let json_ct = ("Content-Type", "application/json");
    let r = gw.send("POST", "/legacy/orders", &[json_ct], br#"{"item":"tea","qty":2}"#);
    assert_eq!(r.text(), r#"{"message": "Missing required request parameters: [x-tenant]"}"#, "{r}");
    let r = gw.send("POST", "/legacy/orders", &[json_ct, ("x-tenant", "acme")], br#"{"item":"tea","qty":0}"#);
    assert_eq!((r.status, r.text()), (400, r#"{"message": "Invalid request body"}"#.to_string()), "{r}");
    let r = gw.send("POST", "/legacy/orders", &[("Content-Type", "text/plain"), ("x-tenant", "acme")], b"tea");
    assert_eq!(r.status, 415, "passthroughBehavior never: {r}");
    let r = gw.send("POST", "/legacy/orders", &[json_ct, ("x-tenant", "acme")], br#"{"item":"t\"ea","qty":2}"#);
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.header("x-order-id"), Some("o-1"));
    assert_eq!(json_of(&r), json!({"id": "o-1", "status": "accepted"}));
    let req = up.last_request();
    assert_eq!((req.method.as_str(), req.target.as_str()), ("PUT", "/v2/orders"));
    let sent: Value = serde_json::from_slice(&req.body).unwrap_or_else(|e| panic!("{e}: {}", req.body_text()));
    assert_eq!(sent, json!({"sku": "t\"ea", "count": 2, "tenant": "acme"}));
    assert_eq!(req.header("x-tenant"), Some("acme"));
    // templated mock with selection patterns; HTTP API CORS on the route
    let r = gw.send("GET", "/legacy/orders/0", &[("Origin", "https://app.example")], b"");
    assert_eq!((r.status, json_of(&r)), (404, json!({"message": "no order 0"})), "{r}");
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    let r = gw.get("/legacy/orders/5");
    assert_eq!((r.status, json_of(&r)), (200, json!({"id": "5", "state": "shipped"})), "{r}");
    // api key (security: api_key) on an http_proxy with a path mapping
    assert_eq!(gw.send("DELETE", "/legacy/orders/5", &[], b"").status, 403);
    let r = gw.send("DELETE", "/legacy/orders/5", &[("x-api-key", "ops-key-0123456789abcdefgh")], b"");
    assert_eq!((r.status, r.text()), (200, "DELETE /orders/5".to_string()), "{r}");
    // unsupported: 500 as API Gateway's configuration error, nothing reaches a backend
    let seen = up.request_count();
    for (m, p) in [("POST", "/legacy/queue"), ("GET", "/legacy/admin"), ("GET", "/legacy/reports")] {
        let r = gw.send(m, p, &[json_ct], b"{}");
        assert_eq!(r.status, 500, "{m} {p}: {r}");
        assert_eq!(r.text(), r#"{"message": "Internal server error"}"#, "{m} {p}");
        assert_eq!(r.header("x-amzn-ErrorType"), Some("ApiConfigurationException"), "{r}");
    }
    assert_eq!(up.request_count(), seen);
    // gateway response from the document
    let r = gw.get("/legacy/nope");
    assert_eq!((r.status, r.header("x-why")), (404, Some("no such route")), "{r}");
    assert_eq!(json_of(&r), json!({"message": "not found", "path": "/legacy/nope"}));
}

#[test]
fn a_document_runs_checks_and_imports_without_an_overlay() {
    let doc = conf("status.yaml");
    let c = run_cli(&["check", &doc]);
    assert!(c.status.success(), "{}", c.stderr);
    assert!(c.stdout.contains("GET      /status  mock"), "{}", c.stdout);
    let imported = run_cli(&["import", &doc]);
    assert!(imported.status.success(), "{}", imported.stderr);
    assert!(imported.stdout.starts_with("# Converted by ringway from"), "{}", imported.stdout);
    let gw = Gateway::start(&imported.stdout);
    let r = gw.get("/status");
    assert_eq!((r.status, r.header("cache-control")), (200, Some("no-store")), "{r}");
    assert_eq!(json_of(&r), json!({"status": "ok", "path": "/status"}));
    // `run --config api.yaml` as it is: the defaults (127.0.0.1:8080, admin 9901)
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    if !(free(8080) && free(9901)) {
        eprintln!("127.0.0.1:8080 or :9901 is busy: the direct run of {doc} is not exercised");
        return;
    }
    let mut direct = Gateway::spawn_args(&["run", "--config", &doc], 8080);
    direct.wait_ready(READY_TIMEOUT).unwrap();
    let r = direct.get("/status");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(json_of(&r)["status"], "ok");
}

fn write(ext: &str, text: &str) -> std::path::PathBuf {
    let p = temp_path("ringway-openapi", ext);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn document_errors_carry_file_line_and_column() {
    let cases: [(&str, &str, &str); 4] = [
        ("yaml", "openapi: 3.0.1\npaths:\n  /a:\n    get: [\n", ":5:1: invalid YAML"),
        ("json", "{\"openapi\": \"3.0.1\",\n  \"paths\": {\"/a\": {\"get\": }}}", ":2:"),
        (
            "yaml",
            "openapi: 3.0.1\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        uri: http://x\n",
            ":5:7: paths./a.get.x-amazon-apigateway-integration: type is required",
        ),
        (
            // the native compiler's error, at the document's line for the uri
            "yaml",
            "openapi: 3.0.1\npaths:\n  /a:\n    get:\n      x-amazon-apigateway-integration:\n        type: http_proxy\n        uri: http://127.0.0.1:8/x\n",
            ":7:9: paths./a.get.x-amazon-apigateway-integration.uri: ",
        ),
    ];
    for (ext, text, want) in cases {
        let p = write(ext, text);
        let out = run_cli(&["check", p.to_str().unwrap()]);
        let _ = std::fs::remove_file(&p);
        assert!(!out.status.success(), "{text}");
        let first = out.stderr.lines().next().unwrap_or("").to_string();
        assert!(first.starts_with(p.to_str().unwrap()) && first.contains(want), "want '{want}' in: {first}\n{text}");
    }
}

#[test]
fn a_function_chosen_per_stage_by_a_stage_variable() {
    let (one, two) = (pet_function(), pet_function());
    let doc = write(
        "yaml",
        "openapi: 3.0.1\npaths:\n  /fn:\n    post:\n      x-amazon-apigateway-integration:\n        type: aws_proxy\n        httpMethod: POST\n        uri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:${stageVariables.fn}/invocations\n",
    );
    let overlay = |second: &str| {
        format!(
            "[api]\nopenapi = \"{}\"\n[stages.a]\nvariables = {{ fn = \"one\" }}\n[stages.b]\nvariables = {{ fn = \"{second}\" }}\n[functions.one]\nendpoints = [\"{}\"]\n[functions.two]\nendpoints = [\"{}\"]\n",
            doc.display(),
            one.hostport(),
            two.hostport()
        )
    };
    let gw = Gateway::start(&overlay("two"));
    assert!(!gw.stderr_text().contains("warning"), "{}", gw.stderr_text());
    for (stage, f) in [("a", &one), ("b", &two)] {
        let r = gw.send("POST", &format!("/{stage}/fn"), &[], b"");
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(json_of(&r)["stage"], stage);
        assert_eq!(f.invocations(), 1, "stage {stage} calls its own function");
    }
    drop(gw);
    // A stage whose variable names no function: a warning naming the JSON path, and 500.
    let gw = Gateway::start(&overlay("three"));
    assert!(
        gw.stderr_text().contains("paths./fn.post.x-amazon-apigateway-integration.uri: no function for"),
        "{}",
        gw.stderr_text()
    );
    let r = gw.send("POST", "/a/fn", &[], b"");
    assert_eq!((r.status, r.text()), (500, r#"{"message": "Internal server error"}"#.to_string()), "{r}");
    assert_eq!(one.invocations(), 1);
    let _ = std::fs::remove_file(&doc);
}
