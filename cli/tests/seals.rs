//! Signed seals (`[trail.integrity] signing_key_file`, `audit keygen`, `audit verify
//! --public-key`): a 5,000-event trail over five days, untouched and tampered with in each
//! way a hash chain alone cannot show; a SIGKILL between two seals; a restart continuing
//! the seal chain.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use audit_host::{AuditEventType, AuditTrail, CompliancePolicy};
use chrono::{DateTime, TimeZone, Utc};
use common::*;

const DAYS: [u32; 5] = [1, 2, 3, 4, 5];
const PER_DAY: usize = 1000;

/// Noon (UTC) on 2026-03-`day`.
fn march(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// `audit keygen --out DIR` in `cwd`; returns (private, public).
fn keygen(cwd: &Path, dir: &str) -> (PathBuf, PathBuf) {
    let out = audit(&["keygen", "--out", dir], cwd, "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let d = cwd.join(dir);
    (d.join("audit-signing.key"), d.join("audit-signing.pub"))
}

/// 1,000 events on each of five days (a file per day, a seal at each rotation, at the
/// interval and at close), signed with `key`.
fn write_sealed_trail(dir: &Path, key: &Path) {
    write_sealed_trail_kept(dir, key, 3650);
}

/// As [`write_sealed_trail`], with retention `retention_days`.
fn write_sealed_trail_kept(dir: &Path, key: &Path, retention_days: u32) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let now = std::sync::Arc::new(std::sync::Mutex::new(march(DAYS[0])));
        let clock = std::sync::Arc::clone(&now);
        let trail = AuditTrail::builder()
            .storage_path(dir)
            .policy(CompliancePolicy {
                retention_days,
                ..Default::default()
            })
            .signing_key_file(key)
            .expect("signing key")
            .seal_interval(Duration::from_millis(20))
            .flush_interval(Duration::from_millis(5))
            .clock(move || *clock.lock().expect("clock"))
            .build()
            .expect("trail");
        for &d in &DAYS {
            *now.lock().expect("clock") = march(d);
            for i in 0..PER_DAY {
                trail
                    .log_event(AuditEventType::DataAccess, format!("day {d} event {i}"))
                    .await
                    .expect("log");
            }
            trail.flush().await.expect("flush");
            // The seal thread runs at nice 19: wait until a seal covers the day, so every
            // day ends with its own seal however loaded the machine is.
            let upto = u64::from(d) * PER_DAY as u64;
            let waited = std::time::Instant::now();
            while last_sealed(dir) < upto {
                assert!(
                    waited.elapsed() < Duration::from_secs(60),
                    "no seal up to {upto}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        trail.close().await.expect("close");
    });
}

/// The last sequence the seals in `logs` cover (0: none).
fn last_sealed(logs: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(logs.join(".audit-seals")) else {
        return 0;
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|t| t.lines().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter_map(|v| v["last_sequence"].as_u64())
        .max()
        .unwrap_or(0)
}

/// A sealed trail in `cwd/logs` with keys in `cwd/keys`.
fn sealed(cwd: &Path) -> (PathBuf, PathBuf) {
    let (key, public) = keygen(cwd, "keys");
    let logs = cwd.join("logs");
    write_sealed_trail(&logs, &key);
    (logs, public)
}

fn verify_sealed(cwd: &Path, public: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["verify", "--public-key", public.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    args.push("logs");
    audit(&args, cwd, "")
}

/// Exit 1, with stdout naming `what`.
fn assert_fails_naming(out: &Output, what: &str) {
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(what), "expected `{what}` in:\n{stdout}");
}

fn seal_lines(logs: &Path) -> Vec<(PathBuf, String)> {
    let dir = logs.join(".audit-seals");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("seals dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("read")
                .lines()
                .map(|l| (f.clone(), l.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Rewrites the seal files without line `index` (0-based, over all files), or with it
/// replaced by `with`.
fn rewrite_seal(logs: &Path, index: usize, with: Option<String>) -> TestResult {
    let lines = seal_lines(logs);
    let target = lines[index].0.clone();
    let mut kept = String::new();
    for (i, (f, l)) in lines.iter().enumerate() {
        if *f != target {
            continue;
        }
        match (&with, i == index) {
            (_, false) => kept.push_str(l),
            (Some(w), true) => kept.push_str(w),
            (None, true) => continue,
        }
        kept.push('\n');
    }
    std::fs::write(target, kept)?;
    Ok(())
}

#[test]
fn untouched_trail_verifies_with_the_public_key() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    assert_eq!(log_files(&logs).len(), 5);
    let seals = seal_lines(&logs);
    // A seal per day at least (the trail waits for it); close seals only what no seal
    // covers yet. The last seal covers every event.
    assert!(seals.len() >= 5, "{} seals", seals.len());
    assert!(
        seals
            .last()
            .is_some_and(|(_, l)| l.contains("\"last_sequence\":5000,")),
        "{:?}",
        seals.last()
    );
    assert!(
        seals
            .iter()
            .any(|(_, l)| l.contains("\"reason\":\"rotation\""))
    );
    let key = std::fs::read(cwd.path().join("keys/audit-signing.key"))?;
    assert_eq!(key.len(), 83, "PKCS#8 v2 DER");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cwd.path().join("keys/audit-signing.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = verify_sealed(cwd.path(), &public, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok: 5000 events in 5 files"), "{stdout}");
    assert!(stdout.contains("up to sequence 5000"), "{stdout}");
    assert!(!text(&out.stderr).contains("not yet sealed"));
    // --key-file keeps working alongside (here the chain is plain SHA-256: no key).
    let plain = audit(&["verify", "logs"], cwd.path(), "");
    assert!(plain.status.success(), "{}", text(&plain.stdout));
    Ok(())
}

#[test]
fn tail_truncation_names_the_missing_sequences() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    let newest = log_files(&logs).pop().ok_or("no files")?;
    let text_now = std::fs::read_to_string(&newest)?;
    let lines: Vec<&str> = text_now.lines().collect();
    let kept = lines[..lines.len() - 10].join("\n") + "\n";
    std::fs::write(&newest, kept)?;
    // The chain alone still verifies: this is what the seals are for.
    assert!(audit(&["verify", "logs"], cwd.path(), "").status.success());
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "sequences 4991 to 5000 are missing");
    assert_fails_naming(&out, "its tail was cut off");
    Ok(())
}

#[test]
fn deleting_the_newest_file_is_named() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    let newest = log_files(&logs).pop().ok_or("no files")?;
    std::fs::remove_file(&newest)?;
    assert!(audit(&["verify", "logs"], cwd.path(), "").status.success());
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "audit_2026-03-05.jsonl is missing");
    Ok(())
}

#[test]
fn an_edited_or_deleted_seal_fails() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    let seals = seal_lines(&logs);
    let middle = seals.len() / 2;
    // Edited: a sealed size changed by one.
    let edited = seals[middle].1.replacen("\"size\":", "\"size\":1", 1);
    rewrite_seal(&logs, middle, Some(edited))?;
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "the signature does not match the public key");
    // Restored, then deleted.
    rewrite_seal(&logs, middle, Some(seals[middle].1.clone()))?;
    assert!(verify_sealed(cwd.path(), &public, &[]).status.success());
    rewrite_seal(&logs, middle, None)?;
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(
        &out,
        &format!("seal(s) {} to {} are missing", middle + 1, middle + 1),
    );
    Ok(())
}

