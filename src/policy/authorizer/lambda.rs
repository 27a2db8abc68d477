//! Lambda-style authorizers (reference section 13.1): TOKEN (one header, optional
//! validation regex) and REQUEST (several identity sources). The function gets API
//! Gateway's authorizer event through the same invoke endpoints as `aws_proxy`
//! integrations, and answers with a principal, an IAM-style policy, a context and maybe an
//! API key. The policy is evaluated against the request's method ARN
//! (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`; `*` and `?`
//! wildcards; an explicit Deny wins).
//!
//! Results are cached by identity values for `ttl_s` (default 300, 0: off) in a lock-free
//! map shared by every worker, bounded in entries. The cached *policy* is evaluated for
//! each request, as API Gateway does.

use super::{header, AuthState, IdentitySource, Passed};
use crate::config::plan::Plan;
use crate::http::gateway_response::Kind;
use crate::http::request::Head;
use crate::integration::function::{post_event, take_endpoint};
use crate::integration::function_event as event;
use crate::route::Captures;
use crate::server::connection::Conn;
use crate::server::worker::Worker;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest authorizer answer read.
const MAX_ANSWER: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaKind {
    Token,
    Request,
}

pub struct LambdaAuthorizer {
    pub kind: LambdaKind,
    /// Index in `Plan::functions`.
    pub function: u32,
    pub sources: Vec<IdentitySource>,
    /// TOKEN only: the token must match (whole) before the function is invoked.
    pub validation: Option<regex_lite::Regex>,
    pub ttl_s: i64,
    pub timeout: Duration,
    pub cache: ResultCache,
}

/// One policy statement, as the authorizer returned it.
#[derive(Debug)]
pub struct Statement {
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

/// A valid authorizer answer.
#[derive(Debug)]
pub struct Outcome {
    pub principal: String,
    pub statements: Vec<Statement>,
    /// Context values, stringified.
    pub context: Vec<(String, String)>,
    pub usage_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// An explicit Deny matched.
    Deny,
    /// Nothing allows the ARN.
    NotAllowed,
}

impl Outcome {
    pub fn evaluate(&self, arn: &str) -> Verdict {
        let mut allowed = false;
        for s in &self.statements {
            let action = s.actions.iter().any(|a| wildcard(a.as_bytes(), b"execute-api:Invoke"));
            if !action || !s.resources.iter().any(|r| wildcard(r.as_bytes(), arn.as_bytes())) {
                continue;
            }
            if !s.allow {
                return Verdict::Deny;
            }
            allowed = true;
        }
        if allowed {
            Verdict::Allow
        } else {
            Verdict::NotAllowed
        }
    }
}

/// IAM-style matching: `*` any run of characters (`/` included), `?` exactly one.
pub fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Why an answer is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The function said "Unauthorized": 401.
    Unauthorized,
    /// Anything else wrong with the answer: 500.
    Invalid(String),
}

fn strings(v: Option<&Value>, what: &str) -> Result<Vec<String>, Refusal> {
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| Refusal::Invalid(format!("{what} must be strings"))))
            .collect(),
        _ => Err(Refusal::Invalid(format!("missing {what}"))),
    }
}

/// Parses the function's answer (reference section 13.1 "Output").
pub fn parse_answer(body: &[u8], function_error: bool) -> Result<Outcome, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        if body.trim_ascii() == b"Unauthorized" {
            Refusal::Unauthorized
        } else {
            Refusal::Invalid("not JSON".into())
        }
    })?;
    let message = match &v {
        Value::String(s) => Some(s.as_str()),
        Value::Object(m) => m.get("errorMessage").and_then(Value::as_str),
        _ => None,
    };
    if message == Some("Unauthorized") {
        return Err(Refusal::Unauthorized);
    }
    if function_error || message.is_some() {
        return Err(Refusal::Invalid("function error".into()));
    }
    let o = v.as_object().ok_or_else(|| Refusal::Invalid("not an object".into()))?;
    let principal = match o.get("principalId") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(Refusal::Invalid("missing principalId".into())),
    };
    let doc = o.get("policyDocument").and_then(Value::as_object).ok_or(Refusal::Invalid("no policy".into()))?;
    let list = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return Err(Refusal::Invalid("no Statement".into())),
    };
    let mut statements = Vec::with_capacity(list.len());
    for s in list {
        let allow = match s.get("Effect").and_then(Value::as_str) {
            Some(e) if e.eq_ignore_ascii_case("allow") => true,
            Some(e) if e.eq_ignore_ascii_case("deny") => false,
            _ => return Err(Refusal::Invalid("Effect must be Allow or Deny".into())),
        };
        let actions = strings(s.get("Action"), "Action")?;
        let resources = strings(s.get("Resource"), "Resource")?;
        statements.push(Statement { allow, actions, resources });
    }
    let mut context = Vec::new();
    match o.get("context") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(Refusal::Invalid(format!("context value {k} is not a string, number or boolean"))),
                };
                context.push((k.clone(), text));
            }
        }
        Some(_) => return Err(Refusal::Invalid("context must be an object".into())),
    }
    let usage_key = o.get("usageIdentifierKey").and_then(Value::as_str).map(str::to_string);
    Ok(Outcome { principal, statements, context, usage_key })
}

