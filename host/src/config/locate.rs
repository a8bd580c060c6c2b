//! Where a key stands in the TOML text, for errors that name its line (best effort).

/// The 1-based line of byte `offset`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The table a `[table]` or `[[table]]` header line names.
fn table_header(line: &str) -> Option<String> {
    let h = line.strip_prefix('[')?;
    Some(
        h.trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
    )
}

/// The line on which `key = ...` appears inside `[table]` (best effort).
pub(super) fn line_of_key(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = table_header(line) {
            current = name;
            continue;
        }
        if current == table
            && let Some(rest) = line.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

/// The line of `key` (dotted below the entry: `retry_max_ms`, `config.url`) inside the
/// `[[backends]]` entry whose header is on line `entry` (1-based): in the entry itself or
/// in its `[backends.X]` sub-tables; for a key inside an inline table, the line of the
/// table's key. `None` when it is not written there (best effort).
pub(super) fn line_of_entry_key(text: &str, entry: usize, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let first = key.split('.').next().unwrap_or(key);
    let mut current = String::new();
    let mut fallback = None;
    for (i, raw) in text.lines().enumerate().skip(entry) {
        let line = raw.trim();
        if line.starts_with("[[") {
            break;
        }
        if let Some(name) = table_header(line) {
            match name.strip_prefix("backends.") {
                Some(sub) => current = sub.to_owned(),
                None => break,
            }
            continue;
        }
        let here = |k: &str| {
            line.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with('='))
        };
        if current == table && here(leaf) {
            return Some(i + 1);
        }
        if current.is_empty() && fallback.is_none() && here(first) {
            fallback = Some(i + 1);
        }
    }
    fallback
}

/// The 1-based column of byte `offset` (counted in characters).
pub(super) fn column_of(text: &str, offset: usize) -> usize {
    let before = &text[..offset.min(text.len())];
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    before[start..].chars().count() + 1
}

/// The line holding byte range `span` with carets under it, as rustc and toml print it:
///
/// ```text
///   |
/// 3 | durability = "fast"
///   |              ^^^^^^
/// ```
pub(super) fn snippet(text: &str, span: std::ops::Range<usize>) -> String {
    let line = line_of(text, span.start);
    let column = column_of(text, span.start);
    let source = text.lines().nth(line - 1).unwrap_or("");
    let width = text
        .get(span.clone())
        .map_or(1, |s| s.lines().next().unwrap_or("").chars().count().max(1));
    let gutter = " ".repeat(line.to_string().len());
    format!(
        "{gutter} |\n{line} | {source}\n{gutter} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    )
}

/// The dotted key at `line` (1-based): the table header above it plus the key on it.
pub(super) fn key_at_line(text: &str, line: usize) -> String {
    let mut table = String::new();
    for raw in text.lines().take(line.saturating_sub(1)) {
        let l = raw.trim();
        if let Some(name) = table_header(l) {
            table = name;
        }
    }
    let here = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or("")
        .trim();
    let key = here.split('=').next().unwrap_or("").trim();
    // A header line names its own table (`[trail.polcy]` is about `trail.polcy`).
    if let Some(name) = table_header(here).filter(|n| !n.is_empty()) {
        return name;
    }
    if here.starts_with('[') || key.is_empty() {
        if table.is_empty() {
            "(top level)".to_owned()
        } else {
            table
        }
    } else if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// `message` with a suggestion when it is serde's "unknown field `X`, expected one of `a`,
/// `b`, ..." and one of the expected names is a likely misspelling of `X`.
pub(super) fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once("`, expected one of ") else {
        return message.to_owned();
    };
    let best = expected
        .split(", ")
        .map(|c| c.trim_matches('`'))
        .map(|c| (edit_distance(unknown, c), c))
        .min();
    match best {
        Some((d, c)) if d > 0 && d <= 2.max(unknown.len() / 4) => {
            format!("{message}; did you mean `{c}`?")
        }
        _ => message.to_owned(),
    }
}

/// Levenshtein distance between `a` and `b` (by characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_misspelt_key_gets_the_closest_name() {
        let m = "unknown field `storge_path`, expected one of `storage_path`, `plugin_dir`";
        assert_eq!(
            with_suggestion(m),
            format!("{m}; did you mean `storage_path`?")
        );
        let far = "unknown field `colour`, expected one of `storage_path`, `plugin_dir`";
        assert_eq!(with_suggestion(far), far);
        assert_eq!(
            with_suggestion("invalid basic string"),
            "invalid basic string"
        );
        assert_eq!(edit_distance("polcy", "policy"), 1);
    }

    #[test]
    fn entry_keys_are_found_on_their_own_line() {
        let text = "[trail]\nx = 1\n\n[[backends]]\ntype = \"plugin\"\nretry_max_ms = 5\nconfig = { url = \"u\" }\n[backends.config]\npath = \"p\"\n[[backends]]\nretry_max_ms = 6\n";
        assert_eq!(line_of_entry_key(text, 4, "retry_max_ms"), Some(6));
        assert_eq!(line_of_entry_key(text, 4, "config.path"), Some(9));
        assert_eq!(line_of_entry_key(text, 4, "config.url"), Some(7));
        assert_eq!(line_of_entry_key(text, 4, "library"), None);
        assert_eq!(line_of_entry_key(text, 10, "retry_max_ms"), Some(11));
    }

    #[test]
    fn a_snippet_points_at_the_span() {
        let text = "[trail]\ndurability = \"fast\"\n";
        let at = text.find("\"fast").unwrap_or(0);
        assert_eq!(column_of(text, at), 14);
        assert_eq!(
            snippet(text, at..at + 6),
            "  |\n2 | durability = \"fast\"\n  |              ^^^^^^"
        );
    }

    #[test]
    fn a_header_line_is_its_own_table() {
        let text = "[trail]\nstorage_path = \"x\"\n[trail.polcy]\nlevel = \"sox\"\n";
        assert_eq!(key_at_line(text, 3), "trail.polcy");
        assert_eq!(key_at_line(text, 2), "trail.storage_path");
        assert_eq!(key_at_line(text, 4), "trail.polcy.level");
    }
}
