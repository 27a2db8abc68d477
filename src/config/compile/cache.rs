//! Compiles `cache = { ... }` tables (stage and route) into each (stage, route)'s policy.

use super::*;

/// Caching for one (stage, route): the route's fields over the stage's, one by one.
/// None when neither enables it, the TTL is 0, or the integration is not a proxy.
pub(super) fn compile_cache(
    cx: &Ctx,
    route_cache: Option<&Spanned<RawCache>>,
    stage_cache: Option<&Spanned<RawCache>>,
    route: &Route,
    stage: &Stage,
    settings: &CacheSettings,
    proxied: bool,
) -> Result<Option<CachePolicy>, ConfigError> {
    if route_cache.is_none() && stage_cache.is_none() {
        return Ok(None);
    }
    let (r, s) = (route_cache.map(|c| c.get_ref()), stage_cache.map(|c| c.get_ref()));
    fn pick<'a, T: 'a>(
        r: Option<&'a RawCache>,
        s: Option<&'a RawCache>,
        f: impl Fn(&'a RawCache) -> Option<T>,
    ) -> Option<T> {
        r.and_then(&f).or_else(|| s.and_then(&f))
    }
    let enabled = pick(r, s, |c| c.enabled).unwrap_or(true);
    let ttl_s = match pick(r, s, |c| c.ttl_s.as_ref()) {
        None => 300,
        Some(t) if *t.get_ref() <= 3600 => *t.get_ref(),
        Some(t) => return Err(cx.err(t.span(), format!("ttl_s must be between 0 and 3600, got {}", t.get_ref()))),
    };
    if !enabled || ttl_s == 0 {
        return Ok(None);
    }
    if !proxied {
        return match route_cache {
            Some(rc) => Err(cx.err(rc.span(), "response caching applies to http_proxy integrations only")),
            None => Ok(None),
        };
    }
    let mut key = Vec::new();
    let (parts, strict) = match (r.and_then(|c| c.key.as_ref()), s.and_then(|c| c.key.as_ref())) {
        (Some(k), _) => (Some(k), true),
        (None, Some(k)) => (Some(k), false),
        (None, None) => (None, false),
    };
    match parts {
        // API Gateway's console default for proxy resources: the path parameters.
        None => {
            for (i, name) in route.params.iter().enumerate() {
                key.push(KeyPart { label: format!("path.{name}").into_bytes().into(), source: Source::Path(i as u16) });
            }
        }
        Some(parts) => {
            if parts.len() > 32 {
                return Err(cx.err(parts[32].span(), "a cache key has at most 32 parts"));
            }
            for p in parts {
                let (label, kind, name) = parse_key_part(p.get_ref()).map_err(|m| cx.err(p.span(), m))?;
                let source = match kind {
                    "path" => match route.params.iter().position(|n| *n == name) {
                        Some(i) => Source::Path(i as u16),
                        None if strict => {
                            return Err(
                                cx.err(p.span(), format!("route {} has no path parameter {{{name}}}", route.path))
                            )
                        }
                        None => continue,
                    },
                    "query" => Source::Query(name.into_bytes().into()),
                    _ => Source::Header(name.into_bytes().into()),
                };
                key.push(KeyPart { label: label.into_bytes().into(), source });
            }
        }
    }
    let mut methods = 0u8;
    match pick(r, s, |c| c.methods.as_ref()) {
        None => methods = 1 << Method::Get as u8,
        Some(list) => {
            for m in list {
                let parsed = Method::from_bytes(m.get_ref().as_bytes())
                    .ok_or_else(|| cx.err(m.span(), format!("unknown method '{}' in cache methods", m.get_ref())))?;
                methods |= 1 << parsed as u8;
            }
        }
    }
    let mut statuses = Vec::new();
    for st in pick(r, s, |c| c.statuses.as_ref()).into_iter().flatten() {
        if !(100..=599).contains(st.get_ref()) {
            return Err(cx.err(st.span(), format!("status must be between 100 and 599, got {}", st.get_ref())));
        }
        statuses.push(*st.get_ref() as u16);
    }
    let invalidation = match pick(r, s, |c| c.invalidation.as_ref()) {
        None => Invalidation::Anyone,
        Some(v) => match v.get_ref().as_str() {
            "anyone" => Invalidation::Anyone,
            "api_key" => Invalidation::ApiKey,
            "deny" => Invalidation::Deny,
            other => {
                return Err(cx.err(
                    v.span(),
                    format!("unknown invalidation '{other}' (use \"anyone\", \"api_key\" or \"deny\")"),
                ))
            }
        },
    };
    let unauthorized = match pick(r, s, |c| c.unauthorized.as_ref()) {
        None => Unauthorized::SucceedWithResponseHeader,
        Some(v) => match v.get_ref().as_str() {
            "FAIL_WITH_403" => Unauthorized::FailWith403,
            "SUCCEED_WITH_RESPONSE_HEADER" => Unauthorized::SucceedWithResponseHeader,
            "SUCCEED_WITHOUT_RESPONSE_HEADER" => Unauthorized::SucceedWithoutResponseHeader,
            other => return Err(cx.err(
                v.span(),
                format!("unknown strategy '{other}' (use FAIL_WITH_403, SUCCEED_WITH_RESPONSE_HEADER or SUCCEED_WITHOUT_RESPONSE_HEADER)"),
            )),
        },
    };
    let lock_timeout_ms = match pick(r, s, |c| c.lock_timeout_ms.as_ref()) {
        None => 5000,
        Some(t) if *t.get_ref() <= 600_000 => *t.get_ref(),
        Some(t) => {
            return Err(cx.err(t.span(), format!("lock_timeout_ms must be between 0 and 600000, got {}", t.get_ref())))
        }
    };
    Ok(Some(CachePolicy {
        ttl_s,
        key,
        methods,
        statuses,
        honor_upstream: pick(r, s, |c| c.honor_upstream_cache_control).unwrap_or(true),
        invalidation,
        unauthorized,
        x_cache: pick(r, s, |c| c.x_cache_header).unwrap_or(false),
        lock_timeout: ms(lock_timeout_ms),
        max_entry_bytes: settings.max_entry_bytes,
        stage_prefix: format!("{} ", stage.name).into_bytes().into(),
        resource: format!(" {}", route.path).into_bytes().into(),
    }))
}
