//! Turns the TOML text into a `Plan`: parse, validate, compile. Every error carries the
//! file, line and column of the value that caused it.

use super::error::ConfigError;
use super::plan::*;
use super::raw::*;
use crate::http::gateway_response::{self as gw, Kind, Override};
use crate::http::method::{Method, RouteMethod};
use crate::integration::uri;
use crate::policy::api_key::ApiKeys;
use crate::policy::cache::{parse_key_part, CachePolicy, Invalidation, KeyPart, Source, Unauthorized};
use crate::policy::cors::{self, Cors};
use crate::policy::quota::{Period, Quota};
use crate::policy::throttle::Bucket;
use crate::route::trie::{parse_template, InsertError, Segment};
use crate::route::Trie;
use crate::upstream::balance::Group;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;
use toml::Spanned;

mod authorizers;
mod cache;
mod custom;
mod functions;
mod tls;
mod upstreams;
mod validation;
use authorizers::compile_authorizers;
use cache::compile_cache;
use custom::compile_custom;
use functions::{compile_api, compile_functions};
use upstreams::{compile_groups, target_for};
use validation::{compile_models, compile_validation};

struct Ctx<'a> {
    file: &'a str,
    src: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.src, span.start, msg)
    }

    fn range(&self, v: &Option<Spanned<u64>>, default: u64, lo: u64, hi: u64, what: &str) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) if (lo..=hi).contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(self.err(s.span(), format!("{what} must be between {lo} and {hi}, got {}", s.get_ref()))),
        }
    }
}

