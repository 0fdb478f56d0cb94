//! A loopback HTTP proxy between a client and an upstream port, to lose answers on purpose:
//!
//! - [`Proxy::drop_responses`]`(n)`: the next `n` requests are forwarded and fully processed
//!   upstream, then the client's connection is closed without the answer (what a client sees
//!   when a response is lost after the system acted: the request was maybe applied);
//! - [`Proxy::refuse`]`(true)`: the listening port is closed, so connections are refused (the
//!   system is down; nothing was applied); `refuse(false)` listens on the same port again.
//!
//! One request per connection: the proxy reads the request (head and `Content-Length` body),
//! sends it upstream on a fresh connection with `Connection: close`, reads the answer to its
//! end, and relays it (or not) before closing. Plain HTTP/1.x with `Content-Length` bodies,
//! which is what the connectors send.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct State {
    drop_next: AtomicUsize,
    refuse: AtomicBool,
    stop: AtomicBool,
    forwarded: AtomicUsize,
    dropped: AtomicUsize,
}

/// The proxy; stops when dropped.
pub struct Proxy {
    port: u16,
    upstream: u16,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to 127.0.0.1:`upstream`.
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let thread = {
            let state = state.clone();
            std::thread::spawn(move || accept_loop(Some(listener), port, upstream, &state))
        };
        Proxy {
            port,
            upstream,
            state,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn upstream(&self) -> u16 {
        self.upstream
    }

    /// `http://127.0.0.1:PORT` (a connector's `url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Loses the answers of the next `n` requests (each still processed upstream).
    pub fn drop_responses(&self, n: usize) {
        self.state.drop_next.store(n, Ordering::SeqCst);
    }

    /// `true`: close the port (connections refused); `false`: listen again. Takes effect
    /// within ~20 ms; this call waits for it.
    pub fn refuse(&self, refuse: bool) {
        self.state.refuse.store(refuse, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let accepting = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if accepting != refuse {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "proxy did not switch to refuse={refuse}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Requests forwarded upstream so far (dropped ones included).
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Answers lost on purpose so far.
    pub fn dropped(&self) -> usize {
        self.state.dropped.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(mut listener: Option<TcpListener>, port: u16, upstream: u16, state: &Arc<State>) {
    if let Some(l) = &listener {
        l.set_nonblocking(true).unwrap();
    }
    while !state.stop.load(Ordering::SeqCst) {
        let refuse = state.refuse.load(Ordering::SeqCst);
        if refuse && listener.is_some() {
            listener = None;
            continue;
        }
        if !refuse && listener.is_none() {
            // std sets SO_REUSEADDR: the same port binds again at once.
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            continue;
        }
        let Some(l) = &listener else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        match l.accept() {
            Ok((client, _)) => {
                let state = state.clone();
                std::thread::spawn(move || {
                    let _ = handle(client, upstream, &state);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(mut client: TcpStream, upstream: u16, state: &State) -> std::io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let Some(request) = read_request(&mut client)? else {
        return Ok(());
    };
    let mut server = match TcpStream::connect(("127.0.0.1", upstream)) {
        Ok(server) => server,
        // Upstream down: the client sees its connection closed.
        Err(_) => return client.shutdown(Shutdown::Both),
    };
    server.set_read_timeout(Some(Duration::from_secs(120)))?;
    server.write_all(&request)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    state.forwarded.fetch_add(1, Ordering::SeqCst);
    let drop_it = state
        .drop_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if drop_it {
        state.dropped.fetch_add(1, Ordering::SeqCst);
        return client.shutdown(Shutdown::Both);
    }
    client.write_all(&with_connection_close(answer))?;
    client.flush()?;
    client.shutdown(Shutdown::Both)
}

/// The answer with `Connection: close` (so the client never reuses the connection).
fn with_connection_close(answer: Vec<u8>) -> Vec<u8> {
    let Some(head_end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer;
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let mut out = String::new();
    for line in head.split("\r\n") {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&answer[head_end + 4..]);
    bytes
}

/// Reads one request; returns it rewritten with `Connection: close`.
fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
    let mut length = 0usize;
    for line in lines {
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "connection" | "keep-alive" | "proxy-connection" => continue,
            "content-length" => {
                length = line
                    .split_once(':')
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
            }
            "transfer-encoding" => {
                panic!("proxy: chunked request bodies are not supported: {head}")
            }
            _ => {}
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let mut request = out.into_bytes();
    request.extend_from_slice(&body);
    Ok(Some(request))
}
