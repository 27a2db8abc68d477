//! Compiles `[models]` (JSON Schema, draft 4) and each route's `validate` table.

use super::Ctx;
use crate::config::error::ConfigError;
use crate::config::raw::{RawBodyModels, RawValidate};
use crate::policy::json_schema::Schema;
use crate::policy::validate::{parse_required, Loc, Required, Validation};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use toml::Spanned;

/// Each model is compiled inside a document that holds all of them, so `$ref` may name
/// another model as `#/definitions/NAME`, `#/components/schemas/NAME` or API Gateway's
/// `https://apigateway.amazonaws.com/restapis/ID/models/NAME`.
pub(super) fn compile_models(
    cx: &Ctx,
    raw: &BTreeMap<Spanned<String>, Spanned<Value>>,
) -> Result<(Vec<String>, Vec<Schema>), ConfigError> {
    let mut all = Map::new();
    for (name, m) in raw {
        let mut v = match m.get_ref() {
            Value::String(text) => serde_json::from_str(text)
                .map_err(|e| cx.err(m.span(), format!("model '{}' is not valid JSON: {e}", name.get_ref())))?,
            other => other.clone(),
        };
        rewrite_model_refs(&mut v);
        all.insert(name.get_ref().clone(), v);
    }
    let defs = Value::Object(all);
    let mut names = Vec::new();
    let mut schemas = Vec::new();
    for (name, m) in raw {
        let n = name.get_ref();
        let doc = json!({
            "$ref": format!("#/definitions/{}", n.replace('~', "~0").replace('/', "~1")),
            "definitions": defs,
            "components": { "schemas": defs },
        });
        let schema = Schema::compile(&doc).map_err(|e| cx.err(m.span(), format!("model '{n}': {e}")))?;
        names.push(n.clone());
        schemas.push(schema);
    }
    Ok((names, schemas))
}

/// API Gateway model URLs become local references.
fn rewrite_model_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if k == "$ref" {
                    if let Value::String(s) = x {
                        if let Some(i) = s.find("/models/").filter(|_| s.starts_with("https://apigateway.")) {
                            *s = format!("#/definitions/{}", &s[i + "/models/".len()..]);
                        }
                    }
                } else {
                    rewrite_model_refs(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_model_refs),
        _ => {}
    }
}

pub(super) fn compile_validation(
    cx: &Ctx,
    raw: &Spanned<RawValidate>,
    params: &[String],
    model_names: &[String],
) -> Result<Validation, ConfigError> {
    let r = raw.get_ref();
    let mut out = Validation::default();
    for s in &r.required {
        let (loc, name) = parse_required(s.get_ref()).map_err(|m| cx.err(s.span(), m))?;
        let param = match loc {
            Loc::Path => params
                .iter()
                .position(|p| *p == name)
                .ok_or_else(|| cx.err(s.span(), format!("the route has no path parameter {{{name}}}")))?
                as u8,
            _ => 0,
        };
        let req = Required { loc, name, param };
        if out.required.contains(&req) {
            return Err(cx.err(s.span(), format!("'{}' is listed twice", s.get_ref())));
        }
        out.required.push(req);
    }
    out.required.sort_by(|a, b| (a.loc, &a.name).cmp(&(b.loc, &b.name)));
    if let Some(b) = &r.body {
        let model = |n: &str| {
            model_names
                .iter()
                .position(|m| m == n)
                .map(|i| i as u32)
                .ok_or_else(|| cx.err(b.span(), format!("unknown model '{n}' (define it under [models])")))
        };
        match b.get_ref() {
            RawBodyModels::One(n) => out.default_model = Some(model(n)?),
            RawBodyModels::ByType(map) => {
                for (ct, n) in map {
                    if ct == "$default" {
                        out.default_model = Some(model(n)?);
                    } else if ct.contains('/') && !ct.contains(';') {
                        out.models.push((ct.to_ascii_lowercase(), model(n)?));
                    } else {
                        return Err(cx.err(b.span(), format!("'{ct}' is not a media type (or \"$default\")")));
                    }
                }
            }
        }
    }
    Ok(out)
}
