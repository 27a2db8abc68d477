//! Parameter mapping expressions of API Gateway's non-proxy integrations, parsed once from
//! the config and evaluated per request: `method.request.querystring.q` into
//! `integration.request.header.X`, `integration.response.header.Y` into
//! `method.response.header.Z`, literals, stage variables and `context.*`.
//! Reads only the request/response parts it is handed.

use super::template::jsonpath::{self, Path};
use serde_json::Value;
use std::cell::OnceCell;

/// Where a mapped value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// `'text'`, or a stage variable resolved when the config was compiled.
    Literal(String),
    /// Index of the route's path parameter.
    PathParam(usize),
    Query(String),
    MultiQuery(String),
    Header(String),
    MultiHeader(String),
    Body,
    BodyPath(Path),
    Context(Vec<String>),
    IntegrationHeader(String),
    IntegrationMultiHeader(String),
    IntegrationBody,
    IntegrationBodyPath(Path),
}

/// Where a mapped value goes (request side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Header(String),
    Query(String),
    Path(String),
}

/// Parses a source. `response`: the integration response's values are allowed (response
/// mappings) instead of the method request's body.
pub fn parse_source(
    s: &str,
    params: &[String],
    stage_vars: &std::collections::BTreeMap<String, String>,
    response: bool,
) -> Result<Source, String> {
    if let Some(lit) = s.strip_prefix('\'') {
        let lit = lit.strip_suffix('\'').ok_or_else(|| format!("unclosed literal {s} (write 'text')"))?;
        return Ok(Source::Literal(lit.to_string()));
    }
    if let Some(name) = s.strip_prefix("stageVariables.") {
        return Ok(Source::Literal(stage_vars.get(name).cloned().unwrap_or_default()));
    }
    if let Some(rest) = s.strip_prefix("context.") {
        if rest.is_empty() || rest.split('.').any(str::is_empty) {
            return Err(format!("'{s}' is not a context variable"));
        }
        return Ok(Source::Context(rest.split('.').map(str::to_string).collect()));
    }
    let name = |p: &str| -> Result<String, String> {
        match s.strip_prefix(p) {
            Some(n) if !n.is_empty() => Ok(n.to_string()),
            _ => Err(format!("'{s}' needs a name after '{p}'")),
        }
    };
    if response {
        if s == "integration.response.body" {
            return Ok(Source::IntegrationBody);
        }
        if let Some(p) = s.strip_prefix("integration.response.body.") {
            return Ok(Source::IntegrationBodyPath(jsonpath::parse_relative(p)?));
        }
        if s.starts_with("integration.response.header.") {
            return Ok(Source::IntegrationHeader(name("integration.response.header.")?));
        }
        if s.starts_with("integration.response.multivalueheader.") {
            return Ok(Source::IntegrationMultiHeader(name("integration.response.multivalueheader.")?));
        }
        // An extension of API Gateway's set: the method request's parameters (not its body).
        if !s.starts_with("method.request.") || s.starts_with("method.request.body") {
            return Err(format!(
                "'{s}' is not a response mapping source (integration.response.header.X, \
                 integration.response.multivalueheader.X, integration.response.body[.PATH], \
                 method.request.{{path,querystring,header}}.X, stageVariables.X, context.X or 'literal')"
            ));
        }
    }
    if s == "method.request.body" {
        return Ok(Source::Body);
    }
    if let Some(p) = s.strip_prefix("method.request.body.") {
        return Ok(Source::BodyPath(jsonpath::parse_relative(p)?));
    }
    if s.starts_with("method.request.path.") {
        let n = name("method.request.path.")?;
        let i =
            params.iter().position(|p| *p == n).ok_or_else(|| format!("the route has no path parameter {{{n}}}"))?;
        return Ok(Source::PathParam(i));
    }
    if s.starts_with("method.request.querystring.") {
        return Ok(Source::Query(name("method.request.querystring.")?));
    }
    if s.starts_with("method.request.multivaluequerystring.") {
        return Ok(Source::MultiQuery(name("method.request.multivaluequerystring.")?));
    }
    if s.starts_with("method.request.header.") {
        return Ok(Source::Header(name("method.request.header.")?));
    }
    if s.starts_with("method.request.multivalueheader.") {
        return Ok(Source::MultiHeader(name("method.request.multivalueheader.")?));
    }
    Err(format!(
        "'{s}' is not a request mapping source (method.request.{{path,querystring,multivaluequerystring,\
         header,multivalueheader}}.X, method.request.body[.PATH], stageVariables.X, context.X or 'literal')"
    ))
}

