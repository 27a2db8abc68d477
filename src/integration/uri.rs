//! Integration URI templates: `http://${stageVariables.host}/base/{proxy}?x={id}`, or a
//! private backend on a Unix socket: `unix:/run/app.sock:/base/{proxy}`.
//!
//! Stage variables are resolved at compile time (one target per stage); `{param}`
//! placeholders become pieces rendered per request straight into the output buffer.

use std::collections::BTreeMap;

/// One piece of the upstream request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(Box<[u8]>),
    /// Index of the route's path parameter.
    Param(u8),
}

/// The upstream address part of a rendered URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub host: String,
    pub port: u16,
    /// `unix:/path`: the socket path (then `host` is "localhost" and `port` unused).
    pub unix: Option<String>,
    /// The port was written in the URI (a bare name can refer to an upstream group).
    pub explicit_port: bool,
    /// `https://`: connect with TLS.
    pub tls: bool,
}

impl Authority {
    /// Value for the `Host` header: the port is omitted when it is the scheme default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port || self.unix.is_some() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// A stable name for the upstream: `host:port` or `unix:/path`.
    pub fn name(&self) -> String {
        match &self.unix {
            Some(p) => format!("unix:{p}"),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriTemplate {
    pub authority: Authority,
    pub path: Vec<Piece>,
    /// Query pieces from the template, without the `?`; empty when the template has none.
    pub query: Vec<Piece>,
}

/// Replaces `${stageVariables.NAME}`; unknown names become the empty string, as in API Gateway.
pub fn substitute_stage_variables(uri: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let close = after.find('}').ok_or("unclosed '${' in uri")?;
        let expr = &after[..close];
        let name = expr.strip_prefix("stageVariables.").ok_or_else(|| {
            format!("unknown variable '${{{expr}}}' in uri (only ${{stageVariables.NAME}} is allowed)")
        })?;
        if let Some(v) = vars.get(name) {
            out.push_str(v);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a stage-resolved URI. `params` are the route's path parameter names in order.
pub fn parse(uri: &str, params: &[String]) -> Result<UriTemplate, String> {
    let (authority, target) = if let Some(r) = uri.strip_prefix("unix:") {
        // The socket path ends at the first ":/" or ":?"; the request target follows.
        let end = r.find(":/").or_else(|| r.find(":?")).unwrap_or(r.len());
        let socket = &r[..end];
        if !socket.starts_with('/') || socket.len() < 2 {
            return Err(format!("'{uri}': write unix:/absolute/socket/path:/request/path"));
        }
        if socket.contains(['{', '}', '?', '#']) || socket.bytes().any(|b| b < b' ') {
            return Err(format!("invalid unix socket path '{socket}'"));
        }
        let a = Authority {
            host: "localhost".into(),
            port: 0,
            unix: Some(socket.into()),
            explicit_port: false,
            tls: false,
        };
        (a, r.get(end + 1..).unwrap_or(""))
    } else if let Some(r) = uri.strip_prefix("http://") {
        let auth_end = r.find(['/', '?']).unwrap_or(r.len());
        (parse_authority(&r[..auth_end], false)?, &r[auth_end..])
    } else if let Some(r) = uri.strip_prefix("https://") {
        let auth_end = r.find(['/', '?']).unwrap_or(r.len());
        (parse_authority(&r[..auth_end], true)?, &r[auth_end..])
    } else {
        return Err(format!("integration uri '{uri}' must start with http://, https:// or unix:/"));
    };
    let (path, query) = match target.find('?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    if path.contains('#') || query.contains('#') {
        return Err("integration uri must not contain a fragment".into());
    }
    Ok(UriTemplate { authority, path: pieces(path, params)?, query: pieces(query, params)? })
}

fn parse_authority(a: &str, tls: bool) -> Result<Authority, String> {
    if a.is_empty() {
        return Err("integration uri has no host".into());
    }
    if a.contains('@') {
        return Err("integration uri must not contain user information".into());
    }
    let (host, port) = if let Some(v6) = a.strip_prefix('[') {
        let end = v6.find(']').ok_or("unclosed '[' in uri host")?;
        let port = v6[end + 1..].strip_prefix(':');
        (&v6[..end], port)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        }
    };
    if host.is_empty() {
        return Err("integration uri has no host".into());
    }
    if host.contains(['{', '}']) {
        return Err("path parameters cannot be used in the uri host".into());
    }
    let explicit_port = port.is_some();
    let port = match port {
        None if tls => 443,
        None => 80,
        Some(p) => p.parse::<u32>().map_err(|_| format!("invalid port '{p}' in integration uri"))?,
    };
    if !(port == 80 || port == 443 || (1024..=65535).contains(&port)) {
        return Err(format!("port {port} is not allowed in an integration uri (allowed: 80, 443, 1024-65535)"));
    }
    Ok(Authority { host: host.to_string(), port: port as u16, unix: None, explicit_port, tls })
}

fn pieces(s: &str, params: &[String]) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        lit.push_str(&rest[..i]);
        let close = rest[i..].find('}').ok_or("unclosed '{' in integration uri")? + i;
        let name = &rest[i + 1..close];
        let idx = params.iter().position(|p| p == name).ok_or_else(|| {
            if params.is_empty() {
                format!("uri uses {{{name}}} but the route has no path parameters")
            } else {
                format!("uri uses {{{name}}} but the route's path parameters are {{{}}}", params.join("}, {"))
            }
        })?;
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit).into_bytes().into()));
        }
        out.push(Piece::Param(idx as u8));
        rest = &rest[close + 1..];
    }
    lit.push_str(rest);
    if lit.contains('}') {
        return Err("unmatched '}' in integration uri".into());
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit.into_bytes().into()));
    }
    Ok(out)
}

