//! Bodies are streamed with bounded buffers: a 50 MB response (and upload)
//! passes through without the gateway's RSS growing anywhere near 50 MB.
mod support;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::*;

const FIFTY_MB: u64 = 50 * 1024 * 1024;
const MAX_GROWTH_KB: u64 = 20 * 1024;

/// Samples the RSS of `pid` every 10 ms until stopped; returns the max seen.
struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    h: Option<thread::JoinHandle<()>>,
}

fn rss_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let (s2, m2) = (stop.clone(), max.clone());
        let h = thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                if let Some(kb) = rss_of(pid) {
                    m2.fetch_max(kb, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(10));
            }
        });
        RssSampler { stop, max, h: Some(h) }
    }
    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.h.take().unwrap().join().unwrap();
        self.max.load(Ordering::SeqCst)
    }
}

fn big_download_gateway() -> (Upstream, Gateway) {
    let up = Upstream::start(|req| {
        if req.target.ends_with("/warm") {
            Reply::new(200).header("Content-Type", "application/octet-stream").huge(2 * 1024 * 1024)
        } else if req.target.ends_with("/big-chunked") {
            // chunked big body: 800 chunks of 64 KiB
            let block = pattern_body(64 * 1024);
            let parts: Vec<&[u8]> = std::iter::repeat_n(&block[..], 800).collect();
            Reply::new(200).header("Content-Type", "application/octet-stream").chunked(&parts)
        } else {
            Reply::new(200).header("Content-Type", "application/octet-stream").huge(FIFTY_MB)
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    (up, gw)
}

fn warm_up(gw: &Gateway) {
    // let every worker allocate its steady-state buffers first
    for _ in 0..4 {
        let r = gw.get("/test/warm");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 2 * 1024 * 1024);
    }
}

#[test]
fn fifty_mb_response_streams_with_bounded_memory() {
    let (_up, gw) = big_download_gateway();
    warm_up(&gw);
    let baseline = gw.rss_kb();
    let sampler = RssSampler::start(gw.pid());

    let mut c = gw.connect().with_timeout(Duration::from_secs(60));
    c.send(&request("GET", "/test/big", &[], b""));
    let head = c.try_read_head().expect("response head");
    assert_eq!(head.status, 200, "{head}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n: u64 = 0;
    let mut bad_at: Option<u64> = None;
    let mut paused = false;
    c.read_body_with(&head, false, deadline, &mut |chunk| {
        for (i, b) in chunk.iter().enumerate() {
            if *b != pattern_byte(n + i as u64) && bad_at.is_none() {
                bad_at = Some(n + i as u64);
            }
        }
        n += chunk.len() as u64;
        // a slow client: stop reading for a second after 1 MB, so a gateway
        // that does not apply backpressure would buffer the upstream's bytes
        if !paused && n > 1024 * 1024 {
            paused = true;
            thread::sleep(Duration::from_millis(1500));
        }
    })
    .expect("reading the 50 MB body");
    let max = sampler.finish();

    assert_eq!(n, FIFTY_MB, "body length");
    assert_eq!(bad_at, None, "body corrupted at byte {bad_at:?}");
    let growth = max.saturating_sub(baseline);
    eprintln!("50 MB response: baseline {baseline} kB, max {max} kB, growth {growth} kB");
    assert!(
        growth < MAX_GROWTH_KB,
        "RSS grew by {growth} kB (baseline {baseline} kB, max {max} kB) while streaming 50 MB"
    );
}

#[test]
fn fifty_mb_chunked_response_streams_with_bounded_memory() {
    let (_up, gw) = big_download_gateway();
    warm_up(&gw);
    let baseline = gw.rss_kb();
    let sampler = RssSampler::start(gw.pid());
    let mut c = gw.connect().with_timeout(Duration::from_secs(60));
    c.send(&request("GET", "/test/big-chunked", &[], b""));
    let head = c.try_read_head().expect("response head");
    assert_eq!(head.status, 200, "{head}");
    let mut n = 0u64;
    let mut paused = false;
    c.read_body_with(&head, false, Instant::now() + Duration::from_secs(60), &mut |chunk| {
        n += chunk.len() as u64;
        if !paused && n > 1024 * 1024 {
            paused = true;
            thread::sleep(Duration::from_millis(1500));
        }
    })
    .expect("reading the chunked body");
    let max = sampler.finish();
    assert_eq!(n, 800 * 64 * 1024);
    let growth = max.saturating_sub(baseline);
    eprintln!("50 MB chunked response: baseline {baseline} kB, max {max} kB, growth {growth} kB");
    assert!(growth < MAX_GROWTH_KB, "RSS grew by {growth} kB while streaming a 50 MB chunked response");
}

#[test]
fn fifty_mb_upload_streams_with_bounded_memory() {
    let up = Upstream::start(|req| Reply::ok(&format!("got {}", req.body_len)));
    let cfg = format!("[limits]\nmax_body_bytes = 104857600\n{}", petstore_config(&up.hostport()));
    let gw = Gateway::start(&cfg);
    // warm up with a couple of 2 MB uploads
    let warm = pattern_body(2 * 1024 * 1024);
    for _ in 0..4 {
        let r = gw.send("POST", "/test/warm", &[], &warm);
        assert_eq!(r.status, 200, "{r}");
    }
    let baseline = gw.rss_kb();
    let sampler = RssSampler::start(gw.pid());
    let mut c = gw.connect().with_timeout(Duration::from_secs(60));
    c.send(format!("PUT /test/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: {FIFTY_MB}\r\n\r\n").as_bytes());
    let block = pattern_body(1024 * 1024);
    for _ in 0..50 {
        c.send(&block);
    }
    let r = c.read_response();
    let max = sampler.finish();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), format!("got {FIFTY_MB}"));
    let growth = max.saturating_sub(baseline);
    eprintln!("50 MB upload: baseline {baseline} kB, max {max} kB, growth {growth} kB");
    assert!(growth < MAX_GROWTH_KB, "RSS grew by {growth} kB while streaming a 50 MB upload");
}

// ------------------------------------------------ a head and body written apart

/// An origin for one request that writes `head`, reports it on the returned receiver, then
/// writes whatever the test sends it; the connection stays open until the sender drops.
fn split_origin(
    head: &'static str,
) -> (std::net::SocketAddr, std::sync::mpsc::Sender<Vec<u8>>, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (body_tx, body_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let (head_tx, head_rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "gateway closed before its request head");
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(head.as_bytes()).unwrap();
        head_tx.send(()).unwrap();
        for part in body_rx {
            s.write_all(&part).unwrap();
        }
    });
    (addr, body_tx, head_rx)
}

