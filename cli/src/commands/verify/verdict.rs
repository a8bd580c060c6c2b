//! What `audit verify` found, collected before anything is printed, then rendered either as
//! text (`ok:`/`FAILED:` lines on stdout, warnings and errors on stderr) or as one JSON
//! object on stdout (`--json`; its keys are documented in docs/operations.md).

use std::io::Write as _;
use std::process::ExitCode;

use audit_format::seal::SealCheck;
use audit_host::verify::{VerifyError, VerifyReport};
use serde_json::{Value, json};

use super::super::exit::{EXIT_FAILED, exit_code_for, verify_exit_code};
use super::super::{full_message, report};

/// What a failure is about, for `failure.kind`.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// A sequence that does not check out (`sequence` and its place are given).
    Chain,
    /// An entry that is not a regular file, or a chain anchor that does not hold.
    Directory,
    /// `--retention-days`: the anchor records a removal under a shorter retention.
    Retention,
    /// `--require-events` / `--min-sequence` not met.
    Expectation,
    /// A seal that does not hold (`--public-key`).
    Seal,
    /// The check could not be made: usage, missing input, I/O, configuration.
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Chain => "chain",
            Self::Directory => "directory",
            Self::Retention => "retention",
            Self::Expectation => "expectation",
            Self::Seal => "seal",
            Self::Error => "error",
        }
    }
}

/// One failure: what `FAILED: MESSAGE` (or `audit verify: MESSAGE`) says, in parts.
struct Failure {
    kind: Kind,
    sequence: Option<u64>,
    file: Option<String>,
    line: Option<u64>,
    reason: String,
    message: String,
}

/// One piece of the text output, in the order it is printed on its stream.
enum Text {
    Out(String),
    Err(String),
    /// An error printed by [`report`] (with `--verbose`, its long details too).
    Report(audit_host::Error),
}

/// The verdict: the exit code is the first failure's (0 without one).
#[derive(Default)]
pub(super) struct Verdict {
    code: u8,
    text: Vec<Text>,
    store: Option<String>,
    report: Option<VerifyReport>,
    warnings: Vec<String>,
    failures: Vec<Failure>,
    seals: Option<Value>,
}

impl Verdict {
    fn failed(&mut self, code: u8, failure: Failure) {
        if self.code == 0 {
            self.code = code;
        }
        self.failures.push(failure);
    }

    /// What the chain check covered, in `store` (a directory, or a backend's entry).
    pub(super) fn checked(&mut self, report: &VerifyReport, store: &str) {
        self.report = Some(report.clone());
        self.store = Some(store.to_owned());
    }

    /// Names the store when the check did not get as far as [`Self::checked`].
    pub(super) fn store(&mut self, store: &str) {
        self.store.get_or_insert_with(|| store.to_owned());
    }

    /// `warning: W` on stderr.
    pub(super) fn warn(&mut self, w: &str) {
        self.text.push(Text::Err(format!("warning: {w}")));
        self.warnings.push(w.to_owned());
    }

    /// `hint: H` on stderr; in JSON, a warning beginning with `hint: `.
    pub(super) fn hint(&mut self, h: &str) {
        self.text.push(Text::Err(format!("hint: {h}")));
        self.warnings.push(format!("hint: {h}"));
    }

    /// The `ok: ...` line on stdout.
    pub(super) fn ok(&mut self, line: String) {
        self.text.push(Text::Out(line));
    }

    /// `FAILED: MESSAGE` on stdout (exit 1).
    pub(super) fn fail(&mut self, kind: Kind, file: Option<String>, reason: &str, message: String) {
        self.text.push(Text::Out(format!("FAILED: {message}")));
        let failure = Failure {
            kind,
            sequence: None,
            file,
            line: None,
            reason: reason.to_owned(),
            message,
        };
        self.failed(EXIT_FAILED, failure);
    }

