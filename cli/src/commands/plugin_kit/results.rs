//! The checks' outcomes, printed one line per check as they come, and counted.

use std::io::{self, Write};

/// One check's outcome.
enum Outcome {
    Ok(Option<String>),
    Fail(String),
    Skip(String),
}

/// The checks' outcomes, printed as they come.
#[derive(Default)]
pub(super) struct Results {
    pub(super) passed: u32,
    pub(super) failed: u32,
    pub(super) skipped: u32,
}

impl Results {
    fn print(&mut self, name: &str, outcome: Outcome) {
        let line = match outcome {
            Outcome::Ok(None) => {
                self.passed += 1;
                format!("ok   {name}")
            }
            Outcome::Ok(Some(note)) => {
                self.passed += 1;
                format!("ok   {name}: {note}")
            }
            Outcome::Fail(why) => {
                self.failed += 1;
                format!("FAIL {name}: {why}")
            }
            Outcome::Skip(why) => {
                self.skipped += 1;
                format!("skip {name}: {why}")
            }
        };
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }

    pub(super) fn ok(&mut self, name: &str) {
        self.print(name, Outcome::Ok(None));
    }

    pub(super) fn note(&mut self, name: &str, note: impl Into<String>) {
        self.print(name, Outcome::Ok(Some(note.into())));
    }

    pub(super) fn fail(&mut self, name: &str, why: impl Into<String>) {
        self.print(name, Outcome::Fail(why.into()));
    }

    pub(super) fn skip(&mut self, name: &str, why: impl Into<String>) {
        self.print(name, Outcome::Skip(why.into()));
    }

    /// Marks the checks that could not run because `after` failed.
    pub(super) fn skip_rest(&mut self, names: &[&str], after: &str) {
        for name in names {
            self.skip(name, format!("not run: `{after}` failed"));
        }
    }
}
