//! `log_event` latencies, recorded per producer and merged.

/// A log-linear latency histogram: 32 sub-buckets per power of two (about 3% precision).
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Self {
            counts: vec![0; 64 * 32],
            total: 0,
        }
    }

    fn index(nanos: u64) -> usize {
        if nanos < 32 {
            return nanos as usize;
        }
        let log = 63 - u64::from(nanos.leading_zeros());
        let sub = (nanos >> (log - 5)) & 31;
        ((log - 4) * 32 + sub) as usize
    }

    fn lower_bound(index: usize) -> u64 {
        if index < 32 {
            return index as u64;
        }
        let log = (index / 32) as u64 + 4;
        let sub = (index % 32) as u64;
        (32 + sub) << (log - 5)
    }

    pub(crate) fn record(&mut self, nanos: u64) {
        let i = Self::index(nanos).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    pub(crate) fn percentile_us(&self, p: f64) -> f64 {
        let rank = ((self.total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(i) as f64 / 1000.0;
            }
        }
        0.0
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000); // 1 µs .. 100 ms
        }
        let p50 = h.percentile_us(0.5);
        let p99 = h.percentile_us(0.99);
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.04, "{p50}");
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.04, "{p99}");
        assert!(Histogram::lower_bound(Histogram::index(12_345)) <= 12_345);
    }
}
