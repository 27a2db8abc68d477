//! Route matching micro-benchmark: `cargo bench --bench route_lookup`.
//!
//! Builds tries of 10, 1,000 and 10,000 routes (static, {param} and {greedy+} mixed, as
//! real APIs have them), then times lookups of a fixed mix of matching and missing paths.
//! Prints ns per lookup; the target (issue 3) is < 200 ns at 10,000 routes.

use ringway::http::method::{Method, RouteMethod};
use ringway::route::trie::{parse_template, Trie};
use ringway::route::Captures;
use std::hint::black_box;
use std::time::Instant;

/// Route templates in the shape of a large API: services / resources / ids / actions.
fn templates(n: usize) -> Vec<(String, RouteMethod)> {
    let methods = [RouteMethod::One(Method::Get), RouteMethod::One(Method::Post), RouteMethod::Any];
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let svc = i % 97;
        let res = i / 97;
        let m = methods[i % 3];
        let t = match i % 5 {
            0 => format!("/svc{svc}/res{res}"),
            1 => format!("/svc{svc}/res{res}/{{id}}"),
            2 => format!("/svc{svc}/res{res}/{{id}}/items/{{item}}"),
            3 => format!("/svc{svc}/res{res}/{{id}}/action{}", i % 7),
            _ => format!("/svc{svc}/res{res}/files/{{path+}}"),
        };
        out.push((t, m));
        i += 1;
    }
    out
}

fn build(n: usize) -> Trie {
    let mut t = Trie::default();
    let mut added = 0u32;
    for (path, m) in templates(n) {
        let segs = parse_template(&path).expect("valid template");
        // Colliding (template, method) pairs are skipped; count what went in.
        if t.insert(&segs, m, added).is_ok() {
            added += 1;
        }
    }
    t
}

/// Request paths: 7 of every 8 instantiate a configured template (spread over the whole
/// table), 1 of 8 matches nothing and makes the trie backtrack.
fn paths(n: usize) -> Vec<(Vec<u8>, Method)> {
    let ts = templates(n);
    let mut out = Vec::new();
    for k in 0..64 {
        if k % 8 == 7 {
            out.push((format!("/svc{}/res{}/x/y/z/missing", k % 97, k).into_bytes(), Method::Get));
            continue;
        }
        let (t, m) = &ts[(k * 7919) % ts.len()];
        let path = t.replace("{id}", "12345").replace("{item}", "77").replace("{path+}", "a/b/c.txt");
        let method = match m {
            RouteMethod::One(m) => *m,
            RouteMethod::Any => Method::Delete,
        };
        out.push((path.into_bytes(), method));
    }
    out
}

fn main() {
    println!("| routes | ns per lookup (mean over 64 paths) | matched |");
    println!("|---:|---:|---:|");
    for n in [10usize, 1_000, 10_000] {
        let trie = build(n);
        let ps = paths(n);
        let mut caps = Captures::new();
        let mut matched = 0;
        for (p, m) in &ps {
            matched += trie.lookup(p, *m, &mut caps).is_some() as usize;
        }
        let iters = 2_000_000usize;
        // Warm up, then take the best of 5 timed runs (least disturbed by other load).
        let mut best = f64::MAX;
        for round in 0..6 {
            let t0 = Instant::now();
            for i in 0..iters {
                let (p, m) = &ps[i % ps.len()];
                black_box(trie.lookup(black_box(p), *m, &mut caps));
            }
            let ns = t0.elapsed().as_nanos() as f64 / iters as f64;
            if round > 0 {
                best = best.min(ns);
            }
        }
        println!("| {n} | {best:.1} | {matched}/{} |", ps.len());
    }
}
