//! Integration URI templates: stage-variable substitution and `{param}` rendering against a
//! naive string-replacement reference.

use crate::gen::Source;
use ringway::integration::uri::{parse, render, substitute_stage_variables};
use std::collections::BTreeMap;

const PIECES: &[&str] = &[
    "http://",
    "unix:",
    "https://",
    "ftp://",
    "127.0.0.1",
    "host",
    "[::1]",
    "[::1",
    ":",
    ":8080",
    ":80",
    ":443",
    ":1023",
    ":99999",
    ":-1",
    "@",
    "/",
    "/base",
    "?",
    "&",
    "=",
    "#",
    "{",
    "}",
    "{proxy}",
    "{id}",
    "{nope}",
    "{}",
    "${stageVariables.host}",
    "${stageVariables.path}",
    "${stageVariables.nope}",
    "${context.x}",
    "${",
    "$",
    "é",
    "%2F",
    "//",
    ":/",
    ":?",
    "/run/app.sock",
    "\u{1}",
    " ",
];

pub fn uri(data: &[u8]) {
    let mut s = Source::new(data);
    let mut text = String::new();
    if s.bool() {
        text.push_str(s.pick(&["http://", "unix:/run/a.sock:", "http://[::1]:8080"]));
    }
    for _ in 0..s.below(12) {
        text.push_str(s.pick(PIECES));
    }
    let params: Vec<String> = ["proxy", "id", "x"].iter().filter(|_| s.bool()).map(|p| p.to_string()).collect();
    let vars: BTreeMap<String, String> = [("host", "10.0.0.1:9000"), ("path", "p/{id}")]
        .iter()
        .filter(|_| s.bool())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

    let resolved = match substitute_stage_variables(&text, &vars) {
        Ok(r) => r,
        Err(e) => {
            assert!(text.contains("${"), "error {e} without any ${{");
            return;
        }
    };
    if !text.contains("${") {
        assert_eq!(resolved, text);
    }
    // Stage variable values here have no "${", so none may survive.
    assert!(!resolved.contains("${stageVariables."), "{text} -> {resolved}");

    let Ok(t) = parse(&resolved, &params) else { return };
    let a = &t.authority;
    assert!(a.port == 0 && a.unix.is_some() || [80, 443].contains(&a.port) || a.port >= 1024);
    let _ = (a.host_header(), a.name());

    // Reference rendering: the target text with each {name} replaced by its captured value.
    let target = match &a.unix {
        Some(sock) => {
            let r = &resolved["unix:".len() + sock.len()..];
            r.strip_prefix(':').unwrap_or(r)
        }
        None => {
            let r = resolved.split_once("://").map_or(resolved.as_str(), |(_, r)| r);
            &r[r.find(['/', '?']).unwrap_or(r.len())..]
        }
    };
    let (path, query) = match target.find('?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, ""),
    };
    let path = if path.is_empty() { "/" } else { path };
    let values: Vec<&str> = params.iter().map(|_| s.pick(&["v", "pets/7/toys", "", "%2e%2e", "a b"])).collect();
    let mut req_path = String::from("/");
    let mut caps = Vec::new();
    for v in &values {
        caps.push(((req_path.len()) as u32, (req_path.len() + v.len()) as u32));
        req_path.push_str(v);
        req_path.push('/');
    }
    let expand = |s: &str| -> String {
        let mut out = s.to_string();
        for (p, v) in params.iter().zip(&values) {
            out = out.replace(&format!("{{{p}}}"), v);
        }
        out
    };
    for (pieces, text) in [(&t.path, path), (&t.query, query)] {
        let mut out = Vec::new();
        render(&mut out, pieces, req_path.as_bytes(), &caps);
        assert_eq!(String::from_utf8(out).unwrap(), expand(text), "uri {resolved:?}");
        // Fewer captures than parameters (never happens in the gateway): no panic.
        render(&mut Vec::new(), pieces, req_path.as_bytes(), &caps[..caps.len() / 2]);
    }
}
