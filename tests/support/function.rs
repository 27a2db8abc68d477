//! A function runtime speaking the Lambda invoke protocol of the Runtime Interface Emulator:
//! `POST /2015-03-31/functions/function/invocations`, event in, answer out, and, like the
//! emulator, one invocation at a time (a concurrent one gets 400 "already reserved").
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";

/// What the function answers: the invoke response's status, extra headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(body: &str) -> Answer {
        Answer { status: 200, headers: Vec::new(), body: body.to_string(), delay: Duration::ZERO }
    }
    pub fn delay(mut self, d: Duration) -> Answer {
        self.delay = d;
        self
    }
    pub fn header(mut self, k: &str, v: &str) -> Answer {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&serde_json::Value) -> Answer + Send + Sync>;

struct State {
    handler: Handler,
    reserved: AtomicBool,
    invocations: AtomicUsize,
    rejected: AtomicUsize,
    events: Mutex<Vec<serde_json::Value>>,
}

pub struct FunctionRuntime {
    addr: SocketAddr,
    st: Arc<State>,
}

impl FunctionRuntime {
    pub fn start<F>(handler: F) -> FunctionRuntime
    where
        F: Fn(&serde_json::Value) -> Answer + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("function bind");
        let addr = listener.local_addr().unwrap();
        let st = Arc::new(State {
            handler: Arc::new(handler),
            reserved: AtomicBool::new(false),
            invocations: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            events: Mutex::new(Vec::new()),
        });
        let st2 = st.clone();
        thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let st = st2.clone();
                thread::spawn(move || serve(s, &st));
            }
        });
        FunctionRuntime { addr, st }
    }
    pub fn hostport(&self) -> String {
        self.addr.to_string()
    }
    pub fn invocations(&self) -> usize {
        self.st.invocations.load(Ordering::SeqCst)
    }
    /// Invocations refused because another was running (must stay 0 behind ringway).
    pub fn rejected(&self) -> usize {
        self.st.rejected.load(Ordering::SeqCst)
    }
    pub fn last_event(&self) -> serde_json::Value {
        self.st.events.lock().unwrap().last().cloned().expect("no invocation yet")
    }
}

fn serve(s: TcpStream, st: &State) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, headers, text) = if target != INVOKE_PATH {
            (404, Vec::new(), "not found".to_string())
        } else if st.reserved.swap(true, Ordering::SeqCst) {
            st.rejected.fetch_add(1, Ordering::SeqCst);
            (400, Vec::new(), "{\"errorMessage\":\"already reserved\"}".to_string())
        } else {
            st.invocations.fetch_add(1, Ordering::SeqCst);
            let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            st.events.lock().unwrap().push(event.clone());
            let a = (st.handler)(&event);
            thread::sleep(a.delay);
            st.reserved.store(false, Ordering::SeqCst);
            (a.status, a.headers, a.body)
        };
        let mut out =
            format!("HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", text.len());
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&text);
        if w.write_all(out.as_bytes()).is_err() {
            return;
        }
    }
}
