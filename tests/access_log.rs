//! Access logs through the real binary: the CLF and JSON presets, a custom format, rotation
//! by SIGUSR1, and a destination nobody reads (a FIFO) not stalling requests.
mod support;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};
use support::*;

fn config(up: &Upstream, target: &Path, format: &str) -> String {
    format!(
        r#"
[access_log]
target = "{}"
format = '{format}'

[stages.prod]

[[routes]]
path = "/pets/{{petId}}"
method = "GET"
integration = {{ type = "http_proxy", uri = "http://{up}/pets/{{petId}}" }}
"#,
        target.display(),
        up = up.hostport()
    )
}

/// The file's lines once it has `n` of them (workers flush every 200 ms).
fn lines(path: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} has {} lines, want {n}:\n{text}", path.display(), lines.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn clf_preset() {
    let up = Upstream::fixed("hello");
    let log = temp_path("ringway-access", "log");
    let gw = Gateway::start(&config(&up, &log, "clf"));
    let r = gw.get("/prod/pets/7");
    assert_eq!(r.status, 200);
    let id = r.header("x-amzn-RequestId").unwrap().to_string();
    let line = &lines(&log, 1)[0];
    // $context.identity.sourceIp $context.identity.caller $context.identity.user [$context.requestTime]
    // "$context.httpMethod $context.resourcePath $context.protocol" $context.status
    // $context.responseLength $context.requestId $context.extendedRequestId
    let (before, after) = line.split_once(" [").unwrap();
    assert_eq!(before, "127.0.0.1 - -");
    let (time, rest) = after.split_once("] ").unwrap();
    assert_eq!(time.len(), "21/Nov/2026:20:10:00 +0000".len(), "{time}");
    assert!(time.ends_with(" +0000"), "{time}");
    assert_eq!(rest, format!("\"GET /pets/{{petId}} HTTP/1.1\" 200 5 {id} {id}"));
    let _ = fs::remove_file(&log);
}

#[test]
fn json_preset() {
    let up = Upstream::fixed("hello");
    let log = temp_path("ringway-access", "json");
    let gw = Gateway::start(&config(&up, &log, "json"));
    let mut c = gw.connect();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            c.roundtrip("GET", &format!("/prod/pets/{i}"), &[], b"").header("x-amzn-RequestId").unwrap().to_string()
        })
        .collect();
    assert_eq!(c.roundtrip("GET", "/prod/none", &[], b"").status, 403);
    let lines = lines(&log, 4);
    let v: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    for (i, id) in ids.iter().enumerate() {
        let e = v.iter().find(|e| e["requestId"] == id.as_str()).unwrap_or_else(|| panic!("{id} not logged"));
        assert_eq!(e["ip"], "127.0.0.1");
        assert_eq!(e["httpMethod"], "GET");
        assert_eq!(e["resourcePath"], "/pets/{petId}");
        assert_eq!(e["status"], "200");
        assert_eq!(e["protocol"], "HTTP/1.1");
        assert_eq!(e["responseLength"], "5", "line {i}");
    }
    assert!(v.iter().any(|e| e["status"] == "403" && e["resourcePath"] == "-"), "{lines:?}");
    let _ = fs::remove_file(&log);
}

#[test]
fn custom_format_with_latencies_errors_and_hostile_input() {
    let up = Upstream::start(|_| Reply::ok("x").delay(Duration::from_millis(30)));
    let log = temp_path("ringway-access", "log");
    let format = "$context.httpMethod $context.path $context.status $context.stage $context.integrationStatus \
                  $context.integrationLatency $context.responseLatency $context.error.responseType ua=$context.identity.userAgent";
    let gw = Gateway::start(&config(&up, &log, format));
    let mut c = gw.connect();
    assert_eq!(c.roundtrip("GET", "/prod/pets/1", &[("User-Agent", "curl/8")], b"").status, 200);
    assert_eq!(c.roundtrip("GET", "/prod/zzz", &[("User-Agent", "evil\"agent")], b"").status, 403);
    let lines = lines(&log, 2);
    let ok: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(&ok[..5], ["GET", "/prod/pets/1", "200", "prod", "200"], "{}", lines[0]);
    let integration: u64 = ok[5].parse().unwrap();
    let total: u64 = ok[6].parse().unwrap();
    assert!(integration >= 30 && total >= integration, "{}", lines[0]);
    assert_eq!(ok[7], "-");
    assert_eq!(ok[8], "ua=curl/8");
    assert!(lines[1].starts_with("GET /prod/zzz 403 prod - - "), "{}", lines[1]);
    assert!(lines[1].contains(" MISSING_AUTHENTICATION_TOKEN ua=evil\\x22agent"), "{}", lines[1]);
    let _ = fs::remove_file(&log);
}

#[test]
fn sigusr1_reopens_the_file_after_rotation() {
    let up = Upstream::fixed("x");
    let log = temp_path("ringway-access", "log");
    let rotated = log.with_extension("log.1");
    let gw = Gateway::start(&config(&up, &log, "$context.path"));
    let mut c = gw.connect();
    c.roundtrip("GET", "/prod/pets/before", &[], b"");
    lines(&log, 1);
    fs::rename(&log, &rotated).unwrap();
    gw.sigusr1();
    // The reopen happens on the workers' next 50 ms tick.
    std::thread::sleep(Duration::from_millis(300));
    c.roundtrip("GET", "/prod/pets/after", &[], b"");
    assert_eq!(lines(&log, 1), ["/prod/pets/after"]);
    assert_eq!(fs::read_to_string(&rotated).unwrap(), "/prod/pets/before\n");
    assert!(gw.stderr_text().lines().all(|l| !l.contains("reopen")), "{}", gw.stderr_text());
    let _ = fs::remove_file(&log);
    let _ = fs::remove_file(&rotated);
}

#[test]
fn a_reader_that_never_reads_does_not_stall_requests() {
    use std::os::unix::fs::OpenOptionsExt;
    let up = Upstream::fixed("x");
    let fifo = temp_path("ringway-fifo", "pipe");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Hold the read end open and never read from it.
    let _reader = fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let padding = "x".repeat(2000);
    let gw = Gateway::builder(&config(&up, &fifo, &format!("$context.requestId {padding}"))).workers(1).start();
    let mut c = gw.connect();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..3000 {
        let t = Instant::now();
        assert_eq!(c.roundtrip("GET", &format!("/prod/pets/{i}"), &[], b"").status, 200);
        slowest = slowest.max(t.elapsed());
    }
    // 3000 lines of 2 KB: the 64 KiB pipe and the 4 MiB buffer are full, lines were dropped.
    assert!(slowest < Duration::from_millis(500), "a request took {slowest:?}");
    eprintln!("3000 requests in {:?}, slowest {slowest:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = gw.admin("GET", "/metrics").text();
        let dropped = text
            .lines()
            .find_map(|l| l.strip_prefix("ringway_access_log_dropped_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if dropped > 0.0 {
            assert!(dropped < 3000.0, "{dropped}");
            break;
        }
        assert!(Instant::now() < deadline, "no dropped lines counted:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(&fifo);
}
