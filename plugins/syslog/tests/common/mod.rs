//! A real rsyslogd for the tests: certificates made with `openssl` for the run, three
//! `imtcp` listeners on free loopback ports (plain TCP, anonymous TLS, mutual TLS with
//! `x509/certvalid`), each writing the raw messages it receives to its own file.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses part of the harness"
)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use audit_plugin_api::Record;
use audit_plugin_api::abi_stable::std_types::{RNone, RSome, RStr};

/// Where rsyslogd is installed by .ci/run (Debian's package).
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// A running rsyslogd, killed on drop.
pub struct Rsyslog {
    pub dir: tempfile::TempDir,
    child: Child,
    pub tcp_port: u16,
    pub tls_port: u16,
    pub mtls_port: u16,
    /// Released after the child is killed (fields drop after `Drop::drop`).
    _ports: Ports,
}

/// Tests run in parallel, each with its own rsyslogd on free ports. A test that stops its
/// server and starts it again on the same ports holds this exclusively, so no other test's
/// server can take a port while it is closed; every other test holds it shared.
static PORTS: RwLock<()> = RwLock::new(());

enum Ports {
    Shared(RwLockReadGuard<'static, ()>),
    Exclusive(RwLockWriteGuard<'static, ()>),
}

/// The rsyslogd of this run, or `None` (with a loud message) when it is not installed; in CI
/// (`CI` set) a missing rsyslogd fails the test instead.
pub fn rsyslog() -> Option<Rsyslog> {
    installed().then(|| {
        Rsyslog::start(Ports::Shared(
            PORTS.read().unwrap_or_else(PoisonError::into_inner),
        ))
    })
}

/// As [`rsyslog`], for a test that stops the server and starts it again on its ports.
pub fn rsyslog_to_restart() -> Option<Rsyslog> {
    installed().then(|| {
        Rsyslog::start(Ports::Exclusive(
            PORTS.write().unwrap_or_else(PoisonError::into_inner),
        ))
    })
}

fn installed() -> bool {
    if !Path::new(RSYSLOGD).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {RSYSLOGD} is missing: .ci/run must install rsyslog rsyslog-gnutls"
        );
        // Straight to stderr: the harness captures `eprintln!`, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: rsyslogd is not installed (apt-get install --no-install-recommends rsyslog rsyslog-gnutls rsyslog-openssl; .ci/run does it) ***\n"
        );
        return false;
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME.pem`, `NAME.key`).
fn make_ca(dir: &Path, name: &str) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let subj = format!("/CN=audit test {name}");
    run(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "2", "-subj", &subj,
        ],
    );
}

/// A certificate for `cn` signed by `ca.pem` (`NAME.pem`, `NAME.key`).
fn make_cert(dir: &Path, name: &str, cn: &str, ext: &str) {
    let (key, pem, csr, extfile) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&extfile), ext).expect("ext file");
    run(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ],
    );
    run(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &extfile,
        ],
    );
}

impl Rsyslog {
    fn start(ports: Ports) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        make_ca(d, "ca");
        make_ca(d, "other-ca");
        make_cert(
            d,
            "server",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        make_cert(d, "client", "audit-client", "extendedKeyUsage=clientAuth\n");
        let (tcp_port, tls_port, mtls_port) = (free_port(), free_port(), free_port());
        let p = d.display();
        let conf = format!(
            r#"global(workDirectory="{p}" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off"
  DefaultNetstreamDriverCAFile="{p}/ca.pem" DefaultNetstreamDriverCertFile="{p}/server.pem" DefaultNetstreamDriverKeyFile="{p}/server.key")
module(load="imtcp" maxSessions="100")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="tcp") {{ action(type="omfile" file="{p}/tcp.log" template="raw") }}
ruleset(name="tls") {{ action(type="omfile" file="{p}/tls.log" template="raw") }}
ruleset(name="mtls") {{ action(type="omfile" file="{p}/mtls.log" template="raw") }}
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls_port}" ruleset="tls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{mtls_port}" ruleset="mtls" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
"#
        );
        std::fs::write(d.join("rsyslog.conf"), conf).expect("conf");
        let child = spawn(d);
        let mut rs = Self {
            dir,
            child,
            tcp_port,
            tls_port,
            mtls_port,
            _ports: ports,
        };
        rs.wait_listening();
        rs
    }

    /// Kills rsyslogd (SIGKILL: its connections drop, its ports close).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops rsyslogd gracefully (SIGTERM: it closes its connections and writes its queue).
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {pid}");
        let _ = self.child.wait();
    }

    /// Starts rsyslogd after [`Rsyslog::terminate`], with the same ports and files.
    pub fn start_again(&mut self) {
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    /// Starts rsyslogd again with the same ports and files.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    /// Waits until the listeners accept (a bound for a stuck start, not a timing check).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [self.tcp_port, self.tls_port, self.mtls_port] {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("rsyslogd exited ({status}): {}", self.stderr());
                }
                assert!(
                    Instant::now() < deadline,
                    "rsyslogd does not listen on {port}: {}",
                    self.stderr()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.err")).unwrap_or_default()
    }

    /// The lines of `log` (tcp, tls or mtls) once it holds at least `n` (waits up to 60 s,
    /// then returns what is there for the test to report).
    pub fn received(&self, log: &str, n: usize) -> Vec<String> {
        let file: PathBuf = self.dir.path().join(format!("{log}.log"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(d: &Path) -> Child {
    Command::new(RSYSLOGD)
        .arg("-n")
        .arg("-f")
        .arg(d.join("rsyslog.conf"))
        .arg("-i")
        .arg(d.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("rsyslogd.err")).expect("err file"))
        .spawn()
        .expect("rsyslogd starts")
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tricky message text: CEF/LEEF separators, escapes, line breaks, non-ASCII.
pub const TRICKY: &str = "a|b=c\\d\ne\rf\tg^h]\"i Zoë ✓ 😀";

/// JSON text with every non-ASCII character escaped as `\uXXXX`, as the canonical line is.
fn ascii_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// One event's fields, as the host hands them over.
pub struct Ev {
    pub seq: u64,
    pub line: String,
    pub event_id: String,
    pub timestamp: String,
    pub level: &'static str,
}

pub fn event(seq: u64) -> Ev {
    let level = ["info", "security", "error", "debug"][usize::try_from(seq % 4).unwrap_or(0)];
    let event_id = format!("00000000-0000-4000-8000-{seq:012}");
    let timestamp = format!(
        "2026-12-03T11:{:02}:{:02}.{:06}Z",
        seq / 60 % 60,
        seq % 60,
        seq
    );
    let v = serde_json::json!({
        "checksum": format!("{seq:064x}"),
        "client_ip": "203.0.113.9",
        "component": "billing|core",
        "event_id": event_id,
        "event_type": "authentication_failed",
        "hostname": "web-01",
        "log_level": level,
        "message": format!("{TRICKY} #{seq}"),
        "metadata": {"k=v": "x|y"},
        "previous_hash": null,
        "process_id": 4242,
        "sequence_number": seq,
        "timestamp": timestamp,
        "user_id": "zoë|admin",
    });
    Ev {
        seq,
        line: ascii_json(&v),
        event_id,
        timestamp,
        level,
    }
}

pub fn record(e: &Ev) -> Record<'_> {
    Record {
        line: RStr::from_str(&e.line),
        sequence_number: e.seq,
        timestamp: RStr::from_str(&e.timestamp),
        timestamp_micros: 1_796_297_000_000_000 + i64::try_from(e.seq).unwrap_or(0),
        event_id: RStr::from_str(&e.event_id),
        event_type: RStr::from_str("authentication_failed"),
        log_level: RStr::from_str(e.level),
        user_id: if e.seq.is_multiple_of(2) {
            RSome(RStr::from_str("zoë|admin"))
        } else {
            RNone
        },
    }
}

/// An RFC 5424 message taken apart: PRI, the header fields, the SD element's params, MSG.
#[derive(Debug)]
pub struct Parsed5424 {
    pub pri: u16,
    pub header: Vec<String>,
    pub sd_id: String,
    pub params: Vec<(String, String)>,
    pub msg: String,
}

/// Parses one received message (panics with the message when it does not fit RFC 5424).
pub fn parse_5424(m: &str) -> Parsed5424 {
    let rest = m.strip_prefix('<').unwrap_or_else(|| panic!("no PRI: {m}"));
    let (pri, rest) = rest
        .split_once(">1 ")
        .unwrap_or_else(|| panic!("no version: {m}"));
    let mut parts = rest.splitn(6, ' ');
    let header: Vec<String> = (0..5)
        .map(|_| parts.next().expect("header field").to_owned())
        .collect();
    let sd = parts.next().expect("SD");
    let sd = sd.strip_prefix('[').expect("SD element");
    let (sd_id, mut rest) = sd.split_once(' ').expect("SD-ID");
    let mut params = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix("] ") {
            rest = after;
            break;
        }
        let (name, after) = rest.trim_start().split_once("=\"").expect("PARAM-NAME");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("PARAM-VALUE end") {
                (_, '\\') => value.push(chars.next().expect("escaped").1),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        params.push((name.to_owned(), value));
        rest = &after[end + 1..];
    }
    let msg = rest.strip_prefix('\u{feff}').unwrap_or(rest).to_owned();
    Parsed5424 {
        pri: pri.parse().expect("PRI"),
        header,
        sd_id: sd_id.to_owned(),
        params,
        msg,
    }
}

impl Parsed5424 {
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v)
    }
}

/// Splits key=value pairs separated by `sep` (CEF: a space before the next `key=`; LEEF: the
/// delimiter), undoing the formats' escapes.
pub fn split_pairs(text: &str, sep: char) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let (mut key, mut val, mut in_key) = (String::new(), String::new(), true);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_key {
            if c == '=' {
                in_key = false
            } else {
                key.push(c)
            }
            continue;
        }
        match c {
            '\\' => match chars.next() {
                Some('n') => val.push('\n'),
                Some('r') => val.push('\r'),
                Some('t') => val.push('\t'),
                Some(o) => val.push(o),
                None => {}
            },
            c if c == sep => {
                let rest: String = chars.clone().collect();
                let next_is_key = sep != ' '
                    || rest.split_once('=').is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
                    });
                if next_is_key {
                    pairs.push((std::mem::take(&mut key), std::mem::take(&mut val)));
                    in_key = true;
                } else {
                    val.push(c);
                }
            }
            _ => val.push(c),
        }
    }
    pairs.push((key, val));
    pairs
}

/// What arrived, by `seq`: the first arrivals in order, how many times the stream went back
/// (a replay after a reconnect), and whether every copy of a `seq` is the same message.
pub struct Arrivals {
    pub firsts: Vec<u64>,
    pub rewinds: usize,
    pub duplicates: usize,
}

pub fn arrivals(lines: &[String]) -> Arrivals {
    let mut seen: std::collections::HashMap<u64, &str> = std::collections::HashMap::new();
    let (mut firsts, mut rewinds, mut duplicates, mut last) = (Vec::new(), 0, 0, 0u64);
    for l in lines {
        let seq: u64 = parse_5424(l).param("seq").parse().expect("seq");
        if seq <= last {
            rewinds += usize::from(seq < last || seen.contains_key(&seq));
        }
        last = seq;
        match seen.get(&seq) {
            Some(first) => {
                assert_eq!(
                    *first,
                    l.as_str(),
                    "seq {seq} arrived twice with different messages"
                );
                duplicates += 1;
            }
            None => {
                seen.insert(seq, l);
                firsts.push(seq);
            }
        }
    }
    Arrivals {
        firsts,
        rewinds,
        duplicates,
    }
}
