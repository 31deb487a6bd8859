//! The simulator's own pseudo-random numbers: xoshiro256** (Blackman & Vigna, 2018) seeded
//! through SplitMix64, and the few samplers the model needs.
//!
//! Nothing here reads a clock or global state: a generator is a value built from a seed and a
//! stream number, so the same `(seed, stream)` always yields the same sequence.
//!
//! - uniform on [0, 1): the top 53 bits of a draw times 2^-53;
//! - bounded integers: Lemire's multiply-shift with rejection (exactly uniform);
//! - normal: Marsaglia's polar method (one spare value is kept);
//! - gamma: Marsaglia & Tsang (2000), with the `U^(1/a)` boost for shapes below one;
//! - beta: `X / (X + Y)` with `X ~ Gamma(a)`, `Y ~ Gamma(b)`;
//! - log-normal: `median · exp(σ Z)`.

/// One step of SplitMix64 (Steele, Lea & Flood, 2014): used only to expand seeds into the
/// 256-bit xoshiro state, as its authors recommend.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** generator with a cached spare normal deviate.
#[derive(Debug, Clone)]
pub(crate) struct Rng {
    s: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator for stream `stream` of seed `seed`. Distinct streams of one seed (months,
    /// per-class tables) are statistically independent sequences.
    pub(crate) fn stream(seed: u64, stream: u64) -> Self {
        let mut sm = seed;
        let key = splitmix64(&mut sm);
        // The odd multiplier spreads consecutive stream numbers over the whole state space.
        let mut sm = key ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut s = [0u64; 4];
        for word in &mut s {
            *word = splitmix64(&mut sm);
        }
        if s == [0; 4] {
            // The all-zero state is xoshiro's only fixed point; SplitMix64 practically never
            // yields it, but a constant keeps the generator valid if it ever does.
            s[0] = 0x9E37_79B9_7F4A_7C15;
        }
        Rng {
            s,
            spare_normal: None,
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1).
    #[inline]
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on the open interval (0, 1): safe to take the logarithm of.
    #[inline]
    pub(crate) fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), exactly uniform (Lemire, 2019).
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// `true` with probability `p`.
    #[inline]
    pub(crate) fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Index drawn from a cumulative distribution (`cdf` ascending, last entry 1).
    #[inline]
    pub(crate) fn categorical(&mut self, cdf: &[f64]) -> usize {
        let u = self.uniform();
        cdf.iter().position(|&c| u < c).unwrap_or(cdf.len() - 1)
    }

    /// Standard normal deviate (polar method).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * s.ln() / s).sqrt();
                self.spare_normal = Some(v * f);
                return u * f;
            }
        }
    }

    /// Gamma(shape, 1) deviate (Marsaglia & Tsang; shapes below one are boosted by
    /// `Gamma(a) = Gamma(a + 1) · U^(1/a)`).
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        debug_assert!(shape > 0.0);
        if shape < 1.0 {
            let u = self.open01();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let (x, v) = loop {
                let x = self.normal();
                let v = 1.0 + c * x;
                if v > 0.0 {
                    break (x, v * v * v);
                }
            };
            let u = self.open01();
            let x2 = x * x;
            // The cheap squeeze accepts about 98% of candidates without a logarithm.
            if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) deviate.
    pub(crate) fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        let s = x + y;
        if s > 0.0 {
            x / s
        } else {
            0.5
        }
    }

    /// Log-normal deviate with the given median and log-scale standard deviation.
    pub(crate) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
        (m, v)
    }

    #[test]
    fn splitmix_matches_reference_sequence() {
        // Reference values of SplitMix64 seeded with 1234567 (from Vigna's splitmix64.c).
        let mut s = 1_234_567u64;
        assert_eq!(splitmix64(&mut s), 6_457_827_717_110_365_317);
        assert_eq!(splitmix64(&mut s), 3_203_168_211_198_807_973);
        assert_eq!(splitmix64(&mut s), 9_817_491_932_198_370_423);
    }

    #[test]
    fn xoshiro_matches_reference_step() {
        // State [1, 2, 3, 4]: first outputs of Vigna's xoshiro256starstar.c.
        let mut r = Rng {
            s: [1, 2, 3, 4],
            spare_normal: None,
        };
        assert_eq!(r.next_u64(), 11_520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1_509_978_240);
        assert_eq!(r.next_u64(), 1_215_971_899_390_074_240);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(7, 3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(7, 3);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(7, 4);
                move |_| r.next_u64()
            })
            .collect();
        let d: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::stream(8, 3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let n = 200_000;
        let mut r = Rng::stream(42, 0);

        // Uniform: mean 1/2, variance 1/12.
        let xs: Vec<f64> = (0..n).map(|_| r.uniform()).collect();
        let (m, v) = mean_var(&xs);
        assert!((m - 0.5).abs() < 0.005, "uniform mean {m}");
        assert!((v - 1.0 / 12.0).abs() < 0.002, "uniform var {v}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));

        // Normal: mean 0, variance 1.
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let (m, v) = mean_var(&xs);
        assert!(m.abs() < 0.01, "normal mean {m}");
        assert!((v - 1.0).abs() < 0.02, "normal var {v}");

        // Gamma(k): mean k, variance k, for shapes on both sides of one.
        for k in [0.4, 1.0, 2.5, 150.0] {
            let xs: Vec<f64> = (0..n).map(|_| r.gamma(k)).collect();
            let (m, v) = mean_var(&xs);
            assert!((m - k).abs() < 0.02 * k.max(1.0), "gamma({k}) mean {m}");
            assert!((v - k).abs() < 0.05 * k.max(1.0), "gamma({k}) var {v}");
        }

        // Beta(a, b): mean a/(a+b), variance ab/((a+b)^2 (a+b+1)).
        for (a, b) in [(2.0, 5.0), (0.5, 0.5), (149.1, 0.9), (57.0, 3.0)] {
            let xs: Vec<f64> = (0..n).map(|_| r.beta(a, b)).collect();
            let (m, v) = mean_var(&xs);
            let em = a / (a + b);
            let ev = a * b / ((a + b) * (a + b) * (a + b + 1.0));
            assert!((m - em).abs() < 0.003, "beta({a},{b}) mean {m} vs {em}");
            assert!(
                (v - ev).abs() < 0.05 * ev + 1e-6,
                "beta({a},{b}) var {v} vs {ev}"
            );
            assert!(xs.iter().all(|&x| (0.0..=1.0).contains(&x)));
        }

        // Log-normal: the median is the median.
        let mut xs: Vec<f64> = (0..n).map(|_| r.lognormal(20.0, 1.0)).collect();
        xs.sort_by(f64::total_cmp);
        let med = xs[n / 2];
        assert!((med - 20.0).abs() < 0.4, "lognormal median {med}");

        // Bounded integers: every value hit about equally often.
        let mut counts = [0u32; 7];
        for _ in 0..70_000 {
            counts[r.below(7) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }
}
