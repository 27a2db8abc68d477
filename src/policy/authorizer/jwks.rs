//! JSON Web Keys: parsed once into ring verifiers, kept per JWKS source in a lock-free map
//! by `kid` (papaya), refreshed off the request path by one background thread.
//!
//! A source (`https://...`, `http://...` or `file:/path`) is fetched when ringway starts
//! (before the workers take traffic), then again when its `Cache-Control: max-age` runs
//! out (clamped to the authorizer's floor and ceiling; no max-age: the ceiling), and when a
//! request presents an unknown `kid` (at most once per floor interval). A failed fetch keeps
//! the last good keys and is retried after the floor interval. Workers only read the map: a
//! refresh inserts the new keys, then removes the ones that are gone.

use crate::http::body::{Decoder, Step};
use crate::http::request::name_is;
use crate::http::response;
use crate::server::shutdown;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// JWKS fetch timeout and size limit (API Gateway's: 1500 ms, 150,000 bytes).
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
pub const MAX_JWKS_BYTES: usize = 150_000;
/// How often the refresher looks for due or requested refreshes.
const TICK: Duration = Duration::from_millis(100);

/// Signature algorithms ringway verifies. `none` and everything else are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    HS256,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "HS256" => Alg::HS256,
            _ => return None,
        })
    }
}

/// A verification key, parsed once.
pub enum Verifier {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa(RsaPublicKeyComponents<Box<[u8]>>),
    /// Uncompressed point (0x04 || x || y) on P-256 (ES256) or P-384 (ES384).
    Ec(Alg, Box<[u8]>),
    Hmac(ring::hmac::Key),
}

pub struct Key {
    /// The JWK's `alg`, when it names one: tokens must use exactly that.
    pub alg: Option<Alg>,
    pub verifier: Verifier,
}

impl Key {
    /// Whether `sig` is a valid `alg` signature of `msg` under this key.
    #[inline]
    pub fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        if self.alg.is_some_and(|a| a != alg) {
            return false;
        }
        match (&self.verifier, alg) {
            (Verifier::Rsa(k), Alg::RS256) => k.verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig).is_ok(),
            (Verifier::Rsa(k), Alg::RS384) => k.verify(&signature::RSA_PKCS1_2048_8192_SHA384, msg, sig).is_ok(),
            (Verifier::Rsa(k), Alg::RS512) => k.verify(&signature::RSA_PKCS1_2048_8192_SHA512, msg, sig).is_ok(),
            (Verifier::Ec(Alg::ES256, p), Alg::ES256) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p).verify(msg, sig).is_ok()
            }
            (Verifier::Ec(Alg::ES384, p), Alg::ES384) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, p).verify(msg, sig).is_ok()
            }
            (Verifier::Hmac(k), Alg::HS256) => ring::hmac::verify(k, msg, sig).is_ok(),
            _ => false,
        }
    }

    /// An HS256 key from a shared secret.
    pub fn hmac(secret: &[u8]) -> Key {
        Key { alg: Some(Alg::HS256), verifier: Verifier::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret)) }
    }
}

fn b64(field: &serde_json::Value, name: &str) -> Result<Vec<u8>, String> {
    let s = field.get(name).and_then(|v| v.as_str()).ok_or_else(|| format!("missing \"{name}\""))?;
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).map_err(|e| format!("\"{name}\" is not base64url: {e}"))
}

fn strip_zeros(v: &[u8]) -> Box<[u8]> {
    let start = v.iter().position(|&b| b != 0).unwrap_or(v.len());
    v[start..].into()
}

