//! The OpenAPI / Swagger document as read: its text, its format and its value (a
//! `serde_json::Value` in document order), plus a way back from a JSON path to the
//! document's line and column.

use crate::config::error::ConfigError;
use serde_json::Value;

pub struct Document {
    /// The file as named on the command line (or in the overlay).
    pub file: String,
    pub src: String,
    pub value: Value,
    /// "2.0" for Swagger, "3.x.y" for OpenAPI.
    pub version: String,
}

impl Document {
    pub fn swagger(&self) -> bool {
        self.version.starts_with('2')
    }

    /// An error at the document position of `path` (`paths./pets.get.x-amazon-apigateway-integration`).
    pub fn err(&self, path: &str, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::at(&self.file, &self.src, locate(&self.src, path), format!("{path}: {message}"))
    }

    /// 1-based line and column of `path` in the document.
    pub fn position(&self, path: &str) -> (usize, usize) {
        let e = ConfigError::at(&self.file, &self.src, locate(&self.src, path), "");
        (e.line, e.col)
    }

    /// Follows a local `$ref` (`#/components/schemas/X`, `#/definitions/X`, ...).
    pub fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..16 {
            match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(p) => match self.value.pointer(p) {
                    Some(t) => v = t,
                    None => return v,
                },
                None => return v,
            }
        }
        v
    }
}

/// True when the file is to be read as an OpenAPI document rather than a TOML config: by
/// extension, else by content (a JSON object, or an `openapi:` / `swagger:` key).
pub fn looks_like_openapi(path: &str, src: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") || lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return true;
    }
    if lower.ends_with(".toml") {
        return false;
    }
    for line in src.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with("---") {
            continue;
        }
        return t.starts_with('{')
            || ["openapi", "swagger", "\"openapi\"", "\"swagger\"", "'openapi'", "'swagger'"]
                .iter()
                .any(|k| t.strip_prefix(k).is_some_and(|r| r.trim_start().starts_with(':')));
    }
    false
}

/// Parses JSON (a document starting with `{`) or YAML; errors carry the document's
/// line and column.
pub fn parse(file: &str, src: String) -> Result<Document, ConfigError> {
    let json = src.trim_start().starts_with('{');
    let value: Value = if json {
        serde_json::from_str(&src).map_err(|e| ConfigError {
            file: file.to_string(),
            line: e.line().max(1),
            col: e.column().max(1),
            message: format!("invalid JSON: {e}"),
        })?
    } else {
        let mut y: serde_norway::Value = serde_norway::from_str(&src).map_err(|e| {
            let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            ConfigError { file: file.to_string(), line, col, message: format!("invalid YAML: {e}") }
        })?;
        y.apply_merge().map_err(|e| ConfigError::at(file, &src, 0, format!("invalid YAML: {e}")))?;
        yaml_to_json(y)
    };
    let doc = Document { file: file.to_string(), src, value, version: String::new() };
    if !doc.value.is_object() {
        return Err(ConfigError::at(file, &doc.src, 0, "an OpenAPI document is a mapping at the top level"));
    }
    let version = match (doc.value.get("openapi"), doc.value.get("swagger")) {
        (Some(v), _) => scalar_text(v),
        (None, Some(v)) => scalar_text(v),
        (None, None) => {
            return Err(ConfigError::at(
                file,
                &doc.src,
                0,
                "not an OpenAPI document: it has neither an 'openapi' (3.0) nor a 'swagger' (2.0) field",
            ))
        }
    };
    let key = if doc.value.get("openapi").is_some() { "openapi" } else { "swagger" };
    if !(version.starts_with("3.0") || version == "2.0" || version.starts_with("3.1")) {
        return Err(doc.err(key, format!("unsupported version '{version}' (supported: OpenAPI 3.0, Swagger 2.0)")));
    }
    if !doc.value.get("paths").is_some_and(Value::is_object) {
        return Err(ConfigError::at(file, &doc.src, 0, "the document has no 'paths' mapping"));
    }
    Ok(Document { version, ..doc })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// YAML mapping keys that are not strings (`200:` in `responses`) become their text.
fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    Y::Null => "null".to_string(),
                    other => serde_norway::to_string(&other).unwrap_or_default().trim().to_string(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}

/// Splits `paths./pets.get.x-amazon-apigateway-integration` into keys. A key of `paths`
/// (which may contain dots) runs up to the first `.` followed by an operation or an
/// extension.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if rest.starts_with('/') {
            // A path key: up to ".<operation or extension>" or the end.
            const FIELDS: [&str; 12] = [
                "get",
                "put",
                "post",
                "delete",
                "patch",
                "head",
                "options",
                "trace",
                "parameters",
                "summary",
                "description",
                "servers",
            ];
            let end = rest
                .match_indices('.')
                .map(|(i, _)| i)
                .find(|&i| {
                    let word = rest[i + 1..].split('.').next().unwrap_or("");
                    FIELDS.contains(&word) || word.starts_with("x-")
                })
                .unwrap_or(rest.len());
            out.push(&rest[..end]);
            rest = rest.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let seg = &rest[..end];
            let seg = seg.split('[').next().unwrap_or(seg);
            out.push(seg);
            rest = rest.get(end + 1..).unwrap_or("");
        }
    }
    out
}

