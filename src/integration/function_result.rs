//! A function's answer turned into an HTTP response, with the reference's validation
//! (section 7.3 for payload format 1.0, 7.4 for 2.0). Err means 502
//! `{"message": "Internal server error"}`.

use base64::Engine;
use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

fn status(v: Option<&Value>) -> Result<u16, Malformed> {
    let n = match v {
        None | Some(Value::Null) => return Ok(200),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n @ 100..=599) => Ok(n as u16),
        _ => Err(Malformed("statusCode is not a valid status")),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_error_payload(m: &Map<String, Value>) -> bool {
    m.contains_key("errorMessage") && m.contains_key("errorType")
}

fn decode_body(body: Option<&Value>, base64: bool) -> Result<Vec<u8>, Malformed> {
    let text = match body {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.as_bytes(),
        Some(_) => return Err(Malformed("body is not a string")),
    };
    if base64 {
        base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| Malformed("body is not valid base64"))
    } else {
        Ok(text.to_vec())
    }
}

/// Payload format 1.0. `binary_ok`: the caller's first Accept type is a binary media type,
/// so a base64 body is decoded (otherwise it goes out as the base64 text).
pub fn v1(payload: &[u8], binary_ok: bool) -> Result<Answer, Malformed> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| Malformed("not JSON"))?;
    let Value::Object(m) = v else { return Err(Malformed("not a JSON object")) };
    if is_error_payload(&m) {
        return Err(Malformed("function error"));
    }
    const ALLOWED: [&str; 5] = ["statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"];
    if m.keys().any(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(Malformed("unexpected key in the response"));
    }
    let status = status(m.get("statusCode"))?;
    // multiValueHeaders first: their name casing wins and their values come first.
    let mut headers: Vec<(String, String)> = Vec::new();
    match m.get("multiValueHeaders") {
        None | Some(Value::Null) => {}
        Some(Value::Object(mv)) => {
            for (k, vs) in mv {
                let Value::Array(vs) = vs else { return Err(Malformed("multiValueHeaders value is not a list")) };
                let vals: Option<Vec<String>> = vs.iter().map(scalar).collect();
                let vals = vals.ok_or(Malformed("multiValueHeaders value is not a list of strings"))?;
                headers.push((k.clone(), vals.join(", ")));
            }
        }
        Some(_) => return Err(Malformed("multiValueHeaders is not an object")),
    }
    match m.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                let v = scalar(v).ok_or(Malformed("header value is not a string"))?;
                match headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                    Some((_, existing)) => {
                        existing.push_str(", ");
                        existing.push_str(&v);
                    }
                    None => headers.push((k.clone(), v)),
                }
            }
        }
        Some(_) => return Err(Malformed("headers is not an object")),
    }
    let base64 = match m.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Malformed("isBase64Encoded is not a boolean")),
    };
    let body = decode_body(m.get("body"), base64 && binary_ok)?;
    Ok(Answer { status, headers, body })
}

/// Payload format 2.0, with its inference: valid JSON without `statusCode` is a 200 whose
/// body is that JSON (a JSON string: its text).
pub fn v2(payload: &[u8]) -> Result<Answer, Malformed> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| Malformed("not JSON"))?;
    let inferred =
        |body: Vec<u8>| Answer { status: 200, headers: vec![("content-type".into(), "application/json".into())], body };
    let m = match v {
        Value::Object(m) if m.contains_key("statusCode") => m,
        Value::Object(m) if is_error_payload(&m) => return Err(Malformed("function error")),
        Value::String(s) => return Ok(inferred(s.into_bytes())),
        other => return Ok(inferred(other.to_string().into_bytes())),
    };
    let status = status(m.get("statusCode"))?;
    let mut headers = Vec::new();
    match m.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(h)) => {
            for (k, v) in h {
                headers.push((k.clone(), scalar(v).ok_or(Malformed("header value is not a string"))?));
            }
        }
        Some(_) => return Err(Malformed("headers is not an object")),
    }
    match m.get("cookies") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cs)) => {
            for c in cs {
                headers.push(("set-cookie".into(), scalar(c).ok_or(Malformed("cookie is not a string"))?));
            }
        }
        Some(_) => return Err(Malformed("cookies is not a list")),
    }
    let base64 = matches!(m.get("isBase64Encoded"), Some(Value::Bool(true)));
    let body = decode_body(m.get("body"), base64)?;
    Ok(Answer { status, headers, body })
}

/// Whether `accept`'s first media type is one of `types` (`type/*` and `*/*` allowed on
/// either side).
pub fn accepts_binary(accept: Option<&[u8]>, types: &[String]) -> bool {
    let Some(accept) = accept else { return false };
    let first = accept.split(|&b| b == b',').next().unwrap_or_default();
    let first = first.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    types.iter().any(|t| media_matches(first, t.as_bytes()))
}