/// Keys of a JWKS document by `kid`. Keys for encryption (`use` other than `sig`), of
/// unknown types or without a `kid` are skipped; an unusable document is an error.
pub fn parse_jwks(text: &[u8]) -> Result<Vec<(String, Key)>, String> {
    let doc: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc.get("keys").and_then(|k| k.as_array()).ok_or("no \"keys\" array")?;
    let mut out = Vec::new();
    for k in keys {
        let Some(kid) = k.get("kid").and_then(|v| v.as_str()) else { continue };
        if k.get("use").and_then(|v| v.as_str()).is_some_and(|u| u != "sig") {
            continue;
        }
        let alg = k.get("alg").and_then(|v| v.as_str()).map(|a| Alg::parse(a).ok_or(a));
        let alg = match alg {
            None => None,
            Some(Ok(a)) => Some(a),
            // A key for an algorithm ringway does not verify: never usable.
            Some(Err(_)) => continue,
        };
        let verifier = match k.get("kty").and_then(|v| v.as_str()) {
            Some("RSA") => {
                let (n, e) = (b64(k, "n")?, b64(k, "e")?);
                if n.len() < 256 {
                    return Err(format!("key {kid}: RSA modulus under 2048 bits"));
                }
                Verifier::Rsa(RsaPublicKeyComponents { n: strip_zeros(&n), e: strip_zeros(&e) })
            }
            Some("EC") => {
                let (curve_alg, len) = match k.get("crv").and_then(|v| v.as_str()) {
                    Some("P-256") => (Alg::ES256, 32),
                    Some("P-384") => (Alg::ES384, 48),
                    _ => continue,
                };
                if alg.is_some_and(|a| a != curve_alg) {
                    continue;
                }
                let (x, y) = (b64(k, "x")?, b64(k, "y")?);
                if x.len() != len || y.len() != len {
                    return Err(format!("key {kid}: EC coordinates of the wrong length"));
                }
                let mut p = Vec::with_capacity(1 + 2 * len);
                p.push(4);
                p.extend_from_slice(&x);
                p.extend_from_slice(&y);
                Verifier::Ec(curve_alg, p.into())
            }
            _ => continue,
        };
        out.push((kid.to_string(), Key { alg, verifier }));
    }
    if out.is_empty() {
        return Err("no usable signing key".into());
    }
    Ok(out)
}

/// The keys of one JWKS source, shared by every worker and every plan that names it.
pub struct JwksSlot {
    pub source: String,
    /// Floor and ceiling of the refresh interval, seconds; the floor also spaces the
    /// refreshes an unknown `kid` asks for.
    pub min_refresh: i64,
    pub max_refresh: i64,
    keys: papaya::HashMap<Box<str>, Key>,
    loaded: AtomicBool,
    /// Unix seconds: the next scheduled refresh, the last attempt.
    next_at: AtomicI64,
    last_attempt: AtomicI64,
    wanted: AtomicBool,
}

impl JwksSlot {
    fn new(source: &str, min_refresh: i64, max_refresh: i64) -> JwksSlot {
        JwksSlot {
            source: source.to_string(),
            min_refresh,
            max_refresh,
            keys: papaya::HashMap::new(),
            loaded: AtomicBool::new(false),
            next_at: AtomicI64::new(0),
            last_attempt: AtomicI64::new(i64::MIN / 2),
            wanted: AtomicBool::new(false),
        }
    }

    /// Runs `f` on the key `kid`; None when there is no such key.
    #[inline]
    pub fn with_key<R>(&self, kid: &str, f: impl FnOnce(&Key) -> R) -> Option<R> {
        let g = self.keys.pin();
        g.get(kid).map(f)
    }

    /// An unknown `kid` was presented: ask the refresher for a fetch, at most once per floor.
    #[inline]
    pub fn request_refresh(&self, now: i64) {
        if now - self.last_attempt.load(Ordering::Relaxed) >= self.min_refresh {
            self.wanted.store(true, Ordering::Relaxed);
        }
    }

    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Makes `keys` the current set.
    pub fn install(&self, keys: Vec<(String, Key)>) {
        let g = self.keys.pin();
        let names: Vec<Box<str>> = keys.iter().map(|(k, _)| k.as_str().into()).collect();
        for (kid, key) in keys {
            g.insert(kid.into(), key);
        }
        g.retain(|k, _| names.contains(k));
        self.loaded.store(true, Ordering::Release);
    }

    fn due(&self, now: i64) -> bool {
        self.wanted.load(Ordering::Relaxed) || now >= self.next_at.load(Ordering::Relaxed)
    }

