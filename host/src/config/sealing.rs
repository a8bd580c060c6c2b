//! `[trail.integrity] signing_key_file` and `seal_interval_ms`: signed seals of the file
//! backends' directories (see `docs/file-format.md`, "Seals").

use std::path::PathBuf;

use toml::Spanned;

use super::keys::read_signing_key_file;
use super::locate::line_of;
use crate::sealing::DEFAULT_SEAL_INTERVAL_MS;

/// A configuration error: the line, the key and the message.
type Problem = (Option<usize>, &'static str, String);

/// The key file (resolved and read once, so a bad key fails here) and the interval.
/// `signing_key_file` is the resolved path and its line.
pub(super) fn parse(
    signing_key_file: Option<(Option<usize>, PathBuf)>,
    seal_interval_ms: Option<Spanned<u64>>,
    text: &str,
) -> Result<(Option<PathBuf>, u64), Problem> {
    let interval = match seal_interval_ms {
        Some(v) if *v.get_ref() == 0 => {
            return Err((
                Some(line_of(text, v.span().start)),
                "trail.integrity.seal_interval_ms",
                "must be at least 1 (milliseconds)".into(),
            ));
        }
        Some(v) => v.into_inner(),
        None => DEFAULT_SEAL_INTERVAL_MS,
    };
    let key = match signing_key_file {
        None => None,
        Some((line, path)) => {
            read_signing_key_file(&path)
                .map_err(|m| (line, "trail.integrity.signing_key_file", m))?;
            Some(path)
        }
    };
    Ok((key, interval))
}
