//! `x-amazon-apigateway-integration` -> the route's native `integration` table.

use super::convert::Conv;
use super::emit;
use crate::config::error::ConfigError;
use serde_json::Value;

/// An operation ringway cannot serve: the JSON path and why.
pub(super) struct Unsupported {
    pub path: String,
    pub message: String,
}

impl Unsupported {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Unsupported { path: path.into(), message: message.into() }
    }
}

/// A converted integration, ready to be written.
pub(super) struct Integ {
    /// JSON path of the integration.
    pub path: String,
    /// (key, TOML value, JSON path)
    pub fields: Vec<(String, String, String)>,
    pub request_templates: Vec<(String, String)>,
    pub responses: Vec<Resp>,
    /// The route's cache key, from cacheKeyParameters.
    pub cache_key: Option<Vec<String>>,
    pub comments: Vec<String>,
}

pub(super) struct Resp {
    pub path: String,
    pub pattern: Option<String>,
    pub status: u16,
    pub parameters: Vec<(String, String)>,
    pub templates: Vec<(String, String)>,
}

type Outcome = Result<Result<Integ, Unsupported>, ConfigError>;

impl Conv<'_> {
    pub(super) fn integration(&mut self, op: &Value, op_path: &str, method: &str, params: &[String]) -> Outcome {
        let path = format!("{op_path}.x-amazon-apigateway-integration");
        let Some(i) = op.get("x-amazon-apigateway-integration") else {
            return Ok(Err(Unsupported::new(op_path, "the operation has no x-amazon-apigateway-integration")));
        };
        if !i.is_object() {
            return Err(self.doc.err(&path, "the integration is a mapping"));
        }
        let ty = match i.get("type").and_then(Value::as_str) {
            Some(t) => t.to_ascii_lowercase(),
            None => return Err(self.doc.err(&path, "type is required (http, http_proxy, mock, aws_proxy or aws)")),
        };
        let mut x = Integ {
            path: path.clone(),
            fields: vec![("type".into(), emit::basic(&ty), format!("{path}.type"))],
            request_templates: Vec::new(),
            responses: Vec::new(),
            cache_key: None,
            comments: Vec::new(),
        };
        if i.get("contentHandling").is_some() {
            self.warn(format!("{path}.contentHandling"), "contentHandling is not supported; bodies pass unconverted");
        }
        let out = match ty.as_str() {
            "http_proxy" => self.http_proxy(i, &path, method, &mut x)?,
            "http" => self.http(i, &path, &mut x)?,
            "mock" => self.mock(i, &path, &mut x)?,
            "aws_proxy" => self.aws_proxy(i, &path, &mut x)?,
            "aws" => {
                let lambda = i.get("uri").and_then(Value::as_str).is_some_and(|u| u.contains(":lambda:path/"));
                Err(Unsupported::new(
                    &path,
                    if lambda {
                        "non-proxy Lambda integrations (type aws) are not supported; aws_proxy is"
                    } else {
                        "AWS service integrations are not supported"
                    },
                ))
            }
            other => {
                return Err(self.doc.err(
                    &format!("{path}.type"),
                    format!("unknown integration type '{other}' (http, http_proxy, mock, aws_proxy or aws)"),
                ))
            }
        };
        let _ = params;
        Ok(out.map(|()| x))
    }

    fn uri<'v>(&self, i: &'v Value, path: &str) -> Result<&'v str, ConfigError> {
        i.get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| self.doc.err(path, "uri is required for this integration type"))
    }

    fn timeout(&mut self, i: &Value, path: &str, x: &mut Integ) {
        let Some(t) = i.get("timeoutInMillis") else { return };
        let at = format!("{path}.timeoutInMillis");
        let Some(ms) = emit::text(t).and_then(|s| s.parse::<u64>().ok()) else {
            self.warn(at, "not a number of milliseconds; the default (29000) applies");
            return;
        };
        let clamped = ms.clamp(50, 29_000);
        if clamped != ms {
            self.warn(at.clone(), format!("{ms} ms is outside 50-29000; {clamped} ms applies"));
        }
        x.fields.push(("timeout_ms".into(), clamped.to_string(), at));
    }

    /// The URI with a VPC link resolved to an overlay `[upstreams.NAME]` group, and
    /// `tlsConfig`.
    fn backend_uri(&mut self, i: &Value, path: &str, uri: &str, x: &mut Integ) -> Result<(), Unsupported> {
        let mut uri = uri.to_string();
        let vpc = i.get("connectionType").and_then(Value::as_str).is_some_and(|c| c.eq_ignore_ascii_case("VPC_LINK"));
        if vpc {
            let id = i.get("connectionId").and_then(Value::as_str).unwrap_or("");
            let ids = self.per_stage(id);
            let (scheme, rest) = uri.split_once("://").unwrap_or(("http", uri.as_str()));
            let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.split(':').next().unwrap_or("");
            let group = match ids.as_slice() {
                [one] if self.env.groups.contains(one) => Some(one.clone()),
                _ if self.env.groups.iter().any(|g| g == host) => None,
                _ => {
                    return Err(Unsupported::new(
                        format!("{path}.connectionId"),
                        format!(
                            "VPC link '{id}': define [upstreams.\"{}\"] with the link's targets in the overlay",
                            ids.first().map_or(id, String::as_str)
                        ),
                    ))
                }
            };
            if let Some(g) = group {
                x.comments.push(format!("VPC link {id}: the overlay's [upstreams.\"{g}\"]"));
                uri = format!("{scheme}://{g}{tail}");
            }
        }
        let https = uri.starts_with("https://");
        x.fields.push(("uri".into(), emit::basic(&uri), format!("{path}.uri")));
        let insecure = i.pointer("/tlsConfig/insecureSkipVerification").and_then(Value::as_bool) == Some(true);
        if insecure && https {
            x.fields.push(("tls".into(), "{ insecure_skip_verification = true }".into(), format!("{path}.tlsConfig")));
        }
        Ok(())
    }

    /// `s` with `${stageVariables.x}` resolved for each overlay stage (once without stages),
    /// distinct values in stage order.
    pub(super) fn per_stage(&self, s: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.each_stage(s) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    /// `s` with each stage's variables substituted, in stage order.
    fn each_stage(&self, s: &str) -> Vec<String> {
        let empty = std::collections::BTreeMap::new();
        let stages: Vec<&std::collections::BTreeMap<String, String>> =
            if self.env.stages.is_empty() { vec![&empty] } else { self.env.stages.iter().map(|(_, v, _)| v).collect() };
        stages
            .into_iter()
            .map(|vars| crate::integration::uri::substitute_stage_variables(s, vars).unwrap_or_else(|_| s.to_string()))
            .collect()
    }

    fn http_proxy(&mut self, i: &Value, path: &str, method: &str, x: &mut Integ) -> Outcome2 {
        let mut uri = self.uri(i, path)?.to_string();
        for (k, v) in i.get("requestParameters").and_then(Value::as_object).into_iter().flatten() {
            let at = format!("{path}.requestParameters.{k}");
            let src = v.as_str().unwrap_or("");
            match k.strip_prefix("integration.request.path.") {
                Some(dest) => match src.strip_prefix("method.request.path.") {
                    Some(from) => {
                        uri = uri.replace(&format!("{{{dest}+}}"), &format!("{{{from}}}"));
                        uri = uri.replace(&format!("{{{dest}}}"), &format!("{{{from}}}"));
                    }
                    None => {
                        return Ok(Err(Unsupported::new(
                            at,
                            "an http_proxy URI path parameter can only come from method.request.path.NAME",
                        )))
                    }
                },
                None => self.warn(
                    at,
                    "ignored: an http_proxy integration passes the request's headers and query string through as they are",
                ),
            }
        }
        if let Some(m) = i.get("httpMethod").and_then(Value::as_str) {
            if !m.eq_ignore_ascii_case("ANY") && !m.eq_ignore_ascii_case(method) {
                self.warn(
                    format!("{path}.httpMethod"),
                    format!("ignored: an http_proxy integration sends the request's method, not {m}"),
                );
            }
        }
        if let Err(u) = self.backend_uri(i, path, &uri, x) {
            return Ok(Err(u));
        }
        self.timeout(i, path, x);
        self.cache_key(i, path, x);
        Ok(Ok(()))
    }

    /// cacheKeyParameters become the route's cache key when the overlay's stages cache:
    /// like API Gateway, nothing is cached unless the stage turns caching on.
    fn cache_key(&mut self, i: &Value, path: &str, x: &mut Integ) {
        let keys: Vec<String> = i
            .get("cacheKeyParameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if let Some(ns) = i.get("cacheNamespace").and_then(Value::as_str) {
            x.comments.push(format!("cacheNamespace {ns}: entries are keyed by route"));
        }
        if keys.is_empty() {
            return;
        }
        let caching = self.env.stages.iter().filter(|(_, _, c)| *c).count();
        if caching == 0 {
            x.comments.push(format!("cacheKeyParameters {keys:?}: used once a stage enables its cache"));
        } else if caching < self.env.stages.len() {
            self.warn(
                format!("{path}.cacheKeyParameters"),
                "not applied: a route's cache key would turn caching on in every stage, and only some stages cache (they use the path parameters as the key)",
            );
        } else {
            x.cache_key = Some(keys);
        }
    }

    fn http(&mut self, i: &Value, path: &str, x: &mut Integ) -> Outcome2 {
        let uri = self.uri(i, path)?.to_string();
        if let Err(u) = self.backend_uri(i, path, &uri, x) {
            return Ok(Err(u));
        }
        if let Some(m) = i.get("httpMethod").and_then(Value::as_str).filter(|m| !m.eq_ignore_ascii_case("ANY")) {
            x.fields.push(("http_method".into(), emit::basic(&m.to_ascii_uppercase()), format!("{path}.httpMethod")));
        }
        self.timeout(i, path, x);
        self.request_side(i, path, x)?;
        self.responses(i, path, x)
    }

    fn mock(&mut self, i: &Value, path: &str, x: &mut Integ) -> Outcome2 {
        if i.get("requestTemplates").and_then(Value::as_object).is_none_or(|t| t.is_empty()) {
            // No template: the mock's status is 200.
            x.request_templates.push(("$default".into(), "{\"statusCode\": 200}".into()));
        }
        self.request_side(i, path, x)?;
        x.fields.retain(|(k, _, _)| k != "request_parameters");
        self.responses(i, path, x)
    }

    fn request_side(&mut self, i: &Value, path: &str, x: &mut Integ) -> Result<(), ConfigError> {
        if let Some(rp) = i.get("requestParameters") {
            let pairs = string_map(rp)
                .ok_or_else(|| self.doc.err(&format!("{path}.requestParameters"), "a mapping of strings"))?;
            if !pairs.is_empty() {
                let at = format!("{path}.requestParameters");
                x.fields.push((
                    "request_parameters".into(),
                    emit::inline_strings(pairs.iter().map(|(k, v)| (k.as_str(), v.clone()))),
                    at,
                ));
            }
        }
        if let Some(rt) = i.get("requestTemplates") {
            let pairs = string_map(rt)
                .ok_or_else(|| self.doc.err(&format!("{path}.requestTemplates"), "a mapping of strings"))?;
            x.request_templates.extend(pairs);
        }
        if let Some(p) = i.get("passthroughBehavior").and_then(Value::as_str) {
            x.fields.push((
                "passthrough_behavior".into(),
                emit::basic(&p.to_ascii_lowercase()),
                format!("{path}.passthroughBehavior"),
            ));
        }
        Ok(())
    }

    /// Integration responses: selection patterns in document order, then `default`.
    fn responses(&mut self, i: &Value, path: &str, x: &mut Integ) -> Outcome2 {
        let map = match i.get("responses") {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err(self.doc.err(&format!("{path}.responses"), "a mapping of selection patterns")),
        };
        let Some(map) = map.filter(|m| !m.is_empty()) else {
            return Ok(Err(Unsupported::new(
                path,
                "a non-proxy integration without responses cannot answer (API Gateway answers 500 too)",
            )));
        };
        let mut defaults = Vec::new();
        for (pattern, r) in map {
            let at = format!("{path}.responses.{pattern}");
            let status = r
                .get("statusCode")
                .and_then(emit::text)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| self.doc.err(&at, "statusCode is required (e.g. \"200\")"))?;
            let parameters = match r.get("responseParameters") {
                None => Vec::new(),
                Some(v) => string_map(v)
                    .ok_or_else(|| self.doc.err(&format!("{at}.responseParameters"), "a mapping of strings"))?,
            };
            let templates = match r.get("responseTemplates") {
                None => Vec::new(),
                Some(v) => string_map(v)
                    .ok_or_else(|| self.doc.err(&format!("{at}.responseTemplates"), "a mapping of strings"))?,
            };
            if r.get("contentHandling").is_some() {
                self.warn(format!("{at}.contentHandling"), "contentHandling is not supported; bodies pass unconverted");
            }
            let default = pattern == "default" || pattern.is_empty();
            let resp = Resp { path: at, pattern: (!default).then(|| pattern.clone()), status, parameters, templates };
            if default {
                defaults.push(resp);
            } else {
                x.responses.push(resp);
            }
        }
        x.responses.extend(defaults);
        Ok(Ok(()))
    }

    fn aws_proxy(&mut self, i: &Value, path: &str, x: &mut Integ) -> Outcome2 {
        let uri = self.uri(i, path)?;
        let uri_path = format!("{path}.uri");
        let Some(arn) = lambda_function(uri) else {
            return Ok(Err(Unsupported::new(
                uri_path,
                "AWS service integrations are not supported (only Lambda functions)",
            )));
        };
        if let Some(m) = i.get("httpMethod").and_then(Value::as_str).filter(|m| !m.eq_ignore_ascii_case("POST")) {
            return Ok(Err(Unsupported::new(
                format!("{path}.httpMethod"),
                format!("a Lambda proxy integration must call POST, not {m}"),
            )));
        }
        let mut chosen: Vec<(String, String)> = Vec::new(); // (resolved ARN, function)
        for resolved in self.per_stage(arn) {
            match function_for(&resolved, &self.env.functions) {
                Some(f) => {
                    if !chosen.iter().any(|(_, g)| *g == f) {
                        chosen.push((resolved, f));
                    }
                }
                None => {
                    return Ok(Err(Unsupported::new(
                        uri_path,
                        format!(
                            "no function for {resolved}: add [functions.\"{}\"] endpoints = [...] to the overlay",
                            short_name(&resolved)
                        ),
                    )))
                }
            }
        }
        let mut function = chosen[0].1.clone();
        if chosen.len() > 1 {
            // `function` takes ${stageVariables.x} too: find the spelling (ARN, NAME:QUALIFIER
            // or NAME) that names each stage's function once substituted.
            let want: Vec<Option<String>> =
                self.each_stage(arn).iter().map(|r| function_for(r, &self.env.functions)).collect();
            let short = short_name(arn);
            let bare = short.split(':').next().unwrap_or(short);
            let fits = |t: &&&str| self.each_stage(t).into_iter().map(Some).collect::<Vec<_>>() == want;
            match [arn, short, bare].iter().find(fits) {
                Some(t) => function = t.to_string(),
                None => {
                    let list: Vec<String> = chosen.iter().map(|(a, f)| format!("{a} -> {f}")).collect();
                    return Ok(Err(Unsupported::new(
                        uri_path,
                        format!(
                            "the function differs per stage ({}) and no ${{stageVariables.x}} spelling of the overlay's function names matches every stage",
                            list.join(", ")
                        ),
                    )));
                }
            }
        }
        x.fields.push(("function".into(), emit::basic(&function), uri_path));
        if let Some(v) = i.get("payloadFormatVersion").and_then(emit::text) {
            x.fields.push(("payload_format".into(), emit::basic(&v), format!("{path}.payloadFormatVersion")));
        }
        self.timeout(i, path, x);
        Ok(Ok(()))
    }
}

