//! Access logs in API Gateway's model: an operator format of text and `$context.*`
//! variables, rendered per request into a per-worker buffer (no lock, no allocation, no
//! syscall) and written in batches at a size threshold, on the worker's timer and at drop.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default batch size: `log` writes the buffer once it holds this many bytes.
pub const FLUSH_AT: usize = 64 * 1024;
/// Default buffer cap: past it lines are dropped and counted instead of blocking.
pub const CAP: usize = 4 * 1024 * 1024;
/// How long `Drop` waits for a slow pipe or socket before giving up on the rest.
const DROP_PATIENCE: Duration = Duration::from_secs(1);
/// Writes to a pipe go in chunks this size after poll says writable, so they never block.
const PIPE_CHUNK: usize = libc::PIPE_BUF;

/// A compiled format: literal runs and variables, rendered in order.
#[derive(Debug, Clone)]
pub struct Format {
    pieces: Vec<Piece>,
    json: bool,
    /// Names after `$context.authorizer.`, indexed by `Var::Authorizer`.
    authorizer_names: Vec<Box<str>>,
}

#[derive(Debug, Clone)]
enum Piece {
    Lit(Box<[u8]>),
    Var(Var),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    RequestId,
    SourceIp,
    UserAgent,
    ApiKeyId,
    HttpMethod,
    Path,
    ResourcePath,
    RouteKey,
    Protocol,
    Status,
    ResponseLength,
    RequestTime,
    RequestTimeEpoch,
    ResponseLatency,
    IntegrationLatency,
    IntegrationStatus,
    IntegrationError,
    ErrorMessage,
    ErrorType,
    Stage,
    DomainName,
    ApiId,
    Upstream,
    Cache,
    /// `$context.authorizer.NAME` (`claims.X`, `principalId`, a context key): index of NAME.
    Authorizer(u16),
    /// Known to API Gateway, never set by ringway (in the console's CLF preset): `-`.
    Absent,
}

/// `$context.NAME` -> variable. Aliases render the same field.
const VARS: &[(&str, Var)] = &[
    ("requestId", Var::RequestId),
    ("extendedRequestId", Var::RequestId),
    ("identity.sourceIp", Var::SourceIp),
    ("identity.userAgent", Var::UserAgent),
    ("identity.apiKeyId", Var::ApiKeyId),
    ("identity.caller", Var::Absent),
    ("identity.user", Var::Absent),
    ("httpMethod", Var::HttpMethod),
    ("path", Var::Path),
    ("resourcePath", Var::ResourcePath),
    ("routeKey", Var::RouteKey),
    ("protocol", Var::Protocol),
    ("status", Var::Status),
    ("responseLength", Var::ResponseLength),
    ("requestTime", Var::RequestTime),
    ("requestTimeEpoch", Var::RequestTimeEpoch),
    ("responseLatency", Var::ResponseLatency),
    ("integrationLatency", Var::IntegrationLatency),
    ("integration.latency", Var::IntegrationLatency),
    ("integrationStatus", Var::IntegrationStatus),
    ("integration.status", Var::IntegrationStatus),
    ("integration.integrationStatus", Var::IntegrationStatus),
    ("integration.error", Var::IntegrationError),
    ("integrationErrorMessage", Var::IntegrationError),
    ("error.message", Var::ErrorMessage),
    ("error.responseType", Var::ErrorType),
    ("stage", Var::Stage),
    ("domainName", Var::DomainName),
    ("apiId", Var::ApiId),
    ("upstream", Var::Upstream),
    ("cache", Var::Cache),
];

