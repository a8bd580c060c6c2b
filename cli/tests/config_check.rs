//! `audit config check` as a pre-flight: each mistake that `emit` would refuse exits 78
//! (EX_CONFIG) naming the `[[backends]]` entry and the key; the shipped examples pass; the
//! check leaves nothing behind.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

/// Writes `c.toml` in `dir` and runs `audit config check [extra] c.toml` there.
fn check(dir: &Path, toml: &str, extra: &[&str]) -> Output {
    std::fs::write(dir.join("c.toml"), toml).expect("write config");
    let mut args = vec!["config", "check"];
    args.extend_from_slice(extra);
    args.push("c.toml");
    audit(&args, dir, "")
}

/// Asserts exit 78 and that stderr has a line naming `entry` and `key`; returns stderr.
fn refused(out: &Output, entry: &str, key: &str) -> String {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "stderr: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let want = format!("audit config check: {entry}: {key}: ");
    assert!(
        err.lines().any(|l| l.starts_with(&want)),
        "wanted a line starting {want:?}, got:\n{err}"
    );
    err
}

#[test]
fn an_unknown_plugin_config_key_is_found_by_validate_also_offline() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"a.db\", colour = \"red\" }}\n",
        toml_str(&plugin_lib("audit_backend_sqlite"))
    );
    // The SQLite plugin exports `validate`: with and without --no-connect, the key is named
    // and nothing is opened or created.
    for extra in [&[][..], &["--no-connect"][..]] {
        let out = check(dir.path(), &toml, extra);
        let err = refused(&out, "backends[2] \"sqlite\" (c.toml:7)", "config");
        assert!(
            err.contains("plugin `sqlite` rejected its config: config: unknown field `colour`"),
            "{extra:?}: {err}"
        );
        assert!(!dir.path().join("a.db").exists(), "{extra:?}: not opened");
        assert!(
            !dir.path().join("logs").exists(),
            "{extra:?}: nothing created"
        );
    }
    // A bad value, offline too.
    let toml = toml.replace("colour = \"red\"", "synchronous = \"sometimes\"");
    let out = check(dir.path(), &toml, &["--no-connect"]);
    let err = refused(&out, "backends[2] \"sqlite\" (c.toml:7)", "config");
    assert!(err.contains("unknown variant `sometimes`"), "{err}");
    // A valid entry: validated, then opened and closed (or not, offline).
    let toml = toml.replace(", synchronous = \"sometimes\"", "");
    let out = check(dir.path(), &toml, &["--no-connect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("config ok: c.toml\n"), "{stdout}");
    assert!(
        stdout.contains("backend 2: validated, not opened (--no-connect)"),
        "{stdout}"
    );
    assert!(!dir.path().join("a.db").exists(), "not opened");
    let out = check(dir.path(), &toml, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backend 2: validated, opened and closed"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn a_plugin_without_validate_is_checked_by_opening_and_closing_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    // The example plugin does not export `validate`.
    let toml = format!(
        "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"events.jsonl\" }}\n",
        toml_str(&plugin_lib("audit_backend_example"))
    );
    let out = check(dir.path(), &toml, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backend 1: opened and closed"),
        "{}",
        text(&out.stdout)
    );
    // Offline, its config is not checked at all.
    let toml = toml.replace("path = \"events.jsonl\"", "colour = \"red\"");
    let out = check(dir.path(), &toml, &["--no-connect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("backend 1: not opened (--no-connect)"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn at_start_up_a_validate_error_fails_before_any_backend_is_opened() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = toml_str(&plugin_lib("audit_backend_sqlite"));
    // Entry 1 is valid; entry 2 has an unknown key. Entry 1's database is not created:
    // every plugin validates before any is opened.
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nname = \"one\"\nlibrary = {lib}\nconfig = {{ path = \"one.db\" }}\n\n[[backends]]\ntype = \"plugin\"\nname = \"two\"\nlibrary = {lib}\nconfig = {{ path = \"two.db\", colour = \"red\" }}\n"
    );
    std::fs::write(dir.path().join("c.toml"), toml)?;
    let out = audit(&["emit", "--config", "c.toml"], dir.path(), "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("backends[2] \"two\" (c.toml:10): plugin `sqlite` rejected its config: config: unknown field `colour`"),
        "{err}"
    );
    assert!(
        !dir.path().join("one.db").exists(),
        "entry 1 was not opened"
    );
    assert!(
        !dir.path().join("two.db").exists(),
        "entry 2 was not opened"
    );
    Ok(())
}

#[test]
fn two_file_backends_on_one_directory_are_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = "[[backends]]\ntype = \"file\"\nname = \"a\"\npath = \"logs\"\n\n[[backends]]\ntype = \"file\"\nname = \"b\"\npath = \"./sub/../logs\"\n";
    let out = check(dir.path(), toml, &[]);
    let err = refused(&out, "backends[2] \"b\" (c.toml:6)", "path");
    assert!(
        err.contains("already used by backends[1] \"a\" (c.toml:1)"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_same_plugin_twice_sharing_a_spool_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lib = toml_str(&plugin_lib("audit_backend_faulty"));
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {lib}\nconfig = {{}}\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {lib}\nconfig = {{}}\n"
    );
    let out = check(dir.path(), &toml, &[]);
    let err = refused(&out, "backends[2] \"faulty\" (c.toml:9)", "spool_dir");
    assert!(
        err.contains("already used by backends[1] \"faulty\" (c.toml:4)")
            && err.contains("distinct `name`s"),
        "{err}"
    );
    // `emit` refuses it too, before writing anything.
    let out = audit(&["emit", "--config", "c.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with(
            "audit emit: backends[2] \"faulty\" (c.toml:9): spool_dir: the spool directory"
        ),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_storage_path_that_cannot_be_created_is_refused_and_nothing_is_left_behind() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("blocker"), b"a file, not a directory")?;
    let out = check(
        dir.path(),
        "[trail]\nstorage_path = \"blocker/logs\"\n",
        &[],
    );
    let err = refused(
        &out,
        "backends[1] \"file\" (c.toml, trail.storage_path)",
        "trail.storage_path",
    );
    assert!(err.contains("blocker is not a directory"), "{err}");
    // A good one passes and leaves the directory as it was: no storage directory, no probe.
    let out = check(dir.path(), "[trail]\nstorage_path = \"logs\"\n", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut left: Vec<String> = std::fs::read_dir(dir.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    left.sort();
    assert_eq!(left, ["blocker", "c.toml"]);
    Ok(())
}

/// An existing storage or spool directory writable by group or others is refused, as the
/// trail would refuse it at start; `[trail] allow_insecure_permissions = true` lets it pass.
#[cfg(unix)]
#[test]
fn an_insecure_storage_or_spool_directory_is_refused_unless_allowed() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    for d in ["logs", "spool"] {
        std::fs::create_dir(dir.path().join(d))?;
        std::fs::set_permissions(dir.path().join(d), std::fs::Permissions::from_mode(0o770))?;
    }
    let out = check(dir.path(), "[trail]\nstorage_path = \"logs\"\n", &[]);
    let err = refused(
        &out,
        "backends[1] \"file\" (c.toml, trail.storage_path)",
        "trail.storage_path",
    );
    assert!(
        err.contains("is writable by group or others (mode 770)") && err.contains("chmod go-w"),
        "{err}"
    );
    let plugin = toml_str(&plugin_lib("audit_backend_faulty"));
    let spool = format!(
        "[trail]\nstorage_path = \"store\"\n[[backends]]\ntype = \"plugin\"\nname = \"db\"\nlibrary = {plugin}\nspool_dir = \"spool\"\nconfig = {{}}\n"
    );
    let out = check(dir.path(), &spool, &[]);
    let err = refused(&out, "backends[1] \"db\" (c.toml:3)", "spool_dir");
    assert!(err.contains("mode 770"), "{err}");
    let allowed = "[trail]\nstorage_path = \"logs\"\nallow_insecure_permissions = true\n";
    let out = check(dir.path(), allowed, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn a_plugin_whose_open_hangs_is_reported_within_its_open_timeout() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[[backends]]\ntype = \"plugin\"\nlibrary = {}\nopen_timeout_ms = 500\nconfig = {{ open_sleep_ms = 120000 }}\n",
        toml_str(&plugin_lib("audit_backend_faulty"))
    );
    let started = Instant::now();
    let out = check(dir.path(), &toml, &[]);
    assert!(started.elapsed() < Duration::from_secs(30));
    let err = refused(&out, "backends[1] \"faulty\" (c.toml:1)", "config");
    assert!(
        err.contains("plugin `faulty` did not finish `open` within 500 ms"),
        "{err}"
    );
    Ok(())
}

/// Every `examples/*.toml`, copied into a temporary directory (so that what it creates,
/// such as the SQLite database, lands there) with `plugin_dir` pointing at this build's
/// plugins, passes (postgres.toml, syslog.toml and http.toml with `--no-connect`).
#[test]
fn the_shipped_examples_pass() -> TestResult {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let deps = plugin_lib("audit_backend_sqlite")
        .parent()
        .ok_or("deps")?
        .to_path_buf();
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let work = dir.path().join("examples");
        std::fs::create_dir(&work)?;
        let toml: String = std::fs::read_to_string(&path)?
            .lines()
            .map(|l| {
                if l.starts_with("plugin_dir = ") {
                    format!("plugin_dir = {}\n", toml_str(&deps))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        // postgres.toml, syslog.toml and http.toml name servers and secret files that are not
        // here: their keys are checked offline.
        let offline: &[&str] = if ["postgres.toml", "syslog.toml", "http.toml"]
            .iter()
            .any(|f| path.ends_with(f))
        {
            &["--no-connect"]
        } else {
            &[]
        };
        let out = check(&work, &toml, offline);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        checked += 1;
    }
    assert!(checked >= 2, "audit.toml and sqlite.toml at least");
    Ok(())
}

#[test]
fn an_opened_plugin_reports_its_health() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"a.db\" }}\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"copy.jsonl\" }}\n",
        toml_str(&plugin_lib("audit_backend_sqlite")),
        toml_str(&plugin_lib("audit_backend_example"))
    );
    let out = check(dir.path(), &toml, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("backend 1: validated, opened and closed; health: ok: empty, db a.db"),
        "{stdout}"
    );
    assert!(dir.path().join("a.db").exists(), "opened as a trail would");
    // The example plugin does not export `health`.
    assert!(
        stdout.contains("backend 2: opened and closed; health: unknown"),
        "{stdout}"
    );
    Ok(())
}

/// Runs `args` in `dir` as an operator would (no `RUST_BACKTRACE`), `stdin` on stdin.
fn run_quiet(dir: &Path, args: &[&str], stdin: &str) -> std::io::Result<Output> {
    use std::io::Write;
    let mut child = std::process::Command::new(audit_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // A command that fails before reading stdin closes it: a broken pipe is expected then.
    let _ = child
        .stdin
        .take()
        .ok_or(std::io::ErrorKind::BrokenPipe)?
        .write_all(stdin.as_bytes());
    child.wait_with_output()
}

#[test]
fn a_panic_in_validate_is_reported_in_two_lines_naming_plugin_and_method() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ panic_in = \"validate\" }}\n",
        toml_str(&plugin_lib("audit_backend_faulty"))
    );
    std::fs::write(dir.path().join("c.toml"), &toml)?;
    for (args, code) in [
        (&["config", "check", "c.toml"][..], 78),
        (&["config", "check", "--no-connect", "c.toml"][..], 78),
        (&["emit", "--config", "c.toml"][..], 78),
    ] {
        let out = run_quiet(dir.path(), args, "{\"event_type\":\"data_access\"}\n")?;
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(
            err.lines().count() <= 2,
            "{args:?}: more than 2 lines:\n{err}"
        );
        assert!(
            err.contains("backends[1] \"faulty\" (c.toml:4)")
                && err.contains("plugin `faulty` failed to validate its config: panicked in validate: fixture panic in validate"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("thread '"), "{args:?}: {err}");
    }
    assert!(!dir.path().join("logs").exists(), "nothing started");
    Ok(())
}

#[test]
fn a_panic_in_health_is_one_problem_without_a_close_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ panic_in = \"health\" }}\n",
        toml_str(&plugin_lib("audit_backend_faulty"))
    );
    std::fs::write(dir.path().join("c.toml"), &toml)?;
    let out = run_quiet(dir.path(), &["config", "check", "c.toml"], "")?;
    let err = refused(&out, "backends[1] \"faulty\" (c.toml:4)", "health");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("panicked in health: fixture panic in health"),
        "{err}"
    );
    Ok(())
}