/// Authorizer results by identity values, shared by every worker.
pub struct ResultCache {
    map: papaya::HashMap<Box<[u8]>, (i64, Arc<Outcome>)>,
    max_entries: usize,
}

impl ResultCache {
    pub fn new(max_entries: usize) -> ResultCache {
        ResultCache { map: papaya::HashMap::new(), max_entries }
    }

    #[inline]
    pub fn get(&self, key: &[u8], now: i64) -> Option<Arc<Outcome>> {
        let g = self.map.pin();
        match g.get(key) {
            Some((expires, o)) if *expires > now => Some(o.clone()),
            _ => None,
        }
    }

    pub fn put(&self, key: &[u8], outcome: Arc<Outcome>, expires: i64, now: i64) {
        let g = self.map.pin();
        if g.len() >= self.max_entries {
            g.retain(|_, (e, _)| *e > now);
            // Still full of live entries: drop some arbitrary ones (a quarter).
            let extra = g.len().saturating_sub(self.max_entries * 3 / 4);
            if extra > 0 {
                let victims: Vec<Box<[u8]>> = g.iter().take(extra).map(|(k, _)| k.clone()).collect();
                for k in victims {
                    g.remove(&k);
                }
            }
        }
        g.insert(key.into(), (expires, outcome));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The request path without the stage (and without the query).
fn request_path<'b>(plan: &Plan, stage: usize, buf: &'b [u8], head: &Head) -> &'b [u8] {
    let full = &buf[head.path.clone()];
    let p = if plan.staged { &full[(1 + plan.stages[stage].name.len()).min(full.len())..] } else { full };
    if p.is_empty() {
        b"/"
    } else {
        p
    }
}

/// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`.
pub fn method_arn(plan: &Plan, stage: usize, method: &str, path: &[u8]) -> String {
    let st = &plan.stages[stage].name;
    let st = if st.is_empty() { "$default" } else { st.as_str() };
    let mut arn =
        format!("arn:aws:execute-api:{}:{}:{}/{st}/{method}/", plan.api.region, plan.api.account_id, plan.api.id);
    arn.push_str(&String::from_utf8_lossy(path.strip_prefix(b"/").unwrap_or(path)));
    arn
}

/// The first value of query parameter `name`, percent-decoded.
fn query_value(buf: &[u8], head: &Head, name: &str) -> Option<Vec<u8>> {
    let q = &buf[head.query.clone()?];
    for pair in q.split(|&b| b == b'&') {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        if crate::http::percent::decode(k, true) == name.as_bytes() {
            return Some(crate::http::percent::decode(v, true));
        }
    }
    None
}

