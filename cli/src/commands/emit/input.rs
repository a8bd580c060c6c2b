//! Reading `audit emit`'s input one line at a time, never holding more than
//! `--max-event-bytes` of a line: a longer line is refused without reading the rest of it.

use std::io::{self, BufRead};

/// The default `--max-event-bytes`: 1 MiB.
pub(super) const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// What [`LineReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line {
    /// The end of the input.
    End,
    /// A line (without its `\n`) is in the buffer.
    Read,
    /// The line is longer than the limit; its first `limit + 1` bytes were read, the rest is
    /// left unread.
    TooLong,
}

/// Reads lines of at most `limit` bytes (the `\n` not counted) from `input`.
pub(super) struct LineReader<R> {
    input: R,
    limit: usize,
}

impl<R: BufRead> LineReader<R> {
    pub(super) fn new(input: R, limit: usize) -> Self {
        Self { input, limit }
    }

    /// Reads the next line into `buf` (cleared first).
    ///
    /// # Errors
    /// The `io::Error` of reading.
    pub(super) fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Line> {
        buf.clear();
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(if buf.is_empty() {
                    Line::End
                } else {
                    Line::Read
                });
            }
            let newline = memchr_newline(chunk);
            let take = newline.unwrap_or(chunk.len());
            // Keep at most limit + 1 bytes: enough to know the line is too long.
            let room = (self.limit + 1).saturating_sub(buf.len());
            if take > room {
                buf.extend_from_slice(&chunk[..room]);
                self.input.consume(room);
                return Ok(Line::TooLong);
            }
            buf.extend_from_slice(&chunk[..take]);
            match newline {
                Some(at) => {
                    self.input.consume(at + 1);
                    return Ok(if buf.len() > self.limit {
                        Line::TooLong
                    } else {
                        Line::Read
                    });
                }
                None => {
                    let n = chunk.len();
                    self.input.consume(n);
                }
            }
        }
    }
}

impl<R: BufRead> LineReader<R> {
    /// After [`Line::TooLong`]: reads past the rest of that line, without keeping it.
    ///
    /// # Errors
    /// The `io::Error` of reading.
    pub(super) fn skip_rest(&mut self) -> io::Result<()> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            match memchr_newline(chunk) {
                Some(at) => {
                    self.input.consume(at + 1);
                    return Ok(());
                }
                None => {
                    let n = chunk.len();
                    self.input.consume(n);
                }
            }
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod test {
    use super::*;

    fn lines(input: &[u8], limit: usize, cap: usize) -> Vec<(Line, Vec<u8>)> {
        let mut r = LineReader::new(io::BufReader::with_capacity(cap, input), limit);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let line = r.next(&mut buf).expect("read");
            let stop = line != Line::Read;
            out.push((line, buf));
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn lines_up_to_the_limit_are_read_whole_across_buffer_refills() {
        for cap in [1, 2, 3, 8, 64] {
            let got = lines(b"abcd\n\nxy\nlast", 4, cap);
            assert_eq!(
                got,
                [
                    (Line::Read, b"abcd".to_vec()),
                    (Line::Read, b"".to_vec()),
                    (Line::Read, b"xy".to_vec()),
                    (Line::Read, b"last".to_vec()),
                    (Line::End, b"".to_vec()),
                ],
                "buffer {cap}"
            );
        }
    }

    #[test]
    fn a_longer_line_stops_after_limit_plus_one_bytes() {
        for cap in [1, 3, 64] {
            let got = lines(b"ok\nabcdefgh\nnext\n", 4, cap);
            assert_eq!(
                got,
                [
                    (Line::Read, b"ok".to_vec()),
                    (Line::TooLong, b"abcde".to_vec()),
                ],
                "buffer {cap}"
            );
        }
        // Exactly limit + 1 bytes before the newline is too long too.
        assert_eq!(lines(b"abcde\n", 4, 64)[0].0, Line::TooLong);
    }

    #[test]
    fn skip_rest_goes_on_at_the_next_line() {
        for cap in [1, 3, 64] {
            let mut r = LineReader::new(
                io::BufReader::with_capacity(cap, &b"abcdefgh\nnext\n"[..]),
                4,
            );
            let mut buf = Vec::new();
            assert_eq!(r.next(&mut buf).expect("read"), Line::TooLong);
            r.skip_rest().expect("skip");
            assert_eq!(r.next(&mut buf).expect("read"), Line::Read);
            assert_eq!(buf, b"next", "buffer {cap}");
        }
    }
}
