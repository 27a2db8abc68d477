//! JWT validation as API Gateway's JWT authorizers do it: decode, find the key by `kid`,
//! verify the signature, then `iss`, `aud` (or `client_id`), `exp`/`nbf`/`iat` within the
//! clock skew, and the route's scopes against `scope` or `scp`.
//!
//! The hot path decodes into the caller's reused buffers and parses header and claims
//! with borrowed strings: verifying with a cached key allocates nothing here (ring's RSA
//! arithmetic aside).

use super::jwks::{Alg, JwksSlot, Key};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

/// Where the keys come from.
pub enum KeySource {
    Jwks(Arc<JwksSlot>),
    /// HS256 with a configured shared secret.
    Secret(Key),
}

pub struct JwtConfig {
    pub issuer: String,
    /// `aud` or `client_id` must be one of these (empty: not checked).
    pub audiences: Vec<String>,
    /// The token must carry at least one of these (empty: none needed).
    pub scopes: Vec<String>,
    /// Seconds of clock skew allowed for `exp`, `nbf` and `iat`.
    pub skew: i64,
    pub keys: KeySource,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401, with this description in `WWW-Authenticate`.
    Invalid(&'static str),
    /// 403: a valid token without any of the route's scopes.
    Scope,
}

/// Reused decode buffers; after a successful `verify`, `claims` holds the payload JSON.
#[derive(Default)]
pub struct Scratch {
    pub header: Vec<u8>,
    pub sig: Vec<u8>,
    pub claims: Vec<u8>,
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Text<'a>,
    #[serde(borrow, default)]
    kid: Option<Text<'a>>,
}

/// A string borrowed from the input when it has no escapes (serde's own `Cow` support
/// does not reach through `Option`).
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// A string or a list of strings (`aud`, `scp`), borrowed when unescaped.
#[derive(Default)]
struct StrList<'a>(SmallVec<[Text<'a>; 4]>);

impl<'de: 'a, 'a> Deserialize<'de> for StrList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = StrList<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrList(smallvec::smallvec![Text(Cow::Borrowed(v))]))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrList(smallvec::smallvec![Text(Cow::Owned(v.to_string()))]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = SmallVec::new();
                while let Some(s) = seq.next_element::<Text<'a>>()? {
                    out.push(s);
                }
                Ok(StrList(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow, default)]
    iss: Option<Text<'a>>,
    #[serde(borrow, default)]
    aud: Option<StrList<'a>>,
    #[serde(borrow, default)]
    client_id: Option<Text<'a>>,
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(borrow, default)]
    scope: Option<Text<'a>>,
    #[serde(borrow, default)]
    scp: Option<StrList<'a>>,
}

/// The token in an identity value: `Bearer <token>` or the bare token.
#[inline]
pub fn token_of(value: &[u8]) -> &[u8] {
    let v = value.trim_ascii();
    if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
        v[7..].trim_ascii_start()
    } else {
        v
    }
}

fn decode_into(part: &[u8], out: &mut Vec<u8>) -> Result<(), Denied> {
    out.clear();
    URL_SAFE_NO_PAD.decode_vec(part, out).map_err(|_| Denied::Invalid("the token is not base64url"))
}

/// Verifies `token` (the bare JWT) at unix time `now`.
pub fn verify(cfg: &JwtConfig, token: &[u8], now: i64, s: &mut Scratch) -> Result<(), Denied> {
    let mut parts = token.splitn(3, |&b| b == b'.');
    let (Some(h64), Some(p64), Some(s64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Denied::Invalid("the token is not a JWT"));
    };
    if s64.contains(&b'.') || h64.is_empty() || p64.is_empty() {
        return Err(Denied::Invalid("the token is not a JWT"));
    }
    decode_into(h64, &mut s.header)?;
    let header: Header = serde_json::from_slice(&s.header).map_err(|_| Denied::Invalid("bad token header"))?;
    let alg = Alg::parse(&header.alg).ok_or(Denied::Invalid("unsupported signing algorithm"))?;
    decode_into(s64, &mut s.sig)?;
    let signed = &token[..h64.len() + 1 + p64.len()];
    let good = match &cfg.keys {
        KeySource::Secret(k) => alg == Alg::HS256 && k.verify(alg, signed, &s.sig),
        KeySource::Jwks(slot) => {
            if alg == Alg::HS256 {
                return Err(Denied::Invalid("unsupported signing algorithm"));
            }
            let kid = header.kid.as_deref().ok_or(Denied::Invalid("the token has no kid"))?;
            match slot.with_key(kid, |k| k.verify(alg, signed, &s.sig)) {
                Some(ok) => ok,
                None => {
                    slot.request_refresh(now);
                    return Err(Denied::Invalid("unknown kid"));
                }
            }
        }
    };
    if !good {
        return Err(Denied::Invalid("signature verification failed"));
    }
    decode_into(p64, &mut s.claims)?;
    let c: Claims = serde_json::from_slice(&s.claims).map_err(|_| Denied::Invalid("bad token claims"))?;
    if c.iss.as_deref() != Some(cfg.issuer.as_str()) {
        return Err(Denied::Invalid("the token has an invalid issuer"));
    }
    if !cfg.audiences.is_empty() {
        let listed = |a: &str| cfg.audiences.iter().any(|x| x == a);
        let aud_ok = c.aud.as_ref().is_some_and(|l| l.0.iter().any(|a| listed(a)));
        if !aud_ok && !c.client_id.as_deref().is_some_and(listed) {
            return Err(Denied::Invalid("the token has an invalid audience"));
        }
    }
    let now = now as f64;
    let skew = cfg.skew as f64;
    match c.exp {
        None => return Err(Denied::Invalid("the token has no exp")),
        Some(exp) if now > exp + skew => return Err(Denied::Invalid("the token has expired")),
        _ => {}
    }
    if c.nbf.is_some_and(|nbf| nbf > now + skew) {
        return Err(Denied::Invalid("the token is not valid yet"));
    }
    if c.iat.is_some_and(|iat| iat > now + skew) {
        return Err(Denied::Invalid("the token was issued in the future"));
    }
    if !cfg.scopes.is_empty() {
        let wanted = |t: &str| cfg.scopes.iter().any(|s| s == t);
        let in_scope = c.scope.as_deref().is_some_and(|s| s.split_ascii_whitespace().any(wanted));
        let in_scp = c.scp.as_ref().is_some_and(|l| l.0.iter().any(|s| s.split_ascii_whitespace().any(wanted)));
        if !in_scope && !in_scp {
            return Err(Denied::Scope);
        }
    }
    Ok(())
}