pub fn compile(file: &str, src: &str) -> Result<Plan, ConfigError> {
    let cx = Ctx { file, src };
    let raw: RawConfig = toml::from_str(src).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        ConfigError::at(file, src, at, e.message().trim_end().to_string())
    })?;

    let server = compile_server(&cx, &raw.server)?;
    let limits = compile_limits(&cx, &raw.limits)?;
    let upstream = UpstreamSettings {
        connect_timeout: ms(cx.range(&raw.upstream.connect_timeout_ms, 3000, 1, 600_000, "connect_timeout_ms")?),
        pool_max_idle: cx.range(&raw.upstream.pool_max_idle, 64, 0, 100_000, "pool_max_idle")? as usize,
        pool_idle_timeout: ms(cx.range(
            &raw.upstream.pool_idle_timeout_ms,
            30_000,
            1,
            3_600_000,
            "pool_idle_timeout_ms",
        )?),
    };

    let staged = raw.stages.is_some();
    let stages = compile_stages(&cx, raw.stages.as_ref())?;

    let (model_names, models) = compile_models(&cx, &raw.models)?;
    let mut trie = Trie::default();
    let mut routes = Vec::with_capacity(raw.routes.len());
    for (i, r) in raw.routes.iter().enumerate() {
        let segments = parse_template(r.path.get_ref()).map_err(|m| cx.err(r.path.span(), m))?;
        let method = RouteMethod::parse(r.method.get_ref()).ok_or_else(|| {
            cx.err(
                r.method.span(),
                format!("unknown method '{}' (use GET POST PUT DELETE PATCH HEAD OPTIONS or ANY)", r.method.get_ref()),
            )
        })?;
        let params: Vec<String> = segments
            .iter()
            .filter_map(|s| match s {
                Segment::Param(n) | Segment::Greedy(n) => Some(n.clone()),
                Segment::Static(_) => None,
            })
            .collect();
        if params.len() > 64 {
            return Err(cx.err(r.path.span(), "too many path parameters (at most 64)"));
        }
        let mut seen = params.clone();
        seen.sort();
        if let Some(w) = seen.windows(2).find(|w| w[0] == w[1]) {
            return Err(cx.err(r.path.span(), format!("path parameter {{{}}} appears twice", w[0])));
        }
        trie.insert(&segments, method, i as u32).map_err(|e| match e {
            InsertError::Duplicate(first) => {
                let at = ConfigError::at(file, src, raw.routes[first as usize].path.span().start, "");
                cx.err(
                    r.path.span(),
                    format!(
                        "duplicate route {} {} (first defined at line {})",
                        method.as_str(),
                        r.path.get_ref(),
                        at.line
                    ),
                )
            }
            InsertError::ParamConflict { existing, new } => cx.err(
                r.path.span(),
                format!("path parameter {{{new}}} conflicts with {{{existing}}} at the same position in another route"),
            ),
        })?;
        let validation = match &r.validate {
            Some(v) => Some(Box::new(compile_validation(&cx, v, &params, &model_names)?)),
            None => None,
        };
        routes.push(Route {
            path: r.path.get_ref().clone(),
            method,
            params,
            api_key_required: r.api_key_required,
            validation,
        });
    }

    let mut throttles = Vec::with_capacity(stages.len() * routes.len());
    let stage_throttles: Vec<Option<&Spanned<RawThrottle>>> = match &raw.stages {
        None => vec![None],
        Some(map) => map.values().map(|s| s.throttle.as_ref()).collect(),
    };
    for st in &stage_throttles {
        for r in &raw.routes {
            throttles.push(match r.throttle.as_ref().or(*st) {
                Some(t) => Some(compile_throttle(&cx, t)?),
                None => None,
            });
        }
    }
    let global_throttle = match &raw.throttle {
        Some(t) => Some(compile_throttle(&cx, t)?),
        None => None,
    };

    let api_keys = match raw.keys.as_ref().map(|k| &k.file) {
        None => compile_api_keys(&cx, &raw.api_keys, &raw.usage_plans, &stages, staged, &routes)?,
        Some(kf) => {
            if !raw.api_keys.is_empty() || !raw.usage_plans.is_empty() {
                return Err(
                    cx.err(kf.span(), "with [keys] file, [[api_keys]] and [usage_plans] belong in that file only")
                );
            }
            let base = std::path::Path::new(file).parent().unwrap_or(std::path::Path::new("."));
            let path = base.join(kf.get_ref());
            let path_text = path.display().to_string();
            let ksrc = std::fs::read_to_string(&path)
                .map_err(|e| cx.err(kf.span(), format!("cannot read keys file {path_text}: {e}")))?;
            let kraw: RawKeys = toml::from_str(&ksrc).map_err(|e| {
                ConfigError::at(&path_text, &ksrc, e.span().map_or(0, |s| s.start), e.message().trim_end().to_string())
            })?;
            let kcx = Ctx { file: &path_text, src: &ksrc };
            compile_api_keys(&kcx, &kraw.api_keys, &kraw.usage_plans, &stages, staged, &routes)?
        }
    };

    let mut cors_policies = Vec::new();
    let mut route_policy = Vec::with_capacity(raw.routes.len());
    for r in &raw.routes {
        route_policy.push(match &r.cors {
            Some(c) => {
                cors_policies.push(compile_cors(&cx, c)?);
                (cors_policies.len() - 1) as u32
            }
            None => NO_CORS,
        });
    }
    let mut stage_cors = Vec::new();
    match &raw.stages {
        None => stage_cors.push(NO_CORS),
        Some(map) => {
            for st in map.values() {
                stage_cors.push(match &st.cors {
                    Some(c) => {
                        cors_policies.push(compile_cors(&cx, c)?);
                        (cors_policies.len() - 1) as u32
                    }
                    None => NO_CORS,
                });
            }
        }
    }
    let mut route_cors = Vec::with_capacity(stages.len() * routes.len());
    for sc in &stage_cors {
        for rp in &route_policy {
            route_cors.push(if *rp != NO_CORS { *rp } else { *sc });
        }
    }

    let mut upstreams: Vec<Upstream> = Vec::new();
    let groups = compile_groups(&cx, &raw.upstreams, &mut upstreams)?;
    let functions = compile_functions(&cx, &raw.functions, &mut upstreams)?;
    let api = compile_api(&cx, &raw.api)?;
    let mut integrations = Vec::with_capacity(stages.len() * routes.len());
    let mut integration_text = Vec::with_capacity(stages.len() * routes.len());
    for stage in &stages {
        for (ri, r) in raw.routes.iter().enumerate() {
            let (integ, text) = compile_integration(
                &cx,
                &r.integration,
                &routes[ri].params,
                stage,
                staged,
                &mut Backends { upstreams: &mut upstreams, groups: &groups, functions: &functions },
            )?;
            integrations.push(integ);
            integration_text.push(text);
        }
    }

    let cache = CacheSettings {
        max_bytes: cx.range(&raw.cache.max_bytes, 256 << 20, 0, 1 << 44, "max_bytes")? as usize,
        max_entry_bytes: cx.range(&raw.cache.max_entry_bytes, 1 << 20, 1, 64 << 20, "max_entry_bytes")? as usize,
    };
    let stage_caches: Vec<Option<&Spanned<RawCache>>> = match &raw.stages {
        None => vec![None],
        Some(map) => map.values().map(|s| s.cache.as_ref()).collect(),
    };
    let mut cache_policies = Vec::with_capacity(stages.len() * routes.len());
    for (si, sc) in stage_caches.iter().enumerate() {
        for (ri, r) in raw.routes.iter().enumerate() {
            let proxied = matches!(integrations[si * routes.len() + ri], Integration::HttpProxy(_));
            let c = compile_cache(&cx, r.cache.as_ref(), *sc, &routes[ri], &stages[si], &cache, proxied)?;
            cache_policies.push(c.map(Box::new));
        }
    }

    let gateway = compile_gateway_responses(&cx, &raw.gateway_responses)?;
    let (authorizers, route_authorizers) = compile_authorizers(&cx, &raw, stages.len(), &functions)?;

    Ok(Plan {
        source: file.to_string(),
        source_text: src.to_string(),
        checksum: format!("{:016x}", fnv1a(src.as_bytes())),
        server,
        limits,
        upstream,
        staged,
        stages,
        routes,
        trie,
        integrations,
        integration_text,
        upstreams,
        groups,
        gateway,
        throttles,
        global_throttle,
        api_keys,
        cors_policies,
        route_cors,
        stage_cors,
        cache,
        api,
        functions,
        cache_policies,
        metrics: compile_metrics(&cx, &raw.metrics)?,
        access_log: compile_access_log(&cx, raw.access_log.as_ref())?,
        models,
        model_names,
        authorizers,
        route_authorizers,
    })
}