/// The identity values, each followed by a 0 byte, into `c.auth.key`. False when one is
/// missing or empty.
fn identity(c: &mut Conn, plan: &Plan, head: &Head, stage: usize, route: u32, a: &LambdaAuthorizer) -> bool {
    let Conn { auth, rbuf, fields, peer_ip, .. } = c;
    let AuthState { key, .. } = auth;
    key.clear();
    for s in &a.sources {
        let start = key.len();
        match s {
            IdentitySource::Header(n) => key.extend_from_slice(header(fields, rbuf, n.as_bytes()).unwrap_or_default()),
            IdentitySource::Query(n) => key.extend_from_slice(&query_value(rbuf, head, n).unwrap_or_default()),
            IdentitySource::StageVariable(n) => {
                key.extend_from_slice(plan.stages[stage].variables.get(n).map_or(&b""[..], |v| v.as_bytes()))
            }
            IdentitySource::Context(n) => {
                let v: &[u8] = match n.as_str() {
                    "identity.sourceIp" => peer_ip.as_bytes(),
                    "identity.userAgent" => header(fields, rbuf, b"user-agent").unwrap_or_default(),
                    "httpMethod" => head.method.map_or("", |m| m.as_str()).as_bytes(),
                    "stage" => plan.stages[stage].name.as_bytes(),
                    "resourcePath" => plan.routes[route as usize].path.as_bytes(),
                    "apiId" => plan.api.id.as_bytes(),
                    "accountId" => plan.api.account_id.as_bytes(),
                    _ => b"",
                };
                key.extend_from_slice(v);
            }
        }
        if key.len() == start {
            return false;
        }
        key.push(0);
    }
    true
}

pub async fn authorize(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    a: &LambdaAuthorizer,
    caps: &Captures,
) -> Result<(), Kind> {
    if !identity(c, plan, head, stage, route, a) {
        return Err(Kind::Unauthorized);
    }
    if let Some(re) = &a.validation {
        let token = &c.auth.key[..c.auth.key.len() - 1];
        if !std::str::from_utf8(token).is_ok_and(|t| re.is_match(t)) {
            return Err(Kind::Unauthorized);
        }
    }
    let method = head.method.map_or("", |m| m.as_str());
    let arn = method_arn(plan, stage, method, request_path(plan, stage, &c.rbuf, head));
    let now = crate::clock::unix_now();
    let cached = if a.ttl_s > 0 { a.cache.get(&c.auth.key, now) } else { None };
    let outcome = match cached {
        Some(o) => o,
        None => {
            let o = Arc::new(invoke(c, w, plan, head, (stage, route), a, caps, &arn).await?);
            if a.ttl_s > 0 {
                a.cache.put(&c.auth.key, o.clone(), now + a.ttl_s, now);
            }
            o
        }
    };
    match outcome.evaluate(&arn) {
        Verdict::Allow => {
            c.auth.lambda = Some(outcome);
            c.auth.passed = Passed::Lambda;
            Ok(())
        }
        Verdict::Deny => {
            c.error_message.clear();
            c.error_message.push_str("User is not authorized to access this resource with an explicit deny");
            Err(Kind::AccessDenied)
        }
        Verdict::NotAllowed => Err(Kind::AccessDenied),
    }
}

