//! Request validation, as API Gateway's request validators: required parameters first, then
//! the body against a JSON Schema model picked by Content-Type. Pure: reads the request parts
//! it is handed and the compiled models; the connection turns failures into 400s.

use super::json_schema::Schema;
use crate::http::percent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Loc {
    Header,
    Path,
    Querystring,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Required {
    pub loc: Loc,
    pub name: String,
    /// For `Loc::Path`: index of the route's path parameter.
    pub param: u8,
}

/// A route's validation. `required` is sorted as API Gateway lists missing names: by the
/// full key (`method.request.header.*` < `.path.*` < `.querystring.*`).
#[derive(Default)]
pub struct Validation {
    pub required: Vec<Required>,
    /// Lowercase media type -> model index; `$default` is `default_model`.
    pub models: Vec<(String, u32)>,
    pub default_model: Option<u32>,
}

impl Validation {
    pub fn validates_body(&self) -> bool {
        !self.models.is_empty() || self.default_model.is_some()
    }

    /// The model for a request's Content-Type (none: `application/json`).
    pub fn model_for(&self, content_type: Option<&[u8]>) -> Option<u32> {
        let ct = content_type.unwrap_or(b"application/json");
        let media = ct.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        self.models.iter().find(|(t, _)| t.as_bytes().eq_ignore_ascii_case(media)).map(|m| m.1).or(self.default_model)
    }
}

/// Writes API Gateway's message when a required parameter is missing or blank (`?q=` counts
/// as missing): `Missing required request parameters: [a, b]`. True when one is.
pub fn missing_parameters<'a>(
    v: &Validation,
    query: &[u8],
    header: impl Fn(&[u8]) -> Option<&'a [u8]>,
    path_param: impl Fn(u8) -> &'a [u8],
    out: &mut String,
) -> bool {
    let mut any = false;
    for r in &v.required {
        let present = match r.loc {
            Loc::Header => header(r.name.as_bytes()).is_some_and(|v| !v.trim_ascii().is_empty()),
            Loc::Path => !path_param(r.param).is_empty(),
            Loc::Querystring => query_has(query, r.name.as_bytes()),
        };
        if !present {
            out.push_str(if any { ", " } else { "Missing required request parameters: [" });
            out.push_str(&r.name);
            any = true;
        }
    }
    if any {
        out.push(']');
    }
    any
}

/// A query parameter named `name` with a non-blank value (names and values percent-decoded).
fn query_has(query: &[u8], name: &[u8]) -> bool {
    query.split(|&b| b == b'&').any(|pair| {
        let (k, v) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let matches = if k.contains(&b'%') || k.contains(&b'+') { percent::decode(k, true) == name } else { k == name };
        matches && !percent::decode(v, true).trim_ascii().is_empty()
    })
}

/// Checks a body against a model: an empty body is validated as `{}`, a body that is not
/// JSON fails. Err: the detail for `$context.error.validationErrorString`.
pub fn check_body(model: &Schema, body: &[u8]) -> Result<(), String> {
    let value: serde_json::Value = if body.trim_ascii().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?
    };
    model.validate(&value)
}

/// Parses `header.x`, `path.x`, `querystring.x` or API Gateway's `method.request.{...}.x`.
pub fn parse_required(s: &str) -> Result<(Loc, String), String> {
    let short = s.strip_prefix("method.request.").unwrap_or(s);
    let (loc, name) = short.split_once('.').ok_or_else(|| bad(s))?;
    let loc = match loc {
        "header" => Loc::Header,
        "path" => Loc::Path,
        "querystring" | "query" => Loc::Querystring,
        _ => return Err(bad(s)),
    };
    if name.is_empty() || name.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(bad(s));
    }
    Ok((loc, name.to_string()))
}

fn bad(s: &str) -> String {
    format!("'{s}' is not a request parameter (write header.NAME, path.NAME or querystring.NAME)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validation(req: &[&str]) -> Validation {
        let mut required: Vec<Required> = req
            .iter()
            .map(|s| {
                let (loc, name) = parse_required(s).unwrap();
                Required { loc, name, param: 0 }
            })
            .collect();
        required.sort_by(|a, b| (a.loc, &a.name).cmp(&(b.loc, &b.name)));
        Validation { required, ..Default::default() }
    }

    fn missing(v: &Validation, query: &str, headers: &[(&str, &str)], path: &str) -> Option<String> {
        let owned: Vec<(Vec<u8>, Vec<u8>)> =
            headers.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        let mut out = String::new();
        let header = |n: &[u8]| owned.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_slice());
        missing_parameters(v, query.as_bytes(), header, |_| path.as_bytes(), &mut out).then_some(out)
    }

    #[test]
    fn lists_missing_names_in_api_gateways_order() {
        let v = validation(&["querystring.qs1", "method.request.header.x-header-param", "querystring.issuer"]);
        assert_eq!(
            missing(&v, "", &[], "").as_deref(),
            Some("Missing required request parameters: [x-header-param, issuer, qs1]")
        );
        assert_eq!(
            missing(&v, "issuer=me&qs1=1", &[], "").as_deref(),
            Some("Missing required request parameters: [x-header-param]")
        );
        assert_eq!(missing(&v, "issuer=me&qs1=1", &[("X-Header-Param", "v")], ""), None);
    }

    #[test]
    fn blank_values_count_as_missing() {
        let v = validation(&["querystring.q", "header.h"]);
        assert!(missing(&v, "q=", &[("h", "x")], "").is_some());
        assert!(missing(&v, "q=%20", &[("h", "x")], "").is_some());
        assert!(missing(&v, "q", &[("h", "x")], "").is_some());
        assert!(missing(&v, "q=1", &[("h", "  ")], "").is_some());
        assert!(missing(&v, "a=1&q=1", &[("h", "x")], "").is_none());
        assert!(missing(&v, "%71=1", &[("h", "x")], "").is_none(), "percent-encoded name");
    }

    #[test]
    fn path_parameters() {
        let v = validation(&["path.id"]);
        assert!(missing(&v, "", &[], "7").is_none());
        assert!(missing(&v, "", &[], "").is_some());
    }

    #[test]
    fn parses_parameter_names() {
        assert_eq!(parse_required("method.request.path.petId").unwrap(), (Loc::Path, "petId".into()));
        assert_eq!(parse_required("query.q").unwrap(), (Loc::Querystring, "q".into()));
        assert!(parse_required("body.x").is_err());
        assert!(parse_required("header.").is_err());
        assert!(parse_required("nodot").is_err());
    }

    #[test]
    fn model_by_content_type() {
        let v =
            Validation { models: vec![("application/json".into(), 0)], default_model: Some(1), ..Default::default() };
        assert_eq!(v.model_for(None), Some(0));
        assert_eq!(v.model_for(Some(b"Application/JSON; charset=utf-8")), Some(0));
        assert_eq!(v.model_for(Some(b"text/plain")), Some(1));
        let only_json = Validation { models: vec![("application/json".into(), 0)], ..Default::default() };
        assert_eq!(only_json.model_for(Some(b"text/plain")), None);
    }

    #[test]
    fn bodies() {
        let schema = Schema::compile(&serde_json::json!({"type": "object", "required": ["name"]})).unwrap();
        assert!(check_body(&schema, br#"{"name":"rex"}"#).is_ok());
        assert!(check_body(&schema, br#"{"age":1}"#).is_err());
        assert!(check_body(&schema, b"not json").unwrap_err().contains("not valid JSON"));
        let empty = Schema::compile(&serde_json::json!({"type": "object"})).unwrap();
        assert!(check_body(&empty, b"").is_ok(), "empty body validates as {{}}");
    }
}
