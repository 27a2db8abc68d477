//! Upstream response heads: no panic on any bytes, framing as RFC 9112 section 6.3 says,
//! and the body decoder fed from the same buffer agrees with itself across read sizes.

use crate::chunked::{decode, Outcome};
use crate::gen::{Rng, Source};
use ringway::http::body::{Chunk, Decoder};
use ringway::http::request::Field;
use ringway::http::response::parse;

const PREFIXES: &[&str] = &[
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.0 200 OK\r\n",
    "HTTP/1.1 204 No Content\r\n",
    "HTTP/1.1 304 Not Modified\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
    "HTTP/1.1 502 \r\n",
    "HTTP/1.1 999 X\r\n",
    "HTTP/1.1 200\r\n",
];
const HEADERS: &[&str] = &[
    "Content-Length: 5\r\n",
    "Content-Length: 5, 5\r\n",
    "Content-Length: 6\r\n",
    "content-length: 0\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Transfer-Encoding: chunked, gzip\r\n",
    "Transfer-Encoding: gzip\r\n",
    "Connection: close\r\n",
    "Connection: keep-alive\r\n",
    "Connection: close, keep-alive\r\n",
    "Connection: x-hop, Keep-Alive\r\n",
    "Content-Type: text/plain\r\n",
    "X-Hop: 1\r\n",
    "Server: up\r\n",
];
const BODIES: &[&str] = &["hello", "5\r\nhello\r\n0\r\n\r\n", "", "0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "\r\n\r\n"];

/// Builds a plausible response from the input's choices, then lets the rest of the input
/// mutate it; mode bit 7 uses the raw input instead.
pub fn response(data: &[u8]) {
    let mut s = Source::new(data);
    let mode = s.byte();
    let head_request = mode & 1 == 1;
    let seed = s.byte() as u64;
    let input: Vec<u8> = if mode & 0x80 != 0 {
        s.rest().to_vec()
    } else {
        let mut w = s.pick(PREFIXES).as_bytes().to_vec();
        for _ in 0..s.below(5) {
            w.extend_from_slice(s.pick(HEADERS).as_bytes());
        }
        w.extend_from_slice(b"\r\n");
        w.extend_from_slice(s.pick(BODIES).as_bytes());
        let mut rng = Rng(seed);
        if mode & 2 == 2 {
            w = rng.mutate(&w, &[b"\r\n", b"Content-Length: ", b"Transfer-Encoding: chunked\r\n", b"\n"]);
        }
        w
    };
    check(&input, head_request, seed);
}

fn check(input: &[u8], head_request: bool, seed: u64) {
    let mut fields: Vec<Field> = Vec::new();
    let r = match parse(input, head_request, &mut fields) {
        Ok(Some(r)) => r,
        Ok(None) | Err(_) => return,
    };
    assert!(r.len <= input.len());
    let buf = &input[..r.len];
    assert!(r.reason.1 as usize <= r.len && r.reason.0 <= r.reason.1);
    for f in &fields {
        assert!(f.name.1 as usize <= r.len && f.value.1 as usize <= r.len);
    }
    for k in [r.len - 1, r.len / 2] {
        assert!(!matches!(parse(&input[..k], head_request, &mut Vec::new()), Ok(Some(_))), "prefix {k} complete");
    }
    // Framing, decided again from the fields (RFC 9112 section 6.3).
    let named = |n: &'static [u8]| {
        fields.iter().filter(move |f| f.name(buf).eq_ignore_ascii_case(n)).map(move |f| f.value(buf))
    };
    let codings: Vec<Vec<u8>> = named(b"transfer-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase().into_bytes())
        .filter(|c| !c.is_empty())
        .collect();
    let cl: Vec<u64> = named(b"content-length")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|c| String::from_utf8_lossy(c).trim().parse().unwrap())
        .collect();
    assert!(cl.windows(2).all(|w| w[0] == w[1]), "differing Content-Length accepted");
    // RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing.
    assert!(
        !(buf.starts_with(b"HTTP/1.0") && named(b"transfer-encoding").next().is_some()),
        "HTTP/1.0 response with Transfer-Encoding accepted"
    );
    let close = named(b"connection").flat_map(|v| v.split(|&b| b == b',')).any(|t| {
        let t = String::from_utf8_lossy(t);
        t.trim().eq_ignore_ascii_case("close")
    });
    if close {
        assert!(!r.keep_alive, "Connection: close but the connection is kept");
    }
    let bodiless = head_request || (100..200).contains(&r.status) || r.status == 204 || r.status == 304;
    let expect = if bodiless {
        None
    } else if !codings.is_empty() {
        // ringway decodes chunked only; a response with any other coding is refused (502).
        assert!(codings.iter().all(|c| c == b"chunked"), "accepted codings {codings:?}");
        Some(Decoder::Chunked(Chunk::Size))
    } else if let Some(&n) = cl.first() {
        Some(Decoder::Length(n))
    } else {
        Some(Decoder::Eof)
    };
    assert_eq!(r.body, expect, "head {:?}", String::from_utf8_lossy(buf));
    if r.body == Some(Decoder::Eof) {
        assert!(!r.keep_alive, "a body delimited by close on a kept connection");
    }
    // The body: same outcome whatever the read sizes.
    if let Some(d) = r.body.clone() {
        let rest = &input[r.len..];
        let whole = decode(d.clone(), rest, || usize::MAX);
        let mut rng = Rng(seed);
        let pieces = decode(d, rest, || 1 + rng.below(7));
        assert_eq!(whole, pieces);
        if let Outcome::Done(_, used) = whole {
            assert!(used <= rest.len());
        }
    }
}
