//! The admin listener (`server.admin_listen`): operator endpoints, off the data path, on
//! one plain thread with blocking sockets, one connection at a time, `Connection: close`.
//!
//! - `GET /healthz`: the process is alive (200 while it can answer at all).
//! - `GET /readyz`: 200 once every worker is up with the config loaded; 503 before that
//!   and while draining for shutdown (load balancers stop sending new requests).
//! - `GET /config`: the compiled route table, the config's source and its checksum.
//! - `GET /metrics`: Prometheus text exposition; OpenMetrics when Accept asks for
//!   `application/openmetrics-text`.
//! - `GET /debug/latency`: p50/p90/p99/p99.9/max per route, from the exact histograms.
//! - `POST /reload`: reloads the config file (as SIGHUP); 200 or 400 with the error.
//! - `GET /cache`: entries and bytes held by the response cache.
//! - `POST /cache/flush[?stage=NAME][&prefix=KEY-PREFIX]`: drops cached responses. Keys
//!   read `{stage} {METHOD} {resource} ...`; `stage` flushes one stage, `prefix` narrows
//!   it (`stage=prod&prefix=GET%20/pets` flushes `prod GET /pets*`). No parameter: all.

use crate::config::Plan;
use crate::http::request;
use crate::policy::cache_store::Store;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAX_REQUEST: usize = 16 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What the admin endpoints read besides the current plan generation.
pub struct Admin {
    pub cache: Arc<Store>,
    /// Set once every worker has started.
    pub ready: Arc<AtomicBool>,
}

/// Binds `addr` and serves it on a new thread until the process exits.
/// `inherited`: the admin socket handed over by the process this one replaces.
pub fn start(addr: SocketAddr, admin: Admin, inherited: Option<TcpListener>) -> Result<(), String> {
    let listener = match inherited {
        Some(l) => {
            l.set_nonblocking(false).map_err(|e| format!("admin_listen {addr}: {e}"))?;
            l
        }
        None => TcpListener::bind(addr).map_err(|e| format!("admin_listen {addr}: {e}"))?,
    };
    crate::server::handover::register_admin(addr, &listener);
    std::thread::Builder::new()
        .name("ringway-admin".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &admin);
            }
        })
        .map_err(|e| format!("cannot start the admin thread: {e}"))?;
    Ok(())
}

