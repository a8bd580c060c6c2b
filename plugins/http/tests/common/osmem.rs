//! A real osmem-server (the OpenSearch-API server from PyPI, `pip install osmem-server`) on a
//! free loopback port, one per test, killed on drop; shared by plugins/http and cli tests.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses part of the harness"
)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The osmem-server binary: `OSMEM_SERVER_BIN` (.ci/run sets it), `osmem-server` on PATH, or
/// the one inside the `osmem_server` Python package.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OSMEM_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let on_path = Command::new("osmem-server")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if on_path {
        return Some(PathBuf::from("osmem-server"));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, osmem_server; print(os.path.join(os.path.dirname(osmem_server.__file__), 'bin', 'osmem-server'))",
        ])
        .output()
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.exists()).then_some(p)
}

/// A running osmem-server.
pub struct Osmem {
    child: Option<Child>,
    bin: PathBuf,
    pub port: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A new osmem-server on a free port, or `None` (loudly) when it is not installed; in CI
/// (`CI` set) a missing server fails the test instead.
pub fn osmem() -> Option<Osmem> {
    let mut o = Osmem::stopped()?;
    o.start();
    Some(o)
}

impl Osmem {
    /// The server's port chosen, the server not started yet (`start` starts it).
    pub fn stopped() -> Option<Self> {
        let Some(bin) = binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but osmem-server is missing: .ci/run installs it (pip install osmem-server)"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: osmem-server is not installed (pip install osmem-server; .ci/run does it) ***\n"
            );
            return None;
        };
        Some(Self {
            child: None,
            bin,
            port: free_port(),
        })
    }

    pub fn start(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "-addr",
                &format!("127.0.0.1:{}", self.port),
                "-no-stdin-watch",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("osmem-server starts");
        self.child = Some(child);
        // A bound for a stuck start, not a timing check.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "osmem-server does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One plain HTTP/1.1 request (no client crate: the test checks the plugin's); the body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        let (head, rest) = out.split_once("\r\n\r\n").expect("a response");
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_owned()
        }
    }

    /// Every stored document of `index` (pattern allowed): (`_id`, `line`), by sequence,
    /// read in pages of 5,000 (a search returns at most 10,000 hits).
    pub fn documents(&self, index: &str) -> Vec<(String, String)> {
        self.request("POST", &format!("/{index}/_refresh"), "");
        let mut out = Vec::new();
        let mut after = 0u64;
        loop {
            let body = self.request(
                "POST",
                &format!("/{index}/_search?ignore_unavailable=true&allow_no_indices=true"),
                &format!(
                    r#"{{"size":5000,"sort":[{{"sequence_number":{{"order":"asc"}}}}],"query":{{"range":{{"sequence_number":{{"gt":{after}}}}}}},"_source":["line","sequence_number"]}}"#
                ),
            );
            let v: serde_json::Value = serde_json::from_str(&body).expect("search answer");
            let hits = v["hits"]["hits"].as_array().expect("hits").clone();
            if hits.is_empty() {
                return out;
            }
            for h in hits {
                after = h["_source"]["sequence_number"]
                    .as_u64()
                    .expect("sequence_number");
                out.push((
                    h["_id"].as_str().expect("_id").to_owned(),
                    h["_source"]["line"].as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

impl Drop for Osmem {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