type Outcome2 = Result<Result<(), Unsupported>, ConfigError>;

fn string_map(v: &Value) -> Option<Vec<(String, String)>> {
    v.as_object()?.iter().map(|(k, v)| Some((k.clone(), emit::text(v)?))).collect()
}

/// The function ARN in `arn:aws:apigateway:REGION:lambda:path/2015-03-31/functions/ARN/invocations`.
pub(super) fn lambda_function(uri: &str) -> Option<&str> {
    let at = uri.find(":lambda:path/")?;
    let rest = &uri[at + ":lambda:path/".len()..];
    let rest = rest.split_once("/functions/")?.1;
    rest.strip_suffix("/invocations")
}

/// `arn:aws:lambda:r:acct:function:NAME[:QUALIFIER]` -> `NAME[:QUALIFIER]`; anything else as is.
fn short_name(arn: &str) -> &str {
    arn.split_once(":function:").map_or(arn, |(_, n)| n)
}

/// The overlay function for an ARN: the whole ARN, then NAME:QUALIFIER, then NAME.
fn function_for(arn: &str, functions: &[String]) -> Option<String> {
    let short = short_name(arn);
    let bare = short.split(':').next().unwrap_or(short);
    [arn, short, bare].into_iter().find(|c| functions.iter().any(|f| f == c)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_arns() {
        let u = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:pets:live/invocations";
        assert_eq!(lambda_function(u), Some("arn:aws:lambda:us-east-1:1:function:pets:live"));
        assert_eq!(lambda_function("arn:aws:apigateway:us-east-1:sqs:path/1/q"), None);
        let fns = vec!["pets".to_string()];
        assert_eq!(function_for("arn:aws:lambda:us-east-1:1:function:pets:live", &fns).as_deref(), Some("pets"));
        assert_eq!(function_for("arn:aws:lambda:us-east-1:1:function:cats", &fns), None);
    }
}
