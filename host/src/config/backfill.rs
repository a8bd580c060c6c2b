//! The `backfill` key of a plugin `[[backends]]` entry: what an empty store receives of the
//! history a file backend holds.

use crate::Backfill;

/// Reads `backfill = "none" | "all" | SEQUENCE`.
///
/// # Errors
/// What was wrong and which values are allowed.
pub(super) fn parse(value: &toml::Value) -> Result<Backfill, String> {
    match value {
        toml::Value::String(s) if s == "none" => Ok(Backfill::None),
        toml::Value::String(s) if s == "all" => Ok(Backfill::All),
        toml::Value::Integer(n) if *n >= 1 => Ok(Backfill::From(*n as u64)),
        other => Err(format!(
            "`{}` is not a backfill choice; use \"all\" (default: the whole history the file backend holds), \"none\" (only new events) or a sequence number of at least 1 (the history from there)",
            shown(other)
        )),
    }
}

/// A value as it reads in TOML, for the message.
fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.type_str().to_owned(),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parse_accepts_the_three_forms_and_refuses_the_rest() {
        assert_eq!(parse(&"none".into()), Ok(Backfill::None));
        assert_eq!(parse(&"all".into()), Ok(Backfill::All));
        assert_eq!(parse(&toml::Value::Integer(42)), Ok(Backfill::From(42)));
        for bad in [
            toml::Value::Integer(0),
            toml::Value::Integer(-3),
            "everything".into(),
            toml::Value::Boolean(true),
        ] {
            let e = parse(&bad).expect_err("refused");
            assert!(e.contains("\"all\""), "{e}");
        }
    }
}
