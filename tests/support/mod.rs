//! Shared harness for ringway's integration tests (std only).
//!
//! * [`Gateway`]: runs the real `ringway` binary on a free loopback port with a
//!   generated config file, waits for `ringway: ready`, collects stderr, kills
//!   the process on drop.
//! * [`Upstream`]: a real HTTP/1.1 origin server on loopback (thread per
//!   connection) that records every request and answers with a per-test
//!   [`Reply`].
//! * [`Conn`]: a raw client that writes arbitrary bytes and parses HTTP/1.1
//!   responses (Content-Length, chunked, close-delimited), every read bounded
//!   by a deadline so no test can hang.
#![allow(dead_code)]

mod client;
mod function;
mod gateway;
mod pki;
mod upstream;
// Each test file uses part of the harness; the re-exports serve them all.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use function::*;
#[allow(unused_imports)]
pub use gateway::*;
#[allow(unused_imports)]
pub use pki::*;
#[allow(unused_imports)]
pub use upstream::*;

use std::collections::HashSet;
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Exact body of the default MISSING_AUTHENTICATION_TOKEN gateway response.
pub const MISSING_TOKEN_BODY: &str = r#"{"message":"Missing Authentication Token"}"#;

// ---------------------------------------------------------------------------
// small utilities
// ---------------------------------------------------------------------------

/// The driver every generated config uses: env RINGWAY_TEST_DRIVER, default "auto".
pub fn test_driver() -> String {
    match std::env::var("RINGWAY_TEST_DRIVER") {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => "auto".to_string(),
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringway")
}

/// How much slower than native this run is: 5 under an emulator (`RINGWAY_TEST_RUNNER`), else
/// 1. Tests whose logic rests on who arrives first scale their delays by it.
pub fn slowdown() -> u32 {
    if std::env::var_os("RINGWAY_TEST_RUNNER").is_some() {
        5
    } else {
        1
    }
}

/// A command that runs the ringway binary: directly, or through `RINGWAY_TEST_RUNNER`
/// (an emulator and its options, e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`: see
/// scripts/test-arm64).
pub fn ringway_command() -> std::process::Command {
    let runner = std::env::var("RINGWAY_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        None => std::process::Command::new(bin()),
        Some(emulator) => {
            let mut c = std::process::Command::new(emulator);
            c.args(words).arg(bin());
            c
        }
    }
}

/// How many file descriptors process `pid` has open (0 when /proc cannot tell).
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Polls `f` every 50 ms until it holds (true) or `within` passes (false).
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago (bind :0, read, release), never one this
/// test process handed out before: tests run in parallel threads, and the kernel may give
/// a just-released port to the next bind :0.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh path in the temp dir (nothing is created).
pub fn temp_path(prefix: &str, ext: &str) -> PathBuf {
    unique_name(prefix, ext)
}

fn unique_name(prefix: &str, ext: &str) -> PathBuf {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}.{ext}", std::process::id()))
}

/// A file in the temp dir removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(contents: &str) -> TempFile {
        let path = unique_name("ringway-test", "toml");
        fs::write(&path, contents).expect("write temp file");
        TempFile { path }
    }
    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

pub fn find_headers<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Byte `i` of a generated large body.
#[inline]
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// A deterministic body of `len` bytes (the same pattern [`Body::Huge`] streams).
pub fn pattern_body(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

/// Build one HTTP/1.1 request. A `Host` header is added unless `headers` has one;
/// `Content-Length` is added when `body` is non-empty unless the caller framed it.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        out.push_str("Host: gateway.test\r\n");
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let framed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
    if !body.is_empty() && !framed {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Encode `body` as chunked transfer coding with chunks of `chunk` bytes.
pub fn chunked(body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ---------------------------------------------------------------------------
// config helpers
// ---------------------------------------------------------------------------

/// `[stages.test]` + `/{proxy+}` ANY -> `http://HOSTPORT/petstore/{proxy}`.
pub fn petstore_config(upstream_hostport: &str) -> String {
    format!(
        r#"
[stages.test]
variables = {{ }}

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{upstream_hostport}/petstore/{{proxy}}" }}
"#
    )
}

/// A mock route TOML snippet answering 200 text/plain `body`.
pub fn mock_route(path: &str, method: &str, body: &str) -> String {
    format!(
        r#"
[[routes]]
path = "{path}"
method = "{method}"
integration = {{ type = "mock", status = 200, headers = {{ "content-type" = "text/plain" }}, body = '{body}' }}
"#
    )
}

/// Assert a response is the default MISSING_AUTHENTICATION_TOKEN response.
pub fn assert_missing_token(r: &Response, what: &str) {
    assert_eq!(r.status, 403, "{what}: expected 403, got:\n{r}");
    assert_eq!(r.text(), MISSING_TOKEN_BODY, "{what}: body; response:\n{r}");
    assert_eq!(
        r.header("x-amzn-ErrorType"),
        Some("MissingAuthenticationTokenException"),
        "{what}: x-amzn-ErrorType; response:\n{r}"
    );
}

/// Unique set helper for request ids.
pub fn all_distinct(v: &[String]) -> bool {
    let s: HashSet<&String> = v.iter().collect();
    s.len() == v.len()
}

/// A shipped config file's text without its `[server]` table (the harness supplies one),
/// with each `(from, to)` of `replace` applied; panics when the file no longer mentions a
/// `from`, so a changed example cannot silently test something else.
pub fn config_without_server(path: &str, replace: &[(&str, String)]) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = String::new();
    let mut in_server = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_server = line.trim() == "[server]";
        }
        if !in_server {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (from, to) in replace {
        assert!(out.contains(from), "{path} no longer mentions {from}");
        out = out.replace(from, to);
    }
    out
}