/// Writes the pieces, taking parameter values from `path` at the captured ranges.
#[inline]
pub fn render(out: &mut Vec<u8>, pieces: &[Piece], path: &[u8], caps: &[(u32, u32)]) {
    for p in pieces {
        match p {
            Piece::Lit(b) => out.extend_from_slice(b),
            Piece::Param(i) => {
                if let Some(&(a, b)) = caps.get(*i as usize) {
                    out.extend_from_slice(&path[a as usize..b as usize]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn stage_variables() {
        let v = vars(&[("petHost", "127.0.0.1:9000")]);
        assert_eq!(
            substitute_stage_variables("http://${stageVariables.petHost}/p/${stageVariables.nope}x", &v).unwrap(),
            "http://127.0.0.1:9000/p/x"
        );
        assert!(substitute_stage_variables("http://${context.x}/", &v).is_err());
    }

    #[test]
    fn parses_and_renders() {
        let params = vec!["proxy".to_string()];
        let t = parse("http://127.0.0.1:9000/petstore/{proxy}", &params).unwrap();
        assert_eq!((t.authority.host.as_str(), t.authority.port), ("127.0.0.1", 9000));
        assert!(t.authority.explicit_port && t.authority.unix.is_none());
        assert_eq!(t.authority.host_header(), "127.0.0.1:9000");
        let path = b"/pets/1/toys";
        let mut out = Vec::new();
        render(&mut out, &t.path, path, &[(1, 12)]);
        assert_eq!(out, b"/petstore/pets/1/toys");
        assert!(t.query.is_empty());
    }

    #[test]
    fn query_placeholders_and_defaults() {
        let params = vec!["id".to_string()];
        let t = parse("http://backend?x={id}&y=1", &params).unwrap();
        assert_eq!(t.authority.port, 80);
        assert_eq!(t.authority.host_header(), "backend");
        assert_eq!(t.path, vec![Piece::Lit(b"/"[..].into())]);
        assert_eq!(t.query.len(), 3);
    }

    #[test]
    fn rejects_bad_uris() {
        assert!(parse("http://h:8/x", &[]).unwrap_err().contains("port 8"));
        assert!(parse("http://h:1023/x", &[]).is_err());
        assert!(parse("http://h:443/x", &[]).is_ok());
        assert!(parse("http://h:65536/x", &[]).is_err());
        assert!(parse("ftp://h/x", &[]).is_err());
        assert!(parse("http://h/{nope}", &[]).unwrap_err().contains("no path parameters"));
        assert!(parse("http:///x", &[]).is_err());
        assert_eq!(parse("http://[::1]:8080/", &[]).unwrap().authority.host_header(), "[::1]:8080");
        assert!(parse("unix:relative.sock:/x", &[]).is_err());
        assert!(parse("unix:/:/x", &[]).is_err());
    }

    #[test]
    fn unix_socket_uris() {
        let params = vec!["proxy".to_string()];
        let t = parse("unix:/run/app.sock:/petstore/{proxy}?v=1", &params).unwrap();
        assert_eq!(t.authority.unix.as_deref(), Some("/run/app.sock"));
        assert_eq!(t.authority.host_header(), "localhost");
        assert_eq!(t.authority.name(), "unix:/run/app.sock");
        assert_eq!(t.path.len(), 2);
        assert_eq!(t.query, vec![Piece::Lit(b"v=1"[..].into())]);
        let bare = parse("unix:/run/app.sock", &[]).unwrap();
        assert_eq!(bare.path, vec![Piece::Lit(b"/"[..].into())]);
    }
}
