//! Canonical JSON: sorted keys, no insignificant whitespace, non-ASCII escaped as `\uXXXX`.
//!
//! This is byte-for-byte what Python's `json.dumps(obj, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=True)` produces for strings, booleans, integers,
//! `null`, arrays and objects. [`Style::Python`] reproduces `json.dumps(obj, sort_keys=True)`
//! (default separators), which is what the Python audit trail hashed for its checksums.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal (with quotes), escaping everything outside
/// printable ASCII.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping (most of every line).
        if let Some(chunk) = bytes[i..].first_chunk::<8>()
            && !needs_escape(u64::from_le_bytes(*chunk))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        if b >= 0x80 {
            // Handled below, char by char, once a non-ASCII byte is seen.
            out.extend_from_slice(&bytes[start..i]);
            write_non_ascii_tail(out, &s[i..]);
            out.push(b'"');
            return;
        }
        out.extend_from_slice(&bytes[start..i]);
        write_escape(out, u32::from(b));
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes of `w` must be escaped: below 0x20, `"`, `\`, or 0x7f and
/// above (the classic word-at-a-time tests for a zero byte and for a byte below a bound,
/// exact as to whether one exists).
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space
        || w & HIGH != 0
        || has_zero(w ^ (ONES * u64::from(b'"')))
        || has_zero(w ^ (ONES * u64::from(b'\\')))
        || has_zero(w ^ (ONES * 0x7f))
}

fn write_non_ascii_tail(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        let cp = u32::from(c);
        if (0x20..0x7f).contains(&cp) && c != '"' && c != '\\' {
            out.push(cp as u8);
        } else {
            write_escape(out, cp);
        }
    }
}

fn write_escape(out: &mut Vec<u8>, cp: u32) {
    match cp {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5c => out.extend_from_slice(b"\\\\"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0d => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x10000.. => {
            let v = cp - 0x10000;
            write_u16_escape(out, 0xd800 | (v >> 10));
            write_u16_escape(out, 0xdc00 | (v & 0x3ff));
        }
        _ => write_u16_escape(out, cp),
    }
}

fn write_u16_escape(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[((unit >> shift) & 0xf) as usize]);
    }
}

/// Separators and number formatting of a JSON dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `,` and `:`: the canonical line.
    Compact,
    /// `, ` and `: ` with Python's float `repr`: `json.dumps(obj, sort_keys=True)`, which the
    /// Python trail hashed.
    Python,
}

/// Appends a JSON value in canonical form (object keys sorted by code point).
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    write_value_styled(out, v, Style::Compact);
}

/// Appends a JSON value with sorted keys in the given style.
pub(crate) fn write_value_styled(out: &mut Vec<u8>, v: &Value, style: Style) {
    let (item_sep, key_sep): (&[u8], &[u8]) = match style {
        Style::Compact => (b",", b":"),
        Style::Python => (b", ", b": "),
    };
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) if style == Style::Python && n.is_f64() => {
            out.extend_from_slice(python_float_repr(&n.to_string()).as_bytes());
        }
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(item_sep);
                }
                write_value_styled(out, item, style);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // `serde_json::Map` is a `BTreeMap` (built without `preserve_order`), so
            // iteration is already sorted by key.
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(item_sep);
                }
                write_str(out, k);
                out.extend_from_slice(key_sep);
                write_value_styled(out, v, style);
            }
            out.push(b'}');
        }
    }
}

/// Python writes exponents with a sign and at least two digits (`1e+20`, `1e-07`).
fn python_float_repr(s: &str) -> String {
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp.trim_start_matches('+')),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s.to_owned(),
    }
}

/// Appends a JSON object in canonical form.
pub(crate) fn write_object(out: &mut Vec<u8>, map: &serde_json::Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_value(out, v);
    }
    out.push(b'}');
}

/// Appends an unsigned integer in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends a signed integer in decimal.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

fn push_digits(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = n;
    for slot in buf[..width].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.ffffffZ"` (RFC 3339, UTC, microseconds), with quotes.
pub(crate) fn write_timestamp(out: &mut Vec<u8>, ts: &DateTime<Utc>) {
    out.push(b'"');
    let year = ts.year();
    if (0..=9999).contains(&year) {
        push_digits(out, year as u32, 4);
    } else {
        // Outside RFC 3339's range; keep it readable rather than fail.
        out.extend_from_slice(format!("{year:+}").as_bytes());
    }
    out.push(b'-');
    push_digits(out, ts.month(), 2);
    out.push(b'-');
    push_digits(out, ts.day(), 2);
    out.push(b'T');
    push_digits(out, ts.hour(), 2);
    out.push(b':');
    push_digits(out, ts.minute(), 2);
    out.push(b':');
    // A leap second is stored by chrono as nanosecond >= 1e9; keep it in the seconds field.
    let nanos = ts.nanosecond();
    let (sec, nanos) = if nanos >= 1_000_000_000 {
        (60, nanos - 1_000_000_000)
    } else {
        (ts.second(), nanos)
    };
    push_digits(out, sec, 2);
    out.push(b'.');
    push_digits(out, nanos / 1000, 6);
    out.extend_from_slice(b"Z\"");
}

