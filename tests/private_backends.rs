//! Private backends: upstreams on Unix domain sockets, and `[upstreams.NAME]` groups
//! (round-robin, least-outstanding, passive ejection, connect failover), through the real
//! binary against real servers.
mod support;
use std::thread;
use std::time::Duration;
use support::*;

fn group_config(name: &str, targets: &[String], extra: &str) -> String {
    let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
    format!(
        r#"
[upstreams.{name}]
targets = [{}]
{extra}

[[routes]]
path = "/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "http://{name}/base/{{proxy}}" }}
"#,
        list.join(", ")
    )
}

fn tagged(tag: &'static str) -> Upstream {
    Upstream::start(move |_| Reply::ok(tag))
}

#[test]
fn unix_socket_upstream_gets_the_request_and_is_pooled() {
    let sock = temp_path("ringway-up", "sock");
    let up = Upstream::start_unix(&sock, Reply::echo);
    let gw = Gateway::start(&format!(
        r#"
[[routes]]
path = "/pets/{{id}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "unix:{}:/petstore/pets/{{id}}?src=unix" }}
"#,
        sock.display()
    ));
    let mut c = gw.connect();
    for i in 0..20 {
        let r = c.roundtrip("GET", &format!("/pets/{i}"), &[], b"");
        assert_eq!(r.status, 200, "{r}");
    }
    let reqs = up.requests();
    assert_eq!(reqs.len(), 20);
    assert_eq!(reqs[3].target, "/petstore/pets/3?src=unix");
    assert_eq!(reqs[3].header("host"), Some("localhost"));
    assert!(up.connections() <= 2, "20 requests used {} unix connections", up.connections());
}

#[test]
fn unix_socket_missing_is_a_502_and_the_gateway_keeps_serving() {
    let sock = temp_path("ringway-none", "sock");
    let gw = Gateway::start(&format!(
        "[[routes]]\npath = \"/x\"\nmethod = \"GET\"\nintegration = {{ type = \"http_proxy\", uri = \"unix:{}:/x\" }}\n",
        sock.display()
    ));
    let r = gw.get("/x");
    assert_eq!(r.status, 502, "{r}");
    // The socket appears: the next request reaches it.
    let up = Upstream::start_unix(&sock, |_| Reply::ok("now"));
    let r = gw.get("/x");
    assert_eq!((r.status, r.text()), (200, "now".to_string()), "{r}");
    assert_eq!(up.request_count(), 1);
}

#[test]
fn round_robin_spreads_requests_evenly_over_tcp_and_unix_targets() {
    let (a, b) = (tagged("a"), tagged("b"));
    let sock = temp_path("ringway-rr", "sock");
    let u = Upstream::start_unix(&sock, |_| Reply::ok("u"));
    let targets = [a.hostport(), b.hostport(), format!("unix:{}", sock.display())];
    let gw = Gateway::builder(&group_config("app", &targets, "host = \"app.internal\"")).workers(1).start();
    let mut c = gw.connect();
    let mut seen = String::new();
    for i in 0..30 {
        let r = c.roundtrip("GET", &format!("/item/{i}"), &[], b"");
        assert_eq!(r.status, 200, "{r}");
        seen.push_str(&r.text());
    }
    assert_eq!(&seen[..6], "abuabu", "round-robin order: {seen}");
    assert_eq!((a.request_count(), b.request_count(), u.request_count()), (10, 10, 10));
    let r = a.last_request();
    assert_eq!(r.header("host"), Some("app.internal"));
    assert!(r.target.starts_with("/base/item/"), "{}", r.target);
}

#[test]
fn refused_connections_fail_over_to_the_next_target() {
    let good = tagged("good");
    let dead = format!("127.0.0.1:{}", free_port());
    let gw = Gateway::builder(&group_config("app", &[dead, good.hostport()], "")).workers(1).start();
    let mut c = gw.connect();
    for i in 0..10 {
        let r = c.roundtrip("POST", &format!("/o/{i}"), &[], b"payload");
        assert_eq!((r.status, r.text()), (200, "good".to_string()), "request {i}: {r}");
    }
    assert_eq!(good.request_count(), 10);
    assert_eq!(good.last_request().body_text(), "payload");
}

