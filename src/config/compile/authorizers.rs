//! Compiles `authorizer = { ... }` of stages and routes: JWT (issuer, audiences, JWKS or
//! HS256 secret, scopes) and Lambda-style TOKEN / REQUEST (function, identity sources,
//! validation regex, result cache TTL). A route's own authorizer replaces its stage's.

use super::*;
use crate::policy::authorizer::jwks::{self, Key};
use crate::policy::authorizer::jwt::{JwtConfig, KeySource};
use crate::policy::authorizer::lambda::{LambdaAuthorizer, LambdaKind, ResultCache};
use crate::policy::authorizer::{Authorizer, IdentitySource, JwtAuthorizer, NONE};

/// (authorizers, index per (stage, route)).
pub(super) fn compile_authorizers(
    cx: &Ctx,
    raw: &RawConfig,
    n_stages: usize,
    functions: &[Function],
) -> Result<(Vec<Authorizer>, Vec<u32>), ConfigError> {
    let mut out = Vec::new();
    let add = |a: &Spanned<RawAuthorizer>, out: &mut Vec<Authorizer>| -> Result<u32, ConfigError> {
        match compile_one(cx, a, functions)? {
            None => Ok(NONE),
            Some(x) => {
                out.push(x);
                Ok(out.len() as u32 - 1)
            }
        }
    };
    let mut stage_auth = Vec::with_capacity(n_stages);
    match &raw.stages {
        None => stage_auth.push(NONE),
        Some(map) => {
            for st in map.values() {
                stage_auth.push(match &st.authorizer {
                    Some(a) => add(a, &mut out)?,
                    None => NONE,
                });
            }
        }
    }
    let mut route_auth = Vec::with_capacity(raw.routes.len());
    for r in &raw.routes {
        route_auth.push(match &r.authorizer {
            Some(a) => Some(add(a, &mut out)?),
            None => None,
        });
    }
    let mut per_slot = Vec::with_capacity(n_stages * raw.routes.len());
    for s in &stage_auth {
        for r in &route_auth {
            per_slot.push(r.unwrap_or(*s));
        }
    }
    Ok((out, per_slot))
}

fn sources(cx: &Ctx, a: &RawAuthorizer, default: &str) -> Result<Vec<IdentitySource>, ConfigError> {
    let (list, span) = match &a.identity_source {
        None => (vec![default.to_string()], a.kind.span()),
        Some(s) => match s.get_ref() {
            RawIdentitySource::One(t) => (t.split(',').map(str::to_string).collect(), s.span()),
            RawIdentitySource::Many(v) => (v.clone(), s.span()),
        },
    };
    if list.is_empty() {
        return Err(cx.err(span, "identity_source needs at least one source"));
    }
    list.iter().map(|s| IdentitySource::parse(s).map_err(|m| cx.err(span.clone(), m))).collect()
}

