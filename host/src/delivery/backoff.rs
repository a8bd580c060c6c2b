//! One back-off for every retry loop: a step that doubles from `initial` up to `max`, and a
//! delay drawn from the step with jitter, so that many trails retrying the same store do not
//! retry in step.

use std::time::Duration;

/// How a delay is drawn from the current step `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jitter {
    /// Exactly `d`. The trail's writer (one per process: nothing to spread).
    None,
    /// Uniform in `[d/2, d)`: spread out, never much sooner than the step. The lane's.
    Equal,
    /// Uniform in `[0, d)`.
    #[cfg_attr(not(test), expect(dead_code, reason = "offered for new retry loops"))]
    Full,
    /// Uniform in `[initial, 3 × the previous delay)`, at most `max`; the delay becomes the
    /// next step ("decorrelated jitter").
    #[cfg_attr(not(test), expect(dead_code, reason = "offered for new retry loops"))]
    Decorrelated,
}

/// Exponential back-off with jitter. After [`reset`](Self::reset) (and at first) the next
/// delay is drawn from `initial`; each further one from twice the step before, up to `max`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
    /// The current step; zero after a reset.
    step: Duration,
    rng: XorShift64,
}

impl Backoff {
    /// A back-off from `initial` up to `max` (raised to `initial` if lower), seeded from the
    /// time and the process id.
    pub(crate) fn new(initial: Duration, max: Duration, jitter: Jitter) -> Self {
        Self {
            initial,
            max: max.max(initial),
            jitter,
            step: Duration::ZERO,
            rng: XorShift64::from_time(),
        }
    }

    /// The same with a fixed seed, for reproducible delays.
    #[cfg(test)]
    #[must_use]
    pub(crate) fn seeded(self, seed: u64) -> Self {
        Self {
            rng: XorShift64::new(seed),
            ..self
        }
    }

    /// Moves to the next step and returns the delay to wait before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        if matches!(self.jitter, Jitter::Decorrelated) {
            let prev = if self.step.is_zero() {
                self.initial
            } else {
                self.step
            };
            let spread = nanos(prev.saturating_mul(3).saturating_sub(self.initial));
            let delay = self.initial + Duration::from_nanos(self.rng.below(spread));
            self.step = delay.min(self.max);
            return self.step;
        }
        self.step = if self.step.is_zero() {
            self.initial
        } else {
            self.step.saturating_mul(2).min(self.max)
        };
        let d = self.step;
        match self.jitter {
            Jitter::None | Jitter::Decorrelated => d,
            Jitter::Equal => {
                let half = d / 2;
                half + Duration::from_nanos(self.rng.below(nanos(half)))
            }
            Jitter::Full => Duration::from_nanos(self.rng.below(nanos(d))),
        }
    }

    /// After a success: the next delay is drawn from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.step = Duration::ZERO;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// xorshift64: cheap, and good enough to spread retry times.
#[derive(Debug, Clone)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        // Zero is xorshift's one fixed point.
        Self(seed | 1)
    }

    fn from_time() -> Self {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::new(t ^ u64::from(std::process::id()).rotate_left(32))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough in `[0, n)`; 0 when `n` is 0.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn delays(b: &mut Backoff, n: usize) -> Vec<Duration> {
        (0..n).map(|_| b.next_delay()).collect()
    }

    #[test]
    fn without_jitter_the_delay_doubles_up_to_max() {
        let mut b = Backoff::new(10 * MS, 70 * MS, Jitter::None).seeded(1);
        let ms: Vec<u128> = delays(&mut b, 6).iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [10, 20, 40, 70, 70, 70]);
    }

    #[test]
    fn a_reset_starts_again_from_initial() {
        for jitter in [
            Jitter::None,
            Jitter::Equal,
            Jitter::Full,
            Jitter::Decorrelated,
        ] {
            let mut b = Backoff::new(100 * MS, 10_000 * MS, jitter).seeded(7);
            let first = b.next_delay();
            delays(&mut b, 10);
            b.reset();
            assert_eq!(b.step, Duration::ZERO, "{jitter:?}");
            let again = b.next_delay();
            assert!(again <= 300 * MS, "{jitter:?}: {again:?} after a reset");
            if jitter == Jitter::None {
                assert_eq!((first, again), (100 * MS, 100 * MS));
            }
        }
    }

    #[test]
    fn equal_jitter_stays_within_half_to_the_whole_step() {
        for seed in 0..200 {
            let mut b = Backoff::new(100 * MS, 1_000 * MS, Jitter::Equal).seeded(seed);
            for (i, d) in delays(&mut b, 6).into_iter().enumerate() {
                let step = (100 * MS * (1 << i)).min(1_000 * MS);
                assert!(
                    d >= step / 2 && d < step,
                    "seed {seed}, attempt {i}: {d:?} of {step:?}"
                );
            }
        }
    }

    #[test]
    fn full_jitter_stays_below_the_step_and_spreads() {
        let mut seen = Vec::new();
        for seed in 0..200 {
            let mut b = Backoff::new(100 * MS, 400 * MS, Jitter::Full).seeded(seed);
            let ds = delays(&mut b, 5);
            for (d, step) in ds.iter().zip([100, 200, 400, 400, 400]) {
                assert!(*d < step * MS, "seed {seed}: {d:?} not below {step} ms");
            }
            seen.push(ds[0]);
        }
        assert!(seen.iter().any(|d| *d < 50 * MS) && seen.iter().any(|d| *d >= 50 * MS));
    }

    #[test]
    fn decorrelated_jitter_stays_between_initial_and_max_and_grows() {
        for seed in 0..200 {
            let mut b = Backoff::new(100 * MS, 2_000 * MS, Jitter::Decorrelated).seeded(seed);
            let ds = delays(&mut b, 30);
            for d in &ds {
                assert!(*d >= 100 * MS && *d <= 2_000 * MS, "seed {seed}: {d:?}");
            }
            assert!(
                ds[0] < 300 * MS,
                "seed {seed}: the first is below 3 x initial"
            );
            assert!(ds.iter().any(|d| *d > 300 * MS), "seed {seed}: it grows");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_delays_and_seeds_differ() {
        let run = |seed| {
            delays(
                &mut Backoff::new(MS, 1_000 * MS, Jitter::Equal).seeded(seed),
                8,
            )
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(1_042));
    }

    #[test]
    fn a_max_below_initial_is_raised_to_it() {
        let mut b = Backoff::new(50 * MS, 10 * MS, Jitter::None);
        assert_eq!(delays(&mut b, 3), [50 * MS; 3]);
    }
}
