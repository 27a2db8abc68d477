//! The document's root extensions and its paths: one native `[[routes]]` entry per
//! operation, in document order, each preceded by a `# paths./x.get` comment.

use super::document::Document;
use super::emit::{self, Emitter};
use super::integration::{Integ, Unsupported};
use super::{BasePath, Env};
use crate::config::error::ConfigError;
use crate::http::gateway_response::{self as gw, Kind};
use serde_json::Value;

pub(super) struct Conv<'a> {
    pub doc: &'a Document,
    pub env: &'a Env,
    pub out: Emitter,
    /// (JSON path, message)
    pub warnings: Vec<(String, String)>,
    pub binary_media_types: Vec<String>,
    /// Models: the document's schemas, then inline request body schemas.
    pub models: Vec<(String, Value, String)>,
    /// The route's `cors = { ... }` from `x-amazon-apigateway-cors`.
    cors: Option<String>,
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

impl<'a> Conv<'a> {
    pub fn new(doc: &'a Document, env: &'a Env) -> Self {
        Conv {
            doc,
            env,
            out: Emitter::default(),
            warnings: Vec::new(),
            binary_media_types: Vec::new(),
            models: Vec::new(),
            cors: None,
        }
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push((path.into(), message.into()));
    }

    pub fn root(&self) -> &'a Value {
        &self.doc.value
    }

    pub fn run(&mut self) -> Result<(), ConfigError> {
        self.root_extensions()?;
        self.schemas()?;
        self.gateway_responses()?;
        let base = self.base_path();
        let paths = self.root()["paths"].as_object().expect("checked by document::parse");
        for (p, item) in paths {
            let item_path = format!("paths.{p}");
            if p.starts_with("x-") {
                continue;
            }
            if !p.starts_with('/') {
                return Err(self.doc.err(&item_path, "paths start with '/'"));
            }
            let item = self.doc.resolve(item);
            let Some(ops) = item.as_object() else {
                return Err(self.doc.err(&item_path, "a path item is a mapping of operations"));
            };
            let route_path = join(&base, p);
            for (k, op) in ops {
                let method = match k.as_str() {
                    m if METHODS.contains(&m) => m.to_ascii_uppercase(),
                    "x-amazon-apigateway-any-method" => "ANY".to_string(),
                    "parameters" | "summary" | "description" | "servers" | "$ref" => continue,
                    "trace" => {
                        self.warn(format!("{item_path}.{k}"), "TRACE is not supported by API Gateway; skipped");
                        continue;
                    }
                    other if other.starts_with("x-amazon-apigateway-") => {
                        self.warn(format!("{item_path}.{k}"), format!("{other} is not supported here; ignored"));
                        continue;
                    }
                    _ => continue,
                };
                let op_path = format!("{item_path}.{k}");
                if !op.is_object() {
                    return Err(self.doc.err(&op_path, "an operation is a mapping"));
                }
                self.operation(&route_path, &method, item, op, &op_path)?;
            }
        }
        self.emit_models();
        Ok(())
    }

    /// Root-level extensions that are not per route.
    fn root_extensions(&mut self) -> Result<(), ConfigError> {
        let root = self.root();
        let Some(map) = root.as_object() else { return Ok(()) };
        for (k, v) in map {
            match k.as_str() {
                "x-amazon-apigateway-binary-media-types" => {
                    let Some(list) = v.as_array() else {
                        return Err(self.doc.err(k, "a list of media types"));
                    };
                    for t in list {
                        let Some(t) = t.as_str() else { return Err(self.doc.err(k, "a list of media types")) };
                        // The REST API stores "image/png" as "image~1png"; exports may keep it.
                        self.binary_media_types.push(t.replace("~1", "/"));
                    }
                }
                "x-amazon-apigateway-api-key-source" => match v.as_str().map(str::to_ascii_uppercase).as_deref() {
                    Some("HEADER") => {}
                    Some("AUTHORIZER") => self.warn(
                        k,
                        "API keys from a Lambda authorizer are not supported: routes that require a key read it from the x-api-key header",
                    ),
                    _ => return Err(self.doc.err(k, "must be \"HEADER\" or \"AUTHORIZER\"")),
                },
                "x-amazon-apigateway-cors" => self.cors = self.cors_of(v, k),
                "x-amazon-apigateway-request-validators"
                | "x-amazon-apigateway-request-validator"
                | "x-amazon-apigateway-gateway-responses"
                | "x-amazon-apigateway-importexport-version"
                | "x-amazon-apigateway-endpoint-configuration"
                | "x-amazon-apigateway-documentation"
                | "x-amazon-apigateway-tag-value" => {}
                "x-amazon-apigateway-policy" => {
                    self.warn(k, "resource policies are not supported; the API is open to whoever reaches the listener")
                }
                "x-amazon-apigateway-minimum-compression-size" => {
                    self.warn(k, "response compression is not supported; responses are sent uncompressed")
                }
                "security" => self.warn(
                    k,
                    "root-level security is ignored, as in API Gateway's import: set security on each operation",
                ),
                other if other.starts_with("x-amazon-apigateway-") => {
                    self.warn(k, format!("{other} is not supported; ignored"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// HTTP API's `x-amazon-apigateway-cors` as a native `cors = { ... }`.
    fn cors_of(&mut self, v: &Value, path: &str) -> Option<String> {
        let list = |k: &str| -> Option<Vec<String>> {
            let v = v.get(k)?;
            match v {
                Value::Array(a) => Some(a.iter().filter_map(emit::text).collect()),
                other => emit::text(other).map(|s| s.split(',').map(|x| x.trim().to_string()).collect()),
            }
        };
        let Some(origins) = list("allowOrigins").filter(|o| !o.is_empty()) else {
            self.warn(path, "no allowOrigins: CORS is not configured");
            return None;
        };
        let mut parts = vec![format!("allow_origins = {}", emit::string_list(&origins))];
        for (from, to) in
            [("allowMethods", "allow_methods"), ("allowHeaders", "allow_headers"), ("exposeHeaders", "expose_headers")]
        {
            // "*" means any: the native default lists serve that purpose.
            if let Some(l) = list(from).filter(|l| !l.is_empty() && !l.iter().any(|x| x == "*")) {
                parts.push(format!("{to} = {}", emit::string_list(&l)));
            }
        }
        if let Some(m) = v.get("maxAge").and_then(Value::as_u64) {
            parts.push(format!("max_age_s = {m}"));
        }
        if v.get("allowCredentials").and_then(Value::as_bool) == Some(true) {
            parts.push("allow_credentials = true".into());
        }
        Some(format!("{{ {} }}", parts.join(", ")))
    }

    /// `components.schemas` (OpenAPI 3) or `definitions` (Swagger): the models.
    fn schemas(&mut self) -> Result<(), ConfigError> {
        let (key, at) =
            if self.doc.swagger() { ("definitions", "definitions") } else { ("schemas", "components.schemas") };
        let schemas =
            if self.doc.swagger() { self.root().get(key) } else { self.root().pointer("/components/schemas") };
        let Some(map) = schemas.and_then(Value::as_object) else { return Ok(()) };
        if !map.is_empty() && self.env.has_models {
            return Err(self.doc.err(
                at,
                "the overlay defines [models] too: models come from the document; remove [models] from the overlay",
            ));
        }
        for (name, s) in map {
            self.models.push((name.clone(), s.clone(), format!("{at}.{name}")));
        }
        Ok(())
    }

    fn emit_models(&mut self) {
        if self.models.is_empty() {
            return;
        }
        self.out.line("");
        self.out.from("components");
        self.out.line("[models]");
        let models = std::mem::take(&mut self.models);
        for (name, schema, path) in &models {
            self.out.from(path);
            self.out.kv(name, &emit::string(&serde_json::to_string(schema).unwrap_or_default()));
        }
        self.models = models;
    }

    /// `x-amazon-apigateway-gateway-responses` as `[gateway_responses.TYPE]` (the overlay's
    /// own take precedence).
    fn gateway_responses(&mut self) -> Result<(), ConfigError> {
        let key = "x-amazon-apigateway-gateway-responses";
        let Some(map) = self.root().get(key) else { return Ok(()) };
        let Some(map) = map.as_object() else { return Err(self.doc.err(key, "a mapping of response types")) };
        for (ty, r) in map {
            let path = format!("{key}.{ty}");
            if self.env.gateway_responses.contains(ty) {
                continue;
            }
            if ty == "REQUEST_TOO_LARGE" {
                self.warn(path, "REQUEST_TOO_LARGE cannot be customized (as in API Gateway); ignored");
                continue;
            }
            if !matches!(ty.as_str(), "DEFAULT_4XX" | "DEFAULT_5XX") && Kind::from_name(ty).is_none() {
                self.warn(path, format!("gateway response type {ty} is not supported; ignored"));
                continue;
            }
            self.out.line("");
            self.out.from(&path);
            self.out.line(&format!("[gateway_responses.{ty}]"));
            if let Some(s) = r.get("statusCode") {
                match emit::text(s).and_then(|s| s.parse::<u16>().ok()) {
                    Some(code) => self.out.kv("status", &code.to_string()),
                    None => return Err(self.doc.err(&format!("{path}.statusCode"), "not a status code")),
                }
            }
            let mut headers = Vec::new();
            for (k, v) in r.get("responseParameters").and_then(Value::as_object).into_iter().flatten() {
                let at = format!("{path}.responseParameters.{k}");
                let Some(name) = k.strip_prefix("gatewayresponse.header.") else {
                    self.warn(at, "only gatewayresponse.header.NAME parameters are supported; ignored");
                    continue;
                };
                match v.as_str().and_then(|s| s.strip_prefix('\'')).and_then(|s| s.strip_suffix('\'')) {
                    Some(lit) => headers.push((name, lit.to_string())),
                    None => self.warn(at, "only 'literal' header values are supported in gateway responses; ignored"),
                }
            }
            if !headers.is_empty() {
                self.out.kv("headers", &emit::inline_strings(headers));
            }
            let templates = r.get("responseTemplates").and_then(Value::as_object);
            let body =
                templates.and_then(|t| t.get("application/json").or_else(|| t.values().next())).and_then(Value::as_str);
            if let Some(body) = body {
                match gw::compile_template(body) {
                    Ok(_) => self.out.kv("body", &emit::string(body)),
                    Err(m) => self.warn(
                        format!("{path}.responseTemplates"),
                        format!("template not supported ({m}); the default body is used"),
                    ),
                }
            }
        }
        Ok(())
    }

    /// The base path from `basePath` (Swagger) or the first server's URL (OpenAPI 3), as
    /// the import mode wants it: "" or "/a/b".
    fn base_path(&self) -> String {
        let raw = if self.doc.swagger() {
            self.root().get("basePath").and_then(Value::as_str).unwrap_or("").to_string()
        } else {
            let server = self.root().pointer("/servers/0");
            let url = server.and_then(|s| s.get("url")).and_then(Value::as_str).unwrap_or("");
            let mut url = url.to_string();
            for (name, var) in server.and_then(|s| s.get("variables")).and_then(Value::as_object).into_iter().flatten()
            {
                let value = var.get("default").and_then(emit::text).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), &value);
            }
            match url.find("://") {
                Some(i) => url[i + 3..].find('/').map_or(String::new(), |j| url[i + 3 + j..].to_string()),
                None => url,
            }
        };
        let segs: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        let keep = match self.env.base_path {
            BasePath::Ignore => &segs[..0],
            BasePath::Prepend => &segs[..],
            BasePath::Split => &segs[segs.len().min(1)..],
        };
        keep.iter().map(|s| format!("/{s}")).collect()
    }

    fn operation(
        &mut self,
        route_path: &str,
        method: &str,
        item: &Value,
        op: &Value,
        op_path: &str,
    ) -> Result<(), ConfigError> {
        let params = template_params(route_path);
        let (mut unsupported, api_key) = match self.security(op, op_path)? {
            Ok(required) => (None, required),
            Err(u) => (Some(u), false),
        };
        if let Some(auth) = op.get("x-amazon-apigateway-auth") {
            let ty = auth.get("type").and_then(Value::as_str).unwrap_or("").to_ascii_uppercase();
            if ty != "NONE" && unsupported.is_none() {
                unsupported = Some(Unsupported::new(
                    format!("{op_path}.x-amazon-apigateway-auth"),
                    format!("{} authorization is not supported", if ty == "AWS_IAM" { "IAM" } else { &ty }),
                ));
            }
        }
        let integ = self.integration(op, op_path, method, &params)?;
        let integ = match (unsupported, integ) {
            (Some(u), _) | (None, Err(u)) => {
                self.emit_unsupported(route_path, method, op_path, u);
                return Ok(());
            }
            (None, Ok(i)) => i,
        };
        let validate = self.validation(item, op, op_path, &params)?;
        self.emit_route(route_path, method, op_path, api_key, validate, integ);
        Ok(())
    }

    fn emit_route(
        &mut self,
        route_path: &str,
        method: &str,
        op_path: &str,
        api_key: bool,
        validate: Option<String>,
        i: Integ,
    ) {
        let o = &mut self.out;
        o.line("");
        o.from(op_path);
        o.line(&format!("# {op_path}"));
        o.line("[[routes]]");
        o.kv("path", &emit::basic(route_path));
        o.kv("method", &emit::basic(method));
        if api_key {
            o.kv("api_key_required", "true");
        }
        if let Some(v) = validate {
            o.kv("validate", &v);
        }
        if let Some(c) = &self.cors {
            o.kv("cors", c);
        }
        if let Some(k) = &i.cache_key {
            o.kv("cache", &format!("{{ key = {} }}", emit::string_list(k)));
        }
        for c in &i.comments {
            o.line(&format!("# {c}"));
        }
        o.from(&i.path);
        o.line("[routes.integration]");
        for (k, v, at) in &i.fields {
            o.from(at);
            o.kv(k, v);
        }
        if !i.request_templates.is_empty() {
            o.from(&format!("{}.requestTemplates", i.path));
            o.line("[routes.integration.request_templates]");
            for (k, v) in &i.request_templates {
                o.kv(k, &emit::string(v));
            }
        }
        for r in &i.responses {
            o.from(&r.path);
            o.line("[[routes.integration.responses]]");
            if let Some(p) = &r.pattern {
                o.kv("selection_pattern", &emit::string(p));
            }
            o.kv("status", &r.status.to_string());
            if !r.parameters.is_empty() {
                o.from(&format!("{}.responseParameters", r.path));
                o.line("[routes.integration.responses.response_parameters]");
                for (k, v) in &r.parameters {
                    o.kv(k, &emit::string(v));
                }
            }
            if !r.templates.is_empty() {
                o.from(&format!("{}.responseTemplates", r.path));
                o.line("[routes.integration.responses.response_templates]");
                for (k, v) in &r.templates {
                    o.kv(k, &emit::string(v));
                }
            }
        }
    }

    /// A route for an operation ringway cannot serve: it answers 500
    /// `{"message": "Internal server error"}` and a warning names the JSON path.
    ///
    /// It is a templated mock whose request template renders no `statusCode`, so every
    /// request ends in the gateway's own API_CONFIGURATION_ERROR response: the same status,
    /// body and `x-amzn-ErrorType: ApiConfigurationException` that API Gateway sends for a
    /// method it cannot run, and the document's DEFAULT_5XX customization (CORS headers,
    /// say) applies to it as it would there. A plain `status = 500` mock would bypass
    /// gateway responses. The template is a VTL comment holding the reason.
    fn emit_unsupported(&mut self, route_path: &str, method: &str, op_path: &str, u: Unsupported) {
        let reason = format!("{}: {}", u.path, u.message);
        self.warn(
            u.path.clone(),
            format!("{}; the route answers 500 {{\"message\": \"Internal server error\"}}", u.message),
        );
        let o = &mut self.out;
        o.line("");
        o.from(op_path);
        o.line(&format!("# {op_path}: not supported, answers 500 (API_CONFIGURATION_ERROR)"));
        o.line(&format!("# {}", reason.replace('\n', " ")));
        o.line("[[routes]]");
        o.kv("path", &emit::basic(route_path));
        o.kv("method", &emit::basic(method));
        o.kv(
            "integration",
            &format!(
                "{{ type = \"mock\", request_templates = {{ \"$default\" = {} }}, responses = [{{ status = 500 }}] }}",
                emit::basic(&format!("## not supported: {}", reason.replace(['\n', '\r'], " ")))
            ),
        );
    }
}

/// `/prod` + `/pets` (a base of "" leaves the path alone; "/" under a base is the base).
fn join(base: &str, p: &str) -> String {
    if base.is_empty() {
        p.to_string()
    } else if p == "/" {
        base.to_string()
    } else {
        format!("{base}{p}")
    }
}

/// Names of `{param}` and `{greedy+}` segments.
pub(super) fn template_params(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|s| s.trim_end_matches('+').to_string())
        .collect()
}
