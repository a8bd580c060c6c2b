//! Splitting a batch's encoded items into request bodies of at most `max_batch_bytes`.

use std::ops::Range;

/// Consecutive ranges of items, given their encoded `sizes`, whose byte total stays within
/// `max` (an item larger than `max` goes alone).
pub(crate) fn chunks(sizes: &[usize], max: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, &len) in sizes.iter().enumerate() {
        if i > start && size + len > max {
            out.push(start..i);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn splits_at_the_limit_and_keeps_large_items_whole() {
        let sizes = [4, 4, 4, 10, 1];
        assert_eq!(chunks(&sizes, 8), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(chunks(&sizes, 100), vec![0..5]);
        assert!(chunks(&[], 8).is_empty());
    }
}
