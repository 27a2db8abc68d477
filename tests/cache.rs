//! Response cache: keys, TTL, what may be stored, stampede protection across workers,
//! client invalidation and its strategies, admin flush, bounded store with eviction.
//! Upstream request counts prove what was served from the cache.
mod support;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

/// An upstream whose body names the request and counts it: `GET /pets/1?type=a #3`.
fn counting() -> Upstream {
    let n = Arc::new(AtomicUsize::new(0));
    Upstream::start(move |req| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok(&format!("{} {} #{i}", req.method, req.target)).header("Content-Type", "text/plain")
    })
}

fn gw(up: &Upstream, routes: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[stages.prod]
[stages.test]
cache = {{ ttl_s = 300, x_cache_header = true }}

{routes}

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{up}/{{proxy}}" }}
"#,
        up = up.hostport()
    ))
}

/// `[cache]` settings, stage `test` with `stage_cache`, and a catch-all GET proxy to `up`.
fn catch_all(up: &Upstream, store: &str, stage_cache: &str) -> Gateway {
    Gateway::start(&format!(
        "[cache]\n{store}\n[stages.test]\ncache = {stage_cache}\n[[routes]]\npath = \"/{{proxy+}}\"\nmethod = \"GET\"\nintegration = {{ type = \"http_proxy\", uri = \"http://{}/{{proxy}}\" }}\n",
        up.hostport()
    ))
}

fn get(g: &Gateway, target: &str, headers: &[(&str, &str)]) -> Response {
    g.send("GET", target, headers, b"")
}

#[test]
fn hits_come_from_the_cache_and_unlisted_parameters_are_ignored() {
    let up = counting();
    let g = gw(
        &up,
        &format!(
            r#"[[routes]]
path = "/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{}/pets/{{petId}}" }}
cache = {{ key = ["path.petId", "query.type", "header.Accept"] }}"#,
            up.hostport()
        ),
    );
    let a = get(&g, "/test/pets/1?type=dog&department=A", &[("Accept", "text/plain")]);
    assert_eq!(a.status, 200, "{a}");
    assert_eq!(a.header("x-cache"), Some("Miss"), "{a}");
    assert_eq!(a.text(), "GET /pets/1?type=dog&department=A #1");
    let b = get(&g, "/test/pets/1?department=B&type=dog", &[("accept", "text/plain")]);
    assert_eq!(b.status, 200, "{b}");
    assert_eq!(b.header("x-cache"), Some("Hit"), "{b}");
    assert_eq!(b.text(), a.text(), "the department is not in the key");
    assert_eq!(b.header("content-type"), Some("text/plain"));
    assert_eq!(b.header("content-length"), Some(a.text().len().to_string().as_str()));
    let age: u64 = b.header("age").expect("Age on a hit").parse().unwrap();
    assert!(age <= 1, "{b}");
    assert_ne!(a.header("x-amzn-requestid"), b.header("x-amzn-requestid"), "request ids are per response");
    assert_eq!(up.request_count(), 1);

    // Every listed parameter is part of the key; so are the stage and the route.
    assert!(get(&g, "/test/pets/2?type=dog", &[("Accept", "text/plain")]).text().ends_with("#2"));
    assert!(get(&g, "/test/pets/1?type=cat", &[("Accept", "text/plain")]).text().ends_with("#3"));
    assert!(get(&g, "/test/pets/1?type=dog", &[("Accept", "application/json")]).text().ends_with("#4"));
    assert!(get(&g, "/test/pets/1?type=dog", &[]).text().ends_with("#5"));
    // The route's cache applies in every stage, each stage with its own entries.
    let prod = get(&g, "/prod/pets/1?type=dog", &[("Accept", "text/plain")]);
    assert!(prod.text().ends_with("#6"), "{prod}");
    assert!(get(&g, "/prod/pets/1?type=dog", &[("Accept", "text/plain")]).text().ends_with("#6"));
    // prod's catch-all route has no cache.
    assert!(g.get("/prod/other").text().ends_with("#7"));
    assert!(g.get("/prod/other").text().ends_with("#8"));
    assert_eq!(up.request_count(), 8);
    // Keep-alive: many hits on one connection.
    let mut c = g.connect();
    for _ in 0..20 {
        let r = c.roundtrip("GET", "/test/pets/1?type=dog", &[("Accept", "text/plain")], b"");
        assert_eq!(r.text(), a.text());
    }
    assert_eq!(up.request_count(), 8);
}

