//! Anytime-valid promotion evidence: may an action class stop asking a human?
//!
//! The question is the one-sided test of
//!
//! > H0: agreement p ≤ p0 (the policy's target)   versus   H1: p > p0
//!
//! from k approvals among n reviewed decisions, where (k, n) keeps growing month after month and
//! the question is asked again at every monthly review. A fixed-n test re-run every month and
//! acted on the first time it passes does not control the false-promotion rate: each look is
//! another chance to cross by luck (DESIGN.md, "Statistics"; the Monte Carlo test in
//! `tests/monte_carlo.rs` measures the inflation). The evidence here stays valid however often
//! it is looked at.
//!
//! # The mixture e-process
//!
//! For one alternative p > p0 the likelihood ratio
//!
//! ```text
//! Λ_n(p) = p^k (1 − p)^(n−k) / (p0^k (1 − p0)^(n−k))
//! ```
//!
//! is, under any true agreement q ≤ p0, a nonnegative supermartingale with Λ_0 = 1 (each factor
//! p/p0 or (1 − p)/(1 − p0) has conditional mean q·p/p0 + (1−q)(1−p)/(1−p0) ≤ 1 when q ≤ p0 < p).
//! Averaging over a prior π on (p0, 1] (Robbins 1970, "Statistical methods related to the law
//! of the iterated logarithm") keeps that property:
//!
//! ```text
//! E_n(p0) = ∫_(p0,1] Λ_n(p) dπ(p),   π = Beta(a, b) truncated to (p0, 1]
//! ```
//!
//! and Ville's inequality (Ville 1939) gives P(sup_n E_n(p0) ≥ 1/α) ≤ α. So "promote the first
//! time E_n(p0) exceeds 1/α" has a false-promotion probability of at most α = 1 − confidence
//! level over an unbounded number of looks (Howard, Ramdas, McAuliffe & Sekhon 2021,
//! "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2);
//! Ramdas, Grünwald, Vovk & Shafer 2023 for e-processes in general).
//!
//! With the Beta kernel the integral is closed-form (conjugacy):
//!
//! ```text
//! ln E_n(p0) = ln B(a+k, b+n−k) + ln[1 − I_p0(a+k, b+n−k)]
//!            − ln B(a, b)       − ln[1 − I_p0(a, b)]
//!            − k ln p0 − (n−k) ln(1 − p0)
//! ```
//!
//! The upper tails 1 − I_p0 = I_(1−p0)(b', a') are taken in the log domain
//! ([`crate::special::ln_beta_inc`]) because for p0 above k/n the tail of the posterior underflows
//! while ln E itself stays moderate (n = 10^6, k/n = 0.9, p0 = 0.98: the tail is about e^(−5·10^4),
//! ln E = −11.3; under H0 the mixture hugs p0 and E decays like 1/n, not exponentially).
//! `1 − p0` is exact for p0 ≥ ½ (Sterbenz), which covers every realistic target.
//!
//! # The prior
//!
//! The default is the uniform prior Beta(1, 1), truncated: uniform on (p0, 1]. Reasons:
//!
//! - By Laplace's method any prior with a positive continuous density near the true p costs the
//!   same ½ ln n + O(1) against the oracle likelihood ratio (Howard et al. 2021 on conjugate
//!   mixture boundaries, the beta-binomial among them; Waudby-Smith & Ramdas 2023, "Estimating
//!   means of bounded random variables by betting", JRSS-B 86(1), on tuning the mixture or bet
//!   to a plausible effect size); the choice only moves the constant. Truncation at p0 already
//!   concentrates the prior on the alternatives that matter: for a 0.98 target its mass is on
//!   (0.98, 1] with mean 0.99, the region where classes that deserve promotion live.
//! - With a = 1 (any b) E_n(p0) is **monotone non-increasing in p0**, which the confidence bound
//!   below needs. Proof: substitute p = p0 + t(1 − p0), t ∈ (0, 1]; the truncated Beta(1, b)
//!   becomes the density b(1 − t)^(b−1) on t, free of p0, and
//!   ∂/∂p0 ln Λ_n(p0 + t(1−p0)) = k[(1 − t)/p − 1/p0] ≤ 0 because p ≥ p0. Each integrand decreases,
//!   so the integral does (strictly when k > 0; for k = 0, E_n = b/(n + b) < 1 for every p0).
//!
//! [`ln_e_value`] accepts any Beta(a, b); [`promotion_evidence`] uses the uniform prior.
//!
//! # The anytime-valid lower confidence bound
//!
//! The sets C_n = {p0 : E_n(p0) < 1/α} form a (1 − α) confidence sequence for p: the true p
//! leaves C_n at some n with probability ≤ α (Ville again, at p0 = p, where E_n is a martingale).
//! By the monotonicity above C_n is an interval (c_n, 1), and c_n, the *anytime lower bound*, is
//! found by bisection. The promotion rule "E_n(target) > 1/α" is exactly "c_n > target". (The
//! strict inequality makes the two statements coincide: E_n is strictly decreasing for k > 0.)
//!
//! The anytime bound is always ≤ the one-sided Clopper–Pearson bound at the same level: the
//! rejection region {k : E_n(p0) ≥ 1/α} is an upper set in k of probability ≤ α under p0
//! (Markov), so any p0 it excludes has binomial tail P(X ≥ k | p0) ≤ α. Validity over all looks
//! costs width; `tests/monte_carlo.rs` shows what it buys.

