//! Authorizers against the real binary: JWT validation with tokens signed here (RSA keys
//! from the openssl CLI, EC keys and HMAC from ring) and a JWKS served over HTTP by a test
//! upstream (rotation, outage); Lambda-style TOKEN and REQUEST authorizers as real
//! invoke-protocol processes, with their result cache observed by counting invocations.
mod support;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

const ISS: &str = "https://idp.example";

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A 2048-bit RSA key from the openssl CLI (ring cannot generate RSA keys).
fn rsa_key() -> RsaKeyPair {
    // PKCS#1 DER (RSAPrivateKey), which ring reads with `from_der`.
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl rsa -traditional -outform DER",
        ])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    RsaKeyPair::from_der(&out.stdout).expect("DER RSA key")
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, &'static str),
    Hmac(Vec<u8>),
}

fn ec_key(p384: bool) -> Signer {
    let rng = SystemRandom::new();
    let alg =
        if p384 { &signature::ECDSA_P384_SHA384_FIXED_SIGNING } else { &signature::ECDSA_P256_SHA256_FIXED_SIGNING };
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap(), if p384 { "P-384" } else { "P-256" })
}

impl Signer {
    fn jwk(&self, kid: &str) -> Value {
        match self {
            Signer::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
            }
            Signer::Ec(k, crv) => {
                let p = k.public_key().as_ref();
                let n = (p.len() - 1) / 2;
                json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(&p[1..1 + n]), "y": b64(&p[1 + n..])})
            }
            Signer::Hmac(_) => unreachable!(),
        }
    }

    fn sign(&self, alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(k) = kid {
            header["kid"] = json!(k);
        }
        let signing = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Rsa(k) => {
                let enc = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(enc, &rng, signing.as_bytes(), &mut sig).unwrap();
                sig
            }
            Signer::Ec(k, _) => k.sign(&rng, signing.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Hmac(s) => ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, s), signing.as_bytes())
                .as_ref()
                .to_vec(),
        };
        format!("{signing}.{}", b64(&sig))
    }
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": now() + 600, "iat": now() - 5, "scope": "pets:read profile"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// A JWKS endpoint: the document can be changed, the server taken "down" (503), and
/// fetches are counted.
struct Idp {
    up: Upstream,
    doc: Arc<Mutex<Value>>,
    down: Arc<AtomicBool>,
    fetches: Arc<AtomicUsize>,
}

impl Idp {
    fn start(keys: Vec<Value>, max_age: u32) -> Idp {
        let doc = Arc::new(Mutex::new(json!({ "keys": keys })));
        let down = Arc::new(AtomicBool::new(false));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (d, dn, f) = (doc.clone(), down.clone(), fetches.clone());
        let up = Upstream::start(move |req| {
            f.fetch_add(1, Ordering::SeqCst);
            if dn.load(Ordering::SeqCst) || req.target != "/.well-known/jwks.json" {
                return Reply::new(503).body(b"down");
            }
            Reply::ok(&d.lock().unwrap().to_string())
                .header("Content-Type", "application/json")
                .header("Cache-Control", &format!("public, max-age={max_age}"))
        });
        Idp { up, doc, down, fetches }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.up.hostport())
    }
}

