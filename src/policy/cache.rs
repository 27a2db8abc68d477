//! Response cache policy: which requests may be cached, their key, who may invalidate,
//! and which upstream responses may be stored. Pure functions over the request's bytes;
//! the store is `cache_store.rs`, the request flow `integration/cached.rs`.
//!
//! A key reads `{stage} {METHOD} {resource} {part}={value}...`, for example
//! `prod GET /pets/{petId} path.petId=7 query.type=dog`. The admin flush matches key
//! prefixes, so `prod ` is a whole stage and `prod GET /pets/` a subtree.

use crate::http::method::Method;
use crate::http::request::{Field, Head};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalidation {
    Anyone,
    /// Only callers presenting a valid API key for the stage.
    ApiKey,
    Deny,
}

/// What happens to a `Cache-Control: max-age=0` from a caller who may not invalidate
/// (API Gateway's `unauthorizedCacheControlHeaderStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthorized {
    FailWith403,
    SucceedWithResponseHeader,
    SucceedWithoutResponseHeader,
}

/// Sent with SUCCEED_WITH_RESPONSE_HEADER when an invalidation was ignored.
pub const IGNORED_HEADER: &[u8] =
    b"Warning: 199 ringway \"Cache-Control max-age=0 ignored: caller may not invalidate\"\r\n";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Index into the route's path parameters (its captures).
    Path(u16),
    Query(Box<[u8]>),
    /// Lower-case header name.
    Header(Box<[u8]>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// As written in keys: `path.x`, `query.x`, `header.x`.
    pub label: Box<[u8]>,
    pub source: Source,
}

/// The cache settings of one (stage, route).
#[derive(Debug)]
pub struct CachePolicy {
    pub ttl_s: u64,
    pub key: Vec<KeyPart>,
    /// Bit `1 << Method as u8` per cached method.
    pub methods: u8,
    /// Cached statuses; empty means 200-299.
    pub statuses: Vec<u16>,
    /// Honour `Cache-Control: no-store`/`private` and `Set-Cookie` from the upstream.
    pub honor_upstream: bool,
    pub invalidation: Invalidation,
    pub unauthorized: Unauthorized,
    /// Send `X-Cache: Hit|Miss`.
    pub x_cache: bool,
    /// How long a miss waits for another request's fill before fetching on its own.
    pub lock_timeout: Duration,
    /// Largest body kept.
    pub max_entry_bytes: usize,
    /// `{stage} ` and ` {resource}`: the fixed parts of every key.
    pub stage_prefix: Box<[u8]>,
    pub resource: Box<[u8]>,
}

/// A key source as written in the config: `path.x`, `query.x`, `header.x`, or API
/// Gateway's `method.request.path.x`, `method.request.querystring.x`,
/// `method.request.header.x`. Returns (canonical label, kind, name).
pub fn parse_key_part(s: &str) -> Result<(String, &'static str, String), String> {
    let rest = s.strip_prefix("method.request.").unwrap_or(s);
    let (kind, name) = rest
        .split_once('.')
        .ok_or_else(|| format!("cache key part '{s}' must be path.NAME, query.NAME or header.NAME"))?;
    let kind = match kind {
        "path" => "path",
        "query" | "querystring" => "query",
        "header" => "header",
        _ => return Err(format!("cache key part '{s}' must be path.NAME, query.NAME or header.NAME")),
    };
    if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'=' || b == b'&') {
        return Err(format!("cache key part '{s}' has an invalid name"));
    }
    let name = if kind == "header" { name.to_ascii_lowercase() } else { name.to_string() };
    Ok((format!("{kind}.{name}"), kind, name))
}

impl CachePolicy {
    #[inline]
    pub fn caches(&self, m: Method) -> bool {
        self.methods & (1 << m as u8) != 0
    }

