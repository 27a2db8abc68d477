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

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
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

/// A loopback port that was free a moment ago (bind :0, read, release).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

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
// Gateway: the real binary
// ---------------------------------------------------------------------------

struct LogBuf {
    text: Mutex<(String, bool)>, // (collected text, eof reached)
    cv: Condvar,
}

impl LogBuf {
    fn new() -> Arc<LogBuf> {
        Arc::new(LogBuf { text: Mutex::new((String::new(), false)), cv: Condvar::new() })
    }
    fn collect<R: Read + Send + 'static>(self: &Arc<Self>, r: R) {
        let me = self.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(r);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut g = me.text.lock().unwrap();
                        g.0.push_str(&String::from_utf8_lossy(&line));
                        if !line.ends_with(b"\n") {
                            g.0.push('\n');
                        }
                        me.cv.notify_all();
                    }
                }
            }
            me.text.lock().unwrap().1 = true;
            me.cv.notify_all();
        });
    }
    fn get(&self) -> String {
        self.text.lock().unwrap().0.clone()
    }
    /// Wait until the text contains `needle`; false on timeout or EOF without it.
    fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.text.lock().unwrap();
        loop {
            if g.0.contains(needle) {
                return true;
            }
            if g.1 {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
    fn wait_eof(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut g = self.text.lock().unwrap();
        while !g.1 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }
}

/// Options for a gateway run. The generated config is:
///
/// ```toml
/// [server]
/// listen = ["127.0.0.1:PORT"]
/// workers = 2
/// driver = "<RINGWAY_TEST_DRIVER or auto>"
/// <server lines added with .server(...)>
/// <body>
/// ```
///
/// so `body` supplies `[limits]`, `[upstream]`, `[stages.*]`, `[[routes]]`,
/// `[gateway_responses.*]` as it likes.
pub struct GatewayBuilder {
    body: String,
    server_extra: Vec<String>,
    driver: Option<String>,
    workers: u32,
    port: Option<u16>,
    extra_ports: usize,
}

impl GatewayBuilder {
    /// Listen on `n` more free loopback ports (see [`Gateway::extra_ports`]).
    pub fn extra_listeners(mut self, n: usize) -> Self {
        self.extra_ports = n;
        self
    }
    /// Extra `key = value` line for the `[server]` table.
    pub fn server(mut self, line: &str) -> Self {
        self.server_extra.push(line.to_string());
        self
    }
    /// Force a driver regardless of RINGWAY_TEST_DRIVER.
    pub fn driver(mut self, d: &str) -> Self {
        self.driver = Some(d.to_string());
        self
    }
    pub fn workers(mut self, n: u32) -> Self {
        self.workers = n;
        self
    }
    /// Listen on this port instead of a fresh free one.
    pub fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }

    fn render(&self, port: u16, extra: &[u16]) -> String {
        let driver = self.driver.clone().unwrap_or_else(test_driver);
        let mut listen = format!("\"127.0.0.1:{port}\"");
        for p in extra {
            listen.push_str(&format!(", \"127.0.0.1:{p}\""));
        }
        let mut s = format!("[server]\nlisten = [{listen}]\nworkers = {}\ndriver = \"{driver}\"\n", self.workers);
        for l in &self.server_extra {
            s.push_str(l);
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.body);
        s.push('\n');
        s
    }

    /// Start the process without waiting for readiness.
    pub fn spawn(&self) -> Gateway {
        let port = self.port.unwrap_or_else(free_port);
        let extra: Vec<u16> = (0..self.extra_ports).map(|_| free_port()).collect();
        let config = self.render(port, &extra);
        let file = TempFile::new(&config);
        let path = file.path.to_str().unwrap().to_string();
        let mut gw = Gateway::spawn_args(&["run", "--config", &path], port);
        gw.config = config;
        gw.config_file = Some(file);
        gw.extra_ports = extra;
        gw
    }

    /// Start and wait (bounded) for `ringway: ready`. Panics with the stderr
    /// text if it does not come. Retries on a fresh port when a randomly picked
    /// port turned out to be taken in the meantime.
    pub fn start(&self) -> Gateway {
        let attempts = if self.port.is_some() { 1 } else { 3 };
        let mut last = String::new();
        for _ in 0..attempts {
            let mut gw = self.spawn();
            match gw.wait_ready(READY_TIMEOUT) {
                Ok(()) => return gw,
                Err(e) => {
                    last = e;
                    if !last.contains("already in use") {
                        break;
                    }
                }
            }
        }
        panic!("ringway did not become ready: {last}");
    }
}