/// Whether a request body of `content_type` is binary per `types`.
pub fn is_binary(content_type: Option<&[u8]>, types: &[String]) -> bool {
    let Some(ct) = content_type else { return false };
    let ct = ct.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
    types.iter().any(|t| media_matches(ct, t.as_bytes()))
}

fn media_matches(a: &[u8], b: &[u8]) -> bool {
    if a == b"*/*" || b == b"*/*" || a.eq_ignore_ascii_case(b) {
        return !a.is_empty();
    }
    let split = |m: &[u8]| {
        let i = memchr::memchr(b'/', m).unwrap_or(m.len());
        (m[..i].to_ascii_lowercase(), m.get(i + 1..).unwrap_or_default().to_ascii_lowercase())
    };
    let ((at, asub), (bt, bsub)) = (split(a), split(b));
    at == bt && (asub == b"*" || bsub == b"*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok1(p: &str) -> Answer {
        v1(p.as_bytes(), false).unwrap_or_else(|e| panic!("{p}: {e:?}"))
    }

    #[test]
    fn v1_reference_table() {
        assert_eq!(ok1(r#"{"statusCode":200}"#), Answer { status: 200, headers: vec![], body: vec![] });
        assert_eq!(ok1(r#"{"headers":{"test-header":"value"}}"#).status, 200);
        assert_eq!(ok1(r#"{"statusCode":"201"}"#).status, 201);
        assert!(v1(br#"{"statusCode":"test"}"#, false).is_err());
        assert!(v1(br#"{"statusCode":200,"wrongValue":"value"}"#, false).is_err());
        assert!(v1(br#""justAString""#, false).is_err());
        assert!(v1(b"not json", false).is_err());
        assert!(v1(b"null", false).is_err());
        assert!(v1(b"", false).is_err());
        assert_eq!(ok1(r#"{"headers":{"x":true}}"#).headers, vec![("x".to_string(), "true".to_string())]);
        assert_eq!(ok1(r#"{"headers":null}"#).status, 200);
        assert!(v1(br#"{"multiValueHeaders":{"x":"v"}}"#, false).is_err());
        assert_eq!(
            ok1(r#"{"multiValueHeaders":{"test-multi":["a","b"]}}"#).headers,
            vec![("test-multi".to_string(), "a, b".to_string())]
        );
        assert_eq!(
            ok1(r#"{"multiValueHeaders":{"tesT-Multi":["m"]},"headers":{"test-multi":"s"}}"#).headers,
            vec![("tesT-Multi".to_string(), "m, s".to_string())]
        );
        assert!(v1(br#"{"errorMessage":"boom","errorType":"Error","stackTrace":[]}"#, false).is_err());
        assert!(v1(br#"{"statusCode":700}"#, false).is_err());
    }

    #[test]
    fn v1_base64_is_decoded_only_for_binary_accept() {
        let p = br#"{"statusCode":200,"body":"aGk=","isBase64Encoded":true}"#;
        assert_eq!(v1(p, false).unwrap().body, b"aGk=");
        assert_eq!(v1(p, true).unwrap().body, b"hi");
        assert!(v1(br#"{"body":"***","isBase64Encoded":true}"#, true).is_err());
    }

    #[test]
    fn v2_inference_and_cookies() {
        let a = v2(br#""Hello""#).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"Hello"[..]));
        assert_eq!(v2(br#"{"message":"x"}"#).unwrap().body, br#"{"message":"x"}"#);
        let s = v2(
            br#"{"statusCode":201,"cookies":["a=1","b=2"],"headers":{"x":"y"},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(s.status, 201);
        assert_eq!(s.body, b"hi");
        assert_eq!(s.headers.iter().filter(|(n, _)| n == "set-cookie").count(), 2);
        assert!(v2(br#"{"errorMessage":"boom","errorType":"Error"}"#).is_err());
        assert!(v2(b"{oops").is_err());
    }

    #[test]
    fn media_types() {
        let types = vec!["image/png".to_string(), "application/*".to_string()];
        assert!(accepts_binary(Some(b"image/png, text/html"), &types));
        assert!(!accepts_binary(Some(b"text/html, image/png"), &types));
        assert!(accepts_binary(Some(b"application/octet-stream;q=1"), &types));
        assert!(!accepts_binary(None, &types));
        assert!(accepts_binary(Some(b"image/png"), &["*/*".to_string()]));
        assert!(is_binary(Some(b"image/png; charset=x"), &types));
        assert!(!is_binary(Some(b"text/plain"), &types));
    }
}