/// API Gateway's console presets (section 14.2 of the reference).
pub const CLF: &str = "$context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime] \"$context.httpMethod $context.resourcePath $context.protocol\" $context.status $context.responseLength $context.requestId $context.extendedRequestId";
pub const JSON: &str = "{ \"requestId\":\"$context.requestId\", \"extendedRequestId\":\"$context.extendedRequestId\", \"ip\": \"$context.identity.sourceIp\", \"caller\":\"$context.identity.caller\", \"user\":\"$context.identity.user\", \"requestTime\":\"$context.requestTime\", \"httpMethod\":\"$context.httpMethod\", \"resourcePath\":\"$context.resourcePath\", \"status\":\"$context.status\", \"protocol\":\"$context.protocol\", \"responseLength\":\"$context.responseLength\" }";

fn compile_metrics(cx: &Ctx, raw: &RawMetrics) -> Result<MetricsSettings, ConfigError> {
    let buckets = match &raw.buckets {
        None => crate::observe::metrics::DEFAULT_BUCKETS.to_vec(),
        Some(b) => {
            let v = b.get_ref();
            let ascending = v.windows(2).all(|w| w[0] < w[1]);
            if v.is_empty() || v.len() > 64 || !ascending || v.iter().any(|x| !x.is_finite() || *x <= 0.0) {
                return Err(cx.err(b.span(), "buckets must be 1 to 64 ascending positive numbers of seconds"));
            }
            v.clone()
        }
    };
    Ok(MetricsSettings { enabled: raw.enabled.unwrap_or(true), buckets })
}

fn compile_access_log(cx: &Ctx, raw: Option<&Spanned<RawAccessLog>>) -> Result<Option<AccessLogSettings>, ConfigError> {
    use crate::observe::access_log::{compile, Target};
    let Some(raw) = raw else { return Ok(None) };
    let r = raw.get_ref();
    if r.target.get_ref().is_empty() {
        return Err(cx.err(r.target.span(), "target must be \"stdout\", \"stderr\" or a file path"));
    }
    let text = match r.format.as_ref().map(|f| f.get_ref().as_str()) {
        None | Some("clf") => CLF,
        Some("json") => JSON,
        Some(custom) => custom,
    };
    let format = compile(text).map_err(|m| {
        let span = r.format.as_ref().map_or(raw.span(), |f| f.span());
        cx.err(span, format!("access log format: {m}"))
    })?;
    Ok(Some(AccessLogSettings { target: Target::parse(r.target.get_ref()), format: std::sync::Arc::new(format) }))
}

fn compile_cors(cx: &Ctx, c: &Spanned<RawCors>) -> Result<Cors, ConfigError> {
    let r = c.get_ref();
    let join = |v: &Option<Vec<String>>, default: &str| v.as_ref().map_or(default.to_string(), |v| v.join(","));
    for h in [&r.allow_methods, &r.allow_headers, &r.expose_headers].into_iter().flatten().flatten() {
        if h.is_empty() || h.bytes().any(|b| b <= b' ' || b == b',' || b >= 0x7f) {
            return Err(cx.err(c.span(), format!("'{h}' is not a valid method or header name")));
        }
    }
    Cors::new(
        &r.allow_origins,
        join(&r.allow_methods, cors::DEFAULT_METHODS),
        join(&r.allow_headers, cors::DEFAULT_HEADERS),
        join(&r.expose_headers, ""),
        r.max_age_s,
        r.allow_credentials,
    )
    .map_err(|m| cx.err(c.span(), m))
}

