//! C plugins (plugin-api/include/audit_backend.h): the header compiles alone as C99 and
//! C++11, the example in examples/c-backend builds with its Makefile and stores exactly the
//! built-in file backend's lines, and libraries built from small C fixtures here (a future ABI
//! major, malformed tables, bad strings) are refused or fail with a clear message, not a
//! crash. Every library is compiled into a temporary directory by `cc` and loaded at runtime.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use audit_host::plugin::{LoadOptions, LoadedPlugin, PluginAbi};
use audit_host::{AuditEventType, AuditTrail, StorageBackend};
use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

fn include_dir() -> PathBuf {
    repo().join("plugin-api/include")
}

/// Runs `cmd`; panics with its output when it fails.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The example plugin, built with its own Makefile into `dir`.
fn build_example(dir: &Path) -> PathBuf {
    run(Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(repo().join("examples/c-backend"))
        .arg(format!("BUILD_DIR={}", dir.display())));
    dir.join("libaudit_backend_c_example.so")
}

/// A shared library compiled from `source` (C99, warnings as errors) into `dir`.
fn build_fixture(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write the fixture");
    let lib = dir.join(format!("lib{name}.so"));
    run(Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror"])
        .args(["-shared", "-fPIC", "-fvisibility=hidden"])
        .arg("-I")
        .arg(include_dir())
        .arg("-o")
        .arg(&lib)
        .arg(&src));
    lib
}

fn load(lib: &Path) -> Result<LoadedPlugin, audit_host::Error> {
    LoadedPlugin::load(lib, &LoadOptions::default())
}