use serde::Serialize;
use thiserror::Error;

use crate::special::{binom_sf_ge, ln_beta, ln_beta_inc};

/// Largest total review count [`reviews_to_promotion`] looks at.
pub const MAX_REVIEWS: u64 = 1_000_000_000;

/// A Beta(a, b) mixing prior, truncated to (p0, 1] by the e-value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BetaPrior {
    pub a: f64,
    pub b: f64,
}

impl BetaPrior {
    /// Beta(1, 1): uniform on (p0, 1] after truncation. The default (see the module docs).
    pub const UNIFORM: BetaPrior = BetaPrior { a: 1.0, b: 1.0 };

    /// A prior with finite positive shapes.
    pub fn new(a: f64, b: f64) -> Result<BetaPrior, EvidenceError> {
        if a.is_finite() && b.is_finite() && a > 0.0 && b > 0.0 {
            Ok(BetaPrior { a, b })
        } else {
            Err(EvidenceError::Prior { a, b })
        }
    }

    fn is_valid(self) -> bool {
        self.a.is_finite() && self.b.is_finite() && self.a > 0.0 && self.b > 0.0
    }
}

impl Default for BetaPrior {
    fn default() -> Self {
        BetaPrior::UNIFORM
    }
}

/// Invalid arguments to the evidence functions.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum EvidenceError {
    #[error("approvals ({k}) exceed reviewed decisions ({n}); approvals are a subset of reviews")]
    ApprovalsExceedReviews { k: u64, n: u64 },
    #[error("target agreement {0} is outside (0, 1); set target_agreement to e.g. 0.98")]
    Target(f64),
    #[error("confidence level {0} is outside (0, 1); set confidence_level to e.g. 0.95")]
    Level(f64),
    #[error("prior Beta({a}, {b}) needs finite positive shapes")]
    Prior { a: f64, b: f64 },
}

/// Promotion evidence for one action class: the e-value at the target and the anytime-valid
/// lower confidence bound on agreement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    /// Approvals.
    pub k: u64,
    /// Reviewed decisions.
    pub n: u64,
    /// Target agreement p0 (H0: agreement ≤ p0).
    pub target: f64,
    /// Confidence level; α = 1 − level.
    pub level: f64,
    /// ln E_n(target) (authoritative: does not overflow).
    pub ln_e_value: f64,
    /// E_n(target), saturating at `f64::MAX` so that serialised output stays numeric.
    pub e_value: f64,
    /// 1/α: the e-value promotion needs to exceed.
    pub threshold: f64,
    /// E_n(target) > 1/α, equivalently `anytime_lower > target`.
    pub crosses: bool,
    /// Anytime-valid (1 − α) lower confidence bound on agreement (0 when n = 0 or k = 0).
    pub anytime_lower: f64,
}

/// ln[1 − I_x(a, b)] = ln I_(1−x)(b, a), finite in the far tail.
fn ln_upper_tail(x: f64, a: f64, b: f64) -> f64 {
    ln_beta_inc(b, a, 1.0 - x)
}

