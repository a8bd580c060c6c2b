//! Helpers shared by the `audit` command's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use audit_host::{Integrity, VerifyReport};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every `audit_*.jsonl` file in `dir`, in the order the backend writes them.
pub fn log_files(dir: &Path) -> Vec<PathBuf> {
    audit_format::names::list_log_files(dir)
        .expect("read dir")
        .into_iter()
        .map(|f| f.path)
        .collect()
}

/// All stored lines in file order.
pub fn all_lines(dir: &Path) -> Vec<String> {
    log_files(dir)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .expect("read")
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sequence numbers of all stored lines, in file order.
pub fn sequences(dir: &Path) -> Vec<u64> {
    all_lines(dir)
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            v["sequence_number"].as_u64().expect("sequence_number")
        })
        .collect()
}

pub fn verify(dir: &Path) -> VerifyReport {
    audit_host::verify_dir(dir, &Integrity::Sha256).unwrap_or_else(|e| panic!("verify failed: {e}"))
}

/// Path to the `audit` binary built for this test run.
pub fn audit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_audit"))
}

/// Runs the `audit` binary in `cwd` with `stdin` as its input.
pub fn audit(args: &[&str], cwd: &Path, stdin: impl AsRef<[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(audit_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn audit");
    // The child may exit before reading everything (a bad line): ignore a broken pipe.
    let _ = child.stdin.take().expect("stdin").write_all(stdin.as_ref());
    child.wait_with_output().expect("wait")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A plugin library built by this test run (the plugin crates are dev-dependencies of
/// audit-cli, so `cargo test` builds them into target/<profile>/deps/).
pub fn plugin_lib(name: &str) -> PathBuf {
    let deps = audit_bin().parent().expect("target dir").join("deps");
    let path = deps.join(audit_host::plugin::library_file_name(name));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}