/// Compiles an access-log format. `$context.NAME` takes the longest run of name
/// characters (letters, digits, `_`, and `.` followed by one of those); `${context.NAME}`
/// delimits it explicitly. Any other `$` is literal. One trailing line break is dropped
/// (every line gets its own); a line break elsewhere is an error. JSON escaping of values
/// is on when the format starts with `{`.
pub fn compile(format: &str) -> Result<Format, String> {
    let f = format.strip_suffix("\r\n").or_else(|| format.strip_suffix('\n')).unwrap_or(format);
    let b = f.as_bytes();
    if let Some(at) = memchr::memchr2(b'\n', b'\r', b) {
        return Err(format!("access log format: line break at byte {at} (a format is one line)"));
    }
    let mut pieces = Vec::new();
    let mut authorizer_names: Vec<Box<str>> = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(d) = memchr::memchr(b'$', &b[i..]) else {
            lit.extend_from_slice(&b[i..]);
            break;
        };
        let at = i + d;
        lit.extend_from_slice(&b[i..at]);
        let rest = &f[at..];
        let (name, end) = if let Some(r) = rest.strip_prefix("${context.") {
            let Some(close) = r.find('}') else {
                return Err(format!("access log format: unclosed `${{` at byte {at}"));
            };
            (&r[..close], at + 10 + close + 1)
        } else if let Some(r) = rest.strip_prefix("$context.") {
            let n = name_len(r.as_bytes());
            (&r[..n], at + 9 + n)
        } else {
            lit.push(b'$');
            i = at + 1;
            continue;
        };
        let found = match name.strip_prefix("authorizer.").filter(|n| !n.is_empty()) {
            Some(n) => {
                authorizer_names.push(n.into());
                Some(Var::Authorizer(authorizer_names.len() as u16 - 1))
            }
            None => VARS.iter().find(|(n, _)| *n == name).map(|&(_, v)| v),
        };
        let Some(var) = found else {
            return Err(if name.is_empty() {
                format!("access log format: empty variable name at byte {at}")
            } else {
                format!("access log format: unknown variable `$context.{name}` at byte {at}")
            });
        };
        if !lit.is_empty() {
            pieces.push(Piece::Lit(std::mem::take(&mut lit).into()));
        }
        pieces.push(Piece::Var(var));
        i = end;
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit.into()));
    }
    Ok(Format { pieces, json: f.trim_start().starts_with('{'), authorizer_names })
}

/// Length of the variable name at the start of `b`.
fn name_len(b: &[u8]) -> usize {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut n = 0;
    while n < b.len() {
        if word(b[n]) || (b[n] == b'.' && n > 0 && b.get(n + 1).is_some_and(|&c| word(c))) {
            n += 1;
        } else {
            break;
        }
    }
    n
}

impl Format {
    /// Whether values are JSON-string escaped (the format supplies the quotes).
    pub fn json_escape(&self) -> bool {
        self.json
    }

    /// Overrides the JSON mode chosen from the format's first character.
    pub fn set_json_escape(&mut self, on: bool) {
        self.json = on;
    }

    /// Appends one line, newline included, to `out`.
    pub fn render(&self, r: &Record, out: &mut Vec<u8>) {
        for p in &self.pieces {
            match p {
                Piece::Lit(l) => out.extend_from_slice(l),
                Piece::Var(v) => self.value(*v, r, out),
            }
        }
        out.push(b'\n');
    }

