//! Two-sided confidence intervals for a binomial proportion (agreement = approve / reviewed).
//!
//! With k successes in n trials, p̂ = k/n, confidence level 1 − α and z = Φ⁻¹(1 − α/2):
//!
//! - **Wilson score** (Wilson 1927): the set of p for which the score test does not reject,
//!
//!   ```text
//!   centre    = (p̂ + z²/(2n)) / (1 + z²/n)
//!   half-width = z·√(p̂(1 − p̂)/n + z²/(4n²)) / (1 + z²/n)
//!   ```
//!
//!   Recommended by Brown, Cai & DasGupta (2001, *Statistical Science* 16:101–133) for its
//!   near-nominal coverage even for small n and p̂ near 0 or 1.
//!
//! - **Clopper–Pearson** (Clopper & Pearson 1934, *Biometrika* 26:404–413), "exact": the
//!   inversion of two one-sided binomial tests, written with Beta quantiles
//!
//!   ```text
//!   lower = B⁻¹(α/2; k, n − k + 1)        (0 when k = 0)
//!   upper = B⁻¹(1 − α/2; k + 1, n − k)    (1 when k = n)
//!   ```
//!
//!   Its coverage is at least 1 − α for every p, at the price of being conservative.
//!
//! Both match statsmodels' `proportion_confint(k, n, alpha, method="wilson" | "beta")`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::special::{beta_isf, beta_ppf, norm_ppf};

/// Why a confidence level was refused.
#[derive(Clone, Copy, Debug, PartialEq, Error)]
pub enum IntervalError {
    /// The level is not strictly between 0 and 1 (or is NaN).
    #[error("confidence level must be strictly between 0 and 1 (e.g. 0.95), got {0}")]
    InvalidConfidenceLevel(f64),
}

/// A confidence level 1 − α, strictly between 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ConfidenceLevel(f64);

impl ConfidenceLevel {
    /// Validates a level such as 0.95; NaN, 0, 1 and anything outside (0, 1) are refused.
    pub fn new(level: f64) -> Result<ConfidenceLevel, IntervalError> {
        if level > 0.0 && level < 1.0 {
            Ok(ConfidenceLevel(level))
        } else {
            Err(IntervalError::InvalidConfidenceLevel(level))
        }
    }

    /// The level 1 − α itself.
    pub fn level(self) -> f64 {
        self.0
    }

    /// The error rate α = 1 − level.
    pub fn alpha(self) -> f64 {
        1.0 - self.0
    }

    /// The two-sided normal critical value z = Φ⁻¹(1 − α/2) (1.959964 for 0.95).
    pub fn z_two_sided(self) -> f64 {
        // −Φ⁻¹(α/2) rather than Φ⁻¹(1 − α/2): α/2 is represented without rounding loss.
        -norm_ppf(self.alpha() / 2.0)
    }
}

impl TryFrom<f64> for ConfidenceLevel {
    type Error = IntervalError;

    fn try_from(level: f64) -> Result<Self, Self::Error> {
        ConfidenceLevel::new(level)
    }
}

impl From<ConfidenceLevel> for f64 {
    fn from(c: ConfidenceLevel) -> f64 {
        c.0
    }
}

/// A closed interval [low, high] within [0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// high − low.
    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    /// Whether `x` lies in [low, high].
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The proportion k/n; `None` when n = 0 or k > n.
pub fn proportion(k: u64, n: u64) -> Option<f64> {
    (n > 0 && k <= n).then(|| k as f64 / n as f64)
}

/// Two-sided Wilson score interval for k successes in n trials; `None` when n = 0 or k > n.
pub fn wilson(k: u64, n: u64, level: ConfidenceLevel) -> Option<Interval> {
    let p = proportion(k, n)?;
    // 1 − p̂ from the counts, not by subtraction: keeps its digits when p̂ is near 1.
    let q = (n - k) as f64 / n as f64;
    let nf = n as f64;
    let z = level.z_two_sided();
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * q / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Some(Interval {
        // At k = 0 (k = n) centre and half-width agree analytically; clamping removes the
        // rounding residue so the bound is exactly 0 (1).
        low: if k == 0 {
            0.0
        } else {
            (centre - half).clamp(0.0, 1.0)
        },
        high: if k == n {
            1.0
        } else {
            (centre + half).clamp(0.0, 1.0)
        },
    })
}

