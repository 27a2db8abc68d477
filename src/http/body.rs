//! Message body framing (RFC 9112 section 6): a small state machine per body.
//!
//! `Decoder::step` looks at buffered bytes and says how many it consumed and whether they
//! hold body data, need more input, or end the body. It never copies: data is a range of
//! the input. Bytes after the end are never touched (they are the next pipelined message).

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoder {
    /// `Content-Length`: this many bytes remain.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Response delimited by the server closing the connection (RFC 9112 section 6.3 rule 8).
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    /// In the trailer section; the bytes of it read so far.
    Trailer(usize),
    Done,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes at this range of the input (already counted in `consumed`).
    Data(Range<usize>),
    /// Nothing usable buffered: read more.
    NeedMore,
    /// The body is complete.
    Done,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    InvalidChunkSize,
    ChunkLineTooLong,
    MissingCrlf,
    TrailersTooLong,
}

/// Longest chunk-size line we accept, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes we read (and drop).
const MAX_TRAILERS: usize = 16 * 1024;

impl Decoder {
    pub fn is_done(&self) -> bool {
        matches!(self, Decoder::Length(0) | Decoder::Chunked(Chunk::Done))
    }

    /// Advances over `input`; returns (bytes consumed, what they were).
    pub fn step(&mut self, input: &[u8]) -> Result<(usize, Step), BodyError> {
        match self {
            Decoder::Length(0) => Ok((0, Step::Done)),
            Decoder::Length(rem) => Ok(length(rem, input)),
            Decoder::Eof if input.is_empty() => Ok((0, Step::NeedMore)),
            Decoder::Eof => Ok((input.len(), Step::Data(0..input.len()))),
            Decoder::Chunked(state) => chunked(state, input),
        }
    }
}

fn length(rem: &mut u64, input: &[u8]) -> (usize, Step) {
    if input.is_empty() {
        return (0, Step::NeedMore);
    }
    let n = (*rem).min(input.len() as u64) as usize;
    *rem -= n as u64;
    (n, Step::Data(0..n))
}

fn chunked(state: &mut Chunk, input: &[u8]) -> Result<(usize, Step), BodyError> {
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        match *state {
            Chunk::Size => match chunk_size(rest)? {
                None => return Ok((pos, Step::NeedMore)),
                Some((used, 0)) => {
                    pos += used;
                    *state = Chunk::Trailer(0);
                }
                Some((used, size)) => {
                    pos += used;
                    *state = Chunk::Data(size);
                }
            },
            Chunk::Data(rem) => {
                if rest.is_empty() {
                    return Ok((pos, Step::NeedMore));
                }
                let n = rem.min(rest.len() as u64) as usize;
                *state = if rem == n as u64 { Chunk::DataEnd } else { Chunk::Data(rem - n as u64) };
                return Ok((pos + n, Step::Data(pos..pos + n)));
            }
            // "chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF": the CRLF is required.
            Chunk::DataEnd => {
                if rest.len() < 2 {
                    return Ok((pos, Step::NeedMore));
                }
                if &rest[..2] != b"\r\n" {
                    return Err(BodyError::MissingCrlf);
                }
                pos += 2;
                *state = Chunk::Size;
            }
            // "trailer-section = *( field-line CRLF )" then the final CRLF; trailers are dropped.
            // The limit is on the whole section, not per line: trailers are not body bytes,
            // so without it a client could stream them forever past max_body_bytes.
            // CRLF is required here too, bare LF is an error (see `chunk_size`).
            Chunk::Trailer(seen) => match memchr::memchr(b'\n', rest) {
                None if seen + rest.len() > MAX_TRAILERS => return Err(BodyError::TrailersTooLong),
                None => return Ok((pos, Step::NeedMore)),
                Some(nl) => {
                    let line = &rest[..nl];
                    pos += nl + 1;
                    if line.last() != Some(&b'\r') {
                        return Err(BodyError::MissingCrlf);
                    }
                    if line == b"\r" {
                        *state = Chunk::Done;
                        return Ok((pos, Step::Done));
                    }
                    if seen + nl + 1 > MAX_TRAILERS {
                        return Err(BodyError::TrailersTooLong);
                    }
                    *state = Chunk::Trailer(seen + nl + 1);
                }
            },
            Chunk::Done => return Ok((pos, Step::Done)),
        }
    }
}