/// The authorizer event (reference section 13.1).
#[allow(clippy::too_many_arguments)]
fn build_event(
    c: &Conn,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    a: &LambdaAuthorizer,
    caps: &Captures,
    arn: &str,
    id: &[u8; 36],
) -> Vec<u8> {
    if a.kind == LambdaKind::Token {
        let token = &c.auth.key[..c.auth.key.len().saturating_sub(1)];
        let mut out = Vec::with_capacity(128 + token.len() + arn.len());
        out.extend_from_slice(b"{\"type\":\"TOKEN\",\"authorizationToken\":");
        super::json_str(&mut out, token);
        out.extend_from_slice(b",\"methodArn\":");
        super::json_str(&mut out, arn.as_bytes());
        out.push(b'}');
        return out;
    }
    let r = &plan.routes[route as usize];
    let st = &plan.stages[stage];
    let epoch_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let input = event::Input {
        buf: &c.rbuf,
        head,
        fields: &c.fields,
        stage: &st.name,
        resource: &r.path,
        path: request_path(plan, stage, &c.rbuf, head),
        params: &r.params,
        caps,
        stage_vars: &st.variables,
        source_ip: &c.peer_ip,
        local_port: c.local_port,
        request_id: id,
        epoch_ms,
        body: b"",
        base64_body: false,
        api_key: None,
        api_id: &plan.api.id,
        account_id: &plan.api.account_id,
        authorizer: b"",
    };
    let mut v1 = Vec::with_capacity(2048);
    event::v1(&mut v1, &input);
    let mut ev: serde_json::Map<String, Value> = match serde_json::from_slice(&v1) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    ev.remove("body");
    ev.remove("isBase64Encoded");
    let mut out = serde_json::Map::with_capacity(ev.len() + 2);
    out.insert("type".into(), "REQUEST".into());
    out.insert("methodArn".into(), arn.into());
    out.extend(ev);
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// Invokes the function and parses its answer.
#[allow(clippy::too_many_arguments)]
async fn invoke(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    a: &LambdaAuthorizer,
    caps: &Captures,
    arn: &str,
) -> Result<Outcome, Kind> {
    let id = w.new_id();
    let ev = build_event(c, plan, head, (stage, route), a, caps, arn, &id);
    let f = &plan.functions[a.function as usize];
    let deadline = Instant::now() + a.timeout;
    let slot = take_endpoint(f, deadline).await.map_err(|_| Kind::AuthorizerFailure)?;
    let up = f.endpoints[slot.index] as usize;
    let call = post_event(c, w, plan, up, &f.invoke_path, &ev, MAX_ANSWER);
    let reply = monoio::time::timeout_at(deadline.into(), call).await;
    drop(slot);
    let reply = match reply {
        Ok(Ok(r)) => r,
        _ => return Err(Kind::AuthorizerFailure),
    };
    let function_error = reply.header("x-amz-function-error").is_some();
    if !(200..300).contains(&reply.status) && !function_error {
        return Err(Kind::AuthorizerFailure);
    }
    match parse_answer(&reply.body, function_error) {
        Ok(o) => Ok(o),
        Err(Refusal::Unauthorized) => Err(Kind::Unauthorized),
        Err(Refusal::Invalid(_)) => Err(Kind::AuthorizerConfigurationError),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        let arn = "arn:aws:execute-api:us-east-1:0:api/test/GET/pets/7";
        assert!(wildcard(b"*", arn.as_bytes()));
        assert!(wildcard(b"arn:aws:execute-api:*:*:api/test/GET/*", arn.as_bytes()));
        assert!(wildcard(b"arn:aws:execute-api:us-east-1:0:api/test/???/pets/?", arn.as_bytes()));
        assert!(!wildcard(b"arn:aws:execute-api:us-east-1:0:api/test/POST/*", arn.as_bytes()));
        assert!(!wildcard(b"arn:aws:execute-api:us-east-1:0:api/test/GET/pets", arn.as_bytes()));
        assert!(wildcard(b"execute-api:*", b"execute-api:Invoke"));
    }

    #[test]
    fn deny_wins_and_answers_are_validated() {
        let answer = br#"{"principalId":"u1","policyDocument":{"Version":"2012-10-17","Statement":[
            {"Action":"execute-api:Invoke","Effect":"Allow","Resource":"*"},
            {"Action":["execute-api:Invoke"],"Effect":"Deny","Resource":["*/DELETE/*"]}]},
            "context":{"n":1,"b":true,"s":"x"},"usageIdentifierKey":"k1"}"#;
        let o = parse_answer(answer, false).unwrap();
        assert_eq!(o.evaluate("arn:x/test/GET/a"), Verdict::Allow);
        assert_eq!(o.evaluate("arn:x/test/DELETE/a"), Verdict::Deny);
        assert_eq!(o.context, vec![("n".into(), "1".into()), ("b".into(), "true".into()), ("s".into(), "x".into())]);
        assert_eq!(o.usage_key.as_deref(), Some("k1"));
        assert_eq!(parse_answer(br#"{"errorMessage":"Unauthorized"}"#, true).unwrap_err(), Refusal::Unauthorized);
        assert_eq!(parse_answer(b"\"Unauthorized\"", false).unwrap_err(), Refusal::Unauthorized);
        assert!(matches!(parse_answer(br#"{"principalId":"u"}"#, false), Err(Refusal::Invalid(_))));
        let nested = br#"{"principalId":"u","policyDocument":{"Statement":[]},"context":{"o":{}}}"#;
        assert!(matches!(parse_answer(nested, false), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let c = ResultCache::new(8);
        let o = Arc::new(Outcome { principal: "p".into(), statements: vec![], context: vec![], usage_key: None });
        c.put(b"a", o.clone(), 100, 0);
        assert!(c.get(b"a", 99).is_some());
        assert!(c.get(b"a", 100).is_none());
        for i in 0..100u32 {
            c.put(&i.to_be_bytes(), o.clone(), 1000, 10);
        }
        assert!(c.len() <= 8, "{}", c.len());
    }
}
