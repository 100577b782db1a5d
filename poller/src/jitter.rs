//! Where the randomness in backoff comes from.
//!
//! Backoff delays are spread with a random factor so that sources (and nodes)
//! that failed together do not retry together. The poller never draws that
//! factor itself from a global RNG: it asks a [`JitterSource`] it was given.
//! The daemon passes a [`SplitMix64`] seeded from the OS; tests pass a
//! [`FixedJitter`] and get exact, repeatable times.

/// A random factor in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct JitterSample(f64);

impl JitterSample {
    /// No jitter: the shortest delay the model allows.
    pub const ZERO: Self = Self(0.0);
    /// The longest delay the model allows.
    pub const ONE: Self = Self(1.0);

    /// Clamps `value` into `[0, 1]`; NaN becomes 0.
    pub fn new(value: f64) -> Self {
        if value.is_nan() {
            Self::ZERO
        } else {
            Self(value.clamp(0.0, 1.0))
        }
    }

    /// The factor, in `[0, 1]`.
    pub fn value(self) -> f64 {
        self.0
    }
}

/// Something that hands out jitter samples.
pub trait JitterSource {
    /// The next sample.
    fn sample(&mut self) -> JitterSample;
}

/// A small, fast, seedable generator (Steele, Lea and Flood's SplitMix64).
/// Statistically fine for spreading retries; not for anything secret.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl JitterSource for SplitMix64 {
    fn sample(&mut self) -> JitterSample {
        // 52 random mantissa bits under the exponent of 1.0 give a value in
        // [1, 2); subtracting 1 maps it uniformly onto [0, 1) without casts.
        let bits = 0x3FF0_0000_0000_0000 | (self.next_u64() >> 12);
        JitterSample::new(f64::from_bits(bits) - 1.0)
    }
}

/// The same sample every time: for tests, and for turning jitter off.
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub JitterSample);

impl JitterSource for FixedJitter {
    fn sample(&mut self) -> JitterSample {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_clamped_into_the_unit_interval() {
        assert_eq!(JitterSample::new(-0.5), JitterSample::ZERO);
        assert_eq!(JitterSample::new(1.5), JitterSample::ONE);
        assert_eq!(JitterSample::new(f64::NAN), JitterSample::ZERO);
        assert_eq!(JitterSample::new(0.25).value(), 0.25);
    }

    #[test]
    fn splitmix_is_deterministic_per_seed_and_stays_in_range() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        let mut c = SplitMix64::new(43);
        let from_a: Vec<f64> = (0..1000).map(|_| a.sample().value()).collect();
        let from_b: Vec<f64> = (0..1000).map(|_| b.sample().value()).collect();
        let from_c: Vec<f64> = (0..1000).map(|_| c.sample().value()).collect();
        assert_eq!(from_a, from_b);
        assert_ne!(from_a, from_c);
        assert!(from_a.iter().all(|v| (0.0..1.0).contains(v)));
    }

    #[test]
    fn splitmix_spreads_over_the_whole_interval() {
        let mut rng = SplitMix64::new(7);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let v = rng.sample().value();
            let bucket = (0..10).rev().find(|&i| v >= f64::from(i) / 10.0).unwrap();
            buckets[usize::try_from(bucket).unwrap()] += 1;
        }
        // Uniform: each decile gets about 1000; a broken generator would not.
        assert!(
            buckets.iter().all(|&n| (850..1150).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn fixed_jitter_repeats_its_sample() {
        let mut fixed = FixedJitter(JitterSample::new(0.3));
        assert_eq!(fixed.sample().value(), 0.3);
        assert_eq!(fixed.sample().value(), 0.3);
    }
}