#[test]
fn failing_target_is_ejected_then_retried_after_the_backoff() {
    let good = tagged("good");
    let bad = Upstream::start(|_| Reply::close());
    let extra = "max_fails = 2\neject_ms = 1500";
    let gw = Gateway::builder(&group_config("app", &[bad.hostport(), good.hostport()], extra)).workers(1).start();
    let mut c = gw.connect();
    let mut failures = 0;
    for i in 0..20 {
        let r = c.roundtrip("GET", &format!("/e/{i}"), &[], b"");
        if r.status == 502 {
            failures += 1;
            assert!(r.text().contains("Internal server error"), "{r}");
            c = gw.connect();
        } else {
            assert_eq!(r.text(), "good", "{r}");
        }
    }
    assert_eq!(bad.request_count(), 2, "two failures in a row eject the target");
    assert_eq!(failures, 2);
    assert_eq!(good.request_count(), 18);
    // After the ejection the target gets one more chance, fails, and is ejected again (for longer).
    thread::sleep(Duration::from_millis(1700));
    for i in 0..6 {
        let _ = gw.send("GET", &format!("/again/{i}"), &[], b"");
    }
    assert_eq!(bad.request_count(), 3, "one probe after the backoff");
}

#[test]
fn least_outstanding_sends_new_requests_to_the_idle_target() {
    let slow = Upstream::start(|_| Reply::ok("slow").delay(Duration::from_millis(800)));
    let fast = tagged("fast");
    let extra = "balance = \"least_outstanding\"";
    let gw = Gateway::builder(&group_config("app", &[slow.hostport(), fast.hostport()], extra)).workers(1).start();
    let addr = gw.addr();
    let h = thread::spawn(move || Conn::connect(addr).roundtrip("GET", "/first", &[], b"").text());
    slow.wait_requests(1, Duration::from_secs(5));
    let mut c = gw.connect();
    for i in 0..6 {
        let r = c.roundtrip("GET", &format!("/next/{i}"), &[], b"");
        assert_eq!(r.text(), "fast", "request {i} while the slow target is busy: {r}");
    }
    assert_eq!(h.join().unwrap(), "slow");
    assert_eq!(slow.request_count(), 1);
}

#[test]
fn group_config_errors_point_at_the_value() {
    let route =
        "[[routes]]\npath = \"/a\"\nmethod = \"GET\"\nintegration = { type = \"http_proxy\", uri = \"http://app/\" }\n";
    let cases = [
        ("[upstreams.app]\ntargets = []\n", "needs at least one target", 1),
        ("[upstreams.app]\ntargets = [\"127.0.0.1:9000\"]\nbalance = \"random\"\n", "balance must be", 3),
        ("[upstreams.app]\ntargets = [\"127.0.0.1:9000/x\"]\n", "without a path", 2),
        ("[upstreams.app]\ntargets = [\"127.0.0.1:9000\", \"127.0.0.1:9000\"]\n", "listed twice", 2),
        ("[upstreams.app]\ntargets = [\"unix:rel.sock\"]\n", "unix:/absolute", 2),
        ("[upstreams.app]\ntargets = [\"127.0.0.1:9000\"]\nmax_fails = 0\n", "max_fails must be between", 3),
        ("[upstreams.app]\ntargets = [\"127.0.0.1:9000\"]\nweight = 2\n", "unknown field `weight`", 3),
    ];
    for (cfg, msg, line) in cases {
        let f = TempFile::new(&format!("{cfg}{route}"));
        let out = run_cli(&["check", f.path_str()]);
        assert!(!out.status.success(), "{cfg}");
        assert!(out.stderr.contains(msg), "{cfg}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{}:{line}:", f.path_str())), "{cfg}: {}", out.stderr);
    }
}
