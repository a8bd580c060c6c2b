//! Running one scenario in a child `audit bench --json` process, so that its peak RSS and
//! page cache are its own.

use super::engine::BenchResult;

/// Runs one scenario in a child process (so peak RSS is its own) and parses its JSON line.
pub(crate) fn bench_child(args: &[String]) -> Result<BenchResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("bench")
        .arg("--json")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("`audit bench {}` failed", args.join(" ")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("no output")?;
    serde_json::from_str(line).map_err(|e| format!("unreadable result: {e}"))
}
