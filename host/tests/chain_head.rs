//! The chain head belongs to the trail: a plugin whose `last_line` is ahead of the file
//! backend, forked from it, or does not verify, is that backend's failure (reported with both
//! values, its events spooled); the trail starts and the file chain stays continuous. With
//! plugins only, the highest head that verifies wins and a fork is reported.

mod common;

use std::path::{Path, PathBuf};

use audit_backend_faulty::{Forge, forge};
use audit_host::{AuditTrail, BackendStatistics};
use common::*;

/// A line as a TOML string (canonical lines are ASCII: Rust's escapes are TOML's).
fn toml_line(line: &str) -> String {
    format!("{line:?}")
}

/// The `checksum` of a stored line.
fn checksum(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).expect("a json line");
    v["checksum"].as_str().expect("checksum").to_owned()
}

/// A file backend in `logs` and, after it, one faulty fixture per `(name, config)`.
fn config(dir: &Path, file_backend: bool, plugins: &[(&str, String)]) -> PathBuf {
    let mut text = String::from("[trail]\nstorage_path = \"logs\"\n");
    if file_backend {
        text.push_str("[[backends]]\ntype = \"file\"\n");
    }
    for (name, cfg) in plugins {
        text.push_str(&format!(
            "[[backends]]\ntype = \"plugin\"\nname = \"{name}\"\nlibrary = {}\nconfig = {cfg}\n",
            toml_str(&plugin_lib("audit_backend_faulty"))
        ));
    }
    let path = dir.join("audit.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// The fixture's config claiming `line` as its head, forged as `how`.
fn claiming(line: &str, how: &str) -> String {
    format!(
        "{{ last_line = {}, forge_last_line = \"{how}\" }}",
        toml_line(line)
    )
}

/// Ten events stored by the file backend in `dir/logs`; their lines.
async fn ten_events(dir: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let trail = file_trail(&dir.join("logs"))?;
    log_n(&trail, 10).await?;
    trail.close().await?;
    Ok(all_lines(&dir.join("logs")))
}

/// Starts the trail from `cfg` beside the file backend, checks `plugin` was refused at start
/// with a message holding each of `expect`, logs five more events and checks the file chain
/// is 1..=15, verified.
async fn starts_and_refuses(dir: &Path, cfg: &Path, expect: &[&str]) -> TestResult {
    let trail = AuditTrail::from_config_file(cfg)?;
    let plugin: BackendStatistics = trail.statistics().per_backend[1].clone();
    assert_eq!(
        (plugin.state.as_str(), plugin.fatal),
        ("fatal", 1),
        "{plugin:?}"
    );
    let message = plugin.last_error.clone().unwrap_or_default();
    for e in expect {
        assert!(message.contains(e), "`{e}` missing from: {message}");
    }
    log_n(&trail, 5).await?;
    trail.flush().await?;
    let stats = trail.statistics();
    assert_eq!(
        stats.last_sequence, 15,
        "the file backend's head is the trail's"
    );
    assert_eq!(stats.last_error, None, "the trail keeps accepting");
    assert_eq!(stats.per_backend[1].state.as_str(), "fatal");
    trail.close().await?;
    let logs = dir.join("logs");
    assert_eq!(verify(&logs).events, 15);
    assert!(
        sequences(&logs).into_iter().eq(1..=15),
        "a gap in the chain"
    );
    assert_eq!(
        trail.statistics().per_backend[1].spooled_events,
        5,
        "its events are spooled"
    );
    Ok(())
}

#[tokio::test]
async fn a_plugin_ahead_of_the_file_backend_is_refused_not_followed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    let cfg = config(
        dir.path(),
        true,
        &[("forger", claiming(&lines[9], "ahead"))],
    );
    starts_and_refuses(
        dir.path(),
        &cfg,
        &[
            "its store ends at sequence 5010, ahead of the file backend",
            "whose chain ends at sequence 10 (",
        ],
    )
    .await
}

#[tokio::test]
async fn a_plugin_forked_at_the_file_backends_head_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    let forged = forge(&lines[9], Forge::Fork)?;
    let cfg = config(dir.path(), true, &[("forger", claiming(&lines[9], "fork"))]);
    starts_and_refuses(
        dir.path(),
        &cfg,
        &[
            "holds a different line at sequence 10 than the file backend",
            &checksum(&forged),
            &checksum(&lines[9]),
        ],
    )
    .await
}

