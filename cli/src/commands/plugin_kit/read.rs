//! The kit's `read` check: `read_from` returns what was written, in order, byte for byte,
//! page by page, and nothing more (no duplicate from a re-delivery, no forked line).

use audit_host::plugin::PluginBackend;

use super::head::describe;
use super::results::Results;

/// Lines per `read_from` call: small, so that the kit's 300 records take several pages.
const PAGE: u32 = 128;

/// Reads the store back from the sequence number of `expected[0]` and compares.
pub(super) async fn check_read(
    backend: &PluginBackend,
    expected: &[String],
    verbose: bool,
    r: &mut Results,
) {
    let Some(first) = expected.first().and_then(|l| sequence_of(l)) else {
        r.skip("read", "nothing was written to read back");
        return;
    };
    let mut got: Vec<String> = Vec::new();
    let mut pages = 0;
    // A store that returns more than was written is cut off one page after.
    while got.len() <= expected.len() {
        let from = got
            .last()
            .and_then(|l| sequence_of(l))
            .map_or(first, |s| s + 1);
        match backend.read_from(from, PAGE).await {
            Ok(None) => {
                r.note(
                    "read",
                    "the plugin does not export `read` (its store cannot be read back: `audit verify --config FILE --backend NAME` refuses it, and duplicates cannot be counted)",
                );
                return;
            }
            Ok(Some(page)) if page.is_empty() => break,
            Ok(Some(page)) if page.len() > PAGE as usize => {
                r.fail(
                    "read",
                    format!("read_from({from}, {PAGE}) returned {} lines", page.len()),
                );
                return;
            }
            Ok(Some(page)) => {
                pages += 1;
                got.extend(page);
            }
            Err(e) => {
                r.fail(
                    "read",
                    format!(
                        "read_from({from}, {PAGE}) failed: {e}",
                        e = audit_format::error::chain(&e)
                    ),
                );
                return;
            }
        }
    }
    if got == expected {
        r.note(
            "read",
            format!(
                "read_from returned the {} lines written, in order, byte for byte, in {pages} pages of at most {PAGE}",
                expected.len()
            ),
        );
        return;
    }
    let at = got
        .iter()
        .zip(expected)
        .position(|(g, w)| g != w)
        .unwrap_or_else(|| got.len().min(expected.len()));
    let show = |line: &str| {
        if verbose {
            format!("{} `{line}`", describe(line))
        } else {
            describe(line)
        }
    };
    let why = match (got.get(at), expected.get(at)) {
        (Some(g), Some(w)) => format!(
            "line {} read back is {}, expected {}",
            at + 1,
            show(g),
            show(w)
        ),
        (None, Some(w)) => format!(
            "read back {} lines, {} were written: the first missing is {}",
            got.len(),
            expected.len(),
            show(w)
        ),
        (Some(g), None) => format!(
            "read back more than the {} lines written: line {} is {}",
            expected.len(),
            at + 1,
            show(g)
        ),
        (None, None) => "the lines differ".to_owned(),
    };
    let hint = if verbose {
        ""
    } else {
        " (--verbose shows the lines)"
    };
    r.fail("read", format!("{why}{hint}"));
}

fn sequence_of(line: &str) -> Option<u64> {
    serde_json::from_str::<audit_format::record::ChainFields<'_>>(line)
        .ok()
        .map(|f| f.sequence_number)
}
