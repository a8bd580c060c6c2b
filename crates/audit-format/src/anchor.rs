//! The chain anchor: where a directory's chain starts when it does not start at sequence 1
//! (older files removed by retention, or a backend added to a running trail).

use std::io::{self, BufRead, Read, Write};
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fs::{open_private, open_read, sync_dir};
use crate::record::{ChainFields, Integrity};

/// The anchor's file in an audit directory.
pub const ANCHOR_FILE: &str = ".audit-anchor.json";

/// `{"mac":"` – how an authenticated anchor starts.
const MAC_PREFIX: &[u8] = b"{\"mac\":\"";

/// The link the first line of a directory's chain carries: its sequence number and the
/// `previous_hash` it must have, and what retention removed before it. Stored in
/// [`ANCHOR_FILE`] as canonical JSON (keys sorted), led by a `mac` member under an HMAC key:
/// `{"mac":…,"previous_hash":…,"removed":{…},"sequence_number":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The checksum of the event before it (`None`: it has none).
    pub previous_hash: Option<String>,
    /// What retention removed to start the chain here (`None`: an anchor an older version
    /// wrote, or a backend added to a running trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Removed>,
    /// The first sequence number in the directory.
    pub sequence_number: u64,
}

/// The events retention removed from a directory, up to an anchor: every removal since the
/// first authenticated anchor, carried forward from anchor to anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// The first sequence number removed.
    pub first_sequence: u64,
    /// The last sequence number removed (the anchor's `sequence_number` minus one).
    pub last_sequence: u64,
    /// The newest date of a removed file.
    #[serde(with = "date")]
    pub newest_date: NaiveDate,
    /// The oldest date of a removed file.
    #[serde(with = "date")]
    pub oldest_date: NaiveDate,
    /// The day (UTC) of the latest removal.
    #[serde(with = "date")]
    pub removed_on: NaiveDate,
    /// The `retention_days` the latest removal applied.
    pub retention_days: u32,
}

/// Whether a stored anchor is authenticated by the key verification uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorAuth {
    /// Plain SHA-256: there is no key, so no anchor is authenticated.
    Unkeyed,
    /// Its `mac` checks out under the key.
    Authentic,
    /// It has no `mac` (written by an older version, by the file plugin, or by hand).
    Missing,
    /// Its `mac` does not check out: altered, forged, or written under another key.
    Mismatch,
}

impl Anchor {
    /// The anchor of `dir`, if it has one (its `mac`, if any, not checked).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Integrity`] when it is not an
    /// anchor.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        Ok(Self::read_checked(dir, &Integrity::Sha256)?.map(|(a, _)| a))
    }

    /// The anchor of `dir`, if it has one, and whether `integrity`'s key authenticates it.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn read_checked(dir: &Path, integrity: &Integrity) -> Result<Option<(Self, AnchorAuth)>> {
        let anchor_path = dir.join(ANCHOR_FILE);
        let mut bytes = Vec::new();
        match open_read(&anchor_path).and_then(|mut f| f.read_to_end(&mut bytes)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read", &anchor_path)(e)),
        };
        let anchor: Self = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Integrity(format!(
                "{}: unreadable retention anchor: {e}",
                anchor_path.display()
            ))
        })?;
        let auth = if matches!(integrity, Integrity::Sha256) {
            AnchorAuth::Unkeyed
        } else if !bytes.starts_with(MAC_PREFIX) {
            AnchorAuth::Missing
        } else {
            // The MAC covers the anchor's bytes without `"mac":"<64 hex>",`.
            let hex_at = MAC_PREFIX.len();
            let body_at = hex_at + 64 + 2;
            let authentic = bytes.len() > body_at
                && &bytes[hex_at + 64..body_at] == b"\","
                && integrity
                    .anchor_mac(&[b"{", &bytes[body_at..]].concat())
                    .is_some_and(|mac| mac[..] == bytes[hex_at..hex_at + 64]);
            if authentic {
                AnchorAuth::Authentic
            } else {
                AnchorAuth::Mismatch
            }
        };
        Ok(Some((anchor, auth)))
    }

    /// Writes the anchor into `dir`, atomically (a temporary file renamed over it) and
    /// durably; under an HMAC key led by its `mac`.
    ///
    /// # Errors
    /// The `io::Error` of writing, renaming or syncing.
    pub fn write(&self, dir: &Path, integrity: &Integrity) -> io::Result<()> {
        let body = serde_json::to_vec(self).map_err(io::Error::other)?;
        let anchor = match integrity.anchor_mac(&body) {
            Some(mac) => [MAC_PREFIX, &mac, b"\",", &body[1..]].concat(),
            None => body,
        };
        let tmp = dir.join(".audit-anchor.tmp");
        {
            let mut f = open_private(&tmp, false)?;
            f.set_len(0)?;
            f.write_all(&anchor)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(ANCHOR_FILE))?;
        sync_dir(dir)
    }

    /// The link the first line of the file at `path` carries (`None` if it cannot be read).
    pub(crate) fn at_first_line(path: &Path) -> Option<Self> {
        // The whole first line, however long.
        let mut buf = Vec::new();
        io::BufReader::new(open_read(path).ok()?)
            .read_until(b'\n', &mut buf)
            .ok()?;
        let line = buf.strip_suffix(b"\n")?;
        let fields: ChainFields<'_> = serde_json::from_slice(line).ok()?;
        Some(Self {
            sequence_number: fields.sequence_number,
            previous_hash: fields.previous_hash.map(|h| h.into_owned()),
            removed: None,
        })
    }
}

