//! Authorizers, run after routing and before the API key check (the reference's pipeline,
//! section 1): JWT validation at the edge, and Lambda-style TOKEN / REQUEST authorizers
//! invoked through the function machinery with a shared result cache.
//!
//! What an authorizer learned (claims, principal, context) stays in the connection's
//! `AuthState` for the rest of the request: templates (`$context.authorizer.*`), function
//! events (`requestContext.authorizer`), the API key (`usageIdentifierKey`) and access logs.

pub mod jwks;
pub mod jwt;
pub mod lambda;

use crate::config::plan::Plan;
use crate::http::gateway_response::Kind;
use crate::http::request::{Field, Head};
use crate::integration::json;
use crate::route::Captures;
use crate::server::connection::Conn;
use crate::server::worker::Worker;
use std::borrow::Cow;
use std::sync::Arc;

/// Index of "no authorizer" in `Plan::route_authorizers`.
pub const NONE: u32 = u32::MAX;

pub enum Authorizer {
    Jwt(Box<JwtAuthorizer>),
    Lambda(Box<lambda::LambdaAuthorizer>),
}

pub struct JwtAuthorizer {
    /// Request header carrying the token (lowercase).
    pub header: Box<[u8]>,
    pub config: jwt::JwtConfig,
}

/// Where an identity value comes from (`identity_source` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    Header(String),
    Query(String),
    StageVariable(String),
    Context(String),
}

impl IdentitySource {
    /// `header.X`, `querystring.X`, `stageVariables.X`, `context.X` (API Gateway's
    /// `method.request.` prefix is accepted too).
    pub fn parse(s: &str) -> Result<IdentitySource, String> {
        let t = s.trim();
        let t = t.strip_prefix("method.request.").unwrap_or(t);
        let t = t.strip_prefix('$').unwrap_or(t);
        let t = t.strip_prefix("request.").unwrap_or(t);
        let bad = || {
            format!("identity source '{s}' must be header.NAME, querystring.NAME, stageVariables.NAME or context.NAME")
        };
        let (kind, name) = t.split_once('.').ok_or_else(bad)?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == b',') {
            return Err(bad());
        }
        Ok(match kind {
            "header" => IdentitySource::Header(name.to_ascii_lowercase()),
            "querystring" => IdentitySource::Query(name.to_string()),
            "stageVariables" => IdentitySource::StageVariable(name.to_string()),
            "context" => IdentitySource::Context(name.to_string()),
            _ => return Err(bad()),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Passed {
    #[default]
    None,
    Jwt,
    Lambda,
}

/// What the current request's authorizer established. Per connection, reset per request;
/// the buffers are reused.
#[derive(Default)]
pub struct AuthState {
    pub passed: Passed,
    /// JWT decode buffers; after a pass, `jwt.claims` holds the claims JSON.
    pub jwt: jwt::Scratch,
    /// A Lambda authorizer's (possibly cached) result.
    pub lambda: Option<Arc<lambda::Outcome>>,
    /// Description for `WWW-Authenticate` on a JWT authorizer's 401.
    pub challenge: Option<&'static str>,
    /// Identity values of the current request (cache key), reused.
    pub key: Vec<u8>,
}

impl AuthState {
    #[inline]
    pub fn reset(&mut self) {
        self.passed = Passed::None;
        self.lambda = None;
        self.challenge = None;
    }

    /// The JWT claims as a JSON object.
    pub fn claims(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        if self.passed != Passed::Jwt {
            return None;
        }
        match serde_json::from_slice(&self.jwt.claims) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// The API key an authorizer returned (`usageIdentifierKey`).
    pub fn usage_key(&self) -> Option<&[u8]> {
        self.lambda.as_ref().and_then(|o| o.usage_key.as_deref()).map(str::as_bytes)
    }

    /// `$context.authorizer` for templates and mappings: `claims.*` and `principalId`
    /// (the `sub` claim) for JWT, `principalId` and the context keys for Lambda.
    pub fn template_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self.passed {
            Passed::None => Value::Null,
            Passed::Jwt => {
                let claims = self.claims().unwrap_or_default();
                let mut m = serde_json::Map::new();
                if let Some(sub) = claims.get("sub") {
                    m.insert("principalId".into(), sub.clone());
                }
                m.insert("scopes".into(), jwt::scopes(&claims).into());
                m.insert("claims".into(), Value::Object(claims));
                Value::Object(m)
            }
            Passed::Lambda => {
                let o = self.lambda.as_ref().expect("lambda outcome");
                let mut m = serde_json::Map::new();
                m.insert("principalId".into(), o.principal.clone().into());
                for (k, v) in &o.context {
                    m.insert(k.clone(), v.clone().into());
                }
                Value::Object(m)
            }
        }
    }

    /// `requestContext.authorizer` of a function event (empty: leave it out). Format 1.0:
    /// `{"claims":…,"scopes":…}` or `{"principalId":…,"KEY":…}`; 2.0: `{"jwt":{"claims",
    /// "scopes"}}` or `{"lambda":{…}}`.
    pub fn event_json(&self, v2: bool, out: &mut Vec<u8>) {
        use serde_json::Value;
        let v = match (self.passed, v2) {
            (Passed::None, _) => return,
            (Passed::Jwt, false) => {
                let claims = self.claims().unwrap_or_default();
                let scopes = jwt::scopes(&claims);
                let mut m = serde_json::Map::new();
                if let Some(sub) = claims.get("sub") {
                    m.insert("principalId".into(), sub.clone());
                }
                m.insert("claims".into(), Value::Object(claims));
                m.insert("scopes".into(), if scopes.is_empty() { Value::Null } else { scopes.into() });
                Value::Object(m)
            }
            (Passed::Jwt, true) => {
                let claims = self.claims().unwrap_or_default();
                let scopes = jwt::scopes(&claims);
                let scopes = if scopes.is_empty() { Value::Null } else { scopes.into() };
                serde_json::json!({"jwt": {"claims": claims, "scopes": scopes}})
            }
            (Passed::Lambda, false) => self.template_value(),
            (Passed::Lambda, true) => {
                let o = self.lambda.as_ref().expect("lambda outcome");
                let ctx: serde_json::Map<String, Value> =
                    o.context.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                serde_json::json!({"lambda": ctx, "principalId": o.principal})
            }
        };
        let _ = serde_json::to_writer(&mut *out, &v);
    }

    /// An access log variable `$context.authorizer.NAME`: `claims.X`, `principalId`, or a
    /// Lambda authorizer's context key.
    pub fn log_value(&self, name: &str) -> Option<Cow<'_, str>> {
        match self.passed {
            Passed::None => None,
            Passed::Jwt => {
                let claims = self.claims()?;
                let key = match name.strip_prefix("claims.") {
                    Some(k) => k,
                    None if name == "principalId" => "sub",
                    None => return None,
                };
                match claims.get(key)? {
                    serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
                    serde_json::Value::Null => None,
                    other => Some(Cow::Owned(other.to_string())),
                }
            }
            Passed::Lambda => {
                let o = self.lambda.as_ref()?;
                if name == "principalId" {
                    return Some(Cow::Borrowed(o.principal.as_str()));
                }
                o.context.iter().find(|(k, _)| k == name).map(|(_, v)| Cow::Borrowed(v.as_str()))
            }
        }
    }

    /// `WWW-Authenticate` for a JWT authorizer's 401, when one applies.
    pub fn write_challenge(&self, out: &mut Vec<u8>) {
        if let Some(why) = self.challenge {
            out.extend_from_slice(b"WWW-Authenticate: Bearer scope=\"\" error=\"invalid_token\" error_description=\"");
            out.extend_from_slice(why.as_bytes());
            out.extend_from_slice(b"\"\r\n");
        }
    }
}

/// The first request header named `name` (lowercase), from the connection's parsed fields.
#[inline]
pub(crate) fn header<'b>(fields: &[Field], buf: &'b [u8], name: &[u8]) -> Option<&'b [u8]> {
    fields.iter().find(|f| f.name(buf).eq_ignore_ascii_case(name)).map(|f| f.value(buf))
}

