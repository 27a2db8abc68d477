//! Process lifecycle: ready line, workers and drivers, graceful shutdown with a
//! request in flight, refusing a port already in use.
mod support;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

fn worker_driver_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("ringway: worker ") && l.contains(": driver "))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn ready_line_names_workers_and_address() {
    let gw = Gateway::start(&mock_route("/", "GET", "hi"));
    let err = gw.stderr_text();
    let expect = format!("ringway: ready: 2 workers on 127.0.0.1:{}", gw.port());
    assert!(err.contains(&expect), "missing {expect:?} in stderr:\n{err}");
    let lines = worker_driver_lines(&err);
    assert_eq!(lines.len(), 2, "one driver line per worker expected:\n{err}");
    for l in &lines {
        let ok = l.ends_with(": driver epoll")
            || l.ends_with(": driver io_uring (coop_taskrun, single_issuer, defer_taskrun)")
            || l.ends_with(": driver io_uring (coop_taskrun, single_issuer)")
            || l.ends_with(": driver io_uring (no setup flags)");
        assert!(ok, "unexpected driver line {l:?}");
    }
    if test_driver() == "epoll" {
        for l in &lines {
            assert!(l.ends_with(": driver epoll"), "RINGWAY_TEST_DRIVER=epoll but {l:?}");
        }
    }
    let r = gw.get("/");
    assert_eq!(r.status, 200);
}

#[test]
fn several_listen_addresses() {
    let gw = Gateway::builder(&mock_route("/", "GET", "hi")).extra_listeners(1).start();
    let other = gw.extra_ports[0];
    let err = gw.stderr_text();
    let ready = err.lines().find(|l| l.starts_with("ringway: ready: ")).unwrap().to_string();
    assert!(
        ready.contains(&format!("127.0.0.1:{}", gw.port())) && ready.contains(&format!("127.0.0.1:{other}")),
        "ready line should list both listeners: {ready:?}"
    );
    assert_eq!(gw.get("/").text(), "hi");
    let mut c = Conn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], other)));
    assert_eq!(c.roundtrip("GET", "/", &[], b"").text(), "hi");
}

#[test]
fn forced_epoll_driver_is_logged_per_worker() {
    let gw = Gateway::builder(&mock_route("/", "GET", "hi")).driver("epoll").start();
    let err = gw.stderr_text();
    for n in 0..2 {
        let l = format!("ringway: worker {n}: driver epoll");
        assert!(err.contains(&l), "missing {l:?} in stderr:\n{err}");
    }
    assert_eq!(gw.get("/").text(), "hi");
}

#[test]
fn forced_io_uring_driver_or_logged_fallback() {
    // io_uring may be unavailable (old kernel, seccomp, qemu-user): then `driver =
    // "io_uring"` fails at start and says why (README); otherwise the gateway serves on it.
    let mut gw = Gateway::builder(&mock_route("/", "GET", "hi")).driver("io_uring").spawn();
    if let Err(e) = gw.wait_ready(Duration::from_secs(10)) {
        assert!(e.contains("driver = \"io_uring\" but io_uring is unavailable"), "{e}");
        return;
    }
    let lines = worker_driver_lines(&gw.stderr_text());
    assert_eq!(lines.len(), 2, "{}", gw.stderr_text());
    assert_eq!(gw.get("/").text(), "hi");
}

#[test]
fn workers_number_is_respected() {
    let gw = Gateway::builder(&mock_route("/", "GET", "hi")).workers(3).start();
    let err = gw.stderr_text();
    assert!(err.contains(&format!("ringway: ready: 3 workers on 127.0.0.1:{}", gw.port())), "{err}");
    assert_eq!(worker_driver_lines(&err).len(), 3, "{err}");
}