#[test]
fn a_forged_anchor_after_removing_the_oldest_file_fails() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    let files = log_files(&logs);
    std::fs::remove_file(&files[0])?;
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&files[1])?
            .lines()
            .next()
            .ok_or("empty file")?,
    )?;
    let forged = serde_json::json!({
        "previous_hash": first["previous_hash"],
        "sequence_number": first["sequence_number"],
    });
    std::fs::write(logs.join(".audit-anchor.json"), forged.to_string())?;
    // Without a key the forged anchor passes the chain check; the seals do not.
    assert!(audit(&["verify", "logs"], cwd.path(), "").status.success());
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "audit_2026-03-01.jsonl is missing");
    assert_fails_naming(&out, ".audit-anchor.json: appeared since seal");
    Ok(())
}

#[test]
fn a_file_replaced_by_another_valid_chain_fails() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    // Another trail written the same way: every file a valid chain, other bytes.
    let other = cwd.path().join("other");
    write_sealed_trail(&other, &cwd.path().join("keys/audit-signing.key"));
    for f in log_files(&logs) {
        std::fs::remove_file(f)?;
    }
    for f in log_files(&other) {
        std::fs::copy(&f, logs.join(f.file_name().ok_or("name")?))?;
    }
    assert!(audit(&["verify", "logs"], cwd.path(), "").status.success());
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "are not those seal");
    assert_fails_naming(&out, "the chain was replaced");
    Ok(())
}

