//! Lambda proxy events, payload format 1.0 (REST) and 2.0 (HTTP API), built from the
//! request as the reference (sections 7.2 and 7.4) specifies, written straight as JSON.
//! Reads the request's bytes only.

use super::json::{self, close, field, key};
use crate::http::percent;
use crate::http::request::{Field, Head};
use crate::http::write::put_u64;
use std::collections::BTreeMap;

/// Everything an event is made of.
pub struct Input<'a> {
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub fields: &'a [Field],
    /// Stage name ("" without stages).
    pub stage: &'a str,
    /// Route template, e.g. `/pets/{petId}`.
    pub resource: &'a str,
    /// The request path without the stage.
    pub path: &'a [u8],
    pub params: &'a [String],
    pub caps: &'a [(u32, u32)],
    pub stage_vars: &'a BTreeMap<String, String>,
    pub source_ip: &'a str,
    pub local_port: u16,
    pub request_id: &'a [u8; 36],
    pub epoch_ms: u64,
    pub body: &'a [u8],
    /// The body goes base64-encoded (its type is a binary media type, or it is not UTF-8).
    pub base64_body: bool,
    /// (key id, key value) when the route required an API key.
    pub api_key: Option<(&'a str, &'a [u8])>,
    pub api_id: &'a str,
    pub account_id: &'a str,
    /// `requestContext.authorizer` as JSON (empty: no authorizer ran).
    pub authorizer: &'a [u8],
}

/// Headers by name (ASCII case-insensitive), in first-seen order, with their values.
/// `Content-Length` and `Connection` are left out; `X-Forwarded-*` are the gateway's.
fn grouped_headers<'a>(i: &Input<'a>) -> Vec<(&'a [u8], Vec<&'a [u8]>)> {
    let mut out: Vec<(&[u8], Vec<&[u8]>)> = Vec::with_capacity(i.fields.len());
    for f in i.fields {
        let (n, v) = (f.name(i.buf), f.value(i.buf));
        let skip = ["content-length", "connection", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-for"];
        if skip.iter().any(|s| n.eq_ignore_ascii_case(s.as_bytes())) {
            continue;
        }
        match out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
            Some((_, vs)) => vs.push(v),
            None => out.push((n, vec![v])),
        }
    }
    out
}

/// API Gateway title-cases these two names in events.
fn header_name(n: &[u8]) -> &[u8] {
    if n.eq_ignore_ascii_case(b"authorization") {
        b"Authorization"
    } else if n.eq_ignore_ascii_case(b"user-agent") {
        b"User-Agent"
    } else {
        n
    }
}

fn forwarded_for(i: &Input) -> Vec<u8> {
    let mut v = Vec::new();
    for f in i.fields.iter().filter(|f| f.name(i.buf).eq_ignore_ascii_case(b"x-forwarded-for")) {
        v.extend_from_slice(f.value(i.buf));
        v.extend_from_slice(b", ");
    }
    v.extend_from_slice(i.source_ip.as_bytes());
    v
}

/// Query parameters, decoded, grouped by name in first-seen order.
fn grouped_query(i: &Input) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut out: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    let Some(q) = &i.head.query else { return out };
    for pair in i.buf[q.clone()].split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (n, v) = match memchr::memchr(b'=', pair) {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let (n, v) = (percent::decode(n, false), percent::decode(v, false));
        match out.iter_mut().find(|(k, _)| *k == n) {
            Some((_, vs)) => vs.push(v),
            None => out.push((n, vec![v])),
        }
    }
    out
}

/// `04/Mar/2020:19:15:17 +0000`
pub fn request_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = (epoch_ms / 1000) as i64;
    let (y, m, d) = crate::clock::civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!("{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000", MONTHS[(m - 1) as usize], t / 3600, t / 60 % 60, t % 60)
}

fn header_value<'a>(i: &Input<'a>, name: &[u8]) -> Option<&'a [u8]> {
    i.fields.iter().find(|f| f.name(i.buf).eq_ignore_ascii_case(name)).map(|f| f.value(i.buf))
}

/// Writes `{"k":"v",...},` from pairs; for none, `null,` (1.0) or nothing (2.0 omits it).
fn string_map<'v>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'v str, &'v [u8])>, null_when_empty: bool) {
    let start = out.len();
    out.push(b'{');
    for (k, v) in pairs {
        field(out, k, v);
    }
    if out.len() == start + 1 {
        out.truncate(start);
        if null_when_empty {
            out.extend_from_slice(b"null,");
        }
        return;
    }
    close(out, b'}');
    out.push(b',');
}