#[test]
fn graceful_shutdown_finishes_in_flight_request() {
    let up = Upstream::start(|_| Reply::ok("finished after drain").delay(Duration::from_secs(1)));
    let mut gw = Gateway::start(&petstore_config(&up.hostport()));
    let addr = gw.addr();
    let client = thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.timeout = std::time::Duration::from_secs(10);
        c.roundtrip("GET", "/test/slow", &[], b"")
    });
    // make sure the request is at the upstream before signalling
    let reqs = up.wait_requests(1, Duration::from_secs(5));
    assert_eq!(reqs.len(), 1, "request never reached the upstream");
    gw.sigterm();
    assert!(
        gw.wait_stderr("ringway: shutting down", Duration::from_secs(3)),
        "no shutdown line:\n{}",
        gw.stderr_text()
    );
    let r = client.join().expect("client thread");
    assert_eq!(r.status, 200, "in-flight request during shutdown:\n{r}");
    assert_eq!(r.text(), "finished after drain");
    let st = gw.wait_exit(Duration::from_secs(5)).expect("ringway did not exit after draining");
    assert_eq!(st.code(), Some(0), "exit status {st:?}; stderr:\n{}", gw.stderr_text());
}

#[test]
fn shutdown_stops_accepting_new_connections() {
    let up = Upstream::start(|_| Reply::ok("slow").delay(Duration::from_millis(1500)));
    let mut gw = Gateway::start(&petstore_config(&up.hostport()));
    let addr = gw.addr();
    let inflight = thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.timeout = Duration::from_secs(10);
        c.roundtrip("GET", "/test/slow", &[], b"").status
    });
    up.wait_requests(1, Duration::from_secs(5));
    gw.sigterm();
    assert!(gw.wait_stderr("ringway: shutting down", Duration::from_secs(3)));
    thread::sleep(Duration::from_millis(200));
    // a new client must not be served any more
    match Conn::try_connect(addr) {
        Err(_) => {}
        Ok(mut c) => {
            c.timeout = Duration::from_secs(5);
            let _ = c.try_send(&request("GET", "/test/new", &[], b""));
            if let Ok(r) = c.try_read_response() {
                assert_ne!(r.status, 200, "a connection made after SIGTERM was served:\n{r}");
            }
        }
    }
    assert_eq!(inflight.join().unwrap(), 200);
    let st = gw.wait_exit(Duration::from_secs(5)).expect("no exit");
    assert_eq!(st.code(), Some(0));
    assert_eq!(up.request_count(), 1, "a request accepted after SIGTERM reached the upstream");
}

#[test]
fn sigterm_when_idle_exits_zero_quickly() {
    let mut gw = Gateway::start(&mock_route("/", "GET", "hi"));
    assert_eq!(gw.get("/").status, 200);
    let t = Instant::now();
    gw.sigterm();
    let st = gw.wait_exit(Duration::from_secs(3)).expect("idle gateway did not exit within 3 s of SIGTERM");
    assert_eq!(st.code(), Some(0), "stderr:\n{}", gw.stderr_text());
    assert!(t.elapsed() < Duration::from_secs(3));
    // contract: `ringway: shutting down (draining up to X ms)`
    let err = gw.stderr_text();
    let line = err
        .lines()
        .find(|l| l.starts_with("ringway: shutting down ("))
        .unwrap_or_else(|| panic!("no shutdown line:\n{err}"));
    let tail = line.split("draining up to ").nth(1).unwrap_or("");
    let ms = tail.strip_suffix(" ms)").unwrap_or("");
    assert!(!ms.is_empty() && ms.chars().all(|c| c.is_ascii_digit()), "shutdown line {line:?}");
}

#[test]
fn sigint_exits_zero() {
    let mut gw = Gateway::start(&mock_route("/", "GET", "hi"));
    gw.sigint();
    let st = gw.wait_exit(Duration::from_secs(3)).expect("no exit after SIGINT");
    assert_eq!(st.code(), Some(0), "stderr:\n{}", gw.stderr_text());
}