/// `per_day` events on each of `days`, signed with `key` when given, then closed.
fn write_days(dir: &Path, key: Option<&Path>, days: &[u32], per_day: usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let now = std::sync::Arc::new(std::sync::Mutex::new(march(days[0])));
        let clock = std::sync::Arc::clone(&now);
        let mut builder = AuditTrail::builder()
            .storage_path(dir)
            .clock(move || *clock.lock().expect("clock"));
        if let Some(key) = key {
            builder = builder.signing_key_file(key).expect("signing key");
        }
        let trail = builder.build().expect("trail");
        for &d in days {
            *now.lock().expect("clock") = march(d);
            for i in 0..per_day {
                trail
                    .log_event(AuditEventType::DataAccess, format!("day {d} event {i}"))
                    .await
                    .expect("log");
            }
        }
        trail.close().await.expect("close");
    });
}

#[test]
fn sealing_a_directory_written_without_seals_covers_its_older_files() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (key, public) = keygen(cwd.path(), "keys");
    let logs = cwd.path().join("logs");
    // Days 1 and 2 unsealed; then, with the key, day 2 continued and day 3: the seals read
    // day 1 (the seal thread) and day 2's first part (the writer, at open) themselves.
    write_days(&logs, None, &[1, 2], 300);
    write_days(&logs, Some(&key), &[2, 3], 300);
    let out = verify_sealed(cwd.path(), &public, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok: 1200 events in 3 files"), "{stdout}");
    // Day 1 was sealed at its size: its last line removed is named.
    let day1 = logs.join("audit_2026-03-01.jsonl");
    let content = std::fs::read_to_string(&day1)?;
    let lines: Vec<&str> = content.lines().collect();
    std::fs::write(&day1, lines[..lines.len() - 1].join("\n") + "\n")?;
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "audit_2026-03-01.jsonl is");
    assert_fails_naming(&out, "its tail was cut off");
    Ok(())
}

/// Lowercase hex SHA-256 of `{` + `body`: a canonical line's checksum.
fn line_checksum(body: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"{");
    h.update(body.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_line_edited_in_a_sealed_file_with_the_chain_recomputed_fails_naming_file_and_seal()
-> TestResult {
    let cwd = tempfile::tempdir()?;
    let (logs, public) = sealed(cwd.path());
    // Sequence 2501's message changed (same length), then its checksum and every later
    // line's `previous_hash` and checksum recomputed: the chain alone verifies.
    let mut previous: Option<(String, String)> = None; // (old checksum, new checksum)
    for f in log_files(&logs) {
        let content = std::fs::read_to_string(&f)?;
        let mut lines = Vec::new();
        for line in content.lines() {
            let mut l = line.to_owned();
            if l.contains("\"message\":\"day 3 event 500\"") {
                l = l.replace("day 3 event 500", "day 3 event 999");
            } else if let Some((old, new)) = &previous {
                l = l.replace(
                    &format!("\"previous_hash\":\"{old}\""),
                    &format!("\"previous_hash\":\"{new}\""),
                );
            } else {
                lines.push(l);
                continue;
            }
            let sum = line_checksum(&l[79..]);
            previous = Some((line[13..77].to_owned(), sum.clone()));
            lines.push(format!("{}{sum}{}", &l[..13], &l[77..]));
        }
        std::fs::write(&f, lines.join("\n") + "\n")?;
    }
    assert!(previous.is_some(), "the edited line was found");
    let plain = audit(&["verify", "logs"], cwd.path(), "");
    assert!(plain.status.success(), "{}", text(&plain.stdout));
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, "audit_2026-03-03.jsonl: its first");
    assert_fails_naming(&out, "are not those seal");
    assert_fails_naming(&out, "lines' checksums differs");
    Ok(())
}

#[test]
fn the_wrong_public_key_fails_saying_the_signature_does_not_match() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (_logs, _public) = sealed(cwd.path());
    let (_, wrong) = keygen(cwd.path(), "other-keys");
    let out = verify_sealed(cwd.path(), &wrong, &[]);
    assert_fails_naming(&out, "the signature does not match the public key");
    Ok(())
}