    fn value(&self, v: Var, r: &Record, out: &mut Vec<u8>) {
        let json = self.json;
        match v {
            Var::RequestId => text(out, Some(r.request_id), json),
            Var::SourceIp => text(out, Some(r.source_ip.as_bytes()), json),
            Var::UserAgent => text(out, r.user_agent, json),
            Var::ApiKeyId => text(out, r.api_key_id.map(str::as_bytes), json),
            Var::HttpMethod => text(out, Some(r.method), json),
            Var::Path => text(out, Some(r.path), json),
            Var::ResourcePath => text(out, r.resource_path.map(str::as_bytes), json),
            Var::RouteKey => match r.resource_path {
                Some(res) => {
                    text(out, Some(r.method), json);
                    out.push(b' ');
                    text(out, Some(res.as_bytes()), json);
                }
                None => out.push(b'-'),
            },
            Var::Protocol => text(out, Some(r.protocol.as_bytes()), json),
            Var::Status => push_u64(out, u64::from(r.status)),
            Var::ResponseLength => push_u64(out, r.response_length),
            Var::RequestTime => push_clf_time(out, r.request_time_ms),
            Var::RequestTimeEpoch => push_u64(out, r.request_time_ms),
            Var::ResponseLatency => push_u64(out, r.response_latency_us / 1000),
            Var::IntegrationLatency => match r.integration_latency_us {
                _ if r.integration_timed_out => out.extend_from_slice(b"-1"),
                Some(us) => push_u64(out, us / 1000),
                None => out.push(b'-'),
            },
            Var::IntegrationStatus => match r.integration_status {
                Some(s) => push_u64(out, u64::from(s)),
                None => out.push(b'-'),
            },
            // The error message when the integration caused it (INTEGRATION_FAILURE,
            // INTEGRATION_TIMEOUT); `-` for gateway-side errors.
            Var::IntegrationError => {
                let ours = r.error_type.is_some_and(|t| t.starts_with("INTEGRATION_"));
                text(out, r.error_message.filter(|_| ours).map(str::as_bytes), json)
            }
            Var::ErrorMessage => text(out, r.error_message.map(str::as_bytes), json),
            Var::ErrorType => text(out, r.error_type.map(str::as_bytes), json),
            Var::Stage => text(out, Some(r.stage.as_bytes()), json),
            Var::DomainName => text(out, r.domain_name, json),
            Var::ApiId => text(out, Some(r.api_id.as_bytes()), json),
            Var::Upstream => text(out, r.upstream.map(str::as_bytes), json),
            Var::Cache => text(out, r.cache.map(str::as_bytes), json),
            Var::Authorizer(i) => {
                let v = r.authorizer.and_then(|a| a.log_value(&self.authorizer_names[i as usize]));
                text(out, v.as_deref().map(str::as_bytes), json)
            }
            Var::Absent => out.push(b'-'),
        }
    }
}

/// Everything a line can show; borrowed, built on the stack per request by the connection.
pub struct Record<'a> {
    pub request_id: &'a [u8],
    pub source_ip: &'a str,
    pub user_agent: Option<&'a [u8]>,
    pub api_key_id: Option<&'a str>,
    pub method: &'a [u8],
    pub path: &'a [u8],
    pub resource_path: Option<&'a str>,
    /// "HTTP/1.1" or "HTTP/1.0".
    pub protocol: &'a str,
    pub status: u16,
    pub response_length: u64,
    /// Unix epoch milliseconds.
    pub request_time_ms: u64,
    pub response_latency_us: u64,
    pub integration_latency_us: Option<u64>,
    pub integration_status: Option<u16>,
    pub integration_timed_out: bool,
    pub error_message: Option<&'a str>,
    pub error_type: Option<&'a str>,
    pub stage: &'a str,
    pub domain_name: Option<&'a [u8]>,
    pub api_id: &'a str,
    pub upstream: Option<&'a str>,
    pub cache: Option<&'a str>,
    /// What the request's authorizer established.
    pub authorizer: Option<&'a crate::policy::authorizer::AuthState>,
}

/// A value, escaped so it can neither end the line nor break the format's quoting;
/// `-` when absent or empty. Text mode writes `\xHH` for control characters, `"`, `\`
/// and bytes that are not UTF-8; JSON mode writes `\"`, `\\` and `\u00HH`.
fn text(out: &mut Vec<u8>, v: Option<&[u8]>, json: bool) {
    let Some(mut b) = v.filter(|b| !b.is_empty()) else {
        out.push(b'-');
        return;
    };
    loop {
        match std::str::from_utf8(b) {
            Ok(_) => return push_valid(out, b, json),
            Err(e) => {
                let (good, bad) = b.split_at(e.valid_up_to());
                push_valid(out, good, json);
                let n = e.error_len().unwrap_or(bad.len());
                for &c in &bad[..n] {
                    push_hex(out, c, json);
                }
                b = &bad[n..];
            }
        }
    }
}

