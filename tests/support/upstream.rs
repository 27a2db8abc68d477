//! A real HTTP/1.1 origin server on loopback that records requests and answers per test.
#![allow(dead_code)]

use super::*;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

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
    /// Socket path when the server listens on a Unix domain socket.
    unix: Option<std::path::PathBuf>,
}

impl Upstream {
    pub fn start<F>(handler: F) -> Upstream
    where
        F: Fn(&Req) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("upstream bind");
        let addr = listener.local_addr().unwrap();
        let st = Self::state(handler);
        let st2 = st.clone();
        thread::spawn(move || {
            for s in listener.incoming() {
                if st2.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                Self::spawn_conn(s, &st2);
            }
        });
        Upstream { addr, st, unix: None }
    }

    /// The same server on a Unix domain socket at `path` (a private backend).
    pub fn start_unix<F>(path: &std::path::Path, handler: F) -> Upstream
    where
        F: Fn(&Req) -> Reply + Send + Sync + 'static,
    {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let _ = std::fs::remove_file(path);
        let listener = std::os::unix::net::UnixListener::bind(path).expect("unix upstream bind");
        let st = Self::state(handler);
        let st2 = st.clone();
        thread::spawn(move || {
            for s in listener.incoming() {
                if st2.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                // std has no stream type over both families; every call the server makes
                // (read, write, shutdown, timeouts) is the same syscall on a Unix socket.
                let s = unsafe { TcpStream::from_raw_fd(s.into_raw_fd()) };
                Self::spawn_conn(s, &st2);
            }
        });
        Upstream { addr: SocketAddr::from(([0, 0, 0, 0], 0)), st, unix: Some(path.to_path_buf()) }
    }

    fn spawn_conn(s: TcpStream, st: &Arc<UpState>) {
        let id = st.conns.fetch_add(1, Ordering::SeqCst);
        let st3 = st.clone();
        thread::spawn(move || {
            serve_conn(s, id, &st3);
            st3.closed.fetch_add(1, Ordering::SeqCst);
        });
    }

    fn state<F>(handler: F) -> Arc<UpState>
    where
        F: Fn(&Req) -> Reply + Send + Sync + 'static,
    {
        Arc::new(UpState {
            requests: Mutex::new(Vec::new()),
            cv: Condvar::new(),
            conns: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            handler: Arc::new(handler),
            partial: Mutex::new(Vec::new()),
        })
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
        match &self.unix {
            Some(p) => {
                let _ = std::os::unix::net::UnixStream::connect(p);
                let _ = std::fs::remove_file(p);
            }
            None => {
                let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
            }
        }
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
