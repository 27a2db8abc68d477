//! CLI: --version, `check` on good and bad files (FILE:LINE:COL: message).
mod support;
use support::*;

const GOOD: &str = r#"[server]
listen = ["127.0.0.1:18080"]
workers = "auto"
driver = "auto"
admin_listen = "127.0.0.1:9901"

[limits]
max_header_bytes = 16384
max_body_bytes = 10485760
header_timeout_ms = 10000
idle_timeout_ms = 60000

[stages.test]
variables = { petHost = "127.0.0.1:9000" }

[[routes]]
path = "/pets/{petId}"
method = "GET"
integration = { type = "http_proxy", uri = "http://${stageVariables.petHost}/petstore/pets/{petId}", timeout_ms = 29000 }

[[routes]]
path = "/{proxy+}"
method = "ANY"
integration = { type = "http_proxy", uri = "http://127.0.0.1:9000/petstore/{proxy}" }

[[routes]]
path = "/"
method = "GET"
integration = { type = "mock", status = 200, headers = { "content-type" = "application/json" }, body = '{"hello":"ringway"}' }

[gateway_responses.MISSING_AUTHENTICATION_TOKEN]
status = 404
headers = { "x-why" = "no route" }
body = '{"message":$context.error.messageString}'
"#;

#[test]
fn version() {
    let o = run_cli(&["--version"]);
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    assert_eq!(o.stdout.trim(), format!("ringway {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn check_good_file_prints_route_table() {
    let f = TempFile::new(GOOD);
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(0), "check failed on a good file:\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    for needle in ["/pets/{petId}", "/{proxy+}", "GET", "ANY"] {
        assert!(o.stdout.contains(needle), "route table lacks {needle:?}:\n{}", o.stdout);
    }
    // the three routes appear as three lines at least
    let route_lines = o
        .stdout
        .lines()
        .filter(|l| l.contains("/pets/{petId}") || l.contains("/{proxy+}") || l.contains("mock"))
        .count();
    assert!(route_lines >= 2, "route table:\n{}", o.stdout);
}

#[test]
fn check_embedded_demo_config() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/ringway.toml");
    let o = run_cli(&["check", path]);
    assert_eq!(o.status.code(), Some(0), "conf/ringway.toml does not check:\n{}{}", o.stdout, o.stderr);
}

#[test]
fn check_minimal_file_without_server_section() {
    let f = TempFile::new(&mock_route("/", "GET", "hi"));
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", o.stdout, o.stderr);
}

#[test]
fn check_missing_file() {
    let o = run_cli(&["check", "/nonexistent/ringway-test.toml"]);
    assert!(!o.status.success());
    assert!(o.stderr.contains("/nonexistent/ringway-test.toml"), "stderr: {}", o.stderr);
}

/// Where the error is expected: 1-based line numbers (any of them) of `text`.
fn lines_with(text: &str, marker: &str) -> Vec<usize> {
    text.lines().enumerate().filter(|(_, l)| l.contains(marker)).map(|(i, _)| i + 1).collect()
}

/// Run check on `text`; expect exit 1 and `FILE:LINE:COL: message` on stderr
/// with LINE in `lines`. Returns (line, col, message).
fn check_fails_at(what: &str, text: &str, lines: &[usize]) -> (usize, usize, String) {
    assert!(!lines.is_empty(), "{what}: test bug, no expected line");
    let f = TempFile::new(text);
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(1), "{what}: check should exit 1\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    let prefix = format!("{}:", f.path_str());
    let line = o
        .stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{what}: no line starting with {prefix:?} in stderr:\n{}", o.stderr));
    let rest = &line[prefix.len()..];
    let mut parts = rest.splitn(3, ':');
    let ln: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{what}: no LINE in {line:?}"));
    let col: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{what}: no COL in {line:?}"));
    let msg = parts.next().unwrap_or("").trim().to_string();
    assert!(!msg.is_empty(), "{what}: empty message in {line:?}");
    assert!(
        lines.contains(&ln),
        "{what}: error reported at line {ln}, expected one of {lines:?}\n{line}\n--- file ---\n{}",
        numbered(text)
    );
    let src_line = text.lines().nth(ln - 1).unwrap_or("");
    assert!(col >= 1 && col <= src_line.len() + 1, "{what}: column {col} outside line {ln} ({src_line:?})");
    (ln, col, msg)
}

