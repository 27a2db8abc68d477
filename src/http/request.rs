//! Request head parsing and validation (RFC 9112 sections 2-7).
//!
//! httparse does the tokenising; this file decides framing and rejects what could make
//! ringway and an upstream disagree about where a message ends (request smuggling).
//! Headers are kept as byte ranges into the connection's read buffer: no allocation.

use super::method::Method;
use std::ops::Range;

/// Most header lines we parse; more gets 431.
pub const MAX_HEADERS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A header as ranges into the buffer the head was parsed from.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: (u32, u32),
    pub value: (u32, u32),
}

impl Field {
    #[inline]
    pub fn name<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.name.0 as usize..self.name.1 as usize]
    }
    #[inline]
    pub fn value<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.value.0 as usize..self.value.1 as usize]
    }
    /// The header's line as received, name to value without the line ending
    /// (`Name:value`, `Name: value`): what a forwarded header copies in one piece.
    /// httparse admits no space before the colon and no folded lines.
    #[inline]
    pub fn line<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.name.0 as usize..self.value.1 as usize]
    }
}

#[derive(Debug, Clone)]
pub struct Head {
    /// None for a syntactically valid method API Gateway does not know (no route can match).
    pub method: Option<Method>,
    pub method_range: Range<usize>,
    pub minor: u8,
    pub path: Range<usize>,
    pub query: Option<Range<usize>>,
    pub len: usize,
    pub body: BodyKind,
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// Indexes into `fields` of the X-Forwarded-For headers (a list-valued field).
    pub xff: smallvec::SmallVec<[u16; 2]>,
    /// Names listed in `Connection` (to drop when forwarding).
    pub conn_tokens: smallvec::SmallVec<[(u32, u32); 4]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: malformed or ambiguous.
    Bad(&'static str),
    /// 431: head larger than the limit or too many fields.
    TooLarge,
    /// 414: request target longer than the limit.
    UriTooLong,
    /// 417: an expectation other than 100-continue.
    Expectation,
    /// 501: a transfer coding other than chunked.
    NotImplemented,
}

impl HeadError {
    pub fn status(self) -> u16 {
        match self {
            HeadError::Bad(_) => 400,
            HeadError::TooLarge => 431,
            HeadError::UriTooLong => 414,
            HeadError::Expectation => 417,
            HeadError::NotImplemented => 501,
        }
    }
}

/// Parses the head at the start of `buf`. Ok(None): incomplete, read more.
/// `fields` is cleared and filled with the header ranges.
pub fn parse(buf: &[u8], max_head: usize, max_uri: usize, fields: &mut Vec<Field>) -> Result<Option<Head>, HeadError> {
    // Uninitialised: zeroing 128 headers (4 KiB) cost more than parsing a typical head.
    let mut raw = [std::mem::MaybeUninit::<httparse::Header>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    // Bare LF ends a head line here, as httparse reads it. RFC 9112 section 2.2: "Although
    // the line terminator for the start-line and fields is the sequence CRLF, a recipient
    // MAY recognize a single LF as a line terminator and ignore any preceding CR." That is
    // safe in a head because no head byte is forwarded as received: the upstream gets a head
    // ringway writes itself, token by token with its own CRLFs (`write_upstream_head` in
    // integration/proxy.rs; functions and custom integrations build their own requests), so
    // it can never see other line ends than ringway parsed (nginx does the same). A bare CR
    // is rejected (httparse). Chunked body lines are another matter: see `http/body.rs`.
    let len = match req.parse_with_uninit_headers(buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            too_big_partial(buf, max_head, max_uri)?;
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::Bad("unsupported HTTP version")),
        Err(httparse::Error::Token) => return Err(HeadError::Bad("invalid token")),
        Err(_) => return Err(HeadError::Bad("malformed request head")),
    };
    if len > max_head {
        return Err(HeadError::TooLarge);
    }
    let base = buf.as_ptr() as usize;
    let off = |s: &[u8]| s.as_ptr() as usize - base;
    let method_str = req.method.unwrap_or("");
    let target = req.path.unwrap_or("");
    if target.len() > max_uri {
        return Err(HeadError::UriTooLong);
    }
    let minor = req.version.unwrap_or(1);
    let t_off = off(target.as_bytes());
    // origin-form, or absolute-form which a server MUST accept (RFC 9112 section 3.2.2).
    let path_start = if target.starts_with('/') {
        t_off
    } else if let Some(rest) = strip_scheme(target) {
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => t_off + (target.len() - rest.len()) + i,
            _ => return Err(HeadError::Bad("absolute-form target without a path")),
        }
    } else {
        return Err(HeadError::Bad("request target must be origin-form"));
    };
    let t_end = t_off + target.len();
    let (path, query) = match memchr::memchr(b'?', &buf[path_start..t_end]) {
        Some(q) => (path_start..path_start + q, Some(path_start + q + 1..t_end)),
        None => (path_start..t_end, None),
    };
    if memchr::memchr(b'#', &buf[path_start..t_end]).is_some() {
        return Err(HeadError::Bad("fragment in request target"));
    }
    // Routing is on the raw path, but upstreams resolve dot-segments (RFC 3986 section
    // 5.2.4; `%2e` is `.` by section 2.3): `/stage/../admin` rendered into
    // `http://up/base/{proxy}` would escape `base` there. Refuse rather than normalize.
    if has_dot_segment(&buf[path.clone()]) {
        return Err(HeadError::Bad("dot-segment in request path"));
    }