/// Parses `integration.request.{header,querystring,path}.NAME`.
pub fn parse_dest(s: &str) -> Result<Dest, String> {
    let (kind, name) = s
        .strip_prefix("integration.request.")
        .and_then(|r| r.split_once('.'))
        .ok_or_else(|| format!("'{s}' is not integration.request.{{header,querystring,path}}.NAME"))?;
    if name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("'{s}' has no valid name"));
    }
    match kind {
        "header" => Ok(Dest::Header(name.to_string())),
        "querystring" => Ok(Dest::Query(name.to_string())),
        "path" => Ok(Dest::Path(name.to_string())),
        _ => Err(format!("'{s}' is not integration.request.{{header,querystring,path}}.NAME")),
    }
}

/// A message body whose JSON is parsed at most once, on first use.
pub struct Body<'a> {
    pub bytes: &'a [u8],
    json: OnceCell<Result<Option<Value>, EvalError>>,
}

impl<'a> Body<'a> {
    pub fn new(bytes: &'a [u8]) -> Body<'a> {
        Body { bytes, json: OnceCell::new() }
    }

    /// The body as JSON. API Gateway only parses bodies that start like JSON (`{ [ "`):
    /// Ok(None) for others (and empty ones), Err for one that starts like JSON but is not.
    pub fn parsed(&self) -> Result<Option<&Value>, EvalError> {
        self.json
            .get_or_init(|| {
                let t = self.bytes.trim_ascii_start();
                if !matches!(t.first(), Some(b'{' | b'[' | b'"')) {
                    return Ok(None);
                }
                serde_json::from_slice(t).map(Some).map_err(|_| EvalError::InvalidJsonBody)
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(|_| EvalError::InvalidJsonBody)
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<&Value> {
        self.parsed().ok().flatten()
    }
}

/// What request-side sources read.
pub struct Request<'a> {
    /// Route path parameter values (decoded), by index.
    pub path: &'a [(String, String)],
    /// Every query parameter (decoded), in order.
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub body: &'a Body<'a>,
    pub context: &'a Value,
}

/// What response-side sources read (besides the request's context).
pub struct Response<'a> {
    pub headers: &'a [(String, String)],
    pub body: &'a Body<'a>,
}

/// Why a value could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    /// A body JSONPath over a body that is not JSON (API Gateway: 400 Invalid JSON).
    InvalidJsonBody,
}

/// The values of `src` (none: skip the mapping; several: a multi-value source).
pub fn eval(src: &Source, req: &Request, resp: Option<&Response>) -> Result<Vec<String>, EvalError> {
    let one = |v: Option<String>| Ok(v.filter(|s| !s.is_empty()).into_iter().collect());
    match src {
        Source::Literal(s) => one(Some(s.clone())),
        Source::PathParam(i) => one(req.path.get(*i).map(|(_, v)| v.clone())),
        Source::Query(n) => one(req.query.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.clone())),
        Source::MultiQuery(n) => {
            Ok(req.query.iter().filter(|(k, v)| k == n && !v.is_empty()).map(|(_, v)| v.clone()).collect())
        }
        Source::Header(n) => one(last_header(req.headers, n)),
        Source::MultiHeader(n) => one(joined_headers(req.headers, n)),
        Source::Body => one(Some(String::from_utf8_lossy(req.body.bytes).into_owned())),
        Source::BodyPath(p) => match req.body.parsed()? {
            Some(json) => one(p.select(json).map(|v| text(&v))),
            None => Ok(Vec::new()),
        },
        Source::Context(path) => {
            let mut v = req.context;
            for k in path {
                match v.get(k) {
                    Some(x) => v = x,
                    None => return Ok(Vec::new()),
                }
            }
            one(Some(text(v)))
        }
        Source::IntegrationHeader(n) => one(resp.and_then(|r| last_header(r.headers, n))),
        Source::IntegrationMultiHeader(n) => one(resp.and_then(|r| joined_headers(r.headers, n))),
        Source::IntegrationBody => one(resp.map(|r| String::from_utf8_lossy(r.body.bytes).into_owned())),
        Source::IntegrationBodyPath(p) => {
            one(resp.and_then(|r| r.body.json()).and_then(|j| p.select(j)).map(|v| text(&v)))
        }
    }
}

/// Strings as they are, everything else as JSON (null: nothing).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn last_header(h: &[(String, String)], n: &str) -> Option<String> {
    h.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone())
}