fn split_gateway(head: &'static str) -> (Gateway, std::sync::mpsc::Sender<Vec<u8>>, Conn) {
    let (addr, body, head_written) = split_origin(head);
    let gw = Gateway::start(&petstore_config(&addr.to_string()));
    let mut c = gw.connect();
    c.send(b"GET /test/split HTTP/1.1\r\nHost: x\r\n\r\n");
    head_written.recv_timeout(Duration::from_secs(5)).expect("the origin got the request and wrote its head");
    (gw, body, c)
}

#[test]
fn short_body_in_flight_is_written_to_the_client_with_its_head() {
    let (_gw, body, c) = split_gateway("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
    // The head is at the gateway; the 5 body bytes are not: nothing goes to the client yet.
    let mut c = c.with_timeout(Duration::from_millis(400));
    let early = c.try_read_head();
    assert!(early.is_err(), "the head went out alone before its 5-byte body: {early:?}");
    assert!(c.leftover().is_empty(), "bytes before the body: {:?}", String::from_utf8_lossy(c.leftover()));
    body.send(b"hello".to_vec()).unwrap();
    let mut c = c.with_timeout(Duration::from_secs(5));
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.text(), "hello");
}

#[test]
fn chunked_head_is_forwarded_before_its_body() {
    let (_gw, body, c) =
        split_gateway("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    // A stream (server-sent events, long poll): the client gets the head at once.
    let mut c = c.with_timeout(Duration::from_secs(5));
    let r = c.try_read_head().expect("the head of a chunked response while its body is pending");
    assert_eq!(r.status, 200, "{r}");
    body.send(b"5\r\nhello\r\n0\r\n\r\n".to_vec()).unwrap();
    let mut got = Vec::new();
    c.read_body_with(&r, false, Instant::now() + Duration::from_secs(5), &mut |b| got.extend_from_slice(b)).unwrap();
    assert_eq!(got, b"hello");
}

#[test]
fn long_body_head_is_forwarded_before_its_body() {
    const LEN: usize = 1024 * 1024;
    let (_gw, body, c) =
        split_gateway("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n");
    // More than one flush (64 KiB) of body to come: the head is not held for it.
    let mut c = c.with_timeout(Duration::from_secs(5));
    let r = c.try_read_head().expect("the head of a 1 MiB response while its body is pending");
    assert_eq!(r.header("content-length"), Some("1048576"), "{r}");
    let data = pattern_body(LEN);
    body.send(data.clone()).unwrap();
    let mut got = Vec::new();
    c.read_body_with(&r, false, Instant::now() + Duration::from_secs(10), &mut |b| got.extend_from_slice(b)).unwrap();
    assert!(got == data, "1 MiB body differs (got {} bytes)", got.len());
}

#[test]
fn held_body_read_in_pieces_goes_out_whole() {
    // 30,000 bytes in three writes apart: the gateway reads them one by one, holding the
    // head and what came so far, then writes the whole response.
    let (_gw, body, c) =
        split_gateway("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 30000\r\n\r\n");
    let data = pattern_body(30_000);
    let mut c = c.with_timeout(Duration::from_millis(300));
    for part in data.chunks(10_000).take(2) {
        body.send(part.to_vec()).unwrap();
        thread::sleep(Duration::from_millis(50));
    }
    let early = c.try_read_head();
    assert!(early.is_err(), "the head went out before the last third of a held body: {early:?}");
    body.send(data[20_000..].to_vec()).unwrap();
    let mut c = c.with_timeout(Duration::from_secs(5));
    let r = c.read_response();
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body == data, "held body differs (got {} bytes)", r.body.len());
}