pub struct Gateway {
    child: Child,
    port: u16,
    /// Further listen ports (builder's `extra_listeners`).
    pub extra_ports: Vec<u16>,
    config_file: Option<TempFile>,
    pub config: String,
    log: Arc<LogBuf>,
    out: Arc<LogBuf>,
    exit: Option<ExitStatus>,
}

impl Gateway {
    /// Start with the default options (see [`GatewayBuilder`]).
    pub fn start(body: &str) -> Gateway {
        Gateway::builder(body).start()
    }

    pub fn builder(body: &str) -> GatewayBuilder {
        GatewayBuilder {
            body: body.to_string(),
            server_extra: Vec::new(),
            driver: None,
            workers: 2,
            port: None,
            extra_ports: 0,
        }
    }

    /// Spawn `ringway ARGS...` as a server expected on `port` (no config file
    /// is generated: e.g. `run` with the embedded demo config).
    pub fn spawn_args(args: &[&str], port: u16) -> Gateway {
        let mut child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringway");
        let log = LogBuf::new();
        log.collect(child.stderr.take().unwrap());
        let out = LogBuf::new();
        out.collect(child.stdout.take().unwrap());
        Gateway { child, port, extra_ports: Vec::new(), config_file: None, config: String::new(), log, out, exit: None }
    }

    /// Wait for `ringway: ready`; Err with exit status and stderr otherwise.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        if self.log.wait_for("ringway: ready", timeout) {
            return Ok(());
        }
        let status = self.wait_exit(Duration::from_millis(500));
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.log.wait_eof(Duration::from_secs(1));
        Err(format!("exit status {:?}\n--- config ---\n{}\n--- stderr ---\n{}", status, self.config, self.log.get()))
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn config_path(&self) -> &Path {
        &self.config_file.as_ref().expect("no generated config").path
    }
    pub fn stderr_text(&self) -> String {
        self.log.get()
    }
    pub fn stdout_text(&self) -> String {
        self.out.get()
    }
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        self.log.wait_for(needle, timeout)
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("run kill");
        assert!(st.success(), "kill -{sig} {} failed", self.pid());
    }
    pub fn sigterm(&self) {
        self.signal("TERM")
    }
    pub fn sigint(&self) {
        self.signal("INT")
    }

    /// Wait for the process to exit; None if still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.exit {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.exit = Some(s);
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size in kB (VmRSS from /proc/PID/status).
    pub fn rss_kb(&self) -> u64 {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("read /proc/PID/status");
        for line in s.lines() {
            if let Some(rest) = line.strip_prefix("VmRSS:") {
                return rest.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
        panic!("no VmRSS in /proc/{}/status", self.pid());
    }

    /// New raw client connection to the gateway.
    #[track_caller]
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr())
    }

    /// One request on a fresh connection; returns the response.
    #[track_caller]
    pub fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut c = self.connect();
        c.send(&request(method, target, headers, body));
        if method.eq_ignore_ascii_case("HEAD") {
            c.read_head_response()
        } else {
            c.read_response()
        }
    }

    #[track_caller]
    pub fn get(&self, target: &str) -> Response {
        self.send("GET", target, &[], b"")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

/// Run `ringway ARGS...` to completion (bounded) and capture its output.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_cli(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringway");
    let out = LogBuf::new();
    out.collect(child.stdout.take().unwrap());
    let err = LogBuf::new();
    err.collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringway {args:?} did not exit within 10 s; stderr: {}", err.get());
        }
        thread::sleep(Duration::from_millis(10));
    };
    out.wait_eof(Duration::from_secs(2));
    err.wait_eof(Duration::from_secs(2));
    Output { status, stdout: out.get(), stderr: err.get() }
}

