//! The real `ringway` binary under test: config file, process, readiness, stderr, CLI runs.
#![allow(dead_code)]

use super::*;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
    env: Vec<(String, String)>,
}

impl GatewayBuilder {
    /// An environment variable for the gateway process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
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

    fn render(&self, port: u16, extra: &[u16], admin: u16) -> String {
        let driver = self.driver.clone().unwrap_or_else(test_driver);
        let mut listen = format!("\"127.0.0.1:{port}\"");
        for p in extra {
            listen.push_str(&format!(", \"127.0.0.1:{p}\""));
        }
        let mut s = format!("[server]\nlisten = [{listen}]\nworkers = {}\ndriver = \"{driver}\"\n", self.workers);
        if !self.server_extra.iter().any(|l| l.trim_start().starts_with("admin_listen")) {
            s.push_str(&format!("admin_listen = \"127.0.0.1:{admin}\"\n"));
        }
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
        let admin = free_port();
        let config = self.render(port, &extra, admin);
        let file = TempFile::new(&config);
        let path = file.path.to_str().unwrap().to_string();
        let mut gw = Gateway::spawn_args_env(&["run", "--config", &path], port, &self.env);
        gw.config = config;
        gw.config_file = Some(file);
        gw.extra_ports = extra;
        gw.admin_port = admin;
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
    /// The admin listener's port (`admin_listen`, unless the test set its own).
    pub admin_port: u16,
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
            env: Vec::new(),
        }
    }

    /// Spawn `ringway ARGS...` as a server expected on `port` (no config file
    /// is generated: e.g. `run` with the embedded demo config).
    pub fn spawn_args(args: &[&str], port: u16) -> Gateway {
        Gateway::spawn_args_env(args, port, &[])
    }

    /// `spawn_args` with extra environment variables.
    pub fn spawn_args_env(args: &[&str], port: u16, env: &[(String, String)]) -> Gateway {
        let (child, out, log) = spawn_piped(args, env);
        Gateway {
            child,
            port,
            extra_ports: Vec::new(),
            admin_port: 9901,
            config_file: None,
            config: String::new(),
            log,
            out,
            exit: None,
        }
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
    pub fn sigusr1(&self) {
        self.signal("USR1")
    }
    pub fn sighup(&self) {
        self.signal("HUP")
    }

    /// Replaces `from` with `to` in the running gateway's config file (for reload tests).
    #[track_caller]
    pub fn edit_config(&self, from: &str, to: &str) {
        let path = self.config_path();
        let text = std::fs::read_to_string(path).expect("read config");
        assert!(text.contains(from), "config has no {from:?}");
        std::fs::write(path, text.replacen(from, to, 1)).expect("write config");
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

    /// The admin listener's port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// One request to the admin listener (`admin_listen`).
    #[track_caller]
    pub fn admin(&self, method: &str, target: &str) -> Response {
        let mut c = Conn::connect(SocketAddr::from(([127, 0, 0, 1], self.admin_port)));
        c.send(&request(method, target, &[], b""));
        c.read_response()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A failing test shows what the gateway said (a worker's panic, a refused config).
        if std::thread::panicking() {
            let text = self.stderr_text();
            let mut start = text.len().saturating_sub(8000);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            let tail = &text[start..];
            let tail = tail.find('\n').map_or(tail, |i| &tail[i + 1..]);
            eprintln!("--- gateway stderr (port {}), last lines ---\n{tail}", self.port);
        }
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

/// Starts `ringway ARGS...` with stdout and stderr collected in the background.
fn spawn_piped(args: &[&str], env: &[(String, String)]) -> (Child, Arc<LogBuf>, Arc<LogBuf>) {
    let mut child = ringway_command()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringway");
    let out = LogBuf::new();
    out.collect(child.stdout.take().unwrap());
    let err = LogBuf::new();
    err.collect(child.stderr.take().unwrap());
    (child, out, err)
}

pub fn run_cli(args: &[&str]) -> Output {
    let (mut child, out, err) = spawn_piped(args, &[]);
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
