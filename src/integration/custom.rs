//! Non-proxy integrations (`type = "http"`, and `type = "mock"` with templates), as API
//! Gateway runs them. Phases: read the body -> map request parameters -> pick and render the
//! request template (or pass the body through, or 415) -> call the backend (or, for a mock,
//! read `statusCode` from the rendered template) -> select the integration response by a
//! regex over the status -> map response headers -> render the response template -> write.
//! Allocates freely: this is the mapping path, not the proxy fast path.

use super::mapping::{self, Body, Dest, EvalError, Source};
use super::template::{Limits, Overrides, Scope, Template};
use crate::config::plan::{Plan, Target};
use crate::http::gateway_response::Kind;
use crate::http::method::Method;
use crate::http::percent;
use crate::http::request::Head;
use crate::http::write::{put_u64, status_line};
use crate::integration::uri::Piece;
use crate::route::Captures;
use crate::server::connection::{write_cors, Conn, Flow};
use crate::server::worker::Worker;
use crate::upstream::exchange::{exchange, Reply};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Largest backend response body read (API Gateway's payload limit).
const MAX_REPLY: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Passthrough {
    WhenNoMatch,
    WhenNoTemplates,
    Never,
}

/// The backend of `type = "http"`.
pub struct Backend {
    pub target: Target,
    /// None: the request's own method.
    pub method: Option<Method>,
    /// Path pieces; `Param(i)` names `vars[i]`.
    pub path: Vec<Piece>,
    pub query: Vec<Piece>,
    /// URI placeholder names: filled from `integration.request.path.*`, else the route's
    /// path parameter of that name (`route_param`).
    pub vars: Vec<String>,
    pub route_param: Vec<Option<usize>>,
}

pub struct IntegrationResponse {
    /// Whole-string match over the status; None: the default response.
    pub pattern: Option<regex_lite::Regex>,
    pub status: u16,
    pub parameters: Vec<(String, Source)>,
    /// Lowercase media type -> template, in the config's order.
    pub templates: Vec<(String, Template)>,
}

pub struct Custom {
    /// None: a mock.
    pub backend: Option<Backend>,
    pub request_parameters: Vec<(Dest, Source)>,
    /// Lowercase media type (or `$default`) -> template.
    pub request_templates: Vec<(String, Template)>,
    pub passthrough: Passthrough,
    pub responses: Vec<IntegrationResponse>,
    pub timeout: Duration,
}

/// The request as templates and mappings see it (owned: the connection's buffers move
/// while the backend is called).
struct Input {
    path: Vec<(String, String)>,
    query: Vec<(String, String)>,
    query_last: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    context: Value,
    content_type: Option<String>,
    accept: Option<String>,
}

/// What goes back to the client.
struct Output {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub async fn respond(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    x: &Custom,
    caps: &Captures,
) -> Flow {
    let body = match c.read_body(head, plan).await {
        Ok(b) => b,
        Err(Some(kind)) => return c.gateway_error(w, plan, head, Some(stage), kind, true).await,
        Err(None) => return Flow::Close,
    };
    let id = w.new_id();
    let input = gather(c, plan, head, (stage, route), caps, &id);
    match run(c, w, plan, head, stage, x, &input, &body).await {
        Ok(out) => write(c, w, plan, head, &id, out).await,
        Err(kind) => c.gateway_error(w, plan, head, Some(stage), kind, false).await,
    }
}

fn gather(c: &Conn, plan: &Plan, head: &Head, (stage, route): (usize, u32), caps: &Captures, id: &[u8; 36]) -> Input {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let decoded = |b: &[u8], plus: bool| String::from_utf8_lossy(&percent::decode(b, plus)).into_owned();
    let r = &plan.routes[route as usize];
    let path = r
        .params
        .iter()
        .zip(caps.iter())
        .map(|(n, &(a, b))| (n.clone(), decoded(&c.rbuf[a as usize..b as usize], false)))
        .collect();
    let mut query = Vec::new();
    if let Some(q) = &head.query {
        for pair in c.rbuf[q.clone()].split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            query.push((decoded(k, true), decoded(v, true)));
        }
    }
    let mut query_last: Vec<(String, String)> = Vec::new();
    for (k, v) in &query {
        match query_last.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = v.clone(),
            None => query_last.push((k.clone(), v.clone())),
        }
    }
    let headers: Vec<(String, String)> =
        c.fields.iter().map(|f| (text(f.name(&c.rbuf)), text(f.value(&c.rbuf)))).collect();
    let st = &plan.stages[stage];
    let full = text(&c.rbuf[head.path.clone()]);
    let epoch_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let header = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let request_id = text(id);
    let context = json!({
        "requestId": request_id,
        "extendedRequestId": request_id,
        "accountId": plan.api.account_id,
        "apiId": plan.api.id,
        "stage": st.name,
        "httpMethod": head.method.map_or("", |m| m.as_str()),
        "resourcePath": r.path,
        "resourceId": r.path,
        "path": full,
        "protocol": "HTTP/1.1",
        "domainName": header("host").unwrap_or_default(),
        "requestTime": super::function_event::request_time(epoch_ms),
        "requestTimeEpoch": epoch_ms,
        "identity": {
            "sourceIp": c.peer_ip,
            "userAgent": header("user-agent"),
            "apiKey": if r.api_key_required { header("x-api-key") } else { None },
        },
        "authorizer": c.auth.template_value(),
    });
    Input { path, query, query_last, content_type: header("content-type"), accept: header("accept"), headers, context }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    stage: usize,
    x: &Custom,
    input: &Input,
    body: &[u8],
) -> Result<Output, Kind> {
    let req_body = Body::new(body);
    let mreq = mapping::Request {
        path: &input.path,
        query: &input.query,
        headers: &input.headers,
        body: &req_body,
        context: &input.context,
    };
    // 1. Request parameters.
    let (mut up_headers, mut up_query, mut up_path) = (Vec::new(), Vec::new(), Vec::new());
    for (dest, src) in &x.request_parameters {
        let values = mapping::eval(src, &mreq, None).map_err(|e| match e {
            EvalError::InvalidJsonBody => {
                c.error_message.clear();
                c.error_message.push_str("Invalid JSON in request body");
                Kind::BadRequestBody
            }
        })?;
        match dest {
            Dest::Header(n) if !values.is_empty() => up_headers.push((n.clone(), values.join(","))),
            Dest::Query(n) => up_query.extend(values.into_iter().map(|v| (n.clone(), v))),
            Dest::Path(n) if !values.is_empty() => up_path.push((n.clone(), values.join(","))),
            _ => {}
        }
    }
    // 2. Request template, or passthrough, or 415.
    let media = media_type(input.content_type.as_deref()).unwrap_or_else(|| "application/json".into());
    let template = x
        .request_templates
        .iter()
        .find(|(t, _)| *t == media)
        .or_else(|| x.request_templates.iter().find(|(t, _)| t == "$default"));
    let stage_vars = &plan.stages[stage].variables_json;
    let mut overrides = Overrides::default();
    let integration_body: Vec<u8> = match template {
        Some((_, t)) => render(t, input, body, stage_vars, &mut overrides)?,
        None => match x.passthrough {
            Passthrough::WhenNoMatch => body.to_vec(),
            Passthrough::WhenNoTemplates if x.request_templates.is_empty() => body.to_vec(),
            _ => return Err(Kind::UnsupportedMediaType),
        },
    };
    for (k, v) in &overrides.request_header {
        up_headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        up_headers.push((k.clone(), v.clone()));
    }
    for (k, v) in &overrides.request_querystring {
        up_query.retain(|(n, _)| n != k);
        up_query.push((k.clone(), v.clone()));
    }
    for (k, v) in &overrides.request_path {
        up_path.retain(|(n, _)| n != k);
        up_path.push((k.clone(), v.clone()));
    }
    // 3. The integration's answer.
    let reply = match &x.backend {
        None => {
            let status = mock_status(&integration_body).ok_or(Kind::ApiConfigurationError)?;
            Reply { status, headers: Vec::new(), body: Vec::new() }
        }
        Some(b) => {
            let ct = if template.is_some() { Some(media.as_str()) } else { input.content_type.as_deref() };
            let method = b.method.or(head.method).unwrap_or(Method::Get);
            let req =
                build_request(plan, b, method, &input.path, &up_path, &up_query, &up_headers, ct, &integration_body)
                    .ok_or(Kind::ApiConfigurationError)?;
            call(c, w, plan, b, method, req, x.timeout).await?
        }
    };
    // 4. Integration response: first pattern matching the status, else the default.
    let status_text = reply.status.to_string();
    let chosen = x
        .responses
        .iter()
        .find(|r| r.pattern.as_ref().is_some_and(|p| p.is_match(&status_text)))
        .or_else(|| x.responses.iter().find(|r| r.pattern.is_none()))
        .ok_or(Kind::ApiConfigurationError)?;
    let reply_body = Body::new(&reply.body);
    let mresp = mapping::Response { headers: &reply.headers, body: &reply_body };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, src) in &chosen.parameters {
        let values = mapping::eval(src, &mreq, Some(&mresp)).unwrap_or_default();
        if !values.is_empty() {
            headers.push((name.clone(), values.join(",")));
        }
    }
    // 5. Response template by the first type in Accept.
    let accept = media_type(input.accept.as_deref()).unwrap_or_else(|| "application/json".into());
    let rt = chosen
        .templates
        .iter()
        .find(|(t, _)| *t == accept)
        .or_else(|| chosen.templates.iter().find(|(t, _)| t == "application/json"))
        .or_else(|| chosen.templates.first());
    let body = match rt {
        Some((media, t)) => {
            let out = render(t, input, &reply.body, stage_vars, &mut overrides)?;
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) && media != "$default" {
                headers.push(("Content-Type".into(), media.clone()));
            }
            out
        }
        None => reply.body,
    };
    for (k, v) in &overrides.response_header {
        if is_reserved(k) || !valid_value(v) {
            return Err(Kind::ApiConfigurationError);
        }
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v.clone()));
    }
    Ok(Output { status: overrides.status.unwrap_or(chosen.status), headers, body })
}