/// Writes `["a","b",...],`.
fn string_array<'v>(out: &mut Vec<u8>, items: impl Iterator<Item = &'v [u8]>) {
    out.push(b'[');
    for v in items {
        json::str(out, v);
        out.push(b',');
    }
    close(out, b']');
    out.push(b',');
}

fn path_parameters(out: &mut Vec<u8>, i: &Input, null_when_empty: bool) {
    let pairs = i.params.iter().zip(i.caps).map(|(n, &(a, b))| (n.as_str(), &i.buf[a as usize..b as usize]));
    string_map(out, pairs, null_when_empty);
}

fn stage_variables(out: &mut Vec<u8>, i: &Input, null_when_empty: bool) {
    string_map(out, i.stage_vars.iter().map(|(k, v)| (k.as_str(), v.as_bytes())), null_when_empty);
}

fn body(out: &mut Vec<u8>, i: &Input) {
    key(out, "body");
    if i.body.is_empty() && i.head.body == crate::http::request::BodyKind::None {
        out.extend_from_slice(b"null,");
    } else if i.base64_body {
        out.push(b'"');
        base64_into(out, i.body);
        out.extend_from_slice(b"\",");
    } else {
        json::str(out, i.body);
        out.push(b',');
    }
    key(out, "isBase64Encoded");
    out.extend_from_slice(if i.base64_body { b"true" } else { b"false" });
}

fn base64_into(out: &mut Vec<u8>, data: &[u8]) {
    use base64::Engine;
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, 0);
    let n = base64::engine::general_purpose::STANDARD.encode_slice(data, &mut out[start..]).unwrap_or(0);
    out.truncate(start + n);
}

/// Payload format 1.0.
pub fn v1(out: &mut Vec<u8>, i: &Input) {
    let method = &i.buf[i.head.method_range.clone()];
    out.push(b'{');
    field(out, "resource", i.resource.as_bytes());
    field(out, "path", i.path);
    field(out, "httpMethod", method);

    let headers = grouped_headers(i);
    let xff = forwarded_for(i);
    let port = i.local_port.to_string();
    let gateway =
        [(&b"X-Forwarded-For"[..], &xff[..]), (b"X-Forwarded-Port", port.as_bytes()), (b"X-Forwarded-Proto", b"http")];
    key(out, "headers");
    out.push(b'{');
    for (n, vs) in &headers {
        key_bytes(out, header_name(n));
        json::str(out, vs.last().copied().unwrap_or_default());
        out.push(b',');
    }
    for (n, v) in gateway {
        key_bytes(out, n);
        json::str(out, v);
        out.push(b',');
    }
    close(out, b'}');
    out.push(b',');
    key(out, "multiValueHeaders");
    out.push(b'{');
    for (n, vs) in &headers {
        key_bytes(out, header_name(n));
        string_array(out, vs.iter().copied());
    }
    for (n, v) in gateway {
        key_bytes(out, n);
        out.push(b'[');
        json::str(out, v);
        out.extend_from_slice(b"],");
    }
    close(out, b'}');
    out.push(b',');

    let query = grouped_query(i);
    key(out, "queryStringParameters");
    if query.is_empty() {
        out.extend_from_slice(b"null,");
    } else {
        out.push(b'{');
        for (n, vs) in &query {
            key_bytes(out, n);
            json::str(out, vs.last().map(Vec::as_slice).unwrap_or_default());
            out.push(b',');
        }
        close(out, b'}');
        out.push(b',');
    }
    key(out, "multiValueQueryStringParameters");
    if query.is_empty() {
        out.extend_from_slice(b"null,");
    } else {
        out.push(b'{');
        for (n, vs) in &query {
            key_bytes(out, n);
            string_array(out, vs.iter().map(Vec::as_slice));
        }
        close(out, b'}');
        out.push(b',');
    }
    key(out, "pathParameters");
    path_parameters(out, i, true);
    key(out, "stageVariables");
    stage_variables(out, i, true);

    key(out, "requestContext");
    out.push(b'{');
    field(out, "accountId", i.account_id.as_bytes());
    field(out, "apiId", i.api_id.as_bytes());
    if !i.authorizer.is_empty() {
        key(out, "authorizer");
        out.extend_from_slice(i.authorizer);
        out.push(b',');
    }
    field(out, "domainName", header_value(i, b"host").unwrap_or_default());
    field(out, "extendedRequestId", i.request_id);
    field(out, "httpMethod", method);
    key(out, "identity");
    out.push(b'{');
    for k in ["accessKey", "accountId", "caller", "cognitoAuthenticationProvider", "cognitoAuthenticationType"] {
        key(out, k);
        out.extend_from_slice(b"null,");
    }
    for k in ["cognitoIdentityId", "cognitoIdentityPoolId", "principalOrgId", "user", "userArn"] {
        key(out, k);
        out.extend_from_slice(b"null,");
    }
    field(out, "sourceIp", i.source_ip.as_bytes());
    key(out, "userAgent");
    match header_value(i, b"user-agent") {
        Some(ua) => json::str(out, ua),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b',');
    if let Some((id, value)) = i.api_key {
        field(out, "apiKey", value);
        field(out, "apiKeyId", id.as_bytes());
    }
    close(out, b'}');
    out.push(b',');
    field(out, "path", &i.buf[i.head.path.clone()]);
    field(out, "protocol", if i.head.minor == 0 { b"HTTP/1.0" } else { b"HTTP/1.1" });
    field(out, "requestId", i.request_id);
    field(out, "requestTime", request_time(i.epoch_ms).as_bytes());
    key(out, "requestTimeEpoch");
    put_u64(out, i.epoch_ms);
    out.push(b',');
    field(out, "resourceId", i.resource.as_bytes());
    field(out, "resourcePath", i.resource.as_bytes());
    field(out, "stage", stage_name(i).as_bytes());
    close(out, b'}');
    out.push(b',');
    body(out, i);
    out.push(b'}');
}