/// Usage plans, then keys: each key gets its own buckets with its plan's limits.
fn compile_api_keys(
    cx: &Ctx,
    raw_keys: &[Spanned<RawApiKey>],
    raw_plans: &BTreeMap<Spanned<String>, RawUsagePlan>,
    stages: &[Stage],
    staged: bool,
    routes: &[Route],
) -> Result<ApiKeys, ConfigError> {
    let mut out = ApiKeys::default();
    // Per plan: its name, throttle, and per-route limits (route index, throttle).
    type PlanLimits<'a> =
        (String, Option<&'a Spanned<RawThrottle>>, Vec<(u32, &'a Spanned<RawThrottle>)>, Option<(u64, Period)>);
    let mut plans: Vec<PlanLimits> = Vec::new();
    for (name, p) in raw_plans {
        let stage_idx = match &p.stages {
            None => None,
            Some(list) => {
                let mut v = Vec::new();
                for s in list {
                    let found = stages.iter().position(|st| staged && st.name == *s.get_ref());
                    v.push(found.ok_or_else(|| {
                        cx.err(s.span(), format!("usage plan names unknown stage '{}'", s.get_ref()))
                    })?);
                }
                Some(v)
            }
        };
        if let Some(t) = &p.throttle {
            compile_throttle(cx, t)?;
        }
        let quota = match &p.quota {
            None => None,
            Some(q) => {
                let q = q.get_ref();
                let limit = *q.limit.get_ref();
                if !(0..=i64::MAX / 2).contains(&limit) {
                    return Err(cx.err(q.limit.span(), "quota limit must be 0 or more"));
                }
                let period = Period::parse(q.period.get_ref())
                    .ok_or_else(|| cx.err(q.period.span(), "quota period must be \"DAY\", \"WEEK\" or \"MONTH\""))?;
                Some((limit as u64, period))
            }
        };
        let mut per_route = Vec::new();
        for (key, t) in &p.routes {
            compile_throttle(cx, t)?;
            let (path, method) = key.get_ref().rsplit_once('/').unwrap_or(("", ""));
            let path = if path.is_empty() { "/" } else { path };
            let idx = routes
                .iter()
                .position(|r| r.path.trim_end_matches('/') == path.trim_end_matches('/') && r.method.as_str() == method)
                .ok_or_else(|| {
                    cx.err(
                        key.span(),
                        format!("'{}' names no route (write \"/path/METHOD\", e.g. \"/pets/GET\")", key.get_ref()),
                    )
                })?;
            per_route.push((idx as u32, t));
        }
        out.add_plan(name.get_ref().clone(), stage_idx);
        plans.push((name.get_ref().clone(), p.throttle.as_ref(), per_route, quota));
    }
    let mut ids: Vec<&str> = Vec::new();
    for k in raw_keys {
        let key = k.get_ref();
        let id = key.id.get_ref();
        if id.is_empty() || ids.contains(&id.as_str()) {
            return Err(cx.err(key.id.span(), format!("api key id '{id}' is empty or used twice")));
        }
        ids.push(id);
        let value = key.value.get_ref();
        if !(20..=128).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(cx.err(key.value.span(), "api key values are 20 to 128 printable ASCII characters"));
        }
        let plan = match &key.plan {
            None => None,
            Some(p) => Some(
                plans
                    .iter()
                    .position(|(n, _, _, _)| n == p.get_ref())
                    .ok_or_else(|| cx.err(p.span(), format!("unknown usage plan '{}'", p.get_ref())))?,
            ),
        };
        let bucket = match plan.and_then(|i| plans[i].1) {
            Some(t) => Some(compile_throttle(cx, t)?),
            None => None,
        };
        let quota = plan.and_then(|i| plans[i].3).map(|(limit, period)| Quota::new(limit, period));
        let idx = out
            .add_key(id.clone(), value.as_bytes(), key.enabled, plan.map(|p| p as u32), bucket, quota)
            .map_err(|other| cx.err(key.value.span(), format!("api key '{id}' has the same value as key '{other}'")))?;
        if let Some(p) = plan {
            for (route, t) in &plans[p].2 {
                out.add_route_bucket(idx, *route, compile_throttle(cx, t)?);
            }
        }
    }
    Ok(out)
}

fn compile_throttle(cx: &Ctx, t: &Spanned<RawThrottle>) -> Result<Bucket, ConfigError> {
    let r = t.get_ref();
    let rate = *r.rate.get_ref();
    if !(0.0..=1e9).contains(&rate) {
        return Err(cx.err(r.rate.span(), "throttle rate must be between 0 and 1000000000 requests per second"));
    }
    let burst = *r.burst.get_ref();
    if !(0..=1_000_000_000).contains(&burst) {
        return Err(cx.err(r.burst.span(), "throttle burst must be between 0 and 1000000000"));
    }
    Ok(Bucket::new(rate, burst as u64))
}

