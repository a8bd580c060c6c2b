//! Python compatibility: what the Python audit trail hashed for a line it stored.

use chrono::DateTime;

/// Rebuilds what the Python trail hashed for a line it stored: the event without `checksum`,
/// keys sorted, `", "`/`": "` separators, non-ASCII escaped, and datetimes as Python's
/// `str(datetime)` (`2025-06-01 12:00:01.250000+00:00`; no fraction when it is zero).
///
/// The top-level `timestamp` is always a datetime. Values inside `error_context` and
/// `metadata` may have been datetimes too (pydantic wrote them as ISO strings), or genuine
/// strings that look like one, so two candidates are returned: without and with those
/// nested strings converted.
pub(super) fn python_payloads(line: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(line).map_err(|e| e.to_string())?;
    map.remove("checksum");
    if let Some(serde_json::Value::String(ts)) = map.get_mut("timestamp") {
        *ts =
            python_str_datetime(ts).ok_or_else(|| format!("timestamp `{ts}` is not a datetime"))?;
    }
    let render = |map: serde_json::Map<String, serde_json::Value>| {
        let mut out = Vec::with_capacity(line.len() + 128);
        crate::canonical::write_value_styled(
            &mut out,
            &serde_json::Value::Object(map),
            crate::canonical::Style::Python,
        );
        out
    };
    let mut nested = map.clone();
    let mut converted = false;
    for key in ["error_context", "metadata"] {
        if let Some(v) = nested.get_mut(key) {
            converted |= convert_nested_datetimes(v);
        }
    }
    let mut out = vec![render(map)];
    if converted {
        out.push(render(nested));
    }
    Ok(out)
}

/// Python's `str(datetime)` for an ISO 8601 string as pydantic writes it, if it is one.
fn python_str_datetime(s: &str) -> Option<String> {
    if s.len() < 19 || s.as_bytes()[10] != b'T' {
        return None;
    }
    let fraction = |micros: u32| if micros == 0 { "" } else { "%.6f" };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let f = fraction(t.timestamp_subsec_micros());
        return Some(t.format(&format!("%Y-%m-%d %H:%M:%S{f}%:z")).to_string());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let f = fraction(naive.and_utc().timestamp_subsec_micros());
    Some(naive.format(&format!("%Y-%m-%d %H:%M:%S{f}")).to_string())
}

fn convert_nested_datetimes(v: &mut serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => match python_str_datetime(s) {
            Some(c) => {
                *s = c;
                true
            }
            None => false,
        },
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, i| convert_nested_datetimes(i) | acc),
        serde_json::Value::Object(m) => m
            .values_mut()
            .fold(false, |acc, i| convert_nested_datetimes(i) | acc),
        _ => false,
    }
}