/// The one JSON object `config check --json` prints: stdout is one line, stderr empty, and
/// `exit_code` is the process's.
fn object(out: &Output) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let stdout = text(&out.stdout);
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(v["exit_code"].as_i64(), out.status.code().map(i64::from));
    assert_eq!(v["ok"], out.status.success());
    Ok(v)
}

#[test]
fn json_reports_each_backend_validated_opened_and_its_health() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"a.db\" }}\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"copy.jsonl\" }}\n",
        toml_str(&plugin_lib("audit_backend_sqlite")),
        toml_str(&plugin_lib("audit_backend_example"))
    );
    let out = check(dir.path(), &toml, &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = object(&out)?;
    assert_eq!(v["config"], "c.toml");
    assert_eq!(v["problems"], serde_json::json!([]));
    assert!(
        v["settings"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("trail: storage_path=")),
        "{v}"
    );
    let b = v["backends"].as_array().ok_or("backends")?;
    assert_eq!(b.len(), 3);
    assert_eq!(b[0]["type"], "file");
    assert_eq!(b[0]["entry"], "backends[1] \"file\" (c.toml:4)");
    assert!(b[0]["validate"].is_null() && b[0]["open"].is_null());
    assert_eq!(b[1]["type"], "plugin");
    assert_eq!(b[1]["name"], "sqlite");
    assert_eq!(b[1]["line"], 7);
    assert_eq!(b[1]["plugin"]["name"], "sqlite");
    assert_eq!(b[1]["validate"], "passed");
    assert_eq!(b[1]["open"], "opened");
    assert_eq!(b[1]["health"], "ok: empty, db a.db");
    // The example plugin exports neither `validate` nor `health`.
    assert_eq!(b[2]["validate"], "not exported");
    assert_eq!(b[2]["health"], "unknown");
    // Offline: nothing opened.
    let v = object(&check(dir.path(), &toml, &["--json", "--no-connect"]))?;
    assert_eq!(v["backends"][1]["open"], "not opened");
    assert!(v["backends"][1]["health"].is_null());
    Ok(())
}

