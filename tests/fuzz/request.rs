//! HTTP/1.1 request side: head parser invariants on arbitrary bytes, and pipelined streams
//! of generated valid requests split at arbitrary read boundaries.

use crate::gen::{Rng, Source};
use ringway::http::body::{Chunk, Decoder, Step};
use ringway::http::method::Method;
use ringway::http::request::{parse, BodyKind, Field, HeadError};

/// What the codec saw of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub minor: u8,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub chunked: bool,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte was consumed by complete requests.
    Clean,
    /// The stream ended inside a request.
    Incomplete,
    Head(HeadError),
    Body,
}

/// The connection loop without I/O: parse a head, decode its body, repeat, reading
/// `next_read()` more bytes whenever the codec asks for more. Asserts the codec's
/// bookkeeping (ranges in bounds, progress on every step, bounded buffering).
pub fn drive(
    stream: &[u8],
    max_head: usize,
    max_uri: usize,
    mut next_read: impl FnMut() -> usize,
) -> (Vec<Parsed>, End) {
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut fields: Vec<Field> = Vec::new();
    let mut out = Vec::new();
    let mut feed = |buf: &mut Vec<u8>| -> bool {
        if fed >= stream.len() {
            return false;
        }
        let n = next_read().clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        true
    };
    loop {
        let head = loop {
            if !buf.is_empty() {
                match parse(&buf, max_head, max_uri, &mut fields) {
                    Ok(Some(h)) => break h,
                    Ok(None) => assert!(buf.len() < max_head, "incomplete head of {} bytes not refused", buf.len()),
                    Err(e) => return (out, End::Head(e)),
                }
            }
            if !feed(&mut buf) {
                return (out, if buf.is_empty() { End::Clean } else { End::Incomplete });
            }
        };
        assert!(head.len <= buf.len() && head.len <= max_head);
        let mut p = Parsed {
            method: buf[head.method_range.clone()].to_vec(),
            path: buf[head.path.clone()].to_vec(),
            query: head.query.clone().map(|q| buf[q].to_vec()),
            minor: head.minor,
            keep_alive: head.keep_alive,
            expect_continue: head.expect_continue,
            chunked: head.body == BodyKind::Chunked,
            body: Vec::new(),
        };
        let mut dec = match head.body {
            BodyKind::None => Decoder::Length(0),
            BodyKind::Length(n) => Decoder::Length(n),
            BodyKind::Chunked => Decoder::Chunked(Chunk::Size),
        };
        let mut pos = head.len;
        loop {
            let (used, step) = match dec.step(&buf[pos..]) {
                Ok(s) => s,
                Err(_) => return (out, End::Body),
            };
            let base = pos;
            pos += used;
            assert!(pos <= buf.len(), "decoder consumed past its input");
            match step {
                Step::Data(r) => {
                    assert!(r.start < r.end && r.end <= used, "bad data range {r:?} of {used}");
                    p.body.extend_from_slice(&buf[base + r.start..base + r.end]);
                }
                Step::Done => break,
                Step::NeedMore => {
                    if !feed(&mut buf) {
                        return (out, End::Incomplete);
                    }
                }
            }
        }
        assert!(dec.is_done());
        buf.drain(..pos);
        out.push(p);
    }
}

/// Arbitrary bytes as a request head: no panic, and whatever is accepted is consistent.
pub fn head(data: &[u8]) {
    for (max_head, max_uri) in [(16384, 10240), (64, 24)] {
        let mut fields = Vec::new();
        match parse(data, max_head, max_uri, &mut fields) {
            Ok(None) => assert!(data.len() < max_head, "incomplete head over the limit"),
            Err(e) => assert!([400, 414, 417, 431, 501].contains(&e.status())),
            Ok(Some(h)) => {
                check_head(data, &h, &fields, max_head, max_uri);
                // The head ends where it ends: no prefix is complete, and what follows is ignored.
                for k in [h.len - 1, h.len / 2, h.len.saturating_sub(3)] {
                    let r = parse(&data[..k], max_head, max_uri, &mut Vec::new());
                    assert!(!matches!(r, Ok(Some(_))), "prefix of {k} bytes is a complete head too");
                }
                let mut more = data[..h.len].to_vec();
                more.extend_from_slice(b"GET / HTTP/1.1\r\n");
                let again = parse(&more, max_head, max_uri, &mut Vec::new()).unwrap().unwrap();
                assert_eq!((again.len, again.body, again.keep_alive), (h.len, h.body, h.keep_alive));
            }
        }
    }
}

