//! CORS: gateway-answered preflights, headers on actual responses and on gateway errors.
mod support;
use support::*;

const APP: &str = "https://app.example";

fn config(up_port: u16) -> String {
    format!(
        r#"
[stages.test]
cors = {{ allow_origins = ["{APP}"] }}

[usage_plans.p]
[[api_keys]]
id = "k"
value = "kkkkkkkkkkkkkkkkkkkkkkkk"
plan = "p"

[[routes]]
path = "/pets"
method = "GET"
integration = {{ type = "mock", body = "pets" }}
cors = {{ allow_origins = ["{APP}", "http://localhost:3000"], allow_methods = ["GET", "POST"], expose_headers = ["x-total"], max_age_s = 600, allow_credentials = true }}

[[routes]]
path = "/secret"
method = "GET"
api_key_required = true
throttle = {{ rate = 0.1, burst = 1 }}
integration = {{ type = "mock", body = "secret" }}

[[routes]]
path = "/up"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://127.0.0.1:{up_port}/up" }}

[[routes]]
path = "/public"
method = "GET"
integration = {{ type = "mock", body = "public" }}
cors = {{ allow_origins = ["*"] }}
"#
    )
}

fn setup() -> (Upstream, Gateway) {
    let up = Upstream::start(|_| Reply::ok("up").header("Access-Control-Allow-Origin", "*"));
    let gw = Gateway::start(&config(up.port()));
    (up, gw)
}

#[test]
fn preflight_is_answered_without_an_options_route() {
    let (_up, gw) = setup();
    let r = gw.send(
        "OPTIONS",
        "/test/pets",
        &[("Origin", APP), ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "x-api-key")],
        b"",
    );
    assert_eq!(r.status, 204, "{r}");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(APP));
    assert_eq!(r.header("Access-Control-Allow-Methods"), Some("GET,POST"));
    assert_eq!(
        r.header("Access-Control-Allow-Headers"),
        Some("Content-Type,X-Amz-Date,Authorization,X-Api-Key,X-Amz-Security-Token")
    );
    assert_eq!(r.header("Access-Control-Max-Age"), Some("600"));
    assert_eq!(r.header("Access-Control-Allow-Credentials"), Some("true"));
    assert_eq!(r.header("Vary"), Some("Origin"));
    // Preflights skip the API key check (browsers send no custom headers on them).
    let r = gw.send("OPTIONS", "/test/secret", &[("Origin", APP), ("Access-Control-Request-Method", "GET")], b"");
    assert_eq!(r.status, 204, "stage policy answers the preflight for /secret:\n{r}");
}

#[test]
fn preflight_from_an_unknown_origin_is_not_answered() {
    let (_up, gw) = setup();
    let r = gw.send(
        "OPTIONS",
        "/test/pets",
        &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")],
        b"",
    );
    assert_eq!(r.status, 403, "falls through to routing (no OPTIONS route):\n{r}");
    assert!(r.header("Access-Control-Allow-Origin").is_none(), "{r}");
}

#[test]
fn actual_responses_carry_the_headers_for_allowed_origins_only() {
    let (_up, gw) = setup();
    let r = gw.send("GET", "/test/pets", &[("Origin", "http://localhost:3000")], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "pets"));
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("http://localhost:3000"));
    assert_eq!(r.header("Access-Control-Expose-Headers"), Some("x-total"));
    assert_eq!(r.header("Access-Control-Allow-Credentials"), Some("true"));
    let r = gw.send("GET", "/test/pets", &[("Origin", "https://evil.example")], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("Access-Control-Allow-Origin").is_none(), "{r}");
    let r = gw.get("/test/pets");
    assert!(r.header("Access-Control-Allow-Origin").is_none(), "no Origin, no CORS headers:\n{r}");
    let r = gw.send("GET", "/test/public", &[("Origin", "https://any.example")], b"");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
    assert!(r.header("Vary").is_none());
}

#[test]
fn gateway_errors_carry_the_headers() {
    let (_up, gw) = setup();
    let r = gw.send("GET", "/test/nowhere", &[("Origin", APP)], b"");
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(APP), "stage policy on an unrouted 403:\n{r}");
    let r = gw.send("GET", "/test/secret", &[("Origin", APP)], b"");
    assert_eq!(r.status, 403, "missing key:\n{r}");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(APP));
    let key = ("x-api-key", "kkkkkkkkkkkkkkkkkkkkkkkk");
    assert_eq!(gw.send("GET", "/test/secret", &[("Origin", APP), key], b"").status, 200);
    let r = gw.send("GET", "/test/secret", &[("Origin", APP), key], b"");
    assert_eq!(r.status, 429, "{r}");
    assert_eq!(r.header("Access-Control-Allow-Origin"), Some(APP));
}

#[test]
fn the_gateway_policy_replaces_the_upstreams_cors_headers() {
    let (_up, gw) = setup();
    let r = gw.send("GET", "/test/up", &[("Origin", APP)], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "up"));
    assert_eq!(r.headers_all("Access-Control-Allow-Origin"), vec![APP], "{r}");
    // Without a matching policy the upstream's own headers pass through.
    let r = gw.get("/test/up");
    assert_eq!(r.headers_all("Access-Control-Allow-Origin"), vec!["*"], "{r}");
}

#[test]
fn credentials_with_star_is_a_config_error() {
    let bad = "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"mock\" }\n\
               cors = { allow_origins = [\"*\"], allow_credentials = true }\n";
    let f = TempFile::new(bad);
    let out = run_cli(&["check", f.path_str()]);
    assert!(!out.status.success());
    assert!(out.stderr.contains(":5:") && out.stderr.contains("allow_credentials"), "{}", out.stderr);
}