/// Two-sided Clopper–Pearson ("exact") interval for k successes in n trials; `None` when n = 0
/// or k > n. The lower bound is exactly 0 when k = 0 and the upper exactly 1 when k = n.
pub fn clopper_pearson(k: u64, n: u64, level: ConfidenceLevel) -> Option<Interval> {
    proportion(k, n)?;
    let half_alpha = level.alpha() / 2.0;
    let (kf, nf) = (k as f64, n as f64);
    let low = if k == 0 {
        0.0
    } else {
        beta_ppf(half_alpha, kf, nf - kf + 1.0)
    };
    let high = if k == n {
        1.0
    } else {
        beta_isf(half_alpha, kf + 1.0, nf - kf)
    };
    if low.is_nan() || high.is_nan() {
        return None;
    }
    Some(Interval { low, high })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn level95() -> ConfidenceLevel {
        ConfidenceLevel::new(0.95).unwrap()
    }

    #[test]
    fn confidence_level_is_validated() {
        for bad in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert!(ConfidenceLevel::new(bad).is_err(), "{bad}");
        }
        let c = ConfidenceLevel::new(0.9).unwrap();
        assert!((c.alpha() - 0.1).abs() < 1e-15);
        assert_eq!(c.level(), 0.9);
    }

    #[test]
    fn empty_or_impossible_counts_have_no_interval() {
        assert_eq!(proportion(0, 0), None);
        assert_eq!(proportion(3, 2), None);
        assert!(wilson(0, 0, level95()).is_none());
        assert!(clopper_pearson(0, 0, level95()).is_none());
        assert!(clopper_pearson(5, 4, level95()).is_none());
    }

    #[test]
    fn wilson_by_hand() {
        // k = 0, n = 10: the interval is [0, z²/(n + z²)].
        let z: f64 = 1.959_963_984_540_054;
        let i = wilson(0, 10, level95()).unwrap();
        assert_eq!(i.low, 0.0);
        assert!((i.high - z * z / (10.0 + z * z)).abs() < 1e-14);
        // k = 5, n = 10: symmetric around ½ with half-width z·√(¼·10 + z²/4)/(10 + z²).
        let i = wilson(5, 10, level95()).unwrap();
        let half = z * (2.5 + z * z / 4.0).sqrt() / (10.0 + z * z);
        assert!((i.low - (0.5 - half)).abs() < 1e-14);
        assert!((i.high - (0.5 + half)).abs() < 1e-14);
    }

    #[test]
    fn clopper_pearson_by_hand() {
        // k = 0: upper bound solves (1 − p)^n = α/2, so p = 1 − (α/2)^(1/n).
        let i = clopper_pearson(0, 20, level95()).unwrap();
        assert_eq!(i.low, 0.0);
        assert!((i.high - (1.0 - 0.025_f64.powf(1.0 / 20.0))).abs() < 1e-12);
        // k = n: lower bound solves p^n = α/2.
        let i = clopper_pearson(20, 20, level95()).unwrap();
        assert_eq!(i.high, 1.0);
        assert!((i.low - 0.025_f64.powf(1.0 / 20.0)).abs() < 1e-12);
        // n = 1, k = 1: [α/2, 1].
        let i = clopper_pearson(1, 1, level95()).unwrap();
        assert!((i.low - 0.025).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn intervals_contain_the_estimate_and_lie_in_unit_interval(
            n in 1u64..5_000, frac in 0.0f64..=1.0, lvl in 0.5f64..0.999,
        ) {
            let k = ((n as f64) * frac).round() as u64;
            let level = ConfidenceLevel::new(lvl).unwrap();
            let p = k as f64 / n as f64;
            for i in [wilson(k, n, level).unwrap(), clopper_pearson(k, n, level).unwrap()] {
                prop_assert!(0.0 <= i.low && i.low <= i.high && i.high <= 1.0, "{i:?}");
                prop_assert!(i.contains(p), "{i:?} does not contain {p}");
            }
        }

        #[test]
        fn intervals_shrink_as_n_grows_at_fixed_proportion(
            n in 1u64..2_000, frac in 0.0f64..=1.0, m in 2u64..20,
        ) {
            let k = ((n as f64) * frac).round() as u64;
            let level = ConfidenceLevel::new(0.95).unwrap();
            let w1 = wilson(k, n, level).unwrap().width();
            let w2 = wilson(k * m, n * m, level).unwrap().width();
            prop_assert!(w2 <= w1 + 1e-12, "wilson {w1} -> {w2}");
            let c1 = clopper_pearson(k, n, level).unwrap().width();
            let c2 = clopper_pearson(k * m, n * m, level).unwrap().width();
            prop_assert!(c2 <= c1 + 1e-12, "clopper-pearson {c1} -> {c2}");
        }
    }
}
