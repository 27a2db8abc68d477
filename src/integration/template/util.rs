//! `$util`: escaping, URL and base64 coding, JSON parsing/printing, as API Gateway defines them.
//! Null arguments give null (so `$util.x($undefined)` prints like an undefined reference).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::eval::{fail, Ctx, R};
use super::value::{write_json, Val};

/// Standard alphabet; padding optional when decoding.
const B64_DECODE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn call<'a>(cx: &mut Ctx<'a>, name: &str, args: &[Val<'a>]) -> R<Val<'a>> {
    let known = matches!(
        name,
        "escapeJavaScript" | "urlEncode" | "urlDecode" | "base64Encode" | "base64Decode" | "parseJson" | "toJson"
    );
    let [a] = args else {
        return fail(if known {
            format!("$util.{name} expects 1 argument")
        } else {
            format!("unknown method '$util.{name}'")
        });
    };
    if name == "toJson" {
        let mut out = Vec::new();
        if !write_json(a, &mut out, cx.limits.max_output) {
            return fail(format!("value longer than {} bytes", cx.limits.max_output));
        }
        return cx.owned(String::from_utf8_lossy(&out).into_owned());
    }
    if !known {
        return fail(format!("unknown method '$util.{name}'"));
    }
    if matches!(a, Val::Null) {
        return Ok(Val::Null);
    }
    let s = cx.text(a)?.into_owned();
    let out = match name {
        "escapeJavaScript" => escape_js(&s),
        "urlEncode" => url_encode(&s),
        "urlDecode" => match url_decode(&s) {
            Some(d) => d,
            None => return fail("$util.urlDecode: malformed %-escape"),
        },
        "base64Encode" => STANDARD.encode(s.as_bytes()),
        "base64Decode" => match B64_DECODE.decode(s.trim().as_bytes()) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => return fail(format!("$util.base64Decode: invalid base64: {e}")),
        },
        _ => {
            // parseJson
            cx.charge(s.len())?;
            return match serde_json::from_str(&s) {
                Ok(v) => Ok(Val::from_owned_json(v)),
                Err(e) => fail(format!("$util.parseJson: invalid JSON: {e}")),
            };
        }
    };
    cx.owned(out)
}

/// Apache Commons Lang 2 `StringEscapeUtils.escapeJavaScript`: `' " \ /` get a backslash,
/// control characters their short or `\uXXXX` form, everything beyond ASCII `\uXXXX` (UTF-16).
pub(crate) fn escape_js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut units = [0u16; 2];
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            ' '..='\u{7f}' => out.push(c),
            _ => {
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", u));
                }
            }
        }
    }
    out
}

/// `application/x-www-form-urlencoded` like Java's `URLEncoder` (UTF-8; space is `+`).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Inverse of `url_encode`; `None` on a malformed `%` escape (Java throws).
pub(crate) fn url_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let h = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{r, rerr};
    use super::*;

    #[test]
    fn escape_javascript() {
        assert_eq!(escape_js("a'b\"c\\d/e\nf\r\tg"), "a\\'b\\\"c\\\\d\\/e\\nf\\r\\tg");
        assert_eq!(escape_js("\u{1}é😀"), "\\u0001\\u00E9\\uD83D\\uDE00");
        assert_eq!(r("$util.escapeJavaScript($input.path('$.items[1].name'))"), "O\\'Malley \\\"the cat\\\"");
    }

    #[test]
    fn url_coding() {
        assert_eq!(url_encode("a b&c=d/é*~"), "a+b%26c%3Dd%2F%C3%A9*%7E");
        assert_eq!(url_decode("a+b%26c%3dd%2F%C3%A9").as_deref(), Some("a b&c=d/é"));
        assert_eq!(r("$util.urlEncode('x y')|$util.urlDecode('x+y%21')"), "x+y|x y!");
        assert!(rerr("$util.urlDecode('%zz')").contains("malformed"));
        assert!(rerr("$util.urlDecode('abc%4')").contains("malformed"));
    }

    #[test]
    fn base64() {
        assert_eq!(r("$util.base64Encode('hello')"), "aGVsbG8=");
        assert_eq!(r("$util.base64Decode('aGVsbG8=')|$util.base64Decode('aGVsbG8')"), "hello|hello");
        assert!(rerr("$util.base64Decode('***')").contains("invalid base64"));
    }

    #[test]
    fn parse_and_to_json() {
        assert_eq!(r("#set($o = $util.parseJson('{\"a\":[1,2]}'))$o.a.size() $o.a[1]"), "2 2");
        assert!(rerr("$util.parseJson('{oops')").contains("invalid JSON"));
        assert_eq!(r("$util.toJson({'k': [1, 'two', true, null]})"), r#"{"k":[1,"two",true,null]}"#);
        assert_eq!(r("$util.toJson($input.params('q'))"), r#""cats""#);
        assert_eq!(r("$util.toJson($nothing)"), "null");
    }

    #[test]
    fn null_argument_and_unknown() {
        assert_eq!(r("$util.escapeJavaScript($nope)"), "$util.escapeJavaScript($nope)");
        assert!(rerr("$util.frobnicate('x')").contains("$util.frobnicate"));
        assert!(rerr("$util.urlEncode()").contains("expects 1 argument"));
    }
}
