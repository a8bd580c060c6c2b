//! Splitting a batch's encoded items into request bodies of at most `max_batch_bytes`.

use std::ops::Range;

/// Consecutive ranges of `items` whose byte total stays within `max` (an item larger than
/// `max` goes alone).
pub(crate) fn chunks(items: &[Vec<u8>], max: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if i > start && size + item.len() > max {
            out.push(start..i);
            (start, size) = (i, 0);
        }
        size += item.len();
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn splits_at_the_limit_and_keeps_large_items_whole() {
        let items: Vec<Vec<u8>> = [4, 4, 4, 10, 1].iter().map(|&n| vec![0; n]).collect();
        assert_eq!(chunks(&items, 8), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(chunks(&items, 100), vec![0..5]);
        assert!(chunks(&[], 8).is_empty());
    }
}