    let mut head = Head {
        method: Method::from_bytes(method_str.as_bytes()),
        method_range: off(method_str.as_bytes())..off(method_str.as_bytes()) + method_str.len(),
        minor,
        path,
        query,
        len,
        body: BodyKind::None,
        keep_alive: minor == 1,
        expect_continue: false,
        xff: smallvec::SmallVec::new(),
        conn_tokens: smallvec::SmallVec::new(),
    };

    fields.clear();
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut other_coding = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        let n0 = off(name);
        let v0 = off(value);
        fields
            .push(Field { name: (n0 as u32, (n0 + name.len()) as u32), value: (v0 as u32, (v0 + value.len()) as u32) });
        if name_is(name, b"content-length") {
            // Duplicates are fine only when they agree (RFC 9112 section 6.3 rule 5).
            for part in value.split(|&b| b == b',') {
                let n = parse_length(trim(part)).ok_or(HeadError::Bad("invalid Content-Length"))?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HeadError::Bad("conflicting Content-Length values"));
                }
                content_length = Some(n);
            }
        } else if name_is(name, b"transfer-encoding") {
            saw_te = true;
            for coding in value.split(|&b| b == b',') {
                let coding = trim(coding);
                if coding.is_empty() {
                    continue;
                }
                if !is_token(coding) {
                    return Err(HeadError::Bad("invalid Transfer-Encoding"));
                }
                // "chunked" must be the final coding and appear once (RFC 9112 section 6.1).
                if chunked {
                    return Err(HeadError::Bad("chunked is not the final transfer coding"));
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else {
                    other_coding = true;
                }
            }
        } else if name_is(name, b"connection") {
            for tok in value.split(|&b| b == b',') {
                let tok = trim(tok);
                if tok.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    // "close" wins wherever it appears (RFC 9112 section 9.3).
                    keep_alive_token = true;
                } else if !tok.is_empty() && head.conn_tokens.len() < 16 {
                    let t0 = off(tok);
                    head.conn_tokens.push((t0 as u32, (t0 + tok.len()) as u32));
                }
            }
        } else if name_is(name, b"host") {
            hosts += 1;
        } else if name_is(name, b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                head.expect_continue = minor == 1;
            } else {
                return Err(HeadError::Expectation);
            }
        } else if name_is(name, b"x-forwarded-for") {
            head.xff.push((fields.len() - 1) as u16);
        }
    }
    head.keep_alive = !close && (minor == 1 || keep_alive_token);
    // RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0 message containing
    // a Transfer-Encoding header field MUST treat the message as if the framing is faulty,
    // even if a Content-Length is present, and close the connection after processing the
    // message." Any coding, before the checks below: always 400, and `reject` closes.
    if saw_te && minor == 0 {
        return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
    }
    if saw_te && !chunked {
        return Err(HeadError::Bad("Transfer-Encoding whose final coding is not chunked"));
    }
    // A coding before chunked (e.g. "gzip, chunked") is valid HTTP that ringway does not decode.
    if other_coding {
        return Err(HeadError::NotImplemented);
    }
    // Both framings at once is the classic smuggling vector: refuse (RFC 9112 section 6.1).
    if chunked && content_length.is_some() {
        return Err(HeadError::Bad("both Content-Length and Transfer-Encoding"));
    }
    if minor == 1 && hosts != 1 {
        return Err(HeadError::Bad("HTTP/1.1 request needs exactly one Host header"));
    }
    if hosts > 1 {
        return Err(HeadError::Bad("more than one Host header"));
    }
    head.body = if chunked {
        BodyKind::Chunked
    } else {
        match content_length {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    if head.body == BodyKind::None {
        head.expect_continue = false;
    }
    Ok(Some(head))
}

/// For an incomplete head: is it already too big to ever fit?
fn too_big_partial(buf: &[u8], max_head: usize, max_uri: usize) -> Result<(), HeadError> {
    let line_end = memchr::memchr(b'\n', buf);
    match line_end {
        None if buf.len() > max_uri + 32 => Err(HeadError::UriTooLong),
        _ if buf.len() >= max_head => Err(HeadError::TooLarge),
        _ => Ok(()),
    }
}

/// Whether `path` has a `.` or `..` segment: also spelled `%2e`, also between the
/// separators upstreams decode or accept (`%2f`, a backslash, `%5c`), also before a `;` path
/// parameter (`..;x` is `..` to Tomcat). `.hidden`, `a..b` and `...` are ordinary names.
fn has_dot_segment(path: &[u8]) -> bool {
    if memchr::memchr2(b'.', b'%', path).is_none() {
        return false;
    }
    let (mut dots, mut only_dots, mut param) = (0usize, true, false);
    let mut i = 0;
    loop {
        let (c, len) = match path.get(i) {
            None => (b'/', 1),
            Some(b'%') if i + 2 < path.len() => {
                match [path[i + 1].to_ascii_lowercase(), path[i + 2].to_ascii_lowercase()] {
                    [b'2', b'e'] => (b'.', 3),
                    [b'2', b'f'] => (b'/', 3),
                    [b'5', b'c'] => (b'\\', 3),
                    _ => (b'%', 1),
                }
            }
            Some(&c) => (c, 1),
        };
        match c {
            b'/' | b'\\' => {
                if only_dots && (1..=2).contains(&dots) {
                    return true;
                }
                if i >= path.len() {
                    return false;
                }
                (dots, only_dots, param) = (0, true, false);
            }
            _ if param => {}
            b';' => param = true,
            b'.' => dots += 1,
            _ => only_dots = false,
        }
        i += len;
    }
}

fn strip_scheme(t: &str) -> Option<&str> {
    let lower = t.get(..8).map(|s| s.to_ascii_lowercase());
    match lower.as_deref() {
        Some(s) if s.starts_with("http://") => Some(&t[7..]),
        Some("https://") => Some(&t[8..]),
        _ => None,
    }
}

/// Whether header name `name` (token bytes, as httparse admits them) is `lower`, a
/// lowercase name of letters, digits and '-', ignoring case: eight bytes at a time.
/// OR-ing 0x20 lowercases letters and leaves digits, '-' and most other token bytes as
/// they are; the token bytes it changes otherwise ('^' '_') map to no letter, digit or '-'.
#[inline]
pub fn name_is(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let mut i = 0;
    while i + 8 <= name.len() {
        if word(name, i) | 0x2020_2020_2020_2020 != word(lower, i) {
            return false;
        }
        i += 8;
    }
    name[i..].iter().zip(&lower[i..]).all(|(&a, &b)| a | 0x20 == b)
}

#[inline]
pub fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(s, |i| i + 1);
    &b[s..e]
}

