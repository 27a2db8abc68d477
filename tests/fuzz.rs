//! Deterministic fuzz loops over the codecs, router, URI templates, mapping templates and
//! config loader (issue 8). Each harness is a function of a byte slice in tests/fuzz/,
//! shared with the coverage-guided cargo-fuzz targets in fuzz/; here a seeded PRNG drives
//! them for a bounded number of iterations, and every file in fuzz/corpus/<target>/ is
//! replayed (crashes found by cargo-fuzz land there and stay fixed).
//! `FUZZ_ITERS=N` multiplies the iteration counts (default 1).

#[path = "fuzz/chunked.rs"]
mod chunked;
#[path = "fuzz/config.rs"]
mod config;
#[path = "fuzz/gen.rs"]
mod gen;
#[path = "fuzz/request.rs"]
mod request;
#[path = "fuzz/response.rs"]
mod response;
#[path = "fuzz/router.rs"]
mod router;
#[path = "fuzz/template.rs"]
mod template;
#[path = "fuzz/uri.rs"]
mod uri;

use gen::Rng;
use std::path::Path;

fn scale() -> usize {
    std::env::var("FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// Replays fuzz/corpus/<target>/*; returns how many inputs it ran.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "corpus input {} fails", path.display());
        n += 1;
    }
    n
}

/// Runs `f` on `iters` random inputs of up to `max_len` bytes and on mutations of the corpus.
fn run(target: &str, f: fn(&[u8]), seed: u64, iters: usize, max_len: usize) {
    let seeds = replay(target, f);
    assert!(seeds > 0, "empty corpus for {target}");
    let corpus: Vec<Vec<u8>> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
    let mut rng = Rng(seed);
    for i in 0..iters * scale() {
        let data = if i % 2 == 0 {
            let n = rng.below(max_len + 1);
            rng.bytes(n)
        } else {
            let c = &corpus[rng.below(corpus.len())];
            rng.mutate(c, &[])
        };
        let r = std::panic::catch_unwind(|| f(&data));
        if r.is_err() {
            panic!("{target}: iteration {i} fails; input (add it to fuzz/corpus/{target}/): {data:?}");
        }
    }
}

#[test]
fn fuzz_request_head() {
    run("request_parser", request::head, 1, 100_000, 300);
}

#[test]
fn fuzz_request_stream_any_bytes() {
    run("request_stream", request::stream, 2, 30_000, 600);
}

#[test]
fn fuzz_request_pipeline_generated() {
    run("request_pipeline", request::pipeline, 3, 30_000, 256);
}

#[test]
fn fuzz_chunked_body() {
    run("chunked", chunked::chunked, 4, 20_000, 300);
}

#[test]
fn fuzz_response_parser() {
    run("response_parser", response::response, 5, 100_000, 200);
}

#[test]
fn fuzz_router_vs_reference() {
    run("router", router::router, 6, 50_000, 256);
}

#[test]
fn fuzz_uri_templates() {
    run("uri", uri::uri, 7, 50_000, 64);
}

#[test]
fn fuzz_template_engine() {
    run("template", template::template, 8, 30_000, 96);
}

#[test]
fn fuzz_config_loader() {
    run("config", config::config, 9, 15_000, 16);
}

/// The harnesses must be able to fail: feed each a case its oracle rejects.
#[test]
fn oracles_catch_wrong_answers() {
    // A chunk-size line without digits is not a valid chunked body.
    assert_eq!(chunked::reference(b"\r\n\r\n"), chunked::Outcome::Error);
    assert_eq!(chunked::reference(b"5\r\nhello\r\n0\r\n\r\nX"), chunked::Outcome::Done(b"hello".to_vec(), 15));
    let e = ringway::config::ConfigError { file: "fuzz.toml".into(), line: 3, col: 1, message: "m".into() };
    assert!(std::panic::catch_unwind(|| config::check_location("one line", &e)).is_err());
}
