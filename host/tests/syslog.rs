//! The syslog backend plugin inside an `AuditTrail`, against a real rsyslogd (plain TCP on a
//! free loopback port; docs/backends/syslog.md, "Running the tests"): with rsyslogd stopped
//! for a while mid-run, the host retries, and every line of the file backend arrives as a
//! message, byte for byte, duplicates only at the reconnect.

mod common;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use audit_host::{AuditEventType, AuditTrail};
use common::*;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// The tests run one at a time: one stops its rsyslogd and expects its port to stay closed,
/// and the other's rsyslogd, started on a "free" port, could otherwise take that very port.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// rsyslogd writing the raw messages it receives on `port` to `received.log`.
struct Rsyslog {
    dir: std::path::PathBuf,
    port: u16,
    child: Child,
}

impl Rsyslog {
    /// Starts rsyslogd in `dir`, or `None` (loudly) when it is not installed outside CI.
    fn start(dir: &Path) -> Option<Self> {
        if !Path::new(RSYSLOGD).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but {RSYSLOGD} is missing: .ci/run installs rsyslog"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: rsyslogd is not installed (.ci/run installs it; docs/backends/syslog.md) ***\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let d = dir.display();
        let conf = format!(
            "global(workDirectory=\"{d}\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\ntemplate(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\nruleset(name=\"r\") {{ action(type=\"omfile\" file=\"{d}/received.log\" template=\"raw\") }}\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")\n"
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).expect("conf");
        let mut rs = Self {
            dir: dir.to_path_buf(),
            port,
            child: spawn(dir),
        };
        rs.wait_listening();
        Some(rs)
    }

    fn wait_listening(&mut self) {
        // A bound for a stuck start, not a timing check.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then a new rsyslogd on the same port after `pause`.
    fn stop_for(&mut self, pause: Duration) {
        self.stop();
        std::thread::sleep(pause);
        self.restart();
    }

    /// SIGTERM; the port is closed when this returns.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let _ = self.child.wait();
    }

    /// A new rsyslogd on the same port, listening when this returns.
    fn restart(&mut self) {
        self.child = spawn(&self.dir);
        self.wait_listening();
    }

    /// MSG of each received message, once per `seq`, in order of first arrival.
    fn messages(&self, want: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(self.dir.join("received.log")).unwrap_or_default();
            let mut seen = std::collections::HashSet::new();
            let msgs: Vec<String> = text
                .lines()
                .filter_map(|l| {
                    let (_, rest) = l.split_once("[audit@32473 seq=\"")?;
                    let (seq, rest) = rest.split_once('"')?;
                    let (_, msg) = rest.split_once("\"] ")?;
                    seen.insert(seq.to_owned()).then(|| msg.to_owned())
                })
                .collect();
            if msgs.len() >= want || Instant::now() > deadline {
                return msgs;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn spawn(dir: &Path) -> Child {
    Command::new(RSYSLOGD)
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd starts")
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The trail's config: a file backend in `logs` and the syslog plugin sending to `port`.
fn write_config(dir: &Path, port: u16) -> TestResult {
    let lib = plugin_lib("audit_backend_syslog");
    std::fs::write(
        dir.join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\nshutdown_timeout_ms = 120000\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {:?}\nretry_initial_ms = 50\nretry_max_ms = 500\nconfig = {{ address = \"127.0.0.1:{port}\", transport = \"tcp\" }}\n",
            lib.to_str().ok_or("utf-8 path")?,
        ),
    )?;
    Ok(())
}

/// The server is down when the trail starts: the trail starts anyway (the plugin's `open`
/// fails with a retryable error), spools, and a retry after the server is up connects and
/// sends every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_start_gets_every_line_once_it_is_up() -> TestResult {
    const EVENTS: usize = 2_000;
    let _serial = SERIAL.lock().await;
    let rs_dir = tempfile::tempdir()?;
    let Some(mut rs) = Rsyslog::start(rs_dir.path()) else {
        return Ok(());
    };
    rs.stop();
    let dir = tempfile::tempdir()?;
    write_config(dir.path(), rs.port)?;
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    for i in 0..EVENTS {
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i}"))
            .await?;
    }
    trail.flush().await?;
    // The lane reports the outage once its first delivery attempt has failed (the statistics
    // follow the lane's own thread, so give it a moment under load).
    let deadline = Instant::now() + Duration::from_secs(30);
    let syslog = loop {
        let s = trail.statistics().per_backend[1].clone();
        if s.state.as_str() == "retrying" || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(syslog.state.to_string(), "retrying", "{syslog:?}");
    assert_eq!(syslog.delivered, 0, "{syslog:?}");
    assert!(
        syslog
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("not open yet"),
        "{syslog:?}"
    );
    rs.restart();
    trail.close().await?;
    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(file_lines.len(), EVENTS);
    assert!(
        rs.messages(EVENTS) == file_lines,
        "the messages differ from the file's lines"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_gets_every_file_line_after_its_restart() -> TestResult {
    let _serial = SERIAL.lock().await;
    const EVENTS: usize = 20_000;
    let rs_dir = tempfile::tempdir()?;
    let Some(rs) = Rsyslog::start(rs_dir.path()) else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    write_config(dir.path(), rs.port)?;
    let trail = AuditTrail::from_config_file(dir.path().join("audit.toml"))?;
    let rs = std::sync::Arc::new(std::sync::Mutex::new(rs));
    let mut outage = None;
    for i in 0..EVENTS {
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i} «ü» \"q\""))
            .user_id("carol")
            .await?;
        if i == EVENTS / 3 {
            let rs = rs.clone();
            outage = Some(std::thread::spawn(move || {
                if let Ok(mut rs) = rs.lock() {
                    rs.stop_for(Duration::from_secs(3));
                }
            }));
        }
    }
    outage
        .ok_or("no outage")?
        .join()
        .map_err(|_| "the outage thread panicked")?;
    trail.flush().await?;
    let stats = trail.statistics();
    let syslog = &stats.per_backend[1];
    assert!(
        syslog.retried > 0,
        "no retry: the stop missed the deliveries ({syslog:?})"
    );
    assert_eq!((syslog.fatal, syslog.dropped), (0, 0), "{syslog:?}");
    trail.close().await?;

    let file_lines = all_lines(&dir.path().join("logs"));
    assert_eq!(file_lines.len(), EVENTS);
    let msgs = rs.lock().map_err(|_| "lock")?.messages(EVENTS);
    assert_eq!(msgs.len(), EVENTS, "every seq arrived");
    assert!(
        msgs == file_lines,
        "the messages differ from the file's lines"
    );
    Ok(())
}