#[test]
fn entries_expire_after_the_ttl() {
    let up = counting();
    // 1 s natively; longer under an emulator, where two requests can take a second.
    let ttl = slowdown();
    let g = gw(
        &up,
        &format!(
            r#"[[routes]]
path = "/short"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{}/short" }}
cache = {{ ttl_s = {ttl} }}"#,
            up.hostport()
        ),
    );
    assert!(g.get("/test/short").text().ends_with("#1"));
    assert!(g.get("/test/short").text().ends_with("#1"));
    thread::sleep(Duration::from_millis(2000 * ttl as u64 + 100));
    assert!(g.get("/test/short").text().ends_with("#2"), "expired entries are fetched again");
    assert!(g.get("/test/short").text().ends_with("#2"));
}

#[test]
fn only_get_and_2xx_are_cached_unless_configured() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let up = Upstream::start(move |req| {
        let i = n2.fetch_add(1, Ordering::SeqCst) + 1;
        let status = if req.target.contains("missing") {
            404
        } else if req.target.contains("broken") {
            500
        } else {
            200
        };
        Reply::new(status).body(format!("{} #{i}", req.target).as_bytes())
    });
    let g = gw(
        &up,
        &format!(
            r#"[[routes]]
path = "/notfound/{{id}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{h}/missing/{{id}}" }}
cache = {{ statuses = [200, 404], methods = ["GET", "POST"] }}"#,
            h = up.hostport()
        ),
    );
    // POST is not cached by default.
    assert!(g.send("POST", "/test/items", &[], b"x").text().ends_with("#1"));
    assert!(g.send("POST", "/test/items", &[], b"x").text().ends_with("#2"));
    // 5xx is not cached.
    let e = g.get("/test/broken");
    assert_eq!(e.status, 500);
    assert!(g.get("/test/broken").text().ends_with("#4"));
    // Configured statuses and methods are.
    let nf = g.get("/test/notfound/7");
    assert_eq!(nf.status, 404);
    assert!(nf.text().ends_with("#5"));
    assert_eq!(g.get("/test/notfound/7").text(), nf.text());
    assert!(g.send("POST", "/test/notfound/7", &[], b"").text().ends_with("#6"));
    assert!(g.send("POST", "/test/notfound/7", &[], b"").text().ends_with("#6"), "POST cached when listed");
    // HEAD is not served from the GET entry.
    let h = g.send("HEAD", "/test/notfound/7", &[], b"");
    assert_eq!(h.status, 404);
    assert_eq!(n.load(Ordering::SeqCst), 7);
}

#[test]
fn upstream_no_store_private_and_cookies_are_honoured_unless_the_route_ignores_them() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let up = Upstream::start(move |req| {
        let i = n2.fetch_add(1, Ordering::SeqCst) + 1;
        let r = Reply::ok(&format!("{} #{i}", req.target));
        match req.target.as_str() {
            "/nostore" | "/ignored" => r.header("Cache-Control", "no-store"),
            "/private" => r.header("Cache-Control", "max-age=60, private"),
            "/cookie" => r.header("Set-Cookie", "session=secret"),
            _ => r.header("Cache-Control", "public, max-age=60"),
        }
    });
    let g = gw(
        &up,
        &format!(
            r#"[[routes]]
path = "/ignored"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{}/ignored" }}
cache = {{ honor_upstream_cache_control = false }}"#,
            up.hostport()
        ),
    );
    for (path, cached) in
        [("/nostore", false), ("/private", false), ("/cookie", false), ("/public", true), ("/ignored", true)]
    {
        let first = g.get(&format!("/test{path}"));
        let second = g.get(&format!("/test{path}"));
        assert_eq!(first.status, 200, "{first}");
        assert_eq!(first.text() == second.text(), cached, "{path}: {first} / {second}");
        if cached {
            assert_eq!(second.header("cache-control"), first.header("cache-control"), "stored headers are replayed");
        }
    }
}