/// Escapes ASCII specials in valid UTF-8; multi-byte characters are copied.
fn push_valid(out: &mut Vec<u8>, b: &[u8], json: bool) {
    let special = |c: u8| c < 0x20 || c == 0x7f || c == b'"' || c == b'\\';
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if special(c) {
            out.extend_from_slice(&b[start..i]);
            match c {
                b'"' | b'\\' if json => out.extend_from_slice(&[b'\\', c]),
                _ => push_hex(out, c, json),
            }
            start = i + 1;
        }
    }
    out.extend_from_slice(&b[start..]);
}

fn push_hex(out: &mut Vec<u8>, c: u8, json: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let h = [HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]];
    out.extend_from_slice(if json { b"\\u00" } else { b"\\x" });
    out.extend_from_slice(&h);
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
}

fn push_2(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
}

/// CLF time, UTC: `dd/MMM/yyyy:HH:mm:ss +0000`.
fn push_clf_time(out: &mut Vec<u8>, ms: u64) {
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let secs = ms / 1000;
    let (y, m, d) = crate::clock::civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    push_2(out, d as u64);
    out.push(b'/');
    out.extend_from_slice(MONTHS[(m - 1) as usize]);
    out.push(b'/');
    push_u64(out, y as u64);
    out.push(b':');
    push_2(out, sod / 3600);
    out.push(b':');
    push_2(out, sod / 60 % 60);
    out.push(b':');
    push_2(out, sod % 60);
    out.extend_from_slice(b" +0000");
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    Stderr,
    /// Opened with O_APPEND|O_CREAT, mode 0640; reopened by `AccessLog::reopen`.
    File(PathBuf),
}

impl Target {
    /// `"stdout"`, `"stderr"` or a file path.
    pub fn parse(s: &str) -> Target {
        match s {
            "stdout" => Target::Stdout,
            "stderr" => Target::Stderr,
            p => Target::File(PathBuf::from(p)),
        }
    }
}

/// Whether a worker will be able to open `target`: a file target is opened (created if missing)
/// and closed again. A path that exists and is not a regular file (a FIFO) is not opened here:
/// opening a FIFO for writing waits for its reader.
pub fn check_target(target: &Target) -> io::Result<()> {
    let Target::File(p) = target else { return Ok(()) };
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => Ok(()),
        _ => open_file(p).map(drop),
    }
}

/// How the descriptor is written without stalling the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Regular file, tty, /dev/null: plain write(2) of the whole batch.
    Plain,
    /// Pipe or FIFO (container stdout): poll, then at most PIPE_BUF per write.
    Pipe,
    /// Socket (journald stdout): send with MSG_DONTWAIT.
    Socket,
}

fn kind_of(fd: libc::c_int) -> Kind {
    // SAFETY: fstat fills the stat buffer we own; an invalid fd only returns an error.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Kind::Plain;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO => Kind::Pipe,
        libc::S_IFSOCK => Kind::Socket,
        _ => Kind::Plain,
    }
}

/// One worker's access log: a format, a buffer, a destination and a drop counter.
pub struct AccessLog {
    format: Arc<Format>,
    target: Target,
    /// Owned for file targets; None for stdout/stderr (never closed).
    file: Option<File>,
    fd: libc::c_int,
    kind: Kind,
    buf: Vec<u8>,
    flush_at: usize,
    cap: usize,
    dropped: u64,
    /// The last write left bytes behind: `log` leaves retries to the timer's `flush`.
    stalled: bool,
}

impl AccessLog {
    pub fn open(target: Target, format: Arc<Format>) -> io::Result<AccessLog> {
        let (file, fd) = match &target {
            Target::Stdout => (None, libc::STDOUT_FILENO),
            Target::Stderr => (None, libc::STDERR_FILENO),
            Target::File(p) => {
                let f = open_file(p)?;
                let fd = f.as_raw_fd();
                (Some(f), fd)
            }
        };
        Ok(AccessLog {
            format,
            target,
            file,
            fd,
            kind: kind_of(fd),
            buf: Vec::with_capacity(2 * FLUSH_AT),
            flush_at: FLUSH_AT,
            cap: CAP,
            dropped: 0,
            stalled: false,
        })
    }