fn load_error(lib: &Path) -> String {
    match load(lib) {
        Ok(_) => panic!("{} loaded", lib.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_header_compiles_alone_as_c99_and_as_cpp11() -> TestResult {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("only_the_header.c");
    std::fs::write(&src, "#include \"audit_backend.h\"\n")?;
    run(Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(&src));
    let cpp = dir.path().join("only_the_header.cpp");
    std::fs::write(&cpp, "#include \"audit_backend.h\"\n")?;
    run(Command::new("c++")
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-pedantic",
            "-Werror",
            "-fsyntax-only",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(&cpp));
    Ok(())
}

/// A C++ plugin: the table and entry compile as C++11, with exceptions caught at the
/// boundary, and the library loads.
#[test]
fn a_cpp11_plugin_builds_and_loads() -> TestResult {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("cpp_plugin.cpp");
    std::fs::write(&src, CPP_PLUGIN)?;
    let lib = dir.path().join("libcpp_plugin.so");
    run(Command::new("c++")
        .args(["-std=c++11", "-Wall", "-Wextra", "-pedantic", "-Werror"])
        .args(["-shared", "-fPIC", "-fvisibility=hidden"])
        .arg("-I")
        .arg(include_dir())
        .arg("-o")
        .arg(&lib)
        .arg(&src));
    let plugin = load(&lib)?;
    assert_eq!(plugin.info().name, "cpp-fixture");
    let err = plugin
        .open("cpp", "{}")
        .expect_err("open throws, caught at the boundary");
    assert!(
        err.to_string()
            .contains("plugin `cpp-fixture` failed to open: caught std::runtime_error: no store"),
        "{err}"
    );
    Ok(())
}

#[test]
fn inspect_reports_name_version_and_c_abi() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = load(&build_example(dir.path()))?;
    let info = plugin.info();
    assert_eq!(info.name, "c-example");
    assert_eq!(info.version, "0.1.0");
    assert_eq!(info.plugin_api, "C ABI 1.0");
    assert_eq!(info.abi, PluginAbi::C);
    assert_eq!(
        info.capabilities,
        ["health/1", "validate/1", "read/1", "stats/1"]
    );
    assert!(info.config_help.contains("path"), "{}", info.config_help);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_events_through_file_and_c_backends_are_byte_identical() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = load(&build_example(dir.path()))?;
    let (builtin, store) = (dir.path().join("builtin"), dir.path().join("c-store.jsonl"));
    let config = serde_json::json!({ "path": store }).to_string();
    assert!(matches!(plugin.validate(&config), Some(Ok(()))));
    let trail = AuditTrail::builder()
        .file_backend(&builtin, 64 << 20)
        .backend(Box::new(plugin.open("c", &config)?))
        .build()?;
    for i in 0..3_000 {
        trail
            .log_event(
                AuditEventType::DataModification,
                format!("change {i} \u{e9}"),
            )
            .user_id("bob")
            .meta("i", i)
            .await?;
        if i % 700 == 0 {
            trail.flush().await?;
        }
    }
    trail.close().await?;
    let file_lines = all_lines(&builtin);
    assert_eq!(file_lines.len(), 3_000);
    let expected: String = file_lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(std::fs::read_to_string(&store)?, expected, "byte for byte");
    assert_eq!(verify(&builtin).events, 3_000);

    // Reopened, it continues the chain from its last line and reads the store back.
    let backend = plugin.open("c", &config)?;
    let head = backend.resume().await?.expect("a head");
    assert_eq!(head.sequence_number, 3_000);
    assert_eq!(Some(&head.line), file_lines.last());
    let page = backend.read_from(2_999, 10).await?.expect("read/1");
    assert_eq!(page, file_lines[2_998..].to_vec());
    let health = backend.health().await?.expect("health/1");
    assert!(health.contains("last sequence 3000"), "{health}");
    let counters = backend.statistics().await?;
    assert_eq!(
        counters,
        [
            ("last_sequence".to_owned(), 3_000),
            ("lines_appended".to_owned(), 0),
            ("lines_skipped".to_owned(), 0),
        ]
    );
    backend.close().await?;
    Ok(())
}

#[test]
fn the_c_example_rejects_an_unknown_key_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let plugin = load(&build_example(dir.path()))?;
    let verdict = plugin.validate(r#"{"path":"x","fsync":"yes"}"#);
    let Some(Err(e)) = verdict else {
        panic!("validate accepted an unknown key")
    };
    assert!(
        e.to_string()
            .contains("plugin `c-example` rejected its config: unknown key `fsync`"),
        "{e}"
    );
    let err = plugin.open("c", "{}").expect_err("path is required");
    assert!(err.to_string().contains("`path` is required"), "{err}");
    Ok(())
}

#[test]
fn a_plugin_built_for_a_future_abi_major_is_refused_in_one_line_naming_both() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = format!(
        "#include \"audit_backend.h\"\n#undef AUDIT_BACKEND_ABI_MAJOR\n#define AUDIT_BACKEND_ABI_MAJOR 2\n{MINIMAL}"
    );
    let message = load_error(&build_fixture(dir.path(), "future", &source));
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("built against the C plugin ABI 2.0")
            && message.contains("this host speaks C ABI 1.0"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_table_smaller_than_abi_1_0_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = format!("#include \"audit_backend.h\"\n#define AUDIT_FIXTURE_SIZE 8\n{MINIMAL}");
    let message = load_error(&build_fixture(dir.path(), "small", &source));
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("a malformed C plugin function table: it reports a size of 8 bytes")
            && message.contains("needs at least"),
        "{message}"
    );
    Ok(())
}

/// A plugin built with a later 1.x header (a bigger table, minor 3) loads: the host copies
/// only the members it knows and reads nothing past them.
#[test]
fn a_table_from_a_later_minor_with_more_members_loads() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = format!(
        "#include \"audit_backend.h\"\n#undef AUDIT_BACKEND_ABI_MINOR\n#define AUDIT_BACKEND_ABI_MINOR 3\n{}",
        MINIMAL
            .replace(
                "static const audit_backend table = {",
                "static const struct { audit_backend v1_0; void (*later)(void); } grown = { {"
            )
            .replace(
                "AUDIT_FIXTURE_SIZE, AUDIT_BACKEND_ABI_VERSION,",
                "(uint32_t)sizeof(grown), AUDIT_BACKEND_ABI_VERSION,"
            )
            .replace(
                "#endif\n};\nAUDIT_BACKEND_DEFINE_ENTRY(table)",
                "#endif\n}, NULL };\n#define table grown.v1_0\nAUDIT_BACKEND_DEFINE_ENTRY(table)"
            )
    );
    let plugin = load(&build_fixture(dir.path(), "later", &source))?;
    assert_eq!(plugin.info().plugin_api, "C ABI 1.3");
    assert_eq!(plugin.info().name, "fixture");
    Ok(())
}