/// FNV-1a, 64 bits: a cheap checksum that tells configs apart.
fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| (h ^ x as u64).wrapping_mul(0x0100_0000_01b3))
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn compile_server(cx: &Ctx, s: &RawServer) -> Result<Server, ConfigError> {
    let tls = tls::compile_tls_listeners(cx, &s.tls)?;
    let mut listen = match &s.listen {
        None if !tls.is_empty() => Vec::new(),
        None => vec!["127.0.0.1:8080".parse().unwrap()],
        Some(list) => {
            if list.get_ref().is_empty() && tls.is_empty() {
                return Err(cx.err(list.span(), "listen must name at least one address (or add [[server.tls]])"));
            }
            let mut out: Vec<SocketAddr> = Vec::new();
            for a in list.get_ref() {
                let addr = parse_addr(a.get_ref()).map_err(|m| cx.err(a.span(), m))?;
                if out.contains(&addr) {
                    return Err(cx.err(a.span(), format!("{addr} is listed twice")));
                }
                out.push(addr);
            }
            out
        }
    };
    for (t, raw) in tls.iter().zip(&s.tls) {
        if listen.contains(&t.addr) {
            let span = raw.get_ref().listen.span();
            return Err(cx.err(span, format!("{} is also a plain HTTP listen address", t.addr)));
        }
        listen.push(t.addr);
    }
    let workers = match &s.workers {
        None => auto_workers(),
        Some(w) => match w.get_ref() {
            Workers::Word(x) if x == "auto" => auto_workers(),
            Workers::Count(n) if (1..=1024).contains(n) => *n as usize,
            _ => return Err(cx.err(w.span(), "workers must be \"auto\" or a number from 1 to 1024")),
        },
    };
    let driver = match &s.driver {
        None => Driver::Auto,
        Some(d) => match d.get_ref().as_str() {
            "auto" => Driver::Auto,
            "io_uring" => Driver::IoUring,
            "epoll" => Driver::Epoll,
            other => {
                return Err(
                    cx.err(d.span(), format!("unknown driver '{other}' (use \"auto\", \"io_uring\" or \"epoll\")"))
                )
            }
        },
    };
    let admin_listen = match &s.admin_listen {
        None => Some("127.0.0.1:9901".parse().unwrap()),
        Some(a) if a.get_ref().is_empty() => None,
        Some(a) => Some(parse_addr(a.get_ref()).map_err(|m| cx.err(a.span(), m))?),
    };
    let shutdown_timeout = ms(cx.range(&s.shutdown_timeout_ms, 10_000, 0, 3_600_000, "shutdown_timeout_ms")?);
    let state_dir = match &s.state_dir {
        None => std::path::PathBuf::from("/var/lib/ringway"),
        Some(d) if d.get_ref().is_empty() => return Err(cx.err(d.span(), "state_dir cannot be empty")),
        Some(d) => std::path::PathBuf::from(d.get_ref()),
    };
    let control_socket = match &s.control_socket {
        None => None,
        Some(p) if p.get_ref().starts_with('/') => Some(std::path::PathBuf::from(p.get_ref())),
        Some(p) => return Err(cx.err(p.span(), "control_socket must be an absolute path")),
    };
    let defer_accept = s.defer_accept.unwrap_or(true);
    Ok(Server { listen, tls, workers, driver, admin_listen, shutdown_timeout, defer_accept, state_dir, control_socket })
}

fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("'{s}' is not an IP:port address (e.g. \"127.0.0.1:8080\" or \"[::]:8080\")"))
}

fn auto_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn compile_limits(cx: &Ctx, l: &RawLimits) -> Result<Limits, ConfigError> {
    let max_header_bytes = cx.range(&l.max_header_bytes, 16384, 1024, 1 << 20, "max_header_bytes")? as usize;
    let max_uri_bytes = cx.range(&l.max_uri_bytes, 10240, 64, 1 << 20, "max_uri_bytes")? as usize;
    Ok(Limits {
        max_header_bytes,
        max_body_bytes: cx.range(&l.max_body_bytes, 10 << 20, 0, u64::MAX >> 2, "max_body_bytes")?,
        max_uri_bytes,
        header_timeout: ms(cx.range(&l.header_timeout_ms, 10_000, 1, 3_600_000, "header_timeout_ms")?),
        idle_timeout: ms(cx.range(&l.idle_timeout_ms, 60_000, 1, 86_400_000, "idle_timeout_ms")?),
    })
}