fn compile_one(
    cx: &Ctx,
    raw: &Spanned<RawAuthorizer>,
    functions: &[Function],
) -> Result<Option<Authorizer>, ConfigError> {
    let a = raw.get_ref();
    let kind = a.kind.get_ref().as_str();
    let only = |allowed: &[&str]| -> Result<(), ConfigError> {
        let fields: [(&str, Option<Range<usize>>); 14] = [
            ("identity_source", a.identity_source.as_ref().map(|v| v.span())),
            ("issuer", a.issuer.as_ref().map(|v| v.span())),
            ("audience", a.audience.as_ref().map(|_| raw.span())),
            ("jwks", a.jwks.as_ref().map(|v| v.span())),
            ("secret", a.secret.as_ref().map(|v| v.span())),
            ("scopes", a.scopes.as_ref().map(|_| raw.span())),
            ("clock_skew_s", a.clock_skew_s.as_ref().map(|v| v.span())),
            ("jwks_min_refresh_s", a.jwks_min_refresh_s.as_ref().map(|v| v.span())),
            ("jwks_max_refresh_s", a.jwks_max_refresh_s.as_ref().map(|v| v.span())),
            ("function", a.function.as_ref().map(|v| v.span())),
            ("validation_regex", a.validation_regex.as_ref().map(|v| v.span())),
            ("ttl_s", a.ttl_s.as_ref().map(|v| v.span())),
            ("timeout_ms", a.timeout_ms.as_ref().map(|v| v.span())),
            ("cache_max_entries", a.cache_max_entries.as_ref().map(|v| v.span())),
        ];
        for (name, span) in fields {
            if let Some(span) = span {
                if !allowed.contains(&name) {
                    return Err(cx.err(span, format!("'{name}' is not a setting of a {kind} authorizer")));
                }
            }
        }
        Ok(())
    };
    match kind {
        "none" => {
            only(&[])?;
            Ok(None)
        }
        "jwt" => {
            only(&[
                "identity_source",
                "issuer",
                "audience",
                "jwks",
                "secret",
                "scopes",
                "clock_skew_s",
                "jwks_min_refresh_s",
                "jwks_max_refresh_s",
            ])?;
            let src = sources(cx, a, "header.Authorization")?;
            let header = match src.as_slice() {
                [IdentitySource::Header(h)] => h.clone(),
                _ => {
                    let span = a.identity_source.as_ref().map_or(raw.span(), |s| s.span());
                    return Err(cx.err(span, "a jwt authorizer reads one header: identity_source = \"header.NAME\""));
                }
            };
            let issuer = a.issuer.as_ref().ok_or_else(|| cx.err(raw.span(), "a jwt authorizer needs an issuer"))?;
            if issuer.get_ref().is_empty() {
                return Err(cx.err(issuer.span(), "issuer cannot be empty"));
            }
            let audiences: Vec<String> = a.audience.iter().flatten().map(|s| s.get_ref().clone()).collect();
            if audiences.len() > 50 {
                return Err(cx.err(raw.span(), "at most 50 audiences"));
            }
            let scopes: Vec<String> = a.scopes.iter().flatten().map(|s| s.get_ref().clone()).collect();
            if scopes.len() > 10 || scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
                return Err(cx.err(raw.span(), "scopes: at most 10 names without spaces"));
            }
            let skew = cx.range(&a.clock_skew_s, 60, 0, 300, "clock_skew_s")? as i64;
            let min = cx.range(&a.jwks_min_refresh_s, 60, 1, 86_400, "jwks_min_refresh_s")? as i64;
            let max = cx.range(&a.jwks_max_refresh_s, 3600, 1, 7 * 86_400, "jwks_max_refresh_s")? as i64;
            if max < min {
                let span = a.jwks_max_refresh_s.as_ref().map_or(raw.span(), |s| s.span());
                return Err(cx.err(span, "jwks_max_refresh_s must be at least jwks_min_refresh_s"));
            }
            let keys = match (&a.jwks, &a.secret) {
                (Some(j), None) => {
                    let u = j.get_ref();
                    let file = u.strip_prefix("file:").map(|p| p.strip_prefix("//").unwrap_or(p));
                    if file.is_some_and(|p| !p.starts_with('/')) {
                        return Err(cx.err(j.span(), "jwks file: needs an absolute path (file:/etc/ringway/jwks.json)"));
                    }
                    let host = u.strip_prefix("https://").or_else(|| u.strip_prefix("http://"));
                    if file.is_none() && host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                        return Err(cx.err(j.span(), "jwks must be an https://, http:// or file: URL"));
                    }
                    KeySource::Jwks(jwks::slot(u, min, max))
                }
                (None, Some(s)) => {
                    if s.get_ref().len() < 32 {
                        return Err(cx.err(s.span(), "an HS256 secret needs at least 32 bytes"));
                    }
                    KeySource::Secret(Key::hmac(s.get_ref().as_bytes()))
                }
                _ => return Err(cx.err(raw.span(), "a jwt authorizer needs exactly one of jwks and secret")),
            };
            let config = JwtConfig { issuer: issuer.get_ref().clone(), audiences, scopes, skew, keys };
            Ok(Some(Authorizer::Jwt(Box::new(JwtAuthorizer { header: header.into_bytes().into(), config }))))
        }
        "token" | "request" => {
            only(&["identity_source", "function", "validation_regex", "ttl_s", "timeout_ms", "cache_max_entries"])?;
            let lk = if kind == "token" { LambdaKind::Token } else { LambdaKind::Request };
            if lk == LambdaKind::Request && a.identity_source.is_none() {
                return Err(cx.err(raw.span(), "a request authorizer needs identity_source"));
            }
            let src = sources(cx, a, "header.Authorization")?;
            if lk == LambdaKind::Token && !matches!(src.as_slice(), [IdentitySource::Header(_)]) {
                let span = a.identity_source.as_ref().map_or(raw.span(), |s| s.span());
                return Err(cx.err(span, "a token authorizer reads one header: identity_source = \"header.NAME\""));
            }
            let f = a
                .function
                .as_ref()
                .ok_or_else(|| cx.err(raw.span(), format!("a {kind} authorizer needs a function")))?;
            let function = functions.iter().position(|x| x.name == *f.get_ref()).ok_or_else(|| {
                cx.err(f.span(), format!("unknown function '{}' (define it under [functions.NAME])", f.get_ref()))
            })?;
            let validation = match &a.validation_regex {
                None => None,
                Some(r) if lk == LambdaKind::Request => {
                    return Err(cx.err(r.span(), "validation_regex applies to token authorizers only"))
                }
                Some(r) => Some(
                    regex_lite::Regex::new(&format!("^(?:{})$", r.get_ref()))
                        .map_err(|e| cx.err(r.span(), format!("validation_regex: {e}")))?,
                ),
            };
            let ttl_s = cx.range(&a.ttl_s, 300, 0, 3600, "ttl_s")? as i64;
            let timeout = ms(cx.range(&a.timeout_ms, 10_000, 50, 29_000, "timeout_ms")?);
            let max_entries = cx.range(&a.cache_max_entries, 10_000, 1, 10_000_000, "cache_max_entries")? as usize;
            Ok(Some(Authorizer::Lambda(Box::new(LambdaAuthorizer {
                kind: lk,
                function: function as u32,
                sources: src,
                validation,
                ttl_s,
                timeout,
                cache: ResultCache::new(max_entries),
            }))))
        }
        other => Err(
            cx.err(a.kind.span(), format!("unknown authorizer type '{other}' (supported: jwt, token, request, none)"))
        ),
    }
}