/// Parses `HEX [;ext] CRLF`. Ok(None) means the line is not complete yet.
fn chunk_size(input: &[u8]) -> Result<Option<(usize, u64)>, BodyError> {
    let Some(nl) = memchr::memchr(b'\n', input) else {
        return if input.len() > MAX_CHUNK_LINE { Err(BodyError::ChunkLineTooLong) } else { Ok(None) };
    };
    if nl > MAX_CHUNK_LINE {
        return Err(BodyError::ChunkLineTooLong);
    }
    // "chunk-size = 1*HEXDIG": httparse reads a line without digits (just CRLF, or only an
    // extension) as size 0, which would end the body where another parser sees garbage.
    if !input[0].is_ascii_hexdigit() {
        return Err(BodyError::InvalidChunkSize);
    }
    // Bare LF is not a line ending in chunked framing: not after a chunk size, not after
    // chunk data (`Chunk::DataEnd`), not after a trailer line. RFC 9112 section 2.2 lets a
    // recipient "recognize a single LF as a line terminator", but in a body that is a known
    // request-smuggling vector: a front end and a back end that disagree on it disagree on
    // where the body ends. ringway re-frames bodies for upstreams, but refuses rather than
    // guess (a request: 400 and the connection closed; an upstream response: an error).
    if nl == 0 || input[nl - 1] != b'\r' {
        return Err(BodyError::MissingCrlf);
    }
    match httparse::parse_chunk_size(&input[..=nl]) {
        Ok(httparse::Status::Complete((used, size))) => Ok(Some((used, size))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(_) => Err(BodyError::InvalidChunkSize),
    }
}

/// Writes a chunk header for `len` bytes of data.
#[inline]
pub fn write_chunk_header(out: &mut Vec<u8>, len: usize) {
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    buf[i - 1] = b'\n';
    buf[i - 2] = b'\r';
    i -= 2;
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `split` bytes; returns (body, bytes left after the body).
    fn decode(mut d: Decoder, input: &[u8], split: usize) -> Result<(Vec<u8>, usize), BodyError> {
        let mut body = Vec::new();
        let mut avail = split.min(input.len());
        let mut pos = 0;
        loop {
            let (used, step) = d.step(&input[pos..avail])?;
            let base = pos;
            pos += used;
            match step {
                Step::Data(r) => body.extend_from_slice(&input[base + r.start..base + r.end]),
                Step::Done => return Ok((body, input.len() - pos)),
                Step::NeedMore => {
                    assert!(avail < input.len(), "decoder wants more but input is exhausted");
                    avail = (avail + split).min(input.len());
                }
            }
        }
    }

    #[test]
    fn length_stops_at_the_end() {
        for split in [1, 3, 100] {
            let (b, left) = decode(Decoder::Length(5), b"helloGET /", split).unwrap();
            assert_eq!((b.as_slice(), left), (&b"hello"[..], 5));
        }
        assert_eq!(Decoder::Length(0).step(b"x").unwrap(), (0, Step::Done));
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let wire = b"5;foo=bar\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT";
        for split in [1, 2, 7, 1000] {
            let (b, left) = decode(Decoder::Chunked(Chunk::Size), wire, split).unwrap();
            assert_eq!(b, b"hello world");
            assert_eq!(left, 4, "split {split}");
        }
    }

    #[test]
    fn chunked_errors() {
        let bad = |w: &[u8]| decode(Decoder::Chunked(Chunk::Size), w, 1000).unwrap_err();
        assert_eq!(bad(b"zz\r\nhi\r\n0\r\n\r\n"), BodyError::InvalidChunkSize);
        assert_eq!(bad(b"ffffffffffffffffff\r\n"), BodyError::InvalidChunkSize);
        assert_eq!(bad(b"2\r\nhiXX0\r\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"2\nhi\r\n0\r\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(&[b'1'; 5000]), BodyError::ChunkLineTooLong);
        assert_eq!(bad(b"-1\r\n"), BodyError::InvalidChunkSize);
        // Found by tests/fuzz.rs (chunked): httparse reads a chunk-size line without digits as
        // 0, so these ended the body early and the rest became the next request.
        assert_eq!(bad(b"\r\n\r\nGET /smuggled HTTP/1.1\r\n"), BodyError::InvalidChunkSize);
        assert_eq!(bad(b";foo=bar\r\nhello\r\n0\r\n\r\n"), BodyError::InvalidChunkSize);
        assert_eq!(bad(b" 5\r\nhello\r\n0\r\n\r\n"), BodyError::InvalidChunkSize);
        assert_eq!(bad(b"5\r\nhello\r\n\r\n\r\n"), BodyError::InvalidChunkSize);
    }

    #[test]
    fn chunked_lines_need_crlf() {
        // Bare LF after the chunk size, after the data, after a trailer, as the last line.
        let bad = |w: &[u8]| decode(Decoder::Chunked(Chunk::Size), w, 1000).unwrap_err();
        assert_eq!(bad(b"5\nhello\r\n0\r\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5;ext=1\nhello\r\n0\r\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\r\nhello\n0\r\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\r\nhello\r\n0\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\r\nhello\r\n0\r\n\n"), BodyError::MissingCrlf);
        assert_eq!(bad(b"5\nhello\n0\n\n"), BodyError::MissingCrlf);
        // Byte by byte too: the decision does not depend on read boundaries.
        for w in [&b"5\r\nhello\r\n0\r\n\n"[..], b"0\r\nX: 1\nGET / HTTP/1.1\r\n\r\n"] {
            assert_eq!(decode(Decoder::Chunked(Chunk::Size), w, 1).unwrap_err(), BodyError::MissingCrlf);
        }
        let ok = b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(decode(Decoder::Chunked(Chunk::Size), ok, 1).unwrap(), (b"hello".to_vec(), 0));
    }

    #[test]
    fn trailer_section_is_bounded_as_a_whole() {
        // Many short trailer lines: each is small, together they pass the limit.
        let mut wire = b"0\r\n".to_vec();
        for _ in 0..2000 {
            wire.extend_from_slice(b"X-Trailer: 0123456789\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        for split in [7, 100_000] {
            assert_eq!(decode(Decoder::Chunked(Chunk::Size), &wire, split).unwrap_err(), BodyError::TrailersTooLong);
        }
        let ok = b"0\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(decode(Decoder::Chunked(Chunk::Size), ok, 1).unwrap(), (Vec::new(), 0));
    }

    #[test]
    fn eof_body_takes_everything() {
        let mut d = Decoder::Eof;
        assert_eq!(d.step(b"abc").unwrap(), (3, Step::Data(0..3)));
        assert_eq!(d.step(b"").unwrap(), (0, Step::NeedMore));
    }

    #[test]
    fn chunk_header_is_hex() {
        let mut v = Vec::new();
        write_chunk_header(&mut v, 0x1a2f);
        assert_eq!(v, b"1a2f\r\n");
        v.clear();
        write_chunk_header(&mut v, 0);
        assert_eq!(v, b"0\r\n");
    }
}