    /// Fetches and installs the keys. Errors keep the last good set.
    fn refresh(&self, now: i64) -> Result<usize, String> {
        self.last_attempt.store(now, Ordering::Relaxed);
        self.wanted.store(false, Ordering::Relaxed);
        let result = fetch(&self.source).and_then(|(body, max_age)| Ok((parse_jwks(&body)?, max_age)));
        match result {
            Ok((keys, max_age)) => {
                let n = keys.len();
                self.install(keys);
                let every = max_age.map_or(self.max_refresh, |a| a as i64).clamp(self.min_refresh, self.max_refresh);
                self.next_at.store(now + every, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                self.next_at.store(now + self.min_refresh, Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// Every JWKS source compiled so far. Only config compilation and the refresher take this
/// lock, never a request.
static SLOTS: Mutex<Vec<Arc<JwksSlot>>> = Mutex::new(Vec::new());
static STARTED: AtomicBool = AtomicBool::new(false);

/// The shared slot for `source` with these refresh bounds (a reloaded plan naming the same
/// source keeps its keys).
pub fn slot(source: &str, min_refresh: i64, max_refresh: i64) -> Arc<JwksSlot> {
    let mut all = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|s| Arc::strong_count(s) > 1 || !STARTED.load(Ordering::Relaxed));
    if let Some(s) =
        all.iter().find(|s| s.source == source && s.min_refresh == min_refresh && s.max_refresh == max_refresh)
    {
        return s.clone();
    }
    let s = Arc::new(JwksSlot::new(source, min_refresh, max_refresh));
    all.push(s.clone());
    s
}

/// Slots some plan still uses.
fn live() -> Vec<Arc<JwksSlot>> {
    let all = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    all.iter().filter(|s| Arc::strong_count(s) > 1).cloned().collect()
}

fn refresh_logged(s: &JwksSlot, now: i64) {
    let first = !s.loaded();
    match s.refresh(now) {
        Ok(n) if first => crate::server::worker::log(&format!("jwks {}: {n} keys", s.source)),
        Ok(_) => {}
        Err(e) if first => {
            crate::server::worker::log(&format!("jwks {}: {e}; tokens are refused until it loads", s.source))
        }
        Err(e) => {
            crate::server::worker::log(&format!("jwks {}: refresh failed ({e}); keeping the last keys", s.source))
        }
    }
}

/// Fetches every JWKS the plan names (before the workers take traffic), then starts the
/// refresher thread, which follows reloads. Called once by `server::serve`.
pub fn start() {
    if STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    let now = crate::clock::unix_now();
    for s in live() {
        refresh_logged(&s, now);
    }
    let spawned = std::thread::Builder::new().name("ringway-jwks".into()).spawn(|| {
        while !shutdown::requested() {
            std::thread::sleep(TICK);
            let now = crate::clock::unix_now();
            for s in live() {
                if s.due(now) {
                    refresh_logged(&s, now);
                }
            }
        }
    });
    if let Err(e) = spawned {
        crate::server::worker::log(&format!("cannot start the JWKS refresher: {e}"));
    }
}

/// The document at `source` and its `Cache-Control: max-age`, if any.
pub fn fetch(source: &str) -> Result<(Vec<u8>, Option<u64>), String> {
    if let Some(path) = source.strip_prefix("file:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        let body = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("over {MAX_JWKS_BYTES} bytes"));
        }
        return Ok((body, None));
    }
    let (tls, rest) = if let Some(r) = source.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = source.strip_prefix("http://") {
        (false, r)
    } else {
        return Err("unsupported scheme".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = split_host_port(authority, if tls { 443 } else { 80 })?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, FETCH_TIMEOUT).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_read_timeout(Some(FETCH_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(FETCH_TIMEOUT));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nUser-Agent: ringway\r\nConnection: close\r\n\r\n"
    );
    let deadline = std::time::Instant::now() + FETCH_TIMEOUT;
    let raw = if tls {
        let cfg = tls_config()?;
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| format!("bad TLS name {host}"))?;
        let conn = rustls::ClientConnection::new(cfg, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        exchange(&mut s, req.as_bytes(), deadline)?
    } else {
        let mut s = tcp;
        exchange(&mut s, req.as_bytes(), deadline)?
    };
    parse_response(&raw)
}

fn split_host_port(authority: &str, default: u16) -> Result<(String, u16), String> {
    if let Some(r) = authority.strip_prefix('[') {
        let end = r.find(']').ok_or("bad IPv6 address")?;
        let port = r[end + 1..].strip_prefix(':').map_or(Ok(default), |p| p.parse().map_err(|_| "bad port"))?;
        return Ok((r[..end].to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), p.parse().map_err(|_| format!("bad port in {authority}"))?)),
        None => Ok((authority.to_string(), default)),
    }
}

fn exchange(s: &mut (impl Read + Write), req: &[u8], deadline: std::time::Instant) -> Result<Vec<u8>, String> {
    s.write_all(req).map_err(|e| format!("send: {e}"))?;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if std::time::Instant::now() > deadline {
            return Err("timed out".into());
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_JWKS_BYTES + 16 * 1024 {
                    return Err(format!("over {MAX_JWKS_BYTES} bytes"));
                }
            }
            // A TLS peer that closes without close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => return Ok(out),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// Status 200, the body (plain, length-delimited or chunked) and `max-age`. Head and
/// framing go through the proxy's own parser and body decoder, so the same rules hold
/// (RFC 9112: no Transfer-Encoding in HTTP/1.0, not both framings, only chunked).
fn parse_response(raw: &[u8]) -> Result<(Vec<u8>, Option<u64>), String> {
    let mut fields = Vec::new();
    let resp = match response::parse(raw, false, &mut fields) {
        Ok(Some(r)) => r,
        Ok(None) => return Err("malformed response".into()),
        Err(e) => return Err(e.0.into()),
    };
    if resp.status != 200 {
        return Err(format!("status {}", resp.status));
    }
    let mut max_age = None;
    for f in fields.iter().filter(|f| name_is(f.name(raw), b"cache-control")) {
        let v = String::from_utf8_lossy(f.value(raw));
        for d in v.split(',').map(str::trim) {
            let lower = d.to_ascii_lowercase();
            if let Some(a) = lower.strip_prefix("max-age=") {
                max_age = a.trim_matches('"').parse().ok();
            } else if lower == "no-cache" || lower == "no-store" {
                max_age = Some(0);
            }
        }
    }
    // The whole answer is in `raw` (read to the end): running out of input ends a body read
    // to close and truncates any other.
    let mut body = Vec::new();
    let mut rest = &raw[resp.len..];
    if let Some(mut d) = resp.body {
        loop {
            let (used, step) = d.step(rest).map_err(|e| format!("body: {e:?}"))?;
            match step {
                Step::Data(r) => body.extend_from_slice(&rest[r]),
                Step::NeedMore if matches!(d, Decoder::Eof) => break,
                Step::NeedMore => return Err("truncated body".into()),
                Step::Done => break,
            }
            rest = &rest[used..];
            if body.len() > MAX_JWKS_BYTES {
                break;
            }
        }
    }
    if body.len() > MAX_JWKS_BYTES {
        return Err(format!("over {MAX_JWKS_BYTES} bytes"));
    }
    Ok((body, max_age))
}

/// Client config for `https://` sources: the system trust store (or `SSL_CERT_FILE`), as
/// for upstreams; built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> = std::sync::OnceLock::new();
    CONFIG.get_or_init(crate::upstream::tls::system_client_config).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_max_age_and_chunks() {
        let raw = b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=120\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (body, age) = parse_response(raw).unwrap();
        assert_eq!((body.as_slice(), age), (&b"abcde"[..], Some(120)));
        let raw = b"HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n";
        assert!(parse_response(raw).is_err());
    }

    #[test]
    fn faulty_framing_is_refused() {
        let raw = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap_err(), "Transfer-Encoding in an HTTP/1.0 response");
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap_err(), "both Content-Length and Transfer-Encoding");
        // HTTP/1.0 with a length, and HTTP/1.0 read to the end, stay fine.
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap().0, b"{}");
        assert_eq!(parse_response(b"HTTP/1.0 200 OK\r\n\r\n{}").unwrap().0, b"{}");
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let doc = br#"{"keys":[{"kty":"oct","kid":"a","k":"AA"},{"kty":"EC","kid":"e","use":"enc","crv":"P-256","x":"","y":""}]}"#;
        assert!(parse_jwks(doc).is_err());
    }
}