#[test]
fn idle_keep_alive_client_does_not_hold_up_shutdown() {
    let mut gw = Gateway::builder(&mock_route("/", "GET", "hi")).server("shutdown_timeout_ms = 5000").start();
    let mut c = gw.connect();
    assert_eq!(c.roundtrip("GET", "/", &[], b"").status, 200);
    // c stays open and idle
    let t = Instant::now();
    gw.sigterm();
    let st = gw.wait_exit(Duration::from_secs(8)).expect("no exit with an idle keep-alive client");
    assert_eq!(st.code(), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "an idle keep-alive connection delayed shutdown by {:?}",
        t.elapsed()
    );
    assert_eq!(c.wait_closed(Duration::from_secs(2)), CloseState::Closed);
}

#[test]
fn drain_is_bounded_by_shutdown_timeout() {
    let up = Upstream::start(|_| Reply::ok("never").delay(Duration::from_secs(20)));
    let mut gw = Gateway::builder(&petstore_config(&up.hostport())).server("shutdown_timeout_ms = 500").start();
    let addr = gw.addr();
    let _client = thread::spawn(move || {
        let mut c = Conn::connect(addr);
        c.timeout = Duration::from_secs(10);
        let _ = c.try_send(&request("GET", "/test/stuck", &[], b""));
        let _ = c.try_read_response();
    });
    up.wait_requests(1, Duration::from_secs(5));
    let t = Instant::now();
    gw.sigterm();
    let st = gw.wait_exit(Duration::from_secs(5)).expect("drain not bounded by shutdown_timeout_ms = 500");
    assert!(t.elapsed() < Duration::from_secs(3), "took {:?}", t.elapsed());
    assert_eq!(st.code(), Some(0), "stderr:\n{}", gw.stderr_text());
}

#[test]
fn refuses_to_start_when_port_is_held_by_another_listener() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut gw = Gateway::builder(&mock_route("/", "GET", "hi")).port(port).spawn();
    let st = gw.wait_exit(Duration::from_secs(5)).expect("ringway kept running on a port in use");
    assert!(!st.success(), "exit status {st:?}");
    assert_eq!(st.code(), Some(1), "exit status {st:?}");
    thread::sleep(Duration::from_millis(100));
    let err = gw.stderr_text();
    assert!(err.contains("already in use"), "stderr should say 'already in use':\n{err}");
    drop(holder);
}

#[test]
fn refuses_to_start_when_another_ringway_serves_the_port() {
    // SO_REUSEPORT would let a second instance bind silently: it must refuse
    let first = Gateway::start(&mock_route("/", "GET", "first"));
    let mut second = Gateway::builder(&mock_route("/", "GET", "second")).port(first.port()).spawn();
    let st = second.wait_exit(Duration::from_secs(5));
    let err = second.stderr_text();
    assert!(st.is_some(), "second ringway kept running on the same port; stderr:\n{err}");
    let st = st.unwrap();
    assert!(!st.success(), "{st:?}");
    thread::sleep(Duration::from_millis(100));
    assert!(second.stderr_text().contains("already in use"), "stderr:\n{}", second.stderr_text());
    // the first one is unaffected and is the only one answering
    for _ in 0..10 {
        assert_eq!(first.get("/").text(), "first");
    }
}

#[test]
fn two_ringways_started_at_once_on_one_port_never_both_serve() {
    // Each probes the port before binding it; both probes can pass before either binds.
    // The check after binding must then refuse at least one of them.
    for round in 0..10 {
        let port = free_port();
        let mut a = Gateway::builder(&mock_route("/", "GET", "a")).port(port).spawn();
        let mut b = Gateway::builder(&mock_route("/", "GET", "b")).port(port).spawn();
        let ready_a = a.wait_ready(Duration::from_secs(10)).is_ok();
        let ready_b = b.wait_ready(Duration::from_secs(10)).is_ok();
        assert!(
            !(ready_a && ready_b),
            "round {round}: both serve port {port}\n{}\n{}",
            a.stderr_text(),
            b.stderr_text()
        );
        for (ready, gw) in [(ready_a, &a), (ready_b, &b)] {
            if !ready {
                assert!(gw.stderr_text().contains("already in use"), "round {round}:\n{}", gw.stderr_text());
            }
        }
    }
}