fn joined_headers(h: &[(String, String)], n: &str) -> Option<String> {
    let vs: Vec<&str> = h.iter().filter(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str()).collect();
    (!vs.is_empty()).then(|| vs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn eval_req(src: &str, body: &[u8]) -> Result<Vec<String>, EvalError> {
        let vars: BTreeMap<String, String> = [("env".to_string(), "prod".to_string())].into();
        let params = vec!["petId".to_string()];
        let s = parse_source(src, &params, &vars, false).unwrap();
        let path = pairs(&[("petId", "7")]);
        let query = pairs(&[("q", "a"), ("q", "b"), ("e", "")]);
        let headers = pairs(&[("X-Id", "1"), ("x-id", "2"), ("Accept", "*/*")]);
        let b = Body::new(body);
        let ctx = json!({"requestId": "r1", "identity": {"sourceIp": "10.0.0.1"}});
        eval(&s, &Request { path: &path, query: &query, headers: &headers, body: &b, context: &ctx }, None)
    }

    #[test]
    fn request_sources() {
        assert_eq!(eval_req("method.request.path.petId", b"").unwrap(), ["7"]);
        assert_eq!(eval_req("method.request.querystring.q", b"").unwrap(), ["b"]);
        assert_eq!(eval_req("method.request.multivaluequerystring.q", b"").unwrap(), ["a", "b"]);
        assert!(eval_req("method.request.querystring.e", b"").unwrap().is_empty(), "empty values are skipped");
        assert!(eval_req("method.request.querystring.none", b"").unwrap().is_empty());
        assert_eq!(eval_req("method.request.header.x-id", b"").unwrap(), ["2"]);
        assert_eq!(eval_req("method.request.multivalueheader.X-ID", b"").unwrap(), ["1,2"]);
        assert_eq!(eval_req("'application/json'", b"").unwrap(), ["application/json"]);
        assert_eq!(eval_req("stageVariables.env", b"").unwrap(), ["prod"]);
        assert!(eval_req("stageVariables.none", b"").unwrap().is_empty());
        assert_eq!(eval_req("context.identity.sourceIp", b"").unwrap(), ["10.0.0.1"]);
        assert!(eval_req("context.identity.nope", b"").unwrap().is_empty());
    }

    #[test]
    fn body_sources() {
        let body = br#"{"petstore":{"pets":[{"name":"rex","age":3}]}}"#;
        assert_eq!(eval_req("method.request.body.petstore.pets[0].name", body).unwrap(), ["rex"]);
        assert_eq!(eval_req("method.request.body.petstore.pets[0]", body).unwrap(), [r#"{"name":"rex","age":3}"#]);
        assert_eq!(eval_req("method.request.body", body).unwrap(), [String::from_utf8_lossy(body)]);
        assert_eq!(eval_req("method.request.body.a", b"{broken"), Err(EvalError::InvalidJsonBody));
        assert!(eval_req("method.request.body.a", b"plain text").unwrap().is_empty(), "not JSON-looking: no value");
        assert!(eval_req("method.request.body.a", b"").unwrap().is_empty());
    }

    #[test]
    fn response_sources() {
        let vars = BTreeMap::new();
        let src = |s: &str| parse_source(s, &[], &vars, true).unwrap();
        let ctx = json!({});
        let none = Body::new(b"");
        let req = Request { path: &[], query: &[], headers: &[], body: &none, context: &ctx };
        let headers = pairs(&[("X-Total", "9"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")]);
        let body = Body::new(br#"{"items":[1,2],"next":"tok"}"#);
        let resp = Response { headers: &headers, body: &body };
        let ev = |s: &str| eval(&src(s), &req, Some(&resp)).unwrap();
        assert_eq!(ev("integration.response.header.x-total"), ["9"]);
        assert_eq!(ev("integration.response.multivalueheader.Set-Cookie"), ["a=1,b=2"]);
        assert_eq!(ev("integration.response.body.next"), ["tok"]);
        assert_eq!(ev("integration.response.body.items"), ["[1,2]"]);
        assert!(parse_source("method.request.body", &[], &vars, true).is_err());
        assert!(parse_source("method.request.header.x", &[], &vars, true).is_ok());
    }

    #[test]
    fn parse_errors() {
        let vars = BTreeMap::new();
        let p = |s: &str| parse_source(s, &["id".to_string()], &vars, false);
        assert!(p("method.request.path.nope").unwrap_err().contains("no path parameter"));
        assert!(p("'unclosed").is_err());
        assert!(p("method.request.header.").is_err());
        assert!(p("integration.response.body").is_err());
        assert!(p("context.").is_err());
        assert!(p("body").is_err());
        assert_eq!(parse_dest("integration.request.header.X-Tenant").unwrap(), Dest::Header("X-Tenant".into()));
        assert_eq!(parse_dest("integration.request.path.id").unwrap(), Dest::Path("id".into()));
        assert!(parse_dest("integration.request.body.x").is_err());
        assert!(parse_dest("method.request.header.x").is_err());
    }
}
