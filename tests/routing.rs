//! Routing: precedence, method matching and fallback, greedy rules, trailing
//! slash, no implicit HEAD, 403 Missing Authentication Token, stages.
mod support;
use support::*;

fn body_of(gw: &Gateway, method: &str, path: &str) -> Response {
    gw.send(method, path, &[], b"")
}

fn assert_route(gw: &Gateway, method: &str, path: &str, expect_body: &str) {
    let r = body_of(gw, method, path);
    assert_eq!(r.status, 200, "{method} {path}: expected 200 from route {expect_body:?}, got:\n{r}");
    assert_eq!(r.text(), expect_body, "{method} {path} matched the wrong route; response:\n{r}");
}

#[test]
fn static_beats_param_beats_greedy() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets/dog", "GET", "static");
    cfg += &mock_route("/pets/{petId}", "GET", "param");
    cfg += &mock_route("/{proxy+}", "GET", "greedy");
    cfg += &mock_route("/pets/{petId}/toys/{toyId}", "GET", "param2");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets/dog", "static");
    assert_route(&gw, "GET", "/test/pets/cat", "param");
    assert_route(&gw, "GET", "/test/pets/1", "param");
    assert_route(&gw, "GET", "/test/pets/dog/toys/ball", "param2");
    assert_route(&gw, "GET", "/test/pets/cat/other", "greedy");
    assert_route(&gw, "GET", "/test/pets", "greedy");
    assert_route(&gw, "GET", "/test/anything/else/here", "greedy");
}

#[test]
fn static_beats_param_regardless_of_declaration_order() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/{proxy+}", "GET", "greedy");
    cfg += &mock_route("/pets/{petId}", "GET", "param");
    cfg += &mock_route("/pets/dog", "GET", "static");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets/dog", "static");
    assert_route(&gw, "GET", "/test/pets/cat", "param");
    assert_route(&gw, "GET", "/test/x/y", "greedy");
}

#[test]
fn explicit_method_beats_any() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/items", "ANY", "any");
    cfg += &mock_route("/items", "POST", "post");
    cfg += &mock_route("/items", "DELETE", "delete");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "POST", "/test/items", "post");
    assert_route(&gw, "DELETE", "/test/items", "delete");
    assert_route(&gw, "GET", "/test/items", "any");
    assert_route(&gw, "PUT", "/test/items", "any");
    assert_route(&gw, "PATCH", "/test/items", "any");
    assert_route(&gw, "OPTIONS", "/test/items", "any");
    // ANY covers HEAD as well (no body in a HEAD response)
    let r = gw.send("HEAD", "/test/items", &[], b"");
    assert_eq!(r.status, 200, "HEAD on ANY resource:\n{r}");
}

#[test]
fn method_takes_part_in_matching_falls_back_to_greedy() {
    // recorded AWS behaviour: /pets/{petId} GET only + /{proxy+} ANY:
    // DELETE /test/pets/7 goes to the proxy
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets/{petId}", "GET", "pet");
    cfg += &mock_route("/{proxy+}", "ANY", "proxy");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets/7", "pet");
    assert_route(&gw, "DELETE", "/test/pets/7", "proxy");
    assert_route(&gw, "POST", "/test/pets/7", "proxy");
    assert_route(&gw, "PUT", "/test/pets/7", "proxy");
}

#[test]
fn backtracking_from_static_sibling_to_greedy() {
    // aws-rec: /part1 GET, /part1/hardcoded-value GET, /{param+} GET:
    // GET /part1/random-value is served by /{param+}
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/part1", "GET", "part1");
    cfg += &mock_route("/part1/hardcoded-value", "GET", "hardcoded");
    cfg += &mock_route("/{param+}", "GET", "greedy");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/part1", "part1");
    assert_route(&gw, "GET", "/test/part1/hardcoded-value", "hardcoded");
    assert_route(&gw, "GET", "/test/part1/random-value", "greedy");
}

#[test]
fn method_fallback_to_greedy_on_same_path() {
    // aws-rec: /test POST only, /test/any ANY, /{proxy+} OPTIONS only:
    // OPTIONS /test served by /{proxy+}; OPTIONS and GET /test/any hit /test/any
    let mut cfg = String::from("[stages.st]\n");
    cfg += &mock_route("/test", "POST", "test-post");
    cfg += &mock_route("/test/any", "ANY", "test-any");
    cfg += &mock_route("/{proxy+}", "OPTIONS", "proxy-options");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "OPTIONS", "/st/test", "proxy-options");
    assert_route(&gw, "POST", "/st/test", "test-post");
    assert_route(&gw, "OPTIONS", "/st/test/any", "test-any");
    assert_route(&gw, "GET", "/st/test/any", "test-any");
    assert_missing_token(&gw.get("/st/test"), "GET /st/test (POST-only + OPTIONS-only greedy)");
}

#[test]
fn greedy_needs_at_least_one_segment() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/{proxy+}", "ANY", "proxy");
    let gw = Gateway::start(&cfg);
    assert_missing_token(&gw.get("/test"), "GET /test with only /{proxy+}");
    assert_missing_token(&gw.get("/test/"), "GET /test/ with only /{proxy+}");
    assert_route(&gw, "GET", "/test/a", "proxy");
    assert_route(&gw, "GET", "/test/a/b/c", "proxy");
}

