//! Drift between a baseline window and the current period: of the confidence distribution
//! (population stability index and a chi-square test) and of agreement (two-proportion z-test
//! and Cohen's h).
//!
//! **PSI** (Siddiqi 2006, *Credit Risk Scorecards*, ch. 8; Yurdakul 2018, *Statistical
//! properties of the population stability index*, Western Michigan University), as DESIGN.md
//! defines it:
//!
//! 1. Reference = the pooled confidences of the baseline periods. Edges = the reference's deciles
//!    q = 1/10, …, 9/10 with linear interpolation (Hyndman & Fan type 7, numpy's default
//!    `np.quantile(x, q, method="linear")`): with N sorted values x₀ ≤ … ≤ x_{N−1},
//!    h = (N − 1)q, j = ⌊h⌋, t = h − j, edge = x_j + t·(x_{j+1} − x_j). Duplicate edges are dropped.
//! 2. Bins are right-closed with open ends: (−∞, e₁], (e₁, e₂], …, (e_m, +∞).
//! 3. p_ref, p_cur = the share of each side in each bin; a share of exactly 0 is replaced by
//!    1e-4 (without renormalising) so that the logarithm is finite.
//! 4. PSI = Σ (p_cur − p_ref)·ln(p_cur / p_ref). Common reading: < 0.1 stable, 0.1–0.25
//!    moderate shift, > 0.25 major shift.
//!
//! The test that goes with it is Pearson's chi-square test of homogeneity on the 2 × B table of
//! counts (bins where both counts are 0 dropped): X² = Σ (O − E)²/E with E = row total ·
//! column total / N, df = B′ − 1, without continuity correction (scipy's
//! `chi2_contingency(table, correction=False)`).
//!
//! **Agreement change**: the pooled two-proportion z-test (statsmodels' `proportions_ztest`),
//! p̄ = (k₁ + k₂)/(n₁ + n₂), z = (p̂₁ − p̂₂)/√(p̄(1 − p̄)(1/n₁ + 1/n₂)), two-sided
//! p = 2·(1 − Φ(|z|)). The normal approximation fails on small tables (12 reviews with 3
//! disagreements against a baseline of 69 gives z-test p = 0.0006, exact p = 0.009), so when an
//! expected count of the 2 × 2 table (approve / disagree × current / baseline) is below 5
//! (Cochran's rule) the p-value is Fisher's exact test instead: X = k_cur is hypergeometric given
//! the margins, and the two-sided p-value sums the probabilities of every table at most as
//! likely as the observed one (relative tolerance 1e-7, as scipy's `fisher_exact`). Effect size Cohen's h = 2·asin√p̂₁ − 2·asin√p̂₂ (Cohen 1988, *Statistical
//! Power Analysis for the Behavioral Sciences*, §6.2: 0.2 small, 0.5 medium, 0.8 large).

use serde::{Deserialize, Serialize};

use crate::special::{chi2_sf, ln_gamma, norm_sf};

/// Replacement for a bin share of exactly 0 (DESIGN.md).
pub const PSI_EMPTY_SHARE: f64 = 1e-4;

/// Population stability index of the current confidences against a baseline, with the
/// chi-square test of homogeneity on the same bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PsiResult {
    /// Σ (p_cur − p_ref)·ln(p_cur / p_ref).
    pub psi: f64,
    /// Distinct reference deciles e₁ < … < e_m; bins are (−∞, e₁], …, (e_m, +∞).
    pub edges: Vec<f64>,
    /// Reference (baseline) count per bin, m + 1 bins.
    pub ref_counts: Vec<u64>,
    /// Current count per bin.
    pub cur_counts: Vec<u64>,
    /// Pearson's X² on the 2 × B′ table of non-empty bins; `None` when B′ < 2.
    pub chi2: Option<f64>,
    /// Degrees of freedom B′ − 1; `None` when B′ < 2.
    pub chi2_df: Option<u64>,
    /// Upper-tail p-value of X²; `None` when B′ < 2.
    pub chi2_p: Option<f64>,
}