    #[inline]
    pub fn status_ok(&self, status: u16) -> bool {
        if self.statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.statuses.contains(&status)
        }
    }

    /// Writes the request's key into `out` (cleared first).
    pub fn write_key(&self, out: &mut Vec<u8>, buf: &[u8], head: &Head, fields: &[Field], caps: &[(u32, u32)]) {
        out.clear();
        out.extend_from_slice(&self.stage_prefix);
        out.extend_from_slice(&buf[head.method_range.clone()]);
        out.extend_from_slice(&self.resource);
        for part in &self.key {
            out.push(b' ');
            out.extend_from_slice(&part.label);
            match &part.source {
                Source::Path(i) => {
                    if let Some(&(a, b)) = caps.get(*i as usize) {
                        out.push(b'=');
                        escape_into(out, &buf[a as usize..b as usize]);
                    }
                }
                Source::Query(name) => {
                    let q = head.query.as_ref().map_or(&[][..], |r| &buf[r.clone()]);
                    let mut first = true;
                    for pair in q.split(|&b| b == b'&') {
                        let (n, v) = match memchr::memchr(b'=', pair) {
                            Some(i) => (&pair[..i], &pair[i + 1..]),
                            None => (pair, &[][..]),
                        };
                        if n == &name[..] {
                            out.push(if first { b'=' } else { b',' });
                            first = false;
                            escape_into(out, v);
                        }
                    }
                }
                Source::Header(name) => {
                    let mut first = true;
                    for f in fields.iter().filter(|f| f.name(buf).eq_ignore_ascii_case(name)) {
                        out.push(if first { b'=' } else { b',' });
                        first = false;
                        escape_into(out, f.value(buf));
                    }
                }
            }
        }
    }
}

/// Values go into keys with space, comma, '%', controls and non-ASCII percent-encoded, so
/// distinct requests never share a key.
#[inline]
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in v {
        if b <= b' ' || b >= 0x7f || b == b'%' || b == b',' {
            out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
        } else {
            out.push(b);
        }
    }
}

/// The request asks to bypass and replace the stored entry (`Cache-Control: max-age=0`).
pub fn wants_refresh(buf: &[u8], fields: &[Field]) -> bool {
    fields.iter().filter(|f| f.name(buf).eq_ignore_ascii_case(b"cache-control")).any(|f| {
        f.value(buf).split(|&b| b == b',').any(|d| {
            let d = d.trim_ascii();
            d.len() == 9 && d[..8].eq_ignore_ascii_case(b"max-age=") && d[8] == b'0'
        })
    })
}

