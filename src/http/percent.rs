//! Percent-decoding (RFC 3986 section 2.1) of query names and values. A '%' not followed
//! by two hex digits stays as it is.

/// Decodes `%XX` escapes; with `plus_as_space`, '+' becomes ' ' (form encoding).
pub fn decode(v: &[u8], plus_as_space: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if let (Some(h), Some(l)) = (v.get(i + 1).and_then(|&b| hex(b)), v.get(i + 2).and_then(|&b| hex(b))) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if plus_as_space && v[i] == b'+' { b' ' } else { v[i] });
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_plus_and_broken_escapes() {
        assert_eq!(decode(b"a%20b%2Fc", false), b"a b/c");
        assert_eq!(decode(b"a+b", false), b"a+b");
        assert_eq!(decode(b"a+b", true), b"a b");
        assert_eq!(decode(b"100%", false), b"100%");
        assert_eq!(decode(b"%zz%4", false), b"%zz%4");
    }
}
