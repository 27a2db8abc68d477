//! API keys and usage plans: 403 Forbidden rules, per-key limits, per-route plan limits.
mod support;
use support::*;

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";
const KEY_OFF: &str = "dddddddddddddddddddddddd";
const KEY_OTHER_STAGE: &str = "eeeeeeeeeeeeeeeeeeeeeeee";
const KEY_NO_PLAN: &str = "ffffffffffffffffffffffff";

fn config(extra_plan: &str) -> String {
    format!(
        r#"
[stages.test]
[stages.prod]

[usage_plans.basic]
throttle = {{ rate = 0.1, burst = 3 }}
{extra_plan}

[usage_plans.prodonly]
stages = ["prod"]

[[api_keys]]
id = "a"
value = "{KEY_A}"
plan = "basic"

[[api_keys]]
id = "b"
value = "{KEY_B}"
plan = "basic"

[[api_keys]]
id = "off"
value = "{KEY_OFF}"
plan = "basic"
enabled = false

[[api_keys]]
id = "p"
value = "{KEY_OTHER_STAGE}"
plan = "prodonly"

[[api_keys]]
id = "n"
value = "{KEY_NO_PLAN}"

[[routes]]
path = "/a"
method = "GET"
api_key_required = true
integration = {{ type = "mock", body = "a" }}

[[routes]]
path = "/b"
method = "GET"
api_key_required = true
integration = {{ type = "mock", body = "b" }}

[[routes]]
path = "/open"
method = "GET"
integration = {{ type = "mock", body = "open" }}
"#
    )
}

fn get(c: &mut Conn, path: &str, key: Option<(&str, &str)>) -> Response {
    let headers: Vec<(&str, &str)> = key.into_iter().collect();
    c.roundtrip("GET", path, &headers, b"")
}