/// Dates as `YYYY-MM-DD` (chrono is built without its serde feature).
mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&d.format("%Y-%m-%d"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).expect("date")
    }

    #[test]
    fn the_anchor_file_has_sorted_keys_and_reads_back() -> Result<()> {
        let dir = tempfile::tempdir().map_err(Error::io("cannot create", "tempdir"))?;
        assert_eq!(Anchor::read(dir.path())?, None);
        let removed = Removed {
            first_sequence: 1,
            last_sequence: 6,
            newest_date: date(2),
            oldest_date: date(1),
            removed_on: date(5),
            retention_days: 2,
        };
        for (anchor, bytes) in [
            (
                Anchor {
                    sequence_number: 5,
                    previous_hash: None,
                    removed: None,
                },
                r#"{"previous_hash":null,"sequence_number":5}"#.to_owned(),
            ),
            (
                Anchor {
                    sequence_number: 7,
                    previous_hash: Some("a".repeat(64)),
                    removed: Some(removed),
                },
                format!(
                    r#"{{"previous_hash":"{}","removed":{{"first_sequence":1,"last_sequence":6,"newest_date":"2026-03-02","oldest_date":"2026-03-01","removed_on":"2026-03-05","retention_days":2}},"sequence_number":7}}"#,
                    "a".repeat(64)
                ),
            ),
        ] {
            anchor
                .write(dir.path(), &Integrity::Sha256)
                .map_err(Error::io("cannot write", dir.path()))?;
            let stored = std::fs::read_to_string(dir.path().join(ANCHOR_FILE))
                .map_err(Error::io("cannot read", dir.path()))?;
            assert_eq!(stored, bytes);
            assert_eq!(Anchor::read(dir.path())?, Some(anchor.clone()));

            // Under a key: led by a MAC over exactly those bytes, read back the same.
            let key = Integrity::hmac(&[3u8; 32]).map_err(Error::backend)?;
            anchor
                .write(dir.path(), &key)
                .map_err(Error::io("cannot write", dir.path()))?;
            let stored = std::fs::read_to_string(dir.path().join(ANCHOR_FILE))
                .map_err(Error::io("cannot read", dir.path()))?;
            let mac = key.anchor_mac(bytes.as_bytes()).expect("keyed");
            let mac = std::str::from_utf8(&mac).expect("hex");
            assert_eq!(stored, format!(r#"{{"mac":"{mac}",{}"#, &bytes[1..]));
            let checked = Anchor::read_checked(dir.path(), &key)?;
            assert_eq!(checked, Some((anchor.clone(), AnchorAuth::Authentic)));
            let other = Integrity::hmac(&[4u8; 32]).map_err(Error::backend)?;
            let checked = Anchor::read_checked(dir.path(), &other)?;
            assert_eq!(checked, Some((anchor.clone(), AnchorAuth::Mismatch)));
            assert_eq!(Anchor::read(dir.path())?, Some(anchor.clone()));

            // The old form, under a key: read, but not authenticated.
            std::fs::write(dir.path().join(ANCHOR_FILE), &bytes)
                .map_err(Error::io("cannot write", dir.path()))?;
            let checked = Anchor::read_checked(dir.path(), &key)?;
            assert_eq!(checked, Some((anchor, AnchorAuth::Missing)));
        }
        Ok(())
    }
}
