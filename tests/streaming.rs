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