fn compile_stages(cx: &Ctx, raw: Option<&BTreeMap<Spanned<String>, RawStage>>) -> Result<Vec<Stage>, ConfigError> {
    let Some(map) = raw else {
        return Ok(vec![Stage::new(String::new(), BTreeMap::new())]);
    };
    let mut out = Vec::new();
    for (name, st) in map {
        let n = name.get_ref();
        if n.is_empty() || n.len() > 128 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(cx.err(name.span(), format!("stage name '{n}' must be 1-128 letters, digits, '-' or '_'")));
        }
        if st.variables.len() > 100 {
            return Err(cx.err(name.span(), "a stage has at most 100 variables"));
        }
        let mut vars = BTreeMap::new();
        for (k, v) in &st.variables {
            let key = k.get_ref();
            if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(
                    cx.err(k.span(), format!("stage variable name '{key}' must be 1-64 letters, digits or '_'"))
                );
            }
            let val = v.get_ref();
            if val.is_empty()
                || val.len() > 512
                || !val.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b))
            {
                return Err(
                    cx.err(v.span(), "stage variable values are 1-512 characters of A-Z a-z 0-9 - . _ ~ : / ? # & = ,")
                );
            }
            vars.insert(key.clone(), val.clone());
        }
        out.push(Stage::new(n.clone(), vars));
    }
    if out.is_empty() {
        return Err(ConfigError::at(
            cx.file,
            cx.src,
            cx.src.find("stages").unwrap_or(0),
            "[stages] is present but defines no stage",
        ));
    }
    Ok(out)
}

/// What integrations can point at: upstreams (added to as URIs name new ones), groups, functions.
struct Backends<'a> {
    upstreams: &'a mut Vec<Upstream>,
    groups: &'a [Group],
    functions: &'a [Function],
}

fn compile_integration(
    cx: &Ctx,
    raw: &Spanned<RawIntegration>,
    params: &[String],
    stage: &Stage,
    staged: bool,
    b: &mut Backends,
) -> Result<(Integration, String), ConfigError> {
    let i = raw.get_ref();
    let kind = i.kind.get_ref().as_str();
    let only = |allowed: &[&str]| -> Result<(), ConfigError> {
        let fields: [(&str, Option<Range<usize>>); 13] = [
            ("uri", i.uri.as_ref().map(|v| v.span())),
            ("http_method", i.http_method.as_ref().map(|v| v.span())),
            ("request_parameters", i.request_parameters.as_ref().map(|_| raw.span())),
            ("request_templates", i.request_templates.as_ref().map(|_| raw.span())),
            ("passthrough_behavior", i.passthrough_behavior.as_ref().map(|v| v.span())),
            ("responses", i.responses.as_ref().map(|_| raw.span())),
            ("timeout_ms", i.timeout_ms.as_ref().map(|v| v.span())),
            ("status", i.status.as_ref().map(|v| v.span())),
            ("headers", i.headers.as_ref().map(|_| raw.span())),
            ("body", i.body.as_ref().map(|v| v.span())),
            ("function", i.function.as_ref().map(|v| v.span())),
            ("payload_format", i.payload_format.as_ref().map(|v| v.span())),
            ("tls", i.tls.as_ref().map(|v| v.span())),
        ];
        for (name, span) in fields {
            if let Some(span) = span {
                if !allowed.contains(&name) {
                    return Err(cx.err(span, format!("'{name}' is not a setting of a {kind} integration")));
                }
            }
        }
        Ok(())
    };
    let templated = i.request_templates.is_some() || i.responses.is_some();
    match kind {
        "mock" if templated => {
            only(&["request_templates", "passthrough_behavior", "responses"])?;
            compile_custom(cx, raw, params, stage, staged, b, true)
        }
        "http" => {
            only(&[
                "uri",
                "timeout_ms",
                "http_method",
                "request_parameters",
                "request_templates",
                "passthrough_behavior",
                "responses",
                "tls",
            ])?;
            compile_custom(cx, raw, params, stage, staged, b, false)
        }
        "mock" => {
            only(&["status", "headers", "body"])?;
            let status = match &i.status {
                None => 200,
                Some(s) if (100..=599).contains(s.get_ref()) => *s.get_ref() as u16,
                Some(s) => return Err(cx.err(s.span(), "status must be between 100 and 599")),
            };
            let body = i.body.as_ref().map(|b| b.get_ref().clone()).unwrap_or_default();
            let mut head = Vec::new();
            let _ = write!(head_writer(&mut head), "HTTP/1.1 {} {}\r\n", status, crate::http::write::reason(status));
            let mut has_type = false;
            if let Some(h) = &i.headers {
                for (k, v) in h {
                    check_header(cx, k, v)?;
                    has_type |= k.get_ref().eq_ignore_ascii_case("content-type");
                    head.extend_from_slice(format!("{}: {}\r\n", k.get_ref(), v.get_ref()).as_bytes());
                }
            }
            if !has_type {
                head.extend_from_slice(b"Content-Type: application/json\r\n");
            }
            if !matches!(status, 100..=199 | 204 | 304) {
                head.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            let text = format!("mock {status} ({} bytes)", body.len());
            Ok((Integration::Mock(Mock { status, head: head.into(), body: body.into_bytes().into() }), text))
        }
        "http_proxy" => {
            only(&["uri", "timeout_ms", "tls"])?;
            let u = i.uri.as_ref().ok_or_else(|| cx.err(raw.span(), "an http_proxy integration needs a uri"))?;
            let span = u.span();
            let in_stage = |m: String| if staged { format!("{m} (in stage '{}')", stage.name) } else { m };
            let resolved =
                uri::substitute_stage_variables(u.get_ref(), &stage.variables).map_err(|m| cx.err(span.clone(), m))?;
            let t = uri::parse(&resolved, params).map_err(|m| cx.err(span.clone(), in_stage(m)))?;
            let timeout = cx.range(&i.timeout_ms, 29_000, 50, 29_000, "timeout_ms")?;
            let tls = tls::upstream_tls(cx, i.tls.as_ref(), t.authority.tls)?;
            let target =
                target_for(&t.authority, &tls, b.groups, b.upstreams).map_err(|m| cx.err(span.clone(), in_stage(m)))?;
            let text = format!("http_proxy {resolved} (timeout {timeout} ms)");
            Ok((Integration::HttpProxy(Proxy { target, path: t.path, query: t.query, timeout: ms(timeout) }), text))
        }
        "aws_proxy" => {
            only(&["function", "payload_format", "timeout_ms"])?;
            let f =
                i.function.as_ref().ok_or_else(|| cx.err(raw.span(), "an aws_proxy integration needs a function"))?;
            // `${stageVariables.x}` picks the function per stage (API Gateway's Lambda ARN idiom).
            let name =
                uri::substitute_stage_variables(f.get_ref(), &stage.variables).map_err(|m| cx.err(f.span(), m))?;
            let function = b.functions.iter().position(|x| x.name == name).ok_or_else(|| {
                let in_stage = if staged { format!(" in stage '{}'", stage.name) } else { String::new() };
                cx.err(f.span(), format!("unknown function '{name}'{in_stage} (define it under [functions.NAME])"))
            })?;
            let payload = match i.payload_format.as_ref().map(|p| p.get_ref().as_str()) {
                None | Some("1.0") => PayloadFormat::V1,
                Some("2.0") => PayloadFormat::V2,
                Some(other) => {
                    return Err(cx.err(
                        i.payload_format.as_ref().unwrap().span(),
                        format!("payload_format must be \"1.0\" or \"2.0\", got \"{other}\""),
                    ))
                }
            };
            let timeout = cx.range(&i.timeout_ms, 29_000, 50, 29_000, "timeout_ms")?;
            let text = format!(
                "aws_proxy {} (payload {}, timeout {timeout} ms)",
                f.get_ref(),
                if payload == PayloadFormat::V1 { "1.0" } else { "2.0" }
            );
            Ok((Integration::Function(FunctionCall { function: function as u32, payload, timeout: ms(timeout) }), text))
        }
        other => Err(cx.err(
            i.kind.span(),
            format!("unknown integration type '{other}' (supported: http_proxy, http, aws_proxy, mock)"),
        )),
    }
}

fn head_writer(v: &mut Vec<u8>) -> impl std::fmt::Write + '_ {
    struct W<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    W(v)
}