/// Renders a request or response template (`body` is `$input.body`); a failure is a 500.
fn render(
    t: &Template,
    input: &Input,
    body: &[u8],
    stage_vars: &Value,
    overrides: &mut Overrides,
) -> Result<Vec<u8>, Kind> {
    let scope = Scope {
        body,
        path: &input.path,
        querystring: &input.query_last,
        header: &input.headers,
        context: &input.context,
        stage_variables: stage_vars,
    };
    let mut out = Vec::new();
    t.render(&scope, &Limits::default(), &mut out, overrides).map_err(|_| Kind::ApiConfigurationError)?;
    Ok(out)
}

/// The media type of a Content-Type/Accept value: first entry, parameters dropped, lowercase.
fn media_type(v: Option<&str>) -> Option<String> {
    let first = v?.split(',').next()?.split(';').next()?.trim();
    (!first.is_empty()).then(|| first.to_ascii_lowercase())
}

/// A mock's status from its rendered request template: `{"statusCode": 200}`, also the
/// non-JSON `{statusCode: 200}` that CDK generates.
fn mock_status(rendered: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(rendered).ok()?;
    let at = text.find("statusCode")?;
    let rest = text[at + "statusCode".len()..].trim_start_matches(['"', '\'', ' ', '\t', '\r', '\n']);
    let rest = rest.strip_prefix(':')?.trim_start().trim_start_matches(['"', '\'']);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse::<u16>().ok().filter(|s| (100..=599).contains(s))
}