/// Runs the route's authorizer. Err: the gateway response to send (with `c.error_message`
/// and `c.auth.challenge` set as needed).
pub async fn authorize(
    c: &mut Conn,
    w: &Worker,
    plan: &Plan,
    head: &Head,
    (stage, route): (usize, u32),
    index: u32,
    caps: &Captures,
) -> Result<(), Kind> {
    match &plan.authorizers[index as usize] {
        Authorizer::Jwt(a) => {
            let Some(value) = header(&c.fields, &c.rbuf, &a.header) else {
                c.auth.challenge = Some("the token is missing");
                return Err(Kind::Unauthorized);
            };
            let token = jwt::token_of(value);
            if token.is_empty() {
                c.auth.challenge = Some("the token is missing");
                return Err(Kind::Unauthorized);
            }
            match jwt::verify(&a.config, token, crate::clock::unix_now(), &mut c.auth.jwt) {
                Ok(()) => {
                    c.auth.passed = Passed::Jwt;
                    Ok(())
                }
                Err(jwt::Denied::Invalid(why)) => {
                    c.auth.challenge = Some(why);
                    Err(Kind::Unauthorized)
                }
                Err(jwt::Denied::Scope) => {
                    c.error_message.clear();
                    c.error_message.push_str("Forbidden");
                    Err(Kind::AccessDenied)
                }
            }
        }
        // Boxed: the Lambda call's future (timeouts, an upstream exchange) would otherwise be
        // part of every request's future, JWT and no-authorizer routes included.
        Authorizer::Lambda(a) => Box::pin(lambda::authorize(c, w, plan, head, (stage, route), a, caps)).await,
    }
}

/// JSON string helper shared with the Lambda events.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &[u8]) {
    json::str(out, s);
}
