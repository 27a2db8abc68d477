//! Compiles non-proxy integrations (`type = "http"`, and `type = "mock"` with templates):
//! the backend URI, parameter mappings, templates (errors at their line and column in the
//! file), passthrough behaviour and integration responses.

use super::tls::upstream_tls;
use super::{ms, target_for, Backends, Ctx};
use crate::config::error::ConfigError;
use crate::config::plan::{Integration, Stage};
use crate::config::raw::RawIntegration;
use crate::http::method::Method;
use crate::integration::custom::{Backend, Custom, IntegrationResponse, Passthrough};
use crate::integration::mapping::{parse_dest, parse_source, Dest};
use crate::integration::template::{self, Template};
use crate::integration::uri;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

pub(super) fn compile_custom(
    cx: &Ctx,
    raw: &Spanned<RawIntegration>,
    params: &[String],
    stage: &Stage,
    staged: bool,
    b: &mut Backends,
    mock: bool,
) -> Result<(Integration, String), ConfigError> {
    let i = raw.get_ref();
    let kind = if mock { "mock" } else { "http" };
    let in_stage = |m: String| if staged { format!("{m} (in stage '{}')", stage.name) } else { m };
    let mut request_parameters = Vec::new();
    for (k, v) in i.request_parameters.iter().flatten() {
        let dest = parse_dest(k.get_ref()).map_err(|m| cx.err(k.span(), m))?;
        if let Dest::Header(n) = &dest {
            check_header_name(cx, k.span(), n)?;
        }
        let src = parse_source(v.get_ref(), params, &stage.variables, false).map_err(|m| cx.err(v.span(), m))?;
        request_parameters.push((dest, src));
    }
    let request_templates = templates(cx, i.request_templates.as_ref())?;
    let passthrough = match i.passthrough_behavior.as_ref().map(|p| (p.get_ref().to_ascii_lowercase(), p.span())) {
        None => Passthrough::WhenNoMatch,
        Some((p, _)) if p == "when_no_match" => Passthrough::WhenNoMatch,
        Some((p, _)) if p == "when_no_templates" => Passthrough::WhenNoTemplates,
        Some((p, _)) if p == "never" => Passthrough::Never,
        Some((_, span)) => {
            return Err(cx.err(span, "passthrough_behavior must be when_no_match, when_no_templates or never"))
        }
    };
    let raw_responses = i.responses.as_ref().filter(|r| !r.is_empty()).ok_or_else(|| {
        cx.err(raw.span(), format!("a {kind} integration needs responses (at least a default: {{ status = 200 }})"))
    })?;
    let mut responses = Vec::new();
    for r in raw_responses {
        let rr = r.get_ref();
        let pattern = match &rr.selection_pattern {
            None => None,
            Some(p) if p.get_ref() == "default" || p.get_ref().is_empty() => None,
            Some(p) => Some(
                regex_lite::Regex::new(&format!("^(?:{})$", p.get_ref()))
                    .map_err(|e| cx.err(p.span(), format!("selection_pattern: {e}")))?,
            ),
        };
        let status = match *rr.status.get_ref() {
            s @ 100..=599 => s as u16,
            _ => return Err(cx.err(rr.status.span(), "status must be between 100 and 599")),
        };
        let mut parameters = Vec::new();
        for (k, v) in &rr.response_parameters {
            let name = k
                .get_ref()
                .strip_prefix("method.response.header.")
                .ok_or_else(|| cx.err(k.span(), format!("'{}' is not method.response.header.NAME", k.get_ref())))?;
            check_header_name(cx, k.span(), name)?;
            let src = parse_source(v.get_ref(), params, &stage.variables, true).map_err(|m| cx.err(v.span(), m))?;
            parameters.push((name.to_string(), src));
        }
        let templates = templates(cx, Some(&rr.response_templates))?;
        responses.push(IntegrationResponse { pattern, status, parameters, templates });
    }
    let timeout = cx.range(&i.timeout_ms, 29_000, 50, 29_000, "timeout_ms")?;
    let backend = if mock {
        if request_templates.is_empty() {
            return Err(
                cx.err(raw.span(), "a mock with responses needs request_templates (e.g. '{\"statusCode\": 200}')")
            );
        }
        None
    } else {
        let u = i.uri.as_ref().ok_or_else(|| cx.err(raw.span(), "an http integration needs a uri"))?;
        let resolved =
            uri::substitute_stage_variables(u.get_ref(), &stage.variables).map_err(|m| cx.err(u.span(), m))?;
        let vars = placeholders(&resolved);
        let t = uri::parse(&resolved, &vars).map_err(|m| cx.err(u.span(), in_stage(m)))?;
        let mut route_param = Vec::new();
        for v in &vars {
            let mapped = request_parameters.iter().any(|(d, _)| *d == Dest::Path(v.clone()));
            let p = params.iter().position(|p| p == v);
            if !mapped && p.is_none() {
                return Err(cx.err(
                    u.span(),
                    format!("uri placeholder {{{v}}} is neither mapped (integration.request.path.{v}) nor a path parameter of the route"),
                ));
            }
            route_param.push(p);
        }
        let tls = upstream_tls(cx, i.tls.as_ref(), t.authority.tls)?;
        let target =
            target_for(&t.authority, &tls, b.groups, b.upstreams).map_err(|m| cx.err(u.span(), in_stage(m)))?;
        let method = match &i.http_method {
            None => None,
            Some(m) if m.get_ref().eq_ignore_ascii_case("ANY") => None,
            Some(m) => Some(
                Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes())
                    .ok_or_else(|| cx.err(m.span(), format!("unknown http_method '{}'", m.get_ref())))?,
            ),
        };
        Some(Backend { target, method, path: t.path, query: t.query, vars, route_param })
    };
    let text = match &i.uri {
        Some(u) if !mock => format!("http {} ({} responses, timeout {timeout} ms)", u.get_ref(), responses.len()),
        _ => format!("mock with templates ({} responses)", responses.len()),
    };
    let custom =
        Custom { backend, request_parameters, request_templates, passthrough, responses, timeout: ms(timeout) };
    Ok((Integration::Custom(Box::new(custom)), text))
}