#[test]
fn slow_client_gets_a_large_body_intact() {
    // A client that reads 16 KiB at a time with pauses fills the socket buffers, so the
    // gateway's writes of head and body come back short and resume mid-way.
    use std::io::Read;
    let (_up, gw) = big_download_gateway();
    for round in 0..2 {
        let mut c = gw.connect().with_timeout(Duration::from_secs(20));
        c.send(b"GET /test/warm HTTP/1.1\r\nHost: gw\r\n\r\n");
        let head = c.try_read_head().unwrap_or_else(|e| panic!("round {round}: no head: {e}"));
        assert_eq!(head.status, 200, "{}", head.head);
        let len = 2 * 1024 * 1024;
        let mut got = c.leftover().to_vec();
        let mut buf = vec![0u8; 16 * 1024];
        let mut reads = 0;
        while got.len() < len {
            let want = (len - got.len()).min(buf.len());
            match c.stream.read(&mut buf[..want]) {
                Ok(0) | Err(_) => panic!("round {round}: response ended early at {}", got.len()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            reads += 1;
            if reads % 8 == 0 {
                thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(got == pattern_body(len), "round {round}: 2 MiB body corrupted");
    }
}

/// A request that arrives while the response before it waits on a slow reader is answered
/// once that response is out: the worker must not lose the readiness of a connection whose
/// writes are waiting (both drivers keep read and write readiness apart).
#[test]
fn request_sent_during_a_stalled_download_is_answered_after_it() {
    const BIG: u64 = 64 << 20;
    let up = Upstream::start(|req| {
        if req.target.ends_with("/big") {
            Reply::new(200).header("Content-Type", "application/octet-stream").huge(BIG)
        } else {
            Reply::ok("small")
        }
    });
    let gw = Gateway::start(&petstore_config(&up.hostport()));
    let mut c = gw.connect().with_timeout(Duration::from_secs(20));
    c.send(&request("GET", "/test/big", &[], b""));
    // The socket buffers fill and the gateway's writes wait on this client ...
    thread::sleep(Duration::from_millis(300));
    c.send(&request("GET", "/test/small", &[], b""));
    // ... and keep waiting after the second request has arrived.
    thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let big = c.read_response();
    assert_eq!((big.status, big.body.len() as u64), (200, BIG), "{}", big.head);
    let small = c.read_response();
    assert_eq!((small.status, small.text().as_str()), (200, "small"), "{small}");
    assert!(t.elapsed() < Duration::from_secs(5), "second response took {:?}", t.elapsed());
}
