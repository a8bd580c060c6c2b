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