/// The upstream response forbids shared caching: `Cache-Control: no-store` or `private`,
/// or it sets a cookie (one caller's cookie must never reach another).
pub fn upstream_forbids(buf: &[u8], fields: &[Field]) -> bool {
    fields.iter().any(|f| {
        let n = f.name(buf);
        if n.eq_ignore_ascii_case(b"set-cookie") {
            return true;
        }
        n.eq_ignore_ascii_case(b"cache-control")
            && f.value(buf).split(|&b| b == b',').any(|d| {
                let d = d.trim_ascii();
                let name = d.split(|&b| b == b'=').next().unwrap_or(d);
                name.eq_ignore_ascii_case(b"no-store") || name.eq_ignore_ascii_case(b"private")
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse;

    fn policy(key: Vec<KeyPart>) -> CachePolicy {
        CachePolicy {
            ttl_s: 300,
            key,
            methods: 1 << Method::Get as u8,
            statuses: Vec::new(),
            honor_upstream: true,
            invalidation: Invalidation::Anyone,
            unauthorized: Unauthorized::SucceedWithResponseHeader,
            x_cache: false,
            lock_timeout: Duration::from_secs(1),
            max_entry_bytes: 1 << 20,
            stage_prefix: b"prod ".to_vec().into(),
            resource: b" /pets/{petId}".to_vec().into(),
        }
    }

    fn part(s: &str) -> KeyPart {
        let (label, kind, name) = parse_key_part(s).unwrap();
        let source = match kind {
            "path" => Source::Path(0),
            "query" => Source::Query(name.into_bytes().into()),
            _ => Source::Header(name.into_bytes().into()),
        };
        KeyPart { label: label.into_bytes().into(), source }
    }

    fn key(p: &CachePolicy, req: &str, caps: &[(u32, u32)]) -> String {
        let mut fields = Vec::new();
        let head = parse(req.as_bytes(), 8192, 8192, &mut fields).unwrap().unwrap();
        let mut out = Vec::new();
        p.write_key(&mut out, req.as_bytes(), &head, &fields, caps);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn key_parts_parse_both_spellings() {
        assert_eq!(parse_key_part("query.type").unwrap().0, "query.type");
        assert_eq!(parse_key_part("method.request.querystring.type").unwrap().0, "query.type");
        assert_eq!(parse_key_part("method.request.header.Accept").unwrap().0, "header.accept");
        assert_eq!(parse_key_part("path.proxy").unwrap().1, "path");
        assert!(parse_key_part("cookie.x").is_err());
        assert!(parse_key_part("query.").is_err());
        assert!(parse_key_part("type").is_err());
    }

    #[test]
    fn key_holds_only_the_listed_parameters() {
        let p = policy(vec![part("path.petId"), part("query.type"), part("header.Accept")]);
        let req = "GET /pets/7?department=A&type=dog HTTP/1.1\r\nHost: x\r\naccept: text/plain\r\n\r\n";
        let caps = [(10u32, 11u32)];
        assert_eq!(key(&p, req, &caps), "prod GET /pets/{petId} path.petId=7 query.type=dog header.accept=text/plain");
        let other = "GET /pets/7?type=dog&department=B HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n";
        assert_eq!(key(&p, req, &caps), key(&p, other, &caps), "unlisted parameters are ignored");
    }

    #[test]
    fn missing_empty_and_repeated_values_differ() {
        let p = policy(vec![part("query.a"), part("query.b")]);
        let k = |q: &str| key(&p, &format!("GET /x{q} HTTP/1.1\r\nHost: x\r\n\r\n"), &[]);
        assert_eq!(k(""), "prod GET /pets/{petId} query.a query.b");
        assert_eq!(k("?a="), "prod GET /pets/{petId} query.a= query.b");
        assert_eq!(k("?a=1&a=2"), "prod GET /pets/{petId} query.a=1,2 query.b");
        assert_ne!(k("?a=1,2"), k("?a=1&a=2"));
        assert_ne!(k("?a=x%20query.b=1"), k("?a=x&b=1"));
    }

    #[test]
    fn refresh_only_on_max_age_zero() {
        let check = |v: &str| {
            let req = format!("GET / HTTP/1.1\r\nHost: x\r\nCache-Control: {v}\r\n\r\n");
            let mut fields = Vec::new();
            parse(req.as_bytes(), 8192, 8192, &mut fields).unwrap().unwrap();
            wants_refresh(req.as_bytes(), &fields)
        };
        assert!(check("max-age=0"));
        assert!(check("no-transform, Max-Age=0"));
        assert!(!check("max-age=01"));
        assert!(!check("max-age=10"));
        assert!(!check("no-cache"));
    }

    #[test]
    fn upstream_no_store_private_and_cookies_forbid() {
        let check = |h: &str| {
            let resp = format!("HTTP/1.1 200 OK\r\n{h}\r\nContent-Length: 0\r\n\r\n");
            let mut fields = Vec::new();
            crate::http::response::parse(resp.as_bytes(), false, &mut fields).unwrap().unwrap();
            upstream_forbids(resp.as_bytes(), &fields)
        };
        assert!(check("Cache-Control: no-store"));
        assert!(check("cache-control: max-age=60, private"));
        assert!(check("Cache-Control: private=\"x\""));
        assert!(check("Set-Cookie: a=b"));
        assert!(!check("Cache-Control: public, max-age=60"));
        assert!(!check("Cache-Control: no-cache"));
    }
}
