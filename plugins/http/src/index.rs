//! Elasticsearch index name patterns: `index = "audit-%Y.%m"` checked at configuration and
//! expanded per event (its UTC date) or for a search (`*`).

/// Characters an Elasticsearch index name may not hold.
const BAD_INDEX_CHARS: &[char] = &['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',', '#', ':'];

/// Checks `index`: a lowercase name with only `%Y`, `%m`, `%d` (and `%%`) as patterns.
///
/// # Errors
/// What is wrong with it, for a configuration error naming the `index` key.
pub(crate) fn check_index_pattern(index: &str) -> Result<(), String> {
    let mut it = index.chars();
    while let Some(c) = it.next() {
        if c == '%' && !matches!(it.next(), Some('Y' | 'm' | 'd' | '%')) {
            return Err(format!(
                "{index:?}: only %Y, %m and %d (the event's UTC date) may be used"
            ));
        }
    }
    let name = expand(index, Some("2000-01-01"));
    if name.is_empty()
        || name.starts_with(['-', '_', '+'])
        || name.contains(BAD_INDEX_CHARS)
        || name.chars().any(|c| c.is_uppercase())
    {
        return Err(format!(
            "{index:?}: an Elasticsearch index name: lowercase, not starting with - _ +, without spaces or \\ / * ? \" < > | , # :"
        ));
    }
    Ok(())
}

/// `pattern` with `%Y`, `%m`, `%d` taken from `timestamp` (RFC 3339, `YYYY-MM-DDT...`) or,
/// when `timestamp` is `None`, replaced by `*` (the indices to search).
pub(crate) fn expand(pattern: &str, timestamp: Option<&str>) -> String {
    let part = |from: usize, to: usize| {
        timestamp
            .and_then(|t| t.get(from..to))
            .unwrap_or("*")
            .to_owned()
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match (c, c == '%') {
            (_, true) => match it.next() {
                Some('Y') => out.push_str(&part(0, 4)),
                Some('m') => out.push_str(&part(5, 7)),
                Some('d') => out.push_str(&part(8, 10)),
                _ => out.push('%'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn index_patterns() {
        assert_eq!(
            expand("audit-%Y.%m", Some("2026-12-03T11:00:00Z")),
            "audit-2026.12"
        );
        assert_eq!(
            expand("a-%Y-%m-%d%%", Some("2026-12-03T11:00:00Z")),
            "a-2026-12-03%"
        );
        assert_eq!(expand("audit-%Y.%m", None), "audit-*.*");
        assert!(check_index_pattern("audit-%Y.%m").is_ok());
        assert!(check_index_pattern("Audit").is_err());
        assert!(check_index_pattern("a-%H").is_err());
        assert!(check_index_pattern("a b").is_err());
    }
}