// ---------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Raw head bytes (status line + headers + blank line), for diagnostics.
    pub head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        find_headers(&self.headers, name)
    }
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// True when the response asks the client to close the connection.
    pub fn connection_close(&self) -> bool {
        self.headers_all("connection").iter().any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
    pub fn is_chunked(&self) -> bool {
        self.headers_all("transfer-encoding").iter().any(|v| v.to_ascii_lowercase().contains("chunked"))
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(400).collect();
        write!(f, "{}{}", self.head, body)
    }
}

/// Result of waiting for the peer to close.
#[derive(Debug, PartialEq, Eq)]
pub enum CloseState {
    /// EOF or reset seen.
    Closed,
    /// Still open at the deadline (nothing received).
    Open,
    /// The peer sent more bytes (a desync symptom after a final response).
    Data(String),
}

pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Overall deadline for one read_response call.
    pub timeout: Duration,
    eof: bool,
}

impl Conn {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Conn {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(s) => Conn::from_stream(s),
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }

    pub fn try_connect(addr: SocketAddr) -> io::Result<Conn> {
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map(Conn::from_stream)
    }

    pub fn from_stream(stream: TcpStream) -> Conn {
        stream.set_nodelay(true).ok();
        stream.set_write_timeout(Some(Duration::from_secs(10))).ok();
        Conn { stream, buf: Vec::new(), timeout: DEFAULT_IO_TIMEOUT, eof: false }
    }

