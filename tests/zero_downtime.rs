//! Issue 7's acceptance run: wrk at steady load through ringway (keep-alive and
//! connection-per-request clients at once) while it reloads 20 times with changed routes
//! and is upgraded 3 times (`run --upgrade` over `control_socket`). wrk must report zero
//! socket errors and zero non-2xx responses.
mod support;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn wrk(port: u16, conns: &str, secs: u64, close: bool) -> std::process::Child {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c", conns, "-d", &format!("{secs}s"), "--timeout", "5s"]);
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/v"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk (Debian package wrk; scripts/test installs it)")
}

/// (requests, socket errors line or "", non-2xx count) from wrk's report.
fn wrk_result(child: std::process::Child) -> (u64, String, u64, String) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = text.lines().find(|l| l.contains("Socket errors")).unwrap_or("").trim().to_string();
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (requests, errors, non2xx, text)
}

fn wait_status(port: u16, target: &str, want: u16) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = Conn::try_connect(addr).ok().and_then(|mut c| {
            c.try_send(&request("GET", target, &[("Connection", "close")], b"")).ok()?;
            c.try_read_response().ok().map(|r| r.status)
        });
        if got == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{target} never answered {want} (last: {got:?})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn wrk_sees_no_error_across_20_reloads_and_3_upgrades() {
    let up = Upstream::fixed("steady");
    let ctl = temp_path("ringway-ctl", "sock");
    let body = format!(
        "[[routes]]\npath = \"/v\"\nmethod = \"GET\"\nintegration = {{ type = \"http_proxy\", uri = \"http://{}/v\" }}\n# routes\n",
        up.hostport()
    );
    let first = Gateway::builder(&body).server(&format!("control_socket = \"{}\"", ctl.display())).start();
    let path = first.config_path().to_str().unwrap().to_string();
    let port = first.port();
    let keepalive = wrk(port, "8", 30, false);
    let fresh = wrk(port, "4", 30, true);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));

    let mut current = first;
    let mut retired = Vec::new();
    let mut reloads = 0;
    for upgrade in 1..=3 {
        for _ in 0..7 {
            if reloads == 20 {
                break;
            }
            reloads += 1;
            // A changed route table: one more route each time.
            let text = std::fs::read_to_string(&path).unwrap();
            let route = format!(
                "[[routes]]\npath = \"/r{reloads}\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\", body = 'r' }}\n"
            );
            std::fs::write(&path, format!("{text}{route}")).unwrap();
            current.sighup();
            wait_status(port, &format!("/r{reloads}"), 200);
            std::thread::sleep(Duration::from_millis(150));
        }
        let mut new = Gateway::spawn_args(&["run", "--config", &path, "--upgrade"], port);
        new.wait_ready(Duration::from_secs(10)).unwrap_or_else(|e| panic!("upgrade {upgrade}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while current.wait_exit(Duration::from_millis(50)).is_none() {
            assert!(Instant::now() < deadline, "the old process did not exit: {}", current.stderr_text());
        }
        retired.push(std::mem::replace(&mut current, new));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(reloads, 20);
    assert!(started.elapsed() < Duration::from_secs(27), "the run outlasted wrk: {:?}", started.elapsed());
    for (name, child) in [("keep-alive", keepalive), ("connection: close", fresh)] {
        let (requests, errors, non2xx, text) = wrk_result(child);
        eprintln!("wrk {name}: {requests} requests; {}", if errors.is_empty() { "no socket errors" } else { &errors });
        assert!(requests > 1000, "{name}: {text}");
        assert!(errors.is_empty(), "{name}: {text}");
        assert_eq!(non2xx, 0, "{name}: {text}");
    }
    let log = retired.iter().map(|g| g.stderr_text()).collect::<Vec<_>>().join("\n") + &current.stderr_text();
    assert_eq!(log.matches("reloaded ").count(), 20, "{log}");
    assert_eq!(log.matches("handed over").count(), 3, "{log}");
    let _ = std::fs::remove_file(&ctl);
}