#[test]
fn json_names_each_problem_at_its_backend_and_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let toml = format!(
        "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ path = \"a.db\", colour = \"red\" }}\n\n[[backends]]\ntype = \"plugin\"\nname = \"gone\"\nlibrary = \"/nonexistent/libaudit_backend_gone.so\"\nconfig = {{}}\n",
        toml_str(&plugin_lib("audit_backend_sqlite"))
    );
    let out = check(dir.path(), &toml, &["--json"]);
    assert_eq!(out.status.code(), Some(78));
    let v = object(&out)?;
    let problems = v["problems"].as_array().ok_or("problems")?;
    assert_eq!(problems.len(), 2, "{problems:?}");
    // The library that cannot be loaded first (as text prints it), then the config.
    assert_eq!(problems[0]["place"], "backends[2] \"gone\" (c.toml:9)");
    assert_eq!(problems[0]["backend"], 2);
    assert_eq!(problems[0]["key"], "library");
    assert_eq!(problems[1]["place"], "backends[1] \"sqlite\" (c.toml:4)");
    assert_eq!(problems[1]["key"], "config");
    assert!(
        problems[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `colour`")),
        "{problems:?}"
    );
    let b = &v["backends"];
    assert_eq!(b[0]["validate"], "failed");
    assert!(b[0]["open"].is_null(), "not opened after validate failed");
    assert_eq!(b[0]["problems"][0]["key"], "config");
    assert!(b[1]["plugin"].is_null());
    assert_eq!(b[1]["problems"][0]["key"], "library");
    Ok(())
}

#[test]
fn json_for_a_file_that_cannot_be_loaded_names_the_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = check(
        dir.path(),
        "[trail]\nstorage_path = \"logs\"\ndurability = \"eventually\"\n",
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(78));
    let v = object(&out)?;
    assert_eq!(v["problems"][0]["place"], "c.toml:3");
    assert_eq!(v["problems"][0]["key"], "trail.durability");
    assert_eq!(v["backends"], serde_json::json!([]));
    let out = audit(&["config", "check", "--json", "nope.toml"], dir.path(), "");
    assert_eq!(out.status.code(), Some(66));
    let v = object(&out)?;
    assert_eq!(v["problems"][0]["key"], "(file)");
    Ok(())
}