/// Lowercase hex of `bytes` into `out` (which must be twice as long).
pub(crate) fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use chrono::TimeZone;

    fn byte_needs_escape(b: u8) -> bool {
        !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\'
    }

    #[test]
    fn the_word_test_agrees_with_the_byte_rule() {
        // Every byte value at every position, among harmless bytes...
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut word = [b'a'; 8];
                word[pos] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    byte_needs_escape(b),
                    "byte {b:#04x} at {pos}"
                );
            }
        }
        // ...and pseudo-random words, where one byte's borrow could hide or fake another.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // Mostly printable bytes, so that words without a special byte occur too.
            let word = x
                .to_le_bytes()
                .map(|b| if b & 0x60 == 0 { b } else { 0x20 + b % 0x60 });
            assert_eq!(
                needs_escape(u64::from_le_bytes(word)),
                word.iter().any(|&b| byte_needs_escape(b)),
                "{word:?}"
            );
        }
    }

    #[test]
    fn strings_escape_the_same_with_or_without_the_word_test() {
        let specials = [
            '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '€', '😀', ' ', '~',
        ];
        for len in 0..20 {
            for pos in 0..len.max(1) {
                for &c in &specials {
                    let text: String = (0..len)
                        .map(|i| {
                            if i == pos {
                                c
                            } else {
                                (b'a' + (i % 26) as u8) as char
                            }
                        })
                        .collect();
                    let mut fast = Vec::new();
                    write_str(&mut fast, &text);
                    let mut slow = vec![b'"'];
                    write_non_ascii_tail(&mut slow, &text);
                    slow.push(b'"');
                    assert_eq!(fast, slow, "{text:?}");
                }
            }
        }
    }

    fn s(v: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, v);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn strings_match_python_ensure_ascii() {
        assert_eq!(s("plain"), r#""plain""#);
        assert_eq!(s("q\"b\\"), r#""q\"b\\""#);
        assert_eq!(s("a\nb\tc\r\u{8}\u{c}"), r#""a\nb\tc\r\b\f""#);
        assert_eq!(s("\u{1}\u{1f}\u{7f}"), r#""\u0001\u001f\u007f""#);
        assert_eq!(s("café"), r#""caf\u00e9""#);
        assert_eq!(s("日本"), r#""\u65e5\u672c""#);
        assert_eq!(s("😀x\"é"), r#""\ud83d\ude00x\"\u00e9""#);
        assert_eq!(s("/"), r#""/""#);
    }

    #[test]
    fn objects_sorted_and_compact() {
        let v: Value = serde_json::from_str(r#"{"b": [1, 2.5, null], "a": {"z": true, "é": "x"}}"#)
            .expect("json");
        let mut out = Vec::new();
        write_value(&mut out, &v);
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            r#"{"a":{"z":true,"\u00e9":"x"},"b":[1,2.5,null]}"#
        );
    }

    #[test]
    fn timestamps_have_microseconds_and_z() {
        let ts = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("valid")
            + chrono::Duration::nanoseconds(123_456_789);
        let mut out = Vec::new();
        write_timestamp(&mut out, &ts);
        assert_eq!(out, b"\"2026-01-02T03:04:05.123456Z\"");
    }

    #[test]
    fn python_style_matches_json_dumps_defaults() {
        let v: Value =
            serde_json::from_str(r#"{"b": [1, 1e20, 1e-7, 0.25], "a": {"k": "é"}}"#).expect("json");
        let mut out = Vec::new();
        write_value_styled(&mut out, &v, Style::Python);
        // python3 -c 'import json; print(json.dumps({"b": [1, 1e20, 1e-7, 0.25], "a": {"k": "é"}}, sort_keys=True))'
        assert_eq!(
            String::from_utf8(out).expect("ascii"),
            r#"{"a": {"k": "\u00e9"}, "b": [1, 1e+20, 1e-07, 0.25]}"#
        );
    }

    #[test]
    fn integers() {
        let mut out = Vec::new();
        write_u64(&mut out, 0);
        out.push(b' ');
        write_u64(&mut out, u64::MAX);
        out.push(b' ');
        write_i64(&mut out, i64::MIN);
        assert_eq!(out, b"0 18446744073709551615 -9223372036854775808");
    }
}