    /// Sets the batch size and the buffer cap (defaults `FLUSH_AT`, `CAP`).
    pub fn with_limits(mut self, flush_at: usize, cap: usize) -> AccessLog {
        self.flush_at = flush_at;
        self.cap = cap.max(flush_at);
        self
    }

    /// Renders one line into the buffer (no syscall unless the buffer passed the flush
    /// threshold). Past the cap the line is dropped and counted.
    pub fn log(&mut self, r: &Record) {
        let start = self.buf.len();
        if start >= self.cap {
            self.dropped += 1;
            return;
        }
        self.format.render(r, &mut self.buf);
        if self.buf.len() > self.cap {
            self.buf.truncate(start);
            self.dropped += 1;
            return;
        }
        if self.buf.len() >= self.flush_at && !self.stalled {
            self.stalled = !self.drain(Duration::ZERO);
        }
    }

    /// Writes what the buffer holds without waiting on a slow pipe or socket; what
    /// cannot be written stays for the next call. Call it from the worker's timer.
    pub fn flush(&mut self) {
        self.stalled = !self.drain(Duration::ZERO);
        // A stall may have grown the buffer to the cap: give that memory back.
        if self.buf.is_empty() && self.buf.capacity() > 4 * self.flush_at {
            self.buf.shrink_to(2 * self.flush_at);
        }
    }

    /// Flushes to the current file, then opens the path again (logrotate renamed it).
    /// On error the old file stays in use. A no-op for stdout and stderr.
    pub fn reopen(&mut self) -> io::Result<()> {
        let Target::File(p) = &self.target else {
            return Ok(());
        };
        let f = open_file(p)?;
        self.drain(Duration::ZERO);
        self.fd = f.as_raw_fd();
        self.kind = kind_of(self.fd);
        self.file = Some(f);
        self.stalled = false;
        Ok(())
    }

    /// Lines dropped because the buffer was at its cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes rendered and not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Writes the buffer out; true when it is empty. With `patience`, waits that long in
    /// total for a full pipe or socket to drain; a write error keeps the bytes.
    fn drain(&mut self, patience: Duration) -> bool {
        let deadline = (!patience.is_zero()).then(|| Instant::now() + patience);
        let mut done = 0;
        let empty = loop {
            let rest = &self.buf[done..];
            if rest.is_empty() {
                break true;
            }
            if self.kind == Kind::Pipe && !writable(self.fd, deadline) {
                break false;
            }
            // SAFETY: the pointer and length come from a live slice.
            let n = unsafe {
                match self.kind {
                    Kind::Plain => libc::write(self.fd, rest.as_ptr().cast(), rest.len()),
                    Kind::Pipe => libc::write(self.fd, rest.as_ptr().cast(), pipe_chunk(rest)),
                    Kind::Socket => {
                        libc::send(self.fd, rest.as_ptr().cast(), rest.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    }
                }
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) if n < 0 => continue,
                // Without patience a full descriptor ends the attempt; the timer retries.
                Some(libc::EAGAIN) if n < 0 && deadline.is_some() => {
                    if writable(self.fd, deadline) {
                        continue;
                    }
                    break false;
                }
                _ => break false,
            }
        };
        self.buf.drain(..done);
        empty
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.drain(DROP_PATIENCE);
    }
}

/// Bytes of `rest` for one pipe write: at most PIPE_BUF (atomic, so workers sharing a pipe
/// never interleave inside a write), ending on a line boundary when one fits.
fn pipe_chunk(rest: &[u8]) -> usize {
    if rest.len() <= PIPE_CHUNK {
        return rest.len();
    }
    memchr::memrchr(b'\n', &rest[..PIPE_CHUNK]).map_or(PIPE_CHUNK, |i| i + 1)
}

