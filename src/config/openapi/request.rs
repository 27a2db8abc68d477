//! The method request: `security` (an apiKey scheme -> `api_key_required`; authorizers and
//! IAM are not supported) and request validators (`validate = { required, body }` with the
//! document's schemas as models).

use super::convert::Conv;
use super::emit;
use super::integration::Unsupported;
use crate::config::error::ConfigError;
use serde_json::Value;

impl Conv<'_> {
    /// Ok(true) when the operation requires an API key; Err for an unsupported scheme.
    pub(super) fn security(&mut self, op: &Value, op_path: &str) -> Result<Result<bool, Unsupported>, ConfigError> {
        let Some(sec) = op.get("security") else { return Ok(Ok(false)) };
        let at = format!("{op_path}.security");
        let Some(list) = sec.as_array() else { return Err(self.doc.err(&at, "security is a list of requirements")) };
        let schemes = if self.doc.swagger() {
            self.root().get("securityDefinitions")
        } else {
            self.root().pointer("/components/securitySchemes")
        };
        let mut api_key = false;
        for req in list {
            for name in req.as_object().into_iter().flat_map(|m| m.keys()) {
                let Some(s) = schemes.and_then(|m| m.get(name)) else {
                    return Err(self.doc.err(&at, format!("security scheme '{name}' is not defined")));
                };
                let s = self.doc.resolve(s);
                let authtype =
                    s.get("x-amazon-apigateway-authtype").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
                let authorizer = s.get("x-amazon-apigateway-authorizer");
                let kind = authorizer
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    .map(str::to_ascii_lowercase)
                    .unwrap_or_default();
                let unsupported = if kind == "cognito_user_pools" || authtype == "cognito_user_pools" {
                    Some(format!("Cognito user pool authorizer '{name}' is not supported"))
                } else if kind == "jwt" {
                    Some(format!("JWT authorizer '{name}' is not supported"))
                } else if authorizer.is_some() || authtype == "custom" {
                    Some(format!("Lambda authorizer '{name}' is not supported"))
                } else if authtype == "awssigv4" || authtype == "aws_iam" {
                    Some(format!("IAM authorization ('{name}') is not supported"))
                } else if s.get("type").and_then(Value::as_str) == Some("apiKey") {
                    api_key = true;
                    None
                } else {
                    let ty = s.get("type").and_then(Value::as_str).unwrap_or("?");
                    Some(format!("security scheme '{name}' of type '{ty}' is not supported"))
                };
                if let Some(m) = unsupported {
                    return Ok(Err(Unsupported::new(at, m)));
                }
            }
        }
        Ok(Ok(api_key))
    }

    /// The request validator in force (the operation's, else the document's default) as a
    /// native `validate = { ... }`.
    pub(super) fn validation(
        &mut self,
        item: &Value,
        op: &Value,
        op_path: &str,
        params: &[String],
    ) -> Result<Option<String>, ConfigError> {
        const KEY: &str = "x-amazon-apigateway-request-validator";
        let (name, at) = match op.get(KEY) {
            Some(v) => (v, format!("{op_path}.{KEY}")),
            None => match self.root().get(KEY) {
                Some(v) => (v, KEY.to_string()),
                None => return Ok(None),
            },
        };
        let Some(name) = name.as_str() else { return Err(self.doc.err(&at, "a validator name")) };
        let Some(v) = self.root().get("x-amazon-apigateway-request-validators").and_then(|m| m.get(name)) else {
            return Err(self.doc.err(&at, format!("no validator '{name}' in x-amazon-apigateway-request-validators")));
        };
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let mut parts = Vec::new();
        if flag("validateRequestParameters") {
            let mut required: Vec<String> = Vec::new();
            let all = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten());
            for p in all {
                let p = self.doc.resolve(p);
                let (Some(n), Some(loc)) = (p.get("name").and_then(Value::as_str), p.get("in").and_then(Value::as_str))
                else {
                    continue;
                };
                let loc = match loc {
                    "header" => "header",
                    "query" => "querystring",
                    "path" if params.iter().any(|x| x == n) => "path",
                    _ => continue,
                };
                let key = format!("{loc}.{n}");
                let req = p.get("required").and_then(Value::as_bool) == Some(true);
                // An operation's parameter overrides the path item's of the same name.
                required.retain(|r| *r != key);
                if req {
                    required.push(key);
                }
            }
            if !required.is_empty() {
                parts.push(format!("required = {}", emit::string_list(&required)));
            }
        }
        if flag("validateRequestBody") {
            let bodies = self.body_models(op, op_path)?;
            if !bodies.is_empty() {
                parts.push(format!(
                    "body = {}",
                    emit::inline_strings(bodies.iter().map(|(k, v)| (k.as_str(), v.clone())))
                ));
            }
        }
        Ok((!parts.is_empty()).then(|| format!("{{ {} }}", parts.join(", "))))
    }

    /// (content type, model name) of the request body: OpenAPI 3's `requestBody.content`,
    /// Swagger's `in: body` parameter with `consumes`. Inline schemas become models.
    fn body_models(&mut self, op: &Value, op_path: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let mut out = Vec::new();
        if self.doc.swagger() {
            let body = op
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| self.doc.resolve(p))
                .find(|p| p.get("in").and_then(Value::as_str) == Some("body"));
            let Some(schema) = body.and_then(|b| b.get("schema")) else { return Ok(out) };
            let consumes = op.get("consumes").or_else(|| self.root().get("consumes")).and_then(Value::as_array);
            let types: Vec<String> = match consumes {
                Some(c) => c.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                None => vec!["application/json".into()],
            };
            let model = self.model_for(schema, op_path);
            for t in types {
                out.push((t, model.clone()));
            }
        } else {
            let Some(rb) = op.get("requestBody") else { return Ok(out) };
            let rb = self.doc.resolve(rb);
            for (t, media) in rb.get("content").and_then(Value::as_object).into_iter().flatten() {
                if let Some(schema) = media.get("schema") {
                    let model = self.model_for(schema, &format!("{op_path}.{t}"));
                    out.push((t.clone(), model));
                }
            }
        }
        Ok(out)
    }

    /// The model a schema names (`$ref` to a schema), or a new model for an inline one.
    fn model_for(&mut self, schema: &Value, at: &str) -> String {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            for prefix in ["#/components/schemas/", "#/definitions/"] {
                if let Some(n) = r.strip_prefix(prefix) {
                    return n.replace("~1", "/").replace("~0", "~");
                }
            }
        }
        let base: String =
            at.trim_start_matches("paths.").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let mut name = format!("{}Body", base.trim_matches('_'));
        while self.models.iter().any(|(n, _, _)| *n == name) {
            name.push('_');
        }
        self.models.push((name.clone(), schema.clone(), at.to_string()));
        name
    }
}