fn check_head(data: &[u8], h: &ringway::http::request::Head, fields: &[Field], max_head: usize, max_uri: usize) {
    assert!(h.len <= data.len() && h.len <= max_head);
    let buf = &data[..h.len];
    let path = &buf[h.path.clone()];
    assert!(path.starts_with(b"/"), "path {path:?}");
    assert!(!path.contains(&b'?') && !path.contains(&b'#'));
    if let Some(q) = &h.query {
        assert_eq!(q.start, h.path.end + 1);
        assert!(!buf[q.clone()].contains(&b'#'));
    }
    assert!(h.path.end - h.method_range.end <= max_uri + 1);
    assert_eq!(h.method, Method::from_bytes(&buf[h.method_range.clone()]));
    assert!(h.minor <= 1);
    // Framing decided from the fields alone (RFC 9112 section 6), as a second opinion.
    let named = |n: &'static [u8]| {
        fields.iter().filter(move |f| f.name(buf).eq_ignore_ascii_case(n)).map(move |f| f.value(buf))
    };
    let te = named(b"transfer-encoding").count();
    let mut cls = named(b"content-length").flat_map(|v| v.split(|&b| b == b',').map(trim).map(|s| s.to_vec()));
    let cl: Option<u64> = cls.next().map(|first| std::str::from_utf8(&first).unwrap().parse().unwrap());
    for other in cls {
        assert_eq!(Some(std::str::from_utf8(&other).unwrap().parse::<u64>().unwrap()), cl, "differing Content-Length");
    }
    let hosts = named(b"host").count();
    assert!(hosts <= 1 && (h.minor == 0 || hosts == 1), "{hosts} Host headers");
    if te > 0 {
        assert_eq!(h.body, BodyKind::Chunked);
        assert!(cl.is_none() && h.minor == 1);
    } else {
        assert_eq!(h.body, cl.filter(|&n| n > 0).map_or(BodyKind::None, BodyKind::Length));
    }
    let close =
        named(b"connection").flat_map(|v| v.split(|&b| b == b',')).any(|t| trim(t).eq_ignore_ascii_case(b"close"));
    if close {
        assert!(!h.keep_alive, "Connection: close but keep-alive");
    }
    if h.expect_continue {
        assert!(h.body != BodyKind::None && h.minor == 1);
    }
    for f in fields {
        assert!(f.name.1 as usize <= h.len && f.value.1 as usize <= h.len && f.name.0 < f.name.1);
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !matches!(c, b' ' | b'\t')).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !matches!(c, b' ' | b'\t')).map_or(s, |i| i + 1);
    &b[s..e]
}