/// Headers a mapping may not set (the gateway frames and identifies responses itself).
fn is_reserved(n: &str) -> bool {
    ["content-length", "transfer-encoding", "connection", "date", "x-amzn-requestid"]
        .iter()
        .any(|r| n.eq_ignore_ascii_case(r))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn valid_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
}

/// Percent-encodes for a path: unreserved, sub-delims, ':', '@' and '/' stay.
fn encode_path(out: &mut Vec<u8>, v: &str) {
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// Form-encodes a query name or value.
fn encode_query(out: &mut Vec<u8>, v: &str) {
    for &b in v.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// The backend request. None: a mapped header that cannot be sent (reserved or invalid).
#[allow(clippy::too_many_arguments)]
fn build_request(
    plan: &Plan,
    b: &Backend,
    method: Method,
    route_path: &[(String, String)],
    up_path: &[(String, String)],
    up_query: &[(String, String)],
    up_headers: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
) -> Option<Vec<u8>> {
    let mut req = Vec::with_capacity(256 + body.len());
    req.extend_from_slice(method.as_str().as_bytes());
    req.push(b' ');
    let var = |i: usize| -> String {
        let name = &b.vars[i];
        up_path
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| b.route_param[i].and_then(|p| route_path.get(p)).map(|(_, v)| v.clone()))
            .unwrap_or_default()
    };
    for p in &b.path {
        match p {
            Piece::Lit(l) => req.extend_from_slice(l),
            Piece::Param(i) => encode_path(&mut req, &var(*i as usize)),
        }
    }
    let mut first = true;
    if !b.query.is_empty() {
        req.push(b'?');
        first = false;
        for p in &b.query {
            match p {
                Piece::Lit(l) => req.extend_from_slice(l),
                Piece::Param(i) => encode_query(&mut req, &var(*i as usize)),
            }
        }
    }
    for (k, v) in up_query {
        req.push(if first { b'?' } else { b'&' });
        first = false;
        encode_query(&mut req, k);
        req.push(b'=');
        encode_query(&mut req, v);
    }
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    let target = match b.target {
        Target::One(t) => t as usize,
        Target::Group(g) => plan.groups[g as usize].targets[0] as usize,
    };
    req.extend_from_slice(&plan.upstreams[target].host_header);
    req.extend_from_slice(b"\r\n");
    let mut has_type = false;
    for (k, v) in up_headers {
        if is_reserved(k) || k.eq_ignore_ascii_case("host") || !valid_name(k) || !valid_value(v) {
            return None;
        }
        has_type |= k.eq_ignore_ascii_case("content-type");
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v.as_bytes());
        req.extend_from_slice(b"\r\n");
    }
    if !has_type && !body.is_empty() {
        if let Some(ct) = content_type.filter(|t| valid_value(t)) {
            req.extend_from_slice(b"Content-Type: ");
            req.extend_from_slice(ct.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
    }
    if !body.is_empty() || matches!(method, Method::Post | Method::Put | Method::Patch) {
        req.extend_from_slice(b"Content-Length: ");
        put_u64(&mut req, body.len() as u64);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    Some(req)
}

/// Sends the backend request to the target (a group's pick) within the timeout.
async fn call(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    b: &Backend,
    method: Method,
    req: Vec<u8>,
    timeout: Duration,
) -> Result<Reply, Kind> {
    let (target, group) = match b.target {
        Target::One(t) => (t, None),
        Target::Group(g) => (w.balancer.pick(&plan.groups[g as usize], g as usize, c.now, None), Some(g)),
    };
    let deadline = c.now + timeout;
    let up = &plan.upstreams[target as usize];
    let head_req = method == Method::Head;
    let fut = exchange(
        &w.pool,
        up,
        target as usize,
        plan.upstream.connect_timeout,
        req,
        head_req,
        MAX_REPLY,
        &mut c.resp_fields,
        c.now,
    );
    if group.is_some() {
        w.balancer.started(target);
    }
    let started = Instant::now();
    let res = monoio::time::timeout_at(deadline.into(), fut).await;
    c.out.integration_ns = Some(crate::server::outcome::since(started));
    c.out.upstream = Some(target);
    if let Ok(Ok(r)) = &res {
        c.out.integration_status = Some(r.status);
    }
    if let Some(g) = group {
        w.balancer.finished(target);
        match &res {
            Ok(Ok(_)) => w.balancer.succeeded(target),
            _ => {
                w.balancer.failed(&plan.groups[g as usize], target, Instant::now());
            }
        }
    }
    match res {
        Err(_) => Err(Kind::IntegrationTimeout),
        Ok(Err(())) => Err(Kind::IntegrationFailure),
        Ok(Ok(r)) => Ok(r),
    }
}

async fn write(c: &mut Conn, w: &Worker, plan: &Plan, head: &Head, id: &[u8; 36], out: Output) -> Flow {
    let close = !head.keep_alive || w.shutting_down() || !c.body_done;
    let buf = &mut c.wbuf;
    buf.clear();
    status_line(buf, out.status);
    let mut has_type = false;
    for (n, v) in &out.headers {
        has_type |= n.eq_ignore_ascii_case("content-type");
        buf.extend_from_slice(n.as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(v.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    let bodyless = (100..200).contains(&out.status) || out.status == 204 || out.status == 304;
    if !bodyless {
        if !has_type {
            buf.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        buf.extend_from_slice(b"Content-Length: ");
        put_u64(buf, out.body.len() as u64);
        buf.extend_from_slice(b"\r\n");
    }
    write_cors(plan, c.cors, &c.origin, buf);
    w.end_head(buf, id, close, head.minor);
    if !bodyless && head.method != Some(Method::Head) {
        buf.extend_from_slice(&out.body);
    }
    if c.flush_by(c.now + plan.limits.idle_timeout).await.is_err() || close {
        return Flow::Close;
    }
    Flow::KeepAlive
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_status_forms() {
        assert_eq!(mock_status(br#"{"statusCode": 200}"#), Some(200));
        assert_eq!(mock_status(b"{statusCode: 404}"), Some(404));
        assert_eq!(mock_status(br#" { "statusCode" : "201" } "#), Some(201));
        assert_eq!(mock_status(br#"{"status": 200}"#), None);
        assert_eq!(mock_status(br#"{"statusCode": 99}"#), None);
        assert_eq!(mock_status(br#"{"statusCode": "abc"}"#), None);
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type(Some("Application/JSON; charset=utf-8")).as_deref(), Some("application/json"));
        assert_eq!(media_type(Some("text/html, application/json")).as_deref(), Some("text/html"));
        assert_eq!(media_type(Some("")), None);
        assert_eq!(media_type(None), None);
    }

    #[test]
    fn encodings() {
        let mut out = Vec::new();
        encode_path(&mut out, "a b/ü?");
        assert_eq!(out, b"a%20b/%C3%BC%3F");
        out.clear();
        encode_query(&mut out, "a b&c=d");
        assert_eq!(out, b"a%20b%26c%3Dd");
    }
}
