//! A raw HTTP/1.1 client: arbitrary bytes out, parsed responses in, every read bounded.
#![allow(dead_code)]

use super::*;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

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
