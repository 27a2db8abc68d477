//! Zero-downtime upgrade through the real binary: `ringway run --upgrade` takes the running
//! process's listening sockets over `control_socket`; the old process drains and exits.
//! Three upgrades in a row under steady load: no connection refused, no request lost.
mod support;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn three_upgrades_under_load_refuse_no_connection() {
    let ctl = temp_path("ringway-ctl", "sock");
    let route = "[[routes]]\npath = \"/v\"\nmethod = \"GET\"\nintegration = { type = \"mock\", body = 'v0' }\n";
    let first = Gateway::builder(route).server(&format!("control_socket = \"{}\"", ctl.display())).start();
    let path = first.config_path().to_str().unwrap().to_string();
    let port = first.port();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|i| {
            let (stop, failures, sent, addr) = (stop.clone(), failures.clone(), sent.clone(), first.addr());
            thread::spawn(move || {
                // A new connection per request: every accept goes through the handed-over sockets.
                while !stop.load(Ordering::Relaxed) {
                    let r = Conn::try_connect(addr).map_err(|e| e.to_string()).and_then(|mut c| {
                        c.try_send(&request("GET", "/v", &[("Connection", "close")], b""))
                            .map_err(|e| e.to_string())?;
                        c.try_read_response()
                    });
                    match r {
                        Ok(r) if r.status == 200 => {}
                        other => {
                            eprintln!("client {i}: {other:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Retired processes stay in `retired` (the first one owns the config file) to the end.
    let mut old = first;
    let mut retired = Vec::new();
    for n in 1..=3 {
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(&format!("body = 'v{}'", n - 1), &format!("body = 'v{n}'"))).unwrap();
        let mut new = Gateway::spawn_args(&["run", "--config", &path, "--upgrade"], port);
        new.wait_ready(Duration::from_secs(10)).unwrap_or_else(|e| panic!("upgrade {n}: {e}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = old.wait_exit(Duration::from_millis(50)) {
                break s;
            }
            assert!(Instant::now() < deadline, "the old process did not exit: {}", old.stderr_text());
        };
        assert!(status.success(), "old process: {status:?}\n{}", old.stderr_text());
        assert!(old.stderr_text().contains("handed over"), "{}", old.stderr_text());
        assert_eq!(new.get("/v").text(), format!("v{n}"), "the new process serves the new config");
        retired.push(std::mem::replace(&mut old, new));
    }
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let total = sent.load(Ordering::Relaxed);
    eprintln!("{total} requests on fresh connections across 3 upgrades");
    assert_eq!(failures.load(Ordering::Relaxed), 0, "requests failed or were refused during upgrades");
    assert!(total > 100, "{total}");
    let _ = std::fs::remove_file(&ctl);
    drop(retired);
}

#[test]
fn upgrade_without_a_running_process_fails_clearly() {
    let ctl = temp_path("ringway-ctl-none", "sock");
    let cfg = TempFile::new(&format!(
        "[server]\nlisten = [\"127.0.0.1:{}\"]\ncontrol_socket = \"{}\"\nadmin_listen = \"\"\n[[routes]]\npath = \"/\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\" }}\n",
        free_port(),
        ctl.display()
    ));
    let out = run_cli(&["run", "--config", cfg.path_str(), "--upgrade"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("cannot reach the running process"), "{}", out.stderr);
}

/// Starts ringway as systemd would with socket activation: `l` as fd 3, LISTEN_FDS=1 and
/// LISTEN_PID set to the process's own pid (by a shell that execs it).
fn activated(l: &std::net::TcpListener, config: &str) -> std::process::Child {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = l.as_raw_fd();
    let mut cmd = std::process::Command::new("sh");
    // $RINGWAY_TEST_RUNNER: an emulator that keeps the pid (see support::ringway_command).
    cmd.args(["-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec $RINGWAY_TEST_RUNNER \"$0\" run --config \"$1\"", bin(), config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawn ringway under sh")
}

#[test]
fn systemd_socket_activation_restarts_refuse_no_connection() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let cfg = TempFile::new(&format!(
        "[server]\nlisten = [\"{addr}\"]\nworkers = 2\nadmin_listen = \"\"\nstate_dir = \"{}\"\n[[routes]]\npath = \"/v\"\nmethod = \"GET\"\nintegration = {{ type = \"mock\", body = 'ok' }}\n",
        temp_path("ringway-activated", "d").display()
    ));
    let get = || -> Result<String, String> {
        let mut c = Conn::try_connect(addr).map_err(|e| e.to_string())?;
        c.try_send(&request("GET", "/v", &[("Connection", "close")], b"")).map_err(|e| e.to_string())?;
        c.try_read_response().map(|r| r.text())
    };
    for round in 0..3 {
        let mut child = activated(&l, cfg.path_str());
        // Connections made before this process is up wait in the socket's queue (the test
        // holds it, as systemd does) and are answered once it accepts.
        let answered = get();
        assert_eq!(answered.as_deref(), Ok("ok"), "round {round}");
        for _ in 0..20 {
            assert_eq!(get().as_deref(), Ok("ok"), "round {round}");
        }
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: {status:?}");
    }
}