#[test]
fn a_null_required_function_is_refused_naming_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source =
        format!("#include \"audit_backend.h\"\n#define AUDIT_FIXTURE_NO_WRITE 1\n{MINIMAL}");
    let message = load_error(&build_fixture(dir.path(), "nowrite", &source));
    assert!(
        message.contains(
            "a malformed C plugin function table: its required function `write_batch` is NULL"
        ),
        "{message}"
    );
    Ok(())
}

#[test]
fn an_entry_that_returns_null_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = "#include \"audit_backend.h\"\nAUDIT_BACKEND_EXTERN_C AUDIT_BACKEND_EXPORT const audit_backend *audit_backend_c_entry(uint32_t h, uint32_t *p);\nconst audit_backend *audit_backend_c_entry(uint32_t h, uint32_t *p) { (void)h; (void)p; return NULL; }\n";
    let message = load_error(&build_fixture(dir.path(), "null", source));
    assert!(
        message.contains("returned no function table for this host's C ABI 1.0")
            && message.contains("reported no ABI version"),
        "{message}"
    );
    Ok(())
}

#[test]
fn a_name_that_is_not_utf8_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = format!(
        "#include \"audit_backend.h\"\n#define AUDIT_FIXTURE_NAME {{ \"bad\\xff\", 4 }}\n{MINIMAL}"
    );
    let message = load_error(&build_fixture(dir.path(), "badname", &source));
    assert!(message.contains("its `name` is not UTF-8"), "{message}");
    Ok(())
}

/// The fixture's calls misbehave at run time: each becomes an error for the host, not a
/// crash: a non-UTF-8 last line, an unknown status, two health strings, a counter name that
/// is not UTF-8; and its refusals come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_strings_and_statuses_from_calls_are_errors() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source =
        format!("#include \"audit_backend.h\"\n#define AUDIT_FIXTURE_MISBEHAVE 1\n{MINIMAL}");
    let plugin = load(&build_fixture(dir.path(), "misbehave", &source))?;
    assert_eq!(
        plugin.info().capabilities,
        ["health/1", "stats/1", "refuse/1"]
    );
    let backend = plugin.open("bad", "{}")?;
    let err = backend
        .resume()
        .await
        .expect_err("a last line that is not UTF-8");
    assert!(
        err.to_string()
            .contains("`last_line` handed back a string that is not UTF-8"),
        "{err}"
    );
    let err = backend.flush().await.expect_err("status 42");
    assert!(
        err.to_string()
            .contains("`flush` returned the unknown status 42: disk on fire"),
        "{err}"
    );
    let err = backend.health().await.expect_err("two strings");
    assert!(err.to_string().contains("put 2 strings"), "{err}");
    let err = backend
        .statistics()
        .await
        .expect_err("a counter name not UTF-8");
    assert!(
        err.to_string()
            .contains("`statistics` handed back a counter name that is not UTF-8"),
        "{err}"
    );
    let batch = audit_host::Batch::new(records(3));
    let refused = backend.write_batch_refusing(&batch).await?;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].sequence_number, 2);
    assert_eq!(refused[0].reason, "even sequence numbers are refused");
    backend.close().await?;
    Ok(())
}