/// Agreement in the current period against a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgreementChange {
    /// Current agreement k_cur / n_cur.
    pub current: f64,
    /// Baseline agreement k_base / n_base.
    pub baseline: f64,
    /// current − baseline.
    pub diff: f64,
    /// Pooled two-proportion z; `None` when the pooled proportion is 0 or 1 (no variance).
    pub z: Option<f64>,
    /// Two-sided p-value: of z, or of Fisher's exact test when [`AgreementChange::test`] says so.
    pub p_value: Option<f64>,
    /// Which test produced `p_value`.
    pub test: AgreementTest,
    /// Cohen's h = 2·asin√current − 2·asin√baseline.
    pub cohens_h: f64,
}

/// The test behind an agreement-change p-value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementTest {
    /// Pooled two-proportion z-test.
    ZTest,
    /// Fisher's exact test (an expected count below 5).
    FisherExact,
}

impl AgreementTest {
    /// The output spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementTest::ZTest => "z_test",
            AgreementTest::FisherExact => "fisher_exact",
        }
    }
}

/// ln C(n, k).
fn ln_choose(n: u64, k: u64) -> f64 {
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// Largest hypergeometric support summed exactly; beyond it the z-test is kept (it only
/// happens for tables whose expected counts are all large, where the z-test is accurate).
const FISHER_MAX_SUPPORT: u64 = 1_000_000;

/// Two-sided p-value of Fisher's exact test on [[k_cur, n_cur − k_cur], [k_base, n_base −
/// k_base]] (scipy's convention); `None` for an empty table or k > n.
pub fn fisher_exact(k_cur: u64, n_cur: u64, k_base: u64, n_base: u64) -> Option<f64> {
    if n_cur == 0 || n_base == 0 || k_cur > n_cur || k_base > n_base {
        return None;
    }
    let n = n_cur + n_base;
    let k = k_cur + k_base;
    let lo = n_cur.saturating_sub(n - k);
    let hi = k.min(n_cur);
    if hi - lo > FISHER_MAX_SUPPORT {
        return None;
    }
    let ln_total = ln_choose(n, n_cur);
    let ln_pmf = |x: u64| ln_choose(k, x) + ln_choose(n - k, n_cur - x) - ln_total;
    let observed = ln_pmf(k_cur);
    // scipy: tables with pmf ≤ pmf(observed)·(1 + 1e-7) count as at most as likely.
    let limit = observed + (1e-7f64).ln_1p();
    let p: f64 = (lo..=hi)
        .map(ln_pmf)
        .filter(|&l| l <= limit)
        .map(f64::exp)
        .sum();
    Some(p.min(1.0))
}

/// PSI of `current` against the pooled `baseline` periods, each given as an ascending sorted
/// slice (the baseline as one slice per period, never concatenated).
///
/// `None` when either side is empty, or when a slice is not sorted ascending or holds a
/// non-finite value (the caller broke the contract; the numbers would mean nothing).
pub fn psi(baseline: &[&[f64]], current: &[f64]) -> Option<PsiResult> {
    if !baseline.iter().all(|s| is_sorted_finite(s)) || !is_sorted_finite(current) {
        return None;
    }
    let n_ref: usize = baseline.iter().map(|s| s.len()).sum();
    let n_cur = current.len();
    if n_ref == 0 || n_cur == 0 {
        return None;
    }

    let mut edges: Vec<f64> = (1..10)
        .map(|i| pooled_quantile(baseline, n_ref, i as f64 / 10.0))
        .collect();
    // Interpolated quantiles are monotone in q up to rounding; sort before dropping duplicates.
    edges.sort_by(f64::total_cmp);
    edges.dedup();

    let ref_counts = bin_counts(baseline, &edges);
    let cur_counts = bin_counts(&[current], &edges);

    let share = |count: u64, total: usize| {
        if count == 0 {
            PSI_EMPTY_SHARE
        } else {
            count as f64 / total as f64
        }
    };
    let psi = ref_counts
        .iter()
        .zip(&cur_counts)
        .map(|(&r, &c)| {
            let (pr, pc) = (share(r, n_ref), share(c, n_cur));
            (pc - pr) * (pc / pr).ln()
        })
        .sum();

    let (chi2, chi2_df, chi2_p) = match chi2_homogeneity(&ref_counts, &cur_counts) {
        Some((x2, df)) => (Some(x2), Some(df), Some(chi2_sf(x2, df as f64))),
        None => (None, None, None),
    };
    Some(PsiResult {
        psi,
        edges,
        ref_counts,
        cur_counts,
        chi2,
        chi2_df,
        chi2_p,
    })
}

fn is_sorted_finite(s: &[f64]) -> bool {
    s.iter().all(|x| x.is_finite()) && s.windows(2).all(|w| w[0] <= w[1])
}

/// Number of values ≤ x across the sorted runs.
fn count_le(runs: &[&[f64]], x: f64) -> usize {
    runs.iter().map(|r| r.partition_point(|&v| v <= x)).sum()
}

/// Number of values < x across the sorted runs.
fn count_lt(runs: &[&[f64]], x: f64) -> usize {
    runs.iter().map(|r| r.partition_point(|&v| v < x)).sum()
}

/// The value of rank `r` (0-based) in the pooled order of sorted runs, without merging them.
///
/// The value v of rank r is the one with count_lt(v) ≤ r < count_le(v). It sits in some run;
/// in each run, count_lt of the elements is non-decreasing, so a binary search finds the last
/// element with count_lt ≤ r, which is the answer if its count_le exceeds r.
/// Cost O(m² log² n) for m runs.
fn select_rank(runs: &[&[f64]], r: usize) -> f64 {
    for run in runs {
        let j = run.partition_point(|&v| count_lt(runs, v) <= r);
        if j > 0 && count_le(runs, run[j - 1]) > r {
            return run[j - 1];
        }
    }
    // Unreachable for r < total length of sorted runs.
    f64::NAN
}

/// numpy's `quantile(pooled, q, method="linear")`, reproduced operation for operation so that
/// edges coincide bit for bit (they decide which bin a tied value falls in).
fn pooled_quantile(runs: &[&[f64]], n: usize, q: f64) -> f64 {
    let h = (n - 1) as f64 * q;
    if h >= (n - 1) as f64 {
        return select_rank(runs, n - 1);
    }
    let lo = h.floor();
    let j = lo as usize;
    let t = h - lo;
    let a = select_rank(runs, j);
    let b = select_rank(runs, j + 1);
    let diff = b - a;
    // numpy's _lerp: interpolate from the nearer end, which keeps the result within [a, b].
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Counts of the pooled runs in the bins (−∞, e₁], (e₁, e₂], …, (e_m, +∞).
fn bin_counts(runs: &[&[f64]], edges: &[f64]) -> Vec<u64> {
    let total: usize = runs.iter().map(|r| r.len()).sum();
    let mut counts = Vec::with_capacity(edges.len() + 1);
    let mut below = 0;
    for &e in edges {
        let le = count_le(runs, e);
        counts.push((le - below) as u64);
        below = le;
    }
    counts.push((total - below) as u64);
    counts
}

/// Pearson's X² of homogeneity on the 2 × B table, bins with both counts 0 dropped;
/// `None` with fewer than two non-empty bins.
fn chi2_homogeneity(a: &[u64], b: &[u64]) -> Option<(f64, u64)> {
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(&x, &y)| x + y > 0)
        .map(|(&x, &y)| (x as f64, y as f64))
        .collect();
    if cols.len() < 2 {
        return None;
    }
    let row_a: f64 = cols.iter().map(|c| c.0).sum();
    let row_b: f64 = cols.iter().map(|c| c.1).sum();
    let total = row_a + row_b;
    let mut x2 = 0.0;
    for &(x, y) in &cols {
        let col = x + y;
        let (ea, eb) = (row_a * col / total, row_b * col / total);
        x2 += (x - ea) * (x - ea) / ea + (y - eb) * (y - eb) / eb;
    }
    Some((x2, cols.len() as u64 - 1))
}

/// Agreement change between the current period (k_cur approvals of n_cur reviewed) and the
/// baseline; `None` when either n is 0 or a k exceeds its n.
pub fn agreement_change(
    k_cur: u64,
    n_cur: u64,
    k_base: u64,
    n_base: u64,
) -> Option<AgreementChange> {
    if n_cur == 0 || n_base == 0 || k_cur > n_cur || k_base > n_base {
        return None;
    }
    let current = k_cur as f64 / n_cur as f64;
    let baseline = k_base as f64 / n_base as f64;
    let diff = current - baseline;
    let pooled = (k_cur as f64 + k_base as f64) / (n_cur as f64 + n_base as f64);
    let variance = pooled * (1.0 - pooled) * (1.0 / n_cur as f64 + 1.0 / n_base as f64);
    let z = (variance > 0.0)
        .then(|| diff / variance.sqrt())
        .filter(|z| z.is_finite());
    let (n_all, k_all) = ((n_cur + n_base) as f64, (k_cur + k_base) as f64);
    let min_expected = [n_cur as f64, n_base as f64]
        .iter()
        .flat_map(|row| [row * k_all / n_all, row * (n_all - k_all) / n_all])
        .fold(f64::INFINITY, f64::min);
    let exact = (min_expected < 5.0)
        .then(|| fisher_exact(k_cur, n_cur, k_base, n_base))
        .flatten();
    let (p_value, test) = match exact {
        Some(p) => (Some(p), AgreementTest::FisherExact),
        None => (z.map(|z| 2.0 * norm_sf(z.abs())), AgreementTest::ZTest),
    };
    let cohens_h = 2.0 * current.sqrt().asin() - 2.0 * baseline.sqrt().asin();
    Some(AgreementChange {
        current,
        baseline,
        diff,
        z,
        p_value,
        test,
        cohens_h,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn empty_or_unsorted_inputs_give_none() {
        assert!(psi(&[], &[0.5]).is_none());
        assert!(psi(&[&[]], &[0.5]).is_none());
        assert!(psi(&[&[0.5]], &[]).is_none());
        assert!(psi(&[&[0.6, 0.5]], &[0.5]).is_none());
        assert!(psi(&[&[0.5, f64::NAN]], &[0.5]).is_none());
        assert!(psi(&[&[0.5]], &[f64::INFINITY]).is_none());
    }

    #[test]
    fn rank_selection_matches_a_merge() {
        let a = [0.1, 0.4, 0.4, 0.9];
        let b = [0.2, 0.4, 0.5];
        let c: [f64; 0] = [];
        let d = [0.0, 1.0];
        let runs: [&[f64]; 4] = [&a, &b, &c, &d];
        let mut pooled: Vec<f64> = runs.iter().flat_map(|r| r.iter().copied()).collect();
        pooled.sort_by(f64::total_cmp);
        for (r, &v) in pooled.iter().enumerate() {
            assert_eq!(select_rank(&runs, r), v, "rank {r}");
        }
    }

    #[test]
    fn deciles_by_hand() {
        // 0, 1, …, 10 split over two runs: h = 10q, so the deciles are exactly 1, …, 9.
        let a = [0.0, 2.0, 4.0, 6.0, 8.0, 10.0];
        let b = [1.0, 3.0, 5.0, 7.0, 9.0];
        let r = psi(&[&a, &b], &[0.5, 9.5, 20.0]).unwrap();
        let want: Vec<f64> = (1..10).map(f64::from).collect();
        for (e, w) in r.edges.iter().zip(&want) {
            assert!(close(*e, *w), "{:?}", r.edges);
        }
        // Right-closed: 0 and 1 fall in (−∞, 1]; each later bin holds one value.
        assert_eq!(r.ref_counts, vec![2, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(r.cur_counts, vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn psi_by_hand_with_collapsed_edges() {
        // Reference all 0.9: every decile is 0.9, one edge, bins (−∞, 0.9] and (0.9, ∞).
        let reference = [0.9; 20];
        let current = [0.5, 0.9, 0.95, 0.99];
        let r = psi(&[&reference], &current).unwrap();
        assert_eq!(r.edges, vec![0.9]);
        assert_eq!(r.ref_counts, vec![20, 0]);
        assert_eq!(r.cur_counts, vec![2, 2]);
        // p_ref = (1, 1e-4), p_cur = (½, ½).
        let want = (0.5 - 1.0) * (0.5_f64).ln() + (0.5 - 1e-4) * (0.5 / 1e-4_f64).ln();
        assert!(close(r.psi, want));
        // 2 × 2 table [[20, 0], [2, 2]]: E = [[22·20/24, 2·20/24], [22·4/24, 2·4/24]].
        let obs = [20.0, 0.0, 2.0, 2.0];
        let exp = [
            22.0 * 20.0 / 24.0,
            2.0 * 20.0 / 24.0,
            22.0 * 4.0 / 24.0,
            2.0 * 4.0 / 24.0,
        ];
        let x2: f64 = obs
            .iter()
            .zip(&exp)
            .map(|(o, e)| (o - e) * (o - e) / e)
            .sum();
        assert!(close(r.chi2.unwrap(), x2));
        assert_eq!(r.chi2_df, Some(1));
        // df = 1: p = 2·(1 − Φ(√X²)).
        assert!(close(r.chi2_p.unwrap(), 2.0 * norm_sf(x2.sqrt())));
    }

    #[test]
    fn identical_distributions_have_zero_psi() {
        let x: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let r = psi(&[&x[..50], &x[50..]], &x).unwrap();
        // Pooled runs need not be interleaved; the current side equals the pooled reference.
        assert!(r.psi.abs() < 1e-15);
        assert!(close(r.chi2.unwrap(), 0.0));
        assert!(close(r.chi2_p.unwrap(), 1.0));
    }

    #[test]
    fn single_non_empty_bin_has_no_test() {
        let r = psi(&[&[0.7, 0.7]], &[0.1, 0.7]).unwrap();
        assert_eq!(r.cur_counts, vec![2, 0]);
        assert_eq!(r.chi2, None);
        assert_eq!(r.chi2_df, None);
    }

    #[test]
    fn agreement_change_by_hand() {
        // 90/100 vs 80/100: pooled 0.85, var = 0.85·0.15·0.02.
        let a = agreement_change(90, 100, 80, 100).unwrap();
        let z = 0.1 / (0.85_f64 * 0.15 * 0.02).sqrt();
        assert!(close(a.diff, 0.1));
        assert!(close(a.z.unwrap(), z));
        assert!(close(a.p_value.unwrap(), 2.0 * norm_sf(z)));
        assert!(close(
            a.cohens_h,
            2.0 * 0.9_f64.sqrt().asin() - 2.0 * 0.8_f64.sqrt().asin()
        ));
        // Everything approved on both sides: no z (no variance); the exact test says p = 1.
        let a = agreement_change(10, 10, 50, 50).unwrap();
        assert_eq!((a.z, a.p_value, a.cohens_h), (None, Some(1.0), 0.0));
        assert_eq!(a.test, AgreementTest::FisherExact);
        assert!(agreement_change(1, 0, 1, 1).is_none());
        assert!(agreement_change(3, 2, 1, 1).is_none());
    }
}
