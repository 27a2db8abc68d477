//! Hot reload through the real binary: SIGHUP, `ringway reload` and `POST /reload` swap the
//! config while requests keep flowing (none lost, keep-alive connections move to the new
//! config), an invalid config keeps the old one, and quota usage carries over.
mod support;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const ROUTE: &str = "[[routes]]\npath = \"/v\"\nmethod = \"GET\"\nintegration = { type = \"mock\", body = 'v0' }\n";

/// Waits until a fresh connection sees `body` at `target`.
fn wait_body(gw: &Gateway, target: &str, body: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw.get(target);
        if r.status == 200 && r.text() == body {
            return;
        }
        assert!(Instant::now() < deadline, "{target} never answered {body}: {r}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn twenty_reloads_under_load_lose_no_request() {
    let gw = Gateway::start(ROUTE);
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let last_seen = Arc::new(Mutex::new(vec![String::new(); 4]));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, failures, sent, last_seen, addr) =
                (stop.clone(), failures.clone(), sent.clone(), last_seen.clone(), gw.addr());
            thread::spawn(move || {
                // One keep-alive connection per client for the whole test.
                let mut c = Conn::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    match c
                        .try_send(&request("GET", "/v", &[], b""))
                        .map_err(|e| e.to_string())
                        .and_then(|_| c.try_read_response())
                    {
                        Ok(r) if r.status == 200 => last_seen.lock().unwrap()[i] = r.text(),
                        other => {
                            eprintln!("client {i}: {other:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                            c = Conn::connect(addr);
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for n in 1..=20 {
        gw.edit_config(&format!("body = 'v{}'", n - 1), &format!("body = 'v{n}'"));
        gw.sighup();
        wait_body(&gw, "/v", &format!("v{n}"));
    }
    // The long-lived connections moved to the last config too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while last_seen.lock().unwrap().iter().any(|b| b != "v20") {
        assert!(Instant::now() < deadline, "{:?}", last_seen.lock().unwrap());
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    eprintln!("{total} requests across 20 reloads");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed during reloads");
    assert!(total > 200, "{total}");
    assert_eq!(gw.stderr_text().matches("reloaded ").count(), 20, "{}", gw.stderr_text());
    let metrics = gw.admin("GET", "/metrics").text();
    assert!(metrics.contains("ringway_config_reloads_total{result=\"success\"} 20"), "{metrics}");
}

#[test]
fn an_invalid_config_keeps_the_running_one() {
    let gw = Gateway::start(ROUTE);
    gw.edit_config("body = 'v0'", "body = v1-without-quotes");
    gw.sighup();
    assert!(gw.wait_stderr("reload failed", Duration::from_secs(5)), "{}", gw.stderr_text());
    let err = gw.stderr_text();
    let path = gw.config_path().to_str().unwrap().to_string();
    assert!(err.lines().any(|l| l.contains("reload failed") && l.contains(&format!("{path}:"))), "{err}");
    let r = gw.get("/v");
    assert_eq!((r.status, r.text()), (200, "v0".to_string()));
    let metrics = gw.admin("GET", "/metrics").text();
    assert!(metrics.contains("ringway_config_reloads_total{result=\"failure\"} 1"), "{metrics}");
    // Fixed: the next reload works.
    gw.edit_config("body = v1-without-quotes", "body = 'v1'");
    gw.sighup();
    wait_body(&gw, "/v", "v1");
}

#[test]
fn reload_command_and_admin_endpoint() {
    let gw = Gateway::start(ROUTE);
    let path = gw.config_path().to_str().unwrap().to_string();
    gw.edit_config("body = 'v0'", "body = 'v1'");
    let out = run_cli(&["reload", "--config", &path]);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.contains("reloaded"), "{}", out.stdout);
    wait_body(&gw, "/v", "v1");
    // An invalid file is refused by the command itself, with its line and column.
    gw.edit_config("body = 'v1'", "body = ");
    let out = run_cli(&["reload", "--config", &path]);
    assert!(!out.status.success());
    assert!(out.stderr.contains(&format!("{path}:")), "{}", out.stderr);
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 400, "{r}");
    assert!(r.text().contains("failed"), "{r}");
    assert_eq!(gw.get("/v").text(), "v1");
    gw.edit_config("body = ", "body = 'v2'");
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 200, "{r}");
    wait_body(&gw, "/v", "v2");
}

#[test]
fn a_connection_opened_after_a_reload_returns_sees_the_new_config() {
    // POST /reload answers once the new plan is published; workers move to it on their tick
    // (50 ms). A connection accepted in between waits for that move, so the very first
    // request after the answer already sees the new body, on whichever worker takes it.
    let gw = Gateway::start(ROUTE);
    for n in 1..=10 {
        gw.edit_config(&format!("body = 'v{}'", n - 1), &format!("body = 'v{n}'"));
        let r = gw.admin("POST", "/reload");
        assert_eq!(r.status, 200, "{r}");
        for _ in 0..4 {
            let r = gw.get("/v");
            assert_eq!((r.status, r.text()), (200, format!("v{n}")), "reload {n}: {r}");
        }
        // Let the tick move past the reload sometimes, land right after it other times.
        thread::sleep(Duration::from_millis(n * 7));
    }
}

#[test]
fn an_idle_keep_alive_connection_serves_its_next_request_on_the_new_config() {
    // Connections idle between two requests when the reload lands (on both workers): their
    // next request is served on the new plan, not the one they were waiting on.
    let gw = Gateway::start(ROUTE);
    let mut conns: Vec<Conn> = (0..8).map(|_| gw.connect()).collect();
    for c in &mut conns {
        assert_eq!(c.roundtrip("GET", "/v", &[], b"").text(), "v0");
    }
    gw.edit_config("body = 'v0'", "body = 'v1'");
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 200, "{r}");
    // Past the workers' tick: they have switched while every connection sat idle.
    thread::sleep(Duration::from_millis(300));
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.roundtrip("GET", "/v", &[], b"");
        assert_eq!((r.status, r.text()), (200, "v1".to_string()), "connection {i}: {r}");
    }
}