#[test]
fn run_with_bad_config_fails_with_location() {
    let mut gw = Gateway::builder(
        "[[routes]]\npath = \"/{proxy+}/x\"\nmethod = \"GET\"\nintegration = { type = \"mock\", status = 200 }\n",
    )
    .spawn();
    let st = gw.wait_exit(Duration::from_secs(5)).expect("ringway ran with an invalid config");
    assert!(!st.success());
    thread::sleep(Duration::from_millis(100));
    let err = gw.stderr_text();
    let file = gw.config_path().to_str().unwrap().to_string();
    assert!(err.contains(&format!("{file}:")), "error should start with the file name:\n{err}");
}

#[test]
fn run_without_config_serves_the_embedded_demo() {
    // only when the machine has no /etc/ringway/ringway.toml and 8080 and 9901 (admin) are free
    if std::path::Path::new("/etc/ringway/ringway.toml").exists() {
        eprintln!("skipped: /etc/ringway/ringway.toml exists");
        return;
    }
    for addr in ["127.0.0.1:8080", "127.0.0.1:9901"] {
        match TcpListener::bind(addr) {
            Ok(l) => drop(l),
            Err(_) => {
                eprintln!("skipped: {addr} is busy");
                return;
            }
        }
    }
    let mut gw = Gateway::spawn_args(&["run"], 8080);
    gw.wait_ready(READY_TIMEOUT).expect("demo config did not start");
    assert!(gw.stderr_text().contains("on 127.0.0.1:8080"), "{}", gw.stderr_text());
    let r = gw.get("/");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.text().contains("ringway"), "{r}");
    assert_missing_token(&gw.get("/nowhere"), "demo /nowhere");
    gw.sigterm();
    let st = gw.wait_exit(Duration::from_secs(5)).expect("demo did not exit on SIGTERM");
    assert_eq!(st.code(), Some(0));
}

/// Sum of `ringway_open_connections` over the workers.
fn open_connections(gw: &Gateway) -> u64 {
    let text = gw.admin("GET", "/metrics").text();
    text.lines()
        .filter(|l| l.starts_with("ringway_open_connections{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `open_connections` until it is `want` or `within` passes; the last value seen.
fn open_connections_reach(gw: &Gateway, want: u64, within: Duration) -> u64 {
    let end = Instant::now() + within;
    loop {
        let n = open_connections(gw);
        if n == want || Instant::now() >= end {
            return n;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `server.defer_accept` (on by default): a connection is accepted once its first bytes are
/// in, so a silent one is not an open connection yet (the kernel hands it over after about a
/// second); off, it is accepted at once. A reload applies a change to the running listeners.
#[test]
fn defer_accept_holds_silent_connections_until_their_first_bytes() {
    let gw = Gateway::builder(&mock_route("/", "GET", "hi")).server("defer_accept = true").start();
    assert_eq!(open_connections(&gw), 0);
    let mut silent = Conn::connect(gw.addr());
    thread::sleep(Duration::from_millis(300));
    assert_eq!(open_connections(&gw), 0, "a connection that sent nothing was accepted with defer_accept on");
    let r = silent.roundtrip("GET", "/", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "hi"));
    assert_eq!(open_connections_reach(&gw, 1, Duration::from_secs(2)), 1);

    gw.edit_config("defer_accept = true", "defer_accept = false");
    gw.sighup();
    assert!(gw.wait_stderr("reloaded", Duration::from_secs(5)), "no reload:\n{}", gw.stderr_text());
    thread::sleep(Duration::from_millis(200)); // every worker on the new generation
    let before = open_connections(&gw);
    let _silent2 = Conn::connect(gw.addr());
    let seen = open_connections_reach(&gw, before + 1, Duration::from_millis(800));
    assert_eq!(seen, before + 1, "with defer_accept = false a silent connection is accepted at once");
}