#[tokio::test]
async fn a_plugin_forked_behind_the_file_backends_head_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    let forged = forge(&lines[4], Forge::Fork)?;
    let cfg = config(dir.path(), true, &[("forger", claiming(&lines[4], "fork"))]);
    starts_and_refuses(
        dir.path(),
        &cfg,
        &[
            "holds a different line at sequence 5 than the file backend",
            &checksum(&forged),
            &checksum(&lines[4]),
            ".jsonl:5)",
        ],
    )
    .await
}

#[tokio::test]
async fn a_plugin_whose_head_does_not_verify_is_refused_and_the_trail_starts() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    let cfg = config(
        dir.path(),
        true,
        &[("forger", claiming(&lines[9], "garbage"))],
    );
    starts_and_refuses(
        dir.path(),
        &cfg,
        &[
            "its store ends with sequence 10, whose line does not verify",
            &format!("stored {}", checksum(&lines[9])),
        ],
    )
    .await
}

#[tokio::test]
async fn a_plugin_behind_with_the_file_backends_line_is_trusted() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    let cfg = config(
        dir.path(),
        true,
        &[(
            "honest",
            format!("{{ last_line = {} }}", toml_line(&lines[4])),
        )],
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    log_n(&trail, 5).await?;
    trail.flush().await?;
    let plugin = trail.statistics().per_backend[1].clone();
    assert_eq!(
        (plugin.state.as_str(), plugin.fatal),
        ("ok", 0),
        "{plugin:?}"
    );
    trail.close().await?;
    assert!(sequences(&dir.path().join("logs")).into_iter().eq(1..=15));
    Ok(())
}

#[tokio::test]
async fn plugins_only_the_verified_highest_head_wins_and_a_fork_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    std::fs::remove_dir_all(dir.path().join("logs"))?;
    let forged = forge(&lines[9], Forge::Fork)?;
    let cfg = config(
        dir.path(),
        false,
        &[
            ("a", format!("{{ last_line = {} }}", toml_line(&lines[9]))),
            ("b", claiming(&lines[9], "fork")),
            ("c", claiming(&lines[9], "garbage")),
            ("d", format!("{{ last_line = {} }}", toml_line(&lines[4]))),
        ],
    );
    let trail = AuditTrail::from_config_file(&cfg)?;
    let stats = trail.statistics();
    let state = |i: usize| stats.per_backend[i].state.as_str().to_owned();
    assert_eq!(
        (state(0), state(1), state(2), state(3)),
        ("ok".into(), "fatal".into(), "fatal".into(), "ok".into()),
        "{stats:?}"
    );
    let fork = stats.per_backend[1].last_error.clone().unwrap_or_default();
    for e in [
        "its store holds a different line at sequence 10 than the store of backend `a`",
        &checksum(&forged),
        &checksum(&lines[9]),
    ] {
        assert!(fork.contains(e), "`{e}` missing from: {fork}");
    }
    let garbage = stats.per_backend[2].last_error.clone().unwrap_or_default();
    assert!(garbage.contains("does not verify"), "{garbage}");
    log_n(&trail, 1).await?;
    assert_eq!(
        trail.statistics().last_sequence,
        11,
        "continues after `a`'s line"
    );
    trail.close().await?;
    Ok(())
}

#[tokio::test]
async fn plugins_only_with_no_head_that_verifies_does_not_start_at_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let lines = ten_events(dir.path()).await?;
    std::fs::remove_dir_all(dir.path().join("logs"))?;
    let cfg = config(dir.path(), false, &[("a", claiming(&lines[9], "garbage"))]);
    let err = AuditTrail::from_config_file(&cfg).err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    for e in [
        "no backend's last line verifies with this trail's integrity settings",
        "backend `a`: its store ends with sequence 10",
    ] {
        assert!(msg.contains(e), "`{e}` missing from: {msg}");
    }
    Ok(())
}
