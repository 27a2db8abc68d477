//! TLS through the real binary, with real peers: certificates made by the openssl CLI,
//! curl and `openssl s_client` as clients (SNI, TLS 1.2/1.3, ALPN, resumption), and nginx
//! as an HTTPS upstream (verification, SNI, pooled connections, insecure mode).
mod support;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// curl through the gateway's TLS port with `host` resolved to loopback; returns
/// (exit code, stdout, stderr).
fn curl(port: u16, host: &str, path: &str, extra: &[&str]) -> (i32, String, String) {
    let url = format!("https://{host}:{port}{path}");
    let resolve = format!("{host}:{port}:127.0.0.1");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve", &resolve])
        .args(extra)
        .arg(&url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `openssl s_client` to the gateway's TLS port; sends `input` and returns what it printed.
fn s_client(port: u16, args: &[&str], input: &str) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &connect])
        // With a request to send, read until the server closes; without, leave at once.
        .args(if input.is_empty() { &[][..] } else { &["-ign_eof"][..] })
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = wait_output(child, Duration::from_secs(10));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn tls_config(pki: &Pki, port: u16, extra: &str) -> String {
    format!(
        r#"
[[server.tls]]
listen = "127.0.0.1:{port}"
certs = [
  {{ cert = "{a}", key = "{ak}", server_names = ["a.test", "*.b.test"] }},
  {{ cert = "{c}", key = "{ck}", server_names = ["c.test"] }},
]
{extra}

[[routes]]
path = "/hello"
method = "GET"
integration = {{ type = "mock", status = 200, body = "hello over tls" }}
"#,
        a = pki.path("a.pem"),
        ak = pki.path("a.key"),
        c = pki.path("c.pem"),
        ck = pki.path("c.key"),
    )
}

fn pki_with_leaves() -> Pki {
    let pki = Pki::new();
    pki.leaf("a", "a.test", "DNS:a.test,DNS:*.b.test", false, false);
    pki.leaf("c", "c.test", "DNS:c.test", false, true);
    pki
}

#[test]
fn tls_listener_serves_https_with_sni_and_verified_chains() {
    let pki = pki_with_leaves();
    let port = free_port();
    let gw = Gateway::start(&tls_config(&pki, port, ""));
    let ca = pki.path("ca.pem");
    for host in ["a.test", "x.b.test", "c.test"] {
        // curl verifies the chain and that the certificate is valid for the name it asked:
        // success means SNI picked the right certificate.
        let (code, body, err) = curl(port, host, "/hello", &["--cacert", &ca]);
        assert_eq!((code, body.as_str()), (0, "hello over tls"), "{host}: {err}");
    }
    // The plain listener still speaks plain HTTP.
    assert_eq!(gw.get("/hello").text(), "hello over tls");
    // No SNI or an unknown name: the first certificate.
    for args in [&["-noservername"][..], &["-servername", "unknown.example"][..]] {
        let out = s_client(port, args, "");
        assert!(out.contains("CN = a.test") || out.contains("CN=a.test"), "{args:?}: {out}");
    }
    let out = s_client(port, &["-servername", "c.test"], "");
    assert!(out.contains("CN = c.test") || out.contains("CN=c.test"), "{out}");
}

#[test]
fn tls_versions_alpn_keepalive_and_resumption() {
    let pki = pki_with_leaves();
    let port = free_port();
    let _gw = Gateway::start(&tls_config(&pki, port, ""));
    let ca = pki.path("ca.pem");
    let req =
        "GET /hello HTTP/1.1\r\nHost: a.test\r\n\r\nGET /hello HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(port, &[flag, "-servername", "a.test", "-CAfile", &ca, "-alpn", "h2,http/1.1"], req);
        assert!(out.contains(&format!("Protocol  : {version}")) || out.contains(&format!("New, {version}")), "{out}");
        assert!(out.contains("ALPN protocol: http/1.1"), "ALPN must pick http/1.1: {out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        // Two pipelined requests on one TLS connection, both answered.
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
        assert_eq!(out.matches("hello over tls").count(), 2, "{out}");
    }
    // A client that offers only h2 is refused (RFC 7301: no_application_protocol).
    let out = s_client(port, &["-servername", "a.test", "-alpn", "h2"], req);
    assert!(!out.contains("ALPN protocol: h2") && !out.contains("HTTP/1.1 200"), "{out}");

    // Resumption: TLS 1.2 (session ticket) and TLS 1.3 (PSK ticket) both resume.
    for flag in ["-tls1_2", "-tls1_3"] {
        let sess = pki.path(&format!("sess{flag}"));
        let first = s_client(port, &[flag, "-servername", "a.test", "-sess_out", &sess], req);
        assert!(first.contains("New, TLS"), "{first}");
        let second = s_client(port, &[flag, "-servername", "a.test", "-sess_in", &sess], req);
        assert!(second.contains("Reused, TLS"), "{flag}: the second connection did not resume:\n{second}");
        assert_eq!(second.matches("hello over tls").count(), 2, "{second}");
    }
}