fn is_token(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(c))
}

/// `1*DIGIT`, no sign, no overflow.
pub fn parse_length(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, d| acc.checked_mul(10)?.checked_add((d - b'0') as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lines_run_from_name_to_value_end() {
        let buf = b"GET / HTTP/1.1\r\nHost:h\r\nA:b\r\nCc:   d e  \r\nE:\r\nF: g\n\r\n";
        let mut fields = Vec::new();
        parse(buf, 8192, 8192, &mut fields).unwrap().unwrap();
        let lines: Vec<&[u8]> = fields.iter().map(|f| f.line(buf)).collect();
        assert_eq!(lines, [&b"Host:h"[..], b"A:b", b"Cc:   d e", b"E:", b"F: g"]);
    }

    #[test]
    fn header_names_match_ignoring_case_only() {
        for lower in ["te", "host", "expect", "connection", "content-length", "transfer-encoding", "x-forwarded-for"] {
            assert!(name_is(lower.as_bytes(), lower.as_bytes()));
            assert!(name_is(lower.to_ascii_uppercase().as_bytes(), lower.as_bytes()));
            let mixed: String =
                lower.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
            assert!(name_is(mixed.as_bytes(), lower.as_bytes()), "{mixed}");
            // Any other token byte in any position, and any other length, is a mismatch.
            for i in 0..lower.len() {
                for b in b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" {
                    let mut other = lower.as_bytes().to_vec();
                    other[i] = *b;
                    assert_eq!(name_is(&other, lower.as_bytes()), other.eq_ignore_ascii_case(lower.as_bytes()));
                }
            }
            assert!(!name_is(&lower.as_bytes()[1..], lower.as_bytes()));
            assert!(!name_is(format!("{lower}x").as_bytes(), lower.as_bytes()));
        }
    }

    fn p(s: &str) -> Result<Option<Head>, HeadError> {
        parse(s.as_bytes(), 16384, 8192, &mut Vec::new())
    }

    fn ok(s: &str) -> Head {
        p(s).unwrap().unwrap()
    }

    #[test]
    fn simple_get() {
        let h = ok("GET /test/pets?type=dog HTTP/1.1\r\nHost: a\r\n\r\n");
        let b = b"GET /test/pets?type=dog HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(h.method, Some(Method::Get));
        assert_eq!(&b[h.path.clone()], b"/test/pets");
        assert_eq!(&b[h.query.clone().unwrap()], b"type=dog");
        assert!(h.keep_alive);
        assert_eq!(h.body, BodyKind::None);
        assert_eq!(h.len, b.len());
    }

    #[test]
    fn partial_and_limits() {
        assert!(p("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
        assert_eq!(p(&long).unwrap_err(), HeadError::UriTooLong);
        let partial_long = format!("GET /{}", "a".repeat(9000));
        assert_eq!(p(&partial_long).unwrap_err(), HeadError::UriTooLong);
        let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(17000));
        assert_eq!(p(&big).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..200).map(|i| format!("X{i}: 1\r\n")).collect();
        assert_eq!(p(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn framing() {
        assert_eq!(ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n").body, BodyKind::Length(5));
        assert_eq!(ok("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").body, BodyKind::Chunked);
        assert_eq!(
            ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n").body,
            BodyKind::Length(5)
        );
    }

    #[test]
    fn smuggling_vectors_are_rejected() {
        let bad = |s: &str| matches!(p(s), Err(HeadError::Bad(_)));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"));
        assert!(bad("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"));
        assert!(bad("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), "obs-fold");
        assert!(bad("GET / HTTP/1.1\r\nHost: a\r\nBad Name: a\r\n\r\n"));
        assert!(bad("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"));
        assert!(bad("GET / HTTP/1.1\r\n\r\n"), "missing Host");
        assert!(bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
        assert!(bad("GET * HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert!(bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
    }

    #[test]
    fn any_transfer_encoding_in_http_1_0_is_faulty_framing() {
        // RFC 9112 section 6.1: 400 whatever the coding, with or without a Content-Length
        // (never the 501 an HTTP/1.1 request with "gzip, chunked" gets).
        for te in ["chunked", "gzip, chunked", "gzip", "identity", ""] {
            for cl in ["", "Content-Length: 5\r\n"] {
                let s = format!("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: {te}\r\n{cl}\r\nhello");
                assert_eq!(p(&s).unwrap_err(), HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"), "{s:?}");
            }
        }
        assert_eq!(ok("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello").body, BodyKind::Length(5));
    }

    #[test]
    fn bare_lf_heads_are_read_like_crlf_heads() {
        // Accepted (RFC 9112 section 2.2): the head is re-written for the upstream.
        let crlf = ok("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        let lf = ok("POST /a HTTP/1.1\nHost: a\nContent-Length: 5\n\n");
        assert_eq!((lf.body, lf.path, lf.len), (crlf.body, crlf.path, crlf.len - 4));
        assert!(matches!(p("GET / HTTP/1.1\rHost: a\r\n\r\n"), Err(HeadError::Bad(_))), "bare CR");
        assert_eq!(
            p("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap_err(),
            HeadError::NotImplemented
        );
        assert_eq!(p("POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n").unwrap_err(), HeadError::Expectation);
    }

    #[test]
    fn connection_semantics() {
        assert!(!ok("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keep_alive);
        let h = ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: x-a, keep-alive, x-b\r\n\r\n");
        assert_eq!(h.conn_tokens.len(), 2);
        assert!(ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n").expect_continue);
        // Found by tests/fuzz.rs (request_pipeline): "close" must win over a later keep-alive.
        assert!(!ok("GET / HTTP/1.0\r\nConnection: close, keep-alive\r\n\r\n").keep_alive);
        assert!(!ok("GET / HTTP/1.0\r\nConnection: close\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(ok("GET / HTTP/1.0\r\nConnection: x, Keep-Alive\r\n\r\n").keep_alive);
    }

    #[test]
    fn absolute_form_and_unknown_methods() {
        let s = "GET http://example.com/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let h = ok(s);
        assert_eq!(&s.as_bytes()[h.path.clone()], b"/a/b");
        assert_eq!(ok("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n").method, None);
    }
}