fn assert_forbidden(r: &Response, why: &str) {
    assert_eq!(r.status, 403, "{why}: expected 403, got:\n{r}");
    assert_eq!(r.text(), r#"{"message":"Forbidden"}"#, "{why}");
    assert_eq!(r.header("x-amzn-ErrorType"), Some("ForbiddenException"), "{why}");
}

#[test]
fn keys_are_required_and_checked() {
    let gw = Gateway::start(&config(""));
    let mut c = gw.connect();
    assert_forbidden(&get(&mut c, "/test/a", None), "missing key");
    assert_forbidden(&get(&mut c, "/test/a", Some(("x-api-key", "zzzzzzzzzzzzzzzzzzzzzzzz"))), "unknown key");
    assert_forbidden(&get(&mut c, "/test/a", Some(("x-api-key", &KEY_A[1..]))), "prefix of a key");
    assert_forbidden(&get(&mut c, "/test/a", Some(("x-api-key", KEY_OFF))), "disabled key");
    assert_forbidden(&get(&mut c, "/test/a", Some(("x-api-key", KEY_OTHER_STAGE))), "plan for another stage");
    assert_forbidden(&get(&mut c, "/test/a", Some(("x-api-key", KEY_NO_PLAN))), "key in no plan");
    let r = get(&mut c, "/test/a", Some(("x-api-key", KEY_A)));
    assert_eq!((r.status, r.text().as_str()), (200, "a"), "{r}");
    let r = get(&mut c, "/test/a", Some(("X-API-Key", KEY_B)));
    assert_eq!(r.status, 200, "header name is case-insensitive:\n{r}");
    let r = get(&mut c, "/prod/a", Some(("x-api-key", KEY_OTHER_STAGE)));
    assert_eq!(r.status, 200, "the prod-only plan works in prod:\n{r}");
    let r = get(&mut c, "/test/open", None);
    assert_eq!(r.status, 200, "routes without api_key_required need no key:\n{r}");
}

#[test]
fn each_key_has_its_own_plan_bucket() {
    let gw = Gateway::start(&config(""));
    let mut c = gw.connect();
    for i in 0..3 {
        assert_eq!(get(&mut c, "/test/a", Some(("x-api-key", KEY_A))).status, 200, "key a request {i}");
    }
    let r = get(&mut c, "/test/b", Some(("x-api-key", KEY_A)));
    assert_eq!(r.status, 429, "the plan limit covers every route for key a:\n{r}");
    assert_eq!(r.text(), r#"{"message":"Too Many Requests"}"#);
    assert!(r.header("Retry-After").is_some());
    for i in 0..3 {
        assert_eq!(get(&mut c, "/test/a", Some(("x-api-key", KEY_B))).status, 200, "key b has its own bucket ({i})");
    }
    assert_eq!(get(&mut c, "/test/a", Some(("x-api-key", KEY_B))).status, 429);
}

#[test]
fn plan_route_limits_come_first() {
    let gw = Gateway::start(&config(r#"routes = { "/a/GET" = { rate = 0.1, burst = 1 } }"#));
    let mut c = gw.connect();
    assert_eq!(get(&mut c, "/test/a", Some(("x-api-key", KEY_A))).status, 200);
    assert_eq!(get(&mut c, "/test/a", Some(("x-api-key", KEY_A))).status, 429, "per-route plan limit of 1");
    // /b is under the plan's own limit (burst 3, one token already spent on /a).
    assert_eq!(get(&mut c, "/test/b", Some(("x-api-key", KEY_A))).status, 200);
    assert_eq!(get(&mut c, "/test/b", Some(("x-api-key", KEY_A))).status, 200);
    assert_eq!(get(&mut c, "/test/b", Some(("x-api-key", KEY_A))).status, 429);
}

#[test]
fn refused_requests_never_reach_the_upstream() {
    let up = Upstream::start(|_| Reply::ok("up"));
    let cfg = format!(
        "[usage_plans.p]\n[[api_keys]]\nid = \"a\"\nvalue = \"{KEY_A}\"\nplan = \"p\"\n\
         [[routes]]\npath = \"/{{proxy+}}\"\nmethod = \"ANY\"\napi_key_required = true\n\
         integration = {{ type = \"http_proxy\", uri = \"http://127.0.0.1:{}/{{proxy}}\" }}\n",
        up.port()
    );
    let gw = Gateway::start(&cfg);
    assert_forbidden(&gw.send("POST", "/x", &[("content-type", "text/plain")], b"body"), "no key");
    assert!(up.requests().is_empty(), "a refused request reached the upstream");
    let r = gw.send("GET", "/x", &[("x-api-key", KEY_A)], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "up"));
    assert_eq!(up.requests().len(), 1);
}

#[test]
fn api_key_config_errors() {
    let cases: &[(&str, &str)] = &[
        ("[[api_keys]]\nid = \"a\"\nvalue = \"short\"\n", ":3:"),
        ("[[api_keys]]\nid = \"a\"\nvalue = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\nplan = \"nope\"\n", ":4:"),
        (
            "[[api_keys]]\nid = \"a\"\nvalue = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\n[[api_keys]]\nid = \"b\"\nvalue = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\n",
            ":6:",
        ),
        ("[usage_plans.p]\nroutes = { \"/none/GET\" = { rate = 1, burst = 1 } }\n", ":2:"),
        ("[usage_plans.p]\nstages = [\"nope\"]\n", ":2:"),
    ];
    for (cfg, line) in cases {
        let f = TempFile::new(cfg);
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "accepted:\n{cfg}");
        assert!(out.stderr.contains(line), "expected the error on line {line}:\n{cfg}\n{}", out.stderr);
    }
}

fn keys_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ringway-keys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn keys_can_live_in_a_separate_file() {
    let dir = keys_dir("ok");
    std::fs::write(
        dir.join("keys.toml"),
        format!("[usage_plans.p]\n[[api_keys]]\nid = \"a\"\nvalue = \"{KEY_A}\"\nplan = \"p\"\n"),
    )
    .unwrap();
    let keys_path = dir.join("keys.toml");
    let cfg = format!(
        "[keys]\nfile = {:?}\n[[routes]]\npath = \"/a\"\nmethod = \"GET\"\napi_key_required = true\nintegration = {{ type = \"mock\", body = \"a\" }}\n",
        keys_path.to_str().unwrap()
    );
    let gw = Gateway::start(&cfg);
    assert_eq!(gw.send("GET", "/a", &[("x-api-key", KEY_A)], b"").status, 200);
    assert_forbidden(&gw.send("GET", "/a", &[("x-api-key", KEY_B)], b""), "key not in the keys file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keys_file_errors_point_into_that_file() {
    let dir = keys_dir("bad");
    std::fs::write(
        dir.join("keys.toml"),
        "[usage_plans.p]\n[[api_keys]]\nid = \"a\"\nvalue = \"short\"\nplan = \"p\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.toml"), "[keys]\nfile = \"keys.toml\"\n").unwrap();
    let out = run_cli(&["check", dir.join("main.toml").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("keys.toml:4:"),
        "relative to the config's folder, error in the keys file: {}",
        out.stderr
    );
    std::fs::write(dir.join("main.toml"), "[keys]\nfile = \"missing.toml\"\n").unwrap();
    let out = run_cli(&["check", dir.join("main.toml").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("main.toml:2:") && out.stderr.contains("missing.toml"), "{}", out.stderr);
    std::fs::write(dir.join("main.toml"), "[keys]\nfile = \"keys.toml\"\n[usage_plans.q]\n").unwrap();
    let out = run_cli(&["check", dir.join("main.toml").to_str().unwrap()]);
    assert!(!out.status.success(), "keys in both places must be refused");
    let _ = std::fs::remove_dir_all(&dir);
}
