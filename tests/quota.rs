//! Quotas per API key: 429 Limit Exceeded, per-key counting, persistence across restarts.
mod support;
use std::time::Duration;
use support::*;

const KEY_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbb";

fn config(limit: u64) -> String {
    format!(
        "[usage_plans.p]\nquota = {{ limit = {limit}, period = \"DAY\" }}\n\
         [[api_keys]]\nid = \"key-a\"\nvalue = \"{KEY_A}\"\nplan = \"p\"\n\
         [[api_keys]]\nid = \"key-b\"\nvalue = \"{KEY_B}\"\nplan = \"p\"\n\
         [[routes]]\npath = \"/q\"\nmethod = \"GET\"\napi_key_required = true\nintegration = {{ type = \"mock\", body = \"ok\" }}\n"
    )
}

fn state_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ringway-quota-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn call(gw: &Gateway, key: &str) -> Response {
    gw.send("GET", "/q", &[("x-api-key", key)], b"")
}

fn assert_limit_exceeded(r: &Response) {
    assert_eq!(r.status, 429, "{r}");
    assert_eq!(r.text(), r#"{"message":"Limit Exceeded"}"#);
    assert_eq!(r.header("x-amzn-ErrorType"), Some("LimitExceededException"));
}

#[test]
fn quota_is_counted_per_key() {
    let dir = state_dir("per-key");
    let gw = Gateway::builder(&config(3)).server(&format!("state_dir = {:?}", dir.to_str().unwrap())).start();
    for i in 0..3 {
        assert_eq!(call(&gw, KEY_A).status, 200, "request {i}");
    }
    assert_limit_exceeded(&call(&gw, KEY_A));
    assert_limit_exceeded(&call(&gw, KEY_A));
    assert_eq!(call(&gw, KEY_B).status, 200, "key b has its own count");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quota_usage_survives_a_restart() {
    let dir = state_dir("restart");
    let server_line = format!("state_dir = {:?}", dir.to_str().unwrap());
    let mut gw = Gateway::builder(&config(3)).server(&server_line).start();
    assert_eq!(call(&gw, KEY_A).status, 200);
    assert_eq!(call(&gw, KEY_A).status, 200);
    gw.sigterm();
    let status = gw.wait_exit(Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    let state = std::fs::read_to_string(dir.join("quota.state")).expect("state file written at shutdown");
    assert!(state.contains("key-a") && state.lines().any(|l| l.starts_with("key-a ") && l.ends_with(" 2")), "{state}");
    assert!(!state.contains(KEY_A), "key values never reach the state file");

    let gw = Gateway::builder(&config(3)).server(&server_line).start();
    assert_eq!(call(&gw, KEY_A).status, 200, "one request left after the restart");
    assert_limit_exceeded(&call(&gw, KEY_A));
    assert_eq!(call(&gw, KEY_B).status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_is_persisted_while_running() {
    let dir = state_dir("running");
    let gw = Gateway::builder(&config(10)).server(&format!("state_dir = {:?}", dir.to_str().unwrap())).start();
    for _ in 0..4 {
        assert_eq!(call(&gw, KEY_B).status, 200);
    }
    let path = dir.join("quota.state");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.lines().any(|l| l.starts_with("key-b ") && l.ends_with(" 4")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "usage not persisted within 5 s: {text:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_quota_period_is_a_check_error() {
    let bad = "[usage_plans.p]\nquota = { limit = 5, period = \"YEAR\" }\n";
    let f = TempFile::new(bad);
    let out = run_cli(&["check", f.path_str()]);
    assert!(!out.status.success());
    assert!(out.stderr.contains(":2:") && out.stderr.contains("DAY"), "{}", out.stderr);
}