fn serve(mut s: TcpStream, admin: &Admin) -> std::io::Result<()> {
    let Some(gen) = crate::server::reload::current() else { return Ok(()) };
    let (plan, cache, metrics) = (&*gen.plan, &*admin.cache, &*gen.metrics);
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let mut fields = Vec::new();
    let head = loop {
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            return Ok(());
        }
        len += n;
        match request::parse(&buf[..len], MAX_REQUEST, MAX_REQUEST, &mut fields) {
            Ok(Some(h)) => break h,
            Ok(None) if len < MAX_REQUEST => continue,
            _ => return reply(&mut s, 400, r#"{"message":"bad request"}"#),
        }
    };
    let method = &buf[head.method_range.clone()];
    let path = &buf[head.path.clone()];
    let query = head.query.clone().map_or(&[][..], |q| &buf[q]);
    match (method, path) {
        (b"GET", b"/healthz") => reply(&mut s, 200, r#"{"status":"ok"}"#),
        (b"GET", b"/readyz") => {
            if crate::server::shutdown::requested() {
                reply(&mut s, 503, r#"{"status":"draining"}"#)
            } else if admin.ready.load(Ordering::Acquire) {
                reply(&mut s, 200, &format!(r#"{{"status":"ready","workers":{}}}"#, plan.server.workers))
            } else {
                reply(&mut s, 503, r#"{"status":"starting"}"#)
            }
        }
        (b"GET", b"/config") => reply(&mut s, 200, &config_json(plan)),
        (b"GET", b"/metrics") => {
            use crate::observe::metrics::{CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_PROMETHEUS};
            let accept =
                fields.iter().find(|f| f.name(&buf).eq_ignore_ascii_case(b"accept")).map_or(&[][..], |f| f.value(&buf));
            let open = memchr::memmem::find(accept, b"application/openmetrics-text").is_some();
            let mut body = String::with_capacity(16 * 1024);
            if plan.metrics.enabled {
                metrics.render(&mut body, open);
            } else if open {
                body.push_str("# EOF\n");
            }
            let ctype = if open { CONTENT_TYPE_OPENMETRICS } else { CONTENT_TYPE_PROMETHEUS };
            reply_typed(&mut s, 200, ctype, &body)
        }
        (b"GET", b"/debug/latency") => {
            let mut body = String::new();
            metrics.latency_json(&mut body);
            reply(&mut s, 200, &body)
        }
        (b"POST", b"/reload") => match crate::server::reload_now() {
            Ok(summary) => reply(&mut s, 200, &serde_json::json!({ "result": "ok", "message": summary }).to_string()),
            Err(e) => reply(&mut s, 400, &serde_json::json!({ "result": "failed", "message": e }).to_string()),
        },
        (b"GET", b"/cache") => {
            let (entries, bytes) = cache.usage();
            let body = format!(r#"{{"entries":{entries},"bytes":{bytes},"max_bytes":{}}}"#, cache.max_bytes);
            reply(&mut s, 200, &body)
        }
        (b"POST", b"/cache/flush") => {
            let mut prefix = Vec::new();
            if let Some(stage) = param(query, b"stage") {
                if plan.staged && !plan.stages.iter().any(|st| st.name.as_bytes() == &stage[..]) {
                    return reply(&mut s, 404, r#"{"message":"unknown stage"}"#);
                }
                prefix.extend_from_slice(&stage);
                prefix.push(b' ');
            } else if !plan.staged {
                prefix.push(b' ');
            }
            if let Some(p) = param(query, b"prefix") {
                prefix.extend_from_slice(&p);
            }
            let n = cache.flush(&prefix);
            reply(&mut s, 200, &format!(r#"{{"flushed":{n}}}"#))
        }
        (_, b"/cache" | b"/cache/flush" | b"/healthz" | b"/readyz" | b"/config") => {
            reply(&mut s, 405, r#"{"message":"method not allowed"}"#)
        }
        _ => reply(&mut s, 404, r#"{"message":"not found"}"#),
    }
}

/// `{"source", "checksum", "routes": [...], "text"}`: what is loaded, row by row.
fn config_json(plan: &Plan) -> String {
    let mut rows = Vec::new();
    for line in plan.route_table().lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 4 {
            rows.push(serde_json::json!({
                "stage": cols[0], "method": cols[1], "path": cols[2], "integration": cols[3..].join(" "),
            }));
        }
    }
    serde_json::json!({
        "source": plan.source,
        "checksum": plan.checksum,
        "workers": plan.server.workers,
        "driver": plan.server.driver.as_str(),
        "routes": rows,
        "text": plan.source_text,
    })
    .to_string()
}

fn reply(s: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    reply_typed(s, status, "application/json", body)
}

fn reply_typed(s: &mut TcpStream, status: u16, ctype: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        crate::http::write::reason(status),
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body.as_bytes())
}

/// The percent-decoded value of the last `name=` in a query string.
fn param(query: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    query
        .split(|&b| b == b'&')
        .filter_map(|pair| {
            let (n, v) = pair.split_at(memchr::memchr(b'=', pair)?);
            (n == name).then(|| crate::http::percent::decode(&v[1..], true))
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_decoded() {
        assert_eq!(param(b"stage=prod&prefix=GET%20/pets", b"prefix").unwrap(), b"GET /pets");
        assert_eq!(param(b"prefix=GET+/a%2", b"prefix").unwrap(), b"GET /a%2");
        assert_eq!(param(b"stage=a&stage=b", b"stage").unwrap(), b"b");
        assert!(param(b"stage", b"stage").is_none());
    }
}