/// Arbitrary bytes as a connection's whole input, read in arbitrary pieces: no panic, no
/// stall, and the same requests whatever the read sizes.
pub fn stream(data: &[u8]) {
    let mut s = Source::new(data);
    let seed = s.byte() as u64;
    let stream = s.rest();
    let whole = drive(stream, 16384, 10240, || usize::MAX);
    let mut rng = Rng(seed);
    let pieces = drive(stream, 16384, 10240, || 1 + rng.below(9));
    assert_eq!(whole.0, pieces.0, "read boundaries changed the parsed requests");
    if whole.1 != End::Incomplete && !matches!(whole.1, End::Head(_)) {
        assert_eq!(whole.1, pieces.1);
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND", "M-SEARCH"];
// No `.`/`..` segments (also `%2e`): the parser refuses those paths (tests/attack.rs).
const SEGMENTS: &[&str] = &["a", "pets", "7", "%2ea", "..a", "x_y", "~u", "", "%2F", "{x}", "caf%C3%A9", "a:b@c"];
const QUERIES: &[&str] = &["a=1", "q=%20&x", "", "a=b?c", "x=1&x=2", "k=/v/"];
const HEADER_NAMES: &[&str] =
    &["X-A", "x-forwarded-for", "Accept", "Cookie", "User-Agent", "Content-Type", "X-Amz-Target"];

fn casing(s: &mut Source, name: &str) -> String {
    match s.below(3) {
        0 => name.to_string(),
        1 => name.to_ascii_lowercase(),
        _ => name.to_ascii_uppercase(),
    }
}

fn value(s: &mut Source) -> Vec<u8> {
    let n = s.below(12);
    let mut v: Vec<u8> = (0..n)
        .map(|_| match s.below(10) {
            0 => b' ',
            1 => b'\t',
            2 => 0x80 | s.byte(),
            _ => b'!' + s.below(94) as u8,
        })
        .collect();
    // Leading and trailing blanks are not part of a field value.
    while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        v.remove(0);
    }
    v
}

/// One valid request on the wire, and what the codec must make of it.
pub fn gen_request(s: &mut Source) -> (Vec<u8>, Parsed) {
    let method = s.pick(METHODS);
    let minor = if s.one_in(6) { 0 } else { 1 };
    let mut path = String::new();
    for _ in 0..s.below(5) {
        path.push('/');
        path.push_str(s.pick(SEGMENTS));
    }
    if path.is_empty() || s.one_in(5) {
        path.push('/');
    }
    let query = if s.one_in(3) { Some(s.pick(QUERIES).to_string()) } else { None };
    let prefix = if s.one_in(8) { s.pick(&["http://h.example", "HTTP://h:8080", "https://[::1]"]) } else { "" };
    let mut w = format!("{method} {prefix}{path}").into_bytes();
    if let Some(q) = &query {
        w.extend_from_slice(format!("?{q}").as_bytes());
    }
    w.extend_from_slice(format!(" HTTP/1.{minor}\r\n").as_bytes());
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if minor == 1 || s.bool() {
        let host = s.pick(&["a", "example.com:8080", "[::1]", "h"]).as_bytes().to_vec();
        headers.push((casing(s, "Host"), host));
    }
    for _ in 0..s.below(4) {
        let name = s.pick(HEADER_NAMES);
        let name = casing(s, name);
        headers.push((name, value(s)));
    }
    let mut close = false;
    let mut ka_token = false;
    if s.one_in(3) {
        let v = s.pick(&[
            "close",
            "keep-alive",
            "x-a, close",
            "Keep-Alive",
            "close, keep-alive",
            "keep-alive, close",
            "x-b",
        ]);
        close = v.to_ascii_lowercase().contains("close");
        ka_token = v.to_ascii_lowercase().contains("keep-alive");
        headers.push((casing(s, "Connection"), v.as_bytes().to_vec()));
    }
    let body: Vec<u8> = {
        let n = if s.bool() { 0 } else { s.below(80) };
        (0..n).map(|_| if s.bool() { s.pick(b"\r\n0GET /") } else { s.byte() }).collect()
    };
    let framing = if minor == 1 { s.below(3) } else { s.below(2) };
    let mut chunked = false;
    let mut encoded = body.clone();
    match framing {
        0 if body.is_empty() => {}
        0 | 1 => {
            let n = body.len();
            let v = match s.below(4) {
                0 => format!("{n}, {n}"),
                1 => format!("00{n}"),
                _ => n.to_string(),
            };
            headers.push((casing(s, "Content-Length"), v.clone().into_bytes()));
            if s.one_in(6) {
                headers.push(("Content-Length".into(), n.to_string().into_bytes()));
            }
        }
        _ => {
            chunked = true;
            let te = s.pick(&["chunked", "Chunked", "CHUNKED", ", chunked", "chunked,"]);
            headers.push((casing(s, "Transfer-Encoding"), te.as_bytes().to_vec()));
            encoded = encode_chunked(s, &body);
        }
    }
    let expect = !body.is_empty() && s.one_in(5);
    if expect {
        headers.push((casing(s, "Expect"), b"100-continue".to_vec()));
    }
    // Shuffle the header order a little.
    if headers.len() > 1 && s.bool() {
        let i = s.below(headers.len());
        let h = headers.remove(i);
        headers.push(h);
    }
    for (n, v) in &headers {
        w.extend_from_slice(n.as_bytes());
        w.extend_from_slice(if s.one_in(4) { b":" } else { b": " });
        w.extend_from_slice(v);
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(&encoded);
    let keep_alive = !close && (minor == 1 || ka_token);
    let parsed = Parsed {
        method: method.as_bytes().to_vec(),
        path: path.into_bytes(),
        query: query.map(String::into_bytes),
        minor,
        keep_alive,
        expect_continue: expect && minor == 1,
        chunked,
        body,
    };
    (w, parsed)
}

/// A valid chunked encoding of `body` with random chunk sizes, extensions and trailers.
pub fn encode_chunked(s: &mut Source, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let ext = |s: &mut Source| -> &'static str {
        if s.one_in(3) {
            s.pick(&[";a=b", "; name", ";x=\"q;\"", " ;e", "\t;e=1"])
        } else {
            ""
        }
    };
    while !rest.is_empty() {
        let n = 1 + s.below(rest.len().min(40));
        let size = match s.below(3) {
            0 => format!("{n:X}"),
            1 => format!("00{n:x}"),
            _ => format!("{n:x}"),
        };
        out.extend_from_slice(size.as_bytes());
        out.extend_from_slice(ext(s).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(if s.bool() { b"0" } else { b"000" });
    out.extend_from_slice(ext(s).as_bytes());
    out.extend_from_slice(b"\r\n");
    for _ in 0..s.below(3) {
        out.extend_from_slice(b"X-Trailer: v\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Generated valid requests, pipelined, split at generated read boundaries: the codec must
/// return exactly the generated sequence and consume every byte.
pub fn pipeline(data: &[u8]) {
    let mut s = Source::new(data);
    let n = 1 + s.below(6);
    let mut wire = Vec::new();
    let mut want = Vec::new();
    for _ in 0..n {
        let (w, p) = gen_request(&mut s);
        wire.extend_from_slice(&w);
        want.push(p);
    }
    let mode = s.below(4);
    let mut rng = Rng(s.byte() as u64);
    let (got, end) = drive(&wire, 16384, 10240, || match mode {
        0 => usize::MAX,
        1 => 1,
        2 => 1 + rng.below(17),
        _ => 1 + rng.below(400),
    });
    assert_eq!(end, End::Clean, "stream {:?}", String::from_utf8_lossy(&wire));
    assert_eq!(got, want, "stream {:?}", String::from_utf8_lossy(&wire));
}