#[test]
fn concurrent_misses_on_both_workers_make_one_upstream_request() {
    let s = slowdown();
    let up =
        Upstream::start(move |req| Reply::ok(&format!("slow {}", req.target)).delay(Duration::from_millis(400) * s));
    let g = gw(&up, "");
    let n = 24;
    let barrier = Arc::new(Barrier::new(n));
    let addr = g.addr();
    let start = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                barrier.wait();
                c.roundtrip("GET", "/test/hot?x=1", &[], b"")
            })
        })
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200, "{r}");
        assert_eq!(r.text(), "slow /hot?x=1");
    }
    assert_eq!(up.request_count(), 1, "one fetch for {n} concurrent misses");
    assert!(
        start.elapsed() < Duration::from_millis(1500) * s,
        "waiters were served from the fill: {:?}",
        start.elapsed()
    );
}

#[test]
fn waiting_is_bounded_and_a_failed_fill_releases_the_waiters() {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let s = slowdown();
    let up = Upstream::start(move |req| {
        let i = n2.fetch_add(1, Ordering::SeqCst);
        if req.target == "/flaky" && i == 0 {
            return Reply::new(503).body(b"down").delay(Duration::from_millis(300) * s);
        }
        Reply::ok(&format!("{} #{i}", req.target)).delay(Duration::from_millis(400) * s)
    });
    let g = gw(
        &up,
        &format!(
            r#"[[routes]]
path = "/impatient"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{}/impatient" }}
cache = {{ lock_timeout_ms = 50 }}"#,
            up.hostport()
        ),
    );
    let burst = |target: &'static str, k: usize| -> Vec<Response> {
        let barrier = Arc::new(Barrier::new(k));
        let addr = g.addr();
        let ts: Vec<_> = (0..k)
            .map(|i| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let mut c = Conn::connect(addr);
                    barrier.wait();
                    // The first request leads; the others arrive while it is in flight.
                    if i > 0 {
                        thread::sleep(Duration::from_millis(100) * s);
                    }
                    c.roundtrip("GET", target, &[], b"")
                })
            })
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    };
    // The leader gets a 503 (not cacheable): the waiters fetch on their own.
    let rs = burst("/test/flaky", 4);
    assert_eq!(rs[0].status, 503);
    assert!(rs[1..].iter().all(|r| r.status == 200), "{rs:?}");
    assert_eq!(n.load(Ordering::SeqCst), 4);
    // lock_timeout_ms = 50: waiters stop waiting for the slow leader.
    let rs = burst("/test/impatient", 4);
    assert!(rs.iter().all(|r| r.status == 200), "{rs:?}");
    assert_eq!(n.load(Ordering::SeqCst), 8, "each waiter fetched after 50 ms");
}

fn invalidation_gw(up: &Upstream) -> Gateway {
    let h = up.hostport();
    Gateway::start(&format!(
        r#"
[stages.test]
cache = {{ x_cache_header = true }}

[usage_plans.basic]
[[api_keys]]
id = "ops"
value = "ops-key-0123456789abcdef"
plan = "basic"

[[routes]]
path = "/anyone"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/anyone" }}

[[routes]]
path = "/keyed"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/keyed" }}
cache = {{ invalidation = "api_key" }}

[[routes]]
path = "/quiet"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/quiet" }}
cache = {{ invalidation = "deny", unauthorized = "SUCCEED_WITHOUT_RESPONSE_HEADER" }}

[[routes]]
path = "/strict"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/strict" }}
cache = {{ invalidation = "deny", unauthorized = "FAIL_WITH_403" }}
"#
    ))
}

