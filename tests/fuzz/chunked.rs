//! Chunked body framing: the decoder against a strict reading of RFC 9112 section 7.1, and
//! the same answer whatever the read boundaries.

use crate::gen::{Rng, Source};
use ringway::http::body::{Chunk, Decoder, Step};

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Body complete: the data, and how many input bytes the body took.
    Done(Vec<u8>, usize),
    /// Input ended before the body did.
    NeedMore,
    Error,
}

/// Runs `dec` over `input` as it arrives in pieces of `next_read()` bytes.
pub fn decode(mut dec: Decoder, input: &[u8], mut next_read: impl FnMut() -> usize) -> Outcome {
    let mut avail = next_read().clamp(1, input.len().max(1)).min(input.len());
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let (used, step) = match dec.step(&input[pos..avail]) {
            Ok(s) => s,
            Err(_) => return Outcome::Error,
        };
        let base = pos;
        pos += used;
        assert!(pos <= avail, "consumed past the input");
        match step {
            Step::Data(r) => {
                assert!(r.start < r.end && r.end <= used);
                body.extend_from_slice(&input[base + r.start..base + r.end]);
            }
            Step::Done => return Outcome::Done(body, pos),
            Step::NeedMore => {
                if avail == input.len() {
                    return Outcome::NeedMore;
                }
                avail = (avail + next_read().max(1)).min(input.len());
            }
        }
    }
}

const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// Strict reference: chunk-size is 1 to 16 hex digits, then optional blanks and an extension
/// without CR or LF, then CRLF; data is followed by CRLF; trailer lines end in CRLF (a bare
/// LF is an error), the section ends at an empty line and holds at most 16 KiB.
pub fn reference(input: &[u8]) -> Outcome {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
            return if input.len() - pos > MAX_LINE { Outcome::Error } else { Outcome::NeedMore };
        };
        if nl > MAX_LINE {
            return Outcome::Error;
        }
        let line = &input[pos..pos + nl];
        let Some(line) = line.strip_suffix(b"\r") else { return Outcome::Error };
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return Outcome::Error;
        }
        let after = &line[digits..];
        let blanks = after.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let ext = &after[blanks..];
        if !(ext.is_empty() || ext[0] == b';') || ext.contains(&b'\r') {
            return Outcome::Error;
        }
        let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).unwrap(), 16).unwrap();
        pos += nl + 1;
        if size == 0 {
            break;
        }
        let size = size as usize;
        if input.len() - pos < size {
            return Outcome::NeedMore;
        }
        body.extend_from_slice(&input[pos..pos + size]);
        pos += size;
        match input.get(pos..pos + 2) {
            Some(b"\r\n") => pos += 2,
            Some(_) => return Outcome::Error,
            None => return Outcome::NeedMore,
        }
    }
    let start = pos;
    loop {
        let Some(nl) = input[pos..].iter().position(|&b| b == b'\n') else {
            return if input.len() - start > MAX_TRAILERS { Outcome::Error } else { Outcome::NeedMore };
        };
        let line = &input[pos..pos + nl];
        pos += nl + 1;
        if !line.ends_with(b"\r") {
            return Outcome::Error;
        }
        if line == b"\r" {
            return Outcome::Done(body, pos);
        }
        if pos - start > MAX_TRAILERS {
            return Outcome::Error;
        }
    }
}

/// Arbitrary bytes (or a generated valid encoding when the first byte says so) as a chunked
/// body: the decoder agrees with the reference, whatever the read sizes.
pub fn chunked(data: &[u8]) {
    let mut s = Source::new(data);
    let mode = s.byte();
    let seed = s.byte() as u64;
    let (input, want) = if mode & 3 == 0 {
        let body: Vec<u8> = (0..s.below(200)).map(|_| s.byte()).collect();
        let mut wire = crate::request::encode_chunked(&mut s, &body);
        let n = wire.len();
        wire.extend_from_slice(s.rest());
        (wire, Some(Outcome::Done(body, n)))
    } else {
        (s.rest().to_vec(), None)
    };
    let expected = reference(&input);
    if let Some(want) = want {
        assert_eq!(expected, want, "reference disagrees with the generator");
    }
    let whole = decode(Decoder::Chunked(Chunk::Size), &input, || usize::MAX);
    assert_eq!(whole, expected, "input {:?}", String::from_utf8_lossy(&input));
    let mut rng = Rng(seed);
    for split in [1usize, 2, 0] {
        let got = decode(Decoder::Chunked(Chunk::Size), &input, || if split == 0 { 1 + rng.below(64) } else { split });
        assert_eq!(got, expected, "split {split}, input {:?}", String::from_utf8_lossy(&input));
    }
    // Content-Length framing: takes exactly n bytes, never more.
    let n = (seed as usize * 7) % (input.len() + 2);
    match decode(Decoder::Length(n as u64), &input, || 1 + rng.below(9)) {
        Outcome::Done(b, used) => assert!(used == n && b == input[..n]),
        Outcome::NeedMore => assert!(n > input.len()),
        Outcome::Error => panic!("Content-Length body cannot fail"),
    }
}