    pub fn with_timeout(mut self, t: Duration) -> Conn {
        self.timeout = t;
        self
    }

    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes) {
            panic!("client write: {e}");
        }
    }
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }
    pub fn send_str(&mut self, s: &str) {
        self.send(s.as_bytes())
    }

    /// Bytes received but not yet consumed by a parsed response.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }

    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.eof {
            return Ok(0);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline"));
        }
        self.stream.set_read_timeout(Some(deadline - now))?;
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Err(io::Error::new(io::ErrorKind::TimedOut, "read timed out"))
            }
            Err(e) => Err(e),
        }
    }

    fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            match self.fill(deadline) {
                Ok(0) => return Err("connection closed inside a line".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading line: {e}")),
            }
        }
    }

    fn read_exact_with(&mut self, mut n: u64, deadline: Instant, sink: &mut dyn FnMut(&[u8])) -> Result<(), String> {
        while n > 0 {
            if self.buf.is_empty() {
                match self.fill(deadline) {
                    Ok(0) => return Err(format!("connection closed with {n} body bytes missing")),
                    Ok(_) => {}
                    Err(e) => return Err(format!("reading body ({n} bytes missing): {e}")),
                }
            }
            let take = (self.buf.len() as u64).min(n) as usize;
            sink(&self.buf[..take]);
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Read a response head (status line and headers). Err on timeout/EOF.
    pub fn try_read_head(&mut self) -> Result<Response, String> {
        let deadline = Instant::now() + self.timeout;
        self.read_head_until(deadline)
    }

    fn read_head_until(&mut self, deadline: Instant) -> Result<Response, String> {
        let end = loop {
            if let Some(i) = find_subslice(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            match self.fill(deadline) {
                Ok(0) => {
                    return Err(format!(
                        "connection closed before a complete response head (got {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "no complete response head: {e} (got {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ))
                }
            }
        };
        let head_bytes: Vec<u8> = self.buf.drain(..end).collect();
        let head = String::from_utf8_lossy(&head_bytes).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 =
            parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| format!("bad status line {status_line:?}"))?;
        if !version.starts_with("HTTP/1.") {
            return Err(format!("bad status line {status_line:?}"));
        }
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let (k, v) = l.split_once(':').ok_or_else(|| format!("bad header line {l:?}"))?;
            headers.push((k.to_string(), v.trim().to_string()));
        }
        Ok(Response { version, status, reason, headers, body: Vec::new(), head })
    }

    /// Read the body of `resp` (whose head was just read), feeding it to `sink`.
    /// `no_body`: response to HEAD (or otherwise known to have no body).
    pub fn read_body_with(
        &mut self,
        resp: &Response,
        no_body: bool,
        deadline: Instant,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(), String> {
        if no_body || resp.status < 200 || resp.status == 204 || resp.status == 304 {
            return Ok(());
        }
        if resp.is_chunked() {
            loop {
                let line = self.read_line(deadline)?;
                let line = String::from_utf8_lossy(&line).into_owned();
                let size_str = line.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_str, 16).map_err(|_| format!("bad chunk size line {line:?}"))?;
                if size == 0 {
                    // trailers
                    loop {
                        let t = self.read_line(deadline)?;
                        if t.is_empty() {
                            return Ok(());
                        }
                    }
                }
                self.read_exact_with(size, deadline, sink)?;
                let crlf = self.read_line(deadline)?;
                if !crlf.is_empty() {
                    return Err("chunk data not followed by CRLF".into());
                }
            }
        } else if let Some(cl) = resp.header("content-length") {
            let n: u64 = cl.trim().parse().map_err(|_| format!("bad content-length {cl:?}"))?;
            self.read_exact_with(n, deadline, sink)
        } else {
            // close-delimited
            loop {
                if !self.buf.is_empty() {
                    sink(&self.buf);
                    self.buf.clear();
                }
                match self.fill(deadline) {
                    Ok(0) => return Ok(()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                    Err(e) => return Err(format!("reading close-delimited body: {e}")),
                }
            }
        }
    }

    fn read_full(&mut self, no_body: bool) -> Result<Response, String> {
        let deadline = Instant::now() + self.timeout;
        let mut resp = self.read_head_until(deadline)?;
        let mut body = Vec::new();
        self.read_body_with(&resp, no_body, deadline, &mut |b| body.extend_from_slice(b))
            .map_err(|e| format!("{e}; head was:\n{}", resp.head))?;
        resp.body = body;
        Ok(resp)
    }

    /// Read one complete response (interim 1xx responses are returned as such).
    pub fn try_read_response(&mut self) -> Result<Response, String> {
        self.read_full(false)
    }

    #[track_caller]
    pub fn read_response(&mut self) -> Response {
        match self.try_read_response() {
            Ok(r) => r,
            Err(e) => panic!("reading response: {e}"),
        }
    }

    /// Read one final response, skipping interim 1xx responses.
    #[track_caller]
    pub fn read_final_response(&mut self) -> Response {
        loop {
            let r = self.read_response();
            if r.status >= 200 {
                return r;
            }
        }
    }

    /// Response to a HEAD request: head only, no body whatever the headers say.
    #[track_caller]
    pub fn read_head_response(&mut self) -> Response {
        match self.read_full(true) {
            Ok(r) => r,
            Err(e) => panic!("reading HEAD response: {e}"),
        }
    }

    /// Send a request and read its response.
    #[track_caller]
    pub fn roundtrip(&mut self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        self.send(&request(method, target, headers, body));
        if method.eq_ignore_ascii_case("HEAD") {
            self.read_head_response()
        } else {
            self.read_response()
        }
    }

    /// Wait until the peer closes the connection (EOF or reset), up to `within`.
    pub fn wait_closed(&mut self, within: Duration) -> CloseState {
        if !self.buf.is_empty() {
            return CloseState::Data(String::from_utf8_lossy(&self.buf).into_owned());
        }
        let deadline = Instant::now() + within;
        match self.fill(deadline) {
            Ok(0) => CloseState::Closed,
            Ok(_) => CloseState::Data(String::from_utf8_lossy(&self.buf).into_owned()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => CloseState::Open,
            Err(_) => CloseState::Closed, // reset / aborted
        }
    }

    /// Like [`wait_closed`], but any bytes received before the close are
    /// collected and returned (e.g. an optional 408 before a timeout close).
    pub fn drain_until_closed(&mut self, within: Duration) -> (bool, Vec<u8>) {
        let deadline = Instant::now() + within;
        loop {
            match self.fill(deadline) {
                Ok(0) => return (true, std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return (false, std::mem::take(&mut self.buf)),
                Err(_) => return (true, std::mem::take(&mut self.buf)),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Upstream test server
// ---------------------------------------------------------------------------

/// A request as the upstream received it (body de-chunked).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    /// Body bytes (only the first 1 MiB kept; see `body_len`).
    pub body: Vec<u8>,
    pub body_len: u64,
    /// True when the body arrived with chunked framing.
    pub chunked: bool,
    /// Which accepted connection (0-based) and which request on it (0-based).
    pub conn_id: usize,
    pub index_on_conn: usize,
    pub peer: SocketAddr,
}

const KEEP_BODY: usize = 1 << 20;

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        find_headers(&self.headers, name)
    }
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn wants_close(&self) -> bool {
        let conn: Vec<String> = self
            .headers_all("connection")
            .iter()
            .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()))
            .collect();
        if conn.iter().any(|t| t == "close") {
            return true;
        }
        self.version == "HTTP/1.0" && !conn.iter().any(|t| t == "keep-alive")
    }
}

#[derive(Clone, Debug)]
pub enum Body {
    /// Content-Length framed (added unless the headers carry one).
    Fixed(Vec<u8>),
    /// Transfer-Encoding: chunked, one chunk per element.
    Chunked(Vec<Vec<u8>>),
    /// No Content-Length, no chunking: body ends when the server closes.
    CloseDelimited(Vec<u8>),
    /// `len` bytes of [`pattern_byte`] generated on the fly, Content-Length framed.
    Huge(u64),
    /// Headers only; no body bytes (the caller may put a Content-Length header,
    /// e.g. for HEAD or 204/304).
    Empty,
}

#[derive(Clone, Debug)]
pub enum Action {
    Respond,
    /// Close the connection without writing anything.
    Close,
    /// Write these exact bytes, then keep going (or close if `close_after`).
    Raw(Vec<u8>),
}

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub delay: Duration,
    /// Close the connection silently (no `Connection: close`) after responding.
    pub close_after: bool,
    pub action: Action,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Fixed(Vec::new()),
            delay: Duration::ZERO,
            close_after: false,
            action: Action::Respond,
        }
    }
    pub fn ok(body: &str) -> Reply {
        Reply::new(200).body(body.as_bytes())
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: &[u8]) -> Reply {
        self.body = Body::Fixed(b.to_vec());
        self
    }
    pub fn chunked(mut self, chunks: &[&[u8]]) -> Reply {
        self.body = Body::Chunked(chunks.iter().map(|c| c.to_vec()).collect());
        self
    }
    pub fn close_delimited(mut self, b: &[u8]) -> Reply {
        self.body = Body::CloseDelimited(b.to_vec());
        self
    }
    pub fn huge(mut self, len: u64) -> Reply {
        self.body = Body::Huge(len);
        self
    }
    pub fn empty(mut self) -> Reply {
        self.body = Body::Empty;
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
    pub fn close_after(mut self) -> Reply {
        self.close_after = true;
        self
    }
    /// Close the connection without responding.
    pub fn close() -> Reply {
        let mut r = Reply::new(0);
        r.action = Action::Close;
        r
    }
    pub fn raw(bytes: &[u8]) -> Reply {
        let mut r = Reply::new(0);
        r.action = Action::Raw(bytes.to_vec());
        r
    }
    /// 200 text/plain with body `"{METHOD} {TARGET}\n" + request body`.
    pub fn echo(req: &Req) -> Reply {
        let mut b = format!("{} {}\n", req.method, req.target).into_bytes();
        b.extend_from_slice(&req.body);
        Reply::new(200).header("Content-Type", "text/plain").body(&b)
    }
}

type Handler = Arc<dyn Fn(&Req) -> Reply + Send + Sync>;

struct UpState {
    requests: Mutex<Vec<Req>>,
    cv: Condvar,
    conns: AtomicUsize,
    closed: AtomicUsize,
    stop: AtomicBool,
    handler: Handler,
    /// Head bytes of requests that arrived but could not be completed/parsed.
    partial: Mutex<Vec<String>>,
}

pub struct Upstream {
    addr: SocketAddr,
    st: Arc<UpState>,
}

impl Upstream {
    pub fn start<F>(handler: F) -> Upstream
    where
        F: Fn(&Req) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("upstream bind");
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(UpState {
            requests: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            conns: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            handler: Arc::new(handler),
            partial: Mutex::new(Vec::new()),
        });
        let st2 = st.clone();
        thread::spawn(move || {
            for s in listener.incoming() {
                if st2.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                let id = st2.conns.fetch_add(1, Ordering::SeqCst);
                let st3 = st2.clone();
                thread::spawn(move || {
                    serve_conn(s, id, &st3);
                    st3.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Upstream { addr, st }
    }

    /// Always answer 200 with this body (Content-Length framed).
    pub fn fixed(body: &str) -> Upstream {
        let b = body.to_string();
        Upstream::start(move |_| Reply::ok(&b))
    }

    /// Answer every request with [`Reply::echo`].
    pub fn echo() -> Upstream {
        Upstream::start(Reply::echo)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    /// "127.0.0.1:PORT"
    pub fn hostport(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
    pub fn requests(&self) -> Vec<Req> {
        self.st.requests.lock().unwrap().clone()
    }
    pub fn request_count(&self) -> usize {
        self.st.requests.lock().unwrap().len()
    }
    pub fn last_request(&self) -> Req {
        self.requests().pop().expect("upstream received no request")
    }
    /// Number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.st.conns.load(Ordering::SeqCst)
    }
    /// Number of accepted connections that have ended (peer closed or we closed).
    pub fn closed_connections(&self) -> usize {
        self.st.closed.load(Ordering::SeqCst)
    }
    /// Heads of requests that started arriving but never completed.
    pub fn partial_requests(&self) -> Vec<String> {
        self.st.partial.lock().unwrap().clone()
    }
    /// Wait until at least `n` requests were recorded; returns them.
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Req> {
        let deadline = Instant::now() + timeout;
        let mut g = self.st.requests.lock().unwrap();
        while g.len() < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = self.st.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
        g.clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.st.stop.store(true, Ordering::SeqCst);
        // unblock accept()
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

struct UpConn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl UpConn {
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = self.s.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }
    fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(l);
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
    fn exact(&mut self, mut n: u64, out: &mut Vec<u8>, len: &mut u64) -> io::Result<()> {
        while n > 0 {
            if self.buf.is_empty() && self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = (self.buf.len() as u64).min(n) as usize;
            if out.len() < KEEP_BODY {
                let room = KEEP_BODY - out.len();
                out.extend_from_slice(&self.buf[..take.min(room)]);
            }
            *len += take as u64;
            self.buf.drain(..take);
            n -= take as u64;
        }
        Ok(())
    }
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn serve_conn(s: TcpStream, conn_id: usize, st: &UpState) {
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.set_write_timeout(Some(Duration::from_secs(30))).ok();
    s.set_nodelay(true).ok();
    let peer = s.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut c = UpConn { s, buf: Vec::new() };
    let mut index = 0usize;
    loop {
        // --- head ---
        let end = loop {
            if let Some(i) = find_subslice(&c.buf, b"\r\n\r\n") {
                break i + 4;
            }
            match c.fill() {
                Ok(0) | Err(_) => {
                    if !c.buf.is_empty() {
                        st.partial.lock().unwrap().push(String::from_utf8_lossy(&c.buf).into_owned());
                    }
                    return;
                }
                Ok(_) => {}
            }
        };
        let head_bytes: Vec<u8> = c.buf.drain(..end).collect();
        let head = String::from_utf8_lossy(&head_bytes).into_owned();
        let mut lines = head.split("\r\n");
        let rl = lines.next().unwrap_or("");
        let mut parts = rl.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.to_string(), v.trim().to_string()));
            }
        }
        let expect_continue =
            find_header(&headers, "expect").map(|v| v.eq_ignore_ascii_case("100-continue")).unwrap_or(false);
        if expect_continue && c.s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return;
        }
        // --- body ---
        let is_chunked =
            find_headers(&headers, "transfer-encoding").iter().any(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut body = Vec::new();
        let mut body_len = 0u64;
        let res: io::Result<()> = (|| {
            if is_chunked {
                loop {
                    let l = c.line()?;
                    let l = String::from_utf8_lossy(&l).into_owned();
                    let size = u64::from_str_radix(l.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                    if size == 0 {
                        loop {
                            if c.line()?.is_empty() {
                                return Ok(());
                            }
                        }
                    }
                    c.exact(size, &mut body, &mut body_len)?;
                    if !c.line()?.is_empty() {
                        return Err(bad("chunk crlf"));
                    }
                }
            } else if let Some(cl) = find_header(&headers, "content-length") {
                let n: u64 = cl.trim().parse().map_err(|_| bad("content-length"))?;
                c.exact(n, &mut body, &mut body_len)
            } else {
                Ok(())
            }
        })();
        if res.is_err() {
            st.partial.lock().unwrap().push(head);
            return;
        }
        let req = Req {
            method,
            target,
            version,
            headers,
            body,
            body_len,
            chunked: is_chunked,
            conn_id,
            index_on_conn: index,
            peer,
        };
        index += 1;
        {
            let mut g = st.requests.lock().unwrap();
            g.push(req.clone());
            st.cv.notify_all();
        }
        let reply = (st.handler)(&req);
        if !reply.delay.is_zero() {
            thread::sleep(reply.delay);
        }
        let is_head = req.method.eq_ignore_ascii_case("HEAD");
        let mut close = reply.close_after || req.wants_close();
        let ok = match &reply.action {
            Action::Close => {
                let _ = c.s.shutdown(Shutdown::Both);
                return;
            }
            Action::Raw(b) => c.s.write_all(b).is_ok(),
            Action::Respond => {
                if matches!(reply.body, Body::CloseDelimited(_)) {
                    close = true;
                }
                write_reply(&mut c.s, &reply, is_head, req.wants_close()).is_ok()
            }
        };
        if !ok || close {
            let _ = c.s.flush();
            let _ = c.s.shutdown(Shutdown::Write);
            // let the peer read everything, then drop
            let _ = c.s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut sink = [0u8; 4096];
            while let Ok(n) = c.s.read(&mut sink) {
                if n == 0 {
                    break;
                }
            }
            return;
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        418 => "I'm a teapot",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_reply(s: &mut TcpStream, r: &Reply, is_head: bool, req_close: bool) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_cl = find_header(&r.headers, "content-length").is_some();
    match &r.body {
        Body::Fixed(b) if !has_cl => head.push_str(&format!("Content-Length: {}\r\n", b.len())),
        Body::Huge(n) if !has_cl => head.push_str(&format!("Content-Length: {n}\r\n")),
        Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
        _ => {}
    }
    if req_close || matches!(r.body, Body::CloseDelimited(_)) {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if is_head {
        return s.write_all(&out);
    }
    match &r.body {
        Body::Fixed(b) | Body::CloseDelimited(b) => {
            out.extend_from_slice(b);
            s.write_all(&out)
        }
        Body::Chunked(chunks) => {
            for c in chunks {
                if c.is_empty() {
                    continue;
                }
                out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend_from_slice(c);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
            s.write_all(&out)
        }
        Body::Huge(n) => {
            s.write_all(&out)?;
            let mut block = vec![0u8; 64 * 1024];
            let mut off = 0u64;
            while off < *n {
                let take = ((*n - off) as usize).min(block.len());
                for (i, b) in block[..take].iter_mut().enumerate() {
                    *b = pattern_byte(off + i as u64);
                }
                s.write_all(&block[..take])?;
                off += take as u64;
            }
            Ok(())
        }
        Body::Empty => s.write_all(&out),
    }
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
