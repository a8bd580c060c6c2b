//! Numbers in an event's JSON text that would not be stored as the same number.
//!
//! Parsed event JSON keeps an integer from -2^63 to 2^64 - 1 exactly and any other number as
//! a 64-bit float, which the line then holds as the shortest decimal that reads back as that
//! float (`1E30` is stored `1e+30`, `1.50` is stored `1.5`). A number whose value that changes
//! (`18446744073709551616`, 2^100, more digits than a float holds, an underflow to 0) is
//! found here so the event can be refused: evidence is never altered silently.

use serde_json::Number;

/// A number of the input that would be stored as a different number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InexactNumber {
    /// The number as written in the input.
    pub written: String,
    /// What the line would hold instead.
    pub stored: String,
}

impl std::fmt::Display for InexactNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "number {} would be stored as {}, a different number: integers are kept exactly \
             from -9223372036854775808 to 18446744073709551615, other numbers as 64-bit floats \
             (about 17 significant digits). Send it as a string (\"{}\") to keep every digit",
            self.written, self.stored, self.written
        )
    }
}

/// The first number in `json` (valid JSON text) whose stored form is a different number.
pub fn find_inexact_number(json: &str) -> Option<InexactNumber> {
    let bytes = json.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(bytes, i + 1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let written = &json[start..i];
                if let Some(inexact) = check(written) {
                    return Some(inexact);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The index after the string whose contents start at `i`.
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

fn check(written: &str) -> Option<InexactNumber> {
    let stored = match written.parse::<Number>() {
        Ok(n) => n.to_string(),
        // Out of the float range: serde_json refused the text already.
        Err(_) => return None,
    };
    (decimal(written) != decimal(&stored)).then(|| InexactNumber {
        written: written.to_owned(),
        stored,
    })
}

/// A JSON number's exact value: (negative, significant digits without leading or trailing
/// zeros, power of ten). Zero has no digits and power 0; its sign is kept (`-0` is `-0.0`).
fn decimal(text: &str) -> (bool, String, i64) {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], parse_exponent(&rest[at + 1..])),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = int.chars().chain(frac.chars()).collect();
    let mut power = exp.saturating_sub(frac.len() as i64);
    let trimmed = digits.trim_start_matches('0');
    let significant = trimmed.trim_end_matches('0');
    if significant.is_empty() {
        return (negative, String::new(), 0);
    }
    power = power.saturating_add((trimmed.len() - significant.len()) as i64);
    (negative, significant.to_owned(), power)
}

/// An exponent's value, saturating (such a number is out of range anyway).
fn parse_exponent(text: &str) -> i64 {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = digits.bytes().fold(0i64, |acc, d| {
        acc.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    if negative { -value } else { value }
}

#[cfg(test)]
mod test {
    use super::*;

    fn stored(written: &str) -> Result<String, String> {
        match find_inexact_number(&format!("{{\"m\":{written}}}")) {
            Some(n) => Err(n.stored),
            None => {
                let v: serde_json::Value =
                    serde_json::from_str(&format!("{{\"m\":{written}}}")).expect("valid JSON");
                let mut out = Vec::new();
                crate::canonical::write_value(&mut out, &v["m"]);
                Ok(String::from_utf8(out).expect("ASCII"))
            }
        }
    }

    #[test]
    fn integers_in_range_are_kept_digit_for_digit() {
        for n in [
            "0",
            "1",
            "-1",
            "18446744073709551615",
            "-9223372036854775808",
            "9007199254740993",
        ] {
            assert_eq!(stored(n).as_deref(), Ok(n), "{n}");
        }
    }

    #[test]
    fn integers_out_of_range_are_refused() {
        assert_eq!(
            stored("18446744073709551616"),
            Err("1.8446744073709552e+19".to_owned())
        );
        assert_eq!(
            stored("1267650600228229401496703205376"),
            Err("1.2676506002282293e+30".to_owned())
        );
        assert_eq!(
            stored("-9223372036854775809"),
            Err("-9.223372036854776e+18".to_owned())
        );
        assert_eq!(
            stored("-1267650600228229401496703205376"),
            Err("-1.2676506002282293e+30".to_owned())
        );
    }

    #[test]
    fn floats_keep_their_value_in_the_shortest_form() {
        for (written, canonical) in [
            ("1.0", "1.0"),
            ("1.50", "1.5"),
            ("0.1", "0.1"),
            ("-0", "-0.0"),
            ("-0.0", "-0.0"),
            ("1e+30", "1e+30"),
            ("1E30", "1e+30"),
            ("1e-7", "1e-7"),
            ("2.5e3", "2500.0"),
            ("1.2676506002282294e30", "1.2676506002282294e+30"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("5e-324", "5e-324"),
            ("1e15", "1000000000000000.0"),
            ("1e16", "1e+16"),
            ("1e-5", "0.00001"),
            ("1e-6", "1e-6"),
        ] {
            assert_eq!(stored(written).as_deref(), Ok(canonical), "{written}");
        }
    }

    #[test]
    fn floats_that_would_lose_digits_are_refused() {
        assert_eq!(
            stored("3.14159265358979323846"),
            Err("3.141592653589793".to_owned())
        );
        assert_eq!(stored("1e-400"), Err("0.0".to_owned()));
        assert_eq!(stored("0.30000000000000000001"), Err("0.3".to_owned()));
    }

    #[test]
    fn numbers_inside_strings_and_nested_values_are_handled() {
        let json = r#"{"a":"18446744073709551616 \" 1e999","b":[1,{"c":-2.5e-3}],"d":1e2}"#;
        assert_eq!(find_inexact_number(json), None);
        let json = r#"{"a":"x\\","b":[1,{"c":123456789012345678901234567890}]}"#;
        assert_eq!(
            find_inexact_number(json).map(|n| n.written),
            Some("123456789012345678901234567890".to_owned())
        );
    }
}