fn stage_name<'a>(i: &Input<'a>) -> &'a str {
    if i.stage.is_empty() {
        "$default"
    } else {
        i.stage
    }
}

fn key_bytes(out: &mut Vec<u8>, k: &[u8]) {
    json::str(out, k);
    out.push(b':');
}

/// Payload format 2.0.
pub fn v2(out: &mut Vec<u8>, i: &Input) {
    let method = &i.buf[i.head.method_range.clone()];
    let route_key = format!("{} {}", String::from_utf8_lossy(method), i.resource);
    out.push(b'{');
    field(out, "version", b"2.0");
    field(out, "routeKey", route_key.as_bytes());
    field(out, "rawPath", i.path);
    field(out, "rawQueryString", i.head.query.clone().map_or(&[][..], |q| &i.buf[q]));

    let mut cookies: Vec<&[u8]> = Vec::new();
    for f in i.fields.iter().filter(|f| f.name(i.buf).eq_ignore_ascii_case(b"cookie")) {
        cookies.extend(f.value(i.buf).split(|&b| b == b';').map(|c| c.trim_ascii()).filter(|c| !c.is_empty()));
    }
    if !cookies.is_empty() {
        key(out, "cookies");
        string_array(out, cookies.into_iter());
    }
    key(out, "headers");
    out.push(b'{');
    let xff = forwarded_for(i);
    for (n, vs) in grouped_headers(i) {
        if n.eq_ignore_ascii_case(b"cookie") {
            continue;
        }
        key_bytes(out, &n.to_ascii_lowercase());
        json::str(out, &vs.join(&b","[..]));
        out.push(b',');
    }
    field(out, "x-forwarded-for", &xff);
    field(out, "x-forwarded-port", i.local_port.to_string().as_bytes());
    field(out, "x-forwarded-proto", b"http");
    close(out, b'}');
    out.push(b',');
    let query = grouped_query(i);
    if !query.is_empty() {
        key(out, "queryStringParameters");
        out.push(b'{');
        for (n, vs) in &query {
            key_bytes(out, n);
            json::str(out, &vs.join(&b","[..]));
            out.push(b',');
        }
        close(out, b'}');
        out.push(b',');
    }
    if !i.params.is_empty() {
        key(out, "pathParameters");
        path_parameters(out, i, false);
    }
    if !i.stage_vars.is_empty() {
        key(out, "stageVariables");
        stage_variables(out, i, false);
    }
    key(out, "requestContext");
    out.push(b'{');
    field(out, "accountId", i.account_id.as_bytes());
    field(out, "apiId", i.api_id.as_bytes());
    if !i.authorizer.is_empty() {
        key(out, "authorizer");
        out.extend_from_slice(i.authorizer);
        out.push(b',');
    }
    let host = header_value(i, b"host").unwrap_or_default();
    field(out, "domainName", host);
    field(out, "domainPrefix", host.split(|&b| b == b'.').next().unwrap_or_default());
    key(out, "http");
    out.push(b'{');
    field(out, "method", method);
    field(out, "path", i.path);
    field(out, "protocol", if i.head.minor == 0 { b"HTTP/1.0" } else { b"HTTP/1.1" });
    field(out, "sourceIp", i.source_ip.as_bytes());
    field(out, "userAgent", header_value(i, b"user-agent").unwrap_or_default());
    close(out, b'}');
    out.push(b',');
    field(out, "requestId", i.request_id);
    field(out, "routeKey", route_key.as_bytes());
    field(out, "stage", stage_name(i).as_bytes());
    field(out, "time", request_time(i.epoch_ms).as_bytes());
    key(out, "timeEpoch");
    put_u64(out, i.epoch_ms);
    close(out, b'}');
    out.push(b',');
    body(out, i);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse;
    use serde_json::{json, Value};

    fn event(req: &str, body: &[u8], format: u8, caps: &[(u32, u32)], params: &[String]) -> Value {
        let mut fields = Vec::new();
        let head = parse(req.as_bytes(), 8192, 8192, &mut fields).unwrap().unwrap();
        let vars = BTreeMap::from([("env".to_string(), "test".to_string())]);
        let full = &req.as_bytes()[head.path.clone()];
        let i = Input {
            buf: req.as_bytes(),
            head: &head,
            fields: &fields,
            stage: "test",
            resource: "/pets/{petId}",
            path: &full[5..],
            params,
            caps,
            stage_vars: &vars,
            source_ip: "10.0.0.9",
            local_port: 8080,
            request_id: b"00000000-0000-4000-8000-000000000001",
            epoch_ms: 1_583_349_317_135,
            body,
            base64_body: false,
            api_key: None,
            api_id: "ringway",
            account_id: "000000000000",
            authorizer: b"",
        };
        let mut out = Vec::new();
        if format == 1 {
            v1(&mut out, &i)
        } else {
            v2(&mut out, &i)
        }
        serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
    }

    const REQ: &str = "GET /test/pets/7?a=1&a=2&b=x%20y HTTP/1.1\r\nHost: api.example\r\nuser-agent: curl\r\nX-Multi: one\r\nx-multi: two\r\nCookie: c1=v1; c2=v2\r\n\r\n";

    #[test]
    fn v1_event_matches_the_reference() {
        let e = event(REQ, b"", 1, &[(15, 16)], &["petId".into()]);
        assert_eq!(e["resource"], "/pets/{petId}");
        assert_eq!(e["path"], "/pets/7");
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["headers"]["User-Agent"], "curl");
        assert_eq!(e["headers"]["X-Multi"], "two", "last value wins");
        assert_eq!(e["multiValueHeaders"]["X-Multi"], json!(["one", "two"]));
        assert_eq!(e["headers"]["X-Forwarded-For"], "10.0.0.9");
        assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": "x y"}));
        assert_eq!(e["multiValueQueryStringParameters"]["a"], json!(["1", "2"]));
        assert_eq!(e["pathParameters"], json!({"petId": "7"}));
        assert_eq!(e["stageVariables"], json!({"env": "test"}));
        assert_eq!(e["body"], Value::Null);
        assert_eq!(e["isBase64Encoded"], false);
        let rc = &e["requestContext"];
        assert_eq!(rc["path"], "/test/pets/7");
        assert_eq!(rc["stage"], "test");
        assert_eq!(rc["requestTime"], "04/Mar/2020:19:15:17 +0000");
        assert_eq!(rc["requestTimeEpoch"], 1_583_349_317_135u64);
        assert_eq!(rc["identity"]["sourceIp"], "10.0.0.9");
        assert_eq!(rc["identity"]["userAgent"], "curl");
        assert_eq!(rc["identity"]["user"], Value::Null);
        assert_eq!(rc["resourcePath"], "/pets/{petId}");
        assert_eq!(rc["domainName"], "api.example");
    }

    #[test]
    fn v1_empty_collections_are_null() {
        let e = event("POST /test/pets HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", b"hi", 1, &[], &[]);
        assert_eq!(e["queryStringParameters"], Value::Null);
        assert_eq!(e["multiValueQueryStringParameters"], Value::Null);
        assert_eq!(e["pathParameters"], Value::Null);
        assert_eq!(e["body"], "hi");
        assert!(e["headers"].get("Content-Length").is_none());
    }

    #[test]
    fn v2_event_matches_the_reference() {
        let e = event(REQ, b"", 2, &[(15, 16)], &["petId".into()]);
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "GET /pets/{petId}");
        assert_eq!(e["rawPath"], "/pets/7");
        assert_eq!(e["rawQueryString"], "a=1&a=2&b=x%20y");
        assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(e["headers"]["x-multi"], "one,two");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["pathParameters"], json!({"petId": "7"}));
        assert_eq!(e["requestContext"]["http"]["method"], "GET");
        assert_eq!(e["requestContext"]["http"]["sourceIp"], "10.0.0.9");
        assert_eq!(e["requestContext"]["domainPrefix"], "api");
        assert_eq!(e["requestContext"]["timeEpoch"], 1_583_349_317_135u64);
    }
}
