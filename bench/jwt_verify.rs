//! JWT verification micro-benchmark: `cargo bench --bench jwt_verify`.
//!
//! Verifies the same token against a cached key (as a worker does on the request path:
//! reused decode buffers, key looked up by `kid` in the shared map) and prints ns and heap
//! allocations per verification for RS256 (2048-bit key from the openssl CLI), ES256 and
//! HS256. ring's own work is included.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use ringway::policy::authorizer::jwks::{self, parse_jwks, Key};
use ringway::policy::authorizer::jwt::{verify, JwtConfig, KeySource, Scratch};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, n)
    }
}

#[global_allocator]
static A: Counting = Counting;

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

const CLAIMS: &str = r#"{"iss":"https://idp.example","aud":"api","sub":"alice","exp":4102444800,"iat":1700000000,"scope":"pets:read profile","client_id":"web"}"#;

fn signing_input(alg: &str, kid: &str) -> String {
    let h = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    format!("{}.{}", b64(h.as_bytes()), b64(CLAIMS.as_bytes()))
}

fn run(name: &str, cfg: &JwtConfig, token: &str, iters: u64) {
    let mut s = Scratch::default();
    let now = 1_800_000_000;
    verify(cfg, token.as_bytes(), now, &mut s).expect("token verifies");
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t = Instant::now();
    for _ in 0..iters {
        black_box(verify(cfg, black_box(token.as_bytes()), now, &mut s)).unwrap();
    }
    let ns = t.elapsed().as_nanos() as f64 / iters as f64;
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / iters as f64;
    println!("{name:6} {ns:>10.0} ns/verify  {allocs:>5.1} allocations/verify");
}

fn main() {
    let rng = SystemRandom::new();
    let out = std::process::Command::new("sh")
        .args([
            "-c",
            "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 | openssl rsa -traditional -outform DER",
        ])
        .output()
        .expect("openssl");
    let rsa = RsaKeyPair::from_der(&out.stdout).expect("RSA key");
    let c: signature::RsaPublicKeyComponents<Vec<u8>> = rsa.public().into();
    let ec_doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, ec_doc.as_ref(), &rng).unwrap();
    let p = ec.public_key().as_ref();
    let doc = format!(
        r#"{{"keys":[{{"kty":"RSA","kid":"r1","n":"{}","e":"{}"}},{{"kty":"EC","kid":"e1","crv":"P-256","x":"{}","y":"{}"}}]}}"#,
        b64(&c.n),
        b64(&c.e),
        b64(&p[1..33]),
        b64(&p[33..])
    );
    let slot = jwks::slot("file:/bench/jwks.json", 60, 3600);
    slot.install(parse_jwks(doc.as_bytes()).unwrap());
    let cfg = |keys| JwtConfig {
        issuer: "https://idp.example".into(),
        audiences: vec!["api".into()],
        scopes: vec!["pets:read".into()],
        skew: 60,
        keys,
    };
    let jwks_cfg = cfg(KeySource::Jwks(slot));

    let si = signing_input("RS256", "r1");
    let mut sig = vec![0u8; rsa.public().modulus_len()];
    rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, si.as_bytes(), &mut sig).unwrap();
    run("RS256", &jwks_cfg, &format!("{si}.{}", b64(&sig)), 20_000);

    let si = signing_input("ES256", "e1");
    let sig = ec.sign(&rng, si.as_bytes()).unwrap();
    run("ES256", &jwks_cfg, &format!("{si}.{}", b64(sig.as_ref())), 20_000);

    let secret = b"an-internal-shared-secret-of-32-bytes!";
    let hs_cfg = cfg(KeySource::Secret(Key::hmac(secret)));
    let si = signing_input("HS256", "h");
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), si.as_bytes());
    run("HS256", &hs_cfg, &format!("{si}.{}", b64(tag.as_ref())), 200_000);
}