#[cfg(unix)]
#[test]
fn a_signing_key_readable_by_others_is_refused_naming_the_key() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir()?;
    let (key, _) = keygen(cwd.path(), "keys");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644))?;
    std::fs::write(
        cwd.path().join("audit.toml"),
        "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nsigning_key_file = \"keys/audit-signing.key\"\n",
    )?;
    let out = audit(&["config", "check", "audit.toml"], cwd.path(), "");
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("trail.integrity.signing_key_file"), "{all}");
    assert!(all.contains("chmod 600"), "{all}");
    // keygen never overwrites a key (EX_IOERR: it cannot write its output).
    let again = audit(&["keygen", "--out", "keys"], cwd.path(), "");
    assert_eq!(again.status.code(), Some(74));
    assert!(
        text(&again.stderr).contains("never overwrites"),
        "{}",
        text(&again.stderr)
    );
    Ok(())
}

/// A configuration in `cwd` sealing `logs` with `keys/audit-signing.key` every `interval_ms`.
fn sealing_config(cwd: &Path, interval_ms: u64) -> TestResult {
    std::fs::write(
        cwd.join("audit.toml"),
        format!(
            "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nsigning_key_file = \"keys/audit-signing.key\"\nseal_interval_ms = {interval_ms}\n"
        ),
    )?;
    Ok(())
}

fn events(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("{{\"event_type\":\"data_access\",\"message\":\"event {i}\"}}\n"))
        .collect()
}

