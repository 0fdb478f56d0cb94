//! A real Request Tracker 5 on a free loopback port, with its own SQLite database in a
//! temporary directory (`scripts/rt5.sh start`), and a small REST2 client to check what the
//! connectors did through RT's own API.
//!
//! ```ignore
//! let mut rt = RequestTracker::start();          // ~3-5 s
//! let toml = rt.connector_toml("rt", "");        // a [[connectors]] entry for it
//! rt.tickets_with_key("steward-1");              // every ticket carrying that key
//! rt.stop(); /* RT is down */ rt.restart();      // same database, same port
//! ```
//!
//! RT must be installed first: `scripts/rt5.sh install` (scripts/test.sh does it).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The server the install provides; its absence means RT is not installed.
const RT_SERVER: &str = "/usr/share/request-tracker5/libexec/rt-server";

/// One RT instance; stopped when dropped.
pub struct RequestTracker {
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    running: bool,
}

/// `scripts/rt5.sh` in this workspace.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rt5.sh")
}

/// True when RT 5 is installed (`scripts/rt5.sh install`).
pub fn installed() -> bool {
    Path::new(RT_SERVER).exists()
}

impl RequestTracker {
    /// A fresh instance: queues General and Network, ticket custom field "Correlation Key"
    /// applied to both, user root with a random password.
    pub fn start() -> RequestTracker {
        assert!(
            installed(),
            "Request Tracker 5 is not installed ({RT_SERVER} is missing): run `scripts/rt5.sh install` \
             (scripts/test.sh does it)"
        );
        let dir = tempfile::Builder::new()
            .prefix("steward-rt-")
            .tempdir()
            .unwrap();
        let mut rt = RequestTracker {
            dir,
            port: crate::free_port(),
            password: String::new(),
            running: false,
        };
        rt.run_start();
        rt.password = std::fs::read_to_string(rt.password_file())
            .unwrap()
            .trim()
            .to_string();
        rt
    }

    fn run_start(&mut self) {
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/rt5.sh start failed: {}{}",
            crate::stdout(&out),
            crate::stderr(&out)
        );
        self.running = true;
    }

    /// Stops the server (its database stays): RT is down until [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/rt5.sh stop failed: {}",
            crate::stderr(&out)
        );
        self.running = false;
    }

    /// Starts the server again (stopping it first if it runs): same database, same port.
    pub fn restart(&mut self) {
        self.stop();
        self.run_start();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// RT's base URL (a connector's `url`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The instance's directory (database, config, `rt.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// root's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The file holding root's password (a connector's `auth.password_file`).
    pub fn password_file(&self) -> PathBuf {
        self.dir.path().join("root.pass")
    }

    /// The file holding an RT auth token of root (a connector's `auth.token_file`, sent as
    /// `Authorization: token ...`).
    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("root.token")
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rt.log")).unwrap_or_default()
    }

    /// A `[[connectors]]` entry for this instance (user root), pointing at `url`, with `extra`
    /// TOML lines appended (e.g. `queue = "Network"`).
    pub fn connector_toml_at(&self, name: &str, url: &str, extra: &str) -> String {
        format!(
            "name = {name:?}\ntype = \"request_tracker\"\nurl = {url:?}\ntimeout_secs = 20\n\
             auth = {{ user = \"root\", password_file = {:?} }}\n{extra}\n",
            self.password_file().display().to_string()
        )
    }

    /// A `[[connectors]]` entry for this instance (see [`connector_toml_at`](Self::connector_toml_at)).
    pub fn connector_toml(&self, name: &str, extra: &str) -> String {
        self.connector_toml_at(name, &self.url(), extra)
    }

    /// A REST2 call as root: `(status, JSON body)` (`Value::Null` when the body is not JSON).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, bytes) = http(
            self.port,
            method,
            &format!("/REST/2.0{path}"),
            ("root", &self.password),
            body,
        );
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A GET that must answer 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Every ticket (any status) whose "Correlation Key" is `key`, oldest first, each with
    /// Subject, Status, Queue, Priority and CustomFields.
    pub fn tickets_with_key(&self, key: &str) -> Vec<Value> {
        self.search(&format!(
            "'CF.{{Correlation Key}}' = '{}'",
            key.replace('\\', "\\\\").replace('\'', "\\'")
        ))
    }

    /// Tickets matching a TicketSQL query, oldest first.
    pub fn search(&self, query: &str) -> Vec<Value> {
        let body = self.get(&format!(
            "/tickets?query={}&fields=Subject,Status,Queue,Priority,CustomFields&orderby=id&order=ASC&per_page=100",
            encode(query)
        ));
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The whole ticket.
    pub fn ticket(&self, id: &str) -> Value {
        self.get(&format!("/ticket/{id}"))
    }

    /// The ticket's status (`new`, `open`, `resolved`, ...).
    pub fn status(&self, id: &str) -> String {
        self.ticket(id)["Status"].as_str().unwrap().to_string()
    }

    /// The ticket's queue name.
    pub fn queue_name(&self, id: &str) -> String {
        let queue = self.ticket(id)["Queue"]["id"].as_str().unwrap().to_string();
        self.get(&format!("/queue/{queue}"))["Name"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The values of one of the ticket's custom fields.
    pub fn custom_field(&self, id: &str, name: &str) -> Vec<String> {
        self.ticket(id)["CustomFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["name"] == name)
            .flat_map(|f| f["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// The ticket's transactions (history), oldest first: `Type` (Create, Comment, Status,
    /// ...), `Field`, `OldValue`, `NewValue`.
    pub fn transactions(&self, id: &str) -> Vec<Value> {
        let body = self.get(&format!(
            "/ticket/{id}/history?fields=Type,Field,OldValue,NewValue,Created&per_page=100"
        ));
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// The text of each comment on the ticket, oldest first.
    pub fn comments(&self, id: &str) -> Vec<String> {
        let comment_ids: Vec<String> = self
            .transactions(id)
            .iter()
            .filter(|t| t["Type"] == "Comment")
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect();
        let body = self.get(&format!(
            "/ticket/{id}/attachments?fields=Content,ContentType,TransactionId&per_page=100"
        ));
        let mut out = Vec::new();
        for attachment in body["items"].as_array().cloned().unwrap_or_default() {
            let transaction = attachment["TransactionId"].as_str().unwrap_or_default();
            if attachment["ContentType"] == "text/plain"
                && comment_ids.iter().any(|c| c == transaction)
            {
                out.push(
                    attachment["Content"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end()
                        .to_string(),
                );
            }
        }
        out
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(self.dir.path())
                .stdin(std::process::Stdio::null())
                .output();
            self.running = false;
        }
    }
}

/// One HTTP/1.0 request to 127.0.0.1:`port` with Basic auth: `(status, body)`. HTTP/1.0 keeps
/// the answer unchunked and the connection closed after it.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    (user, password): (&str, &str),
    body: Option<&Value>,
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {}\r\nAccept: application/json\r\n",
        base64(format!("{user}:{password}").as_bytes())
    );
    if body.is_some() {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&payload);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {}", String::from_utf8_lossy(&answer)));
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    (status, answer[split + 4..].to_vec())
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_pads() {
        assert_eq!(super::base64(b"root:pw"), "cm9vdDpwdw==");
        assert_eq!(super::base64(b"abc"), "YWJj");
        assert_eq!(super::base64(b"ab"), "YWI=");
    }
}
