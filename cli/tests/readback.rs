//! `audit verify --config FILE --backend NAME` and `audit query --config FILE --backend NAME`:
//! a plugin's store read back through its `read` capability (the real binary, real plugin
//! libraries, a real SQLite database), verified with the configuration's HMAC key.

mod common;

use std::path::{Path, PathBuf};

use common::{TestResult, audit, plugin_lib, text};

fn events(n: usize) -> String {
    (1..=n)
        .map(|i| {
            format!(
                "{{\"event_type\":\"data_access\",\"message\":\"read {i}\",\"user_id\":\"u{}\"}}\n",
                i % 3
            )
        })
        .collect()
}

fn toml_str(p: &Path) -> String {
    format!("{:?}", p.to_str().expect("utf-8 path"))
}

fn deps_dir() -> PathBuf {
    plugin_lib("audit_backend_sqlite")
        .parent()
        .expect("deps dir")
        .to_path_buf()
}

/// A 32-byte HMAC key file, mode 600.
fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).expect("write key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// examples/sqlite.toml, its paths rewritten into `dir`, with an HMAC key: the config path.
fn sqlite_toml(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sqlite.toml");
    let text = std::fs::read_to_string(example).expect("examples/sqlite.toml");
    let key = key_file(dir, "hmac.key", 7);
    let replace = |text: String, from: &str, to: String| {
        assert!(text.contains(from), "examples/sqlite.toml has no `{from}`");
        text.replace(from, &to)
    };
    let text = replace(
        text,
        "plugin_dir = \"../target/release\"",
        format!("plugin_dir = {}", toml_str(&deps_dir())),
    );
    let text = replace(
        text,
        "storage_path = \"../audit_logs\"",
        "storage_path = \"logs\"".to_owned(),
    );
    let text = replace(
        text,
        "config = { path = \"audit.db\" }",
        format!("config = {{ path = {} }}", toml_str(&dir.join("audit.db"))),
    );
    let text = format!(
        "{text}\n[trail.integrity]\nhmac_key_file = {}\n",
        toml_str(&key)
    );
    let path = dir.join("sqlite.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn emit(dir: &Path, config: &Path, n: usize) {
    let out = audit(
        &["emit", "--config", config.to_str().expect("utf-8")],
        dir,
        events(n),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = audit(args, dir, "");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn verify_reads_the_sqlite_store_and_names_a_tampered_sequence() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let cfg = config.to_str().ok_or("utf-8")?;
    emit(dir, &config, 2500);

    let (code, stdout, stderr) = run(dir, &["verify", "--config", cfg, "--backend", "sqlite"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok: 2500 events in backends[1] \"sqlite\" ("),
        "{stdout}"
    );

    // The HMAC key is the config's: another key fails at the first line.
    let other = key_file(dir, "other.key", 9);
    let (code, stdout, _) = run(
        dir,
        &[
            "verify",
            "--config",
            cfg,
            "--backend",
            "sqlite",
            "--key-file",
            other.to_str().ok_or("utf-8")?,
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with("FAILED: sequence 1 in backends[1] \"sqlite\""),
        "{stdout}"
    );
    assert!(stdout.contains("checksum mismatch"), "{stdout}");

    // One row's line altered in place (past the first page): caught, naming its sequence.
    let conn = rusqlite::Connection::open(dir.join("audit.db"))?;
    let changed = conn.execute(
        "UPDATE audit_events SET line = replace(line, '\"read 1207\"', '\"read 1208\"') WHERE sequence_number = 1207",
        [],
    )?;
    assert_eq!(changed, 1);
    drop(conn);
    let (code, stdout, stderr) = run(dir, &["verify", "--config", cfg, "--backend", "sqlite"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("FAILED: sequence 1207 in backends[1] \"sqlite\""),
        "{stdout}"
    );
    assert!(
        stdout.contains(", line 1207 read back: checksum mismatch"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn verify_names_a_deleted_row() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let cfg = config.to_str().ok_or("utf-8")?;
    emit(dir, &config, 30);
    let conn = rusqlite::Connection::open(dir.join("audit.db"))?;
    conn.execute("DELETE FROM audit_events WHERE sequence_number = 12", [])?;
    drop(conn);
    let (code, stdout, _) = run(dir, &["verify", "--config", cfg, "--backend", "sqlite"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("FAILED: sequence 12 "), "{stdout}");
    assert!(
        stdout.contains("sequence 12 is missing (found 13)"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn query_reads_the_sqlite_store_with_the_filters_of_query_dir() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let cfg = config.to_str().ok_or("utf-8")?;
    emit(dir, &config, 1500);
    let sequences = |stdout: &str| -> Vec<u64> {
        stdout
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("json line");
                v["sequence_number"].as_u64().expect("sequence_number")
            })
            .collect()
    };
    let (code, stdout, stderr) = run(
        dir,
        &[
            "query",
            "--config",
            cfg,
            "--backend",
            "sqlite",
            "--limit",
            "3",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sequences(&stdout), [1500, 1499, 1498], "newest first");
    let (code, stdout, stderr) = run(
        dir,
        &[
            "query",
            "--config",
            cfg,
            "--backend",
            "sqlite",
            "--user",
            "u1",
            "--limit",
            "1000",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let got = sequences(&stdout);
    assert_eq!(got.len(), 500);
    assert!(got.iter().all(|s| s % 3 == 1), "only user u1");
    assert_eq!((got[0], got[499]), (1498, 1));
    Ok(())
}

#[test]
fn the_file_plugin_is_read_back_the_same_way() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = dir.join("file.toml");
    std::fs::write(
        &config,
        format!(
            "[trail]\nstorage_path = \"logs\"\nplugin_dir = {}\n\n[[backends]]\ntype = \"plugin\"\nname = \"jsonl\"\nlibrary = \"audit_backend_file\"\nconfig = {{ path = {}, max_file_bytes = 20000 }}\n",
            toml_str(&deps_dir()),
            toml_str(&dir.join("plugin-logs"))
        ),
    )?;
    emit(dir, &config, 1200);
    let cfg = config.to_str().ok_or("utf-8")?;
    let (code, stdout, stderr) = run(dir, &["verify", "--config", cfg, "--backend", "jsonl"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok: 1200 events in backends[1] \"jsonl\""),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        dir,
        &[
            "query",
            "--config",
            cfg,
            "--backend",
            "jsonl",
            "--limit",
            "2",
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 2);
    assert!(stdout.contains("\"sequence_number\":1200"), "{stdout}");
    Ok(())
}

#[test]
fn an_empty_store_verifies_with_a_warning() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let (code, stdout, stderr) = run(
        dir,
        &[
            "verify",
            "--config",
            config.to_str().ok_or("utf-8")?,
            "--backend",
            "sqlite",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("ok: 0 events in backends[1] \"sqlite\""),
        "{stdout}"
    );
    assert!(
        stderr.contains("holds no events: check that its config names the store"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_config_file_backend_is_verified_as_its_directory() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = dir.join("audit.toml");
    std::fs::write(&config, "[trail]\nstorage_path = \"logs\"\n")?;
    emit(dir, &config, 10);
    let cfg = config.to_str().ok_or("utf-8")?;
    let (code, stdout, stderr) = run(dir, &["verify", "--config", cfg, "--backend", "file"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "ok: 10 events in 1 file\n");
    Ok(())
}

#[test]
fn bad_requests_are_refused_naming_what_to_fix() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let cfg = config.to_str().ok_or("utf-8")?;

    // No such backend: the names it has (EX_CONFIG: the configuration lacks it).
    for cmd in ["verify", "query"] {
        let (code, _, stderr) = run(dir, &[cmd, "--config", cfg, "--backend", "postgres"]);
        assert_eq!(code, Some(78), "{stderr}");
        assert!(
            stderr.contains(
                "--backend: no backend is named `postgres`; this configuration has: sqlite"
            ),
            "{stderr}"
        );
    }
    // DIR and --config together.
    let (code, _, stderr) = run(
        dir,
        &["verify", "logs", "--config", cfg, "--backend", "sqlite"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    // --config without --backend reads the file backend's directory; this one has none.
    let (code, _, stderr) = run(dir, &["query", "--config", cfg]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("has no file backend: name the backend to read with --backend NAME"),
        "{stderr}"
    );

    // A plugin without the `read` capability: named, with what to do (EX_CONFIG).
    let compat = dir.join("compat.toml");
    std::fs::write(
        &compat,
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {}\nconfig = {{ dir = \"c\" }}\n",
            toml_str(&plugin_lib("audit_backend_compat_1_0"))
        ),
    )?;
    let (code, _, stderr) = run(
        dir,
        &[
            "verify",
            "--config",
            compat.to_str().ok_or("utf-8")?,
            "--backend",
            "compat-1-0",
        ],
    );
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("backends[1] \"compat-1-0\" (") && stderr.contains("compat.toml:4)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("does not export the `read` capability (audit_backend_ext_read_v1)"),
        "{stderr}"
    );
    assert!(!dir.join("c").exists(), "the plugin was not opened");
    Ok(())
}

#[test]
fn verify_json_reads_a_plugin_store_back_into_one_object() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config = sqlite_toml(dir);
    let cfg = config.to_str().ok_or("utf-8")?;
    emit(dir, &config, 5);
    let args = ["verify", "--json", "--config", cfg, "--backend", "sqlite"];
    let (code, stdout, stderr) = run(dir, &args);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 5);
    assert_eq!(v["files"], 0, "a plugin store has no files");
    assert!(
        v["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("backends[1] \"sqlite\" (")),
        "{v}"
    );
    // Another key: the first line read back fails; `line` is its position among them.
    let other = key_file(dir, "other.key", 9);
    let mut args = args.to_vec();
    args.extend(["--key-file", other.to_str().ok_or("utf-8")?]);
    let (code, stdout, stderr) = run(dir, &args);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let f = serde_json::from_str::<serde_json::Value>(&stdout)?["failure"].clone();
    assert_eq!(f["kind"], "chain");
    assert_eq!(f["sequence"], 1);
    assert_eq!(f["line"], 1);
    assert!(f["file"].is_null(), "{f}");
    // An unknown backend name: still one object, exit 78.
    let (code, stdout, _) = run(
        dir,
        &["verify", "--json", "--config", cfg, "--backend", "nope"],
    );
    assert_eq!(code, Some(78));
    let v: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(v["exit_code"], 78);
    assert!(
        v["failure"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no backend is named `nope`")),
        "{v}"
    );
    Ok(())
}