/// A mock route that shows what the authorizer passed on.
/// An empty `authorizer`: the route has none of its own (the stage's applies).
fn whoami(path: &str, authorizer: &str) -> String {
    let line = if authorizer.is_empty() { String::new() } else { format!("authorizer = {authorizer}") };
    format!(
        r#"
[[routes]]
path = "{path}"
method = "GET"
{line}
[routes.integration]
type = "mock"
request_templates = {{ "application/json" = '{{"statusCode": 200}}' }}
[[routes.integration.responses]]
status = 200
response_templates = {{ "application/json" = '''{{"sub": "$context.authorizer.claims.sub", "principal": "$context.authorizer.principalId", "user": "$context.authorizer.user", "tier": "$context.authorizer.tier"}}''' }}
"#
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn get_auth(g: &Gateway, path: &str, token: &str) -> Response {
    let h = bearer(token);
    g.send("GET", path, &[("Authorization", h.as_str())], b"")
}

fn assert_unauthorized(r: &Response, why: &str) {
    assert_eq!(r.status, 401, "{why}: {r}");
    assert_eq!(r.text(), r#"{"message":"Unauthorized"}"#, "{why}");
    let www = r.header("www-authenticate").unwrap_or_else(|| panic!("{why}: no WWW-Authenticate: {r}"));
    assert!(www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""), "{why}: {www}");
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn jwt_tokens_of_every_algorithm_pass_and_their_claims_reach_templates_and_logs() {
    let rsa = Signer::Rsa(rsa_key());
    let (p256, p384) = (ec_key(false), ec_key(true));
    let idp = Idp::start(vec![rsa.jwk("r1"), p256.jwk("e1"), p384.jwk("e2")], 300);
    let log = temp_path("authz-log", "log");
    let auth = format!(r#"{{ type = "jwt", issuer = "{ISS}", audience = ["api", "other"], jwks = "{}" }}"#, idp.url());
    let g = Gateway::start(&format!(
        "[access_log]\ntarget = \"{}\"\nformat = '$context.authorizer.claims.sub $context.authorizer.claims.scope $context.status'\n{}",
        log.display(),
        whoami("/me", &auth)
    ));
    for (signer, alg, kid) in [
        (&rsa, "RS256", "r1"),
        (&rsa, "RS384", "r1"),
        (&rsa, "RS512", "r1"),
        (&p256, "ES256", "e1"),
        (&p384, "ES384", "e2"),
    ] {
        let t = signer.sign(alg, Some(kid), &claims(json!({"sub": format!("user-{alg}")})));
        let r = get_auth(&g, "/me", &t);
        assert_eq!(r.status, 200, "{alg}: {r}");
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        assert_eq!(v["sub"], format!("user-{alg}"), "{alg}");
        assert_eq!(v["principal"], format!("user-{alg}"), "{alg}");
    }
    // The bare token (no "Bearer ") is accepted too.
    let t = rsa.sign("RS256", Some("r1"), &claims(json!({"sub": "bare"})));
    let r = g.send("GET", "/me", &[("Authorization", t.as_str())], b"");
    assert_eq!(r.status, 200, "{r}");
    wait_for("access log lines", Duration::from_secs(5), || {
        std::fs::read_to_string(&log).unwrap_or_default().lines().count() >= 6
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().any(|l| l == "user-ES384 pets:read profile 200"), "{text}");
    assert!(text.lines().any(|l| l == "bare pets:read profile 200"), "{text}");
    let _ = std::fs::remove_file(&log);
}

#[test]
fn jwt_failures_are_401_with_a_bearer_challenge_and_missing_scope_is_403() {
    let rsa = Signer::Rsa(rsa_key());
    let other = Signer::Rsa(rsa_key());
    let idp = Idp::start(vec![rsa.jwk("r1")], 300);
    let auth = format!(
        r#"{{ type = "jwt", issuer = "{ISS}", audience = ["api"], jwks = "{}", scopes = ["pets:read", "pets:write"], clock_skew_s = 30 }}"#,
        idp.url()
    );
    let g = Gateway::start(&whoami("/pets", &auth));
    let ok = rsa.sign("RS256", Some("r1"), &claims(json!({})));
    assert_eq!(get_auth(&g, "/pets", &ok).status, 200);
    // Within the clock skew: still fine.
    let t = rsa.sign("RS256", Some("r1"), &claims(json!({"exp": now() - 10})));
    assert_eq!(get_auth(&g, "/pets", &t).status, 200);
    // client_id instead of aud; scp instead of scope.
    let t = rsa.sign(
        "RS256",
        Some("r1"),
        &claims(json!({"aud": null, "client_id": "api", "scope": null, "scp": ["pets:write"]})),
    );
    assert_eq!(get_auth(&g, "/pets", &t).status, 200);

    let cases: Vec<(&str, String)> = vec![
        ("expired", rsa.sign("RS256", Some("r1"), &claims(json!({"exp": now() - 120})))),
        ("not yet valid", rsa.sign("RS256", Some("r1"), &claims(json!({"nbf": now() + 120})))),
        ("issued in the future", rsa.sign("RS256", Some("r1"), &claims(json!({"iat": now() + 120})))),
        ("no exp", rsa.sign("RS256", Some("r1"), &claims(json!({"exp": null})))),
        ("wrong iss", rsa.sign("RS256", Some("r1"), &claims(json!({"iss": "https://evil.example"})))),
        ("wrong aud", rsa.sign("RS256", Some("r1"), &claims(json!({"aud": ["web"]})))),
        ("bad signature", other.sign("RS256", Some("r1"), &claims(json!({})))),
        ("unknown kid", rsa.sign("RS256", Some("nope"), &claims(json!({})))),
        ("no kid", rsa.sign("RS256", None, &claims(json!({})))),
        ("hs256 with the public key", {
            // Algorithm confusion: an HMAC over the token keyed with public key bytes.
            let Signer::Rsa(k) = &rsa else { unreachable!() };
            Signer::Hmac(k.public().as_ref().to_vec()).sign("HS256", Some("r1"), &claims(json!({})))
        }),
        ("alg none", {
            let h = b64(br#"{"alg":"none","kid":"r1"}"#);
            format!("{h}.{}.", b64(claims(json!({})).to_string().as_bytes()))
        }),
        ("tampered claims", {
            let parts: Vec<&str> = ok.split('.').collect();
            let evil = b64(claims(json!({"sub": "mallory"})).to_string().as_bytes());
            format!("{}.{evil}.{}", parts[0], parts[2])
        }),
        ("garbage", "not-a-jwt".to_string()),
    ];
    for (why, token) in &cases {
        assert_unauthorized(&get_auth(&g, "/pets", token), why);
    }
    let r = g.get("/pets");
    assert_unauthorized(&r, "missing header");
    let r = g.send("GET", "/pets", &[("Authorization", "Bearer ")], b"");
    assert_unauthorized(&r, "empty token");

    let t = rsa.sign("RS256", Some("r1"), &claims(json!({"scope": "profile"})));
    let r = get_auth(&g, "/pets", &t);
    assert_eq!((r.status, r.text()), (403, r#"{"message":"Forbidden"}"#.to_string()), "{r}");
    assert!(r.header("www-authenticate").is_none());
}

#[test]
fn jwt_hs256_with_a_configured_secret() {
    let secret = "an-internal-shared-secret-of-32-bytes!";
    let auth = format!(
        r#"{{ type = "jwt", issuer = "{ISS}", audience = ["api"], secret = "{secret}", identity_source = "header.X-Token" }}"#
    );
    let g = Gateway::start(&whoami("/internal", &auth));
    let hs = Signer::Hmac(secret.as_bytes().to_vec());
    let t = hs.sign("HS256", None, &claims(json!({"sub": "svc"})));
    let r = g.send("GET", "/internal", &[("X-Token", t.as_str())], b"");
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(serde_json::from_str::<Value>(&r.text()).unwrap()["sub"], "svc");
    let wrong = Signer::Hmac(b"another-secret-another-secret-xx!".to_vec()).sign("HS256", None, &claims(json!({})));
    assert_unauthorized(&g.send("GET", "/internal", &[("X-Token", wrong.as_str())], b""), "wrong secret");
    // The token is read from the configured header only.
    assert_unauthorized(&get_auth(&g, "/internal", &t), "token in Authorization");
    // RS256 is refused where a secret is configured.
    let rsa = Signer::Rsa(rsa_key());
    let t = rsa.sign("RS256", None, &claims(json!({})));
    assert_unauthorized(&g.send("GET", "/internal", &[("X-Token", t.as_str())], b""), "rs256");
}

#[test]
fn jwks_rotation_is_picked_up_and_an_outage_keeps_the_last_keys() {
    let old = Signer::Rsa(rsa_key());
    let new = ec_key(false);
    let idp = Idp::start(vec![old.jwk("k1")], 3600);
    // Scheduled refreshes are an hour apart: only unknown kids (and failures) cause fetches.
    let auth = format!(
        r#"{{ type = "jwt", issuer = "{ISS}", jwks = "{}", jwks_min_refresh_s = 1, jwks_max_refresh_s = 3600 }}"#,
        idp.url()
    );
    let g = Gateway::start(&format!("[stages.test]\nauthorizer = {auth}\n{}", whoami("/me", "")));
    let t_old = old.sign("RS256", Some("k1"), &claims(json!({"sub": "old"})));
    assert_eq!(get_auth(&g, "/test/me", &t_old).status, 200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "fetched once at start");

    // Rotation: the IdP publishes k2; a token signed with it asks for a refresh and is
    // accepted once it is done.
    let t_new = new.sign("ES256", Some("k2"), &claims(json!({"sub": "new"})));
    *idp.doc.lock().unwrap() = json!({"keys": [old.jwk("k1"), new.jwk("k2")]});
    std::thread::sleep(Duration::from_millis(1100));
    assert_unauthorized(&get_auth(&g, "/test/me", &t_new), "k2 before the refresh");
    wait_for("the rotated key", Duration::from_secs(6), || get_auth(&g, "/test/me", &t_new).status == 200);
    let r = get_auth(&g, "/test/me", &t_new);
    assert_eq!(serde_json::from_str::<Value>(&r.text()).unwrap()["sub"], "new");
    // A burst of unknown kids costs at most one fetch per interval.
    std::thread::sleep(Duration::from_millis(1100));
    let fetched = idp.fetches.load(Ordering::SeqCst);
    let t_unknown = new.sign("ES256", Some("k9"), &claims(json!({})));
    let started = Instant::now();
    for _ in 0..30 {
        assert_unauthorized(&get_auth(&g, "/test/me", &t_unknown), "unknown kid");
    }
    std::thread::sleep(Duration::from_millis(300));
    let allowed = 1 + started.elapsed().as_secs() as usize;
    let extra = idp.fetches.load(Ordering::SeqCst) - fetched;
    assert!(extra >= 1 && extra <= allowed + 1, "{extra} fetches for 30 unknown kids");

    // Outage: the IdP answers 503; refreshes fail (retried every floor interval), the
    // last keys keep verifying.
    idp.down.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1100));
    let before = idp.fetches.load(Ordering::SeqCst);
    let _ = get_auth(&g, "/test/me", &t_unknown);
    wait_for("failed refreshes", Duration::from_secs(6), || idp.fetches.load(Ordering::SeqCst) >= before + 2);
    assert_eq!(get_auth(&g, "/test/me", &t_old).status, 200);
    assert_eq!(get_auth(&g, "/test/me", &t_new).status, 200);
    assert!(g.stderr_text().contains("keeping the last keys"), "{}", g.stderr_text());
    // Back up without k1: the next refresh retires it.
    *idp.doc.lock().unwrap() = json!({"keys": [new.jwk("k2")]});
    idp.down.store(false, Ordering::SeqCst);
    wait_for("k1 to be retired", Duration::from_secs(6), || get_auth(&g, "/test/me", &t_old).status == 401);
    assert_eq!(get_auth(&g, "/test/me", &t_new).status, 200);
}

#[test]
fn jwt_claims_reach_function_events_in_both_payload_formats() {
    let key = ec_key(false);
    let idp = Idp::start(vec![key.jwk("e1")], 300);
    let f = FunctionRuntime::start(|ev| {
        Answer::json(&json!({"statusCode": 200, "body": ev["requestContext"]["authorizer"].to_string()}).to_string())
    });
    let g = Gateway::start(&format!(
        r#"
[functions.echo]
endpoints = ["{}"]

[[routes]]
path = "/v1"
method = "GET"
authorizer = {{ type = "jwt", issuer = "{ISS}", jwks = "{}" }}
integration = {{ type = "aws_proxy", function = "echo" }}

[[routes]]
path = "/v2"
method = "GET"
authorizer = {{ type = "jwt", issuer = "{ISS}", jwks = "{}" }}
integration = {{ type = "aws_proxy", function = "echo", payload_format = "2.0" }}
"#,
        f.hostport(),
        idp.url(),
        idp.url()
    ));
    let t = key.sign("ES256", Some("e1"), &claims(json!({"sub": "bob"})));
    let r = get_auth(&g, "/v1", &t);
    assert_eq!(r.status, 200, "{r}");
    let a: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(a["claims"]["sub"], "bob", "{a}");
    assert_eq!(a["claims"]["iss"], ISS);
    assert_eq!(a["scopes"], json!(["pets:read", "profile"]));
    let r = get_auth(&g, "/v2", &t);
    let a: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(a["jwt"]["claims"]["sub"], "bob", "{a}");
    assert_eq!(a["jwt"]["scopes"], json!(["pets:read", "profile"]));
    // A refused token never reaches the function.
    let before = f.invocations();
    assert_unauthorized(&get_auth(&g, "/v1", "a.b.c"), "garbage");
    assert_eq!(f.invocations(), before);
}

// ---------------------------------------------------------------------------
// Lambda-style authorizers
// ---------------------------------------------------------------------------

/// An authorizer function: token "allow-*" -> Allow on the resource the test chose,
/// "deny" -> explicit Deny, "unauthorized" -> the Unauthorized error, "garbage" -> junk.
fn authorizer_fn(resource: &'static str) -> FunctionRuntime {
    FunctionRuntime::start(move |ev| {
        let token = ev["authorizationToken"].as_str().unwrap_or("");
        let token = token.strip_prefix("Bearer ").unwrap_or(token);
        match token {
            "deny" => Answer::json(
                &json!({"principalId": "d", "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "*"}]}})
                .to_string(),
            ),
            "unauthorized" => Answer::json(r#"{"errorMessage":"Unauthorized","errorType":"Error"}"#)
                .header("X-Amz-Function-Error", "Unhandled"),
            "garbage" => Answer::json(r#"{"principalId":"x"}"#),
            "nokey" => Answer::json(
                &json!({"principalId": "n", "policyDocument": {"Version": "2012-10-17", "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}})
                .to_string(),
            ),
            "crash" => Answer::json(r#"{"errorMessage":"boom","errorType":"Error"}"#)
                .header("X-Amz-Function-Error", "Unhandled"),
            t => Answer::json(
                &json!({
                    "principalId": format!("user-{t}"),
                    "policyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource},
                        {"Action": ["execute-api:*"], "Effect": "Deny", "Resource": ["arn:aws:execute-api:*:*:*/*/DELETE/*"]}
                    ]},
                    "context": {"user": t, "tier": 3, "admin": false},
                    "usageIdentifierKey": "key-value-1-abcdefghijkl"
                })
                .to_string(),
            ),
        }
    })
}

fn token_gw(f: &FunctionRuntime, ttl: Option<u32>) -> Gateway {
    let ttl = ttl.map(|t| format!(", ttl_s = {t}")).unwrap_or_default();
    let auth = format!(r#"{{ type = "token", function = "auth", validation_regex = "Bearer [a-z0-9-]+"{ttl} }}"#);
    Gateway::start(&format!(
        r#"
[api]
id = "abc123"
account_id = "123456789012"
region = "eu-west-1"

[functions.auth]
endpoints = ["{}"]

[stages.test]
authorizer = {auth}

{}
[[routes]]
path = "/pets/{{id}}"
method = "ANY"
integration = {{ type = "mock", status = 200, body = "pet" }}

[[routes]]
path = "/open"
method = "GET"
authorizer = {{ type = "none" }}
integration = {{ type = "mock", status = 200, body = "open" }}
"#,
        f.hostport(),
        whoami("/me", ""),
    ))
}

#[test]
fn token_authorizer_results_are_cached_and_context_reaches_the_integration() {
    let f = authorizer_fn("arn:aws:execute-api:eu-west-1:123456789012:abc123/test/*/*");
    let g = token_gw(&f, None);
    let r = get_auth(&g, "/test/me", "allow-1");
    assert_eq!(r.status, 200, "{r}");
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        (v["principal"].as_str(), v["user"].as_str(), v["tier"].as_str()),
        (Some("user-allow-1"), Some("allow-1"), Some("3"))
    );
    let ev = f.last_event();
    assert_eq!(ev["type"], "TOKEN");
    assert_eq!(ev["authorizationToken"], "Bearer allow-1");
    assert_eq!(ev["methodArn"], "arn:aws:execute-api:eu-west-1:123456789012:abc123/test/GET/me");
    assert_eq!(f.invocations(), 1);
    // Same token: served from the cache, on another path too (the policy is re-evaluated).
    assert_eq!(get_auth(&g, "/test/me", "allow-1").status, 200);
    assert_eq!(get_auth(&g, "/test/pets/1", "allow-1").status, 200);
    assert_eq!(f.invocations(), 1);
    // Another token: invoked once more.
    assert_eq!(get_auth(&g, "/test/me", "allow-2").status, 200);
    assert_eq!(f.invocations(), 2);
    // The cached policy's Deny on DELETE wins over the Allow.
    let r = get_auth(&g, "/test/pets/1", "allow-1");
    assert_eq!(r.status, 200);
    let h = bearer("allow-1");
    let r = g.send("DELETE", "/test/pets/1", &[("Authorization", h.as_str())], b"");
    assert_eq!(
        (r.status, r.text()),
        (403, r#"{"message":"User is not authorized to access this resource with an explicit deny"}"#.to_string()),
        "{r}"
    );
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    assert_eq!(f.invocations(), 2);
    // A route opting out runs no authorizer.
    assert_eq!(g.get("/test/open").status, 200);
    assert_eq!(f.invocations(), 2);
}

#[test]
fn token_authorizer_with_ttl_zero_invokes_every_time() {
    let f = authorizer_fn("*");
    let g = token_gw(&f, Some(0));
    for _ in 0..2 {
        assert_eq!(get_auth(&g, "/test/me", "allow-1").status, 200);
    }
    assert_eq!(f.invocations(), 2);
}

#[test]
fn token_authorizer_refusals_and_errors() {
    // The policy allows GET on /pets/* only (wildcards: * and ?).
    let f = authorizer_fn("arn:aws:execute-api:*:*:abc123/test/GET/pets/?");
    let g = token_gw(&f, None);
    assert_eq!(get_auth(&g, "/test/pets/7", "allow-1").status, 200);
    let r = get_auth(&g, "/test/pets/77", "allow-1");
    assert_eq!(
        (r.status, r.text()),
        (403, r#"{"message":"User is not authorized to access this resource"}"#.to_string())
    );
    let r = get_auth(&g, "/test/me", "allow-1");
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(f.invocations(), 1);
    let r = get_auth(&g, "/test/me", "deny");
    assert_eq!(
        (r.status, r.text()),
        (403, r#"{"message":"User is not authorized to access this resource with an explicit deny"}"#.to_string())
    );
    let r = get_auth(&g, "/test/me", "unauthorized");
    assert_eq!((r.status, r.text()), (401, r#"{"message":"Unauthorized"}"#.to_string()), "{r}");
    assert_eq!(r.header("x-amzn-errortype"), Some("UnauthorizedException"));
    let r = get_auth(&g, "/test/me", "garbage");
    assert_eq!(r.status, 500, "{r}");
    assert_eq!(r.header("x-amzn-errortype"), Some("AuthorizerConfigurationException"));
    let r = get_auth(&g, "/test/me", "crash");
    assert_eq!(r.status, 500, "{r}");
    let invoked = f.invocations();
    assert_eq!(invoked, 5);
    // Missing identity, or one failing the validation regex: 401 without invoking.
    let r = g.get("/test/me");
    assert_eq!((r.status, r.text()), (401, r#"{"message":"Unauthorized"}"#.to_string()));
    let r = g.send("GET", "/test/me", &[("Authorization", "Basic dXNlcg==")], b"");
    assert_eq!(r.status, 401);
    assert_eq!(f.invocations(), invoked);
}

#[test]
fn authorizer_function_unreachable_is_500() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    drop(dead);
    let g = Gateway::start(&format!(
        r#"
[functions.auth]
endpoints = ["{addr}"]

[[routes]]
path = "/x"
method = "GET"
authorizer = {{ type = "token", function = "auth", timeout_ms = 1000 }}
integration = {{ type = "mock", status = 200 }}
"#
    ));
    let r = get_auth(&g, "/x", "t");
    assert_eq!((r.status, r.text()), (500, r#"{"message":"Internal server error"}"#.to_string()), "{r}");
    assert_eq!(r.header("x-amzn-errortype"), Some("AuthorizerFailureException"));
}

#[test]
fn request_authorizer_uses_several_identity_sources() {
    let f = FunctionRuntime::start(|ev| {
        let ok = ev["headers"]["X-Client"] == "c1" && ev["queryStringParameters"]["tenant"].is_string();
        let effect = if ok { "Allow" } else { "Deny" };
        Answer::json(
            &json!({"principalId": ev["queryStringParameters"]["tenant"], "policyDocument": {"Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": ev["methodArn"]}]},
                "context": {"user": ev["stageVariables"]["env"]}})
            .to_string(),
        )
    });
    let auth = r#"{ type = "request", function = "auth", identity_source = ["header.X-Client", "querystring.tenant", "stageVariables.env", "context.httpMethod"] }"#;
    let g = Gateway::start(&format!(
        r#"
[functions.auth]
endpoints = ["{}"]

[stages.prod]
variables = {{ env = "production" }}

{}
"#,
        f.hostport(),
        whoami("/me/{id}", auth)
    ));
    let send = |q: &str, client: Option<&str>| {
        let h: Vec<(&str, &str)> = client.map(|c| vec![("X-Client", c)]).unwrap_or_default();
        g.send("GET", &format!("/prod/me/5{q}"), &h, b"")
    };
    let r = send("?tenant=t1", Some("c1"));
    assert_eq!(r.status, 200, "{r}");
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!((v["principal"].as_str(), v["user"].as_str()), (Some("t1"), Some("production")));
    let ev = f.last_event();
    assert_eq!(ev["type"], "REQUEST");
    assert_eq!(ev["methodArn"], "arn:aws:execute-api:us-east-1:000000000000:ringway/prod/GET/me/5");
    assert_eq!(ev["resource"], "/me/{id}");
    assert_eq!(ev["path"], "/me/5");
    assert_eq!(ev["httpMethod"], "GET");
    assert_eq!(ev["pathParameters"]["id"], "5");
    assert_eq!(ev["requestContext"]["stage"], "prod");
    assert!(ev.get("body").is_none(), "{ev}");
    assert_eq!(f.invocations(), 1);
    // Same identity values: cached. Another tenant: a new invocation.
    assert_eq!(send("?tenant=t1", Some("c1")).status, 200);
    assert_eq!(f.invocations(), 1);
    assert_eq!(send("?tenant=t2", Some("c1")).status, 200);
    assert_eq!(f.invocations(), 2);
    // One source missing or empty: 401 without invoking.
    assert_eq!(send("", Some("c1")).status, 401);
    assert_eq!(send("?tenant=", Some("c1")).status, 401);
    assert_eq!(send("?tenant=t1", None).status, 401);
    assert_eq!(f.invocations(), 2);
    let r = send("?tenant=t1", Some("c2"));
    assert_eq!(r.status, 403, "{r}");
    assert_eq!(f.invocations(), 3);
}

#[test]
fn usage_identifier_key_is_the_api_key_when_configured() {
    let f = authorizer_fn("*");
    let g = Gateway::start(&format!(
        r#"
[api]
api_key_source = "authorizer"

[functions.auth]
endpoints = ["{}"]

[[api_keys]]
id = "k1"
value = "key-value-1-abcdefghijkl"
plan = "basic"

[usage_plans.basic]

[[routes]]
path = "/keyed"
method = "GET"
api_key_required = true
authorizer = {{ type = "token", function = "auth" }}
integration = {{ type = "mock", status = 200, body = "keyed" }}
"#,
        f.hostport()
    ));
    // No x-api-key header: the authorizer's usageIdentifierKey is the key.
    let r = get_auth(&g, "/keyed", "allow-1");
    assert_eq!((r.status, r.text()), (200, "keyed".to_string()), "{r}");
    // An allowed principal without a key is refused, even with a valid x-api-key header.
    let r = g.send("GET", "/keyed", &[("Authorization", "nokey"), ("x-api-key", "key-value-1-abcdefghijkl")], b"");
    assert_eq!((r.status, r.text()), (403, r#"{"message":"Forbidden"}"#.to_string()), "{r}");
    assert_eq!(f.invocations(), 2);
}

#[test]
fn jwks_from_a_file() {
    let key = ec_key(false);
    let path = temp_path("ringway-jwks", "json");
    std::fs::write(&path, json!({"keys": [key.jwk("f1")]}).to_string()).unwrap();
    let auth = format!(r#"{{ type = "jwt", issuer = "{ISS}", jwks = "file:{}" }}"#, path.display());
    let g = Gateway::start(&whoami("/me", &auth));
    let t = key.sign("ES256", Some("f1"), &claims(json!({"sub": "from-file"})));
    let r = get_auth(&g, "/me", &t);
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(serde_json::from_str::<Value>(&r.text()).unwrap()["sub"], "from-file");
    let other = ec_key(false).sign("ES256", Some("f1"), &claims(json!({})));
    assert_unauthorized(&get_auth(&g, "/me", &other), "a key not in the file");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn jwks_over_https_verified_against_the_trust_store() {
    let pki = Pki::new();
    pki.leaf("idp", "idp.test", "DNS:idp.test,IP:127.0.0.1", false, false);
    let nginx = Nginx::start(&pki.path("idp.pem"), &pki.path("idp.key"));
    let key = ec_key(false);
    let url = nginx.file("jwks.json", &json!({"keys": [key.jwk("h1")]}).to_string());
    let auth = format!(r#"{{ type = "jwt", issuer = "{ISS}", jwks = "{url}" }}"#);
    let t = key.sign("ES256", Some("h1"), &claims(json!({"sub": "over-https"})));
    // The test CA is the trust store (SSL_CERT_FILE): the JWKS is fetched and verifies.
    let g = Gateway::builder(&whoami("/me", &auth)).env("SSL_CERT_FILE", &pki.path("ca.pem")).start();
    let r = get_auth(&g, "/me", &t);
    assert_eq!(r.status, 200, "{r}\n{}", g.stderr_text());
    assert_eq!(serde_json::from_str::<Value>(&r.text()).unwrap()["sub"], "over-https");
    drop(g);
    // The system store does not know the test CA: no keys, so the token is refused.
    let g = Gateway::builder(&whoami("/me", &auth)).env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt").start();
    assert_unauthorized(&get_auth(&g, "/me", &t), "JWKS from an untrusted server");
}
