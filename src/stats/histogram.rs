//! Latency histograms: fixed power-of-two buckets in microseconds, one copy
//! per worker (single writer, like [`Counter`]), summed by the stats thread.
//! Fixed memory, no allocation when recording; p50 / p99 / p999 are derived
//! from the buckets (Prometheus `histogram_quantile`).

use super::Counter;

/// Bucket upper bounds are 2^0 .. 2^(BUCKETS-1) µs (1 µs .. ~33.5 s), plus +Inf.
pub const BUCKETS: usize = 26;

/// The upper bound of bucket `i` in microseconds.
pub fn bucket_bound_us(i: usize) -> u64 {
    1u64 << i
}

/// One latency distribution.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// `buckets[i]` counts samples ≤ 2^i µs and > 2^(i-1) µs; the last slot is +Inf.
    buckets: [Counter; BUCKETS + 1],
    /// Sum of all samples in microseconds.
    sum_us: Counter,
}

impl LatencyHistogram {
    /// Records one sample.
    #[inline]
    pub fn record_us(&self, us: u64) {
        // The smallest i with us <= 2^i.
        let i = if us <= 1 {
            0
        } else {
            (64 - (us - 1).leading_zeros()) as usize
        };
        self.buckets[i.min(BUCKETS)].inc();
        self.sum_us.add(us.min(i64::MAX as u64) as i64);
    }

    /// The values now: per-bucket counts (not cumulative) and the sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = [0i64; BUCKETS + 1];
        for (out, b) in buckets.iter_mut().zip(&self.buckets) {
            *out = b.get();
        }
        HistogramSnapshot {
            buckets,
            sum_us: self.sum_us.get(),
        }
    }
}

/// A histogram's values at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Per-bucket counts (not cumulative); the last one is +Inf.
    pub buckets: [i64; BUCKETS + 1],
    pub sum_us: i64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; BUCKETS + 1],
            sum_us: 0,
        }
    }
}

impl HistogramSnapshot {
    /// Adds `other` in.
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.sum_us += other.sum_us;
    }

    /// Number of samples.
    pub fn count(&self) -> i64 {
        self.buckets.iter().sum()
    }

    /// The bucket bound under which `q` (0..1) of the samples fall, in µs.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as i64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want.max(1) {
                return Some(if i < BUCKETS {
                    bucket_bound_us(i)
                } else {
                    u64::MAX
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let h = LatencyHistogram::default();
        for us in [0, 1, 2, 3, 4, 5, 100, 1000, 1000, u64::MAX] {
            h.record_us(us);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 10);
        assert_eq!(s.buckets[0], 2); // 0 and 1
        assert_eq!(s.buckets[1], 1); // 2
        assert_eq!(s.buckets[2], 2); // 3, 4
        assert_eq!(s.buckets[3], 1); // 5
        assert_eq!(s.buckets[7], 1); // 100 <= 128
        assert_eq!(s.buckets[10], 2); // 1000 <= 1024
        assert_eq!(s.buckets[BUCKETS], 1);
        assert_eq!(s.quantile_us(0.5), Some(4));
        assert_eq!(s.quantile_us(0.9), Some(1024));
    }
}