/// Header names are RFC 9110 tokens; values may not contain CR, LF or NUL.
fn check_header(cx: &Ctx, k: &Spanned<String>, v: &Spanned<String>) -> Result<(), ConfigError> {
    let name = k.get_ref();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
        return Err(cx.err(k.span(), format!("'{name}' is not a valid header name")));
    }
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), "content-length" | "transfer-encoding" | "connection" | "date" | "x-amzn-requestid") {
        return Err(cx.err(k.span(), format!("header '{name}' is set by ringway and cannot be configured")));
    }
    if v.get_ref().bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(cx.err(v.span(), "header values cannot contain CR, LF or NUL"));
    }
    Ok(())
}

fn compile_gateway_responses(
    cx: &Ctx,
    raw: &BTreeMap<Spanned<String>, Spanned<RawGatewayResponse>>,
) -> Result<Vec<gw::Resolved>, ConfigError> {
    let mut specific = Vec::new();
    let mut d4 = None;
    let mut d5 = None;
    for (name, r) in raw {
        let ov = compile_override(cx, r)?;
        match name.get_ref().as_str() {
            "DEFAULT_4XX" => d4 = Some(ov),
            "DEFAULT_5XX" => d5 = Some(ov),
            "REQUEST_TOO_LARGE" => return Err(cx.err(name.span(), "REQUEST_TOO_LARGE cannot be customized")),
            n => match Kind::from_name(n) {
                Some(k) => specific.push((k, ov)),
                None => return Err(cx.err(name.span(), format!("unknown gateway response type '{n}'"))),
            },
        }
    }
    Ok(gw::resolve_all(&specific, d4.as_ref(), d5.as_ref()))
}

