//! Lines of a file from last to first, in bounded memory: the file is read backwards in
//! blocks, so memory holds one block and the longest line, whatever the file's size.

use std::io::{self, Read, Seek, SeekFrom};

/// Bytes read per step.
const BLOCK: usize = 64 * 1024;

/// Calls `f` with each line of `file` (without its `\n`, and without a `\r` before it), last
/// line first, as `str::lines` splits them (no empty line after a final newline). Stops
/// early when `f` returns `false`.
///
/// # Errors
/// Reading or seeking fails.
pub fn for_each_line_rev<R: Read + Seek>(
    mut file: R,
    mut f: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    let mut pos = file.seek(SeekFrom::End(0))?;
    // The bytes after the last newline found so far that belong to a line whose start has
    // not been read yet.
    let mut tail: Vec<u8> = Vec::new();
    let mut at_end = true;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    loop {
        if pos == 0 {
            // The first line of the file (an empty file has none).
            if !tail.is_empty() || !at_end {
                let _ = f(strip_cr(&tail));
            }
            return Ok(());
        }
        let n = usize::try_from(pos).map_or(BLOCK, |p| p.min(BLOCK));
        pos -= n as u64;
        file.seek(SeekFrom::Start(pos))?;
        buf.clear();
        buf.resize(n, 0);
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&tail);
        // Every segment after a newline in `buf` is a whole line: what follows `buf` starts
        // at a line boundary (or is the end of the file).
        let mut end = buf.len();
        while let Some(nl) = memchr::memrchr(b'\n', &buf[..end]) {
            let line = &buf[nl + 1..end];
            // The end of the file after a final newline is no line (as `str::lines`).
            let skip = at_end && end == buf.len() && line.is_empty();
            at_end = false;
            if !skip && !f(strip_cr(line)) {
                return Ok(());
            }
            end = nl;
        }
        tail.clear();
        tail.extend_from_slice(&buf[..end]);
        if !tail.is_empty() {
            at_end = false;
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod test {
    use super::*;

    fn rev(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for_each_line_rev(io::Cursor::new(text.as_bytes()), |l| {
            out.push(String::from_utf8_lossy(l).into_owned());
            true
        })
        .expect("in memory");
        out
    }

    fn expected(text: &str) -> Vec<String> {
        text.lines().rev().map(str::to_owned).collect()
    }

    #[test]
    fn matches_str_lines_reversed() {
        for text in [
            "",
            "\n",
            "a",
            "a\n",
            "a\nb",
            "a\nb\n",
            "\n\na\n\n",
            "a\r\nb\r\n",
            "x\n\ny",
        ] {
            assert_eq!(rev(text), expected(text), "{text:?}");
        }
    }

    #[test]
    fn lines_across_block_boundaries_arrive_whole() {
        // Lines of every length around the block size, so boundaries fall everywhere.
        let text: String = (0..40)
            .map(|i| format!("{}{i}\n", "é".repeat(i * 997 % (BLOCK / 2) + i)))
            .collect::<String>()
            + &"z".repeat(3 * BLOCK + 7);
        assert_eq!(rev(&text), expected(&text));
    }

    #[test]
    fn stops_when_told() {
        let mut seen = Vec::new();
        for_each_line_rev(io::Cursor::new(b"a\nb\nc\n"), |l| {
            seen.push(l.to_vec());
            seen.len() < 2
        })
        .expect("in memory");
        assert_eq!(seen, vec![b"c".to_vec(), b"b".to_vec()]);
    }
}
