//! Compiles `[functions.NAME]` (invoke endpoints, registered as upstreams) and `[api]`.

use super::tls::upstream_tls;
use super::upstreams::{parse_target, upstream_index};
use super::*;

pub(super) fn compile_api(cx: &Ctx, a: &RawApi) -> Result<Api, ConfigError> {
    let text = |v: &Option<Spanned<String>>, default: &str, what: &str| -> Result<String, ConfigError> {
        match v {
            None => Ok(default.to_string()),
            Some(s)
                if !s.get_ref().is_empty() && s.get_ref().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Ok(s.get_ref().clone())
            }
            Some(s) => Err(cx.err(s.span(), format!("{what} must be letters, digits or '-'"))),
        }
    };
    let mut binary_media_types = Vec::new();
    for t in &a.binary_media_types {
        let v = t.get_ref();
        if !v.contains('/') || v.bytes().any(|b| b <= b' ' || b == b',' || b == b';') {
            return Err(cx.err(t.span(), format!("'{v}' is not a media type (type/subtype, '*' allowed)")));
        }
        binary_media_types.push(v.to_ascii_lowercase());
    }
    let region = match &a.region {
        None => "us-east-1".to_string(),
        Some(r) if !r.get_ref().is_empty() && r.get_ref().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            r.get_ref().clone()
        }
        Some(r) => return Err(cx.err(r.span(), "region must be letters, digits or '-'")),
    };
    let api_key_from_authorizer = match a.api_key_source.as_ref().map(|s| (s, s.get_ref().as_str())) {
        None | Some((_, "header")) => false,
        Some((_, "authorizer")) => true,
        Some((s, _)) => return Err(cx.err(s.span(), "api_key_source must be \"header\" or \"authorizer\"")),
    };
    Ok(Api {
        region,
        api_key_from_authorizer,
        id: text(&a.id, "ringway", "api id")?,
        account_id: text(&a.account_id, "000000000000", "account_id")?,
        binary_media_types,
    })
}

/// `[functions.NAME]`: each endpoint becomes an upstream (pooled like any other).
pub(super) fn compile_functions(
    cx: &Ctx,
    raw: &BTreeMap<Spanned<String>, Spanned<RawFunction>>,
    upstreams: &mut Vec<Upstream>,
) -> Result<Vec<Function>, ConfigError> {
    let mut out = Vec::new();
    for (name, f) in raw {
        let fr = f.get_ref();
        if fr.endpoints.is_empty() {
            return Err(cx.err(f.span(), format!("function '{}' needs at least one endpoint", name.get_ref())));
        }
        let https = fr.endpoints.iter().any(|e| e.get_ref().starts_with("https://"));
        let tls = upstream_tls(cx, fr.tls.as_ref(), https)?;
        let mut endpoints = Vec::new();
        for e in &fr.endpoints {
            let a = parse_target(e.get_ref()).map_err(|m| cx.err(e.span(), m))?;
            let idx = upstream_index(&a, None, &tls, upstreams).map_err(|m| cx.err(e.span(), m))?;
            endpoints.push(idx);
        }
        let invoke_path = match &fr.invoke_path {
            None => "/2015-03-31/functions/function/invocations".to_string(),
            Some(p) if p.get_ref().starts_with('/') && p.get_ref().bytes().all(|b| b > b' ' && b < 0x7f) => {
                p.get_ref().clone()
            }
            Some(p) => return Err(cx.err(p.span(), "invoke_path must be an absolute path")),
        };
        let max_queue = cx.range(&fr.max_queue, 100, 0, 1_000_000, "max_queue")? as usize;
        let busy = endpoints.iter().map(|_| std::sync::atomic::AtomicBool::new(false)).collect();
        out.push(Function {
            name: name.get_ref().clone(),
            endpoints,
            invoke_path: invoke_path.into_bytes().into(),
            max_queue,
            busy,
            waiting: Default::default(),
            next: Default::default(),
        });
    }
    Ok(out)
}