fn compile_override(cx: &Ctx, r: &Spanned<RawGatewayResponse>) -> Result<Override, ConfigError> {
    let r = r.get_ref();
    let status = match &r.status {
        None => None,
        Some(s) if (100..=599).contains(s.get_ref()) => Some(*s.get_ref() as u16),
        Some(s) => return Err(cx.err(s.span(), "status must be between 100 and 599")),
    };
    let mut headers = Vec::new();
    for (k, v) in &r.headers {
        check_header(cx, k, v)?;
        headers.push((k.get_ref().clone(), v.get_ref().clone()));
    }
    let body = match &r.body {
        None => None,
        Some(b) => Some(gw::compile_template(b.get_ref()).map_err(|m| cx.err(b.span(), m))?),
    };
    Ok(Override { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        match compile("t.toml", src) {
            Ok(_) => panic!("expected an error for:\n{src}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn demo_config_compiles() {
        let p = compile("demo", crate::config::DEMO).unwrap();
        assert!(!p.routes.is_empty());
        assert!(p.route_table().contains("mock"));
    }

    #[test]
    fn shipped_petstore_example_compiles() {
        // The shipped PetStore example: stage variables, a typed route, a greedy proxy, a mock.
        let src = include_str!("../../conf/petstore.toml");
        let p = compile("t.toml", src).unwrap();
        assert_eq!(p.routes.len(), 3);
        assert_eq!(p.upstreams.len(), 1, "same host:port shares one upstream");
        assert_eq!(p.gateway_response(Kind::MissingAuthenticationToken).status, 404);
        assert!(p.staged);
        assert_eq!(p.stage_for(b"/test/pets"), Some((0, &b"/pets"[..])));
        assert_eq!(p.stage_for(b"/prod/pets"), None);
    }

    #[test]
    fn shipped_examples_compile() {
        let cache = compile("cache.toml", include_str!("../../conf/examples/cache.toml")).unwrap();
        assert_eq!(cache.cache_policy(0, 0).map(|c| c.ttl_s), Some(60));
        assert_eq!(cache.cache_policy(0, 1).map(|c| c.ttl_s), Some(300));
        let function = compile("function.toml", include_str!("../../conf/examples/function.toml")).unwrap();
        assert_eq!(function.functions.len(), 1);
        assert!(matches!(function.integration(0, 0), Integration::Function(_)));
        let private = compile("private.toml", include_str!("../../conf/examples/private.toml")).unwrap();
        assert_eq!(private.groups.len(), 1);
        assert_eq!(private.groups[0].targets.len(), 3);
        assert!(matches!(private.integration(0, 0), Integration::HttpProxy(Proxy { target: Target::Group(0), .. })));
        assert!(matches!(private.integration(0, 2), Integration::HttpProxy(Proxy { target: Target::One(3), .. })));
    }

    #[test]
    fn errors_point_at_the_value() {
        let e = err("[[routes]]\npath = \"/{proxy+}/x\"\nmethod = \"GET\"\nintegration = { type = \"mock\" }\n");
        assert!(e.starts_with("t.toml:2:8: greedy"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"lambda\" }\n");
        assert!(e.starts_with("t.toml:4:") && e.contains("unknown integration type 'lambda'"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:8/x\" }\n");
        assert!(e.starts_with("t.toml:4:") && e.contains("port 8"), "{e}");
        let dup = "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"mock\" }\n";
        let e = err(&format!("{dup}{dup}"));
        assert!(e.starts_with("t.toml:6:8: duplicate route GET /a (first defined at line 2)"), "{e}");
        let e = err("[server]\nlisten = [\"127.0.0.1:8080\"\n");
        assert!(e.starts_with("t.toml:2:"), "{e}");
        let e = err("[server]\nlistn = []\n");
        assert!(e.starts_with("t.toml:2:1: unknown field"), "{e}");
        let e = err("[[routes]]\npath = \"/a\"\nmethod = \"FETCH\"\nintegration = { type = \"mock\" }\n");
        assert!(e.starts_with("t.toml:3:10: unknown method"), "{e}");
        let e = err("[gateway_responses.NOPE]\nstatus = 400\n");
        assert!(e.starts_with("t.toml:1:"), "{e}");
    }

    #[test]
    fn stage_variables_in_host_are_checked_per_stage() {
        let src = "[stages.a]\nvariables = { h = \"127.0.0.1:9000\" }\n[stages.b]\nvariables = { h = \"127.0.0.1:99\" }\n\
                   [[routes]]\npath = \"/x\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://${stageVariables.h}/\" }\n";
        let e = err(src);
        assert!(e.contains("port 99") && e.contains("stage 'b'"), "{e}");
    }
}