#[cfg(unix)]
#[test]
fn sigkill_between_two_seals_leaves_events_not_yet_sealed_and_a_restart_continues_the_chain()
-> TestResult {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let cwd = tempfile::tempdir()?;
    let (_, public) = keygen(cwd.path(), "keys");
    // Seals only at rotation and close in this test: the interval is ten minutes.
    sealing_config(cwd.path(), 600_000)?;
    // Run 1 closes: its close seal covers 1..=100, durable before `emit` returned.
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        events(0, 100),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = cwd.path().join("logs");
    let first = seal_lines(&logs);
    assert_eq!(first.len(), 1);
    assert!(
        first[0].1.contains("\"last_sequence\":100,")
            && first[0].1.contains("\"reason\":\"close\"")
    );

    // Run 2 is killed after at least 50 more events are durable: no seal covers them.
    let mut child = Command::new(audit_bin())
        .args(["emit", "--config", "audit.toml", "--ack"])
        .current_dir(cwd.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().ok_or("stdin")?;
    let feeder = std::thread::spawn(move || {
        for i in 100.. {
            if stdin.write_all(events(i, 1).as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut acks = BufReader::new(child.stdout.take().ok_or("stdout")?).lines();
    for _ in 0..50 {
        acks.next().ok_or("emit ended early")??;
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    let _ = feeder.join();
    let out = verify_sealed(cwd.path(), &public, &[]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{}{stderr}", text(&out.stdout));
    // The killed run may leave a torn last line: the count comes from `verify`.
    let stdout = text(&out.stdout);
    let last: u64 = stdout
        .strip_prefix("ok: ")
        .and_then(|s| s.split(' ').next())
        .ok_or("no ok line")?
        .parse()?;
    assert!(last >= 150, "{stdout}");
    assert!(
        stderr.contains(&format!(
            "{} events not yet sealed (sequences 101 to {last}, after seal 1)",
            last - 100
        )),
        "{stderr}"
    );

    // Run 3 (a restart) continues the seal chain: seal 2 follows seal 1 and covers all.
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        events(0, 10),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seals = seal_lines(&logs);
    assert_eq!(seals.len(), 2);
    let one: serde_json::Value = serde_json::from_str(&seals[0].1)?;
    let two: serde_json::Value = serde_json::from_str(&seals[1].1)?;
    assert_eq!(two["seal"], 2);
    assert_eq!(two["previous_signature"], one["signature"]);
    assert_eq!(two["first_sequence"], 101);
    assert_eq!(two["last_sequence"], last + 10);
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(
        !text(&out.stderr).contains("not yet sealed"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("2 seals"),
        "{}",
        text(&out.stdout)
    );
    Ok(())
}

#[test]
fn retention_is_sealed_with_its_anchor_and_verifies() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (key, public) = keygen(cwd.path(), "keys");
    let logs = cwd.path().join("logs");
    write_sealed_trail_kept(&logs, &key, 2);
    // Retention kept the files of March 3 to 5 (counted back from the 5th).
    assert_eq!(log_files(&logs).len(), 3);
    let seals = seal_lines(&logs);
    let last: serde_json::Value = serde_json::from_str(&seals.last().ok_or("no seal")?.1)?;
    assert_eq!(last["anchor"]["sequence_number"], 2001);
    assert_eq!(last["files"].as_array().map(Vec::len), Some(3));
    assert!(
        seals
            .iter()
            .any(|(_, l)| l.contains("\"reason\":\"retention\""))
    );
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The anchor is sealed: one rewritten in place (its record of the removal altered) fails.
    let anchor = logs.join(".audit-anchor.json");
    let altered =
        std::fs::read_to_string(&anchor)?.replace("\"retention_days\":2", "\"retention_days\":3");
    std::fs::write(&anchor, altered)?;
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_fails_naming(&out, ".audit-anchor.json: changed since seal");
    Ok(())
}

#[test]
fn the_file_plugin_witnesses_the_seals_and_shows_a_deleted_directory() -> TestResult {
    let cwd = tempfile::tempdir()?;
    let (_, public) = keygen(cwd.path(), "keys");
    let lib = plugin_lib("audit_backend_file");
    let inspect = audit(
        &["plugin", "inspect", lib.to_str().ok_or("utf-8")?],
        cwd.path(),
        "",
    );
    let shown = text(&inspect.stdout) + &text(&inspect.stderr);
    assert!(shown.contains("seal/1"), "{shown}");
    std::fs::write(
        cwd.path().join("audit.toml"),
        format!(
            "[trail.integrity]\nsigning_key_file = \"keys/audit-signing.key\"\n\n[[backends]]\ntype = \"file\"\npath = \"logs\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {:?}\nconfig = {{ path = \"witness\" }}\n",
            lib.to_str().ok_or("utf-8")?
        ),
    )?;
    for round in 0..2 {
        let out = audit(
            &["emit", "--config", "audit.toml"],
            cwd.path(),
            events(round * 100, 100),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // The witness holds the same seal lines as the directory (the close seal of each run).
    let own = seal_lines(&cwd.path().join("logs"));
    let witnessed = {
        let dir = cwd.path().join("witness/.audit-witness");
        let mut lines = Vec::new();
        for e in std::fs::read_dir(dir)? {
            lines.extend(
                std::fs::read_to_string(e?.path())?
                    .lines()
                    .map(str::to_owned),
            );
        }
        lines
    };
    assert_eq!(own.len(), 2);
    assert_eq!(
        own.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>(),
        witnessed
    );
    let with_witness = ["--seals", "witness/.audit-witness"];
    let out = verify_sealed(cwd.path(), &public, &with_witness);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The whole directory, seals included, is deleted: the witness's seals name what is gone.
    std::fs::remove_dir_all(cwd.path().join("logs"))?;
    let out = verify_sealed(cwd.path(), &public, &with_witness);
    assert_fails_naming(&out, "audit_");
    assert_fails_naming(&out, "is missing: seal 2 sealed it");
    assert_fails_naming(
        &out,
        "logs is gone: sequences 1 to 200, sealed by seal 2, are missing",
    );
    Ok(())
}

#[test]
fn a_trail_with_another_signing_key_refuses_to_continue_the_seal_chain() -> TestResult {
    let cwd = tempfile::tempdir()?;
    keygen(cwd.path(), "keys");
    sealing_config(cwd.path(), 60_000)?;
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        events(0, 10),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The key is replaced: the last seal does not verify under the new one.
    std::fs::remove_dir_all(cwd.path().join("keys"))?;
    keygen(cwd.path(), "keys");
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        events(10, 10),
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot continue the seal chain"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the signature does not match the public key"),
        "{stderr}"
    );
    assert!(stderr.contains("move"), "{stderr}");
    Ok(())
}

#[cfg(unix)]
#[test]
fn key_file_and_public_key_work_together() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let cwd = tempfile::tempdir()?;
    let (_, public) = keygen(cwd.path(), "keys");
    let hmac = cwd.path().join("hmac.key");
    std::fs::write(&hmac, [9u8; 32])?;
    std::fs::set_permissions(&hmac, std::fs::Permissions::from_mode(0o600))?;
    std::fs::write(
        cwd.path().join("audit.toml"),
        "[trail]\nstorage_path = \"logs\"\n[trail.integrity]\nhmac_key_file = \"hmac.key\"\nsigning_key_file = \"keys/audit-signing.key\"\n",
    )?;
    let out = audit(
        &["emit", "--config", "audit.toml"],
        cwd.path(),
        events(0, 50),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = verify_sealed(cwd.path(), &public, &["--key-file", "hmac.key"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("ok: 50 events in 1 file, 1 seal"),
        "{}",
        text(&out.stdout)
    );
    // Without the HMAC key the chain check fails; the seals are still checked and hold.
    let out = verify_sealed(cwd.path(), &public, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("--key-file"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