#[test]
fn nested_greedy_needs_a_segment_too() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/files/{path+}", "GET", "files");
    cfg += &mock_route("/files", "GET", "files-root");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/files", "files-root");
    assert_route(&gw, "GET", "/test/files/a", "files");
    assert_route(&gw, "GET", "/test/files/a/b.txt", "files");
    assert_missing_token(&gw.get("/test/other"), "GET /test/other");
}

#[test]
fn param_matches_exactly_one_segment() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets/{petId}", "GET", "param");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets/1", "param");
    assert_missing_token(&gw.get("/test/pets/1/2"), "GET /test/pets/1/2 (two segments)");
    assert_missing_token(&gw.get("/test/pets"), "GET /test/pets (no segment)");
}

#[test]
fn trailing_slash_is_ignored() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets", "GET", "pets");
    cfg += &mock_route("/pets/{petId}", "GET", "pet");
    cfg += &mock_route("/", "GET", "root");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets", "pets");
    assert_route(&gw, "GET", "/test/pets/", "pets");
    assert_route(&gw, "GET", "/test/pets/1/", "pet");
    assert_route(&gw, "GET", "/test", "root");
    assert_route(&gw, "GET", "/test/", "root");
}

#[test]
fn query_string_does_not_affect_matching() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets", "GET", "pets");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets?type=dog", "pets");
    assert_route(&gw, "GET", "/test/pets/?type=dog&x=/a/b", "pets");
}

#[test]
fn no_implicit_head_for_get() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets", "GET", "pets");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets", "pets");
    let r = gw.send("HEAD", "/test/pets", &[], b"");
    assert_eq!(r.status, 403, "HEAD on a GET-only resource must not match:\n{r}");
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException"),
        "HEAD on GET-only resource:\n{r}"
    );
    assert!(r.body.is_empty());
}

#[test]
fn unmatched_path_method_and_stage_give_403_missing_token() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/pets", "GET", "pets");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets", "pets");
    // unknown path
    let r = gw.get("/test/nothing/here");
    assert_missing_token(&r, "unknown path");
    assert_eq!(
        r.header("content-type").map(|v| v.to_ascii_lowercase()),
        Some("application/json".to_string()),
        "403 content-type:\n{r}"
    );
    assert!(r.has_header("x-amzn-RequestId"), "403 without x-amzn-RequestId:\n{r}");
    // unknown method
    assert_missing_token(&gw.send("POST", "/test/pets", &[], b"{}"), "POST on GET-only resource");
    assert_missing_token(&gw.send("DELETE", "/test/pets", &[], b""), "DELETE on GET-only resource");
    // unknown stage
    assert_missing_token(&gw.get("/prod/pets"), "unknown stage");
    assert_missing_token(&gw.get("/pets"), "path without stage");
    assert_missing_token(&gw.get("/"), "bare root with stages");
    assert_missing_token(&gw.get("/testing/pets"), "stage name prefix");
}

#[test]
fn unknown_http_method_gives_403() {
    let mut cfg = String::from("[stages.test]\n");
    cfg += &mock_route("/{proxy+}", "ANY", "proxy");
    let gw = Gateway::start(&cfg);
    // ANY is the seven API Gateway methods; anything else does not match
    let r = gw.send("PROPFIND", "/test/a", &[], b"");
    assert!(
        r.status == 403 || r.status == 400 || r.status == 405 || r.status == 501,
        "PROPFIND must not be routed:\n{r}"
    );
    assert_ne!(r.text(), "proxy", "PROPFIND was routed to ANY:\n{r}");
}

#[test]
fn without_stages_routes_are_served_at_root() {
    let mut cfg = String::new();
    cfg += &mock_route("/pets", "GET", "pets");
    cfg += &mock_route("/pets/{petId}", "GET", "pet");
    cfg += &mock_route("/", "GET", "root");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/pets", "pets");
    assert_route(&gw, "GET", "/pets/3", "pet");
    assert_route(&gw, "GET", "/", "root");
    assert_missing_token(&gw.get("/test/pets"), "stage prefix without stages");
    assert_missing_token(&gw.get("/nothing"), "unknown path without stages");
}

#[test]
fn several_stages_serve_the_same_routes() {
    let mut cfg = String::from("[stages.test]\n[stages.prod]\n");
    cfg += &mock_route("/pets", "GET", "pets");
    let gw = Gateway::start(&cfg);
    assert_route(&gw, "GET", "/test/pets", "pets");
    assert_route(&gw, "GET", "/prod/pets", "pets");
    assert_missing_token(&gw.get("/dev/pets"), "undeclared stage");
}

#[test]
fn mock_integration_status_headers_and_body() {
    let cfg = r#"
[stages.test]

[[routes]]
path = "/"
method = "GET"
integration = { type = "mock", status = 200, headers = { "content-type" = "application/json" }, body = '{"hello":"ringway"}' }

[[routes]]
path = "/made"
method = "POST"
integration = { type = "mock", status = 201, headers = { "x-mock" = "yes", "content-type" = "text/plain" }, body = 'created' }
"#;
    let gw = Gateway::start(cfg);
    let r = gw.get("/test");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), r#"{"hello":"ringway"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.has_header("x-amzn-RequestId"), "{r}");
    let r = gw.send("POST", "/test/made", &[("Content-Type", "text/plain")], b"x");
    assert_eq!(r.status, 201, "{r}");
    assert_eq!(r.header("x-mock"), Some("yes"), "{r}");
    assert_eq!(r.text(), "created");
}