#[test]
fn max_age_zero_refetches_when_the_caller_may_invalidate() {
    let up = counting();
    let g = invalidation_gw(&up);
    let fresh = [("Cache-Control", "max-age=0")];

    assert!(get(&g, "/test/anyone", &[]).text().ends_with("#1"));
    let r = get(&g, "/test/anyone", &fresh);
    assert!(r.text().ends_with("#2"), "{r}");
    assert_eq!(r.header("x-cache"), Some("Miss"));
    assert!(get(&g, "/test/anyone", &[]).text().ends_with("#2"), "the entry was replaced");

    // api_key: without a valid key the header is ignored, with a warning (the default strategy).
    assert!(get(&g, "/test/keyed", &[]).text().ends_with("#3"));
    let ignored = get(&g, "/test/keyed", &fresh);
    assert!(ignored.text().ends_with("#3"), "{ignored}");
    assert!(ignored.header("warning").is_some_and(|w| w.starts_with("199 ")), "{ignored}");
    let wrong = get(&g, "/test/keyed", &[("Cache-Control", "max-age=0"), ("x-api-key", "not-a-key-0000000000000")]);
    assert!(wrong.text().ends_with("#3"), "{wrong}");
    let keyed = get(&g, "/test/keyed", &[("Cache-Control", "max-age=0"), ("X-API-Key", "ops-key-0123456789abcdef")]);
    assert!(keyed.text().ends_with("#4"), "{keyed}");
    assert!(keyed.header("warning").is_none());

    // deny + SUCCEED_WITHOUT_RESPONSE_HEADER: ignored silently.
    assert!(get(&g, "/test/quiet", &[]).text().ends_with("#5"));
    let quiet = get(&g, "/test/quiet", &fresh);
    assert!(quiet.text().ends_with("#5"), "{quiet}");
    assert!(quiet.header("warning").is_none(), "{quiet}");

    // deny + FAIL_WITH_403.
    assert!(get(&g, "/test/strict", &[]).text().ends_with("#6"));
    let denied = get(&g, "/test/strict", &fresh);
    assert_eq!(denied.status, 403, "{denied}");
    assert_eq!(denied.text(), r#"{"message":"User is not authorized to access this resource"}"#);
    assert!(get(&g, "/test/strict", &[]).text().ends_with("#6"));
    assert_eq!(up.request_count(), 6);
}

#[test]
fn admin_flushes_a_stage_or_a_key_prefix() {
    let up = counting();
    let h = up.hostport();
    let g = Gateway::start(&format!(
        r#"
[stages.prod]
cache = {{ ttl_s = 600 }}
[stages.test]
cache = {{ ttl_s = 600 }}

[[routes]]
path = "/{{proxy+}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{h}/{{proxy}}" }}
"#
    ));
    for p in ["/prod/pets/1", "/prod/pets/2", "/prod/users/1", "/test/pets/1"] {
        assert_eq!(g.get(p).status, 200);
        assert_eq!(g.get(p).status, 200);
    }
    assert_eq!(up.request_count(), 4);
    let stats = g.admin("GET", "/cache");
    assert_eq!(stats.status, 200, "{stats}");
    assert!(stats.text().starts_with(r#"{"entries":4,"#), "{stats}");

    let r = g.admin("POST", "/cache/flush?stage=prod&prefix=GET%20/%7Bproxy%2B%7D%20path.proxy=pets/");
    assert_eq!(r.text(), r#"{"flushed":2}"#, "{r}");
    let before = up.request_count();
    g.get("/prod/pets/1");
    g.get("/prod/users/1");
    g.get("/test/pets/1");
    assert_eq!(up.request_count(), before + 1, "only the flushed key went upstream");

    assert_eq!(g.admin("POST", "/cache/flush?stage=test").text(), r#"{"flushed":1}"#);
    assert_eq!(g.admin("POST", "/cache/flush?stage=nope").status, 404);
    assert_eq!(g.admin("GET", "/cache/flush").status, 405);
    let all = g.admin("POST", "/cache/flush");
    assert!(all.text().starts_with(r#"{"flushed":"#), "{all}");
    assert!(g.admin("GET", "/cache").text().starts_with(r#"{"entries":0,"bytes":0,"#));
}

#[test]
fn large_small_and_chunked_bodies_are_stored_exactly() {
    let big = pattern_body(300 * 1024);
    let big2 = big.clone();
    let up = Upstream::start(move |req| match req.target.as_str() {
        "/big" => Reply::ok("").body(&big2),
        "/chunked" => Reply::ok("").chunked(&[b"hello ", b"chunked ", b"world"]),
        _ => Reply::new(204).empty(),
    });
    let g = catch_all(&up, "max_entry_bytes = 400000", "{ x_cache_header = true }");
    for _ in 0..3 {
        let r = g.get("/test/big");
        assert_eq!(r.status, 200);
        assert!(r.body == big, "300 KiB body intact");
        let c = g.get("/test/chunked");
        assert_eq!(c.text(), "hello chunked world");
        let e = g.get("/test/empty");
        assert_eq!(e.status, 204);
        assert!(e.header("content-length").is_none(), "{e}");
    }
    let hit = g.get("/test/chunked");
    assert_eq!(hit.header("x-cache"), Some("Hit"));
    assert_eq!(hit.header("content-length"), Some("19"), "a stored chunked body is sent with a length");
    assert_eq!(up.request_count(), 3);
}

#[test]
fn entries_over_the_size_limit_are_passed_through_not_stored() {
    let up = Upstream::start(|_| Reply::ok("").body(&vec![b'z'; 5000]));
    let g = catch_all(&up, "max_entry_bytes = 4096", "{}");
    for _ in 0..3 {
        assert_eq!(g.get("/test/x").body.len(), 5000);
    }
    assert_eq!(up.request_count(), 3);
}

#[test]
fn the_store_stays_bounded_and_keeps_what_is_used() {
    let up = Upstream::start(|req| Reply::ok("").body(format!("{:<1000}", req.target).as_bytes()));
    let g = catch_all(&up, "max_bytes = 20000", "{}");
    let mut c = g.connect();
    let hot = "/test/hot";
    assert_eq!(c.roundtrip("GET", hot, &[], b"").status, 200);
    for i in 0..60 {
        let r = c.roundtrip("GET", &format!("/test/cold/{i}"), &[], b"");
        assert_eq!(r.status, 200);
        // Keep the hot entry in use.
        assert_eq!(c.roundtrip("GET", hot, &[], b"").status, 200);
    }
    let hot_fetches = up.requests().iter().filter(|r| r.target == "/hot").count();
    assert_eq!(hot_fetches, 1, "the entry in use survived 60 insertions");
    let stats = g.admin("GET", "/cache").text();
    let bytes: usize = stats.split("\"bytes\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!(bytes <= 20000 && bytes > 10000, "{stats}");
    let before = up.request_count();
    c.roundtrip("GET", "/test/cold/0", &[], b"");
    assert_eq!(up.request_count(), before + 1, "the oldest unused entry was evicted");
}

#[test]
fn hits_carry_cors_headers() {
    let up = counting();
    let g = Gateway::start(&format!(
        r#"
[stages.test]
cache = {{}}
cors = {{ allow_origins = ["https://app.example"] }}
[[routes]]
path = "/p"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{}/p" }}
"#,
        up.hostport()
    ));
    g.get("/test/p");
    let r = get(&g, "/test/p", &[("Origin", "https://app.example")]);
    assert!(r.text().ends_with("#1"));
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"), "{r}");
    assert!(g.get("/test/p").header("access-control-allow-origin").is_none());
}

#[test]
fn cache_config_errors_point_at_the_value() {
    let cases = [
        (
            "[stages.a]\ncache = { ttl_s = 4000 }\n[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/\" }\n",
            "ttl_s must be between 0 and 3600",
            2,
        ),
        (
            "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/\" }\ncache = { key = [\"cookie.x\"] }\n",
            "cache key part 'cookie.x'",
            5,
        ),
        (
            "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/\" }\ncache = { key = [\"path.id\"] }\n",
            "route /a has no path parameter {id}",
            5,
        ),
        (
            "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"mock\" }\ncache = { ttl_s = 10 }\n",
            "http_proxy integrations only",
            5,
        ),
        (
            "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/\" }\ncache = { invalidation = \"me\" }\n",
            "unknown invalidation 'me'",
            5,
        ),
        ("[cache]\nmax_entry_bytes = 0\n", "max_entry_bytes must be between", 2),
    ];
    for (cfg, msg, line) in cases {
        let f = TempFile::new(cfg);
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "{cfg}");
        assert!(out.stderr.contains(msg), "{cfg}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{}:{line}:", f.path_str())), "{cfg}: {}", out.stderr);
    }
    let f = TempFile::new(
        "[stages.a]\ncache = { ttl_s = 60 }\n[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://127.0.0.1:9000/\" }\n",
    );
    let out = run_cli(&["check", f.path_str()]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("[cache 60s]"), "{}", out.stdout);
}