/// `{name}` placeholders of a URI, in order, each once.
fn placeholders(uri: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = uri;
    while let Some(i) = rest.find('{') {
        let Some(j) = rest[i..].find('}') else { break };
        let name = rest[i + 1..i + j].trim_end_matches('+').to_string();
        if !out.contains(&name) {
            out.push(name);
        }
        rest = &rest[i + j + 1..];
    }
    out
}

fn check_header_name(cx: &Ctx, span: Range<usize>, n: &str) -> Result<(), ConfigError> {
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err(cx.err(span, format!("'{n}' is not a valid header name")));
    }
    let lower = n.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "content-length" | "transfer-encoding" | "connection" | "date" | "x-amzn-requestid" | "host"
    ) {
        return Err(cx.err(span, format!("header '{n}' is set by ringway and cannot be mapped")));
    }
    Ok(())
}

/// Templates keyed by media type (or `$default`), compiled; errors point into the file.
fn templates(
    cx: &Ctx,
    raw: Option<&BTreeMap<Spanned<String>, Spanned<String>>>,
) -> Result<Vec<(String, Template)>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in raw.into_iter().flatten() {
        let media = k.get_ref().to_ascii_lowercase();
        if media != "$default" && (!media.contains('/') || media.contains(';') || media.contains(' ')) {
            return Err(cx.err(k.span(), format!("'{}' is not a media type (or \"$default\")", k.get_ref())));
        }
        if v.get_ref().len() > 300 * 1024 {
            return Err(cx.err(v.span(), "templates are limited to 300 KiB"));
        }
        let t = template::compile(v.get_ref()).map_err(|e| template_error(cx, v.span(), &e))?;
        out.push((media, t));
    }
    Ok(out)
}

/// Points at the template error's own line and column when the template is a TOML literal
/// string (its text is the file's text); otherwise at the string, naming the template's
/// line and column.
fn template_error(cx: &Ctx, span: Range<usize>, e: &template::CompileError) -> ConfigError {
    let raw = &cx.src[span.clone()];
    let start = if let Some(rest) = raw.strip_prefix("'''") {
        let skip = if rest.starts_with("\r\n") { 2 } else { usize::from(rest.starts_with('\n')) };
        Some(span.start + 3 + skip)
    } else if raw.starts_with('\'') {
        Some(span.start + 1)
    } else {
        None
    };
    match start {
        Some(s) => {
            crate::config::error::ConfigError::at(cx.file, cx.src, s + e.offset, format!("template: {}", e.message))
        }
        None => cx.err(span, format!("template {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn finds_placeholders_once() {
        assert_eq!(placeholders("http://h/a/{id}/{proxy+}?x={id}&y={q}"), ["id", "proxy", "q"]);
        assert!(placeholders("http://h/").is_empty());
    }
}
