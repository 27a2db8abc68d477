//! Writing JSON straight into a byte buffer: quoted strings, keys, nulls. For the function
//! events, which are built per request without an intermediate tree.

/// Writes `s` as a JSON string. Invalid UTF-8 becomes U+FFFD.
pub fn str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        escape(out, chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
    out.push(b'"');
}

fn escape(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if esc.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Writes `"key":` (the key is a literal without characters to escape).
#[inline]
pub fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Writes `"key":"value"` followed by a comma.
pub fn field(out: &mut Vec<u8>, k: &str, v: &[u8]) {
    key(out, k);
    str(out, v);
    out.push(b',');
}

/// Removes a trailing comma before closing an object or array.
pub fn close(out: &mut Vec<u8>, closer: u8) {
    if out.last() == Some(&b',') {
        out.pop();
    }
    out.push(closer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_valid() {
        let mut out = Vec::new();
        str(&mut out, b"a\"b\\c\nd\x01\xffe \xc3\xa9");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001\u{fffd}e \u{e9}\"");
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v.as_str().unwrap(), "a\"b\\c\nd\u{1}\u{fffd}e \u{e9}");
    }

    #[test]
    fn objects_close_cleanly() {
        let mut out = vec![b'{'];
        field(&mut out, "a", b"1");
        field(&mut out, "b", b"2");
        close(&mut out, b'}');
        assert_eq!(out, br#"{"a":"1","b":"2"}"#);
        let mut empty = vec![b'{'];
        close(&mut empty, b'}');
        assert_eq!(empty, b"{}");
    }
}
