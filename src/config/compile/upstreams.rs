//! Compiles upstream addresses: integration URIs and function endpoints become entries of
//! `Plan::upstreams` (one per distinct host:port or socket path), and `[upstreams.NAME]`
//! becomes a group of such entries.

use super::tls::upstream_tls;
use super::{ms, Ctx};
use crate::config::error::ConfigError;
use crate::config::plan::{Target, Upstream};
use crate::config::raw::RawUpstreamGroup;
use crate::integration::uri::{self, Authority};
use crate::upstream::balance::{Balance, Group};
use crate::upstream::tls::{self, TlsSettings};
use crate::upstream::Addr;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use toml::Spanned;

/// The upstream entry for `a`, added when new. `host_header` overrides the URI's own;
/// `tls` applies when `a` is `https://`.
pub(super) fn upstream_index(
    a: &Authority,
    host_header: Option<&str>,
    tls: &TlsSettings,
    upstreams: &mut Vec<Upstream>,
) -> Result<u32, String> {
    let host = host_header.map_or_else(|| a.host_header(), str::to_string);
    let name = a.name();
    let identity = a.tls.then(|| tls.identity(&a.host));
    let same_tls = |x: &Upstream| match (&x.addr, &identity) {
        (Addr::Tls(_, t), Some(id)) => t.settings == *id,
        (Addr::Tls(..), None) | (_, Some(_)) => false,
        _ => true,
    };
    if let Some(i) = upstreams.iter().position(|x| x.name == name && *x.host_header == *host.as_bytes() && same_tls(x))
    {
        return Ok(i as u32);
    }
    let addr = match &a.unix {
        Some(p) => Addr::Unix(p.into()),
        None if a.tls => Addr::Tls(resolve(a)?, Arc::new(tls::upstream(&a.host, tls)?)),
        None => Addr::Tcp(resolve(a)?),
    };
    upstreams.push(Upstream { name, addr, host_header: host.into_bytes().into() });
    Ok(upstreams.len() as u32 - 1)
}

/// Where an integration URI's authority points: a group when it names one (no port
/// written), else a single upstream.
pub(super) fn target_for(
    a: &Authority,
    tls: &TlsSettings,
    groups: &[Group],
    upstreams: &mut Vec<Upstream>,
) -> Result<Target, String> {
    if a.unix.is_none() && !a.explicit_port {
        if let Some(g) = groups.iter().position(|g| g.name == a.host) {
            if a.tls {
                return Err(format!(
                    "'{}' is an upstream group: write http://{0}/... and give the group https:// targets",
                    a.host
                ));
            }
            return Ok(Target::Group(g as u32));
        }
    }
    upstream_index(a, None, tls, upstreams).map(Target::One)
}

pub(super) fn compile_groups(
    cx: &Ctx,
    raw: &BTreeMap<Spanned<String>, Spanned<RawUpstreamGroup>>,
    upstreams: &mut Vec<Upstream>,
) -> Result<Vec<Group>, ConfigError> {
    let mut out = Vec::new();
    for (name, g) in raw {
        let gr = g.get_ref();
        let n = name.get_ref();
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(cx.err(name.span(), format!("upstream name '{n}' may use letters, digits, '-', '_' and '.'")));
        }
        if gr.targets.is_empty() {
            return Err(cx.err(g.span(), format!("upstream '{n}' needs at least one target")));
        }
        let host = match &gr.host {
            Some(h) if h.get_ref().is_empty() || h.get_ref().bytes().any(|b| b <= b' ' || b >= 0x7f) => {
                return Err(cx.err(h.span(), "host must be a non-empty header value without spaces"))
            }
            Some(h) => h.get_ref().clone(),
            None => n.clone(),
        };
        let https = gr.targets.iter().any(|t| t.get_ref().starts_with("https://"));
        let tls = upstream_tls(cx, gr.tls.as_ref(), https)?;
        let mut targets = Vec::new();
        for t in &gr.targets {
            let a = parse_target(t.get_ref()).map_err(|m| cx.err(t.span(), m))?;
            let idx = upstream_index(&a, Some(&host), &tls, upstreams).map_err(|m| cx.err(t.span(), m))?;
            if targets.contains(&idx) {
                return Err(cx.err(t.span(), format!("target '{}' is listed twice", t.get_ref())));
            }
            targets.push(idx);
        }
        let balance = match gr.balance.as_ref().map(|b| (b.get_ref().as_str(), b.span())) {
            None | Some(("round_robin", _)) => Balance::RoundRobin,
            Some(("least_outstanding", _)) => Balance::LeastOutstanding,
            Some((other, span)) => {
                return Err(cx.err(span, format!("balance must be round_robin or least_outstanding, got '{other}'")))
            }
        };
        let eject = cx.range(&gr.eject_ms, 1000, 1, 3_600_000, "eject_ms")?;
        let eject_max = cx.range(&gr.eject_max_ms, 30_000, eject, 3_600_000, "eject_max_ms")?;
        out.push(Group {
            name: n.clone(),
            targets,
            balance,
            max_fails: cx.range(&gr.max_fails, 3, 1, 1000, "max_fails")? as u32,
            eject: ms(eject),
            eject_max: ms(eject_max),
        });
    }
    Ok(out)
}

/// A group target or function endpoint: `host:port`, `http://host:port`,
/// `https://host[:port]` or `unix:/path`.
pub(super) fn parse_target(t: &str) -> Result<Authority, String> {
    if let Some(rest) = t.strip_prefix("unix:") {
        if rest.contains(":/") || rest.contains(":?") {
            return Err(format!("'{t}': a target is an address only, without a path"));
        }
        return Ok(uri::parse(t, &[])?.authority);
    }
    let (scheme, text) = match t.strip_prefix("https://") {
        Some(rest) => ("https", rest),
        None => ("http", t.strip_prefix("http://").unwrap_or(t)),
    };
    let text = text.trim_end_matches('/');
    if text.contains(['/', '?']) {
        return Err(format!("'{t}': a target is an address only, without a path"));
    }
    Ok(uri::parse(&format!("{scheme}://{text}/"), &[])?.authority)
}

fn resolve(a: &Authority) -> Result<SocketAddr, String> {
    if let Ok(ip) = a.host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, a.port));
    }
    (a.host.as_str(), a.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve upstream host '{}': {e}", a.host))?
        .next()
        .ok_or_else(|| format!("upstream host '{}' has no address", a.host))
}
