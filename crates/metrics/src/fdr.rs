//! False discovery rate control across many simultaneous tests (one per action class), by the
//! Benjamini–Hochberg step-up procedure (Benjamini & Hochberg 1995, *JRSS B* 57:289–300).
//!
//! With m p-values sorted as p₍₁₎ ≤ … ≤ p₍ₘ₎, the adjusted p-value of rank i is
//!
//! ```text
//! p̃₍ᵢ₎ = min(1, min_{j ≥ i} p₍ⱼ₎ · m / j)
//! ```
//!
//! and rejecting every hypothesis with p̃ ≤ q (equivalently: all p ≤ p₍ₖ₎ for the largest k with
//! p₍ₖ₎ ≤ k·q/m) keeps the expected share of false discoveries ≤ q for independent or positively
//! dependent tests. Matches statsmodels' `multipletests(p, alpha=q, method="fdr_bh")`.
//!
//! NaN p-values (a test that could not be run) are not hypotheses: they are left out of m, their
//! adjusted value stays NaN and they are never rejected.

/// Benjamini–Hochberg adjusted p-values, in the order of `p`. NaN stays NaN and does not count
/// towards m.
pub fn bh_adjust(p: &[f64]) -> Vec<f64> {
    let order = sorted_valid(p);
    let m = order.len() as f64;
    let mut adjusted = vec![f64::NAN; p.len()];
    let mut running_min = f64::INFINITY;
    for (rank0, &i) in order.iter().enumerate().rev() {
        // p / (rank/m), the ECDF factor as statsmodels writes it.
        let raw = p[i] / ((rank0 + 1) as f64 / m);
        running_min = running_min.min(raw);
        adjusted[i] = running_min.min(1.0);
    }
    adjusted
}

/// Benjamini–Hochberg rejections at false discovery rate `q`, in the order of `p`. NaN p-values
/// are never rejected; a NaN `q` rejects nothing.
pub fn bh_reject(p: &[f64], q: f64) -> Vec<bool> {
    let order = sorted_valid(p);
    let m = order.len() as f64;
    let mut reject = vec![false; p.len()];
    // Step up: the largest rank k with p₍ₖ₎ ≤ (k/m)·q; everything up to it is rejected.
    let last = order
        .iter()
        .enumerate()
        .rev()
        .find(|&(rank0, &i)| p[i] <= (rank0 + 1) as f64 / m * q)
        .map(|(rank0, _)| rank0);
    if let Some(k) = last {
        for &i in &order[..=k] {
            reject[i] = true;
        }
    }
    reject
}

/// Indices of the non-NaN p-values, by increasing p (stable for ties).
fn sorted_valid(p: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-15
    }

    #[test]
    fn by_hand() {
        // m = 4, sorted 0.01, 0.02, 0.03, 0.5: raw p·m/i = 0.04, 0.04, 0.04, 0.5.
        let p = [0.03, 0.5, 0.01, 0.02];
        let a = bh_adjust(&p);
        for (x, want) in a.iter().zip([0.04, 0.5, 0.04, 0.04]) {
            assert!(close(*x, want), "{a:?}");
        }
        assert_eq!(bh_reject(&p, 0.05), vec![true, false, true, true]);
        assert_eq!(bh_reject(&p, 0.03), vec![false, false, false, false]);
        // Step-up: p₍₁₎ = 0.012 fails its threshold q/m = 0.01, but p₍₃₎ passes 3q/m, so all
        // three are rejected.
        let p = [0.012, 0.019, 0.029, 0.9];
        assert_eq!(bh_reject(&p, 0.04), vec![true, true, true, false]);
    }

    #[test]
    fn nan_is_not_a_hypothesis() {
        let a = bh_adjust(&[0.02, f64::NAN, 0.04]);
        assert!(close(a[0], 0.04) && close(a[2], 0.04) && a[1].is_nan());
        assert_eq!(
            bh_reject(&[0.02, f64::NAN, 0.04], 0.05),
            vec![true, false, true]
        );
        assert_eq!(bh_reject(&[0.001], f64::NAN), vec![false]);
        assert!(bh_adjust(&[]).is_empty());
        assert!(bh_adjust(&[f64::NAN]).iter().all(|x| x.is_nan()));
    }

    #[test]
    fn adjusted_values_are_capped_at_one() {
        assert_eq!(bh_adjust(&[0.9, 0.8]), vec![0.9, 0.9]);
        assert_eq!(bh_adjust(&[1.0, 1.0, 1.0]), vec![1.0, 1.0, 1.0]);
    }

    proptest! {
        #[test]
        fn adjusted_at_least_raw_and_monotone(p in proptest::collection::vec(0.0f64..=1.0, 0..60)) {
            let a = bh_adjust(&p);
            for i in 0..p.len() {
                prop_assert!(a[i] >= p[i] && a[i] <= 1.0);
                for j in 0..p.len() {
                    if p[i] <= p[j] {
                        prop_assert!(a[i] <= a[j], "p {} ≤ {} but adjusted {} > {}", p[i], p[j], a[i], a[j]);
                    }
                }
            }
        }

        #[test]
        fn rejections_agree_with_adjusted_values(
            p in proptest::collection::vec(0.0f64..=1.0, 0..60), q in 0.001f64..0.5,
        ) {
            let a = bh_adjust(&p);
            let r = bh_reject(&p, q);
            for i in 0..p.len() {
                // Away from the boundary (rounding of p·m/k against k·q/m), the two must agree.
                if (a[i] - q).abs() > 1e-12 {
                    prop_assert_eq!(r[i], a[i] <= q);
                }
            }
        }
    }
}
