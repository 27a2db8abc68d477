//! Compiles TLS settings: `[[server.tls]]` listeners (certificates loaded now, so a bad file
//! fails `check` and a reload) and `tls = { ... }` of `https://` upstreams. Relative paths
//! are relative to the config file's directory.

use super::{parse_addr, Ctx};
use crate::config::error::ConfigError;
use crate::config::plan::TlsListener;
use crate::config::raw::{RawTlsListener, RawUpstreamTls};
use crate::server::tls::{server_config, CertFiles, Culprit};
use crate::upstream::tls::TlsSettings;
use std::path::PathBuf;
use toml::Spanned;

fn path(cx: &Ctx, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    match std::path::Path::new(cx.file).parent() {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }
}

pub(super) fn compile_tls_listeners(
    cx: &Ctx,
    raw: &[Spanned<RawTlsListener>],
) -> Result<Vec<TlsListener>, ConfigError> {
    let mut out: Vec<TlsListener> = Vec::new();
    for l in raw {
        let r = l.get_ref();
        let addr = parse_addr(r.listen.get_ref()).map_err(|m| cx.err(r.listen.span(), m))?;
        if out.iter().any(|x| x.addr == addr) {
            return Err(cx.err(r.listen.span(), format!("{addr} is listed twice")));
        }
        if r.certs.get_ref().is_empty() {
            return Err(cx.err(r.certs.span(), "a TLS listener needs at least one certificate"));
        }
        let tls13_only = match r.min_version.as_ref().map(|v| (v.get_ref().as_str(), v.span())) {
            None | Some(("1.2", _)) => false,
            Some(("1.3", _)) => true,
            Some((other, span)) => {
                return Err(cx.err(span, format!("min_version must be \"1.2\" or \"1.3\", got \"{other}\"")))
            }
        };
        let mut files = Vec::new();
        for c in r.certs.get_ref() {
            let c = c.get_ref();
            for n in &c.server_names {
                let name = n.get_ref().strip_prefix("*.").unwrap_or(n.get_ref());
                if rustls::pki_types::DnsName::try_from(name).is_err() {
                    return Err(cx.err(n.span(), format!("'{}' is not a DNS name", n.get_ref())));
                }
            }
            files.push(CertFiles {
                cert: path(cx, c.cert.get_ref()),
                key: path(cx, c.key.get_ref()),
                server_names: c.server_names.iter().map(|n| n.get_ref().clone()).collect(),
            });
        }
        let config = server_config(&files, tls13_only).map_err(|(i, culprit, msg)| {
            let c = r.certs.get_ref()[i].get_ref();
            cx.err(if culprit == Culprit::Cert { c.cert.span() } else { c.key.span() }, msg)
        })?;
        out.push(TlsListener { addr, config });
    }
    Ok(out)
}

/// The settings of an `https://` upstream; `tls` on a plain one is an error.
pub(super) fn upstream_tls(
    cx: &Ctx,
    raw: Option<&Spanned<RawUpstreamTls>>,
    https: bool,
) -> Result<TlsSettings, ConfigError> {
    let Some(t) = raw else { return Ok(TlsSettings::default()) };
    if !https {
        return Err(cx.err(t.span(), "tls settings apply to https:// upstreams only"));
    }
    let r = t.get_ref();
    let s = TlsSettings {
        ca_file: r.ca_file.as_ref().map(|p| path(cx, p.get_ref()).to_string_lossy().into_owned()),
        insecure_skip_verification: r.insecure_skip_verification.unwrap_or(false),
        server_name: r.server_name.as_ref().map(|n| n.get_ref().clone()),
    };
    if let Some(f) = &r.ca_file {
        crate::upstream::tls::check(&s).map_err(|m| cx.err(f.span(), m))?;
    }
    if let Some(n) = &r.server_name {
        if rustls::pki_types::ServerName::try_from(n.get_ref().as_str()).is_err() {
            return Err(cx.err(n.span(), format!("'{}' is not a valid TLS server name", n.get_ref())));
        }
    }
    Ok(s)
}