    /// A broken chain (`FAILED: ...`, exit 1), or a chain that could not be checked
    /// (`audit verify: ...`, its error's exit code).
    pub(super) fn broken(&mut self, e: &VerifyError) {
        let failure = match e {
            VerifyError::Broken {
                sequence,
                file,
                line,
                reason,
            } => Failure {
                kind: Kind::Chain,
                sequence: Some(*sequence),
                file: Some(file.display().to_string()),
                line: Some(*line),
                reason: reason.clone(),
                message: e.to_string(),
            },
            VerifyError::BrokenRecord {
                sequence,
                position,
                reason,
                ..
            } => Failure {
                kind: Kind::Chain,
                sequence: Some(*sequence),
                file: None,
                line: Some(*position),
                reason: reason.clone(),
                message: e.to_string(),
            },
            VerifyError::Directory { path, reason } => Failure {
                kind: Kind::Directory,
                sequence: None,
                file: Some(path.display().to_string()),
                line: None,
                reason: reason.clone(),
                message: e.to_string(),
            },
            VerifyError::Io(inner) => return self.io_error(inner),
            _ => return self.error(verify_exit_code(e), e.to_string()),
        };
        self.text
            .push(Text::Out(format!("FAILED: {}", failure.message)));
        self.failed(EXIT_FAILED, failure);
    }

    /// `audit verify: MESSAGE` on stderr: the check could not be made (exit `code`, unless an
    /// earlier failure set it).
    pub(super) fn error(&mut self, code: u8, message: String) {
        self.push_error(code, Text::Err(format!("audit verify: {message}")), message);
    }

    /// `audit verify: ERROR` on stderr for an error of the format or the host (its exit code);
    /// in JSON with the sources its text leaves out.
    pub(super) fn io_error(&mut self, e: &audit_host::Error) {
        let text = Text::Err(format!("audit verify: {e}"));
        self.push_error(exit_code_for(e), text, full_message(e));
    }

    /// An error from the host, printed as every command prints one (exit `code`).
    pub(super) fn host_error(&mut self, code: u8, e: audit_host::Error) {
        let message = full_message(&e);
        self.push_error(code, Text::Report(e), message);
    }

    fn push_error(&mut self, code: u8, text: Text, message: String) {
        self.text.push(text);
        let failure = Failure {
            kind: Kind::Error,
            sequence: None,
            file: None,
            line: None,
            reason: message.clone(),
            message,
        };
        self.failed(code, failure);
    }

    /// What the seal check found (`--public-key`): the `seals` key of the JSON object.
    pub(super) fn seals(&mut self, check: &SealCheck) {
        self.seals = Some(json!({
            "verified": check.seals,
            "last_sealed": check.last_sealed,
            "unsealed": check.unsealed,
        }));
    }

    /// A negative verdict without a message of its own (exit 1).
    pub(super) fn negative(&mut self) {
        if self.code == 0 {
            self.code = EXIT_FAILED;
        }
    }

    /// Prints the verdict as text, or as one JSON object; its exit code.
    pub(super) fn finish(self, json: bool, verbose: bool) -> ExitCode {
        let code = self.code;
        if json {
            let mut line = self.to_json().to_string();
            line.push('\n');
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                eprintln!("audit verify: cannot write output: {e}");
            }
        } else {
            for t in self.text {
                match t {
                    Text::Out(s) => println!("{s}"),
                    Text::Err(s) => eprintln!("{s}"),
                    Text::Report(e) => report("audit verify", &e, verbose),
                }
            }
        }
        ExitCode::from(code)
    }

    fn to_json(&self) -> Value {
        let failures: Vec<Value> = self.failures.iter().map(failure_json).collect();
        let r = self.report.as_ref();
        let mut v = json!({
            "ok": self.code == 0,
            "exit_code": self.code,
            "store": self.store,
            "events": r.map(|r| r.events),
            "files": r.map(|r| r.files),
            "first_sequence": r.and_then(|r| r.first_sequence),
            "last_sequence": r.and_then(|r| r.last_sequence),
            "warnings": self.warnings,
            "failure": failures.first().cloned().unwrap_or(Value::Null),
            "failures": failures,
        });
        if let Some(seals) = &self.seals {
            v["seals"] = seals.clone();
        }
        v
    }
}

fn failure_json(f: &Failure) -> Value {
    json!({
        "kind": f.kind.name(),
        "sequence": f.sequence,
        "file": f.file,
        "line": f.line,
        "reason": f.reason,
        "message": f.message,
    })
}