fn numbered(text: &str) -> String {
    text.lines().enumerate().map(|(i, l)| format!("{:3} {l}\n", i + 1)).collect()
}

/// Column (1-based) span of `marker` in line `ln` of `text`.
fn span(text: &str, ln: usize, marker: &str) -> (usize, usize) {
    let l = text.lines().nth(ln - 1).unwrap();
    let s = l.find(marker).unwrap() + 1;
    (s, s + marker.len())
}

#[test]
fn check_toml_syntax_error() {
    let text = GOOD.replace("method = \"ANY\"", "method = ANY");
    let lines = lines_with(&text, "method = ANY");
    let (ln, col, _) = check_fails_at("TOML syntax error", &text, &lines);
    let (s, e) = span(&text, ln, "ANY");
    assert!(col >= s && col <= e, "syntax error column {col}, the bad value is at {s}..{e}");
}

#[test]
fn check_unterminated_string() {
    let text = GOOD.replace("path = \"/pets/{petId}\"", "path = \"/pets/{petId}");
    let lines = lines_with(&text, "path = \"/pets/{petId}");
    check_fails_at("unterminated string", &text, &lines);
}

#[test]
fn check_greedy_segment_not_last() {
    let text = GOOD.replace("path = \"/{proxy+}\"", "path = \"/{proxy+}/x\"");
    let lines = lines_with(&text, "/{proxy+}/x");
    let (ln, col, _) = check_fails_at("greedy not last", &text, &lines);
    let (s, e) = span(&text, ln, "\"/{proxy+}/x\"");
    assert!(col >= s && col <= e, "column {col} should point at the path value ({s}..{e})");
}

#[test]
fn check_greedy_in_the_middle_of_a_longer_path() {
    let text = GOOD.replace("path = \"/pets/{petId}\"", "path = \"/a/{b+}/{c}\"");
    let lines = lines_with(&text, "/a/{b+}/{c}");
    check_fails_at("greedy with children", &text, &lines);
}

#[test]
fn check_duplicate_route() {
    let text = format!(
        "{GOOD}\n[[routes]]\npath = \"/pets/{{petId}}\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\", status = 200 }}\n"
    );
    // the second definition: its [[routes]] header, path or method line
    let total = text.lines().count();
    let lines: Vec<usize> = (total - 4..=total).collect();
    check_fails_at("duplicate route", &text, &lines);
}

#[test]
fn check_duplicate_route_with_trailing_slash() {
    let text = format!(
        "{GOOD}\n[[routes]]\npath = \"/pets/{{petId}}/\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\", status = 200 }}\n"
    );
    let total = text.lines().count();
    let lines: Vec<usize> = (total - 4..=total).collect();
    check_fails_at("duplicate route (trailing slash)", &text, &lines);
}

#[test]
fn same_path_different_methods_is_not_a_duplicate() {
    let text = format!(
        "{GOOD}\n[[routes]]\npath = \"/pets/{{petId}}\"\nmethod = \"DELETE\"\nintegration = {{ type = \"mock\", status = 204 }}\n"
    );
    let f = TempFile::new(&text);
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", o.stderr);
}

#[test]
fn check_unknown_integration_type() {
    let text = GOOD.replace(
        "integration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/petstore/{proxy}\" }",
        "integration = { type = \"lambda_magic\", uri = \"http://127.0.0.1:9000/petstore/{proxy}\" }",
    );
    let lines = lines_with(&text, "lambda_magic");
    let (ln, col, _) = check_fails_at("unknown integration type", &text, &lines);
    let (_, e) = span(&text, ln, "\"lambda_magic\"");
    let (s, _) = span(&text, ln, "integration");
    assert!(col >= s && col <= e, "column {col} should point at the integration/type ({s}..{e})");
}

