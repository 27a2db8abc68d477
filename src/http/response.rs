//! Upstream response head parsing and framing (RFC 9112 section 6.3).

use super::body::{Chunk, Decoder};
use super::request::{name_is, parse_length, trim, Field, MAX_HEADERS};

#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: (u32, u32),
    pub len: usize,
    /// None: the response has no body.
    pub body: Option<Decoder>,
    /// The upstream lets us reuse the connection.
    pub keep_alive: bool,
    pub conn_tokens: smallvec::SmallVec<[(u32, u32); 4]>,
    pub has_content_type: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidResponse(pub &'static str);

/// Parses an upstream response head. Ok(None): incomplete.
pub fn parse(buf: &[u8], head_request: bool, fields: &mut Vec<Field>) -> Result<Option<ResponseHead>, InvalidResponse> {
    // Uninitialised, as in `request::parse`.
    let mut raw = [std::mem::MaybeUninit::<httparse::Header>::uninit(); MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(InvalidResponse("malformed response head")),
    };
    let base = buf.as_ptr() as usize;
    let off = |s: &[u8]| (s.as_ptr() as usize - base) as u32;
    let status = res.code.unwrap_or(0);
    let minor = res.version.unwrap_or(1);
    let reason = res.reason.unwrap_or("");
    let r0 = if reason.is_empty() { 0 } else { off(reason.as_bytes()) };
    let mut out = ResponseHead {
        status,
        reason: (r0, r0 + reason.len() as u32),
        len,
        body: None,
        keep_alive: minor == 1,
        conn_tokens: smallvec::SmallVec::new(),
        has_content_type: false,
    };
    fields.clear();
    let mut cl: Option<u64> = None;
    let mut te_seen = false;
    let mut te_chunked = false;
    let mut te_other = false;
    let mut close = false;
    let mut keep_alive_token = false;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let value = h.value;
        let n0 = off(name);
        let v0 = off(value);
        fields.push(Field { name: (n0, n0 + name.len() as u32), value: (v0, v0 + value.len() as u32) });
        if name_is(name, b"content-length") {
            for part in value.split(|&b| b == b',') {
                let n = parse_length(trim(part)).ok_or(InvalidResponse("invalid Content-Length"))?;
                if cl.is_some_and(|c| c != n) {
                    return Err(InvalidResponse("conflicting Content-Length"));
                }
                cl = Some(n);
            }
        } else if name_is(name, b"transfer-encoding") {
            te_seen = true;
            for c in value.split(|&b| b == b',').map(trim).filter(|c| !c.is_empty()) {
                te_chunked = c.eq_ignore_ascii_case(b"chunked");
                te_other |= !te_chunked;
            }
        } else if name_is(name, b"connection") {
            for tok in value.split(|&b| b == b',').map(trim) {
                if tok.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    // "close" wins wherever it appears (RFC 9112 section 9.3).
                    keep_alive_token = true;
                } else if !tok.is_empty() && out.conn_tokens.len() < 16 {
                    let t0 = off(tok);
                    out.conn_tokens.push((t0, t0 + tok.len() as u32));
                }
            }
        } else if name_is(name, b"content-type") {
            out.has_content_type = true;
        }
    }
    // RFC 9112 section 6.1: "A server or client that receives an HTTP/1.0 message containing
    // a Transfer-Encoding header field MUST treat the message as if the framing is faulty,
    // even if a Content-Length is present, and close the connection after processing the
    // message." An HTTP/1.0 peer cannot have chunked it; decoding it anyway could read a
    // body the upstream ends elsewhere. A 502, and the connection is not pooled.
    if te_seen && minor == 0 {
        return Err(InvalidResponse("Transfer-Encoding in an HTTP/1.0 response"));
    }
    // RFC 9112 section 6.3 rule 3: both framings "ought to be handled as an error" (a
    // response-splitting attempt, or an upstream that disagrees with itself); nginx
    // answers 502 too. Never guess, and never pool such a connection.
    if (te_chunked || te_other) && cl.is_some() {
        return Err(InvalidResponse("both Content-Length and Transfer-Encoding"));
    }
    // Only chunked is decoded. Another transfer coding would have to be forwarded as it is,
    // framing included (`gzip, chunked`) or read until close (`gzip`); nginx refuses such
    // a response with 502, and so does ringway.
    if te_other {
        return Err(InvalidResponse("a transfer coding other than chunked"));
    }
    out.keep_alive = !close && (minor == 1 || keep_alive_token);
    out.body = if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
        None
    } else if te_chunked {
        Some(Decoder::Chunked(Chunk::Size))
    } else if let Some(n) = cl {
        Some(Decoder::Length(n))
    } else {
        out.keep_alive = false;
        Some(Decoder::Eof)
    };
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, head: bool) -> ResponseHead {
        parse(s.as_bytes(), head, &mut Vec::new()).unwrap().unwrap()
    }

    #[test]
    fn framing_rules() {
        assert_eq!(p("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", false).body, Some(Decoder::Length(3)));
        assert_eq!(p("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).body, None);
        assert_eq!(p("HTTP/1.1 204 No Content\r\n\r\n", false).body, None);
        assert_eq!(p("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false).body, None);
        assert_eq!(
            p("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).body,
            Some(Decoder::Chunked(Chunk::Size))
        );
        let eof = p("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((eof.body, eof.keep_alive), (Some(Decoder::Eof), false));
        assert!(!p("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false).keep_alive);
        assert!(!p("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false).keep_alive);
        assert!(p("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false).keep_alive);
        // Found by tests/fuzz.rs (response_parser): a pooled connection the upstream closes.
        assert!(!p("HTTP/1.0 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n", false).keep_alive);
        assert!(
            !p("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false)
                .keep_alive
        );
    }

    #[test]
    fn invalid_responses() {
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, &mut Vec::new())
            .is_err());
        assert!(parse(b"HTTX/1.1 200 OK\r\n\r\n", false, &mut Vec::new()).is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-", false, &mut Vec::new()).unwrap().is_none());
    }

    #[test]
    fn transfer_encoding_in_http_1_0_is_faulty_framing() {
        // RFC 9112 section 6.1, whatever the coding, the status or a Content-Length.
        for head in [
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            "HTTP/1.0 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: \r\n\r\n",
        ] {
            let e = parse(head.as_bytes(), false, &mut Vec::new()).unwrap_err();
            assert_eq!(e, InvalidResponse("Transfer-Encoding in an HTTP/1.0 response"), "{head:?}");
        }
        // HTTP/1.1 chunked and HTTP/1.0 without a coding are still fine.
        assert!(p("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).body.is_some());
        assert_eq!(p("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", false).body, Some(Decoder::Length(2)));
    }
}