fn open_file(p: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).mode(0o640).open(p)
}

/// Whether `fd` takes a write now, or before `deadline` when there is one.
fn writable(fd: libc::c_int, deadline: Option<Instant>) -> bool {
    let ms = deadline.map_or(0, |d| {
        let left = d.saturating_duration_since(Instant::now());
        left.as_millis().min(i32::MAX as u128) as i32
    });
    if deadline.is_some() && ms == 0 {
        return false;
    }
    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one pollfd we own.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    // POLLERR/POLLHUP count as writable: the write then reports the error.
    n > 0 && p.revents != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLF: &str = "$context.identity.sourceIp - - [$context.requestTime] \"$context.httpMethod $context.path $context.protocol\" $context.status $context.responseLength $context.requestId";
    const JSON: &str = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","status":"$context.status","latency":$context.responseLatency}"#;

    fn full() -> Record<'static> {
        Record {
            request_id: b"c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            source_ip: "203.0.113.7",
            user_agent: Some(b"curl/8.5.0"),
            api_key_id: Some("k-42"),
            method: b"GET",
            path: b"/pets/7",
            resource_path: Some("/pets/{id}"),
            protocol: "HTTP/1.1",
            status: 200,
            response_length: 1234,
            // 2024-02-29 13:05:09.250 UTC
            request_time_ms: 1_709_211_909_250,
            response_latency_us: 42_999,
            integration_latency_us: Some(40_100),
            integration_status: Some(200),
            integration_timed_out: false,
            error_message: None,
            error_type: None,
            stage: "prod",
            domain_name: Some(b"api.example.com"),
            api_id: "petstore",
            upstream: Some("10.0.0.5:8080"),
            cache: Some("miss"),
            authorizer: None,
        }
    }

    fn line(fmt: &str, r: &Record) -> String {
        let mut out = Vec::new();
        compile(fmt).unwrap().render(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn temp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ringway-alog-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn read(p: &std::path::Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn compile_errors() {
        let e = compile("ip=$context.identity.sourceIp x=$context.nope").unwrap_err();
        assert!(e.contains("$context.nope") && e.contains("byte 32"), "{e}");
        let e = compile("a ${context.status").unwrap_err();
        assert!(e.contains("unclosed") && e.contains("byte 2"), "{e}");
        let e = compile("a ${context.bogus} b").unwrap_err();
        assert!(e.contains("$context.bogus") && e.contains("byte 2"), "{e}");
        let e = compile("x $context. y").unwrap_err();
        assert!(e.contains("empty") && e.contains("byte 2"), "{e}");
        assert!(compile("a\nb").unwrap_err().contains("line break at byte 1"));
        // Trailing period and other dollars are literal; one trailing newline is dropped.
        let r = full();
        assert_eq!(line("s=$context.status.", &r), "s=200.\n");
        assert_eq!(line("$5 $x ${context.status}ms\n", &r), "$5 $x 200ms\n");
        assert!(!compile("plain").unwrap().json_escape());
        assert!(compile(" {\"a\":1}").unwrap().json_escape());
    }

    #[test]
    fn clf_full_record() {
        assert_eq!(
            line(CLF, &full()),
            "203.0.113.7 - - [29/Feb/2024:13:05:09 +0000] \"GET /pets/7 HTTP/1.1\" 200 1234 c6af9ac6-7b61-11e6-9a41-93e8deadbeef\n"
        );
    }

    #[test]
    fn json_full_record() {
        let out = line(JSON, &full());
        assert_eq!(
            out,
            "{\"requestId\":\"c6af9ac6-7b61-11e6-9a41-93e8deadbeef\",\"ip\":\"203.0.113.7\",\"status\":\"200\",\"latency\":42}\n"
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap();
    }

    #[test]
    fn every_variable() {
        let fmt = VARS.iter().map(|(n, _)| format!("{n}=${{context.{n}}}")).collect::<Vec<_>>().join(" ");
        assert_eq!(
            line(&fmt, &full()),
            "requestId=c6af9ac6-7b61-11e6-9a41-93e8deadbeef \
             extendedRequestId=c6af9ac6-7b61-11e6-9a41-93e8deadbeef \
             identity.sourceIp=203.0.113.7 identity.userAgent=curl/8.5.0 \
             identity.apiKeyId=k-42 identity.caller=- identity.user=- httpMethod=GET \
             path=/pets/7 resourcePath=/pets/{id} routeKey=GET /pets/{id} protocol=HTTP/1.1 \
             status=200 responseLength=1234 requestTime=29/Feb/2024:13:05:09 +0000 \
             requestTimeEpoch=1709211909250 responseLatency=42 integrationLatency=40 \
             integration.latency=40 integrationStatus=200 integration.status=200 \
             integration.integrationStatus=200 integration.error=- integrationErrorMessage=- \
             error.message=- error.responseType=- stage=prod domainName=api.example.com \
             apiId=petstore upstream=10.0.0.5:8080 cache=miss\n"
        );
    }

    #[test]
    fn missing_values_and_timeout() {
        let r = Record {
            user_agent: None,
            api_key_id: None,
            resource_path: None,
            integration_latency_us: None,
            integration_status: None,
            domain_name: Some(b""),
            upstream: None,
            cache: None,
            ..full()
        };
        let fmt = "$context.identity.userAgent $context.identity.apiKeyId $context.resourcePath \
                   $context.routeKey $context.integrationLatency $context.integrationStatus \
                   $context.error.message $context.domainName $context.upstream $context.cache";
        assert_eq!(line(fmt, &r), "- - - - - - - - - -\n");

        let r = Record {
            status: 504,
            integration_latency_us: Some(29_000_000),
            integration_status: None,
            integration_timed_out: true,
            error_message: Some("Endpoint request timed out"),
            error_type: Some("INTEGRATION_TIMEOUT"),
            ..full()
        };
        let fmt = "$context.integrationLatency $context.integration.latency $context.integration.status \
                   \"$context.integration.error\" $context.error.responseType";
        assert_eq!(line(fmt, &r), "-1 -1 - \"Endpoint request timed out\" INTEGRATION_TIMEOUT\n");
        // A gateway-side error is not an integration error.
        let r = Record { error_message: Some("Forbidden"), error_type: Some("MISSING_AUTHENTICATION_TOKEN"), ..full() };
        assert_eq!(line("$context.integration.error $context.error.message", &r), "- Forbidden\n");
    }

    #[test]
    fn escaping_text_mode() {
        let r = Record {
            path: b"/a\r\n203.0.113.9 - - [x] \"GET / HTTP/1.1\" 200\x00\xff\\",
            user_agent: Some("Mozilla \"é\"\t\u{7f}".as_bytes()),
            ..full()
        };
        let out = line("\"$context.path\" \"$context.identity.userAgent\"", &r);
        assert_eq!(
            out,
            "\"/a\\x0D\\x0A203.0.113.9 - - [x] \\x22GET / HTTP/1.1\\x22 200\\x00\\xFF\\x5C\" \
             \"Mozilla \\x22é\\x22\\x09\\x7F\"\n"
        );
        assert_eq!(out.matches('\n').count(), 1);
    }

    #[test]
    fn escaping_json_mode() {
        let r = Record {
            path: b"/a\r\n{\"fake\":1}\xc3\x28\\",
            user_agent: Some("ua \"é\" \u{1}".as_bytes()),
            error_message: Some("bad \"x\""),
            ..full()
        };
        let fmt = r#"{"path":"$context.path","ua":"$context.identity.userAgent","err":"$context.error.message"}"#;
        let out = line(fmt, &r);
        assert_eq!(
            out,
            "{\"path\":\"/a\\u000D\\u000A{\\\"fake\\\":1}\\u00C3(\\\\\",\
             \"ua\":\"ua \\\"é\\\" \\u0001\",\"err\":\"bad \\\"x\\\"\"}\n"
        );
        assert_eq!(out.matches('\n').count(), 1);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["path"], "/a\r\n{\"fake\":1}\u{c3}(\\");
        assert_eq!(v["ua"], "ua \"é\" \u{1}");
    }

    #[test]
    fn batches_until_flush() {
        let p = temp("batch");
        let f = Arc::new(compile(CLF).unwrap());
        let mut log = AccessLog::open(Target::File(p.clone()), f).unwrap();
        for _ in 0..10 {
            log.log(&full());
        }
        assert_eq!(read(&p), "");
        assert!(log.buffered() > 0);
        log.flush();
        assert_eq!(log.buffered(), 0);
        let s = read(&p);
        assert_eq!(s.lines().count(), 10);
        assert!(s.lines().all(|l| l == line(CLF, &full()).trim_end()));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o137, 0, "{mode:o}"); // never wider than 0640
        drop(log);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn flushes_at_threshold_and_on_drop() {
        let p = temp("threshold");
        let f = Arc::new(compile(CLF).unwrap());
        let n = line(CLF, &full()).len();
        let mut log = AccessLog::open(Target::File(p.clone()), f).unwrap().with_limits(3 * n, CAP);
        log.log(&full());
        log.log(&full());
        assert_eq!(read(&p), "");
        log.log(&full()); // reaches the threshold: one write of the batch
        assert_eq!(read(&p).lines().count(), 3);
        assert_eq!(log.buffered(), 0);
        log.log(&full());
        drop(log); // flushes
        assert_eq!(read(&p).lines().count(), 4);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn cap_drops_and_counts() {
        // A FIFO nobody reads: the pipe fills, then the buffer, then lines drop;
        // log() never blocks on the stalled reader.
        let p = temp("fifo");
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&p).unwrap();
        let f = Arc::new(compile(CLF).unwrap());
        let n = line(CLF, &full()).len();
        let mut log = AccessLog::open(Target::File(p.clone()), f).unwrap().with_limits(16 * 1024, 64 * 1024);
        assert_eq!(log.kind, Kind::Pipe);
        let total = 4 * (64 * 1024 + 1024 * 1024) / n; // well past pipe + cap
        for _ in 0..total {
            log.log(&full());
        }
        log.flush();
        assert!(log.buffered() <= 64 * 1024);
        assert!(log.dropped() > 0);
        // Drain the reader: everything not dropped arrives, as whole lines.
        let mut got = Vec::new();
        let mut r = &reader;
        let mut chunk = vec![0u8; 64 * 1024];
        for _ in 0..1000 {
            log.flush();
            match io::Read::read(&mut r, &mut chunk) {
                Ok(k) if k > 0 => got.extend_from_slice(&chunk[..k]),
                _ if log.buffered() == 0 => break,
                _ => {}
            }
        }
        assert_eq!(log.buffered(), 0);
        assert_eq!(got.len() % n, 0);
        assert_eq!(got.len() / n + log.dropped() as usize, total);
        drop(log);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn reopen_after_rename() {
        let p = temp("rotate");
        let rotated = temp("rotate.1");
        let f = Arc::new(compile("$context.status").unwrap());
        let mut log = AccessLog::open(Target::File(p.clone()), f).unwrap();
        log.log(&full());
        log.flush();
        std::fs::rename(&p, &rotated).unwrap();
        log.log(&Record { status: 201, ..full() }); // logged before the signal: goes to the old file
        log.reopen().unwrap();
        log.log(&Record { status: 404, ..full() });
        log.flush();
        assert_eq!(read(&rotated), "200\n201\n");
        assert_eq!(read(&p), "404\n");
        drop(log);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(&rotated);
    }

    #[test]
    fn stdout_target_opens() {
        let f = Arc::new(compile("$context.status").unwrap());
        let log = AccessLog::open(Target::parse("stdout"), f).unwrap();
        assert_eq!(log.target, Target::Stdout);
        assert_eq!(Target::parse("/var/log/x"), Target::File("/var/log/x".into()));
    }
}
