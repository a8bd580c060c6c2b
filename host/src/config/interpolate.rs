//! `${NAME}` and `${file:PATH}` in string values: secrets and per-host settings come from the
//! environment or a file instead of the TOML text (docs/configuration.md, "Interpolation").
//! Expanded after parsing, so a substituted value never changes the TOML structure.

use std::path::Path;

use audit_plugin_api::secrets::read_secret_file;

/// `value` with every `${NAME}` replaced by environment variable NAME, every `${file:PATH}`
/// by that file's contents (one trailing newline removed; PATH relative to `base`), and
/// `$${` by a literal `${`. `key` names the setting in messages.
///
/// # Errors
/// What is wrong and how to fix it: an unset, empty or non-UTF-8 variable, a file
/// [`read_secret_file`] refuses, an unterminated or malformed reference.
pub(super) fn expand(value: &str, key: &str, base: &Path) -> Result<String, String> {
    if !value.contains('$') {
        return Ok(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(
                    "`${` without a closing `}`; write `${NAME}` or `${file:PATH}`, or `$${` for a literal `${`"
                        .to_owned(),
                );
            };
            out.push_str(&resolve(&after[..end], key, base)?);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The text one `${...}` reference stands for.
fn resolve(reference: &str, key: &str, base: &Path) -> Result<String, String> {
    if let Some(path) = reference.strip_prefix("file:") {
        if path.is_empty() {
            return Err("`${file:}` names no file; write `${file:PATH}`".to_owned());
        }
        let path = base.join(path);
        return read_secret_file(key, &path).map_err(|e| e.message.to_string());
    }
    let valid = reference
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && reference
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`${{{reference}}}` is neither an environment variable name (letters, digits, `_`) nor `file:PATH`; write `$${{` for a literal `${{`"
        ));
    }
    match std::env::var(reference) {
        Ok(v) if v.is_empty() => Err(format!(
            "environment variable {reference} (from `${{{reference}}}`) is set but empty; set it to the value"
        )),
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err(format!(
            "environment variable {reference} (from `${{{reference}}}`) is not set; set it in the service's environment, or write `$${{` for a literal `${{`"
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable {reference} (from `${{{reference}}}`) is not UTF-8"
        )),
    }
}

/// Expands every string in `table`, nested tables and arrays included. The error names the
/// dotted path of the value below `table` (`config.password`).
pub(super) fn expand_table(table: &mut toml::Table, base: &Path) -> Result<(), (String, String)> {
    for (k, v) in table.iter_mut() {
        expand_value(v, k, base)?;
    }
    Ok(())
}

fn expand_value(value: &mut toml::Value, path: &str, base: &Path) -> Result<(), (String, String)> {
    match value {
        toml::Value::String(s) => {
            *s = expand(s, path, base).map_err(|m| (path.to_owned(), m))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), base)?;
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand_value(v, &format!("{path}.{k}"), base)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn text_without_references_is_unchanged() {
        let base = Path::new("/");
        assert_eq!(
            expand("plain $ text", "k", base).as_deref(),
            Ok("plain $ text")
        );
        assert_eq!(expand("a$$b", "k", base).as_deref(), Ok("a$$b"));
    }

    #[test]
    fn environment_references_and_escapes() {
        let base = Path::new("/");
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            expand("x${PATH}y", "k", base).as_deref(),
            Ok(format!("x{path}y").as_str())
        );
        assert_eq!(expand("$${PATH}", "k", base).as_deref(), Ok("${PATH}"));
        let unset = expand("${AUDIT_TEST_SURELY_UNSET_VARIABLE}", "k", base);
        assert!(unset.is_err_and(|m| m.contains("is not set")));
        let open = expand("${PATH", "k", base);
        assert!(open.is_err_and(|m| m.contains("without a closing")));
        let bad = expand("${not a name}", "k", base);
        assert!(bad.is_err_and(|m| m.contains("neither an environment variable")));
    }
}