#[test]
fn check_integration_port_out_of_range() {
    for bad in ["8", "79", "1023", "444", "0"] {
        let text = GOOD.replace("127.0.0.1:9000/petstore/{proxy}", &format!("127.0.0.1:{bad}/petstore/{{proxy}}"));
        let marker = format!("127.0.0.1:{bad}/petstore");
        let lines = lines_with(&text, &marker);
        let (ln, col, _) = check_fails_at(&format!("port {bad}"), &text, &lines);
        let (s, _) = span(&text, ln, "integration");
        assert!(col >= s, "port {bad}: column {col} before the integration ({s})");
    }
}

#[test]
fn check_integration_ports_allowed() {
    for ok in ["80", "443", "1024", "8080", "65535"] {
        let text = GOOD.replace("127.0.0.1:9000/petstore/{proxy}", &format!("127.0.0.1:{ok}/petstore/{{proxy}}"));
        let f = TempFile::new(&text);
        let o = run_cli(&["check", f.path_str()]);
        assert_eq!(o.status.code(), Some(0), "port {ok} must be allowed: {}", o.stderr);
    }
    // no explicit port: scheme default
    let text = GOOD.replace("127.0.0.1:9000/petstore/{proxy}", "localhost/petstore/{proxy}");
    let f = TempFile::new(&text);
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(0), "default port: {}", o.stderr);
}

#[test]
fn check_invalid_method() {
    let text = GOOD.replace("method = \"ANY\"", "method = \"FETCH\"");
    let lines = lines_with(&text, "FETCH");
    check_fails_at("invalid method", &text, &lines);
}

#[test]
fn check_timeout_out_of_range() {
    for bad in ["10", "49", "29001", "60000"] {
        let text = GOOD.replace("timeout_ms = 29000", &format!("timeout_ms = {bad}"));
        let lines = lines_with(&text, &format!("timeout_ms = {bad}"));
        check_fails_at(&format!("timeout_ms {bad}"), &text, &lines);
    }
    for ok in ["50", "29000"] {
        let text = GOOD.replace("timeout_ms = 29000", &format!("timeout_ms = {ok}"));
        let f = TempFile::new(&text);
        let o = run_cli(&["check", f.path_str()]);
        assert_eq!(o.status.code(), Some(0), "timeout_ms {ok}: {}", o.stderr);
    }
}

#[test]
fn check_parameter_must_be_a_whole_segment() {
    let text = GOOD.replace("path = \"/pets/{petId}\"", "path = \"/pets/pet{petId}\"");
    let lines = lines_with(&text, "pet{petId}");
    check_fails_at("partial-segment parameter", &text, &lines);
}

#[test]
fn check_invalid_uri_scheme() {
    let text = GOOD.replace("http://127.0.0.1:9000/petstore/{proxy}", "ftp://127.0.0.1:9000/petstore/{proxy}");
    let lines = lines_with(&text, "ftp://");
    check_fails_at("non-http scheme", &text, &lines);
}

#[test]
fn check_unknown_gateway_response_type() {
    let text = GOOD.replace("[gateway_responses.MISSING_AUTHENTICATION_TOKEN]", "[gateway_responses.NOT_A_TYPE]");
    let lines = lines_with(&text, "NOT_A_TYPE");
    check_fails_at("unknown gateway response type", &text, &lines);
}

#[test]
fn check_bad_driver() {
    let text = GOOD.replace("driver = \"auto\"", "driver = \"kqueue\"");
    let lines = lines_with(&text, "kqueue");
    check_fails_at("unknown driver", &text, &lines);
}

#[test]
fn check_defer_accept_must_be_a_boolean() {
    let text = GOOD.replace("driver = \"auto\"", "driver = \"auto\"\ndefer_accept = \"yes\"");
    let lines = lines_with(&text, "defer_accept");
    check_fails_at("string defer_accept", &text, &lines);
    let ok = GOOD.replace("driver = \"auto\"", "driver = \"auto\"\ndefer_accept = false");
    let f = TempFile::new(&ok);
    let o = run_cli(&["check", f.path_str()]);
    assert_eq!(o.status.code(), Some(0), "defer_accept = false: {}", o.stderr);
}

#[test]
fn no_arguments_or_unknown_command_fails() {
    let o = run_cli(&["frobnicate"]);
    assert!(!o.status.success(), "unknown command accepted");
    assert!(!o.stderr.is_empty(), "no usage message on stderr");
}