#[test]
fn tls13_only_listener_refuses_tls12() {
    let pki = pki_with_leaves();
    let port = free_port();
    let _gw = Gateway::start(&tls_config(&pki, port, "min_version = \"1.3\""));
    let ca = pki.path("ca.pem");
    let (code, _, err) = curl(port, "a.test", "/hello", &["--cacert", &ca, "--tlsv1.2", "--tls-max", "1.2"]);
    assert_ne!(code, 0, "TLS 1.2 must be refused: {err}");
    let (code, body, err) = curl(port, "a.test", "/hello", &["--cacert", &ca, "--tlsv1.3"]);
    assert_eq!((code, body.as_str()), (0, "hello over tls"), "{err}");
}

#[test]
fn failed_handshakes_are_counted_and_do_not_disturb_the_listener() {
    let pki = pki_with_leaves();
    let port = free_port();
    let gw = Gateway::start(&tls_config(&pki, port, ""));
    // Plain HTTP to the TLS port: the handshake fails; the connection is closed.
    let mut c = Conn::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let _ = c.try_send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(!matches!(c.wait_closed(Duration::from_secs(5)), CloseState::Open), "left open");
    // The listener goes on serving TLS clients.
    let (code, body, err) = curl(port, "a.test", "/hello", &["--cacert", &pki.path("ca.pem")]);
    assert_eq!((code, body.as_str()), (0, "hello over tls"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = gw.admin("GET", "/metrics").text();
        let ok = m.contains("ringway_tls_handshakes_total{result=\"ok\"} 1");
        if ok && m.contains("ringway_tls_handshakes_total{result=\"failed\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_certificates_are_config_errors_naming_the_file() {
    let pki = pki_with_leaves();
    let port = free_port();
    // The key of c with the certificate of a.
    let mismatched = tls_config(&pki, port, "").replace(&pki.path("a.key"), &pki.path("c.key"));
    let missing = tls_config(&pki, port, "").replace(&pki.path("c.pem"), &pki.path("nope.pem"));
    let not_pem = tls_config(&pki, port, "").replace(&pki.path("a.pem"), &pki.path("a.ext"));
    for (config, needle) in [(mismatched, "does not match the certificate"), (missing, "nope.pem"), (not_pem, "a.ext")]
    {
        let f = TempFile::new(&config);
        let out = run_cli(&["check", f.path.to_str().unwrap()]);
        let err = out.stderr.clone();
        assert!(!out.status.success(), "{config}");
        assert!(err.contains(needle), "{needle}: {err}");
        // file:line:col of the cert or key value.
        let at = format!("{}:", f.path.display());
        assert!(
            err.lines()
                .any(|l| l.starts_with(&at) && l[at.len()..].split(':').take(2).all(|n| n.parse::<u32>().is_ok())),
            "{err}"
        );
    }
}

#[test]
fn certificates_are_reloaded_with_the_config() {
    let pki = pki_with_leaves();
    let port = free_port();
    let gw = Gateway::start(&tls_config(&pki, port, ""));
    let out = s_client(port, &["-servername", "a.test"], "");
    assert!(out.contains("CN = a.test") || out.contains("CN=a.test"), "{out}");
    // A renewed certificate for the same names, under a new subject, in the same files.
    pki.leaf("a", "a.test renewed", "DNS:a.test,DNS:*.b.test", false, false);
    gw.sighup();
    assert!(gw.wait_stderr("reloaded ", Duration::from_secs(5)), "{}", gw.stderr_text());
    let out = s_client(port, &["-servername", "a.test"], "");
    assert!(out.contains("a.test renewed"), "new connections get the new certificate: {out}");
    // A broken file on reload: the old certificates stay in service.
    std::fs::write(pki.path("a.key"), "not a key").unwrap();
    gw.sighup();
    assert!(gw.wait_stderr("reload failed", Duration::from_secs(5)), "{}", gw.stderr_text());
    let (code, body, err) = curl(port, "a.test", "/hello", &["--cacert", &pki.path("ca.pem")]);
    assert_eq!((code, body.as_str()), (0, "hello over tls"), "{err}");
}

fn upstream_config(uri: &str, tls: &str) -> String {
    format!(
        r#"
[[routes]]
path = "/up/{{proxy+}}"
method = "ANY"
integration = {{ type = "http_proxy", uri = "{uri}/{{proxy}}"{tls} }}
"#
    )
}

#[test]
fn https_upstream_is_verified_and_pooled() {
    let pki = pki_with_leaves();
    let nginx = Nginx::start(&pki.path("a.pem"), &pki.path("a.key"));
    let ca = pki.path("ca.pem");
    // By name (SNI a.test, checked against the certificate), trusted through ca_file.
    let uri = format!("https://127.0.0.1:{}", nginx.port);
    let tls = format!(", tls = {{ ca_file = \"{ca}\", server_name = \"a.test\" }}");
    let gw = Gateway::start(&upstream_config(&uri, &tls));
    let mut c = gw.connect();
    let mut conns = Vec::new();
    for i in 0..5 {
        let r = c.roundtrip("GET", &format!("/up/x{i}"), &[], b"");
        assert_eq!(r.status, 200, "{r}");
        let t = r.text();
        assert!(t.contains("sni=a.test") && t.contains(&format!("uri=/x{i}")), "{t}");
        conns.push(t.split_whitespace().next().unwrap().to_string());
    }
    conns.dedup();
    assert_eq!(conns.len(), 1, "one pooled TLS connection serves all five: {conns:?}");
    drop(gw);

    // The wrong name for the certificate: refused, 502 with the reference body.
    let tls = format!(", tls = {{ ca_file = \"{ca}\", server_name = \"wrong.test\" }}");
    let gw = Gateway::start(&upstream_config(&uri, &tls));
    let r = gw.get("/up/y");
    assert_eq!((r.status, r.text()), (502, r#"{"message": "Internal server error"}"#.to_string()), "{r}");
    drop(gw);

    // Not trusted (the system store does not know the test CA): refused.
    let gw = Gateway::start(&upstream_config(&uri, ""));
    assert_eq!(gw.get("/up/z").status, 502);
}

#[test]
fn insecure_skip_verification_accepts_a_self_signed_upstream() {
    let pki = Pki::new();
    pki.leaf("self", "lab.internal", "DNS:lab.internal", true, false);
    let nginx = Nginx::start(&pki.path("self.pem"), &pki.path("self.key"));
    let uri = format!("https://127.0.0.1:{}", nginx.port);
    let gw = Gateway::start(&upstream_config(&uri, ", tls = { insecure_skip_verification = true }"));
    let r = gw.get("/up/lab");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.text().contains("uri=/lab"), "{}", r.text());
    drop(gw);
    let gw = Gateway::start(&upstream_config(&uri, ""));
    assert_eq!(gw.get("/up/lab").status, 502, "verification is on by default");
}

#[test]
fn tls_settings_are_checked() {
    for (body, needle) in [
        (
            upstream_config("http://127.0.0.1:9443", ", tls = { insecure_skip_verification = true }"),
            "https:// upstreams only",
        ),
        (
            upstream_config("https://127.0.0.1:9443", ", tls = { ca_file = \"/nonexistent/ca.pem\" }"),
            "/nonexistent/ca.pem",
        ),
        (
            upstream_config("https://127.0.0.1:9443", ", tls = { server_name = \"bad name\" }"),
            "not a valid TLS server name",
        ),
    ] {
        let f = TempFile::new(&body);
        let out = run_cli(&["check", f.path.to_str().unwrap()]);
        let err = out.stderr.clone();
        assert!(!out.status.success() && err.contains(needle), "{needle}: {err}");
    }
}