/// Byte offset of the key named by the last segment of `path`, found by looking for each
/// key in turn (as a JSON or YAML mapping key) after the previous one.
pub fn locate(src: &str, path: &str) -> usize {
    let mut pos = 0;
    for seg in segments(path) {
        if seg.is_empty() {
            continue;
        }
        match find_key(src, pos, seg) {
            Some(p) => pos = p,
            None => break,
        }
    }
    pos
}

fn find_key(src: &str, from: usize, key: &str) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut consider = |p: usize| {
        if best.is_none_or(|b| p < b) {
            best = Some(p);
        }
    };
    for quote in ['"', '\''] {
        let needle = format!("{quote}{key}{quote}");
        let mut at = from;
        while let Some(i) = src[at..].find(&needle) {
            let p = at + i;
            if src[p + needle.len()..].trim_start_matches([' ', '\t']).starts_with(':') {
                consider(p);
                break;
            }
            at = p + needle.len();
        }
    }
    let needle = format!("{key}:");
    let mut at = from;
    while let Some(i) = src[at..].find(&needle) {
        let p = at + i;
        let before = src[..p].trim_end_matches([' ', '\t']);
        let after = &src[p + needle.len()..];
        let key_start = before.is_empty() || before.ends_with(['\n', '{', ',', '-']);
        if key_start && (after.is_empty() || after.starts_with([' ', '\t', '\n', '\r'])) {
            consider(p);
            break;
        }
        at = p + needle.len();
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_in_yaml_and_json() {
        let y =
            "openapi: 3.0.1\npaths:\n  /pets:\n    get:\n      x-amazon-apigateway-integration:\n        type: mock\n";
        let at = locate(y, "paths./pets.get.x-amazon-apigateway-integration");
        assert_eq!(ConfigError::at("f", y, at, "").line, 5);
        let j = "{\n \"paths\": {\n  \"/pets/{id}\": {\n   \"get\": {\"x\": 1}\n  }\n }\n}";
        let at = locate(j, "paths./pets/{id}.get");
        let e = ConfigError::at("f", j, at, "");
        assert_eq!((e.line, e.col), (4, 4));
        assert_eq!(segments("paths./a.b/{c}.get.x[1]"), ["paths", "/a.b/{c}", "get", "x"]);
    }

    #[test]
    fn detects_documents() {
        assert!(looks_like_openapi("a.yaml", ""));
        assert!(looks_like_openapi("api", "# c\nswagger: '2.0'\n"));
        assert!(looks_like_openapi("api", "{\"openapi\": \"3.0.1\"}"));
        assert!(!looks_like_openapi("a", "[server]\n"));
    }

    #[test]
    fn yaml_errors_have_positions_and_int_keys_become_text() {
        let e = parse("a.yaml", "openapi: 3.0.1\npaths:\n  /a: [\n".into()).err().unwrap();
        assert!(e.line >= 3 && e.message.starts_with("invalid YAML"), "{e}");
        let d = parse("a.yaml", "swagger: '2.0'\npaths:\n  /a:\n    get:\n      responses:\n        200: {}\n".into())
            .unwrap();
        assert!(d.value.pointer("/paths/~1a/get/responses/200").is_some());
        assert!(d.swagger());
        let e = parse("a.json", "{\"openapi\": \"3.0.1\",\n \"paths\": {,}}".into()).err().unwrap();
        assert_eq!((e.line, e.message.starts_with("invalid JSON")), (2, true), "{e}");
    }
}