/// The token's scopes (`scope` split on spaces, or `scp`), for events.
pub fn scopes(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let mut out = Vec::new();
    for k in ["scope", "scp"] {
        match claims.get(k) {
            Some(serde_json::Value::String(s)) => out.extend(s.split_ascii_whitespace().map(str::to_string)),
            Some(serde_json::Value::Array(a)) => out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_string))),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    fn hs256(secret: &[u8], header: &str, claims: &str) -> String {
        let signing = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&k, signing.as_bytes());
        format!("{signing}.{}", b64(tag.as_ref()))
    }

    fn cfg() -> JwtConfig {
        JwtConfig {
            issuer: "https://idp".into(),
            audiences: vec!["api".into()],
            scopes: vec!["read".into()],
            skew: 60,
            keys: KeySource::Secret(Key::hmac(b"secret")),
        }
    }

    #[test]
    fn hs256_tokens_are_checked_claim_by_claim() {
        let c = cfg();
        let mut s = Scratch::default();
        let h = r#"{"alg":"HS256","typ":"JWT"}"#;
        let now = 1_000_000;
        let good = hs256(b"secret", h, r#"{"iss":"https://idp","aud":["x","api"],"exp":1000100,"scope":"a read"}"#);
        assert_eq!(verify(&c, good.as_bytes(), now, &mut s), Ok(()));
        assert!(s.claims.starts_with(b"{\"iss\""));
        let cases = [
            (r#"{"iss":"https://idp","aud":"api","exp":999000,"scope":"read"}"#, "the token has expired"),
            (
                r#"{"iss":"https://idp","aud":"api","exp":1000100,"nbf":1000500,"scope":"read"}"#,
                "the token is not valid yet",
            ),
            (r#"{"iss":"https://other","aud":"api","exp":1000100,"scope":"read"}"#, "the token has an invalid issuer"),
            (r#"{"iss":"https://idp","aud":"web","exp":1000100,"scope":"read"}"#, "the token has an invalid audience"),
            (r#"{"iss":"https://idp","aud":"api","scope":"read"}"#, "the token has no exp"),
        ];
        for (claims, why) in cases {
            let t = hs256(b"secret", h, claims);
            assert_eq!(verify(&c, t.as_bytes(), now, &mut s), Err(Denied::Invalid(why)), "{claims}");
        }
        // Escaped strings (a JSON encoder escaping '/') decode like plain ones.
        let t = hs256(b"secret", h, r#"{"iss":"https:\/\/idp","aud":"api","exp":1000100,"scope":"read"}"#);
        assert_eq!(verify(&c, t.as_bytes(), now, &mut s), Ok(()));
        // Within the skew; client_id instead of aud; scp as a list.
        let t = hs256(b"secret", h, r#"{"iss":"https://idp","client_id":"api","exp":999950,"scp":["read"]}"#);
        assert_eq!(verify(&c, t.as_bytes(), now, &mut s), Ok(()));
        let t = hs256(b"secret", h, r#"{"iss":"https://idp","aud":"api","exp":1000100,"scope":"write"}"#);
        assert_eq!(verify(&c, t.as_bytes(), now, &mut s), Err(Denied::Scope));
        let t = hs256(b"other", h, r#"{"iss":"https://idp","aud":"api","exp":1000100,"scope":"read"}"#);
        assert_eq!(verify(&c, t.as_bytes(), now, &mut s), Err(Denied::Invalid("signature verification failed")));
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(br#"{"iss":"https://idp"}"#));
        assert_eq!(verify(&c, none.as_bytes(), now, &mut s), Err(Denied::Invalid("unsupported signing algorithm")));
        assert_eq!(token_of(b"Bearer abc"), b"abc");
        assert_eq!(token_of(b" abc "), b"abc");
    }
}