/// A C plugin's call that does not answer within `call_timeout_ms` fails as retryable, like
/// a Rust plugin's: the same plugin thread and timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_c_call_times_out() -> TestResult {
    let dir = tempfile::tempdir()?;
    let source = format!(
        "#define _POSIX_C_SOURCE 200809L\n#include \"audit_backend.h\"\n#define AUDIT_FIXTURE_SLOW 1\n{MINIMAL}"
    );
    let plugin = load(&build_fixture(dir.path(), "slow", &source))?;
    let backend = plugin
        .open("slow", "{}")?
        .with_call_timeout(std::time::Duration::from_millis(200));
    let err = backend.flush().await.expect_err("flush sleeps 2 s");
    assert!(
        matches!(
            &err,
            audit_host::Error::PluginCall {
                kind: audit_host::CallErrorKind::Retryable,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("no answer within call_timeout_ms (200 ms)"),
        "{err}"
    );
    Ok(())
}

/// A C plugin that is down (retryable errors) for the middle third of 3,000 events gets
/// every event once it is back, through its lane's retries and spool, and stores the file
/// backend's lines byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_down_for_a_while_gets_every_event_through_its_lane() -> TestResult {
    const N: u64 = 3_000;
    let dir = tempfile::tempdir()?;
    let lib = build_fixture(dir.path(), "flaky", FLAKY);
    let (flag, store) = (dir.path().join("down"), dir.path().join("flaky.jsonl"));
    let cfg = dir.path().join("audit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {:?}\nretry_initial_ms = 10\nretry_max_ms = 50\nconfig = {{ down = {:?}, path = {:?} }}\n",
            lib.display().to_string(),
            flag.display().to_string(),
            store.display().to_string()
        ),
    )?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..N {
        if i == N / 3 {
            std::fs::write(&flag, "down")?;
        }
        if i == 2 * N / 3 {
            trail.flush().await?;
            wait_until(std::time::Duration::from_secs(30), "a retry", || {
                trail.statistics().per_backend[1].retried > 0
            })
            .await;
            std::fs::remove_file(&flag)?;
        }
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i}"))
            .await?;
    }
    wait_until(
        std::time::Duration::from_secs(60),
        "the C plugin to catch up",
        || trail.statistics().per_backend[1].delivered_sequence == N,
    )
    .await;
    trail.close().await?;
    let expected: String = all_lines(&dir.path().join("logs"))
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(expected.lines().count() as u64, N);
    assert_eq!(std::fs::read_to_string(&store)?, expected);
    Ok(())
}

/// A C plugin whose `open` fails with a retryable error (its store down at start) does not
/// stop the trail: its events wait in its spool and are delivered once it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_down_at_start_is_opened_later_and_gets_every_event() -> TestResult {
    const N: u64 = 500;
    let dir = tempfile::tempdir()?;
    let lib = build_fixture(dir.path(), "flaky", FLAKY);
    let (flag, store) = (dir.path().join("down"), dir.path().join("flaky.jsonl"));
    std::fs::write(&flag, "down")?;
    let cfg = dir.path().join("audit.toml");
    std::fs::write(
        &cfg,
        format!(
            "[trail]\nstorage_path = \"logs\"\n\n[[backends]]\ntype = \"file\"\n\n[[backends]]\ntype = \"plugin\"\nlibrary = {:?}\nretry_initial_ms = 10\nretry_max_ms = 50\nconfig = {{ down = {:?}, path = {:?} }}\n",
            lib.display().to_string(),
            flag.display().to_string(),
            store.display().to_string()
        ),
    )?;
    let trail = AuditTrail::from_config_file(&cfg)?;
    for i in 0..N {
        trail
            .log_event(AuditEventType::DataAccess, format!("event {i}"))
            .await?;
    }
    trail.flush().await?;
    assert_eq!(trail.statistics().per_backend[1].delivered_sequence, 0);
    std::fs::remove_file(&flag)?;
    wait_until(
        std::time::Duration::from_secs(60),
        "the C plugin to open and catch up",
        || trail.statistics().per_backend[1].delivered_sequence == N,
    )
    .await;
    trail.close().await?;
    let expected: String = all_lines(&dir.path().join("logs"))
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(std::fs::read_to_string(&store)?, expected);
    Ok(())
}

/// `n` chained records, as a trail makes them.
fn records(n: u64) -> Vec<audit_host::AuditRecord> {
    let mut encoder = audit_format::LineEncoder::new();
    let mut prev: Option<[u8; 64]> = None;
    (1..=n)
        .map(|seq| {
            let ev = audit_format::AuditEvent::new(AuditEventType::DataAccess, format!("e{seq}"));
            encoder.encode(&ev, &format!("id-{seq}"), "host", 1, ev.compliance_level);
            let (record, hex) = encoder.assemble(
                &ev,
                seq,
                prev.as_ref(),
                chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6),
                &audit_format::Integrity::Sha256,
            );
            prev = Some(hex);
            record
        })
        .collect()
}

/// A minimal C plugin whose table the tests bend with macros defined before it.
const MINIMAL: &str = include_str!("c_fixtures/minimal.c");

/// A C++11 plugin that throws in `open` and catches it at the boundary (rule 6).
const CPP_PLUGIN: &str = include_str!("c_fixtures/throwing.cpp");

/// A C plugin that fails (retryable, also in `open`) while the file `down` exists, and otherwise appends new
/// lines to `path`; config `{"down": "...", "path": "..."}` (no escapes in the paths).
const FLAKY: &str = include_str!("c_fixtures/flaky.c");