#[test]
fn an_access_log_that_cannot_be_opened_fails_the_reload() {
    let gw = Gateway::start(ROUTE);
    let dir = temp_path("ringway-reload-log", "d");
    let log = dir.join("access.log");
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let with_log = format!("[access_log]\ntarget = \"{}\"\n{}", log.display(), text.replace("'v0'", "'v1'"));
    std::fs::write(gw.config_path(), &with_log).unwrap();
    // The directory does not exist: refused, with the path, and the old plan stays.
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 400, "{r}");
    assert!(r.text().contains("cannot open the access log") && r.text().contains("access.log"), "{r}");
    for _ in 0..4 {
        assert_eq!(gw.get("/v").text(), "v0");
    }
    // Once it can be opened, the same file reloads and every worker writes to it.
    std::fs::create_dir_all(&dir).unwrap();
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 200, "{r}");
    for _ in 0..4 {
        assert_eq!(gw.get("/v").text(), "v1");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&log).unwrap_or_default().lines().count() < 4 {
        assert!(Instant::now() < deadline, "{:?}", std::fs::read_to_string(&log));
        thread::sleep(Duration::from_millis(50));
    }
    assert!(!gw.stderr_text().contains("staying on generation"), "{}", gw.stderr_text());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quota_usage_and_new_routes_after_a_reload() {
    const KEY: &str = "reloadkey-0123456789abcdef";
    let cfg = format!(
        "[usage_plans.p]\nquota = {{ limit = 5, period = \"DAY\" }}\n[[api_keys]]\nid = \"k\"\nvalue = \"{KEY}\"\nplan = \"p\"\n\
         [[routes]]\npath = \"/q\"\nmethod = \"GET\"\napi_key_required = true\nintegration = {{ type = \"mock\", body = 'q0' }}\n"
    );
    let gw = Gateway::builder(&cfg)
        .server(&format!("state_dir = \"{}\"", temp_path("ringway-reload-state", "d").display()))
        .start();
    let key = [("x-api-key", KEY)];
    for _ in 0..3 {
        assert_eq!(gw.send("GET", "/q", &key, b"").status, 200);
    }
    gw.edit_config(
        "body = 'q0' }",
        "body = 'q1' }\n[[routes]]\npath = \"/new\"\nmethod = \"GET\"\nintegration = { type = \"mock\", body = 'new' }",
    );
    gw.sighup();
    wait_body(&gw, "/new", "new");
    let statuses: Vec<u16> = (0..3).map(|_| gw.send("GET", "/q", &key, b"").status).collect();
    assert_eq!(statuses, [200, 200, 429], "3 of 5 were used before the reload");
    assert_eq!(gw.send("GET", "/q", &key, b"").text(), r#"{"message":"Limit Exceeded"}"#);
}

#[test]
fn idle_upstream_connections_survive_a_reload() {
    let up = Upstream::fixed("up");
    let cfg = format!("{ROUTE}[[routes]]\npath = \"/p\"\nmethod = \"GET\"\nintegration = {{ type = \"http_proxy\", uri = \"http://{}/p\" }}\n", up.hostport());
    let gw = Gateway::builder(&cfg).workers(1).start();
    for _ in 0..5 {
        assert_eq!(gw.get("/p").status, 200);
    }
    gw.edit_config("body = 'v0'", "body = 'v1'");
    gw.sighup();
    wait_body(&gw, "/v", "v1");
    for _ in 0..5 {
        assert_eq!(gw.get("/p").status, 200);
    }
    assert_eq!(up.connections(), 1, "the pooled upstream connection moved to the new config");
}

#[test]
fn listen_addresses_follow_the_config() {
    let gw = Gateway::start(ROUTE);
    let (first, extra) = (gw.port(), free_port());
    let at = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    gw.edit_config(
        &format!("listen = [\"127.0.0.1:{first}\"]"),
        &format!("listen = [\"127.0.0.1:{first}\", \"127.0.0.1:{extra}\"]"),
    );
    gw.sighup();
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        if let Ok(mut c) = Conn::try_connect(at(extra)) {
            if let Ok(r) = c
                .try_send(&request("GET", "/v", &[], b""))
                .map_err(|e| e.to_string())
                .and_then(|_| c.try_read_response())
            {
                break r;
            }
        }
        assert!(Instant::now() < deadline, "the added address never answered: {}", gw.stderr_text());
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!((r.status, r.text()), (200, "v0".to_string()));
    // Drop the first address: it stops accepting, the other keeps serving.
    gw.edit_config(&format!("listen = [\"127.0.0.1:{first}\", "), "listen = [");
    gw.sighup();
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(at(first)).is_ok() {
        assert!(Instant::now() < deadline, "the removed address still accepts");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(Conn::connect(at(extra)).roundtrip("GET", "/v", &[], b"").text(), "v0");
    // A port another process holds fails the reload and changes nothing.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    gw.edit_config("listen = [", &format!("listen = [\"127.0.0.1:{port}\", "));
    let r = gw.admin("POST", "/reload");
    assert_eq!(r.status, 400, "{r}");
    assert!(r.text().contains(&format!("127.0.0.1:{port}")), "{r}");
    assert_eq!(Conn::connect(at(extra)).roundtrip("GET", "/v", &[], b"").text(), "v0");
}
