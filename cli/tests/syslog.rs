//! `audit plugin test --write-only` against the syslog plugin and a real rsyslogd (plain TCP
//! on a free loopback port): the kit passes with the read-back checks skipped, and without
//! the flag it fails at `reopen`, the check a write-only store cannot pass.

mod common;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{audit, plugin_lib, text};

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

/// rsyslogd writing what it receives on `port` to `received.log`; killed on drop.
struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts rsyslogd in `dir`, or `None` (loudly) when it is not installed outside CI.
fn rsyslog(dir: &Path) -> Option<(Rsyslog, u16)> {
    if !Path::new(RSYSLOGD).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {RSYSLOGD} is missing: .ci/run installs rsyslog"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: rsyslogd is not installed (.ci/run installs it) ***\n"
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let d = dir.display();
    let conf = format!(
        "global(workDirectory=\"{d}\")\nmodule(load=\"imtcp\")\ntemplate(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\nruleset(name=\"r\") {{ action(type=\"omfile\" file=\"{d}/received.log\" template=\"raw\") }}\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"r\")\n"
    );
    std::fs::write(dir.join("rsyslog.conf"), conf).expect("conf");
    let child = Command::new(RSYSLOGD)
        .args(["-n", "-f"])
        .arg(dir.join("rsyslog.conf"))
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd starts");
    let rs = Rsyslog(child);
    // A bound for a stuck start, not a timing check.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((rs, port))
}

#[test]
fn the_syslog_plugin_passes_the_kit_write_only() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((_rs, port)) = rsyslog(tmp.path()) else {
        return;
    };
    let lib = plugin_lib("audit_backend_syslog");
    let lib = lib.to_str().expect("utf-8 path");
    let config = format!(r#"{{"address":"127.0.0.1:{port}","transport":"tcp","format":"cef"}}"#);
    let out = audit(
        &["plugin", "test", "--write-only", lib, "--config", &config],
        tmp.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for check in [
        "ok   open",
        "ok   ordering",
        "skip reopen: --write-only",
        "ok   redelivery",
        "skip fork: --write-only",
        "ok   capabilities",
        " 0 failed",
    ] {
        assert!(stdout.contains(check), "no `{check}` in\n{stdout}");
    }
    // Without the flag the kit expects the head back after reopen: a syslog store fails it.
    let out = audit(
        &["plugin", "test", lib, "--config", &config],
        tmp.path(),
        "",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL reopen: last_line is none"),
        "{stdout}"
    );
}

/// `audit bench` against the syslog plugin and a real rsyslogd runs and reports its baseline
/// and ratio (no timing asserted). Built with `syslog-bench`, the baseline is the plugin
/// crate's own sender sending as many batches as the trail did; without it, stderr says how
/// to get that baseline. Either way every event reaches rsyslogd.
#[test]
fn bench_reports_a_baseline_and_a_ratio_against_rsyslogd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((_rs, port)) = rsyslog(tmp.path()) else {
        return;
    };
    let lib = plugin_lib("audit_backend_syslog");
    let backend = format!("plugin:{}", lib.to_str().expect("utf-8 path"));
    let config = format!(r#"{{"address":"127.0.0.1:{port}","transport":"tcp","format":"cef"}}"#);
    let bench_dir = tmp.path().join("bench");
    let out = audit(
        &[
            "bench",
            "--events",
            "2000",
            "--rounds",
            "2",
            "--json",
            "--dir",
            bench_dir.to_str().expect("utf-8 path"),
            "--backend",
            &backend,
            "--plugin-config",
            &config,
        ],
        tmp.path(),
        "",
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).expect("JSON");
    assert_eq!(r["events"], 2000, "{r}");
    for key in ["events_per_s", "baseline_events_per_s", "ratio_to_baseline"] {
        assert!(r[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {r}");
    }
    let sent_by_plugin = if cfg!(feature = "syslog-bench") {
        // Each round: the trail's batches counted, then as many in the baseline.
        assert_eq!(
            err.matches("the baseline sends as many").count(),
            2,
            "{err}"
        );
        // The CEF messages' bytes, from the plugin's `bytes_sent` counter.
        assert!(
            r["bytes_per_event"].as_f64().is_some_and(|b| b > 200.0),
            "{r}"
        );
        // Two trail runs and two baseline runs of 1,000 events each.
        4000
    } else {
        assert!(err.contains("--features syslog-bench"), "{err}");
        2000
    };
    // rsyslogd writes what it received asynchronously: wait for it (a bound, not a timing).
    let log = tmp.path().join("received.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut cef = 0;
    while Instant::now() < deadline {
        let received = std::fs::read_to_string(&log).unwrap_or_default();
        cef = received.lines().filter(|l| l.contains("CEF:0|")).count();
        if cef >= sent_by_plugin {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cef, sent_by_plugin, "CEF messages rsyslogd received");
}