/// ln E_n(p0), the log mixture e-value of k approvals among n reviews against H0: p ≤ p0.
///
/// Returns `None` when k > n, p0 is not inside (0, 1) or the prior is invalid. n = 0 gives
/// `Some(0.0)` (E = 1: no evidence either way).
pub fn ln_e_value(k: u64, n: u64, p0: f64, prior: BetaPrior) -> Option<f64> {
    if k > n || !(p0 > 0.0 && p0 < 1.0) || !prior.is_valid() {
        return None;
    }
    if n == 0 {
        return Some(0.0);
    }
    let (kf, mf) = (k as f64, (n - k) as f64);
    let (a, b) = (prior.a, prior.b);
    let num = ln_beta(a + kf, b + mf) + ln_upper_tail(p0, a + kf, b + mf);
    let den = ln_beta(a, b) + ln_upper_tail(p0, a, b);
    // 0·ln(…) terms are skipped so that k = 0 or k = n never produce 0·∞.
    let mut ln_l0 = 0.0;
    if k > 0 {
        ln_l0 += kf * p0.ln();
    }
    if n > k {
        ln_l0 += mf * (-p0).ln_1p();
    }
    let v = num - den - ln_l0;
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// E_n(p0) itself (may overflow to +∞ for large n; prefer [`ln_e_value`]).
pub fn e_value(k: u64, n: u64, p0: f64, prior: BetaPrior) -> Option<f64> {
    ln_e_value(k, n, p0, prior).map(f64::exp)
}

fn check(k: u64, n: u64, target: f64, level: f64) -> Result<(), EvidenceError> {
    if k > n {
        return Err(EvidenceError::ApprovalsExceedReviews { k, n });
    }
    if !(target > 0.0 && target < 1.0) {
        return Err(EvidenceError::Target(target));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(EvidenceError::Level(level));
    }
    Ok(())
}

/// ln E_n(p0) with the uniform prior, for already-validated k ≤ n, p0 ∈ (0, 1).
fn ln_e_uniform(k: u64, n: u64, p0: f64) -> f64 {
    ln_e_value(k, n, p0, BetaPrior::UNIFORM).unwrap_or(0.0)
}

/// Promotion evidence for k approvals among n reviews against `target`, at `level` (uniform
/// prior). See the module docs for the e-value, the threshold 1/α and the anytime lower bound.
pub fn promotion_evidence(
    k: u64,
    n: u64,
    target: f64,
    level: f64,
) -> Result<Evidence, EvidenceError> {
    check(k, n, target, level)?;
    let alpha = 1.0 - level;
    let threshold = 1.0 / alpha;
    let ln_thr = -alpha.ln();
    let ln_e = ln_e_uniform(k, n, target);
    let crosses = ln_e > ln_thr;
    let anytime_lower = anytime_lower_bound(k, n, target, ln_thr, crosses);
    Ok(Evidence {
        k,
        n,
        target,
        level,
        ln_e_value: ln_e,
        e_value: ln_e.exp().min(f64::MAX),
        threshold,
        crosses,
        anytime_lower,
    })
}

/// inf{p0 ∈ [0, 1) : E_n(p0) < 1/α} by bisection, bracketed so that it agrees with `crosses`.
fn anytime_lower_bound(k: u64, n: u64, target: f64, ln_thr: f64, crosses: bool) -> f64 {
    if n == 0 || k == 0 {
        // E_n(p0) = 1/(n + 1) < 1/α for every p0: nothing is excluded.
        return 0.0;
    }
    // Invariant: E(lo) > 1/α (excluded) and E(hi) ≤ 1/α (kept). p0 → 0 is excluded when k > 0
    // (E → ∞); E_n(p0) → 1 < 1/α as p0 → 1, so 1 is a valid virtual upper end.
    let (mut lo, mut hi) = if crosses {
        (target, 1.0)
    } else {
        (0.0, target)
    };
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if ln_e_uniform(k, n, mid) > ln_thr {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if crosses && lo <= target {
        // Only reachable if the crossing point is within one ulp of the target; keep the
        // documented equivalence crosses ⇔ anytime_lower > target.
        return f64::from_bits(target.to_bits() + 1);
    }
    lo
}

/// The smallest total reviewed count N ≥ `n_now` at which k = round(`p_hat`·N) approvals would
/// make the evidence cross `target` at `level`: "about N − n_now more reviews" if agreement
/// stays at `p_hat`.
///
/// `None` if `p_hat` ≤ `target`, the arguments are invalid, or N would exceed [`MAX_REVIEWS`].
///
/// Crossing is monotone in N up to the ±½ rounding of k. The search doubles N until it crosses,
/// bisects to a boundary, then scans forward from a window below that boundary wide enough for
/// the rounding jitter (ln E moves by at most ≈ ln-odds-ratio(p̂, target) per unit of k while its
/// trend grows by KL(p̂ ‖ target) per review); within that window the answer is exact.
pub fn reviews_to_promotion(p_hat: f64, n_now: u64, target: f64, level: f64) -> Option<u64> {
    if !(p_hat > target && p_hat <= 1.0) || check(0, 0, target, level).is_err() {
        return None;
    }
    let ln_thr = -(1.0 - level).ln();
    let crosses = |n: u64| {
        let k = ((p_hat * n as f64).round() as u64).min(n);
        ln_e_uniform(k, n, target) > ln_thr
    };
    let start = n_now.max(1);
    if start > MAX_REVIEWS {
        return None;
    }
    if crosses(start) {
        return Some(start);
    }
    // Gallop: lo fails, hi crosses.
    let (mut lo, mut hi) = (start, start);
    loop {
        if hi >= MAX_REVIEWS {
            return None;
        }
        hi = hi.saturating_mul(2).min(MAX_REVIEWS);
        if crosses(hi) {
            break;
        }
        lo = hi;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if crosses(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Rounding-jitter window below the boundary.
    let t = target;
    let window = if p_hat >= 1.0 {
        hi - start
    } else {
        let ln_odds = (p_hat * (1.0 - t) / (t * (1.0 - p_hat))).ln();
        let kl = p_hat * (p_hat / t).ln() + (1.0 - p_hat) * ((1.0 - p_hat) / (1.0 - t)).ln();
        let w = 2.0 * (ln_odds / kl).ceil() + 64.0;
        if w.is_finite() && w < (hi - start) as f64 {
            w as u64
        } else {
            hi - start
        }
    };
    (hi.saturating_sub(window).max(start + 1)..hi)
        .find(|&n| crosses(n))
        .or(Some(hi))
}

/// The naive one-sided exact binomial test that the anytime method replaces: reject H0: p ≤
/// `target` when P(X ≥ k | n, target) ≤ α. Valid for one look at a fixed n only. `false` for
/// n = 0 and for invalid arguments.
pub fn naive_fixed_n_test(k: u64, n: u64, target: f64, level: f64) -> bool {
    if n == 0 || check(k, n, target, level).is_err() {
        return false;
    }
    binom_sf_ge(k, n, target) <= 1.0 - level
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn uniform_prior_closed_forms() {
        // k = n: E = ∫_p0^1 (p/p0)^n dp / (1 − p0) = (1 − p0^(n+1)) / ((n+1) p0^n (1 − p0)).
        for &(n, p0) in &[(1_u64, 0.5_f64), (10, 0.9), (200, 0.98)] {
            let exact =
                ((1.0 - p0.powi(n as i32 + 1)) / ((n + 1) as f64 * p0.powi(n as i32))) / (1.0 - p0);
            let got = e_value(n, n, p0, BetaPrior::UNIFORM).unwrap();
            assert!(close(got, exact, 1e-12), "n={n} p0={p0}: {got} vs {exact}");
        }
        // k = 0: E = ∫_0^1 (1 − t)^n dt = 1/(n + 1) whatever p0.
        for p0 in [0.1, 0.5, 0.98] {
            let got = e_value(0, 9, p0, BetaPrior::UNIFORM).unwrap();
            assert!(close(got, 0.1, 1e-12), "p0={p0}: {got}");
        }
        // n = 1, k = 1, p0 = ½ by hand: ∫_½^1 2p dp / ½ = 3/2.
        assert!(close(
            e_value(1, 1, 0.5, BetaPrior::UNIFORM).unwrap(),
            1.5,
            1e-14
        ));
    }

    #[test]
    fn invalid_inputs_are_neutral_or_errors() {
        assert_eq!(ln_e_value(3, 2, 0.5, BetaPrior::UNIFORM), None);
        assert_eq!(ln_e_value(1, 2, 1.0, BetaPrior::UNIFORM), None);
        assert_eq!(ln_e_value(1, 2, f64::NAN, BetaPrior::UNIFORM), None);
        assert_eq!(ln_e_value(1, 2, 0.5, BetaPrior { a: 0.0, b: 1.0 }), None);
        assert_eq!(ln_e_value(0, 0, 0.5, BetaPrior::UNIFORM), Some(0.0));
        assert!(matches!(
            promotion_evidence(3, 2, 0.98, 0.95),
            Err(EvidenceError::ApprovalsExceedReviews { .. })
        ));
        assert!(promotion_evidence(1, 2, 1.0, 0.95).is_err());
        assert!(promotion_evidence(1, 2, 0.98, 1.0).is_err());
        let e = promotion_evidence(0, 0, 0.98, 0.95).unwrap();
        assert!(!e.crosses && e.anytime_lower == 0.0 && e.e_value == 1.0);
        assert!(!naive_fixed_n_test(0, 0, 0.98, 0.95));
        assert!(!naive_fixed_n_test(5, 4, 0.98, 0.95));
        assert_eq!(reviews_to_promotion(0.97, 100, 0.98, 0.95), None);
        assert_eq!(reviews_to_promotion(f64::NAN, 100, 0.98, 0.95), None);
        assert_eq!(reviews_to_promotion(1.5, 100, 0.98, 0.95), None);
    }

    #[test]
    fn crosses_agrees_with_lower_bound() {
        for &(k, n) in &[
            (148_u64, 150_u64),
            (150, 150),
            (995, 1000),
            (990, 1000),
            (1, 1),
        ] {
            let e = promotion_evidence(k, n, 0.98, 0.95).unwrap();
            assert_eq!(e.crosses, e.anytime_lower > 0.98, "k={k} n={n}: {e:?}");
            assert_eq!(e.crosses, e.e_value > e.threshold);
            // At the bound itself the e-value is at the threshold.
            if e.anytime_lower > 0.0 {
                let at = ln_e_uniform(k, n, e.anytime_lower);
                assert!(close(at, e.threshold.ln(), 1e-6), "k={k} n={n}: {at}");
            }
        }
    }

    #[test]
    fn e_value_decreases_in_p0() {
        for &(k, n) in &[(3_u64, 5_u64), (990, 1000), (99_000, 100_000)] {
            let mut prev = f64::INFINITY;
            for i in 1..200 {
                let p0 = i as f64 / 200.0;
                let v = ln_e_uniform(k, n, p0);
                assert!(
                    v <= prev + 1e-9 * prev.abs().max(1.0),
                    "k={k} n={n} p0={p0}"
                );
                prev = v;
            }
        }
    }

    #[test]
    fn reviews_to_promotion_is_the_first_crossing() {
        for &(p_hat, n_now) in &[
            (0.995, 0_u64),
            (0.99, 500),
            (0.999, 10),
            (1.0, 0),
            (0.985, 0),
        ] {
            let n = reviews_to_promotion(p_hat, n_now, 0.98, 0.95).unwrap();
            let k = (p_hat * n as f64).round() as u64;
            assert!(promotion_evidence(k, n, 0.98, 0.95).unwrap().crosses);
            // Brute force over every smaller count.
            for m in n_now.max(1)..n {
                let km = (p_hat * m as f64).round() as u64;
                assert!(
                    !promotion_evidence(km, m, 0.98, 0.95).unwrap().crosses,
                    "{p_hat}: {m}"
                );
            }
        }
        // Already crossing: the current count.
        assert_eq!(
            reviews_to_promotion(0.999, 100_000, 0.98, 0.95),
            Some(100_000)
        );
    }

    mod props {
        use super::*;
        use crate::special::beta_ppf;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// The anytime bound lies below the point estimate and below the one-sided
            /// Clopper–Pearson bound at the same level: validity over all looks costs width.
            #[test]
            fn anytime_bound_is_wider_than_clopper_pearson(
                n in 1_u64..20_000,
                frac in 0.0_f64..=1.0,
                target in 0.5_f64..0.999,
                level in prop::sample::select(vec![0.8, 0.9, 0.95, 0.99]),
            ) {
                let k = ((n as f64 * frac).round() as u64).min(n);
                let e = promotion_evidence(k, n, target, level).unwrap();
                let alpha = 1.0 - level;
                let cp = if k == 0 { 0.0 } else { beta_ppf(alpha, k as f64, (n - k) as f64 + 1.0) };
                prop_assert!(e.anytime_lower <= k as f64 / n as f64 + 1e-15);
                prop_assert!(e.anytime_lower <= cp + 1e-12, "{} > CP {cp}", e.anytime_lower);
                prop_assert_eq!(e.crosses, e.anytime_lower > target);
                // Promotion by the e-value implies the fixed-n test passes too.
                if e.crosses {
                    prop_assert!(naive_fixed_n_test(k, n, target, level));
                }
            }

            /// More approvals at the same n is more evidence.
            #[test]
            fn e_value_increases_in_k(
                n in 1_u64..1_000_000,
                frac in 0.0_f64..1.0,
                p0 in 0.05_f64..0.999,
            ) {
                let k = ((n as f64 * frac) as u64).min(n - 1);
                let a = ln_e_value(k, n, p0, BetaPrior::UNIFORM).unwrap();
                let b = ln_e_value(k + 1, n, p0, BetaPrior::UNIFORM).unwrap();
                prop_assert!(b > a, "k={k} n={n} p0={p0}: {a} then {b}");
            }
        }
    }
}
